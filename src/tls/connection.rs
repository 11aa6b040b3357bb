//! One connection: TLS handshake (bounded), then HTTP/1.1 or HTTP/2, each request carrying
//! the connection's [`PeerCertificates`] and `ConnectInfo<SocketAddr>`.

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

pub(super) async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    acceptor: TlsAcceptor,
    builder: auto::Builder<TokioExecutor>,
    app: Router,
    handshake_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(%remote, error = %err, "setting TCP_NODELAY failed");
    }
    let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => {
            tracing::debug!(%remote, error = %err, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%remote, timeout = ?handshake_timeout, "TLS handshake timed out");
            return;
        }
    };
    let peer = PeerCertificates::new(
        stream
            .get_ref()
            .1
            .peer_certificates()
            .map(<[CertificateDer<'static>]>::to_vec)
            .unwrap_or_default(),
    );
    let service = app.map_request(move |mut req: http::Request<Incoming>| {
        req.extensions_mut().insert(peer.clone());
        req.extensions_mut().insert(ConnectInfo(remote));
        req
    });
    let connection =
        builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopped(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(%remote, error = %err, "connection closed with an error");
    }
}
