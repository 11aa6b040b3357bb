//! `augur certs` through the real binary (files, caBundle, the printed kubectl command run
//! by the real kubectl), and serving-certificate rotation on a running `augur serve`: open
//! connections keep working while new ones get the new certificate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::support::{free_port, spawn_standalone, stdout_of};

fn augur(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn pem_certs(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// One DER TLV at the start of `der`: (tag, whole element, content, rest).
fn tlv(der: &[u8]) -> (u8, &[u8], &[u8], &[u8]) {
    let tag = der[0];
    let (len, header) = match der[1] {
        short if short < 0x80 => (usize::from(short), 2),
        long => {
            let n = usize::from(long & 0x7f);
            let len = der[2..2 + n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, 2 + n)
        }
    };
    (
        tag,
        &der[..header + len],
        &der[header..header + len],
        &der[header + len..],
    )
}

/// Serial number, issuer and subject (raw DER) of an X.509 certificate.
struct Identity {
    serial: Vec<u8>,
    issuer: Vec<u8>,
    subject: Vec<u8>,
}

fn identity(cert: &[u8]) -> Identity {
    let (_, _, certificate, _) = tlv(cert);
    let (_, _, tbs, _) = tlv(certificate);
    let (tag, _, _, mut rest) = tlv(tbs);
    let serial;
    if tag == 0xa0 {
        // [0] version, then the serial number.
        let (_, _, s, r) = tlv(rest);
        serial = s.to_vec();
        rest = r;
    } else {
        serial = tlv(tbs).2.to_vec();
    }
    let (_, _, _, rest) = tlv(rest); // signature algorithm
    let (_, issuer, _, rest) = tlv(rest);
    let (_, _, _, rest) = tlv(rest); // validity
    let (_, subject, _, _) = tlv(rest);
    Identity {
        serial,
        issuer: issuer.to_vec(),
        subject: subject.to_vec(),
    }
}

#[test]
fn certs_writes_files_prints_the_ca_bundle_and_kubectl_accepts_the_pair() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c");
    let out_arg = out.to_str().unwrap();
    let first = augur(&[
        "certs",
        "--namespace=monitoring",
        "--service=metrics",
        "--days=10",
        "--out",
        out_arg,
    ]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let stdout = text(&first.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with(&format!("wrote {out_arg}/ca.crt: CA \"augur-ca@")));
    assert!(lines[0].ends_with("\", valid 10 days"), "{}", lines[0]);
    assert_eq!(
        lines[1],
        format!(
            "wrote {out_arg}/tls.crt: serving certificate for metrics.monitoring.svc, metrics, metrics.monitoring, metrics.monitoring.svc.cluster.local"
        )
    );
    assert_eq!(
        lines[2],
        format!("wrote {out_arg}/tls.key: its private key (mode 0600)")
    );
    assert_eq!(
        lines[4],
        format!("caBundle for the APIService objects (base64 of {out_arg}/ca.crt):")
    );
    // The printed caBundle decodes (as Kubernetes decodes []byte fields) to ca.crt.
    let bundle: k8s_openapi::ByteString =
        serde_json::from_value(serde_json::Value::String(lines[5].to_owned())).unwrap();
    assert_eq!(bundle.0, std::fs::read(out.join("ca.crt")).unwrap());
    let mode = |name: &str| {
        std::fs::metadata(out.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(
        (mode("tls.key"), mode("tls.crt"), mode("ca.crt")),
        (0o600, 0o644, 0o644)
    );

    // The printed `kubectl create secret tls` runs (client-side) with the real kubectl,
    // which parses the certificate with Go's crypto/x509 and checks the key belongs to it.
    let create = lines
        .iter()
        .find_map(|l| l.strip_prefix("  kubectl "))
        .expect("a kubectl create secret line");
    assert_eq!(
        create,
        format!(
            "-n monitoring create secret tls metrics-tls --cert={out_arg}/tls.crt --key={out_arg}/tls.key"
        )
    );
    let secret = stdout_of(
        Command::new("/usr/bin/kubectl")
            .args(create.split(' '))
            .args(["--dry-run=client", "-o", "json"]),
    );
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_str(&secret).unwrap();
    let data = secret.data.unwrap();
    assert_eq!(
        data["tls.crt"].0,
        std::fs::read(out.join("tls.crt")).unwrap()
    );
    assert_eq!(secret.metadata.namespace.as_deref(), Some("monitoring"));

    // A second run refuses to overwrite, and changes nothing.
    let before = std::fs::read(out.join("tls.key")).unwrap();
    let again = augur(&["certs", "--out", out_arg]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        text(&again.stderr),
        format!(
            "augur: {out_arg}/ca.crt, {out_arg}/tls.crt, {out_arg}/tls.key already exist; pass --force to replace them (the CA being replaced stays trusted in the new ca.crt)\n"
        )
    );
    assert_eq!(std::fs::read(out.join("tls.key")).unwrap(), before);

    // --force replaces them; the replaced CA follows the new one in ca.crt.
    let old_ca = pem_certs(&out.join("ca.crt"));
    let forced = augur(&["certs", "--force", "--out", out_arg]);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert!(
        text(&forced.stdout)
            .lines()
            .next()
            .unwrap()
            .contains(", followed by the CA it replaces, valid 365 days"),
        "{}",
        text(&forced.stdout)
    );
    let new_ca = pem_certs(&out.join("ca.crt"));
    assert_eq!(new_ca.len(), 2);
    assert_eq!(new_ca[1], old_ca[0]);
    assert_ne!(new_ca[0], old_ca[0]);
    assert_ne!(std::fs::read(out.join("tls.key")).unwrap(), before);
}

/// A new TLS connection to augur as `augur.augur.svc` (the name kube-aggregator uses).
async fn connect(
    port: u16,
    roots: &[CertificateDer<'static>],
) -> std::io::Result<TlsStream<TcpStream>> {
    augur::testing::TlsClient::new(roots, b"http/1.1")
        .named("augur.augur.svc")
        .connect(("127.0.0.1", port))
        .await
}

fn served_certificate(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// One keep-alive HTTP/1.1 GET on an open connection: (status line, body).
async fn get(stream: &mut TlsStream<TcpStream>, path: &str) -> (String, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: augur.augur.svc\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte))
            .await
            .expect("response within 10s")
            .unwrap();
        assert_eq!(n, 1, "connection closed; got {:?}", text(&head));
        head.push(byte[0]);
    }
    let head = text(&head);
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("content-length");
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    (head.lines().next().unwrap().to_owned(), text(&body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_serving_certificate_reaches_new_connections_and_spares_open_ones() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let written = augur(&["certs", "--out", certs.to_str().unwrap()]);
    assert!(written.status.success(), "{}", text(&written.stderr));

    let server = Served::start(
        dir.path(),
        &[
            format!("--tls-cert-file={}", certs.join("tls.crt").display()),
            format!("--tls-private-key-file={}", certs.join("tls.key").display()),
        ],
    );

    let old_roots = pem_certs(&certs.join("ca.crt"));
    let old_cert = pem_certs(&certs.join("tls.crt")).remove(0);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut kept = loop {
        match connect(server.port, &old_roots).await {
            Ok(stream) => break stream,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "augur never accepted a TLS connection ({e}); log:\n{}",
                    server.log()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(served_certificate(&kept), old_cert);
    assert_eq!(
        get(&mut kept, "/livez").await,
        ("HTTP/1.1 200 OK".to_owned(), "ok".to_owned())
    );

    // An HTTP/2 client with its own pooled connection, opened before the rotation.
    let mut h2_config = augur::testing::client_config(&old_roots, None);
    h2_config.alpn_protocols = vec![b"h2".to_vec()];
    let h2 = reqwest::Client::builder()
        .tls_backend_preconfigured(h2_config)
        .tls_info(true)
        .resolve(
            "augur.augur.svc",
            std::net::SocketAddr::from(([127, 0, 0, 1], server.port)),
        )
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let url = format!("https://augur.augur.svc:{}/livez", server.port);
    let h2_get = || async {
        let response = h2.get(&url).send().await.unwrap();
        let version = response.version();
        let served = response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|i| i.peer_certificate())
            .unwrap()
            .to_vec();
        let status = response.status().as_u16();
        (version, status, served, response.text().await.unwrap())
    };
    assert_eq!(
        h2_get().await,
        (
            reqwest::Version::HTTP_2,
            200,
            old_cert.to_vec(),
            "ok".to_owned()
        )
    );

    // Rotate: a new CA and serving certificate replace the files augur serves.
    let rotated = augur(&["certs", "--force", "--out", certs.to_str().unwrap()]);
    assert!(rotated.status.success(), "{}", text(&rotated.stderr));
    let new_bundle = pem_certs(&certs.join("ca.crt"));
    let new_ca = new_bundle[0].clone();
    let new_cert = pem_certs(&certs.join("tls.crt")).remove(0);
    assert_ne!(new_cert, old_cert);

    // New connections get the new certificate once augur has noticed the change (it checks
    // the files at most once a second, on a handshake).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut fresh = loop {
        let stream = connect(server.port, &new_bundle).await.unwrap();
        if served_certificate(&stream) == new_cert {
            break stream;
        }
        assert!(
            Instant::now() < deadline,
            "new connections still get the old certificate; log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        get(&mut fresh, "/livez").await,
        ("HTTP/1.1 200 OK".to_owned(), "ok".to_owned())
    );
    let old_id = identity(&old_cert);
    let new_id = identity(&new_cert);
    assert_ne!(new_id.serial, old_id.serial);
    assert_eq!(new_id.issuer, identity(&new_ca).subject);
    assert_eq!(old_id.issuer, identity(&old_roots[0]).subject);
    assert_ne!(new_id.issuer, old_id.issuer);
    // The new certificate is trusted by the new CA alone.
    let only_new = connect(server.port, std::slice::from_ref(&new_ca))
        .await
        .unwrap();
    assert_eq!(served_certificate(&only_new), new_cert);

    // The connections opened before the rotation were not dropped: they keep working, on
    // the certificate they were opened with.
    for _ in 0..3 {
        assert_eq!(
            get(&mut kept, "/livez").await,
            ("HTTP/1.1 200 OK".to_owned(), "ok".to_owned())
        );
    }
    assert_eq!(served_certificate(&kept), old_cert);
    assert_eq!(
        h2_get().await,
        (
            reqwest::Version::HTTP_2,
            200,
            old_cert.to_vec(),
            "ok".to_owned()
        )
    );
    let log = server.log();
    assert_eq!(
        log.matches("reloaded serving certificate").count(),
        1,
        "{log}"
    );
}

/// A running `augur serve` on a free loopback port (its backend unreachable: liveness and
/// TLS do not depend on it), killed on drop; `tls` are extra flags (its serving
/// certificate), stderr in `dir`.
struct Served {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Served {
    fn start(dir: &Path, tls: &[String]) -> Served {
        let port = free_port();
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/api-rules.yaml");
        let log = dir.join(format!("augur-{port}.log"));
        let child = spawn_standalone(
            Command::new(env!("CARGO_BIN_EXE_augur"))
                .args([
                    "serve",
                    "--bind-address=127.0.0.1",
                    "--prometheus-url=http://127.0.0.1:9",
                    "--prometheus-timeout=1s",
                ])
                .arg(format!("--secure-port={port}"))
                .arg(format!("--config={}", config.display()))
                .args(tls),
            &log,
        );
        let served = Served { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "augur never listened on {port}; log:\n{}",
                served.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        served
    }

    /// What augur wrote to stderr so far.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `augur certs verify` against augur itself: the certificate `augur certs` made, checked
/// for the name kube-aggregator uses, with the caBundle as a file or as the APIService's
/// base64; then the two mistakes that leave an APIService Available while every request
/// fails: a certificate for another name, and a caBundle from another CA (or augur serving
/// its self-signed certificate).
#[test]
fn certs_verify_checks_a_running_augur_as_kube_aggregator_does() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let made = augur(&["certs", "--out", certs.to_str().unwrap()]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let ca = certs.join("ca.crt");
    let served = Served::start(
        dir.path(),
        &[
            format!("--tls-cert-file={}", certs.join("tls.crt").display()),
            format!("--tls-private-key-file={}", certs.join("tls.key").display()),
        ],
    );
    let url = served.url();
    let verify = |server_name: &str, bundle: &str| {
        augur(&[
            "certs",
            "verify",
            "--url",
            &url,
            "--server-name",
            server_name,
            "--ca-bundle",
            bundle,
        ])
    };

    let ok = verify("augur.augur.svc", ca.to_str().unwrap());
    assert!(
        ok.status.success(),
        "{}{}",
        text(&ok.stdout),
        text(&ok.stderr)
    );
    let report = text(&ok.stdout);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(
        lines[0],
        format!("server:      {url} (TLSv1_3, TLS13_AES_256_GCM_SHA384)")
    );
    assert_eq!(lines[1], "checked as:  augur.augur.svc");
    assert_eq!(
        lines[2],
        "certificate: CN=\"augur.augur.svc\", 1 in the chain"
    );
    assert_eq!(
        lines[3],
        format!("caBundle:    1 certificate(s), file {}", ca.display())
    );
    assert_eq!(
        lines[4],
        "result:      OK: kube-aggregator trusts this certificate for augur.augur.svc"
    );

    // The APIService's spec.caBundle form: base64 of the PEM.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&ca).unwrap());
    let ok = verify("augur.augur.svc", &b64);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("caBundle:    1 certificate(s), base64 caBundle"));

    // A certificate for another name: kube-aggregator checks <service>.<namespace>.svc.
    let wrong = verify("augur.monitoring.svc", ca.to_str().unwrap());
    assert_eq!(wrong.status.code(), Some(1));
    let report = text(&wrong.stdout);
    assert!(
        report.contains("result:      FAIL: invalid peer certificate: certificate not valid for name \"augur.monitoring.svc\"; certificate is only valid for DnsName(\"augur.augur.svc\")"),
        "{report}"
    );
    assert!(
        report.contains("why:         the certificate is for other names"),
        "{report}"
    );
    assert!(
        report.contains("the APIService still shows Available=True"),
        "{report}"
    );
    assert_eq!(
        text(&wrong.stderr),
        format!(
            "augur: {url} does not verify against the caBundle for augur.monitoring.svc: invalid peer certificate: certificate not valid for name \"augur.monitoring.svc\"; certificate is only valid for DnsName(\"augur.augur.svc\"), DnsName(\"augur\"), DnsName(\"augur.augur\") or DnsName(\"augur.augur.svc.cluster.local\")\n"
        )
    );

    // A caBundle from another `augur certs` run.
    let other = dir.path().join("other");
    assert!(
        augur(&["certs", "--out", other.to_str().unwrap()])
            .status
            .success()
    );
    let foreign = verify("augur.augur.svc", other.join("ca.crt").to_str().unwrap());
    assert_eq!(foreign.status.code(), Some(1));
    let report = text(&foreign.stdout);
    assert!(
        report.contains("result:      FAIL: invalid peer certificate: UnknownIssuer"),
        "{report}"
    );
    assert!(
        report.contains(
            "why:         the caBundle does not hold the CA that signed this certificate"
        ),
        "{report}"
    );

    // augur serving its self-signed certificate (no --tls-cert-file: the Secret is missing).
    let self_signed = Served::start(
        dir.path(),
        &[format!("--cert-dir={}", dir.path().join("self").display())],
    );
    let out = augur(&[
        "certs",
        "verify",
        "--url",
        &self_signed.url(),
        "--server-name=augur.augur.svc",
        "--ca-bundle",
        ca.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report = text(&out.stdout);
    assert!(report.contains("certificate: CN=\"localhost@"), "{report}");
    assert!(report.contains("UnknownIssuer"), "{report}");

    // What is not a caBundle, or not a server, is a clear error.
    let bad = verify("augur.augur.svc", "not base64!");
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stderr)
            .starts_with("augur: --ca-bundle: not a readable file, and not base64 of a PEM bundle"),
        "{}",
        text(&bad.stderr)
    );
    let closed = augur(&[
        "certs",
        "verify",
        &format!("--url=https://127.0.0.1:{}", free_port()),
        "--ca-bundle",
        ca.to_str().unwrap(),
    ]);
    assert_eq!(closed.status.code(), Some(1));
    assert!(
        text(&closed.stderr).starts_with("augur: connecting to 127.0.0.1:"),
        "{}",
        text(&closed.stderr)
    );
}
