//! Relist benchmark: one relist of N series (cAdvisor-like label sets) fetched over HTTP from a
//! separate process, decoded, reduced, filtered, named and associated into a snapshot; reports
//! time per relist and the process' RSS (current and peak).
//!
//! Run: `cargo bench --bench relist` (100k series; `-- --series N` to change). Under
//! `cargo test` it runs a small smoke case that checks the snapshot's contents.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use augur::config::{self, UnknownResources};
use augur::prometheus::{BackendOptions, HttpBackend};
use augur::resources::ResourceTable;
use augur::series::{Registry, RelistOptions, Relister, Snapshot};
use augur::telemetry::Metrics;

const RULES: &str = r#"
rules:
- seriesQuery: '{__name__=~"^container_.*",container!="POD",namespace!="",pod!=""}'
  seriesFilters: [{isNot: "^container_.*_seconds_total$"}]
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {matches: "^container_(.*)_total$"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>,container!="POD"}[5m])) by (<<.GroupBy>>)'
- seriesQuery: '{__name__=~"^container_.*",container!="POD",namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {matches: "^container_(.*)_seconds_total$"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>,container!="POD"}[5m])) by (<<.GroupBy>>)'
- seriesQuery: '{__name__=~"^container_.*",container!="POD",namespace!="",pod!=""}'
  seriesFilters: [{isNot: "^container_.*_total$"}]
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {matches: "^container_(.*)$"}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>,container!="POD"}) by (<<.GroupBy>>)'
"#;

const METRICS: [&str; 20] = [
    "container_cpu_usage_seconds_total",
    "container_cpu_user_seconds_total",
    "container_cpu_system_seconds_total",
    "container_cpu_cfs_periods_total",
    "container_cpu_cfs_throttled_periods_total",
    "container_memory_working_set_bytes",
    "container_memory_rss",
    "container_memory_cache",
    "container_memory_usage_bytes",
    "container_memory_failures_total",
    "container_network_receive_bytes_total",
    "container_network_transmit_bytes_total",
    "container_network_receive_packets_total",
    "container_network_transmit_packets_total",
    "container_fs_reads_bytes_total",
    "container_fs_writes_bytes_total",
    "container_fs_usage_bytes",
    "container_spec_cpu_shares",
    "container_spec_memory_limit_bytes",
    "container_threads",
];

/// Writes a `/api/v1/series` body with `n` series to `path`, streaming (no big allocation).
fn write_series_body(path: &std::path::Path, n: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    out.write_all(br#"{"status":"success","data":["#).unwrap();
    for i in 0..n {
        let metric = METRICS[i % METRICS.len()];
        let pod = i / METRICS.len();
        let ns = pod % 50;
        let node = pod % 40;
        if i > 0 {
            out.write_all(b",").unwrap();
        }
        write!(
            out,
            r#"{{"__name__":"{metric}","container":"app","endpoint":"https-metrics","id":"/kubepods/burstable/pod{pod:08x}/c{i:08x}","image":"registry.example/app:1.{ns}","instance":"10.0.{node}.1:10250","job":"kubelet","metrics_path":"/metrics/cadvisor","name":"k8s_app_pod-{pod}","namespace":"ns-{ns}","node":"node-{node}","pod":"pod-{pod}","service":"kubelet"}}"#
        )
        .unwrap();
    }
    out.write_all(b"]}").unwrap();
    out.flush().unwrap();
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) this process has used, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let n: usize = args
        .iter()
        .position(|a| a == "--series")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 100_000 } else { 2_000 });
    let rounds = if full { 5 } else { 1 };

    // The body is served by a separate process so its bytes do not count in our RSS.
    let dir = tempfile::tempdir().unwrap();
    let series_dir = dir.path().join("api/v1");
    std::fs::create_dir_all(&series_dir).unwrap();
    write_series_body(&series_dir.join("series"), n);
    let body_mib = std::fs::metadata(series_dir.join("series")).unwrap().len() as f64 / 1048576.0;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 for the static series server");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        augur::tls::install_crypto_provider();
        let url = format!("http://127.0.0.1:{port}");
        let backend = Arc::new(HttpBackend::new(&BackendOptions::new(url.clone(), Duration::from_secs(60))).unwrap());
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "static server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let table = Arc::new(ResourceTable::builtin());
        let config = Arc::new(config::parse(RULES, "bench.yaml", &table, UnknownResources::Reject).unwrap());
        let registry = Arc::new(Registry::new(Snapshot::empty(config.clone(), table.clone())));
        let options = RelistOptions { interval: Duration::from_secs(60), max_age: Duration::from_secs(600), concurrency: 4 };
        let mut relister = Relister::new(backend, registry.clone(), table, options, Arc::new(Metrics::new()));
        let rss_before = status_kib("VmRSS:");
        let mut times = Vec::new();
        let mut cpu = Vec::new();
        for _ in 0..rounds {
            let started = Instant::now();
            let cpu_before = cpu_seconds();
            let report = relister.relist(config.clone()).await;
            times.push(started.elapsed());
            cpu.push(cpu_seconds() - cpu_before);
            assert!(report.failed.is_empty(), "{:?}", report.failed);
            assert_eq!(report.raw_series, n);
        }
        let snapshot = registry.load();
        let pods = snapshot.custom_resources().iter().filter(|(name, _)| name.starts_with("pods/")).count();
        // 20 container metrics → 13 counters/gauges named by the three rules.
        assert_eq!(pods, 20, "{:?}", snapshot.custom_resources());
        assert!(snapshot.custom_resources().contains(&("pods/cpu_usage".to_owned(), true)));
        times.sort();
        cpu.sort_by(f64::total_cmp);
        println!(
            "relist of {n} series ({body_mib:.1} MiB of /series JSON): median {:?}, min {:?}, max {:?} over {rounds} round(s); augur CPU median {:.2} s, min {:.2} s",
            times[times.len() / 2],
            times[0],
            times[times.len() - 1],
            cpu[cpu.len() / 2],
            cpu[0]
        );
        println!(
            "RSS: {:.1} MiB before, {:.1} MiB after, peak {:.1} MiB; registry entries {}",
            rss_before as f64 / 1024.0,
            status_kib("VmRSS:") as f64 / 1024.0,
            status_kib("VmHWM:") as f64 / 1024.0,
            snapshot.custom.len()
        );
    });
    let _ = server.kill();
    let _ = server.wait();
}
