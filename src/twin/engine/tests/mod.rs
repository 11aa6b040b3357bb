//! Engine unit tests over the fake backend, and their fixtures (config, snapshot, fake
//! backend, requests, test models): [`serving`], [`fallback`], [`history`], [`limits`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod fallback;
mod history;
mod limits;
mod serving;

use crate::config::{self, ForecastSpec, ModelRef, Reduce, ServeMode, UnknownResources};
use crate::forecast::{Fitted, History, Model, ModelError, Target};
use crate::prometheus::fake::{Call, FakeBackend, labels, sample};
use crate::prometheus::{Error as BackendError, QueryResult, RangeSeries};
use crate::promql::selector::LabelSelector;
use crate::provider::{CustomRequest, ExternalRequest, ObjectName, ProviderError};
use crate::resources::ResourceTable;
use crate::series::{Listing, Snapshot};
use crate::telemetry::Metrics;

use super::targets::fingerprint;
use super::*;

/// An aligned "now": a multiple of 60 s.
const NOW: i64 = 1_800_000_000;
const METRIC: &str = "http_requests_per_second_forecast";

const CONFIG: &str = r#"
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}, service: {resource: service}}}
  name: {matches: "^(.*)_total$", as: "${1}_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
  forecast: {model: persistence, horizon: 5m, step: 1m, history: 1h, headroom: 0.5, fallbackWindow: 0}
externalRules:
- seriesQuery: 'queue_messages_ready'
  resources: {overrides: {namespace: {resource: namespace}}}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (queue)'
  forecast: {model: persistence, horizon: 5m, history: 1h}
"#;

fn t(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs as u64)
}

fn snapshot(config_text: &str, file: &str) -> Snapshot {
    let table = Arc::new(ResourceTable::builtin());
    let config =
        Arc::new(config::parse(config_text, file, &table, UnknownResources::Reject).unwrap());
    let mut listings = HashMap::new();
    listings.insert(
        r#"http_requests_total{namespace!="",pod!=""}"#.to_owned(),
        Listing::reduce(
            &[labels(&[
                ("__name__", "http_requests_total"),
                ("namespace", "default"),
                ("pod", "web-1"),
                ("service", "web"),
            ])],
            t(NOW),
        ),
    );
    listings.insert(
        "queue_messages_ready".to_owned(),
        Listing::reduce(
            &[labels(&[
                ("__name__", "queue_messages_ready"),
                ("namespace", "default"),
                ("queue", "orders"),
            ])],
            t(NOW),
        ),
    );
    Snapshot::build(config, table, &listings, Some(t(NOW)))
}

fn options() -> EngineOptions {
    EngineOptions {
        first_wait: Duration::from_secs(5),
        max_targets: 100,
        max_series: 100,
        idle_eviction: None,
        refit_interval: Duration::from_secs(3600),
        concurrency: 4,
        background: false,
    }
}

/// Points at `end - (n-1)*60 ..= end`, one per value.
fn points(end: i64, values: &[f64]) -> Vec<(f64, f64)> {
    let n = values.len() as i64;
    values
        .iter()
        .enumerate()
        .map(|(i, v)| ((end - (n - 1 - i as i64) * 60) as f64, *v))
        .collect()
}

fn range(pairs: &[(&str, &str)], end: i64, values: &[f64]) -> RangeSeries {
    RangeSeries {
        labels: labels(pairs),
        points: points(end, values),
    }
}

fn live_pods(ns: &str) -> String {
    format!(r#"sum(rate(http_requests_total{{namespace="{ns}",pod=~".+"}}[2m])) by (pod)"#)
}

fn sum_pods(ns: &str) -> String {
    format!("sum({})", live_pods(ns))
}

fn pods_request(ns: &str) -> CustomRequest {
    CustomRequest {
        resource: "pods".into(),
        namespace: Some(ns.into()),
        name: ObjectName::All,
        metric: METRIC.into(),
        metric_selector: LabelSelector::default(),
        object_selector: LabelSelector::default(),
    }
}

/// An engine over `fake` with the test options, and its metrics.
fn engine_over(fake: &Arc<FakeBackend>) -> (Arc<Metrics>, Arc<Engine>) {
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::new(fake.clone(), metrics.clone(), options());
    (metrics, engine)
}

/// The External twin of `CONFIG` over queue `a`, answered live 1, with `ranges` as the
/// range answer.
fn queue_a(ranges: Vec<RangeSeries>) -> (Snapshot, Arc<FakeBackend>, Arc<Metrics>, Arc<Engine>) {
    let snap = snapshot(CONFIG, "t.yaml");
    let fake = fake();
    fake.set_query(
        QUEUES_LIVE,
        QueryResult::Vector(vec![sample(&[("queue", "a")], 1.0)]),
    );
    fake.set_range(QUEUES_LIVE, ranges);
    let (metrics, engine) = engine_over(&fake);
    (snap, fake, metrics, engine)
}

/// An engine with persistence on a steady pods sum (9 for an hour, `clip`: range answers
/// only within the asked range, as Prometheus), after its first request: 9 × 1.5 = 13.5
/// spread over 3 pods is 4.5 each.
async fn steady_pods(clip: bool) -> (Snapshot, Arc<FakeBackend>, Arc<Metrics>, Arc<Engine>) {
    let snap = snapshot(CONFIG, "t.yaml");
    let fake = fake();
    fake.clip_ranges(clip);
    fake.set_range(sum_pods("default"), vec![range(&[], NOW, &[9.0; 60])]);
    let (metrics, engine) = engine_over(&fake);
    assert_eq!(serve_pods(&engine, &snap, "default", NOW).await[0].1, 4.5);
    (snap, fake, metrics, engine)
}

/// A fake whose live pod queries answer web-1..3 = 1, 2, 3 in every namespace.
fn fake() -> Arc<FakeBackend> {
    Arc::new(FakeBackend::new().with_query_fn(|q, _| {
        if q.contains("by (pod)") {
            Ok(QueryResult::Vector(vec![
                sample(&[("pod", "web-1")], 1.0),
                sample(&[("pod", "web-2")], 2.0),
                sample(&[("pod", "web-3")], 3.0),
            ]))
        } else {
            Ok(QueryResult::Vector(Vec::new()))
        }
    }))
}

async fn serve_pods(engine: &Engine, snap: &Snapshot, ns: &str, now: i64) -> Vec<(String, f64)> {
    serve_custom(engine, snap, &pods_request(ns), now).await
}

/// Serves the twin `request` asks for at `now`: (object, value) per item.
async fn serve_custom(
    engine: &Engine,
    snap: &Snapshot,
    request: &CustomRequest,
    now: i64,
) -> Vec<(String, f64)> {
    let (_, twin) = snap.custom_twin(&request.resource, true, METRIC).unwrap();
    let items = engine
        .custom_metric(snap, request, twin, None, t(now))
        .await
        .unwrap();
    items
        .into_iter()
        .map(|i| {
            assert_eq!(i.metric, METRIC);
            (i.name, i.value)
        })
        .collect()
}

/// The External rule's live query in namespace default.
const QUEUES_LIVE: &str = r#"sum(queue_messages_ready{namespace="default"}) by (queue)"#;

/// Serves the External twin in namespace default: (labels, value) per series.
async fn serve_queues(engine: &Engine, snap: &Snapshot, now: i64) -> Vec<(String, f64)> {
    let request = ExternalRequest {
        namespace: "default".into(),
        metric: "queue_messages_ready_forecast".into(),
        selector: LabelSelector::default(),
    };
    let twin = snap.external_twins.get(&request.metric).unwrap();
    let items = engine
        .external_metric(snap, &request, twin, t(now))
        .await
        .unwrap();
    items
        .into_iter()
        .map(|i| {
            assert_eq!(i.metric, request.metric);
            (label_text(i.labels.as_ref().unwrap()), i.value)
        })
        .collect()
}

fn live() -> Vec<(String, f64)> {
    vec![
        ("web-1".into(), 1.0),
        ("web-2".into(), 2.0),
        ("web-3".into(), 3.0),
    ]
}

/// The value of the first /metrics line starting with `prefix` (labels included).
fn metric(metrics: &Metrics, prefix: &str) -> Option<f64> {
    metrics
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|rest| rest.trim().parse().ok())
}

fn fallback_line(ns: &str, object: &str, reason: &str) -> String {
    format!(
        r#"augur_forecast_fallback{{rule="rules[0]",metric="{METRIC}",namespace="{ns}",object="{object}",reason="{reason}"}} "#
    )
}

fn served_line(source: &str, reason: &str) -> String {
    format!(
        r#"augur_forecast_served_total{{rule="rules[0]",metric="{METRIC}",source="{source}",reason="{reason}"}} "#
    )
}

fn assert_close(got: f64, want: f64) {
    assert!((got - want).abs() < 1e-9, "got {got}, want {want}");
}

fn spec(serve: ServeMode, headroom: f64) -> ForecastSpec {
    ForecastSpec {
        line: 1,
        name: "${metric}_forecast".into(),
        model: ModelRef::Builtin("persistence".into()),
        horizon: Duration::from_secs(600),
        step: Duration::from_secs(60),
        history: Duration::from_secs(3600),
        reduce: Reduce::Max,
        headroom,
        serve,
        fallback_window: Duration::ZERO,
    }
}

/// A model named `.0` whose fit is always `.1`: the test models below and in the submodules.
struct Fixed<F>(&'static str, F);
impl<F: Fitted + Clone + 'static> Model for Fixed<F> {
    fn name(&self) -> &str {
        self.0
    }
    fn fit(&self, _: &History, _: &[Target]) -> Result<Box<dyn Fitted>, ModelError> {
        Ok(Box::new(self.1.clone()))
    }
}

/// A fitted model whose predictions are always 0 (`Fixed("zero", ZeroFitted)`).
#[derive(Clone)]
struct ZeroFitted;
impl Fitted for ZeroFitted {
    fn predict(&self, _: &History) -> Result<Vec<f64>, ModelError> {
        Ok(vec![0.0])
    }
}

/// A model that cannot be fitted.
struct Broken;
impl Model for Broken {
    fn name(&self) -> &str {
        "broken"
    }
    fn fit(&self, _: &History, _: &[Target]) -> Result<Box<dyn Fitted>, ModelError> {
        Err(ModelError::Invalid("broken on purpose".into()))
    }
}

/// Persistence that records the size of every `predict_batch` call.
struct Counting(Arc<Mutex<Vec<usize>>>);
struct CountingFitted(Arc<Mutex<Vec<usize>>>);
impl Model for Counting {
    fn name(&self) -> &str {
        "counting"
    }
    fn fit(&self, _: &History, _: &[Target]) -> Result<Box<dyn Fitted>, ModelError> {
        Ok(Box::new(CountingFitted(self.0.clone())))
    }
}
impl Fitted for CountingFitted {
    fn predict(&self, history: &History) -> Result<Vec<f64>, ModelError> {
        Ok(vec![history.values.last().copied().unwrap_or(0.0)])
    }
    fn predict_batch(&self, histories: &[&History]) -> Vec<Result<Vec<f64>, ModelError>> {
        self.0.lock().unwrap().push(histories.len());
        histories.iter().map(|h| self.predict(h)).collect()
    }
}

fn with_model(config_text: &str, model: Arc<dyn Model>) -> (Snapshot, Arc<ModelFactory>) {
    let factory: Arc<ModelFactory> = Arc::new(move |_: &ModelRef| Ok(model.clone()));
    (snapshot(config_text, "t.yaml"), factory)
}

fn range_calls(fake: &FakeBackend) -> Vec<(i64, i64)> {
    fake.calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::QueryRange {
                start, end, step, ..
            } => {
                assert_eq!(step, Duration::from_secs(60));
                let s = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
                Some((s(start), s(end)))
            }
            _ => None,
        })
        .collect()
}

/// Persistence whose fit takes a while and records how many fits run at once.
struct SlowFit {
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    most: Arc<std::sync::atomic::AtomicUsize>,
}
impl Model for SlowFit {
    fn name(&self) -> &str {
        "slow-fit"
    }
    fn fit(&self, history: &History, targets: &[Target]) -> Result<Box<dyn Fitted>, ModelError> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        std::thread::sleep(Duration::from_millis(30));
        self.in_flight.fetch_sub(1, SeqCst);
        crate::forecast::model::Persistence.fit(history, targets)
    }
}

// Backends that answer range queries unusually (VictoriaMetrics, Thanos, Mimir, or a
// misbehaving proxy): the twin must serve the forecast of the points on the grid, or live
// with a reason, never fail or panic.

/// The External twin over queue `a` answered live 1, with `points` as its range answer.
async fn serve_queue_points(points: Vec<(f64, f64)>) -> (Vec<(String, f64)>, Arc<Metrics>) {
    let (snap, _, metrics, engine) = queue_a(vec![RangeSeries {
        labels: labels(&[("queue", "a")]),
        points,
    }]);
    (serve_queues(&engine, &snap, NOW).await, metrics)
}

/// A model whose fit panics (a bug in a model must not take its twin down).
struct Panicking;
impl Model for Panicking {
    fn name(&self) -> &str {
        "panicking"
    }
    fn fit(&self, _: &History, _: &[Target]) -> Result<Box<dyn Fitted>, ModelError> {
        panic!("a bug in a model")
    }
}
