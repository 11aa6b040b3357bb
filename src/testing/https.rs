//! HTTPS for tests: a router served over TLS on a loopback port with a fresh self-signed
//! certificate, and clients that trust given certificates (and may present an identity).

use std::sync::Arc;

use axum::Router;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

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
