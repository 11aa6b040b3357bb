//! HTTPS for tests: a router served over TLS on a loopback port with a fresh self-signed
//! certificate, clients that trust given certificates (and may present an identity), raw TLS
//! connections for clients that misbehave or time each phase, and plain HTTP on a raw socket.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::ca::Identity;
use crate::tls::{ServerTls, TlsOptions};

/// A rustls client configuration (ring) trusting only `trusted`, presenting `identity` as its
/// client certificate when given.
pub fn client_config(
    trusted: &[CertificateDer<'static>],
    identity: Option<&Identity>,
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in trusted {
        roots.add(cert.clone()).expect("trusted certificate");
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots);
    match identity {
        Some(identity) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(identity.cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("identity certificate"),
                PrivateKeyDer::from_pem_slice(identity.key.as_bytes()).expect("identity key"),
            )
            .expect("client certificate"),
        None => builder.with_no_client_auth(),
    }
}

/// Raw TLS connections (no HTTP client on top): a connector trusting given certificates,
/// offering one ALPN protocol, for one server name (`localhost` unless [`named`](Self::named)).
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl TlsClient {
    /// Trusting `trusted`, offering `alpn` (`b"http/1.1"`, `b"h2"`).
    pub fn new(trusted: &[CertificateDer<'static>], alpn: &[u8]) -> Self {
        let mut config = client_config(trusted, None);
        config.alpn_protocols = vec![alpn.to_vec()];
        Self::from_config(config)
    }

    /// Over a client configuration of the caller's (session resumption off, for instance).
    pub fn from_config(config: rustls::ClientConfig) -> Self {
        Self {
            connector: TlsConnector::from(Arc::new(config)),
            name: ServerName::try_from("localhost").expect("localhost is a server name"),
        }
    }

    /// Verifying the server as `name` instead.
    pub fn named(mut self, name: &str) -> Self {
        self.name = ServerName::try_from(name.to_owned()).expect("a DNS name");
        self
    }

    /// The TLS handshake on an open TCP connection.
    pub async fn handshake(&self, tcp: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        self.connector.connect(self.name.clone(), tcp).await
    }

    /// A TCP connection to `addr`, then the TLS handshake.
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> std::io::Result<TlsStream<TcpStream>> {
        self.handshake(TcpStream::connect(addr).await?).await
    }
}

/// Sends `request` as it is on a new plain-TCP connection to `addr` (plain HTTP on the HTTPS
/// port, say) and returns everything the server answers until it closes the connection;
/// panics when that takes longer than `within`.
pub async fn plain_request(addr: impl ToSocketAddrs, request: &str, within: Duration) -> String {
    let mut plain = TcpStream::connect(addr).await.expect("TCP connection");
    plain
        .write_all(request.as_bytes())
        .await
        .expect("writing the request");
    let mut answer = String::new();
    tokio::time::timeout(within, plain.read_to_string(&mut answer))
        .await
        .expect("the server did not close the connection in time")
        .expect("reading the answer");
    answer
}

/// A reqwest client builder over [`client_config`] trusting the PEM certificates of
/// `trusted_pem`; the caller adds timeouts or `http1_only` and builds it.
pub fn https_client(trusted_pem: &str, identity: Option<&Identity>) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tls_backend_preconfigured(client_config(&pem_certificates(trusted_pem), identity))
}

/// The certificates of PEM text (for [`client_config`]).
pub fn pem_certificates(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("trusted PEM")
}

/// A router served over TLS on `127.0.0.1` until the runtime stops.
pub struct TlsServer {
    port: u16,
    cert_pem: String,
    _dir: tempfile::TempDir,
}

impl TlsServer {
    /// `https://localhost:PORT{path}` (the certificate is for `localhost`).
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The serving certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A client builder trusting the serving certificate (see [`https_client`]).
    pub fn client(&self, identity: Option<&Identity>) -> reqwest::ClientBuilder {
        https_client(&self.cert_pem, identity)
    }
}

/// Serves `app` over TLS with augur's own self-signed certificate (as `augur serve` makes
/// it without `--tls-cert-file`) on a free loopback port.
pub async fn serve_tls(app: Router) -> TlsServer {
    serve_tls_with(app, |tls| tls).await
}

/// [`serve_tls`] with the server TLS configuration passed through `configure` first (to
/// request client certificates, for instance).
pub async fn serve_tls_with(
    app: Router,
    configure: impl FnOnce(ServerTls) -> ServerTls,
) -> TlsServer {
    let dir = tempfile::tempdir().expect("certificate directory");
    let options = TlsOptions {
        cert_file: None,
        key_file: None,
        cert_dir: dir.path().to_owned(),
        disable_http2: false,
    };
    let files = options.key_pair_files().expect("self-signed pair");
    let cert_pem = std::fs::read_to_string(&files.cert).expect("serving certificate");
    let tls = configure(options.load().expect("server TLS"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("loopback listener");
    let port = listener.local_addr().expect("listener address").port();
    tokio::spawn(crate::tls::serve(
        listener,
        tls,
        app,
        std::future::pending(),
    ));
    TlsServer {
        port,
        cert_pem,
        _dir: dir,
    }
}
