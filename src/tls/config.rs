//! The rustls server configuration: options from the command line, ALPN, client-certificate
//! verification around a reloading certificate resolver.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ResolvesServerCert, WebPkiClientVerifier};

use super::key_pair::KeyPairFiles;
use super::reload::ReloadingCertResolver;
use super::self_signed::ensure_self_signed;
use super::{Error, Result};

/// Serving TLS options, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// `--tls-cert-file`: PEM certificate chain, leaf first.
    pub cert_file: Option<PathBuf>,
    /// `--tls-private-key-file`: PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// `--cert-dir`: where the self-signed pair lives when no files are given.
    pub cert_dir: PathBuf,
    /// `--disable-http2`: offer and serve only HTTP/1.1 (CVE-2023-44487).
    pub disable_http2: bool,
}

impl TlsOptions {
    /// The key pair files to serve: the given ones, or the self-signed pair in `cert_dir`
    /// (created, or replaced when unusable or close to expiry).
    pub fn key_pair_files(&self) -> Result<KeyPairFiles> {
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Ok(KeyPairFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None) => ensure_self_signed(&self.cert_dir),
            _ => Err(Error::Incomplete),
        }
    }

    /// Load the key pair and build the server configuration (no client certificates
    /// requested; see [`ServerTls::with_client_verifier`]).
    pub fn load(&self) -> Result<ServerTls> {
        self.load_with(Arc::new(rustls::crypto::ring::default_provider()))
    }

    /// [`TlsOptions::load`] with a given provider (the cipher suites of
    /// [`super::policy::ServingArgs::tls_policy`]).
    pub fn load_with(&self, provider: Arc<CryptoProvider>) -> Result<ServerTls> {
        let files = self.key_pair_files()?;
        let resolver = Arc::new(ReloadingCertResolver::new(files, provider.clone())?);
        ServerTls::new(
            resolver,
            WebPkiClientVerifier::no_client_auth(),
            provider,
            !self.disable_http2,
        )
    }
}

/// The serving TLS state: a rustls configuration around a reloading certificate resolver.
#[derive(Debug, Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    resolver: Arc<ReloadingCertResolver>,
    provider: Arc<CryptoProvider>,
    http2: bool,
}

impl ServerTls {
    /// Build from parts; `client_verifier` decides whether client certificates are requested.
    pub fn new(
        resolver: Arc<ReloadingCertResolver>,
        client_verifier: Arc<dyn ClientCertVerifier>,
        provider: Arc<CryptoProvider>,
        http2: bool,
    ) -> Result<Self> {
        let config = server_config(resolver.clone(), client_verifier, provider.clone(), http2)?;
        Ok(Self {
            config: Arc::new(config),
            resolver,
            provider,
            http2,
        })
    }

    /// The same key pair with another client-certificate verifier, e.g.
    /// `WebPkiClientVerifier::builder_with_provider(roots, provider).allow_unauthenticated()`
    /// for front-proxy authentication; the result of `verifier.build()` goes here.
    pub fn with_client_verifier(
        self,
        client_verifier: Arc<dyn ClientCertVerifier>,
    ) -> Result<Self> {
        Self::new(self.resolver, client_verifier, self.provider, self.http2)
    }

    /// The rustls configuration.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// The certificate resolver.
    pub fn resolver(&self) -> &Arc<ReloadingCertResolver> {
        &self.resolver
    }

    /// The crypto provider (ring).
    pub fn provider(&self) -> &Arc<CryptoProvider> {
        &self.provider
    }

    /// Whether HTTP/2 is offered.
    pub fn http2(&self) -> bool {
        self.http2
    }
}

/// ALPN protocols offered: `h2` and `http/1.1`, or only `http/1.1`.
pub fn alpn_protocols(http2: bool) -> Vec<Vec<u8>> {
    if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    }
}

/// A rustls server configuration (TLS 1.2 and 1.3, ring) using `cert_resolver` for the
/// serving certificate and `client_verifier` for optional client certificates.
pub fn server_config(
    cert_resolver: Arc<dyn ResolvesServerCert>,
    client_verifier: Arc<dyn ClientCertVerifier>,
    provider: Arc<CryptoProvider>,
    http2: bool,
) -> Result<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::Config)?
        .with_client_cert_verifier(client_verifier)
        .with_cert_resolver(cert_resolver);
    config.alpn_protocols = alpn_protocols(http2);
    Ok(config)
}
