//! One connection: TLS handshake (bounded; plain HTTP answered with a 400), then HTTP/1.1 or
//! HTTP/2 until it closes or stays idle too long, each request carrying the connection's
//! [`PeerCertificates`] and `ConnectInfo<SocketAddr>`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use super::limits::{ServeLimits, Slot};
use super::plain_http;

/// The client certificates a connection presented (leaf first); empty when none.
/// Inserted into every request's extensions by [`serve`](super::serve).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerCertificates(Arc<[CertificateDer<'static>]>);

impl PeerCertificates {
    /// Wrap a chain.
    pub fn new(certs: Vec<CertificateDer<'static>>) -> Self {
        Self(certs.into())
    }

    /// The chain, leaf first.
    pub fn certs(&self) -> &[CertificateDer<'static>] {
        &self.0
    }

    /// The client's own certificate.
    pub fn end_entity(&self) -> Option<&CertificateDer<'static>> {
        self.0.first()
    }

    /// Whether the client presented no certificate.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Completes when shutdown is requested (or the accept loop is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send; drop it here, not across an await.
    let _ = stop.wait_for(|stop| *stop).await.is_ok();
}

/// How long a connection asked to close (idle, evicted) gets to finish before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Serves one accepted connection: plain HTTP gets a 400 `Status`; otherwise the TLS
/// handshake (bounded), then HTTP until the client closes, shutdown is requested, the
/// connection stays without a request longer than the limits allow, or the accept loop
/// needs its place.
#[allow(clippy::too_many_arguments)]
pub(super) async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    acceptor: TlsAcceptor,
    builder: auto::Builder<TokioExecutor>,
    app: Router,
    limits: ServeLimits,
    mut stop: watch::Receiver<bool>,
    slot: Slot,
) {
    let activity = slot.activity.clone();
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(%remote, error = %err, "setting TCP_NODELAY failed");
    }
    let handshake = async {
        let mut first = [0u8; 1];
        match stream.peek(&mut first).await {
            Ok(1) if plain_http::looks_like_http(first[0]) => {
                tracing::debug!(%remote, "plain HTTP on the HTTPS port, answered 400");
                plain_http::answer(stream, limits.handshake_timeout).await;
                None
            }
            Ok(1) => match acceptor.accept(stream).await {
                Ok(stream) => Some(stream),
                Err(err) => {
                    tracing::debug!(%remote, error = %err, "TLS handshake failed");
                    None
                }
            },
            _ => None,
        }
    };
    let stream = tokio::select! {
        done = tokio::time::timeout(limits.handshake_timeout, handshake) => match done {
            Ok(Some(stream)) => stream,
            Ok(None) => return,
            Err(_) => {
                tracing::debug!(%remote, timeout = ?limits.handshake_timeout, "TLS handshake timed out");
                return;
            }
        },
        () = activity.evicted() => return,
    };
    activity.touch();
    let peer = PeerCertificates::new(
        stream
            .get_ref()
            .1
            .peer_certificates()
            .map(<[CertificateDer<'static>]>::to_vec)
            .unwrap_or_default(),
    );
    let requests = activity.clone();
    let service = app
        .map_request(move |mut req: http::Request<Incoming>| {
            req.extensions_mut().insert(peer.clone());
            req.extensions_mut().insert(ConnectInfo(remote));
            req
        })
        .map_future(move |response| {
            let guard = requests.begin();
            async move {
                let response = response.await;
                drop(guard);
                response
            }
        });
    let connection =
        builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    let mut connection = std::pin::pin!(connection);
    let result = loop {
        let left = activity.time_left(&limits);
        let closing = tokio::select! {
            result = connection.as_mut() => break result,
            () = stopped(&mut stop) => {
                connection.as_mut().graceful_shutdown();
                break connection.await;
            }
            () = activity.evicted() => "to make room for a new connection",
            () = activity.request_finished() => continue,
            () = tokio::time::sleep(left.unwrap_or(limits.idle_timeout)) => {
                match activity.time_left(&limits) {
                    Some(Duration::ZERO) => "idle for longer than the limit",
                    _ => continue,
                }
            }
        };
        tracing::debug!(%remote, why = closing, "closing connection");
        connection.as_mut().graceful_shutdown();
        break tokio::time::timeout(CLOSE_GRACE, connection.as_mut())
            .await
            .unwrap_or(Ok(()));
    };
    if let Err(err) = result {
        tracing::debug!(%remote, error = %err, "connection closed with an error");
    }
    drop(slot);
}
