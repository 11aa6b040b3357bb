//! Clients that misbehave against the real accept loop: a TLS handshake and then silence,
//! an HTTP/2 preface and SETTINGS and then nothing, a request and then an idle HTTP/2
//! connection, more connections than the cap, plain HTTP on the HTTPS port. Each is closed
//! (or answered) within the limits, and real requests still get through.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;

use super::{ServeLimits, TlsOptions, serve_with};
use crate::testing::{TlsClient, plain_request};

/// A server with `limits` on a loopback port, and its certificate.
async fn start(limits: ServeLimits) -> (SocketAddr, CertificateDer<'static>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let tls = TlsOptions {
        cert_file: None,
        key_file: None,
        cert_dir: dir.path().to_owned(),
        disable_http2: false,
    }
    .load()
    .unwrap();
    let cert = CertificateDer::from_pem_file(&tls.resolver().files().cert).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/ok", get(|| async { "ok" }));
    tokio::spawn(serve_with(
        listener,
        tls,
        app,
        std::future::pending(),
        limits,
    ));
    (addr, cert, dir)
}

/// Completes a TLS handshake offering `alpn`, and sends nothing.
async fn handshake(
    addr: SocketAddr,
    cert: &CertificateDer<'static>,
    alpn: &[u8],
) -> TlsStream<TcpStream> {
    TlsClient::new(std::slice::from_ref(cert), alpn)
        .connect(addr)
        .await
        .unwrap()
}

/// Reads until the server closes the connection (EOF or an error); how long that took.
async fn closed_after<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the server kept the connection open");
    started.elapsed()
}

fn limits(first_request: u64, idle: u64, max: usize) -> ServeLimits {
    ServeLimits {
        first_request_timeout: Duration::from_millis(first_request),
        idle_timeout: Duration::from_millis(idle),
        max_connections: max,
        ..ServeLimits::default()
    }
}

/// The HTTP/2 client preface and an empty SETTINGS frame.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

#[tokio::test]
async fn a_handshake_then_silence_is_closed_after_the_first_request_timeout() {
    let (addr, cert, _dir) = start(limits(300, 60_000, 100)).await;
    let mut silent = handshake(addr, &cert, b"http/1.1").await;
    let took = closed_after(&mut silent, Duration::from_secs(10)).await;
    assert!(took >= Duration::from_millis(250), "{took:?}");
}

#[tokio::test]
async fn an_http2_preface_then_idle_is_closed() {
    let (addr, cert, _dir) = start(limits(300, 60_000, 100)).await;
    let mut idle = handshake(addr, &cert, b"h2").await;
    idle.write_all(PREFACE).await.unwrap();
    closed_after(&mut idle, Duration::from_secs(10)).await;
}

/// After a request, an HTTP/2 connection left idle gets a GOAWAY after `idle_timeout` and is
/// closed, not held for good.
#[tokio::test]
async fn an_idle_http2_connection_gets_goaway_after_the_idle_timeout() {
    let (addr, cert, _dir) = start(limits(60_000, 400, 100)).await;
    let mut h2 = handshake(addr, &cert, b"h2").await;
    h2.write_all(PREFACE).await.unwrap();
    // HEADERS, END_STREAM | END_HEADERS, stream 1: GET https://localhost/ok (HPACK: indexed
    // :method GET, :scheme https; :path and :authority as literals).
    let mut block = vec![0x82, 0x87, 0x44, 3];
    block.extend_from_slice(b"/ok");
    block.extend_from_slice(&[0x41, 9]);
    block.extend_from_slice(b"localhost");
    let mut frame = vec![0, 0, block.len() as u8, 0x01, 0x05, 0, 0, 0, 1];
    frame.extend_from_slice(&block);
    h2.write_all(&frame).await.unwrap();
    // Frames until the connection closes: a response on stream 1, then a GOAWAY.
    let mut received = Vec::new();
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), h2.read_to_end(&mut received))
        .await
        .expect("the idle connection was never closed")
        .ok();
    let mut frames = Vec::new();
    let mut at = 0;
    while at + 9 <= received.len() {
        let len = usize::from(received[at]) << 16
            | usize::from(received[at + 1]) << 8
            | usize::from(received[at + 2]);
        let stream = u32::from_be_bytes([
            received[at + 5],
            received[at + 6],
            received[at + 7],
            received[at + 8],
        ]) & 0x7fff_ffff;
        frames.push((received[at + 3], stream));
        at += 9 + len;
    }
    assert!(
        frames.contains(&(0x01, 1)),
        "no response HEADERS: {frames:?}"
    );
    // GOAWAY (then a PING the silent client never answers: it is dropped after the grace).
    let response = frames.iter().position(|f| *f == (0x01, 1));
    let goaway = frames.iter().position(|f| *f == (0x07, 0));
    assert!(
        goaway > response,
        "no GOAWAY after the response: {frames:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "{:?}",
        started.elapsed()
    );
}

/// With a cap of 3, three silent connections do not keep a real client out: the idlest is
/// closed to make room, and the real request is answered.
#[tokio::test]
async fn at_the_cap_real_requests_get_room() {
    let (addr, cert, _dir) = start(limits(60_000, 60_000, 3)).await;
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(handshake(addr, &cert, b"http/1.1").await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(crate::testing::client_config(
            std::slice::from_ref(&cert),
            None,
        ))
        .resolve("localhost", addr)
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/ok", addr.port());
    let response = tokio::time::timeout(Duration::from_secs(10), client.get(&url).send())
        .await
        .expect("the real request waited for the silent connections")
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "ok");
    // The oldest silent connection was the one closed.
    closed_after(&mut silent[0], Duration::from_secs(5)).await;
}

/// Plain HTTP on the HTTPS port gets kube-apiserver's answer as a `Status`, not TLS alert
/// bytes.
#[tokio::test]
async fn plain_http_gets_a_400_status() {
    let (addr, _cert, _dir) = start(ServeLimits::default()).await;
    let answer = plain_request(
        addr,
        "GET /apis HTTP/1.1\r\nHost: localhost\r\nUser-Agent: kubectl\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    let body = r#"{"apiVersion":"v1","kind":"Status","code":400,"message":"Client sent an HTTP request to an HTTPS server.","metadata":{},"reason":"BadRequest","status":"Failure"}"#;
    assert_eq!(
        answer,
        format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    );
}
