//! The real binary against clients that misbehave at the connection level: more idle TLS
//! connections than a low open-file limit allows, a thousand idle connections that then
//! leave, and plain HTTP on the HTTPS port through a raw socket and the real kubectl.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use augur::testing::{TlsClient, plain_request, status_kib};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::support::{Augur, TestPrometheus, fixture_series, free_port, rules};

/// augur under `prlimit --nofile=LIMIT`, against a real Prometheus.
async fn start_with_file_limit(limit: u32) -> (Augur, TestPrometheus) {
    let series = fixture_series(std::time::SystemTime::now());
    let prometheus = TestPrometheus::start(&series.openmetrics());
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = Command::new("/usr/bin/prlimit");
    command
        .arg(format!("--nofile={limit}:{limit}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_augur"))
        .args(["serve", "--bind-address=127.0.0.1", "--metrics-max-age=1h"])
        .arg(format!("--secure-port={port}"))
        .arg(format!("--config={}", rules().display()))
        .arg(format!("--prometheus-url={}", prometheus.url()))
        .arg(format!("--cert-dir={}", dir.path().join("certs").display()));
    let cert = dir.path().join("certs/apiserver.crt");
    (Augur::launch(command, dir, port, cert).await, prometheus)
}

/// `n` clients that complete a TLS handshake with augur and send nothing (each handshake
/// within 10 s).
async fn silent_connections(augur: &Augur, n: usize) -> Vec<TlsStream<TcpStream>> {
    let cert = CertificateDer::from_pem_file(augur.cert()).unwrap();
    let client = TlsClient::new(std::slice::from_ref(&cert), b"http/1.1");
    let mut silent = Vec::with_capacity(n);
    for i in 0..n {
        let tls = tokio::time::timeout(
            Duration::from_secs(10),
            client.connect(("127.0.0.1", augur.port())),
        )
        .await
        .unwrap_or_else(|_| panic!("handshake {i} never completed:\n{}", augur.log()))
        .unwrap_or_else(|e| panic!("handshake {i}: {e}\n{}", augur.log()));
        silent.push(tls);
    }
    silent
}

/// With 256 open files allowed, 300 clients that complete a TLS handshake and send nothing
/// once made augur stop accepting (`Too many open files` every 100 ms) until they left. Now
/// the cap (160 = 256 less 64 and an eighth) closes the idlest to make room: a real request
/// is answered while they are all still trying, and the log says the limit was reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_beyond_the_open_file_limit_do_not_lock_out_requests() {
    let (augur, _prometheus) = start_with_file_limit(256).await;
    assert!(
        augur
            .log()
            .contains("accepting connections max_connections=160"),
        "{}",
        augur.log()
    );
    let mut silent = silent_connections(&augur, 300).await;
    let started = Instant::now();
    let (status, body) = tokio::time::timeout(
        Duration::from_secs(10),
        augur.get("/apis/custom.metrics.k8s.io/v1beta1"),
    )
    .await
    .unwrap_or_else(|_| panic!("no answer with 300 idle connections:\n{}", augur.log()));
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let log = augur.log();
    assert!(log.contains("connection limit reached"), "{log}");
    assert!(!log.contains("Too many open files"), "{log}");
    // The first silent connections were the ones closed.
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), silent[0].read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "{read:?}");
}

/// 1,000 clients complete a TLS handshake, send nothing and leave. glibc kept every byte
/// their connections had freed (anonymous RSS 28-40 MiB above the start after 3,000, for
/// good); now it is given back within seconds of them closing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_of_closed_connections_is_given_back() {
    let (augur, _prometheus) = start_with_file_limit(4096).await;
    let pid = augur.pid().unwrap();
    let before = status_kib(pid, "RssAnon");
    let idle = silent_connections(&augur, 1_000).await;
    let with = status_kib(pid, "RssAnon");
    assert!(
        with >= before + 8 * 1024,
        "1,000 connections took only {} KiB",
        with.saturating_sub(before)
    );
    drop(idle);
    // Given back: at most a third of what they took is still held, within 15 s.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut after = status_kib(pid, "RssAnon");
    while after > before + (with - before) / 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        after = status_kib(pid, "RssAnon");
    }
    assert!(
        after <= before + (with - before) / 3,
        "anonymous RSS {before} KiB before, {with} KiB with the connections, {after} KiB 15 s after they closed"
    );
}

const PLAIN_HTTP_STATUS: &str = r#"{"apiVersion":"v1","kind":"Status","code":400,"message":"Client sent an HTTP request to an HTTPS server.","metadata":{},"reason":"BadRequest","status":"Failure"}"#;

/// Plain HTTP to the HTTPS port gets kube-apiserver's 400 answer, which kubectl shows,
/// instead of TLS alert bytes (`malformed HTTP response "\x15\x03..."`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_gets_a_400_status_kubectl_shows() {
    let (augur, _prometheus) = start_with_file_limit(1024).await;
    let port = augur.port();

    let answer = plain_request(
        format!("127.0.0.1:{port}"),
        "GET /apis HTTP/1.1\r\nHost: localhost\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(answer.ends_with(PLAIN_HTTP_STATUS), "{answer}");

    let output = Command::new("/usr/bin/kubectl")
        .arg(format!("--server=http://127.0.0.1:{port}"))
        .args(["get", "--raw", "/apis"])
        .env("KUBECONFIG", "/dev/null")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "Error from server (BadRequest): Client sent an HTTP request to an HTTPS server.\n"
    );
}
