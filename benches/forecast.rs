//! Forecast serving benchmark. Phase 1: a twin (forecast) metric request over the full HTTPS
//! path, answered from the engine's cache, at a fixed 1,000 req/s for 10 s (latency
//! percentiles; the live metric measured the same way for reference). Phase 2: the CPU cost
//! of refreshing 10,000 targets every minute (range query of the new bucket from an
//! in-process backend, merge, predict, accuracy tracking), with persistence and with a
//! linear-like model (a weighted sum over the last 64 buckets plus window features); then
//! the real default model (`guarded-linear`) on 7-day histories cut from the NASA trace with
//! per-target noise: the CPU of one fit (measured on distinct histories) and of a prediction
//! round over 10,000 targets, amortised per hour at the default refit interval. Each
//! refresh phase runs in a child process and reports its resident memory (VmRSS, VmHWM)
//! before and after creating the targets: persistence and the default model on 7-day
//! histories (the default model with one fit shared by 10,000 targets, then 300 targets
//! with a real fit each, so the fitted weights are counted per target).
//!
//! Run: `cargo bench --bench forecast`. Under `cargo test` it runs a short smoke case.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use augur::api::router;
use augur::config::{ForecastSpec, ModelRef, Reduce, ServeMode};
use augur::forecast::{Fitted, History, Model, ModelError, Target};
use augur::prometheus::{Backend, QueryResult, RangeSeries, SeriesList};
use augur::promql::selector::LabelSelector;
use augur::provider::custom::custom_metric;
use augur::provider::{CustomRequest, ObjectName};
use augur::telemetry::Metrics;
use augur::testing::{PODS_RULES, app_with_rules, fixed_rate, percentile, pods_backend, serve_tls};
use augur::twin::engine::{Engine, EngineOptions, ModelFactory, SeriesKind, TargetKey};
use futures::FutureExt;
use futures::future::BoxFuture;

/// [`PODS_RULES`] with a forecast twin.
const FORECAST: &str = "  forecast: {model: persistence, history: 1d, headroom: 0.2}\n";
const TWIN: &str = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*/http_requests_per_second_forecast";
const LIVE: &str =
    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*/http_requests_per_second";

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A daily-cycle request rate with a per-target phase.
fn rate(t: i64, phase: i64) -> f64 {
    let day = ((t + phase) % 86_400) as f64 / 86_400.0;
    5.0 + 4.0 * (2.0 * std::f64::consts::PI * day).sin()
}

/// The NASA KSC trace (1-minute buckets, gaps forward-filled), loaded once.
fn nasa() -> &'static [f64] {
    static TRACE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    TRACE.get_or_init(|| {
        let path = std::env::var("AUGUR_TRACES").unwrap_or_else(|_| "/work/shared/data".into());
        augur::forecast::trace::load_csv(&std::path::Path::new(&path).join(NASA))
            .unwrap_or_else(|e| panic!("{NASA}: {e}"))
            .forward_filled()
    })
}
const NASA: &str = "nasa_ksc_http_1995_07_60s.csv";

/// Target `phase`'s value at `t`: the NASA trace tiled over time (whole days, so the daily
/// cycle is kept), shifted by `phase` days and scaled by ±10 % noise.
fn traced(trace: &[f64], t: i64, phase: i64) -> f64 {
    let days = (trace.len() / 1440) as i64;
    let minute = (t / 60 + (phase % days) * 1440).rem_euclid(days * 1440) as usize;
    // The same noise for the same (t, phase), whatever order the points are asked in.
    let seed = ((phase as u64) << 40) ^ t as u64;
    let noise = fastrand::Rng::with_seed(seed).f64() * 2.0 - 1.0;
    trace[minute] * (1.0 + 0.1 * noise)
}

/// A backend that answers range queries with exactly the asked points of [`rate`] (the
/// phase comes from the query text), as Prometheus would; instant queries are not used.
struct Synthetic;

impl Backend for Synthetic {
    fn series<'a>(
        &'a self,
        _: &'a str,
        _: SystemTime,
    ) -> BoxFuture<'a, augur::prometheus::Result<SeriesList>> {
        async { Ok(SeriesList::default()) }.boxed()
    }
    fn query<'a>(
        &'a self,
        _: &'a str,
        _: SystemTime,
    ) -> BoxFuture<'a, augur::prometheus::Result<QueryResult>> {
        async { Ok(QueryResult::Vector(Vec::new())) }.boxed()
    }
    fn query_range<'a>(
        &'a self,
        promql: &'a str,
        start: SystemTime,
        end: SystemTime,
        step: Duration,
    ) -> BoxFuture<'a, augur::prometheus::Result<Vec<RangeSeries>>> {
        async move {
            let phase: i64 = promql
                .rsplit('"')
                .nth(1)
                .and_then(|n| n.strip_prefix("ns-"))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
            let step = step.as_secs() as i64;
            let trace = promql.contains("nasa").then(nasa);
            let mut points = Vec::new();
            let mut t = secs(start);
            while t <= secs(end) {
                let v = match trace {
                    Some(trace) => traced(trace, t, phase),
                    None => rate(t, phase * 37),
                };
                points.push((t as f64, v));
                t += step;
            }
            Ok(vec![RangeSeries {
                labels: Default::default(),
                points,
            }])
        }
        .boxed()
    }
}

/// Linear-model-like cost: 64 lag weights plus window max/mean features.
struct LinearLike;
struct LinearLikeFitted([f64; 64]);

impl Model for LinearLike {
    fn name(&self) -> &str {
        "linear-like"
    }
    fn fit(&self, history: &History, _: &[Target]) -> Result<Box<dyn Fitted>, ModelError> {
        // A cheap stand-in for a ridge fit: one pass over the history.
        let mean = history.values.iter().filter(|v| !v.is_nan()).sum::<f64>()
            / history.len().max(1) as f64;
        let mut w = [0.0; 64];
        for (i, wi) in w.iter_mut().enumerate() {
            *wi = (1.0 + mean * 1e-9) / (64.0 + i as f64 * 0.0);
        }
        Ok(Box::new(LinearLikeFitted(w)))
    }
}

impl Fitted for LinearLikeFitted {
    fn predict(&self, history: &History) -> Result<Vec<f64>, ModelError> {
        let n = history.values.len();
        if n < 64 {
            return Err(ModelError::TooShort {
                needed: 64,
                have: n,
            });
        }
        let tail = &history.values[n - 64..];
        let lin: f64 = tail.iter().zip(self.0.iter()).map(|(v, w)| v * w).sum();
        let max = tail[48..].iter().copied().fold(f64::MIN, f64::max);
        let mean = tail[32..].iter().sum::<f64>() / 32.0;
        Ok(vec![(0.5 * lin + 0.3 * max + 0.2 * mean).max(0.0)])
    }
}

/// Process CPU time (user + system) from /proc/self/stat, in seconds (10 ms resolution).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

async fn request_phase(full: bool) {
    augur::tls::install_crypto_provider();
    let now = unix_now();
    let history: Vec<(f64, f64)> = (-1440..=180)
        .map(|k| ((now - now % 60 + k * 60) as f64, 60.0))
        .collect();
    let fake = pods_backend("default", 10).with_range(
        r#"sum(sum(rate(http_requests_total{namespace="default",pod=~".+"}[2m])) by (pod))"#,
        vec![RangeSeries {
            labels: Default::default(),
            points: history,
        }],
    );
    let state = app_with_rules(&format!("{PODS_RULES}{FORECAST}"), Arc::new(fake)).await;
    let (registry, backend, engine) = (
        state.registry.clone(),
        state.backend.clone(),
        state.forecast.clone(),
    );
    let server = serve_tls(router(state)).await;
    let client = server.client(None).http1_only().build().unwrap();

    // The first request makes the target and waits for its first forecast (history of 60,
    // persistence → 60 × 1.2 = 72, spread over 10 pods = 7.2 each).
    let twin_url = server.url(TWIN);
    let body: serde_json::Value = client
        .get(&twin_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["items"].as_array().map(Vec::len), Some(10), "{body}");
    assert_eq!(body["items"][0]["value"], "7200m", "{body}");
    assert_eq!(
        body["items"][9]["metric"]["name"],
        "http_requests_per_second_forecast"
    );

    // The first pass opens the client's connections (TLS handshakes) and is not reported.
    for (name, path) in [
        ("warm-up", TWIN),
        ("twin (forecast from cache)", TWIN),
        ("live (reference)", LIVE),
    ] {
        let url = server.url(path);
        let (rate, seconds) = if full { (1000u64, 10u64) } else { (200, 1) };
        let latencies = fixed_rate(&client, &url, rate, seconds).await;
        if name == "warm-up" {
            continue;
        }
        println!(
            "{name}: {rate} req/s for {seconds} s: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.90),
            percentile(&latencies, 0.99),
            latencies[latencies.len() - 1]
        );
    }

    // In process, without TLS and HTTP: the twin's whole path (live query to the instant
    // backend, cache lookup, combination, counters) next to the live metric's.
    let snapshot = registry.load();
    let request = CustomRequest {
        resource: "pods".into(),
        namespace: Some("default".into()),
        name: ObjectName::All,
        metric: "http_requests_per_second_forecast".into(),
        metric_selector: LabelSelector::default(),
        object_selector: LabelSelector::default(),
    };
    let live_request = CustomRequest {
        metric: "http_requests_per_second".into(),
        ..request.clone()
    };
    let (_, twin) = snapshot.custom_twin("pods", true, &request.metric).unwrap();
    let calls = if full { 100_000 } else { 1_000 };
    for name in ["twin in process", "live in process"] {
        let mut latencies = Vec::with_capacity(calls);
        for _ in 0..calls {
            let t = Instant::now();
            let items = if name.starts_with("twin") {
                engine
                    .custom_metric(&snapshot, &request, twin, None, SystemTime::now())
                    .await
                    .unwrap()
            } else {
                custom_metric(
                    &snapshot,
                    backend.as_ref(),
                    &live_request,
                    SystemTime::now(),
                )
                .await
                .unwrap()
            };
            latencies.push(t.elapsed());
            assert_eq!(items.len(), 10);
        }
        latencies.sort();
        println!(
            "{name}: {calls} sequential calls: p50 {:?}, p99 {:?}, max {:?}",
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            latencies[latencies.len() - 1]
        );
    }
}

fn spec(model: &str, history: Duration) -> Arc<ForecastSpec> {
    Arc::new(ForecastSpec {
        line: 1,
        name: "${metric}_forecast".into(),
        model: ModelRef::Builtin(model.into()),
        horizon: Duration::from_secs(600),
        step: Duration::from_secs(60),
        history,
        reduce: Reduce::Max,
        headroom: 0.2,
        serve: ServeMode::Max,
        fallback_window: Duration::from_secs(3600),
    })
}

/// A model whose fit hands out one fitted model made beforehand (so the refresh rounds
/// measure prediction alone; fitting is measured separately).
struct Prefit(Arc<dyn Fitted>);
struct SharedFitted(Arc<dyn Fitted>);

impl Model for Prefit {
    fn name(&self) -> &str {
        "linear"
    }
    fn fit(&self, _: &History, _: &[Target]) -> Result<Box<dyn Fitted>, ModelError> {
        Ok(Box::new(SharedFitted(self.0.clone())))
    }
}

impl Fitted for SharedFitted {
    fn predict(&self, history: &History) -> Result<Vec<f64>, ModelError> {
        self.0.predict(history)
    }
}

const WEEK: u64 = 7 * 86_400;

/// A 7-day history of target `phase` ending at `end`, as the engine would hold it.
fn week_of(end: i64, phase: i64) -> History {
    let len = WEEK as i64 / 60;
    let first = end - (len - 1) * 60;
    let values = (0..len)
        .map(|i| traced(nasa(), first + i * 60, phase))
        .collect();
    History::new(first, 60, values)
}

/// CPU seconds of one fit of the default model on a 7-day history (mean over distinct
/// histories), and a fitted `linear` to predict with.
fn fit_cost(full: bool, end: i64) -> (f64, Arc<dyn Fitted>) {
    let fits = if full { 20 } else { 2 };
    let target = [Target::Max(10)];
    let model = augur::forecast::model::build(augur::forecast::model::DEFAULT).unwrap();
    let mut cpu_total = 0.0;
    let mut walls = Vec::new();
    for phase in 0..fits {
        let history = week_of(end, phase * 3 + 1);
        let (wall, cpu) = (Instant::now(), cpu_seconds());
        model.fit(&history, &target).unwrap();
        cpu_total += cpu_seconds() - cpu;
        walls.push(wall.elapsed());
    }
    walls.sort();
    let per_fit = cpu_total / fits as f64;
    println!(
        "{}: fit on a 7-day history (10,080 buckets, target max@10): CPU {per_fit:.3} s per fit (mean of {fits}), wall median {:.2?}, min {:.2?}",
        augur::forecast::model::DEFAULT,
        percentile(&walls, 0.5),
        walls[0]
    );
    let linear = augur::forecast::model::build("linear").unwrap();
    let fitted = linear.fit(&week_of(end, 0), &target).unwrap();
    (per_fit, Arc::from(fitted))
}

/// The default model's hourly CPU for `targets`: refits at `refit` plus 60 prediction rounds.
fn amortised(targets: usize, fit: f64, round: f64, refit: Duration) -> f64 {
    let fits_per_hour = targets as f64 * 3600.0 / refit.as_secs_f64();
    (fits_per_hour * fit + 60.0 * round) / 3600.0 * 100.0
}

/// Resident memory of this process from /proc/self/status, in KiB: (VmRSS, VmHWM).
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/self/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// What one refresh phase measures.
struct Phase {
    /// The model as configured.
    model: &'static str,
    /// History kept per target.
    history: Duration,
    /// A fitted model every target shares (fits cost nothing; weights are counted once).
    prefit: Option<Arc<dyn Fitted>>,
    /// Histories cut from the NASA trace (else the synthetic daily sine).
    nasa: bool,
    /// Targets created.
    targets: usize,
    /// Refresh rounds after creation.
    rounds: i64,
    /// Create the targets one after another (else all at once, as after a restart).
    sequential: bool,
}

/// Mean CPU seconds of one refresh round of the phase's targets; prints the CPU and the
/// resident memory before and after creating them.
async fn refresh_phase(phase: Phase) -> f64 {
    let Phase {
        model,
        history,
        prefit,
        nasa: use_nasa,
        targets,
        rounds,
        sequential,
    } = phase;
    let shared = prefit.is_some();
    let metric = if use_nasa {
        nasa();
        "nasa_requests_total"
    } else {
        "http_requests_total"
    };
    let factory: Arc<ModelFactory> = Arc::new(move |m: &ModelRef| match m {
        ModelRef::Builtin(name) if name == "linear-like" => {
            Ok(Arc::new(LinearLike) as Arc<dyn Model>)
        }
        ModelRef::Builtin(name) if prefit.is_some() && name == "guarded-linear" => {
            let inner = Box::new(Prefit(prefit.clone().unwrap()));
            Ok(Arc::new(augur::forecast::guard::Guarded::new(inner, None)) as Arc<dyn Model>)
        }
        ModelRef::Builtin(name) => augur::forecast::model::build(name)
            .map(Arc::from)
            .map_err(|e| e.to_string()),
        ModelRef::Onnx(_) => Err("no ONNX here".into()),
    });
    let engine = Engine::with_models(
        Arc::new(Synthetic),
        Arc::new(Metrics::new()),
        EngineOptions {
            first_wait: Duration::from_secs(600),
            max_targets: targets,
            max_series: targets,
            idle_eviction: Some(Duration::from_secs(8 * 86_400)),
            // Real fits: refit daily (as the default), so the rounds do not refit.
            refit_interval: Duration::from_secs(if shared || model != "guarded-linear" {
                3600
            } else {
                86_400
            }),
            concurrency: 64,
            background: false,
        },
        factory,
    );
    let start = unix_now() - unix_now() % 60;
    let at = |t: i64| UNIX_EPOCH + Duration::from_secs(t as u64);
    let spec = spec(model, history);
    let days = history.as_secs() / 86_400;
    let label = match (model, shared) {
        ("guarded-linear", true) => "guarded-linear (one shared fit)".to_owned(),
        ("guarded-linear", false) if sequential => "guarded-linear (real fits)".to_owned(),
        ("guarded-linear", false) => "guarded-linear (real fits, all at once)".to_owned(),
        _ => model.to_owned(),
    };
    let (rss_before, _) = memory_kib();
    // Create every target; each first refresh fetches its history, fits and warm-starts
    // the accuracy tracker over the last hour.
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    let lookups = (0..targets).map(|i| {
        let key = TargetKey {
            rule: "rules[0]".into(),
            metric: "rps_forecast".into(),
            namespace: format!("ns-{i}"),
            promql: format!(r#"sum(rate({metric}{{namespace="ns-{i}"}}[2m]))"#),
            spec: format!("{spec:?}"),
        };
        engine.lookup(key, spec.clone(), SeriesKind::PodSum, at(start))
    });
    // Sequentially, the resident memory halfway too: the growth over the second half is
    // what each further target costs, without what the allocator kept from the first fits.
    let mut rss_half = None;
    let results = if sequential {
        let mut results = Vec::new();
        for (i, lookup) in lookups.enumerate() {
            if i == targets / 2 {
                rss_half = Some(memory_kib().0);
            }
            results.push(lookup.await);
        }
        results
    } else {
        futures::future::join_all(lookups).await
    };
    // Past a queue of first fits, a lookup answers live at once (warming_up) while the fits
    // go on in the background: the targets are created once every one has its frame.
    assert!(results.iter().all(|r| matches!(
        r,
        augur::twin::engine::Lookup::Frame(_)
            | augur::twin::engine::Lookup::Fallback(augur::twin::engine::Reason::WarmingUp)
    )));
    let deadline = Instant::now() + Duration::from_secs(600);
    while engine.targets().iter().any(|t| t.frame().is_none()) {
        assert!(Instant::now() < deadline, "first forecasts not all made");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "{label}: creating {targets} targets ({days} day(s) of history each, first fit, warm start): wall {:.2?}, CPU {:.2} s",
        wall.elapsed(),
        cpu_seconds() - cpu
    );
    let (rss_created, _) = memory_kib();
    let mut per_round = Vec::new();
    for r in 1..=rounds {
        let (wall, cpu) = (Instant::now(), cpu_seconds());
        engine.round(at(start + 60 * r)).await;
        let cpu = cpu_seconds() - cpu;
        per_round.push(cpu);
        if r <= 5 {
            println!(
                "{label}: refresh round {r} of {targets} targets: wall {:.2?}, CPU {cpu:.2} s",
                wall.elapsed()
            );
        }
    }
    if rounds > 5 {
        println!(
            "{label}: refresh rounds 6..={rounds} (a day of serving: the guard's error window fills, each model refits once): CPU {:.2} s in all",
            per_round[5..].iter().sum::<f64>()
        );
    }
    let mut served = 0;
    for target in engine.targets() {
        let frame = target.frame().unwrap();
        assert_eq!(frame.origin, start + 60 * rounds);
        match frame.series.get("sum") {
            Some(Ok(v)) if *v >= 0.0 => served += 1,
            Some(Err(augur::twin::engine::Reason::WorseThanPersistence)) => {}
            other => panic!("{other:?}"),
        }
    }
    println!(
        "{label}: {served} of {targets} targets serve their forecast (the rest: worse than persistence)"
    );
    let (rss_after, hwm) = memory_kib();
    let per_target = |kib: u64| (kib.saturating_sub(rss_before)) as f64 / targets as f64;
    println!(
        "{label}: memory ({days}-day histories at 1m): VmRSS {:.1} MiB before, {:.1} MiB after creating {targets} targets ({:.1} KiB per target), {:.1} MiB after {rounds} rounds ({:.1} KiB per target); VmHWM {:.1} MiB",
        mib(rss_before),
        mib(rss_created),
        per_target(rss_created),
        mib(rss_after),
        per_target(rss_after),
        mib(hwm)
    );
    if let Some(half) = rss_half {
        let second_half = (targets - targets / 2) as f64;
        let marginal = rss_created.saturating_sub(half) as f64 / second_half;
        let rounds_growth = rss_after.saturating_sub(rss_created) as f64 / targets as f64;
        println!(
            "{label}: marginal memory: {marginal:.1} KiB per target created (targets {}..{targets}) + {rounds_growth:.1} KiB per target over {rounds} rounds = {:.1} KiB per target",
            targets / 2 + 1,
            marginal + rounds_growth
        );
    }
    assert_eq!(engine.target_count(), targets);
    if per_round.is_empty() {
        return 0.0;
    }
    let mean = per_round.iter().sum::<f64>() / per_round.len() as f64;
    println!(
        "{label}: mean CPU per minute-round {mean:.3} s = {:.2} % of one core (target < 10 %)",
        mean / 60.0 * 100.0
    );
    mean
}

/// One phase, run in this process (the child the parent started for it).
async fn run_phase(full: bool, name: &str) {
    let targets = if full { 10_000 } else { 200 };
    let rounds = if full { 5 } else { 2 };
    let day = Duration::from_secs(86_400);
    let week = Duration::from_secs(WEEK);
    let phase = |model, history, nasa| Phase {
        model,
        history,
        prefit: None,
        nasa,
        targets,
        rounds,
        sequential: false,
    };
    match name {
        "persistence-1d" => {
            refresh_phase(phase("persistence", day, false)).await;
        }
        "linear-like-1d" => {
            refresh_phase(phase("linear-like", day, false)).await;
        }
        "persistence-7d" => {
            refresh_phase(phase("persistence", week, true)).await;
        }
        "guarded-linear-7d" => {
            let end = unix_now() - unix_now() % 60;
            let (fit, fitted) = fit_cost(full, end);
            let round = refresh_phase(Phase {
                prefit: Some(fitted),
                ..phase(augur::forecast::model::DEFAULT, week, true)
            })
            .await;
            for refit in [3600, 86_400] {
                println!(
                    "{}: {targets} targets, refit every {} h: ({:.0} fits/h x {fit:.3} s + 60 rounds x {round:.3} s) / 3600 s = {:.2} % of one core (target < 10 %)",
                    augur::forecast::model::DEFAULT,
                    refit / 3600,
                    targets as f64 * 3600.0 / refit as f64,
                    amortised(targets, fit, round, Duration::from_secs(refit))
                );
            }
        }
        "guarded-linear-7d-fitted" => {
            // Every target fits its own model (0.2-0.4 s of CPU each), so fewer of them, one
            // after another (concurrent fits would leave their scratch in many arenas),
            // then a day and a horizon of rounds: the steady state of a served target.
            refresh_phase(Phase {
                targets: if full { 300 } else { 2 },
                rounds: if full { 1450 } else { 2 },
                sequential: true,
                ..phase(augur::forecast::model::DEFAULT, week, true)
            })
            .await;
        }
        "guarded-linear-7d-burst" => {
            // As after a restart: many targets requested at once, each fitting its own
            // model; the peak (VmHWM) is what the memory limit must hold.
            refresh_phase(Phase {
                targets: if full { 400 } else { 2 },
                rounds: 1,
                ..phase(augur::forecast::model::DEFAULT, week, true)
            })
            .await;
        }
        other => panic!("unknown phase {other}"),
    }
}

/// Runs a phase in a child process (so its resident memory starts from a fresh process,
/// not from the pages earlier phases left to the allocator) and echoes its report.
fn child(full: bool, name: &str) {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    if full {
        command.arg("--bench");
    }
    let output = command
        .args(["--phase", name])
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    print!("{report}");
    assert!(output.status.success(), "phase {name}: {}", output.status);
    assert!(
        report.contains("KiB per target"),
        "phase {name} reported no memory"
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Some(i) = args.iter().position(|a| a == "--phase") {
        let name = args.get(i + 1).unwrap().clone();
        runtime.block_on(run_phase(full, &name));
        return;
    }
    runtime.block_on(request_phase(full));
    for name in [
        "persistence-1d",
        "linear-like-1d",
        "persistence-7d",
        "guarded-linear-7d",
        "guarded-linear-7d-fitted",
        "guarded-linear-7d-burst",
    ] {
        child(full, name);
    }
}
