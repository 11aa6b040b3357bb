//! Soak benchmark: the real `augur serve` binary in front of a real Prometheus (backfilled with
//! the NASA trace and `rules/demo.yaml`, as `.ci/demo`), loaded over HTTPS at a fixed rate for
//! a long time with custom, external and forecast-twin requests, nine in ten on keep-alive
//! connections and one in ten on a fresh connection (TLS handshake each), at most 64 in flight
//! (when augur falls behind, the rate shows it). Every 10 s it samples
//! augur's RSS and open file descriptors; at the end it prints errors, latency percentiles and
//! how far RSS and fds moved after the warm-up.
//!
//! Run: `cargo bench --bench soak` (2,000 req/s for 600 s; `-- --rate R --seconds S` for
//! others). Under `cargo test` it runs a short smoke case that asserts every answer is 200.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use augur::testing::{Killed, client_config, free_port, open_fds, percentile, status_kib};
use common::TestPrometheus;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

/// The routes, taken in turn.
const PATHS: [&str; 5] = [
    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/*/http_requests_per_second",
    "/apis/custom.metrics.k8s.io/v1beta1/namespaces/demo/services/web/http_requests_per_second",
    "/apis/external.metrics.k8s.io/v1beta1/namespaces/demo/service_requests_per_second?labelSelector=service%3Dweb",
    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/*/http_requests_per_second_forecast",
    "/apis/external.metrics.k8s.io/v1beta1/namespaces/demo/service_requests_per_second_forecast?labelSelector=service%3Dweb",
];

/// RSS and fds before this are the warm-up (connections opening, twins fitting).
const WARM_UP: Duration = Duration::from_secs(60);

/// Every how many requests one goes on a fresh connection.
const FRESH_EVERY: u64 = 10;

/// Most requests in flight at once.
const MAX_IN_FLIGHT: usize = 64;

fn run(command: &mut Command) {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn spawn(command: &mut Command, log: &Path) -> Killed {
    let log = std::fs::File::create(log).unwrap();
    Killed(
        command
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

/// Polls `ready` every 200 ms for up to 60 s.
async fn wait_for(what: &str, log: &Path, mut ready: impl AsyncFnMut() -> bool) {
    for _ in 0..300 {
        if ready().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "{what} did not become ready: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// The NASA trace ending 15 minutes from now, converted to OpenMetrics in `dir`, and a
/// Prometheus backfilled with it (the tests' `TestPrometheus`).
async fn prometheus(dir: &Path) -> TestPrometheus {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let end = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 900;
    let om = dir.join("trace.om");
    run(Command::new("python3")
        .arg(root.join("tests/fixtures/traces/csv2openmetrics.py"))
        .arg(root.join("tests/fixtures/traces/nasa_ksc_1995_07_10-13_60s.csv"))
        .arg("-o")
        .arg(&om)
        .args([
            "--metric",
            "http_requests_total",
            "--label",
            "namespace=demo",
        ])
        .args(["--label", "service=web", "--pods", "3", "--end-at"])
        .arg(end.to_string()));
    TestPrometheus::start(&std::fs::read_to_string(&om).unwrap())
}

/// Resident set size (KiB) and open file descriptors of process `pid`.
fn footprint(pid: u32) -> (u64, usize) {
    (status_kib(pid, "VmRSS"), open_fds(pid))
}

/// `(min, max, spread of max over min in percent)` of `values`.
fn spread(values: &[u64]) -> (u64, u64, f64) {
    let min = values.iter().copied().min().unwrap_or(0);
    let max = values.iter().copied().max().unwrap_or(0);
    (min, max, 100.0 * (max - min) as f64 / min.max(1) as f64)
}

fn arg(name: &str) -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap())
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rate = arg("--rate").unwrap_or(if full { 2000 } else { 100 });
    let seconds = arg("--seconds").unwrap_or(if full { 600 } else { 3 });
    augur::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let prometheus = prometheus(dir.path()).await;
    let prometheus_url = prometheus.url();

    let port = free_port();
    let log = dir.path().join("augur.log");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let augur = spawn(
        Command::new(env!("CARGO_BIN_EXE_augur"))
            .args(["serve", "--bind-address=127.0.0.1", "--metrics-max-age=1h"])
            .arg(format!(
                "--config={}",
                root.join("rules/demo.yaml").display()
            ))
            .arg(format!("--prometheus-url={prometheus_url}"))
            .arg(format!("--secure-port={port}"))
            .arg(format!("--cert-dir={}", dir.path().join("certs").display())),
        &log,
    );
    let pid = augur.0.id();
    let cert: PathBuf = dir.path().join("certs/apiserver.crt");
    wait_for("augur's certificate", &log, async || cert.exists()).await;
    let cert = CertificateDer::from_pem_file(&cert).unwrap();
    let builder = || {
        reqwest::Client::builder()
            .use_preconfigured_tls(client_config(std::slice::from_ref(&cert), None))
            .resolve("localhost", ([127, 0, 0, 1], port).into())
            .timeout(Duration::from_secs(10))
    };
    let keep_alive = builder().build().unwrap();
    // No idle connection is kept: every request opens (and handshakes) its own.
    let fresh = builder().pool_max_idle_per_host(0).build().unwrap();
    let origin = format!("https://localhost:{port}");
    let readyz = format!("{origin}/readyz");
    wait_for("augur", &log, async || {
        keep_alive
            .get(&readyz)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    for path in PATHS {
        let response = keep_alive
            .get(format!("{origin}{path}"))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        assert!(
            body["items"].as_array().is_some_and(|i| !i.is_empty()),
            "{path}: {body}"
        );
    }
    // The twins' first forecasts (fitted in the background; live values are served meanwhile,
    // after a short wait) before the clock starts.
    let metrics = format!("{origin}/metrics");
    wait_for("the first forecasts", &log, async || {
        let text = match keep_alive.get(&metrics).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        text.lines()
            .filter(|l| l.starts_with("augur_forecast_value{"))
            .count()
            >= 2
    })
    .await;
    let (rss, fds) = footprint(pid);
    println!(
        "soak: {rate} req/s for {seconds} s over HTTPS, {} routes, 1 in {FRESH_EVERY} on a fresh connection; augur pid {pid} at start: RSS {} KiB, {fds} fds",
        PATHS.len(),
        rss
    );

    let errors = Arc::new(AtomicU64::new(0));
    let first_errors = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let started = Instant::now();
    // RSS and fds every 10 s, until the load is over.
    let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sampler = {
        let samples = samples.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(10));
            loop {
                ticker.tick().await;
                let (rss, fds) = footprint(pid);
                let at = started.elapsed();
                println!("  t={:>4} s  RSS {rss:>7} KiB  fds {fds:>4}", at.as_secs());
                samples.lock().unwrap().push((at, rss, fds as u64));
            }
        })
    };

    // At most MAX_IN_FLIGHT requests at once, as a real client's pool: when augur falls
    // behind, the rate drops (and shows) instead of the client opening ever more connections.
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let mut ticker = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(usize::try_from(rate * seconds).unwrap());
    for i in 0..rate * seconds {
        ticker.tick().await;
        let permit = in_flight.clone().acquire_owned().await.unwrap();
        let client = if i % FRESH_EVERY == FRESH_EVERY - 1 {
            fresh.clone()
        } else {
            keep_alive.clone()
        };
        let url = format!("{origin}{}", PATHS[(i % PATHS.len() as u64) as usize]);
        let errors = errors.clone();
        let first_errors = first_errors.clone();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let outcome = match client.get(&url).send().await {
                Ok(response) if response.status() == 200 => response
                    .bytes()
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                Ok(response) => Err(format!("{url}: {}", response.status())),
                Err(e) => Err(format!("{url}: {e}")),
            };
            if let Err(e) = outcome {
                errors.fetch_add(1, Ordering::Relaxed);
                let mut first = first_errors.lock().unwrap();
                if first.len() < 5 {
                    first.push(e);
                }
            }
            drop(permit);
            t.elapsed()
        }));
    }
    let sent = started.elapsed();
    let mut latencies = Vec::with_capacity(tasks.len());
    for task in tasks {
        latencies.push(task.await.unwrap());
    }
    sampler.abort();
    let (rss, fds) = footprint(pid);
    samples
        .lock()
        .unwrap()
        .push((started.elapsed(), rss, fds as u64));
    latencies.sort();
    let errors = errors.load(Ordering::Relaxed);
    let samples = samples.lock().unwrap().clone();
    let after: Vec<_> = samples.iter().filter(|(at, ..)| *at >= WARM_UP).collect();
    let after = if after.is_empty() {
        samples.iter().collect()
    } else {
        after
    };
    let (rss_min, rss_max, rss_spread) = spread(&after.iter().map(|s| s.1).collect::<Vec<_>>());
    let (fds_min, fds_max, fds_spread) = spread(&after.iter().map(|s| s.2).collect::<Vec<_>>());
    println!(
        "sent {} requests in {sent:.1?} ({:.0} req/s); errors {errors}; latency p50 {:?} p90 {:?} p99 {:?} max {:?}",
        latencies.len(),
        latencies.len() as f64 / sent.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.90),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default(),
    );
    println!(
        "after the {WARM_UP:?} warm-up: RSS {rss_min}..{rss_max} KiB ({rss_spread:.1} %), fds {fds_min}..{fds_max} ({fds_spread:.1} %)"
    );
    let first_errors = first_errors.lock().unwrap();
    assert_eq!(errors, 0, "first errors: {first_errors:?}");
    drop(augur);
}
