//! Many-HPA benchmark: the real `augur` binary over HTTPS, in cluster mode (pods listed and
//! watched from a kube-apiserver double), against a real Prometheus, polled the way the HPA
//! controller polls it. N HorizontalPodAutoscalers (default 10,000) each ask for their metric
//! every 15 s on their own schedule, the N schedules spread evenly over the 15 s:
//! - 40 % Pods metrics: `pods/*/http_requests_per_second?labelSelector=app=<deployment>`,
//!   3 pods per Deployment (a rate over a counter per pod);
//! - 30 % Object metrics: `services/<name>/service_requests_per_second`;
//! - 30 % External metrics: `queue_messages_ready?labelSelector=queue=<name>` (a gauge);
//!
//! and half of each kind ask for the forecast twin (`<metric>_forecast`, the default model,
//! 7 days of minute history). Every target has its own series in 100 namespaces (18,000
//! series for 10,000 HPAs), backfilled with promtool a 2-hour block at a time: `--history` of
//! minute samples for the twins' series, an hour for the others, and samples up to the end
//! of the run (Prometheus only answers what is at or before the query time).
//!
//! Phases: start (augur idle), warm-up (until every twin has its first forecast: the first
//! fits of all twins at once, as after a restart), then `--minutes` of steady state, over
//! which it reports augur's CPU (CPU seconds per wall second from /proc/<pid>/stat, which
//! contention on a shared machine does not inflate much), resident memory (sampled every
//! second, and VmHWM), backend queries per second (augur's own /metrics counters and
//! Prometheus's `prometheus_http_requests_total`), Prometheus's CPU, request latency
//! p50/p90/p99 per kind, and errors: a non-200, a transport error, or an answer with the
//! wrong items or a value off the data by more than 3 % (a twin may serve more, never less).
//! augur's /metrics is read every 30 s, as a Prometheus scraping it would.
//!
//! Run: `cargo bench --bench hpas` (10,000 HPAs, 7 days of twin history, 5 minutes
//! measured; `-- --targets N --history 2d --minutes M --max-warmup M --http1` to change;
//! augur flags after `--augur`). Under `cargo test` it runs a small smoke case (40 HPAs every
//! 3 s, 8 hours of history, 12 s measured) that asserts every answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use augur::testing::{RssSampler, cpu_seconds, percentile, status_kib};
use common::{Pod, TestPrometheus, get_text, metric_sum, parse_quantity};
use serde_json::Value;

const DAY: f64 = 86_400.0;
/// Sample spacing of every series, seconds.
const SPACING: i64 = 60;
/// promtool's block length: each chunk of backfill covers one aligned window of this.
const BLOCK: i64 = 7_200;
/// How much data the series without a twin have before the start.
const RECENT: i64 = 3_600;
/// Pods per Deployment.
const PODS: usize = 3;
/// Relative tolerance of a served value against the data.
const TOLERANCE: f64 = 0.03;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Pods,
    Object,
    External,
}

impl Kind {
    fn of(i: usize) -> Kind {
        match i % 10 {
            0..=3 => Kind::Pods,
            4..=6 => Kind::Object,
            _ => Kind::External,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Pods => "pods",
            Kind::Object => "object",
            Kind::External => "external",
        }
    }
}

/// One HPA: its index, metric kind, whether it asks for the twin, namespace and the
/// Deployment, Service or queue name.
#[derive(Debug, Clone)]
struct Hpa {
    index: usize,
    kind: Kind,
    twin: bool,
    namespace: String,
    name: String,
}

impl Hpa {
    fn new(index: usize, namespaces: usize) -> Hpa {
        Hpa {
            index,
            kind: Kind::of(index),
            // Half of each kind: kinds repeat every 10 HPAs, twins alternate every 10.
            twin: (index / 10).is_multiple_of(2),
            namespace: format!("ns-{:03}", index % namespaces),
            name: format!("t{index:05}"),
        }
    }

    /// The Deployment's pods: `<name>-<10-char hash>-<5-char suffix>`, as a ReplicaSet
    /// names them.
    fn pod(&self, j: usize) -> String {
        const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let hash = (self.index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 24 & 0xff_ffff_ffff;
        let mut v = self.index * PODS + j;
        let suffix: String = (0..5)
            .map(|_| {
                let c = DIGITS[v % 36] as char;
                v /= 36;
                c
            })
            .collect();
        format!("{}-{hash:010x}-{suffix}", self.name)
    }

    fn path(&self) -> String {
        let twin = if self.twin { "_forecast" } else { "" };
        let (ns, name) = (&self.namespace, &self.name);
        match self.kind {
            Kind::Pods => format!(
                "/apis/custom.metrics.k8s.io/v1beta2/namespaces/{ns}/pods/*/http_requests_per_second{twin}?labelSelector=app%3D{name}"
            ),
            Kind::Object => format!(
                "/apis/custom.metrics.k8s.io/v1beta2/namespaces/{ns}/services/{name}/service_requests_per_second{twin}"
            ),
            Kind::External => format!(
                "/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/queue_messages_ready{twin}?labelSelector=queue%3D{name}"
            ),
        }
    }

    /// Scale of the target's load (per pod: times 1, 1.25, 1.5).
    fn base(&self) -> f64 {
        1.0 + (self.index % 17) as f64
    }

    /// The daily shape of the load at `t`: 0.5 to 1.5, each target at its own phase.
    fn level(&self, t: f64) -> f64 {
        1.0 + 0.5 * (self.phase() + std::f64::consts::TAU * t / DAY).sin()
    }

    fn phase(&self) -> f64 {
        (self.index % 97) as f64 * 0.0647
    }

    /// The counter at `t` of a series whose rate is `scale · level(t)`, 0 at `t0`.
    fn counter(&self, scale: f64, t0: f64, t: f64) -> f64 {
        let w = std::f64::consts::TAU / DAY;
        let (p0, p1) = (self.phase() + w * t0, self.phase() + w * t);
        scale * ((t - t0) + 0.5 / w * (p0.cos() - p1.cos()))
    }

    fn pod_scale(&self, j: usize) -> f64 {
        self.base() * (1.0 + 0.25 * j as f64)
    }

    fn object_scale(&self) -> f64 {
        10.0 * self.base()
    }

    /// The values the live metric has at `t`, one per item, in item order (pods by name).
    fn expected(&self, t: f64) -> Vec<(String, f64)> {
        let level = self.level(t);
        match self.kind {
            Kind::Pods => {
                let mut pods: Vec<(String, f64)> = (0..PODS)
                    .map(|j| (self.pod(j), self.pod_scale(j) * level))
                    .collect();
                pods.sort_by(|a, b| a.0.cmp(&b.0));
                pods
            }
            Kind::Object | Kind::External => vec![(self.name.clone(), self.object_scale() * level)],
        }
    }

    /// Checks an answer: the right items with values within [`TOLERANCE`] of the data (a
    /// twin's may be higher: it serves max(live, forecast); a Pods twin spreads its total
    /// evenly over the pods).
    fn check(&self, body: &[u8], t: f64) -> Result<(), String> {
        let body: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
        let items = body["items"].as_array().ok_or("no items")?;
        let expected = self.expected(t);
        if items.len() != expected.len() {
            return Err(format!(
                "{} items, expected {}",
                items.len(),
                expected.len()
            ));
        }
        let mut got: Vec<(String, f64)> = Vec::new();
        for item in items {
            let name = match self.kind {
                Kind::External => item["metricLabels"]["queue"].as_str(),
                _ => item["describedObject"]["name"].as_str(),
            }
            .ok_or_else(|| format!("item without a name: {item}"))?;
            let value =
                parse_quantity(&item["value"]).ok_or_else(|| format!("bad value: {item}"))?;
            got.push((name.to_owned(), value));
        }
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let names = |v: &[(String, f64)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        if names(&got) != names(&expected) {
            return Err(format!(
                "items {:?}, expected {:?}",
                names(&got),
                names(&expected)
            ));
        }
        let sum = |v: &[(String, f64)]| v.iter().map(|(_, x)| x).sum::<f64>();
        let (got_sum, want) = (sum(&got), sum(&expected));
        let low = got_sum < want * (1.0 - TOLERANCE);
        // A forecast may ask for more, within reason (daily peaks are 3× the troughs).
        let high = got_sum > want * if self.twin { 3.0 } else { 1.0 + TOLERANCE };
        if low || high {
            return Err(format!("values {got:?}, the data has {expected:?}"));
        }
        if !self.twin && self.kind == Kind::Pods {
            for ((_, g), (_, w)) in got.iter().zip(&expected) {
                if (g - w).abs() > w * TOLERANCE {
                    return Err(format!("values {got:?}, the data has {expected:?}"));
                }
            }
        }
        Ok(())
    }
}

/// The bench's settings.
#[derive(Debug, Clone)]
struct Settings {
    full: bool,
    targets: usize,
    period: Duration,
    history: String,
    history_secs: i64,
    measure: Duration,
    max_warmup: Duration,
    http1: bool,
    augur_flags: Vec<String>,
}

impl Settings {
    fn parse() -> Settings {
        let args: Vec<String> = std::env::args().collect();
        let full = args.iter().any(|a| a == "--bench");
        let value = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1))
                .cloned()
        };
        let number = |flag: &str, default: u64| {
            value(flag).map_or(default, |v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{flag} {v}: not a number"))
            })
        };
        let history =
            value("--history").unwrap_or_else(|| if full { "7d" } else { "8h" }.to_owned());
        let history_secs = augur::units::prom_duration(&history)
            .unwrap_or_else(|| panic!("--history {history}: not a duration like 7d or 36h"))
            .as_secs() as i64;
        let augur_flags = args
            .iter()
            .position(|a| a == "--augur")
            .map(|i| args[i + 1..].to_vec())
            .unwrap_or_default();
        Settings {
            full,
            targets: number("--targets", if full { 10_000 } else { 40 }) as usize,
            period: Duration::from_secs(number("--period", if full { 15 } else { 3 })),
            history,
            history_secs,
            measure: Duration::from_secs(60 * number("--minutes", if full { 5 } else { 1 })).min(
                if full {
                    Duration::MAX
                } else {
                    Duration::from_secs(12)
                },
            ),
            max_warmup: Duration::from_secs(60 * number("--max-warmup", if full { 60 } else { 2 })),
            http1: args.iter().any(|a| a == "--http1"),
            augur_flags,
        }
    }
}

/// The rules: one per kind, each with a forecast block (default model) over `history`.
fn rules(history: &str) -> String {
    format!(
        r#"rules:
- seriesQuery: 'http_requests_total{{namespace!="",pod!=""}}'
  resources: {{overrides: {{namespace: {{resource: namespace}}, pod: {{resource: pod}}}}}}
  name: {{matches: "^(.*)_total$", as: "${{1}}_per_second"}}
  metricsQuery: 'sum(rate(<<.Series>>{{<<.LabelMatchers>>}}[2m])) by (<<.GroupBy>>)'
  forecast: {{history: {history}}}
- seriesQuery: 'service_requests_total{{namespace!="",service!=""}}'
  resources: {{overrides: {{namespace: {{resource: namespace}}, service: {{resource: service}}}}}}
  name: {{matches: "^(.*)_total$", as: "${{1}}_per_second"}}
  metricsQuery: 'sum(rate(<<.Series>>{{<<.LabelMatchers>>}}[2m])) by (<<.GroupBy>>)'
  forecast: {{history: {history}}}
externalRules:
- seriesQuery: 'queue_messages_ready{{namespace!="",queue!=""}}'
  resources: {{overrides: {{namespace: {{resource: namespace}}}}}}
  metricsQuery: 'sum(<<.Series>>{{<<.LabelMatchers>>}}) by (queue)'
  forecast: {{history: {history}}}
"#
    )
}

/// The data: what each 2-hour block window holds, as OpenMetrics text, built one window at
/// a time (18,000 series · 120 samples is ~170 MB of text).
struct Data<'a> {
    hpas: &'a [Hpa],
    /// Counters are 0 here.
    t0: i64,
    /// First sample of a twin's series (the others start [`RECENT`] before `now`).
    history_start: i64,
    recent_start: i64,
    end: i64,
}

impl Data<'_> {
    fn windows(&self) -> impl Iterator<Item = String> + '_ {
        let first = self.history_start.div_euclid(BLOCK) * BLOCK;
        (first..=self.end)
            .step_by(BLOCK as usize)
            .filter_map(|w| self.window(w, (w + BLOCK - 1).min(self.end)))
    }

    /// Samples with timestamps in `[from, to]`, or None when there are none.
    fn window(&self, from: i64, to: i64) -> Option<String> {
        let mut out = String::new();
        let mut families = [
            ("http_requests", "counter", String::new()),
            ("service_requests", "counter", String::new()),
            ("queue_messages_ready", "gauge", String::new()),
        ];
        for hpa in self.hpas {
            let start = if hpa.twin {
                self.history_start
            } else {
                self.recent_start
            };
            let first = from.max(start);
            let first = first + (SPACING - first.rem_euclid(SPACING)) % SPACING;
            let ts = (first..=to).step_by(SPACING as usize);
            let (ns, name) = (&hpa.namespace, &hpa.name);
            match hpa.kind {
                Kind::Pods => {
                    let text = &mut families[0].2;
                    for j in 0..PODS {
                        let pod = hpa.pod(j);
                        let scale = hpa.pod_scale(j);
                        for t in ts.clone() {
                            let v = hpa.counter(scale, self.t0 as f64, t as f64);
                            writeln!(
                                text,
                                "http_requests_total{{namespace=\"{ns}\",pod=\"{pod}\"}} {v:.3} {t}"
                            )
                            .unwrap();
                        }
                    }
                }
                Kind::Object => {
                    let text = &mut families[1].2;
                    for t in ts {
                        let v = hpa.counter(hpa.object_scale(), self.t0 as f64, t as f64);
                        writeln!(text, "service_requests_total{{namespace=\"{ns}\",service=\"{name}\"}} {v:.3} {t}").unwrap();
                    }
                }
                Kind::External => {
                    let text = &mut families[2].2;
                    for t in ts {
                        let v = hpa.object_scale() * hpa.level(t as f64);
                        writeln!(
                            text,
                            "queue_messages_ready{{namespace=\"{ns}\",queue=\"{name}\"}} {v:.4} {t}"
                        )
                        .unwrap();
                    }
                }
            }
        }
        if families.iter().all(|f| f.2.is_empty()) {
            return None;
        }
        for (family, kind, text) in &families {
            if !text.is_empty() {
                writeln!(out, "# TYPE {family} {kind}").unwrap();
                out.push_str(text);
            }
        }
        out.push_str("# EOF\n");
        Some(out)
    }
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Ok,
    Status(u16),
    Transport(String),
    Wrong(String),
}

#[derive(Debug, Clone)]
struct Record {
    index: usize,
    started: Instant,
    latency: Duration,
    outcome: Outcome,
}

type Records = Arc<Mutex<Vec<Record>>>;

/// One HPA's polling loop: first at `offset` after `start`, then every `period` (a late
/// answer does not bunch the next ones: missed ticks are skipped, as a resync would).
async fn poll(
    hpa: Hpa,
    client: reqwest::Client,
    url: String,
    start: tokio::time::Instant,
    offset: Duration,
    period: Duration,
    records: Records,
) {
    let mut tick = tokio::time::interval_at(start + offset, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let started = Instant::now();
        let outcome = match client.get(&url).send().await {
            Err(e) => Outcome::Transport(e.to_string()),
            Ok(response) => {
                let status = response.status().as_u16();
                match response.bytes().await {
                    Err(e) => Outcome::Transport(e.to_string()),
                    Ok(_) if status != 200 => Outcome::Status(status),
                    Ok(body) => {
                        let now = SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .unwrap()
                            .as_secs_f64();
                        match hpa.check(&body, now) {
                            Ok(()) => Outcome::Ok,
                            Err(e) => Outcome::Wrong(e),
                        }
                    }
                }
            }
        };
        let record = Record {
            index: hpa.index,
            started,
            latency: started.elapsed(),
            outcome,
        };
        records.lock().unwrap().push(record);
    }
}

/// Counters read from augur's and Prometheus's /metrics and the processes' CPU.
#[derive(Debug, Clone, Copy)]
struct Counters {
    at: Instant,
    augur_cpu: f64,
    prometheus_cpu: f64,
    bench_cpu: f64,
    /// augur's calls to Prometheus: instant queries, range queries, series.
    augur_query: f64,
    augur_range: f64,
    augur_series: f64,
    augur_errors: f64,
    /// Queries joined to an identical one in flight instead of sent.
    augur_coalesced: f64,
    /// Prometheus's own count of the same.
    prom_query: f64,
    prom_range: f64,
    prom_series: f64,
    served_forecast: f64,
    served_live: f64,
    warming_up: f64,
    targets: f64,
    forecast_series: f64,
    compute_seconds: f64,
    /// augur's backend calls being answered, and waiting for a connection (gauges).
    in_flight: f64,
    queued: f64,
}

async fn counters(
    client: &reqwest::Client,
    augur: &common::Augur,
    augur_pid: u32,
    prometheus: &TestPrometheus,
) -> Counters {
    let a = get_text(client, &augur.url("/metrics")).await;
    let p = get_text(
        &reqwest::Client::new(),
        &format!("{}/metrics", prometheus.url()),
    )
    .await;
    let prometheus_pid = prometheus.pid().unwrap();
    let count = |e: &str| {
        metric_sum(
            &a,
            "augur_prometheus_request_duration_seconds_count",
            &[&format!("endpoint=\"{e}\"")],
        )
    };
    let handler = |h: &str| {
        metric_sum(
            &p,
            "prometheus_http_requests_total",
            &[&format!("handler=\"{h}\"")],
        )
    };
    Counters {
        at: Instant::now(),
        augur_cpu: cpu_seconds(augur_pid),
        prometheus_cpu: cpu_seconds(prometheus_pid),
        bench_cpu: cpu_seconds(std::process::id()),
        augur_query: count("query"),
        augur_range: count("query_range"),
        augur_series: count("series"),
        augur_errors: metric_sum(&a, "augur_prometheus_errors_total", &[]),
        augur_coalesced: metric_sum(&a, "augur_prometheus_coalesced_queries_total", &[]),
        prom_query: handler("/api/v1/query"),
        prom_range: handler("/api/v1/query_range"),
        prom_series: handler("/api/v1/series"),
        served_forecast: metric_sum(&a, "augur_forecast_served_total", &["source=\"forecast\""]),
        served_live: metric_sum(&a, "augur_forecast_served_total", &["source=\"live\""]),
        warming_up: metric_sum(
            &a,
            "augur_forecast_served_total",
            &["reason=\"warming_up\""],
        ),
        targets: metric_sum(&a, "augur_forecast_targets", &[]),
        forecast_series: metric_sum(&a, "augur_forecast_series", &[]),
        compute_seconds: metric_sum(&a, "augur_forecast_compute_seconds_total", &[]),
        in_flight: metric_sum(&a, "augur_prometheus_in_flight_requests", &[]),
        queued: metric_sum(&a, "augur_prometheus_queued_requests", &[]),
    }
}

/// One line of the warm-up's timeline: what happened between two readings of the counters,
/// and the latency of the requests that completed in between (`done` of them so far).
fn timeline_line(
    from: &Counters,
    to: &Counters,
    origin: Instant,
    latencies: &mut [Duration],
) -> String {
    latencies.sort_unstable();
    let p = |q: f64| {
        if latencies.is_empty() {
            "-".to_owned()
        } else {
            format!("{:.2?}", percentile(latencies, q))
        }
    };
    format!(
        "  t={:>4.0}s requests {:>6} p50 {} p90 {} max {} | targets {:.0}, forecast {:.0}/s, warming_up {:.0}/s | backend in flight {:.0}, queued {:.0}, query {:.0}/s, range {:.1}/s | CPU augur {:.2}, Prometheus {:.2}, bench {:.2}, compute {:.2}",
        (to.at - origin).as_secs_f64(),
        latencies.len(),
        p(0.5),
        p(0.9),
        p(1.0),
        to.targets,
        rate(from, to, |c| c.served_forecast),
        rate(from, to, |c| c.warming_up),
        to.in_flight,
        to.queued,
        rate(from, to, |c| c.augur_query),
        rate(from, to, |c| c.augur_range),
        rate(from, to, |c| c.augur_cpu),
        rate(from, to, |c| c.prometheus_cpu),
        rate(from, to, |c| c.bench_cpu),
        rate(from, to, |c| c.compute_seconds),
    )
}

/// Latency percentiles and outcomes of `records`, per kind and in all.
fn summarise(records: &[Record], hpas: &[Hpa], wall: f64) -> (String, usize, usize) {
    let mut out = String::new();
    let mut errors = 0;
    let mut by_kind: BTreeMap<(Kind, bool), Vec<Duration>> = BTreeMap::new();
    let mut all = Vec::with_capacity(records.len());
    let mut examples: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for r in records {
        let hpa = &hpas[r.index];
        by_kind
            .entry((hpa.kind, hpa.twin))
            .or_default()
            .push(r.latency);
        all.push(r.latency);
        let class = match &r.outcome {
            Outcome::Ok => continue,
            Outcome::Status(s) => format!("status {s}"),
            Outcome::Transport(_) => "transport".to_owned(),
            Outcome::Wrong(_) => "wrong answer".to_owned(),
        };
        errors += 1;
        let e = examples.entry(class).or_insert((0, String::new()));
        e.0 += 1;
        if e.1.is_empty() {
            e.1 = format!("{} {:?}", hpa.path(), r.outcome);
        }
    }
    all.sort();
    let line = |out: &mut String, what: &str, l: &mut Vec<Duration>| {
        l.sort();
        if l.is_empty() {
            return;
        }
        writeln!(
            out,
            "  {what:<18} {:>8} requests ({:>6.1}/s): p50 {:>9.2?}, p90 {:>9.2?}, p99 {:>9.2?}, max {:>9.2?}",
            l.len(),
            l.len() as f64 / wall,
            percentile(l, 0.5),
            percentile(l, 0.9),
            percentile(l, 0.99),
            l[l.len() - 1]
        )
        .unwrap();
    };
    line(&mut out, "all", &mut all.clone());
    for ((kind, twin), l) in &mut by_kind {
        let what = format!("{}{}", kind.label(), if *twin { " twin" } else { "" });
        line(&mut out, &what, l);
    }
    for (class, (n, example)) in &examples {
        writeln!(out, "  errors: {n} × {class}, e.g. {example}").unwrap();
    }
    (out, records.len(), errors)
}

fn rate(a: &Counters, b: &Counters, f: impl Fn(&Counters) -> f64) -> f64 {
    (f(b) - f(a)) / (b.at - a.at).as_secs_f64()
}

#[tokio::main]
async fn main() {
    let settings = Settings::parse();
    augur::tls::install_crypto_provider();
    let n = settings.targets;
    let namespaces = (n / 100).clamp(1, 100);
    let hpas: Vec<Hpa> = (0..n).map(|i| Hpa::new(i, namespaces)).collect();
    let twins = hpas.iter().filter(|h| h.twin).count();
    println!(
        "{n} HPAs ({} pods, {} object, {} external; {twins} on forecast twins) in {namespaces} namespaces, every {:?}; history {}; load average {}",
        hpas.iter().filter(|h| h.kind == Kind::Pods).count(),
        hpas.iter().filter(|h| h.kind == Kind::Object).count(),
        hpas.iter().filter(|h| h.kind == Kind::External).count(),
        settings.period,
        settings.history,
        common::load_average()
    );

    // Data up to past the end of the run: the warm-up bound, the measurement, 10 minutes.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let now = now - now % SPACING;
    let run = (settings.max_warmup + settings.measure + Duration::from_secs(600)).as_secs() as i64;
    let data = Data {
        hpas: &hpas,
        t0: now - settings.history_secs - BLOCK,
        history_start: now - settings.history_secs,
        recent_start: now - RECENT,
        end: now + run,
    };
    let started = Instant::now();
    let prometheus = TestPrometheus::start_from(
        data.windows(),
        None,
        // One block per window, never compacted while the bench runs.
        &["--storage.tsdb.max-block-duration=2h"],
    );
    println!(
        "backfilled and started Prometheus in {:.1?}",
        started.elapsed()
    );

    let pods: Vec<Pod> = hpas
        .iter()
        .filter(|h| h.kind == Kind::Pods)
        .flat_map(|h| {
            (0..PODS).map(move |j| Pod {
                namespace: h.namespace.clone(),
                name: h.pod(j),
                labels: vec![("app".to_owned(), h.name.clone())],
            })
        })
        .collect();
    let double = common::ApiServerDouble::start(common::pod_routes(&pods));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = double.write_kubeconfig(dir.path(), "augur-token");
    let config = dir.path().join("rules.yaml");
    std::fs::write(&config, rules(&settings.history)).unwrap();
    let limit = twins + twins / 10 + 10;
    let mut flags = vec![
        format!("--forecast-max-targets={limit}"),
        format!("--forecast-max-series={limit}"),
    ];
    flags.extend(settings.augur_flags.iter().cloned());
    let augur = common::start_augur(&prometheus.url(), &config, &kubeconfig, &flags).await;
    let augur_pid = augur.pid().unwrap();
    let rss = RssSampler::start(augur_pid, Duration::from_secs(1));
    let prometheus_rss = RssSampler::start(prometheus.pid().unwrap(), Duration::from_secs(1));
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "augur ready (flags {flags:?}); idle RSS {:.1} MiB",
        status_kib(augur_pid, "VmRSS") as f64 / 1024.0
    );

    // The HPA controller's client: one HTTP/2 connection, as kube-aggregator proxies.
    let pem = std::fs::read_to_string(augur.cert()).unwrap();
    let mut tls = augur::testing::client_config(&augur::testing::pem_certificates(&pem), None);
    tls.alpn_protocols = if settings.http1 {
        vec![b"http/1.1".to_vec()]
    } else {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    };
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let probe = client.get(augur.url("/readyz")).send().await.unwrap();
    println!("client speaks {:?} to augur", probe.version());

    let records: Records = Arc::default();
    let start = tokio::time::Instant::now() + Duration::from_millis(200);
    let mut tasks = Vec::new();
    for hpa in &hpas {
        let offset = settings.period.mul_f64(hpa.index as f64 / n as f64);
        let url = augur.url(&hpa.path());
        tasks.push(tokio::spawn(poll(
            hpa.clone(),
            client.clone(),
            url,
            start,
            offset,
            settings.period,
            records.clone(),
        )));
    }

    // Warm-up: until every twin target exists and none was served "warming up" for a period.
    let warm_started = counters(&client, &augur, augur_pid, &prometheus).await;
    let mut last = warm_started;
    let mut seen = 0;
    println!("warm-up timeline (requests completed since the line before):");
    let warm = loop {
        tokio::time::sleep(settings.period.max(Duration::from_secs(5))).await;
        let c = counters(&client, &augur, augur_pid, &prometheus).await;
        let mut latencies: Vec<Duration> = {
            let records = records.lock().unwrap();
            let fresh = records[seen..].iter().map(|r| r.latency).collect();
            seen = records.len();
            fresh
        };
        println!(
            "{}",
            timeline_line(&last, &c, warm_started.at, &mut latencies)
        );
        let done = c.targets as usize >= twins
            && c.warming_up == last.warming_up
            && c.served_forecast > last.served_forecast;
        last = c;
        if done {
            break true;
        }
        if warm_started.at.elapsed() > settings.max_warmup {
            break false;
        }
    };
    let warmup_records: Vec<Record> = std::mem::take(&mut *records.lock().unwrap());
    let wall = (last.at - warm_started.at).as_secs_f64();
    let (summary, _, _) = summarise(&warmup_records, &hpas, wall);
    println!(
        "warm-up {}: {:.0} s, augur CPU {:.1} s ({:.2} cores; forecast compute {:.1} s), Prometheus CPU {:.1} s, augur RSS max {:.1} MiB, now {:.1} MiB; {} twin targets, {} series\n{summary}",
        if warm {
            "done"
        } else {
            "NOT done (--max-warmup reached)"
        },
        wall,
        last.augur_cpu - warm_started.augur_cpu,
        rate(&warm_started, &last, |c| c.augur_cpu),
        last.compute_seconds - warm_started.compute_seconds,
        last.prometheus_cpu - warm_started.prometheus_cpu,
        rss.max_mib(),
        rss.last_mib(),
        last.targets,
        last.forecast_series,
    );

    // Steady state.
    rss.reset_max();
    prometheus_rss.reset_max();
    let begin = counters(&client, &augur, augur_pid, &prometheus).await;
    let load_before = common::load_average();
    let measure_start = Instant::now();
    while measure_start.elapsed() < settings.measure {
        let left = settings.measure.saturating_sub(measure_start.elapsed());
        tokio::time::sleep(left.min(Duration::from_secs(30))).await;
        // A Prometheus scraping augur every 30 s reads the same page.
        let _ = get_text(&client, &augur.url("/metrics")).await;
    }
    let end = counters(&client, &augur, augur_pid, &prometheus).await;
    let steady: Vec<Record> = std::mem::take(&mut *records.lock().unwrap())
        .into_iter()
        .filter(|r| r.started >= measure_start)
        .collect();
    for task in &tasks {
        task.abort();
    }
    let wall = (end.at - begin.at).as_secs_f64();
    let (summary, requests, errors) = summarise(&steady, &hpas, wall);
    let augur_cores = rate(&begin, &end, |c| c.augur_cpu);
    println!(
        "steady state over {wall:.0} s (load average {load_before} → {}):\n\
         augur: CPU {augur_cores:.3} cores ({:.3} ms per request), RSS max {:.1} MiB, last {:.1} MiB, VmHWM {:.1} MiB (whole run); forecast compute {:.3} cores\n\
         backend calls per second, augur's counters: query {:.1}, query_range {:.2}, series {:.3} (errors {}, coalesced {:.2}/s); Prometheus's: query {:.1}, query_range {:.2}, series {:.3}\n\
         Prometheus: CPU {:.3} cores, RSS max {:.1} MiB; the bench (client): CPU {:.3} cores\n\
         twins served: forecast {:.0}, live {:.0}\n{summary}",
        common::load_average(),
        1000.0 * (end.augur_cpu - begin.augur_cpu) / requests.max(1) as f64,
        rss.max_mib(),
        rss.last_mib(),
        status_kib(augur_pid, "VmHWM") as f64 / 1024.0,
        rate(&begin, &end, |c| c.compute_seconds),
        rate(&begin, &end, |c| c.augur_query),
        rate(&begin, &end, |c| c.augur_range),
        rate(&begin, &end, |c| c.augur_series),
        end.augur_errors - begin.augur_errors,
        rate(&begin, &end, |c| c.augur_coalesced),
        rate(&begin, &end, |c| c.prom_query),
        rate(&begin, &end, |c| c.prom_range),
        rate(&begin, &end, |c| c.prom_series),
        rate(&begin, &end, |c| c.prometheus_cpu),
        prometheus_rss.max_mib(),
        rate(&begin, &end, |c| c.bench_cpu),
        end.served_forecast - begin.served_forecast,
        end.served_live - begin.served_live,
    );
    if !settings.full {
        // The smoke case: everything answered right, every twin forecast, figures read.
        assert!(warm, "the twins never all had a forecast:\n{}", augur.log());
        let polls = (wall / settings.period.as_secs_f64()) as usize;
        assert!(
            requests >= n * polls.max(1) * 9 / 10,
            "{requests} requests in {wall:.0} s"
        );
        assert_eq!(errors, 0, "{summary}\n{}", augur.log());
        assert_eq!(end.targets as usize, twins);
        assert!(end.served_forecast - begin.served_forecast > 0.0);
        assert!(end.augur_query > begin.augur_query && end.prom_query > begin.prom_query);
        assert!(augur_cores > 0.0 && rss.max_mib() > 1.0);
    }
}
