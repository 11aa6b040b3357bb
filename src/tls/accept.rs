//! The accept loop: one task per connection, graceful shutdown with a grace period.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::Result;
use super::config::ServerTls;
use super::connection::serve_connection;

/// Bounds of the accept loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// A TLS handshake taking longer closes the connection (default 10 s).
    pub handshake_timeout: Duration,
    /// After shutdown is requested, in-flight requests get this long (default 30 s).
    pub shutdown_grace: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Serve `app` over TLS on `listener` until `shutdown` completes, with [`ServeLimits::default`].
pub async fn serve(
    listener: TcpListener,
    tls: ServerTls,
    app: Router,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    serve_with(listener, tls, app, shutdown, ServeLimits::default()).await
}

/// Serve `app` over TLS on `listener` until `shutdown` completes.
///
/// Each connection is handled in its own task: TLS handshake (bounded by
/// `limits.handshake_timeout`; failures are logged at debug and only close that
/// connection), then HTTP/1.1 or HTTP/2 with hyper-util's auto builder. On shutdown the
/// listener is closed, connections are asked to finish gracefully (HTTP/2 GOAWAY, HTTP/1.1
/// close after the current response) and get `limits.shutdown_grace` before being dropped.
pub async fn serve_with(
    listener: TcpListener,
    tls: ServerTls,
    app: Router,
    shutdown: impl Future<Output = ()>,
    limits: ServeLimits,
) -> Result<()> {
    let acceptor = TlsAcceptor::from(tls.config().clone());
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    builder.http2().timer(TokioTimer::new());
    let builder = if tls.http2() {
        builder
    } else {
        builder.http1_only()
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let shutdown = std::pin::pin!(shutdown);
    let mut shutdown = shutdown;
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(joined) = connections.join_next(), if !connections.is_empty() => {
                if let Err(err) = joined
                    && err.is_panic()
                {
                    tracing::error!(error = %err, "connection task panicked");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    connections.spawn(serve_connection(
                        stream,
                        remote,
                        acceptor.clone(),
                        builder.clone(),
                        app.clone(),
                        limits.handshake_timeout,
                        stop_rx.clone(),
                    ));
                }
                Err(err) => {
                    // Per-connection errors (reset before accept) are harmless; others
                    // (out of file descriptors) get a short pause instead of a busy loop.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    drop(listener);
    let open = connections.len();
    tracing::info!(
        connections = open,
        "shutting down: no new connections, draining"
    );
    stop_tx.send_replace(true);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            grace = ?limits.shutdown_grace,
            "shutdown grace period over; closing remaining connections"
        );
        connections.shutdown().await;
    }
    Ok(())
}
