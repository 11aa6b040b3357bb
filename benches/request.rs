//! Request-overhead benchmark: augur's full HTTPS path (TLS, routing, registry lookup, PromQL
//! rendering, result mapping, JSON) for a custom metric request, with an in-memory backend that
//! answers instantly, so all measured latency is augur's (plus the client's) own.
//! Phase 1: a fixed 1,000 req/s for 10 s, latency percentiles. Phase 2: saturation with 64
//! concurrent requests for 5 s, req/s. Client and server share the machine's cores.
//!
//! Run: `cargo bench --bench request`. Under `cargo test` it runs a short smoke case.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use augur::api::health::Health;
use augur::api::{AppState, router};
use augur::config::{self, UnknownResources};
use augur::prometheus::fake::{FakeBackend, labels, sample};
use augur::prometheus::{Backend, QueryResult};
use augur::resources::ResourceTable;
use augur::series::{Registry, RelistOptions, Relister, Snapshot};
use augur::telemetry::Metrics;
use augur::tls::TlsOptions;

const RULES: &str = r#"
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {matches: "^(.*)_total$", as: "${1}_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
"#;
const PATH: &str =
    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*/http_requests_per_second";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        augur::app::install_crypto_provider();
        let pods: Vec<String> = (0..10).map(|i| format!("web-{i}")).collect();
        let series: Vec<_> = pods
            .iter()
            .map(|p| labels(&[("__name__", "http_requests_total"), ("namespace", "default"), ("pod", p)]))
            .collect();
        let result = QueryResult::Vector(pods.iter().enumerate().map(|(i, p)| sample(&[("pod", p)], i as f64 + 0.5)).collect());
        let fake = FakeBackend::new()
            .with_series(r#"http_requests_total{namespace!="",pod!=""}"#, series)
            .with_query_fn(move |_, _| Ok(result.clone()));
        let backend: Arc<dyn Backend> = Arc::new(fake);
        let table = Arc::new(ResourceTable::builtin());
        let config = Arc::new(config::parse(RULES, "bench.yaml", &table, UnknownResources::Reject).unwrap());
        let registry = Arc::new(Registry::new(Snapshot::empty(config.clone(), table.clone())));
        let metrics = Arc::new(Metrics::new());
        let options = RelistOptions { interval: Duration::from_secs(60), max_age: Duration::from_secs(600), concurrency: 1 };
        Relister::new(backend.clone(), registry.clone(), table, options, metrics.clone()).relist(config).await;

        let dir = tempfile::tempdir().unwrap();
        let tls = TlsOptions { cert_file: None, key_file: None, cert_dir: dir.path().to_owned(), disable_http2: false }.load().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = router(AppState::new(registry, backend, metrics, Health::new()));
        tokio::spawn(augur::tls::serve(listener, tls, app, std::future::pending()));

        let cert = {
            use rustls_pki_types::pem::PemObject;
            rustls_pki_types::CertificateDer::from_pem_file(dir.path().join("apiserver.crt")).unwrap()
        };
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let client_config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let client = reqwest::Client::builder().tls_backend_preconfigured(client_config).http1_only().build().unwrap();
        let url = format!("https://localhost:{port}{PATH}");

        let first = client.get(&url).send().await.unwrap();
        assert_eq!(first.status(), 200);
        let body: serde_json::Value = first.json().await.unwrap();
        assert_eq!(body["items"].as_array().map(Vec::len), Some(10));
        assert_eq!(body["items"][9]["value"], "9500m");

        // Phase 1: fixed rate.
        let (rate, seconds) = if full { (1000u64, 10u64) } else { (200, 1) };
        let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
        let mut tasks = Vec::new();
        let started = Instant::now();
        for _ in 0..rate * seconds {
            ticker.tick().await;
            let client = client.clone();
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                let response = client.get(&url).send().await.unwrap();
                let ok = response.status() == 200;
                let _ = response.bytes().await.unwrap();
                (t.elapsed(), ok)
            }));
        }
        let mut latencies = Vec::new();
        for task in tasks {
            let (latency, ok) = task.await.unwrap();
            assert!(ok);
            latencies.push(latency);
        }
        let elapsed = started.elapsed();
        latencies.sort();
        println!(
            "fixed rate {rate} req/s for {seconds} s ({} requests in {elapsed:.2?}): p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
            latencies.len(),
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.90),
            percentile(&latencies, 0.99),
            latencies[latencies.len() - 1]
        );

        // Phase 2: saturation.
        let (concurrency, window) = if full { (64, Duration::from_secs(5)) } else { (8, Duration::from_millis(500)) };
        let deadline = Instant::now() + window;
        let mut workers = Vec::new();
        for _ in 0..concurrency {
            let client = client.clone();
            let url = url.clone();
            workers.push(tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < deadline {
                    let response = client.get(&url).send().await.unwrap();
                    assert_eq!(response.status(), 200);
                    let _ = response.bytes().await.unwrap();
                    done += 1;
                }
                done
            }));
        }
        let mut total = 0;
        for worker in workers {
            total += worker.await.unwrap();
        }
        println!(
            "saturation with {concurrency} concurrent requests: {:.0} req/s over {window:?} ({} cores shared by client and server)",
            total as f64 / window.as_secs_f64(),
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        );
    });
}
