//! Serving HTTPS: rustls server config, self-signed fallback certificate, certificate reload, HTTP/1.1 and HTTP/2.
//!
//! [`TlsOptions::load`] resolves the serving key pair (given files, or a self-signed
//! certificate for `localhost` kept in `--cert-dir` like k8s.io/apiserver does) into a
//! [`ServerTls`]; [`serve`] runs the accept loop. The key pair is re-read when the files'
//! modification time or size changes (checked at most once per second, on handshake), so
//! rotated certificates apply to new connections while existing ones keep theirs. Each
//! request carries the connection's [`PeerCertificates`] and `ConnectInfo<SocketAddr>` as
//! extensions, for front-proxy authentication.

use std::fs;
use std::future::Future;
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

pub mod policy;

/// File name of the self-signed certificate in the certificate directory.
pub const SELF_SIGNED_CERT_FILE: &str = "apiserver.crt";
/// File name of the self-signed private key in the certificate directory.
pub const SELF_SIGNED_KEY_FILE: &str = "apiserver.key";
/// Names the self-signed certificate is valid for.
pub const SELF_SIGNED_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// How long a generated self-signed certificate is valid (k8s.io/apiserver uses a year).
pub const SELF_SIGNED_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// A self-signed certificate expiring sooner than this is regenerated at start.
const SELF_SIGNED_MIN_REMAINING: Duration = Duration::from_secs(24 * 3600);
/// Minimum time between two checks of the key pair files.
const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Errors of this module; messages name the file and the cause.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Only one of certificate and key file was given.
    #[error("--tls-cert-file and --tls-private-key-file must be given together")]
    Incomplete,
    /// A file could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A file or directory could not be written.
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A file is not valid PEM.
    #[error("parsing PEM in {}: {source}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: rustls_pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("no certificate found in {}", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key is unusable or does not match the certificate.
    #[error("key pair {} / {} is unusable: {source}", cert.display(), key.display())]
    KeyPair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// The cause.
        source: rustls::Error,
    },
    /// rcgen failed to create the self-signed certificate.
    #[error("generating a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls rejected the server configuration.
    #[error("building the TLS server configuration: {0}")]
    Config(rustls::Error),
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

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

/// The certificate and key files of a serving key pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPairFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
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
    /// [`policy::ServingArgs::tls_policy`]).
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

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

/// Read a PEM certificate chain and private key and check that they belong together.
pub fn load_key_pair(files: &KeyPairFiles, provider: &CryptoProvider) -> Result<CertifiedKey> {
    let cert_pem = read(&files.cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| Error::Pem {
            path: files.cert.clone(),
            source,
        })?;
    if chain.is_empty() {
        return Err(Error::NoCertificate {
            path: files.cert.clone(),
        });
    }
    let key_pem = read(&files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|source| Error::Pem {
        path: files.key.clone(),
        source,
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|source| Error::KeyPair {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    })
}

/// Modification time and size of both files; a change of either means "reload".
type Stamp = [(SystemTime, u64); 2];

fn stamp(files: &KeyPairFiles) -> io::Result<Stamp> {
    let one = |path: &Path| -> io::Result<(SystemTime, u64)> {
        let meta = fs::metadata(path)?;
        Ok((meta.modified()?, meta.len()))
    };
    Ok([one(&files.cert)?, one(&files.key)?])
}

#[derive(Debug)]
struct ReloadState {
    last_check: Instant,
    loaded: Option<Stamp>,
    failed: Option<Stamp>,
}

/// A [`ResolvesServerCert`] serving one key pair and re-reading it when its files change.
///
/// A handshake checks the files' modification times at most once per second (without
/// blocking when another handshake is already checking); a changed pair is loaded and used
/// for new handshakes, existing connections are untouched. A pair that fails to load is
/// logged once and the previous one stays in use.
#[derive(Debug)]
pub struct ReloadingCertResolver {
    files: KeyPairFiles,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
    state: Mutex<ReloadState>,
}

impl ReloadingCertResolver {
    /// Load the pair now; fails when it is unusable.
    pub fn new(files: KeyPairFiles, provider: Arc<CryptoProvider>) -> Result<Self> {
        let before = stamp(&files).ok();
        let key = load_key_pair(&files, &provider)?;
        Ok(Self {
            files,
            provider,
            current: ArcSwap::from_pointee(key),
            state: Mutex::new(ReloadState {
                last_check: Instant::now(),
                loaded: before,
                failed: None,
            }),
        })
    }

    /// The files being served.
    pub fn files(&self) -> &KeyPairFiles {
        &self.files
    }

    /// The key pair new handshakes get.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }

    /// Check the files now (ignoring the once-per-second limit); returns true when a new
    /// pair was loaded.
    pub fn reload_if_changed(&self) -> bool {
        match self.state.lock() {
            Ok(mut state) => self.check(&mut state),
            Err(poisoned) => self.check(&mut poisoned.into_inner()),
        }
    }

    fn maybe_reload(&self) {
        // A handshake never waits for another one's check.
        let Ok(mut state) = self.state.try_lock() else {
            return;
        };
        if state.last_check.elapsed() >= RELOAD_CHECK_INTERVAL {
            self.check(&mut state);
        }
    }

    fn check(&self, state: &mut ReloadState) -> bool {
        state.last_check = Instant::now();
        let now = match stamp(&self.files) {
            Ok(now) => now,
            Err(err) => {
                tracing::debug!(cert = %self.files.cert.display(), key = %self.files.key.display(), error = %err, "cannot stat serving key pair; keeping the current one");
                return false;
            }
        };
        if state.loaded == Some(now) || state.failed == Some(now) {
            return false;
        }
        match load_key_pair(&self.files, &self.provider) {
            Ok(key) => {
                self.current.store(Arc::new(key));
                state.loaded = Some(now);
                state.failed = None;
                tracing::info!(cert = %self.files.cert.display(), "reloaded serving certificate");
                true
            }
            Err(err) => {
                state.failed = Some(now);
                tracing::warn!(error = %err, "new serving key pair rejected; keeping the previous one");
                false
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.maybe_reload();
        Some(self.current())
    }
}

/// Use the self-signed pair in `cert_dir` when it is usable (loads, valid for `localhost`
/// for at least another day), else generate a new one there.
pub fn ensure_self_signed(cert_dir: &Path) -> Result<KeyPairFiles> {
    let files = self_signed_files(cert_dir);
    if files.cert.exists() && files.key.exists() {
        match self_signed_is_usable(&files) {
            Ok(()) => {
                tracing::info!(cert = %files.cert.display(), "using existing self-signed certificate");
                return Ok(files);
            }
            Err(reason) => {
                tracing::info!(cert = %files.cert.display(), %reason, "replacing self-signed certificate");
            }
        }
    }
    generate_self_signed(cert_dir)
}

fn self_signed_files(cert_dir: &Path) -> KeyPairFiles {
    KeyPairFiles {
        cert: cert_dir.join(SELF_SIGNED_CERT_FILE),
        key: cert_dir.join(SELF_SIGNED_KEY_FILE),
    }
}

fn self_signed_is_usable(files: &KeyPairFiles) -> Result<(), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = load_key_pair(files, &provider).map_err(|e| e.to_string())?;
    let leaf = key.end_entity_cert().map_err(|e| e.to_string())?.clone();
    let mut roots = RootCertStore::empty();
    roots.add(leaf.clone()).map_err(|e| e.to_string())?;
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| e.to_string())?;
    let at = SystemTime::now() + SELF_SIGNED_MIN_REMAINING;
    let at = at.duration_since(UNIX_EPOCH).map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    rustls::client::danger::ServerCertVerifier::verify_server_cert(
        verifier.as_ref(),
        &leaf,
        &key.cert[1..],
        &name,
        &[],
        UnixTime::since_unix_epoch(at),
    )
    .map(|_| ())
    .map_err(|e| format!("not valid for localhost for another day: {e}"))
}

/// Generate a new self-signed pair for `localhost`, `127.0.0.1` and `::1` in `cert_dir`
/// (created if missing), replacing any existing one; the key file is mode 0600.
pub fn generate_self_signed(cert_dir: &Path) -> Result<KeyPairFiles> {
    let files = self_signed_files(cert_dir);
    let (cert_pem, key_pem) = self_signed_pem()?;
    fs::create_dir_all(cert_dir).map_err(|source| Error::Write {
        path: cert_dir.to_owned(),
        source,
    })?;
    write_atomically(&files.key, key_pem.as_bytes(), 0o600)?;
    write_atomically(&files.cert, cert_pem.as_bytes(), 0o644)?;
    tracing::info!(cert = %files.cert.display(), "generated self-signed certificate");
    Ok(files)
}

/// A new self-signed certificate and its key, both PEM.
fn self_signed_pem() -> Result<(String, String)> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(
        SELF_SIGNED_NAMES
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>(),
    )?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + now.saturating_sub(Duration::from_secs(3600));
    params.not_after = epoch + now + SELF_SIGNED_VALIDITY;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("localhost@{}", now.as_secs()),
    );
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.serial_number = Some(rcgen::SerialNumber::from(
        now.as_nanos().to_be_bytes().to_vec(),
    ));
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    write_file_atomically(path, contents, mode).map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })
}

/// Write through a temporary file and rename, so readers (augur's reload, kustomize) never
/// see half a file; `mode` applies from creation on (a stale temporary file is replaced, not
/// reused with its old mode).
pub(crate) fn write_file_atomically(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

/// The client certificates a connection presented (leaf first); empty when none.
/// Inserted into every request's extensions by [`serve`].
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
    let acceptor = TlsAcceptor::from(tls.config.clone());
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    builder.http2().timer(TokioTimer::new());
    let builder = if tls.http2 {
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

/// Completes when shutdown is requested (or the accept loop is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send; drop it here, not across an await.
    let _ = stop.wait_for(|stop| *stop).await.is_ok();
}

async fn serve_connection(
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use axum::Extension;
    use axum::routing::get;
    use tokio::io::AsyncWriteExt as _;

    fn options(dir: &Path, disable_http2: bool) -> TlsOptions {
        TlsOptions {
            cert_file: None,
            key_file: None,
            cert_dir: dir.to_owned(),
            disable_http2,
        }
    }

    fn cert_der(path: &Path) -> CertificateDer<'static> {
        CertificateDer::from_pem_file(path).unwrap()
    }

    /// A client trusting `roots`, offering `alpn`, pinned to `addr` for `localhost`.
    fn client(
        roots: &[&CertificateDer<'static>],
        alpn: &[&[u8]],
        addr: SocketAddr,
    ) -> reqwest::Client {
        let mut store = RootCertStore::empty();
        for root in roots {
            store.add((*root).clone()).unwrap();
        }
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .tls_info(true)
            .resolve("localhost", addr);
        if alpn == [b"http/1.1".as_slice()] {
            builder = builder.http1_only();
        }
        builder.build().unwrap()
    }

    /// GET /who: returns (HTTP version, served certificate DER, body).
    async fn who(
        client: &reqwest::Client,
        addr: SocketAddr,
    ) -> (reqwest::Version, Vec<u8>, String) {
        let response = client
            .get(format!("https://localhost:{}/who", addr.port()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let version = response.version();
        let served = response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|info| info.peer_certificate())
            .unwrap()
            .to_vec();
        (version, served, response.text().await.unwrap())
    }

    fn app() -> Router {
        Router::new().route(
            "/who",
            get(
                |Extension(peer): Extension<PeerCertificates>,
                 ConnectInfo(remote): ConnectInfo<SocketAddr>| async move {
                    format!("port={} client_certs={}", remote.port(), peer.certs().len())
                },
            ),
        )
    }

    #[test]
    fn self_signed_is_created_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = options(dir.path(), false).key_pair_files().unwrap();
        assert_eq!(first.cert, dir.path().join("apiserver.crt"));
        assert_eq!(first.key, dir.path().join("apiserver.key"));
        let der = cert_der(&first.cert);
        let mode = fs::metadata(&first.key).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        // Reused as long as it is valid.
        options(dir.path(), false).key_pair_files().unwrap();
        assert_eq!(cert_der(&first.cert), der);
        // Replaced when unusable.
        fs::write(&first.cert, "garbage").unwrap();
        options(dir.path(), false).key_pair_files().unwrap();
        let replaced = cert_der(&first.cert);
        assert_ne!(replaced, der);
        load_key_pair(&first, &rustls::crypto::ring::default_provider()).unwrap();
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = options(dir.path(), false);
        opts.cert_file = Some(dir.path().join("tls.crt"));
        assert!(matches!(opts.load(), Err(Error::Incomplete)));
        opts.key_file = Some(dir.path().join("tls.key"));
        let err = opts.load().unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("reading {}/tls.crt: ", dir.path().display())),
            "{err}"
        );

        fs::write(dir.path().join("tls.crt"), "not pem").unwrap();
        let err = opts.load().unwrap_err().to_string();
        assert_eq!(
            err,
            format!("no certificate found in {}/tls.crt", dir.path().display())
        );

        // A valid certificate with somebody else's key.
        let a = generate_self_signed(&dir.path().join("a")).unwrap();
        let b = generate_self_signed(&dir.path().join("b")).unwrap();
        opts.cert_file = Some(a.cert);
        opts.key_file = Some(b.key);
        let err = opts.load().unwrap_err().to_string();
        assert!(
            err.starts_with("key pair ") && err.contains("is unusable"),
            "{err}"
        );
    }

    #[test]
    fn alpn_follows_disable_http2() {
        let dir = tempfile::tempdir().unwrap();
        let tls = options(dir.path(), false).load().unwrap();
        assert_eq!(
            tls.config().alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        let tls = options(dir.path(), true).load().unwrap();
        assert_eq!(tls.config().alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(!tls.http2());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serves_h2_and_http1_and_reloads_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let tls = options(dir.path(), false).load().unwrap();
        let files = tls.resolver().files().clone();
        let old_cert = cert_der(&files.cert);

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, tls, app(), async {
            let _ = stopped.await;
        }));

        // A failed handshake does not stop the server.
        let mut junk = TcpStream::connect(addr).await.unwrap();
        junk.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        drop(junk);

        // HTTP/2 over ALPN.
        let old_client = client(&[&old_cert], &[b"h2"], addr);
        let (version, served, body) = who(&old_client, addr).await;
        assert_eq!(version, reqwest::Version::HTTP_2);
        assert_eq!(served, old_cert.as_ref());
        assert!(body.ends_with("client_certs=0"), "{body}");
        let old_port = body.clone();

        // HTTP/1.1 over ALPN.
        let h1 = client(&[&old_cert], &[b"http/1.1"], addr);
        let (version, served, _) = who(&h1, addr).await;
        assert_eq!(version, reqwest::Version::HTTP_11);
        assert_eq!(served, old_cert.as_ref());

        // Rotate the pair on disk; after the check interval new connections get it.
        generate_self_signed(dir.path()).unwrap();
        let new_cert = cert_der(&files.cert);
        assert_ne!(new_cert, old_cert);
        tokio::time::sleep(RELOAD_CHECK_INTERVAL + Duration::from_millis(200)).await;
        let new_client = client(&[&old_cert, &new_cert], &[b"h2"], addr);
        let (_, served, _) = who(&new_client, addr).await;
        assert_eq!(served, new_cert.as_ref());

        // The old connection (same client port) still works and keeps the old certificate.
        let (_, served, body) = who(&old_client, addr).await;
        assert_eq!(served, old_cert.as_ref());
        assert_eq!(body, old_port);

        // A broken pair on disk is rejected and the current one stays in use.
        fs::write(
            &files.key,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        tokio::time::sleep(RELOAD_CHECK_INTERVAL + Duration::from_millis(200)).await;
        let another = client(&[&old_cert, &new_cert], &[b"h2", b"http/1.1"], addr);
        let (_, served, _) = who(&another, addr).await;
        assert_eq!(served, new_cert.as_ref());

        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        // The listener is closed.
        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn http2_disabled_serves_http1_only() {
        let dir = tempfile::tempdir().unwrap();
        let tls = options(dir.path(), true).load().unwrap();
        let cert = cert_der(&tls.resolver().files().cert);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, tls, app(), async {
            let _ = stopped.await;
        }));
        // Offering h2 first still ends up on HTTP/1.1.
        let client = client(&[&cert], &[b"h2", b"http/1.1"], addr);
        let (version, _, _) = who(&client, addr).await;
        assert_eq!(version, reqwest::Version::HTTP_11);
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn graceful_shutdown_lets_in_flight_requests_finish() {
        let dir = tempfile::tempdir().unwrap();
        let tls = options(dir.path(), false).load().unwrap();
        let cert = cert_der(&tls.resolver().files().cert);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let slow = Router::new().route(
            "/who",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(500)).await;
                "slow"
            }),
        );
        let server = tokio::spawn(serve(listener, tls, slow, async {
            let _ = stopped.await;
        }));
        let client = client(&[&cert], &[b"h2"], addr);
        let request = tokio::spawn(async move {
            client
                .get(format!("https://localhost:{}/who", addr.port()))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.send(()).unwrap();
        assert_eq!(request.await.unwrap(), "slow");
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}
