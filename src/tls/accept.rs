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
use super::limits::{Connections, KEEP_ALIVE_TIMEOUT, ServeLimits, open_file_limit};
use super::trim::{TRIM_EVERY, Trimmer, release_free_memory};

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
/// connection), then HTTP/1.1 or HTTP/2 with hyper-util's auto builder, closed when no
/// request starts within `first_request_timeout` of the handshake or `idle_timeout` of the
/// last one (HTTP/2 peers are pinged every `keep_alive_interval`). At most
/// `max_connections` are open: at the cap the idlest is closed to make room, or, when all
/// are busy, new ones wait in the listen backlog. When many have closed, the memory they
/// freed is given back to the system (see `trim`). On shutdown the listener is closed,
/// connections are asked to finish gracefully (HTTP/2 GOAWAY, HTTP/1.1 close after the
/// current response) and get `limits.shutdown_grace` before being dropped.
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
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.keep_alive_interval))
        .keep_alive_timeout(KEEP_ALIVE_TIMEOUT);
    let builder = if tls.http2() {
        builder
    } else {
        builder.http1_only()
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let open = Connections::new(limits.max_connections);
    tracing::info!(
        max_connections = limits.max_connections,
        open_file_limit = open_file_limit(),
        first_request_timeout = ?limits.first_request_timeout,
        idle_timeout = ?limits.idle_timeout,
        "accepting connections"
    );
    let mut accept_errors: (u64, Option<std::time::Instant>) = (0, None);
    let mut trimmer = Trimmer::default();
    let mut trim_tick = tokio::time::interval(TRIM_EVERY);
    trim_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
            _ = trim_tick.tick() => {
                if trimmer.due(open.len()) {
                    tokio::task::spawn_blocking(|| {
                        let released = release_free_memory();
                        tracing::debug!(released, "gave the memory of closed connections back");
                    });
                }
            }
            accepted = async {
                open.room().await;
                listener.accept().await
            } => match accepted {
                Ok((stream, remote)) => {
                    let (slot, count) = open.open();
                    trimmer.saw(count);
                    connections.spawn(serve_connection(
                        stream,
                        remote,
                        acceptor.clone(),
                        builder.clone(),
                        app.clone(),
                        limits,
                        stop_rx.clone(),
                        slot,
                    ));
                }
                Err(err) => {
                    // Per-connection errors (reset before accept) are harmless; others
                    // (out of file descriptors) get a short pause instead of a busy loop,
                    // and one warning per 10 s with how many failed.
                    accept_errors.0 += 1;
                    let now = std::time::Instant::now();
                    if accept_errors.1.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10)) {
                        tracing::warn!(error = %err, failures = accept_errors.0, open = open.len(), "accepting a connection failed");
                        accept_errors = (0, Some(now));
                    }
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
