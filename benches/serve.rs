//! Serving benchmark end to end: augur's own binary (a child process, standalone, self-signed
//! HTTPS) over a real Prometheus holding 50 pods' request counters (backfilled with promtool).
//! Reports augur's RSS once idle after the first relist, requests per second with N clients
//! on the external and the `pods/*` routes (each request one PromQL query), the Prometheus
//! queries that coalescing saved under that load and in a burst of identical requests, and
//! the RSS after the load.
//!
//! Run: `cargo bench --bench serve` (8 clients, 20 s per route, a burst of 200;
//! `-- --clients N --seconds S --burst B` to change, `--binary PATH` for another build of
//! augur, `--cluster` to list the 50 pods from a kube-apiserver double (cluster mode) and
//! time `pods/*` with a labelSelector too, `--callgrind FILE` to run augur under valgrind's
//! callgrind, writing its profile to FILE, for `benches/symbol_order.py`; extra augur flags
//! after `--augur`).
//! Under `cargo test` it runs a short smoke case, in cluster mode, that checks the answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use augur::testing::{Killed, cpu_seconds, free_port, saturate, status_kib};
use common::{ApiServerDouble, Pod, TestPrometheus, get_json, get_text, pod_routes};

const PODS: usize = 50;
const STEP: u64 = 15;
const EXTERNAL: &str =
    "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/http_requests_per_second";
const PODS_ROUTE: &str =
    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*/http_requests_per_second";
/// As an HPA asks for its Deployment's pods (cluster mode: the 50 pods of the double).
const SELECTOR_ROUTE: &str = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*/http_requests_per_second?labelSelector=app%3Dweb";

fn wait_for(what: &str, log: &Path, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Pod `i` serves `(i + 1) / 10` requests per second, from an hour ago to an hour ahead (so
/// that queries at "now" find samples for the whole run).
fn openmetrics(now: u64) -> String {
    let mut out = String::from("# TYPE http_requests counter\n");
    let start = now - now % STEP - 3600;
    for pod in 0..PODS {
        let rate = (pod + 1) as f64 / 10.0;
        for step in 0..=(7200 / STEP) {
            let t = start + step * STEP;
            let value = 1000.0 + rate * (t - start) as f64;
            writeln!(out, "http_requests_total{{namespace=\"default\",pod=\"web-{pod}\",service=\"web\"}} {value} {t}").unwrap();
        }
    }
    out.push_str("# EOF\n");
    out
}

/// `VmRSS`, `RssAnon`, `RssFile` and `VmHWM` of `pid`, in KiB.
fn memory(pid: u32) -> [u64; 4] {
    ["VmRSS", "RssAnon", "RssFile", "VmHWM"].map(|field| status_kib(pid, field))
}

/// The mappings of `pid` holding the most resident memory: `(KiB, what)`, largest first.
fn largest_mappings(pid: u32, count: usize) -> Vec<(u64, String)> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut mappings: Vec<(u64, String)> = Vec::new();
    let mut what = String::new();
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields
            .first()
            .is_some_and(|f| f.contains('-') && !f.ends_with(':'))
        {
            what = fields
                .get(5)
                .map_or("[anon]", |p| p.rsplit('/').next().unwrap_or(p))
                .to_owned();
        } else if fields.first() == Some(&"Rss:") {
            let kib: u64 = fields.get(1).and_then(|v| v.parse().ok()).unwrap_or(0);
            match mappings.iter_mut().find(|(_, w)| *w == what) {
                Some((total, _)) => *total += kib,
                None => mappings.push((kib, what.clone())),
            }
        }
    }
    mappings.sort_by_key(|m| std::cmp::Reverse(m.0));
    mappings.truncate(count);
    mappings
}

fn show(kib: [u64; 4]) -> String {
    let mib = |k: u64| k as f64 / 1024.0;
    format!(
        "RSS {:.1} MiB (anon {:.1}, file {:.1}), peak {:.1} MiB",
        mib(kib[0]),
        mib(kib[1]),
        mib(kib[2]),
        mib(kib[3])
    )
}

/// A counter's value in augur's `/metrics`.
async fn counter(client: &reqwest::Client, base: &str, name: &str) -> f64 {
    let text = get_text(client, &format!("{base}/metrics")).await;
    text.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
}

async fn queries(client: &reqwest::Client, base: &str) -> f64 {
    counter(
        client,
        base,
        "augur_prometheus_request_duration_seconds_count{endpoint=\"query\"}",
    )
    .await
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let flag = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let clients = flag("--clients", if full { 8 } else { 2 }) as usize;
    let window = Duration::from_secs(flag("--seconds", if full { 20 } else { 1 }));
    let burst = flag("--burst", if full { 200 } else { 20 }) as usize;
    let extra: Vec<&String> = match args.iter().position(|a| a == "--augur") {
        Some(i) => args[i + 1..]
            .iter()
            .take_while(|a| *a != "--bench")
            .collect(),
        None => Vec::new(),
    };

    // `--binary PATH`: another build of augur (e.g. `target/dist/augur`).
    let binary = args
        .iter()
        .position(|a| a == "--binary")
        .and_then(|i| args.get(i + 1))
        .map_or(env!("CARGO_BIN_EXE_augur"), String::as_str);

    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let prometheus = TestPrometheus::start(&openmetrics(now));
    let prometheus_url = prometheus.url();
    let prometheus_pid = prometheus.pid().expect("prometheus is running");

    // `--cluster`: pods listed from a kube-apiserver double, so labelSelectors can be answered
    // (always in the smoke case, which checks the answers).
    let cluster = !full || args.iter().any(|a| a == "--cluster");
    let pods: Vec<Pod> = (0..PODS)
        .map(|i| Pod {
            namespace: "default".to_owned(),
            name: format!("web-{i}"),
            labels: vec![("app".to_owned(), "web".to_owned())],
        })
        .collect();
    let double = cluster.then(|| ApiServerDouble::start(pod_routes(&pods)));
    let cluster_flags: Vec<String> = match &double {
        Some(double) => vec![
            format!(
                "--lister-kubeconfig={}",
                double.write_kubeconfig(dir.path(), "augur-token").display()
            ),
            "--authentication-mode=off".to_owned(),
        ],
        None => Vec::new(),
    };

    let port = free_port();
    let log = dir.path().join("augur.log");
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/default.yaml");
    // `--callgrind FILE`: augur under callgrind (slow), for the functions it runs.
    let callgrind = args
        .iter()
        .position(|a| a == "--callgrind")
        .and_then(|i| args.get(i + 1));
    let mut augur = match callgrind {
        Some(out) => {
            let mut c = Command::new("valgrind");
            c.args(["--tool=callgrind", "--demangle=no"])
                .arg(format!("--callgrind-out-file={out}"))
                .arg(binary);
            c
        }
        None => Command::new(binary),
    };
    let augur = augur
        .args(["serve", "--bind-address=127.0.0.1"])
        .arg(format!("--secure-port={port}"))
        .arg(format!("--config={}", rules.display()))
        .arg(format!("--prometheus-url={prometheus_url}"))
        .arg(format!("--cert-dir={}", dir.path().join("certs").display()))
        .args(&cluster_flags)
        .args(&extra)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let pid = augur.id();
    let augur = Killed(augur);
    let cert = dir.path().join("certs/apiserver.crt");
    wait_for("augur", &log, || cert.exists());
    augur::tls::install_crypto_provider();
    let pem = std::fs::read_to_string(&cert).unwrap();
    let client = augur::testing::https_client(&pem, None)
        .http1_only()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let base = format!("https://localhost:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "augur never ready: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Idle: the first relist done, nothing asked yet but /readyz.
    tokio::time::sleep(Duration::from_secs(if full { 5 } else { 1 })).await;
    println!("augur idle after the first relist: {}", show(memory(pid)));
    let largest: Vec<String> = largest_mappings(pid, 6)
        .iter()
        .map(|(kib, what)| format!("{what} {:.1} MiB", *kib as f64 / 1024.0))
        .collect();
    println!("  largest mappings: {}", largest.join(", "));

    // The answers are right before anything is timed: sum of (i + 1) / 10 for 50 pods.
    let body = get_json(&client, &format!("{base}{EXTERNAL}")).await;
    let total: f64 = body["items"][0]["value"]
        .as_str()
        .unwrap()
        .trim_end_matches('m')
        .parse::<f64>()
        .unwrap();
    let expected = (1..=PODS).map(|i| i as f64 / 10.0).sum::<f64>();
    assert!(
        (total / 1000.0 - expected).abs() < 0.01 * expected,
        "{body}"
    );
    let body = get_json(&client, &format!("{base}{PODS_ROUTE}")).await;
    assert_eq!(body["items"].as_array().map(Vec::len), Some(PODS), "{body}");

    let mut routes = vec![("external", EXTERNAL), ("pods/*", PODS_ROUTE)];
    if cluster {
        let body = get_json(&client, &format!("{base}{SELECTOR_ROUTE}")).await;
        assert_eq!(body["items"].as_array().map(Vec::len), Some(PODS), "{body}");
        routes.push(("pods/* with labelSelector", SELECTOR_ROUTE));
    }
    // Over HTTP/2 as well, as kube-aggregator asks.
    let mut tls = augur::testing::client_config(&augur::testing::pem_certificates(&pem), None);
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let h2 = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for (_, path) in &routes {
        let response = h2.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(
            (response.version(), response.status().as_u16()),
            (reqwest::Version::HTTP_2, 200)
        );
    }
    drop(h2);
    for (name, path) in routes {
        let url = format!("{base}{path}");
        let (saved, sent) = (
            counter(&client, &base, "augur_prometheus_coalesced_queries_total").await,
            queries(&client, &base).await,
        );
        let (augur_cpu, prometheus_cpu) = (cpu_seconds(pid), cpu_seconds(prometheus_pid));
        let done = saturate(&client, &url, clients, window).await;
        let augur_cpu = cpu_seconds(pid) - augur_cpu;
        let prometheus_cpu = cpu_seconds(prometheus_pid) - prometheus_cpu;
        let saved =
            counter(&client, &base, "augur_prometheus_coalesced_queries_total").await - saved;
        let sent = queries(&client, &base).await - sent;
        println!(
            "{name}, {clients} clients, {window:?}: {:.0} req/s; CPU per request: augur {:.3} ms, Prometheus {:.3} ms; Prometheus queries {sent:.0}, saved by coalescing {saved:.0}",
            done as f64 / window.as_secs_f64(),
            augur_cpu * 1000.0 / done as f64,
            prometheus_cpu * 1000.0 / done as f64,
        );
    }

    // A burst of identical requests at once, as many HPAs asking for one metric.
    // (Its own client: the burst opens connections that are closed before the last figure.)
    let burst_client = augur::testing::https_client(&pem, None)
        .http1_only()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let url = format!("{base}{EXTERNAL}");
    let (saved, sent) = (
        counter(&client, &base, "augur_prometheus_coalesced_queries_total").await,
        queries(&client, &base).await,
    );
    let started = Instant::now();
    let answers =
        futures::future::join_all((0..burst).map(|_| burst_client.get(&url).send())).await;
    let took = started.elapsed();
    for answer in answers {
        assert_eq!(answer.unwrap().status(), 200);
    }
    let saved = counter(&client, &base, "augur_prometheus_coalesced_queries_total").await - saved;
    let sent = queries(&client, &base).await - sent;
    assert_eq!(
        saved + sent,
        burst as f64,
        "every request is one query, sent or saved"
    );
    println!(
        "burst of {burst} identical external requests in {took:.2?}: Prometheus queries {sent:.0}, saved by coalescing {saved:.0}"
    );
    println!(
        "augur after the burst, its connections still open: {}",
        show(memory(pid))
    );
    drop((client, burst_client));
    tokio::time::sleep(Duration::from_secs(if full { 5 } else { 1 })).await;
    println!(
        "augur after the load, connections closed: {}",
        show(memory(pid))
    );
    let mut augur = augur;
    if let Some(out) = callgrind {
        // Stopped as a Deployment stops it: callgrind writes the profile as augur exits.
        let _ = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(120);
        while augur.0.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        println!("callgrind profile of augur: {out}");
    }
}
