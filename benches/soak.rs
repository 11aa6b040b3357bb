//! Soak benchmark: the real `augur serve` binary in front of a real Prometheus (backfilled with
//! the NASA trace and `rules/demo.yaml`, as `.ci/demo`), loaded over HTTPS (HTTP/1.1) at a
//! fixed rate for a long time with custom, external and forecast-twin requests, nine in ten on
//! keep-alive connections and one in ten on a fresh connection (TCP connect and a full TLS
//! handshake each), at most 64 in flight (when augur falls behind, the rate and the schedule
//! lag show it).
//!
//! What it reports, so that a slow figure can be traced to where the time went:
//! - latency percentiles (p50, p90, p99, p99.9, max) per connection kind and per route, with
//!   a fresh connection's TCP connect and TLS handshake timed apart from its request;
//! - how late the load generator sent requests against its schedule (a starved client);
//! - augur's own handling time per route and Prometheus's answer time, from augur's
//!   `/metrics` histograms over the measured window;
//! - CPU used by augur, Prometheus and the load generator, and the load average;
//! - RSS and open fds every second (printed every 10 s): medians of the first minute after
//!   the warm-up and of the last minute (a leak is a trend between them), fds less the
//!   connections the client holds open (in-flight fresh connections make the raw count
//!   fluctuate), and both at rest before the load and after it stops.
//!
//! Run: `cargo bench --bench soak` (2,000 req/s for 10 minutes; `-- --rate R --minutes M`
//! or `--seconds S` for others). Under `cargo test` it runs a short smoke case that asserts
//! every answer is 200.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use augur::testing::{
    Killed, TlsClient, client_config, cpu_seconds, free_port, run_queue_wait_seconds, status_kib,
};
use bytes::Bytes;
use common::{TestPrometheus, get_text, load_average, metric_sum};
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use tokio::net::TcpStream;

/// The routes, taken in turn: a short name and the path.
const ROUTES: [(&str, &str); 5] = [
    (
        "custom pods",
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/*/http_requests_per_second",
    ),
    (
        "custom service",
        "/apis/custom.metrics.k8s.io/v1beta1/namespaces/demo/services/web/http_requests_per_second",
    ),
    (
        "external",
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/demo/service_requests_per_second?labelSelector=service%3Dweb",
    ),
    (
        "twin pods",
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/*/http_requests_per_second_forecast",
    ),
    (
        "twin external",
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/demo/service_requests_per_second_forecast?labelSelector=service%3Dweb",
    ),
];

/// The measurements start after this (connections opening, twins fitting), when the run is
/// at least twice as long; shorter runs are measured whole.
const WARM_UP: Duration = Duration::from_secs(60);

/// Every how many requests one goes on a fresh connection.
const FRESH_EVERY: u64 = 10;

/// Most requests in flight at once.
const MAX_IN_FLIGHT: usize = 64;

/// How often RSS and fds are sampled (every tenth sample is printed).
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// The minute the footprint medians are taken over.
const MINUTE: Duration = Duration::from_secs(60);

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

/// Waits (up to 3 minutes) until Prometheus has compacted the backfilled blocks, which it does
/// in its first compaction cycle, a minute after it starts: the block reload stalls queries
/// for about 100 ms (a p99 of 70 to 90 ms in that 10-s window), a start-up event of the
/// backfill rather than the steady state the soak measures. Done when compactions have run
/// and their count has not moved for 3 s.
async fn compacted(client: &reqwest::Client, prometheus: &str) {
    let url = format!("{prometheus}/metrics");
    let started = Instant::now();
    let mut last = -1.0;
    while started.elapsed() < Duration::from_secs(180) {
        let text = scrape(client, &url).await;
        let compactions = metric_sum(&text, "prometheus_tsdb_compactions_total", &[]);
        if compactions > 0.0 && compactions == last {
            println!(
                "Prometheus compacted the backfilled blocks ({compactions} compactions) {:.0?} after augur was ready",
                started.elapsed()
            );
            return;
        }
        last = compactions;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    println!("Prometheus did not compact within 3 minutes; measuring anyway");
}

/// GET `url`'s text, once more after a failure: a pooled keep-alive connection that augur
/// closes as idle at the moment a request is sent on it is reset under that request (seen
/// once, 10 s into a full run), and clients retry such a request as this does.
async fn scrape(client: &reqwest::Client, url: &str) -> String {
    let first = async {
        let response = client.get(url).send().await?.error_for_status()?;
        response.text().await
    };
    match first.await {
        Ok(text) => text,
        Err(e) => {
            println!("  ({url}: {e}; retried)");
            get_text(client, url).await
        }
    }
}

fn arg(name: &str) -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap())
}

/// Microseconds, saturated, for compact samples.
fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// One request: route, connection kind and where its time went (µs).
#[derive(Debug, Clone, Copy)]
struct Sample {
    route: u8,
    fresh: bool,
    /// Sent after the measured window opened.
    measured: bool,
    /// How long after its scheduled time the request was started.
    lag: u32,
    /// TCP connect; 0 on a reused connection.
    tcp: u32,
    /// TLS handshake; 0 on a reused connection.
    tls: u32,
    /// Request written to the whole body read.
    request: u32,
}

/// An HTTP/1.1 connection's request half.
type Sender = SendRequest<Empty<Bytes>>;

/// The load generator's connections: a FIFO of idle keep-alive connections (so each is used
/// in turn and none sits idle long enough for augur to close it), and fresh ones on demand.
struct Client {
    addr: SocketAddr,
    tls: TlsClient,
    idle: Mutex<VecDeque<Sender>>,
    /// Connections open on the client side now.
    open: Arc<AtomicUsize>,
    /// Keep-alive connections opened (the pool growing, or replacing a closed one).
    keep_alive_opened: AtomicU64,
}

impl Client {
    /// A new connection: `(sender, TCP connect time, TLS handshake time)`.
    async fn connect(&self) -> Result<(Sender, Duration, Duration), String> {
        let started = Instant::now();
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
        let tcp_time = started.elapsed();
        let tls = self
            .tls
            .handshake(tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        let tls_time = started.elapsed() - tcp_time;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("HTTP/1.1 handshake: {e}"))?;
        let open = self.open.clone();
        open.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let _ = connection.await;
            open.fetch_sub(1, Ordering::Relaxed);
        });
        Ok((sender, tcp_time, tls_time))
    }

    /// An idle keep-alive connection, or a new one (with its connect and handshake times).
    async fn keep_alive(&self) -> Result<(Sender, Duration, Duration), String> {
        loop {
            let idle = self.idle.lock().unwrap().pop_front();
            match idle {
                Some(sender) if !sender.is_closed() => {
                    return Ok((sender, Duration::ZERO, Duration::ZERO));
                }
                Some(_) => {}
                None => {
                    self.keep_alive_opened.fetch_add(1, Ordering::Relaxed);
                    return self.connect().await;
                }
            }
        }
    }
}

/// GET `path` on `sender`: the body's length, or why it failed.
async fn get(sender: &mut Sender, path: &str) -> Result<usize, String> {
    sender.ready().await.map_err(|e| format!("{path}: {e}"))?;
    let request = http::Request::get(path)
        .header(http::header::HOST, "localhost")
        .body(Empty::new())
        .unwrap();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("{path}: {e}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{path}: body: {e}"))?
        .to_bytes();
    if status != 200 {
        return Err(format!(
            "{path}: {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(body.len())
}

/// One request on its kind of connection.
async fn one(client: &Client, route: usize, fresh: bool) -> Result<(u32, u32, u32), String> {
    let (mut sender, tcp, tls) = if fresh {
        client.connect().await?
    } else {
        client.keep_alive().await?
    };
    let started = Instant::now();
    get(&mut sender, ROUTES[route].1).await?;
    let request = started.elapsed();
    if !fresh {
        client.idle.lock().unwrap().push_back(sender);
    }
    Ok((micros(tcp), micros(tls), micros(request)))
}

/// Percentiles of microsecond values (sorted here), in milliseconds: one table row.
fn row(label: &str, values: &mut [u32]) -> String {
    if values.is_empty() {
        return format!("  {label:<34} {:>9}", 0);
    }
    values.sort_unstable();
    let at = |p: f64| {
        let i = ((values.len() as f64 - 1.0) * p).round() as usize;
        f64::from(values[i.min(values.len() - 1)]) / 1000.0
    };
    format!(
        "  {label:<34} {:>9} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
        values.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(0.999),
        at(1.0),
    )
}

const HEADER: &str =
    "  (ms)                                       n      p50      p90      p99    p99.9      max";

/// Cumulative histogram buckets `(le, count)` of the histogram `name`, summed over its series
/// whose label text contains `label` (`route="/apis/` for every API route), from OpenMetrics
/// text.
fn buckets(text: &str, name: &str, label: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{");
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        if !labels.contains(label) {
            continue;
        }
        let le = labels
            .split(',')
            .find_map(|l| l.strip_prefix("le=\""))
            .map(|v| v.trim_end_matches('"'));
        let le = match le {
            Some("+Inf") => f64::INFINITY,
            Some(v) => v.parse().unwrap_or(f64::NAN),
            None => continue,
        };
        let count: f64 = value
            .split_whitespace()
            .next()
            .unwrap_or("0")
            .parse()
            .unwrap_or(0.0);
        out.push((le, count));
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out.dedup_by(|next, kept| {
        let same = next.0 == kept.0;
        if same {
            kept.1 += next.1;
        }
        same
    });
    out
}

/// The API routes' handling time and Prometheus's answer time in augur's `/metrics` text.
fn server_histograms(text: &str) -> [Vec<(f64, f64)>; 2] {
    [
        buckets(
            text,
            "augur_http_request_duration_seconds",
            "route=\"/apis/",
        ),
        buckets(
            text,
            "augur_prometheus_request_duration_seconds",
            "endpoint=\"query\"",
        ),
    ]
}

/// `after - before` bucket by bucket.
fn bucket_delta(before: &[(f64, f64)], after: &[(f64, f64)]) -> Vec<(f64, f64)> {
    after
        .iter()
        .map(|&(le, n)| {
            let was = before.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1);
            (le, n - was)
        })
        .collect()
}

/// The `q` quantile of cumulative buckets, interpolated within its bucket as PromQL's
/// `histogram_quantile` does (the top finite bound when it falls in `+Inf`).
fn bucket_quantile(buckets: &[(f64, f64)], q: f64) -> f64 {
    let total = buckets.last().map_or(0.0, |b| b.1);
    if total <= 0.0 {
        return f64::NAN;
    }
    let rank = q * total;
    let mut previous = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return previous.0;
            }
            let within = (rank - previous.1) / (count - previous.1).max(f64::MIN_POSITIVE);
            return previous.0 + (le - previous.0) * within;
        }
        previous = (le, count);
    }
    previous.0
}

/// One line of a server-side histogram over the window: count, share within 1, 5 and 10 ms,
/// and interpolated p50 and p99.
fn server_row(label: &str, buckets: &[(f64, f64)]) -> String {
    let total = buckets.last().map_or(0.0, |b| b.1);
    let within = |bound: f64| {
        buckets
            .iter()
            .find(|b| (b.0 - bound).abs() < 1e-9)
            .map_or(f64::NAN, |b| 100.0 * b.1 / total.max(1.0))
    };
    format!(
        "  {label:<34} {total:>9.0}   ≤1 ms {:>5.1} %  ≤5 ms {:>5.1} %  ≤10 ms {:>5.1} %  p50 ~{:.2} ms  p99 ~{:.2} ms",
        within(0.001),
        within(0.005),
        within(0.01),
        1000.0 * bucket_quantile(buckets, 0.5),
        1000.0 * bucket_quantile(buckets, 0.99),
    )
}

/// CPU seconds used and seconds spent waiting for a CPU, of each process.
fn cpu_times(pids: [u32; 3]) -> [(f64, f64); 3] {
    pids.map(|pid| (cpu_seconds(pid), run_queue_wait_seconds(pid)))
}

/// Open file descriptors of `pid`: `(all, sockets)`.
fn fds(pid: u32) -> (u64, u64) {
    let inodes = socket_inodes(pid);
    let all = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count);
    (all as u64, inodes.len() as u64)
}

/// The inodes of the sockets `pid` holds open.
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let target = std::fs::read_link(entry.path()).ok()?;
            let target = target.to_string_lossy();
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// How many of `pid`'s sockets are TCP connections to port `port` (its connections to the
/// backend), from `/proc/<pid>/net/tcp{,6}`.
fn connections_to(pid: u32, port: u16) -> usize {
    let inodes = socket_inodes(pid);
    let port = format!(":{port:04X}");
    ["tcp", "tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).ok())
        .map(|text| {
            text.lines()
                .skip(1)
                .filter(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    fields.get(2).is_some_and(|remote| remote.ends_with(&port))
                        && fields
                            .get(9)
                            .and_then(|inode| inode.parse::<u64>().ok())
                            .is_some_and(|inode| inodes.contains(&inode))
                })
                .count()
        })
        .sum()
}

/// One footprint sample.
#[derive(Debug, Clone, Copy)]
struct Footprint {
    at: Duration,
    rss_kib: u64,
    fds: u64,
    /// Connections the load generator held open at that moment.
    client_open: u64,
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// `(median of the first minute from `from`, median of the last minute, change in percent)`
/// of `value` over `samples`.
fn trend(samples: &[Footprint], from: Duration, value: impl Fn(&Footprint) -> u64) -> String {
    let end = samples.last().map_or(Duration::ZERO, |s| s.at);
    let first: Vec<u64> = samples
        .iter()
        .filter(|s| s.at >= from && s.at < from + MINUTE)
        .map(&value)
        .collect();
    let last: Vec<u64> = samples
        .iter()
        .filter(|s| s.at + MINUTE > end && s.at >= from)
        .map(&value)
        .collect();
    let after: Vec<u64> = samples
        .iter()
        .filter(|s| s.at >= from)
        .map(&value)
        .collect();
    let (first, last) = (median(first), median(last));
    format!(
        "median {first} in the first minute, {last} in the last ({:+.1} %); {}..{} after the warm-up",
        100.0 * (last as f64 - first as f64) / (first.max(1) as f64),
        after.iter().min().copied().unwrap_or(0),
        after.iter().max().copied().unwrap_or(0),
    )
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rate = arg("--rate").unwrap_or(if full { 2000 } else { 100 });
    let seconds = arg("--minutes")
        .map(|m| m * 60)
        .or_else(|| arg("--seconds"))
        .unwrap_or(if full { 600 } else { 3 });
    let measure_from = if Duration::from_secs(seconds) >= 2 * WARM_UP {
        WARM_UP
    } else {
        Duration::ZERO
    };
    augur::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let prometheus = prometheus(dir.path()).await;
    let prometheus_url = prometheus.url();
    let prometheus_pid = prometheus.pid().unwrap();

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
    // Control calls (readiness, /metrics) go through reqwest; the load through `Client`.
    let control = reqwest::Client::builder()
        .use_preconfigured_tls(client_config(std::slice::from_ref(&cert), None))
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let origin = format!("https://localhost:{port}");
    let readyz = format!("{origin}/readyz");
    wait_for("augur", &log, async || {
        control
            .get(&readyz)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    for (_, path) in ROUTES {
        let response = control.get(format!("{origin}{path}")).send().await.unwrap();
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
    let metrics_url = format!("{origin}/metrics");
    wait_for("the first forecasts", &log, async || {
        let text = match control.get(&metrics_url).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        text.lines()
            .filter(|l| l.starts_with("augur_forecast_value{"))
            .count()
            >= 2
    })
    .await;
    // Fresh connections get full handshakes, as a client without a session cache does (Go's
    // default): no resumption, the costlier case.
    let mut tls_config = client_config(std::slice::from_ref(&cert), None);
    tls_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tls_config.resumption = rustls::client::Resumption::disabled();
    let client = Arc::new(Client {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        tls: TlsClient::from_config(tls_config),
        idle: Mutex::new(VecDeque::new()),
        open: Arc::new(AtomicUsize::new(0)),
        keep_alive_opened: AtomicU64::new(0),
    });
    if full {
        compacted(&control, &prometheus_url).await;
    }
    // At rest before the load: control's own pooled connection is one of augur's sockets.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rest_fds, rest_sockets) = fds(pid);
    let prometheus_port: u16 = prometheus_url.rsplit(':').next().unwrap().parse().unwrap();
    let rest_backend = connections_to(pid, prometheus_port);
    let rest_rss = status_kib(pid, "VmRSS");
    println!(
        "soak: {rate} req/s for {seconds} s over HTTPS (HTTP/1.1), {} routes, 1 in {FRESH_EVERY} on a fresh connection (full TLS handshake), at most {MAX_IN_FLIGHT} in flight, measured after {measure_from:?}; augur pid {pid} at rest: RSS {rest_rss} KiB, {rest_fds} fds ({rest_sockets} sockets); load average {}",
        ROUTES.len(),
        load_average(),
    );

    let errors = Arc::new(AtomicU64::new(0));
    let first_errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let samples = Arc::new(Mutex::new(Vec::<Sample>::with_capacity(
        usize::try_from(rate * seconds).unwrap(),
    )));
    // Prometheus's log (its stderr, a file of the tests' TestPrometheus).
    let prometheus_log = std::fs::read_link(format!("/proc/{prometheus_pid}/fd/2")).unwrap();
    let logs_before = [&log, &prometheus_log].map(|l| std::fs::metadata(l).map_or(0, |m| m.len()));
    let started = Instant::now();
    println!(
        "load starts at {} (UNIX seconds; augur's and Prometheus's log lines during the load follow the figures)",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    );
    // RSS and fds every second, until the load is over.
    let footprints = Arc::new(Mutex::new(Vec::<Footprint>::new()));
    let sampler = {
        let footprints = footprints.clone();
        let open = client.open.clone();
        let samples = samples.clone();
        let control = control.clone();
        let metrics_url = metrics_url.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(SAMPLE_EVERY);
            let mut printed = 0;
            let mut histograms = server_histograms(&scrape(&control, &metrics_url).await);
            let mut refreshed = [0.0; 3];
            for n in 0u64.. {
                ticker.tick().await;
                let at = started.elapsed();
                let sample = Footprint {
                    at,
                    rss_kib: status_kib(pid, "VmRSS"),
                    fds: fds(pid).0,
                    client_open: open.load(Ordering::Relaxed) as u64,
                };
                if n % 10 == 0 {
                    // augur's and Prometheus's share of the last 10 s, from augur's histograms.
                    let text = scrape(&control, &metrics_url).await;
                    let now = server_histograms(&text);
                    // Forecast refreshes (fetch and fit, in the background) in the last 10 s.
                    let refreshing = [
                        metric_sum(&text, "augur_forecast_refresh_duration_seconds_count", &[]),
                        metric_sum(&text, "augur_forecast_refresh_duration_seconds_sum", &[]),
                        metric_sum(&text, "augur_forecast_compute_seconds_total", &[]),
                    ];
                    let refreshes = (
                        refreshing[0] - refreshed[0],
                        1000.0 * (refreshing[1] - refreshed[1]),
                        1000.0 * (refreshing[2] - refreshed[2]),
                    );
                    refreshed = refreshing;
                    let server = |i: usize| {
                        1000.0 * bucket_quantile(&bucket_delta(&histograms[i], &now[i]), 0.99)
                    };
                    let (augur_p99, prometheus_p99) = (server(0), server(1));
                    histograms = now;
                    // The requests answered since the last line: when the tail comes.
                    let mut recent: Vec<u32> = {
                        let samples = samples.lock().unwrap();
                        let recent = samples[printed.min(samples.len())..]
                            .iter()
                            .map(|s| s.request)
                            .collect();
                        printed = samples.len();
                        recent
                    };
                    recent.sort_unstable();
                    let ms = |p: f64| {
                        recent
                            .get(((recent.len() as f64 - 1.0) * p).round() as usize)
                            .map_or(0.0, |&v| f64::from(v) / 1000.0)
                    };
                    println!(
                        "  t={:>4} s  RSS {:>6} KiB  fds {:>3} (client holds {:>3})  requests p50 {:>5.2} p99 {:>6.2} max {:>6.2} ms, p99 in augur ~{augur_p99:>5.1} ms, Prometheus ~{prometheus_p99:>5.1} ms; {:.0} forecast refreshes ({:.0} ms, {:.0} ms computing); load {}",
                        at.as_secs(),
                        sample.rss_kib,
                        sample.fds,
                        sample.client_open,
                        ms(0.5),
                        ms(0.99),
                        ms(1.0),
                        refreshes.0,
                        refreshes.1,
                        refreshes.2,
                        load_average().split(' ').next().unwrap_or(""),
                    );
                }
                footprints.lock().unwrap().push(sample);
            }
        })
    };
    // augur's histograms and the CPU times when the measured window opens.
    let window_start = {
        let control = control.clone();
        let metrics_url = metrics_url.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until((started + measure_from).into()).await;
            let cpu = cpu_times([pid, prometheus_pid, std::process::id()]);
            (scrape(&control, &metrics_url).await, cpu, Instant::now())
        })
    };

    // At most MAX_IN_FLIGHT requests at once, as a real client's pool: when augur falls
    // behind, the rate drops (and the lag shows it) instead of the client opening ever more
    // connections.
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let period = Duration::from_nanos(1_000_000_000 / rate);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..rate * seconds {
        ticker.tick().await;
        let permit = in_flight.clone().acquire_owned().await.unwrap();
        let scheduled = period * u32::try_from(i).unwrap();
        let lag = started.elapsed().saturating_sub(scheduled);
        // Each route in turn, shifted by one every FRESH_EVERY requests so that fresh
        // connections go to every route too.
        let route = ((i + i / FRESH_EVERY) % ROUTES.len() as u64) as usize;
        let fresh = i % FRESH_EVERY == FRESH_EVERY - 1;
        let client = client.clone();
        let errors = errors.clone();
        let first_errors = first_errors.clone();
        let samples = samples.clone();
        tokio::spawn(async move {
            match one(&client, route, fresh).await {
                Ok((tcp, tls, request)) => samples.lock().unwrap().push(Sample {
                    route: route as u8,
                    fresh,
                    measured: scheduled >= measure_from,
                    lag: micros(lag),
                    tcp,
                    tls,
                    request,
                }),
                Err(e) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                    let mut first = first_errors.lock().unwrap();
                    if first.len() < 5 {
                        first.push(e);
                    }
                }
            }
            drop(permit);
        });
    }
    let sent = started.elapsed();
    // Every request answered: all permits back.
    let _all = in_flight
        .acquire_many(u32::try_from(MAX_IN_FLIGHT).unwrap())
        .await
        .unwrap();
    let window = window_start.await.unwrap();
    let window_end = Instant::now();
    let cpu_end = cpu_times([pid, prometheus_pid, std::process::id()]);
    let metrics_end = scrape(&control, &metrics_url).await;
    sampler.abort();
    let load_at_end = load_average();

    // At rest after the load: the client's keep-alive connections closed.
    let held = client.idle.lock().unwrap().len();
    client.idle.lock().unwrap().clear();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if fds(pid).0 <= rest_fds && client.open.load(Ordering::Relaxed) == 0 {
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after_rest = fds(pid);
    let after_backend = connections_to(pid, prometheus_port);
    let after_rss = status_kib(pid, "VmRSS");

    let errors = errors.load(Ordering::Relaxed);
    let samples = samples.lock().unwrap().clone();
    let total = samples.len() as u64 + errors;
    println!(
        "sent {total} requests in {sent:.1?} ({:.0} req/s); errors {errors}; keep-alive connections opened {}; load average at the end {load_at_end}",
        total as f64 / sent.as_secs_f64(),
        client.keep_alive_opened.load(Ordering::Relaxed),
    );
    let measured: Vec<&Sample> = samples.iter().filter(|s| s.measured).collect();
    let collect = |keep: &dyn Fn(&Sample) -> bool, value: &dyn Fn(&Sample) -> u32| {
        measured
            .iter()
            .filter(|s| keep(s))
            .map(|s| value(s))
            .collect::<Vec<u32>>()
    };
    println!(
        "client-side latency, requests sent from {measure_from:?} on ({} of {}):",
        measured.len(),
        samples.len()
    );
    println!("{HEADER}");
    println!(
        "{}",
        row(
            "keep-alive: request",
            &mut collect(&|s| !s.fresh, &|s| s.request)
        )
    );
    println!(
        "{}",
        row("fresh: TCP connect", &mut collect(&|s| s.fresh, &|s| s.tcp))
    );
    println!(
        "{}",
        row(
            "fresh: TLS handshake",
            &mut collect(&|s| s.fresh, &|s| s.tls)
        )
    );
    println!(
        "{}",
        row("fresh: request", &mut collect(&|s| s.fresh, &|s| s.request))
    );
    println!(
        "{}",
        row(
            "fresh: connect + handshake + request",
            &mut collect(&|s| s.fresh, &|s| s.tcp + s.tls + s.request)
        )
    );
    println!(
        "{}",
        row(
            "all: request (no handshake)",
            &mut collect(&|_| true, &|s| s.request)
        )
    );
    println!(
        "{}",
        row(
            "all: as the client saw it",
            &mut collect(&|_| true, &|s| s.tcp + s.tls + s.request)
        )
    );
    println!(
        "{}",
        row(
            "schedule lag (sent late by)",
            &mut collect(&|_| true, &|s| s.lag)
        )
    );
    println!("per route, request only (no handshake):");
    println!("{HEADER}");
    for (index, (name, _)) in ROUTES.iter().enumerate() {
        for fresh in [false, true] {
            let label = format!("{name}, {}", if fresh { "fresh" } else { "keep-alive" });
            println!(
                "{}",
                row(
                    &label,
                    &mut collect(
                        &|s| usize::from(s.route) == index && s.fresh == fresh,
                        &|s| { s.request }
                    )
                )
            );
        }
    }

    let (metrics_start, cpu_start, at_start) = window;
    let wall = window_end.duration_since(at_start).as_secs_f64();
    println!(
        "augur's own handling time over the window (augur_http_request_duration_seconds, buckets 0.5/1/2.5/5/10/25 ms…):"
    );
    let mut routes = BTreeSet::new();
    for line in metrics_end.lines() {
        if let Some(rest) = line.strip_prefix("augur_http_request_duration_seconds_count{")
            && let Some(route) = rest.split('"').nth(1)
        {
            routes.insert(route.to_owned());
        }
    }
    for route in &routes {
        let label = format!("route=\"{route}\"");
        let name = "augur_http_request_duration_seconds";
        let delta = bucket_delta(
            &buckets(&metrics_start, name, &label),
            &buckets(&metrics_end, name, &label),
        );
        if delta.last().is_some_and(|b| b.1 > 0.0) {
            let short = route.trim_start_matches("/apis/");
            println!("{}", server_row(short, &delta));
        }
    }
    let name = "augur_prometheus_request_duration_seconds";
    let query = bucket_delta(
        &buckets(&metrics_start, name, "endpoint=\"query\""),
        &buckets(&metrics_end, name, "endpoint=\"query\""),
    );
    println!("Prometheus's answer time as augur saw it (same window):");
    println!("{}", server_row("instant queries", &query));
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "CPU over the window ({wall:.0} s, {cores} cores on this machine): cores used, and time runnable but waiting for a CPU per request answered:"
    );
    let answered = measured.len().max(1) as f64;
    for (index, who) in ["augur", "Prometheus", "load generator"].iter().enumerate() {
        let (cpu, wait) = (
            cpu_end[index].0 - cpu_start[index].0,
            cpu_end[index].1 - cpu_start[index].1,
        );
        println!(
            "  {who:<15} {:.2} cores ({:.0} µs CPU per request), waited {:.1} s for a CPU ({:.0} µs per request)",
            cpu / wall,
            1e6 * cpu / answered,
            wait,
            1e6 * wait / answered,
        );
    }

    let footprints = footprints.lock().unwrap().clone();
    println!("augur's footprint (sampled every {SAMPLE_EVERY:?}, from {measure_from:?}):");
    println!(
        "  RSS KiB: {}",
        trend(&footprints, measure_from, |s| s.rss_kib)
    );
    println!("  fds: {}", trend(&footprints, measure_from, |s| s.fds));
    println!(
        "  fds less the client's open connections: {}",
        trend(&footprints, measure_from, |s| s
            .fds
            .saturating_sub(s.client_open))
    );
    println!(
        "  at rest: before the load {rest_fds} fds ({rest_sockets} sockets, {rest_backend} to Prometheus), RSS {rest_rss} KiB; after it ({held} keep-alive connections closed) {} fds ({} sockets, {after_backend} to Prometheus: idle in augur's pool, at most --prometheus-max-connections), RSS {after_rss} KiB",
        after_rest.0, after_rest.1
    );

    for (who, path, before) in [
        ("augur", &log, logs_before[0]),
        ("Prometheus", &prometheus_log, logs_before[1]),
    ] {
        let text = std::fs::read(path).unwrap_or_default();
        let during = String::from_utf8_lossy(text.get(before as usize..).unwrap_or_default());
        let lines: Vec<&str> = during.lines().collect();
        println!(
            "{who}'s log during the load ({} lines, the last 20):",
            lines.len()
        );
        for line in &lines[lines.len().saturating_sub(20)..] {
            println!("  {line}");
        }
    }

    let first_errors = first_errors.lock().unwrap();
    assert_eq!(errors, 0, "first errors: {first_errors:?}");
    for (index, (name, _)) in ROUTES.iter().enumerate() {
        assert!(
            samples.iter().any(|s| usize::from(s.route) == index),
            "no answer on {name}"
        );
    }
    drop(augur);
}
