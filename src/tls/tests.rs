//! Serving tests: self-signed fallback, key pair errors, ALPN, HTTP/2 and HTTP/1.1 over real
//! connections, certificate reload and graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use tokio::net::{TcpListener, TcpStream};

use super::reload::RELOAD_CHECK_INTERVAL;
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
fn client(roots: &[&CertificateDer<'static>], alpn: &[&[u8]], addr: SocketAddr) -> reqwest::Client {
    let roots: Vec<CertificateDer<'static>> = roots.iter().map(|r| (*r).clone()).collect();
    let mut config = crate::testing::client_config(&roots, None);
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

/// A server started by [`start`]: its address, and the way to stop it.
struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<Result<()>>,
}

/// Serves `app` with `tls` on a free loopback port until [`Running::shutdown`].
async fn start(tls: ServerTls, app: Router) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, tls, app, async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop: Some(stop),
        server,
    }
}

impl Running {
    /// Asks the server to shut down.
    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).unwrap();
        }
    }

    /// Shuts the server down and waits (at most 5 s) until it returns `Ok`.
    async fn join(mut self) {
        self.shutdown();
        tokio::time::timeout(Duration::from_secs(5), self.server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

/// GET /who: returns (HTTP version, served certificate DER, body).
async fn who(client: &reqwest::Client, addr: SocketAddr) -> (reqwest::Version, Vec<u8>, String) {
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

    let running = start(tls, app()).await;
    let addr = running.addr;

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

    running.join().await;
    // The listener is closed.
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn http2_disabled_serves_http1_only() {
    let dir = tempfile::tempdir().unwrap();
    let tls = options(dir.path(), true).load().unwrap();
    let cert = cert_der(&tls.resolver().files().cert);
    let running = start(tls, app()).await;
    let addr = running.addr;
    // Offering h2 first still ends up on HTTP/1.1.
    let client = client(&[&cert], &[b"h2", b"http/1.1"], addr);
    let (version, _, _) = who(&client, addr).await;
    assert_eq!(version, reqwest::Version::HTTP_11);
    running.join().await;
}

#[tokio::test]
async fn graceful_shutdown_lets_in_flight_requests_finish() {
    let dir = tempfile::tempdir().unwrap();
    let tls = options(dir.path(), false).load().unwrap();
    let cert = cert_der(&tls.resolver().files().cert);
    let slow = Router::new().route(
        "/who",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            "slow"
        }),
    );
    let mut running = start(tls, slow).await;
    let addr = running.addr;
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
    running.shutdown();
    assert_eq!(request.await.unwrap(), "slow");
    running.join().await;
}
