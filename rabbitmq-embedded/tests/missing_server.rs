//! Without rabbitmq-server (simulated by pointing the override nowhere) and
//! without ORDERSTREAM_TEST_AMQP_URL, starting a broker fails and says what
//! to install: a test needing a broker fails, it is never skipped.
//!
//! Its own test binary: it changes this process's environment.

use rabbitmq_embedded::{Broker, TestBroker, SERVER_ENV, TEST_URL_ENV};

#[tokio::test]
async fn a_missing_server_fails_with_the_package_to_install() {
    std::env::set_var(SERVER_ENV, "/nonexistent/rabbitmq-server");
    std::env::remove_var(TEST_URL_ENV);

    let error = Broker::start_temporary()
        .await
        .expect_err("no server to start");
    let message = error.to_string();
    assert!(
        message.contains("apt-get install -y rabbitmq-server"),
        "{message}"
    );
    assert!(
        message.contains("/nonexistent/rabbitmq-server"),
        "{message}"
    );

    let error = TestBroker::shared()
        .await
        .expect_err("no broker for the tests");
    assert!(
        error
            .to_string()
            .contains("apt-get install -y rabbitmq-server"),
        "{error}"
    );
}
