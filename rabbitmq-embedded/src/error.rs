//! Errors from starting, restarting or administering a private node.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(
        "no RabbitMQ server found (looked for {looked}): install it \
         (`apt-get install -y rabbitmq-server`; the tests start a private node from it and \
         never use the machine's running RabbitMQ) or set ORDERSTREAM_TEST_AMQP_URL to an \
         existing broker"
    )]
    ServerNotFound { looked: String },
    #[error("no `{program}` beside the RabbitMQ server script in {dir}")]
    ProgramNotFound { program: String, dir: PathBuf },
    #[error(
        "running as root and there is no `rabbitmq` OS user to run the node as, and it could \
         not be created: {reason}"
    )]
    NoServiceUser { reason: String },
    #[error("`{command}` failed: {output}")]
    CommandFailed { command: String, output: String },
    #[error("could not prepare {path}: {source}")]
    Filesystem {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not run `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "RabbitMQ did not accept AMQP connections within {seconds} s (last attempt: {last_error}); \
         the end of its log ({log}):\n{tail}"
    )]
    NotReady {
        seconds: u64,
        last_error: String,
        log: PathBuf,
        tail: String,
    },
    #[error("RabbitMQ exited during start-up; the end of its log ({log}):\n{tail}")]
    ExitedEarly { log: PathBuf, tail: String },
    #[error("RabbitMQ did not stop within {seconds} s; the end of its log ({log}):\n{tail}")]
    NotStopped {
        seconds: u64,
        log: PathBuf,
        tail: String,
    },
}
