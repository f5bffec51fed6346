//! The HTTP/1 connection loop. `axum::serve` sets no header-read timeout
//! (a client sending a header byte every few seconds holds its connection
//! forever) and its graceful shutdown waits for every connection, slow ones
//! included. Here each connection gets hyper's header-read timeout, which
//! also closes kept-alive connections left idle, and a shutdown asks every
//! connection to close after its request in flight, then drops whatever is
//! still open when the grace period ends.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::HttpLimits;

/// Serves `app` on `listener` until `shutdown` resolves, then lets the
/// requests in flight finish for at most `limits.shutdown_grace` and drops
/// what is still open.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let (closing, closing_seen) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(
                        http.clone(),
                        stream,
                        app.clone(),
                        closing_seen.clone(),
                    ));
                }
                Err(error) => accept_failed(error).await,
            },
            // Reap finished connections so that the set stays small.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = closing.send(true);
    let open = connections.len();
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            grace_s = limits.shutdown_grace.as_secs_f64(),
            "dropping the connections still open after the shutdown grace period"
        );
        connections.shutdown().await;
    } else {
        tracing::info!(closed = open, "every connection closed");
    }
    Ok(())
}

async fn serve_connection(
    http: http1::Builder,
    stream: TcpStream,
    app: Router,
    mut closing: watch::Receiver<bool>,
) {
    // Responses are written whole: no point delaying small packets.
    let _ = stream.set_nodelay(true);
    let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    tokio::pin!(connection);
    let finished = tokio::select! {
        result = connection.as_mut() => Some(result),
        // An error means the server is gone: close as well.
        _ = closing.wait_for(|closing| *closing) => None,
    };
    let result = match finished {
        Some(result) => result,
        None => {
            // Idle connections close now; one in a request closes after
            // its response; one still sending its head, at its timeout.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        if error.is_timeout() {
            tracing::debug!("closed a connection that did not send its request head in time");
        } else {
            tracing::debug!(%error, "connection ended with an error");
        }
    }
}

/// Connection-level errors concern one client: go on. Others (out of file
/// descriptors) would repeat at once: pause first, as axum::serve does.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accepting a connection failed; pausing for 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
