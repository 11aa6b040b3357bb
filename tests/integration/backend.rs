//! The HTTP backend against a real Prometheus and a real VictoriaMetrics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use augur::prometheus::{
    Backend, BackendOptions, Error, HttpBackend, LabelSet, QueryResult, SeriesList, Verb,
};
use augur::testing::{Identity, TestCa};

use prometheus_client::metrics::gauge::Gauge;

use crate::support::{Fixture, TestPrometheus, TestVictoria, fixture_series};

const TOLERANCE: f64 = 1e-9;

fn backend(url: &str) -> HttpBackend {
    HttpBackend::new(&BackendOptions::new(url, Duration::from_secs(5))).unwrap()
}

fn fixture() -> Fixture {
    fixture_series(SystemTime::now())
}

/// `label -> value` of a vector result, keyed by one label.
fn by_label(result: QueryResult, label: &str) -> BTreeMap<String, f64> {
    let QueryResult::Vector(samples) = result else {
        panic!("expected a vector, got {result:?}")
    };
    samples
        .into_iter()
        .map(|s| (s.labels.get(label).cloned().unwrap_or_default(), s.value))
        .collect()
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() < TOLERANCE,
        "{what}: expected {expected}, got {actual}"
    );
}

fn assert_web_rates(values: &BTreeMap<String, f64>) {
    assert_eq!(
        values.keys().collect::<Vec<_>>(),
        ["web-1", "web-2", "web-3"],
        "{values:?}"
    );
    assert_close(values["web-1"], 1.0, "web-1");
    assert_close(values["web-2"], 2.0, "web-2");
    assert_close(values["web-3"], 4.0, "web-3");
}

/// The label sets `series` must find for the two fixture metrics.
fn expected_series() -> Vec<LabelSet> {
    let set = |pairs: &[(&str, &str)]| -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let mut expected = vec![
        set(&[
            ("__name__", "http_requests_total"),
            ("namespace", "default"),
            ("pod", "web-1"),
            ("service", "web"),
        ]),
        set(&[
            ("__name__", "http_requests_total"),
            ("namespace", "default"),
            ("pod", "web-2"),
            ("service", "web"),
        ]),
        set(&[
            ("__name__", "http_requests_total"),
            ("namespace", "default"),
            ("pod", "web-3"),
            ("service", "web"),
        ]),
        set(&[
            ("__name__", "http_requests_total"),
            ("namespace", "other"),
            ("pod", "other-1"),
            ("service", "other"),
        ]),
        set(&[
            ("__name__", "queue_messages_ready"),
            ("namespace", "default"),
            ("queue", "orders"),
        ]),
        set(&[
            ("__name__", "queue_messages_ready"),
            ("namespace", "default"),
            ("queue", "payments"),
        ]),
    ];
    expected.sort();
    expected
}

/// A pod regex alternation of about `bytes` bytes that still matches web-1..3.
fn long_pod_regex(bytes: usize) -> String {
    let mut regex = String::from("web-1|web-2|web-3");
    let mut i = 0;
    while regex.len() < bytes {
        regex.push_str(&format!("|absent-pod-{i:05}"));
        i += 1;
    }
    regex
}

/// The range query both backends must answer alike: one label-less series, six points a
/// minute apart ending at the fixture's end, each 7 req/s.
async fn check_range(b: &HttpBackend, f: &Fixture, what: &str) {
    let end_secs = f
        .end
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let range = b
        .query_range(
            r#"sum(rate(http_requests_total{namespace="default"}[2m]))"#,
            f.end - Duration::from_secs(300),
            f.end,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(range.len(), 1);
    assert!(range[0].labels.is_empty());
    let times: Vec<f64> = range[0].points.iter().map(|p| p.0).collect();
    let expected_times: Vec<f64> = (0..6)
        .map(|i| end_secs - 300.0 + 60.0 * f64::from(i))
        .collect();
    assert_eq!(times, expected_times);
    for (_, v) in &range[0].points {
        assert_close(*v, 7.0, what);
    }
}

/// Checks shared by both backends: discovery, instant vector, range query.
async fn check_common(b: &HttpBackend, f: &Fixture) {
    let series = b
        .series(
            r#"{__name__=~"http_requests_total|queue_messages_ready"}"#,
            f.start,
        )
        .await
        .unwrap();
    // Discovery keeps names and label names only; values are never decoded.
    assert_eq!(series, SeriesList::from_label_sets(&expected_series()));
    assert_eq!(series.total, 6);

    let rates = b
        .query(
            r#"sum(rate(http_requests_total{namespace="default"}[2m])) by (pod)"#,
            f.end,
        )
        .await
        .unwrap();
    assert_web_rates(&by_label(rates, "pod"));

    let raw = by_label(
        b.query(r#"http_requests_total{namespace="default"}"#, f.end)
            .await
            .unwrap(),
        "pod",
    );
    assert_close(raw["web-1"], 2200.0, "web-1 counter");
    assert_close(raw["web-2"], 3400.0, "web-2 counter");
    assert_close(raw["web-3"], 5800.0, "web-3 counter");

    let queues = by_label(
        b.query("queue_messages_ready", f.end).await.unwrap(),
        "queue",
    );
    assert_eq!(queues.len(), 2);
    assert_close(queues["orders"], 50.0, "orders");
    assert_close(queues["payments"], 7.0, "payments");

    let ingress = by_label(
        b.query(
            "sum(rate(nginx_ingress_controller_requests[2m])) by (ingress)",
            f.end,
        )
        .await
        .unwrap(),
        "ingress",
    );
    assert_close(ingress["web"], 10.0, "ingress rate");

    let nothing = b
        .query(r#"queue_messages_ready{queue="absent"}"#, f.end)
        .await
        .unwrap();
    assert_eq!(nothing, QueryResult::Vector(vec![]));
}

#[tokio::test]
async fn prometheus_series_query_scalar_and_range() {
    let f = fixture();
    let prom = TestPrometheus::start(&f.openmetrics());
    // A path prefix with a trailing slash is accepted (Prometheus itself serves at the root).
    let b = backend(&format!("{}/", prom.url()));
    check_common(&b, &f).await;

    let scalar = b
        .query("scalar(sum(queue_messages_ready))", f.end)
        .await
        .unwrap();
    let QueryResult::Scalar(s) = scalar else {
        panic!("{scalar:?}")
    };
    assert_close(s.value, 57.0, "scalar");
    assert!(s.labels.is_empty());
    let end_secs = f
        .end
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert_close(s.timestamp, end_secs, "scalar timestamp");

    let budget = b.query("namespace_budget", f.end).await.unwrap();
    assert_close(by_label(budget, "namespace")["default"], 3.0, "budget");
    let nodes = by_label(b.query("node_load1", f.end).await.unwrap(), "node");
    assert_close(nodes["node-a"], 0.5, "node-a");
    assert_close(nodes["node-b"], 1.5, "node-b");

    check_range(&b, &f, "range point").await;

    // Verb::Post gives the same answers.
    let mut opts = BackendOptions::new(prom.url(), Duration::from_secs(5));
    opts.verb = Verb::Post;
    let post = HttpBackend::new(&opts).unwrap();
    let rates = post
        .query(
            r#"sum(rate(http_requests_total{namespace="default"}[2m])) by (pod)"#,
            f.end,
        )
        .await
        .unwrap();
    assert_web_rates(&by_label(rates, "pod"));
    assert_eq!(
        post.series("queue_messages_ready", f.start)
            .await
            .unwrap()
            .total,
        2
    );
}

#[tokio::test]
async fn prometheus_long_query_and_api_errors() {
    let f = fixture();
    let prom = TestPrometheus::start(&f.openmetrics());
    let b = backend(&prom.url());

    // ~6 KB of regex: over the 4096-byte GET limit, so the client POSTs the form.
    let regex = long_pod_regex(6 * 1024);
    let query = format!(r#"sum(rate(http_requests_total{{pod=~"{regex}"}}[2m])) by (pod)"#);
    assert!(query.len() > 6000);
    assert_web_rates(&by_label(b.query(&query, f.end).await.unwrap(), "pod"));
    let selector = format!(r#"http_requests_total{{pod=~"{regex}"}}"#);
    assert_eq!(b.series(&selector, f.start).await.unwrap().total, 3);

    // Invalid PromQL: HTTP 400 with Prometheus' JSON error.
    let err = b
        .query("sum(rate(http_requests_total[2m])", f.end)
        .await
        .unwrap_err();
    match &err {
        Error::Api {
            error_type,
            message,
        } => {
            assert_eq!(error_type, "bad_data");
            assert!(message.contains("parse error"), "{message}");
            assert!(message.contains("unclosed left parenthesis"), "{message}");
        }
        other => panic!("expected Error::Api, got {other:?}"),
    }
    // Execution errors (422) are Api errors too.
    let err = b
        .query(
            r#"label_replace(queue_messages_ready, "queue", "x", "namespace", ".*")"#,
            f.end,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Api { error_type, message }
            if error_type == "execution" && message.contains("same labelset")),
        "{err:?}"
    );
}

#[tokio::test]
async fn prometheus_killed_is_unreachable_then_restarts() {
    let f = fixture();
    let mut prom = TestPrometheus::start(&f.openmetrics());
    let b = backend(&prom.url());
    assert_eq!(
        by_label(
            b.query("queue_messages_ready", f.end).await.unwrap(),
            "queue"
        )
        .len(),
        2
    );

    prom.kill();
    // The first call may still pick the pooled keep-alive connection the kill closed
    // ("connection closed before message completed"); either way it is Unreachable, at once.
    let started = Instant::now();
    let first = b.query("queue_messages_ready", f.end).await.unwrap_err();
    assert!(matches!(first, Error::Unreachable { .. }), "{first:?}");
    // The query text (in the GET URL) stays out of error messages.
    assert!(
        !first.to_string().contains("queue_messages_ready"),
        "{first}"
    );
    let err = b.query("queue_messages_ready", f.end).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    match &err {
        Error::Unreachable { url, cause } => {
            assert_eq!(url, &format!("{}/api/v1/query", prom.url()));
            assert!(
                cause.to_lowercase().contains("connection refused"),
                "{cause}"
            );
        }
        other => panic!("expected Error::Unreachable, got {other:?}"),
    }
    assert!(err.is_unavailable());
    assert!(err.to_string().contains("unreachable"), "{err}");
    assert!(!err.to_string().contains("queue_messages_ready"), "{err}");
    assert!(b.series("up", f.start).await.unwrap_err().is_unavailable());

    prom.restart();
    let queues = by_label(
        b.query("queue_messages_ready", f.end).await.unwrap(),
        "queue",
    );
    assert_close(queues["orders"], 50.0, "orders after restart");
}

#[tokio::test]
async fn silent_server_times_out() {
    // Accepts TCP connections (kernel backlog) but never reads or answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let timeout = Duration::from_secs(1);
    let b = HttpBackend::new(&BackendOptions::new(url.clone(), timeout)).unwrap();
    let started = Instant::now();
    let err = b.query("up", SystemTime::now()).await.unwrap_err();
    let took = started.elapsed();
    match &err {
        Error::Timeout { url: called, after } => {
            assert_eq!(called, &format!("{url}/api/v1/query"));
            assert_eq!(*after, timeout);
        }
        other => panic!("expected Error::Timeout, got {other:?}"),
    }
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(1),
        "took {took:?}"
    );
    drop(listener);
}

/// What a one-shot fake server saw: request line, headers (lowercased names), body.
struct Captured {
    request_line: String,
    headers: BTreeMap<String, String>,
    body: String,
}

/// Serves exactly one request with `answer` (a JSON body) and returns what it received.
fn one_shot_server(answer: &'static str) -> (String, std::thread::JoinHandle<Captured>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let (head, body_start) = loop {
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed before the request head");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break (String::from_utf8_lossy(&buf[..pos]).into_owned(), pos + 4);
            }
        };
        let mut lines = head.lines();
        let request_line = lines.next().unwrap().to_owned();
        let headers: BTreeMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .get("content-length")
            .map_or(0, |v| v.parse().unwrap());
        let mut body = buf[body_start..].to_vec();
        while body.len() < length {
            let n = stream.read(&mut chunk).unwrap();
            body.extend_from_slice(&chunk[..n]);
        }
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
            answer.len()
        );
        stream.write_all(response.as_bytes()).unwrap();
        Captured {
            request_line,
            headers,
            body: String::from_utf8(body).unwrap(),
        }
    });
    (url, handle)
}

const EMPTY_VECTOR: &str = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;

#[tokio::test]
async fn wire_format_prefix_headers_and_verb_switch() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret\n").unwrap();

    // Short query: GET under the path prefix, token and tenant header sent.
    let (url, server) = one_shot_server(EMPTY_VECTOR);
    let mut opts = BackendOptions::new(format!("{url}/prom"), Duration::from_secs(5));
    opts.token_file = Some(token_file.clone());
    opts.headers = vec![("X-Scope-OrgID".into(), "tenant-a".into())];
    let b = HttpBackend::new(&opts).unwrap();
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
    b.query("up", at).await.unwrap();
    let seen = server.join().unwrap();
    assert_eq!(
        seen.request_line,
        "GET /prom/api/v1/query?query=up&time=1700000000.250 HTTP/1.1"
    );
    assert_eq!(seen.headers["authorization"], "Bearer s3cret");
    assert_eq!(seen.headers["x-scope-orgid"], "tenant-a");

    // Long query: same call switches to a POST form.
    let (url, server) = one_shot_server(EMPTY_VECTOR);
    let mut long_opts = opts.clone();
    long_opts.url = format!("{url}/prom");
    let b = HttpBackend::new(&long_opts).unwrap();
    let query = format!(r#"up{{pod=~"{}"}}"#, long_pod_regex(5000));
    b.query(&query, at).await.unwrap();
    let seen = server.join().unwrap();
    assert_eq!(seen.request_line, "POST /prom/api/v1/query HTTP/1.1");
    assert_eq!(
        seen.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(seen.headers["authorization"], "Bearer s3cret");
    let form: BTreeMap<String, String> = form_urlencoded::parse(seen.body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(form["query"], query);
    assert_eq!(form["time"], "1700000000.250");

    // Range queries: whole seconds (every caller asks whole seconds), step in seconds.
    let (url, server) = one_shot_server(
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"pod":"a"},"values":[[1700000000,"1"],[1700000060,"NaN"]]}]}}"#,
    );
    let b = backend(&format!("{url}/prom"));
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let range = b
        .query_range(
            "up",
            start,
            start + Duration::from_secs(600),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(range.len(), 1);
    assert_eq!(range[0].labels["pod"], "a");
    assert_eq!(range[0].points[0], (1_700_000_000.0, 1.0));
    assert!(range[0].points[1].1.is_nan());
    let seen = server.join().unwrap();
    assert_eq!(
        seen.request_line,
        "GET /prom/api/v1/query_range?query=up&start=1700000000&end=1700000600&step=60 HTTP/1.1"
    );

    // Series: match[] verbatim, start, no end.
    let (url, server) = one_shot_server(r#"{"status":"success","data":[]}"#);
    let b = backend(&url);
    assert!(b.series(r#"{__name__=~"a|b"}"#, at).await.unwrap().total == 0);
    let seen = server.join().unwrap();
    let query_string = seen
        .request_line
        .split(' ')
        .nth(1)
        .unwrap()
        .split_once('?')
        .unwrap()
        .1;
    let params: Vec<(String, String)> = form_urlencoded::parse(query_string.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(
        params,
        [
            ("match[]".to_owned(), r#"{__name__=~"a|b"}"#.to_owned()),
            ("start".to_owned(), "1700000000.250".to_owned())
        ]
    );
}

#[tokio::test]
async fn victoria_metrics_series_query_range_and_length_limit() {
    let f = fixture();
    let vm = TestVictoria::start(&f.prometheus_text());
    let b = backend(&vm.url());
    check_common(&b, &f).await;

    // Unlike Prometheus, VictoriaMetrics answers `scalar(...)` with a one-sample vector
    // without labels rather than resultType "scalar".
    let scalar = b
        .query("scalar(sum(queue_messages_ready))", f.end)
        .await
        .unwrap();
    let QueryResult::Vector(samples) = scalar else {
        panic!("{scalar:?}")
    };
    assert_eq!(samples.len(), 1);
    assert!(samples[0].labels.is_empty());
    assert_close(samples[0].value, 57.0, "VM scalar");
    check_range(&b, &f, "VM range point").await;

    // 6 KB: fine for VictoriaMetrics too (sent as POST).
    let regex = long_pod_regex(6 * 1024);
    let query = format!(r#"sum(rate(http_requests_total{{pod=~"{regex}"}}[2m])) by (pod)"#);
    assert_web_rates(&by_label(b.query(&query, f.end).await.unwrap(), "pod"));

    // Over 16 KB: VictoriaMetrics' -search.maxQueryLen (default 16384) rejects it, where
    // Prometheus has no such limit (prometheus-adapter #668).
    let regex = long_pod_regex(17 * 1024);
    let query = format!(r#"sum(rate(http_requests_total{{pod=~"{regex}"}}[2m])) by (pod)"#);
    // VictoriaMetrics 1.79 answers HTTP 422 with a JSON error whose errorType is "422":
    //   too long query; got 17460 bytes; mustn't exceed `-search.maxQueryLen=16384` bytes
    let err = b.query(&query, f.end).await.unwrap_err();
    match &err {
        Error::Api {
            error_type,
            message,
        } => {
            assert_eq!(error_type, "422");
            assert!(message.contains("too long query"), "{message}");
            assert!(message.contains("-search.maxQueryLen=16384"), "{message}");
        }
        other => panic!("expected Error::Api for a too long query, got {other:?}"),
    }
    // Prometheus has no such limit: see prometheus_long_query_and_api_errors.
}

/// A CA, a server certificate for localhost/127.0.0.1 and a client certificate.
struct Pki {
    ca: TestCa,
    server: Identity,
    client: Identity,
}

fn pki() -> Pki {
    let ca = TestCa::new("backend-ca");
    let server = ca.server(&["localhost", "127.0.0.1"]);
    let client = ca.client("augur", &[]);
    Pki { ca, server, client }
}

/// An HTTPS server answering every request with an empty vector; with `client_ca`, it
/// requires a client certificate signed by it.
async fn tls_server(pki: &Pki, client_ca: bool) -> String {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if client_ca {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(pki.ca.pem.as_bytes()).unwrap())
            .unwrap();
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(pki.server.cert.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(pki.server.key.as_bytes()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{EMPTY_VECTOR}",
                    EMPTY_VECTOR.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    url
}

#[tokio::test]
async fn tls_with_ca_file_and_client_certificate() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, pem: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path
    };
    let ca_file = write("ca.pem", &pki.ca.pem);
    let client = (
        write("client.pem", &pki.client.cert),
        write("client-key.pem", &pki.client.key),
    );

    // Server certificate from our CA: trusted with --prometheus-ca-file.
    let url = tls_server(&pki, false).await;
    let mut opts = BackendOptions::new(url.clone(), Duration::from_secs(5));
    opts.ca_file = Some(ca_file.clone());
    let result = HttpBackend::new(&opts)
        .unwrap()
        .query("up", SystemTime::now())
        .await
        .unwrap();
    assert_eq!(result, QueryResult::Vector(vec![]));

    // Without the CA file the system roots do not trust it: Unreachable naming the TLS cause.
    let err = backend(&url)
        .query("up", SystemTime::now())
        .await
        .unwrap_err();
    match &err {
        Error::Unreachable { cause, .. } => assert!(cause.contains("certificate"), "{cause}"),
        other => panic!("expected Error::Unreachable, got {other:?}"),
    }

    // A server requiring a client certificate accepts ours.
    let url = tls_server(&pki, true).await;
    let mut opts = BackendOptions::new(url.clone(), Duration::from_secs(5));
    opts.ca_file = Some(ca_file);
    let err = HttpBackend::new(&opts)
        .unwrap()
        .query("up", SystemTime::now())
        .await
        .unwrap_err();
    match &err {
        Error::Unreachable { cause, .. } => {
            assert!(cause.contains("CertificateRequired"), "{cause}")
        }
        other => panic!("expected Error::Unreachable without a client certificate, got {other:?}"),
    }
    opts.client_cert = Some(client);
    let result = HttpBackend::new(&opts)
        .unwrap()
        .query("up", SystemTime::now())
        .await
        .unwrap();
    assert_eq!(result, QueryResult::Vector(vec![]));
}

/// A keep-alive HTTP/1.1 server answering every request with an empty vector after `delay`;
/// counts the connections it accepted and the most requests it had in hand at once.
async fn slow_server(delay: Duration) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let busy = Arc::new(AtomicUsize::new(0));
    let most_busy = Arc::new(AtomicUsize::new(0));
    let (counted, most) = (connections.clone(), most_busy.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            connections.fetch_add(1, Ordering::SeqCst);
            let (busy, most_busy) = (busy.clone(), most_busy.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tcp.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    buf.drain(..end);
                    let now = busy.fetch_add(1, Ordering::SeqCst) + 1;
                    most_busy.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(delay).await;
                    busy.fetch_sub(1, Ordering::SeqCst);
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{EMPTY_VECTOR}",
                        EMPTY_VECTOR.len()
                    );
                    if tcp.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, counted, most)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_bounded_and_calls_queue() {
    let (url, connections, most_busy) = slow_server(Duration::from_millis(100)).await;
    let mut opts = BackendOptions::new(url, Duration::from_secs(10));
    opts.max_connections = 3;
    let (in_flight, queued) = (Gauge::default(), Gauge::default());
    let b = Arc::new(
        HttpBackend::new(&opts)
            .unwrap()
            .with_load_gauges(in_flight.clone(), queued.clone()),
    );
    let calls: Vec<_> = (0..30)
        .map(|_| {
            let b = b.clone();
            tokio::spawn(async move { b.query("up", SystemTime::now()).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // While the first three are answered, the others wait (queued, not failed).
    assert_eq!((in_flight.get(), queued.get()), (3, 27));
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), QueryResult::Vector(vec![]));
    }
    assert!(
        connections.load(Ordering::SeqCst) <= 3,
        "{} connections",
        connections.load(Ordering::SeqCst)
    );
    assert_eq!(most_busy.load(Ordering::SeqCst), 3);
    assert_eq!((in_flight.get(), queued.get()), (0, 0));
}

#[tokio::test]
async fn queued_calls_time_out_with_the_call_timeout() {
    // One connection, 300 ms per answer, a 1 s timeout: the first call is answered, the
    // fifth (whose turn comes after 1.2 s) times out while waiting.
    let (url, connections, _) = slow_server(Duration::from_millis(300)).await;
    let mut opts = BackendOptions::new(url.clone(), Duration::from_secs(1));
    opts.max_connections = 1;
    let b = HttpBackend::new(&opts).unwrap();
    let results = futures::future::join_all((0..5).map(|_| b.query("up", SystemTime::now()))).await;
    assert_eq!(results[0].as_ref().unwrap(), &QueryResult::Vector(vec![]));
    match &results[4] {
        Err(Error::Timeout { url: called, after }) => {
            assert_eq!(called, &format!("{url}/api/v1/query"));
            assert_eq!(*after, Duration::from_secs(1));
        }
        other => panic!("expected Error::Timeout, got {other:?}"),
    }
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}
