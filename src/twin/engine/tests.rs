//! Engine unit tests over the fake backend: served values per metric type, every fallback
//! trigger served as live with its reason in /metrics, incremental history fetches,
//! eviction, the target limit, first-wait, batching and accuracy figures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// An engine with persistence on a steady pods sum (9 for an hour, `clip`: range answers
/// only within the asked range, as Prometheus), after its first request: 9 × 1.5 = 13.5
/// spread over 3 pods is 4.5 each.
async fn steady_pods(clip: bool) -> (Snapshot, Arc<FakeBackend>, Arc<Metrics>, Arc<Engine>) {
    let snap = snapshot(CONFIG, "t.yaml");
    let fake = fake();
    fake.clip_ranges(clip);
    fake.set_range(sum_pods("default"), vec![range(&[], NOW, &[9.0; 60])]);
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::new(fake.clone(), metrics.clone(), options());
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
    let (_, twin) = snap.custom_twin("pods", true, METRIC).unwrap();
    let items = engine
        .custom_metric(snap, &pods_request(ns), twin, None, t(now))
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

#[test]
fn pods_get_the_combined_sum_divided_by_their_count() {
    let s = spec(ServeMode::Max, 0.5);
    // forecast 5 → 7.5 > live 6: every pod gets 7.5 / 3, so the HPA average × 3 = 7.5.
    assert_eq!(pod_values(&s, &[1.0, 2.0, 3.0], Some(5.0)), vec![2.5; 3]);
    // forecast 3 → 4.5 < live 6: the live sum, spread evenly.
    assert_eq!(pod_values(&s, &[1.0, 2.0, 3.0], Some(3.0)), vec![2.0; 3]);
    let f = spec(ServeMode::Forecast, 0.5);
    assert_eq!(pod_values(&f, &[1.0, 2.0, 3.0], Some(3.0)), vec![1.5; 3]);
    // No forecast: live values untouched; no pods: nothing.
    assert_eq!(pod_values(&s, &[1.0, 4.0], None), vec![1.0, 4.0]);
    assert!(pod_values(&s, &[], Some(9.0)).is_empty());
    // HPA: ceil(sum of served / target) = ceil(forecast·(1+h) / target).
    let served: f64 = pod_values(&s, &[0.4, 0.4, 0.4, 0.4], Some(10.0))
        .iter()
        .sum();
    assert_close(served, 15.0);
    assert_close(served_value(&s, 7.0, 2.0), 7.0);
    assert_close(served_value(&f, 7.0, 2.0), 3.0);
}

#[tokio::test]
async fn twins_are_discovered_and_served_for_pods_objects_and_external() {
    let snap = snapshot(CONFIG, "t.yaml");
    let custom = snap.custom_resources();
    for entry in [
        ("pods/http_requests_per_second", true),
        ("pods/http_requests_per_second_forecast", true),
        ("services/http_requests_per_second_forecast", true),
        ("namespaces/http_requests_per_second_forecast", false),
    ] {
        assert!(
            custom.contains(&(entry.0.to_owned(), entry.1)),
            "{entry:?} not in {custom:?}"
        );
    }
    assert_eq!(
        snap.external_metrics(),
        vec!["queue_messages_ready", "queue_messages_ready_forecast"]
    );

    let fake = fake();
    let svc_live =
        r#"sum(rate(http_requests_total{namespace="default",service="web"}[2m])) by (service)"#;
    fake.set_range(sum_pods("default"), vec![range(&[], NOW, &[9.0; 60])]);
    fake.set_query(
        svc_live,
        QueryResult::Vector(vec![sample(&[("service", "web")], 6.0)]),
    );
    fake.set_range(
        svc_live,
        vec![range(&[("service", "web")], NOW, &[8.0; 60])],
    );
    fake.set_query(
        QUEUES_LIVE,
        QueryResult::Vector(vec![
            sample(&[("queue", "orders")], 50.0),
            sample(&[("queue", "payments")], 7.0),
        ]),
    );
    let ramp: Vec<f64> = (1..=60).map(f64::from).collect();
    fake.set_range(
        QUEUES_LIVE,
        vec![
            range(&[("queue", "orders")], NOW, &ramp),
            range(&[("queue", "payments")], NOW, &[10.0; 60]),
        ],
    );
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::new(fake.clone(), metrics.clone(), options());

    // Pods: persistence forecasts the sum 9; 9 × 1.5 = 13.5 > live 6 → 4.5 per pod.
    let served = serve_pods(&engine, &snap, "default", NOW).await;
    assert_eq!(
        served,
        vec![
            ("web-1".to_owned(), 4.5),
            ("web-2".to_owned(), 4.5),
            ("web-3".to_owned(), 4.5)
        ]
    );
    // Object: live 6, forecast 8 × 1.5 = 12.
    let request = CustomRequest {
        resource: "services".into(),
        name: ObjectName::Named("web".into()),
        ..pods_request("default")
    };
    let (_, twin) = snap.custom_twin("services", true, METRIC).unwrap();
    let items = engine
        .custom_metric(&snap, &request, twin, None, t(NOW))
        .await
        .unwrap();
    assert_eq!(
        items
            .iter()
            .map(|i| (i.name.as_str(), i.value))
            .collect::<Vec<_>>(),
        vec![("web", 12.0)]
    );
    // External: orders max(50, 60) = 60; payments max(7, 10) = 10 (no headroom).
    assert_eq!(
        serve_queues(&engine, &snap, NOW).await,
        vec![
            (r#"{queue="orders"}"#.to_owned(), 60.0),
            (r#"{queue="payments"}"#.to_owned(), 10.0)
        ]
    );

    // The twin's own queries: sum() for pods, the rule's query otherwise.
    let ranges: Vec<String> = fake
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::QueryRange { promql, .. } => Some(promql),
            _ => None,
        })
        .collect();
    assert_eq!(
        ranges,
        vec![
            sum_pods("default"),
            svc_live.to_owned(),
            QUEUES_LIVE.to_owned()
        ]
    );

    // /metrics: forecast, live, realised and accuracy per series.
    let pods = r#"{rule="rules[0]",metric="http_requests_per_second_forecast",namespace="default",object="sum"} "#;
    assert_eq!(
        metric(&metrics, &format!("augur_forecast_value{pods}")),
        Some(13.5)
    );
    assert_eq!(
        metric(&metrics, &format!("augur_forecast_origin_value{pods}")),
        Some(9.0)
    );
    assert_eq!(
        metric(&metrics, &format!("augur_forecast_realised_value{pods}")),
        Some(9.0)
    );
    assert_eq!(metric(&metrics, &served_line("forecast", "")), Some(4.0));
    // Orders: persistence on a ramp of +1 per step misses the 5-step max by 5 every time,
    // exactly as persistence does; the warm start replays the 55 origins in the history.
    let orders = r#"{rule="externalRules[0]",metric="queue_messages_ready_forecast",namespace="default",object="queue=orders"} "#;
    assert_eq!(
        metric(&metrics, &format!("augur_forecast_mae{orders}")),
        Some(5.0)
    );
    assert_eq!(
        metric(&metrics, &format!("augur_forecast_persistence_mae{orders}")),
        Some(5.0)
    );
    // The tracker keeps each relative error as f32 (7 significant digits).
    let mape: f64 = (0..55)
        .map(|o| f64::from((5.0 / f64::from(o + 6)) as f32) * 100.0)
        .sum::<f64>()
        / 55.0;
    assert_close(
        metric(&metrics, &format!("augur_forecast_mape{orders}")).unwrap(),
        mape,
    );
    assert_eq!(
        metric(&metrics, &format!("augur_forecast_realised_value{orders}")),
        Some(60.0)
    );
    assert_eq!(metric(&metrics, "augur_forecast_targets "), Some(3.0));
}

/// A model whose predictions are always 0.
struct Zero;
struct ZeroFitted;
impl Model for Zero {
    fn name(&self) -> &str {
        "zero"
    }
    fn fit(&self, _: &History, _: &[Target]) -> Result<Box<dyn Fitted>, ModelError> {
        Ok(Box::new(ZeroFitted))
    }
}
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

#[tokio::test]
async fn every_fallback_serves_live_with_its_reason_in_metrics() {
    let snap = snapshot(CONFIG, "t.yaml");
    let fake = fake();
    let full = [9.0; 60];
    fake.set_range(sum_pods("short"), vec![range(&[], NOW, &[9.0; 3])]);
    let mut gappy = full;
    gappy[57] = f64::NAN;
    fake.set_range(sum_pods("gap"), vec![range(&[], NOW, &gappy)]);
    fake.fail_on(
        sum_pods("failing"),
        BackendError::Api {
            error_type: "execution".into(),
            message: "boom".into(),
        },
    );
    fake.set_range(sum_pods("stale"), vec![range(&[], NOW, &full)]);
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::new(fake.clone(), metrics.clone(), options());

    assert_eq!(serve_pods(&engine, &snap, "short", NOW).await, live());
    assert_eq!(
        metric(&metrics, &fallback_line("short", "sum", "history_short")),
        Some(1.0)
    );
    assert_eq!(
        metric(&metrics, &served_line("live", "history_short")),
        Some(3.0)
    );

    assert_eq!(serve_pods(&engine, &snap, "gap", NOW).await, live());
    assert_eq!(
        metric(&metrics, &fallback_line("gap", "sum", "history_gap")),
        Some(1.0)
    );

    assert_eq!(serve_pods(&engine, &snap, "failing", NOW).await, live());
    assert_eq!(
        metric(&metrics, &served_line("live", "query_failed")),
        Some(3.0)
    );

    // Fresh at NOW, stale three steps later without a refresh.
    let fresh = serve_pods(&engine, &snap, "stale", NOW).await;
    assert_eq!(fresh[0].1, 4.5);
    assert_eq!(serve_pods(&engine, &snap, "stale", NOW + 180).await, live());
    assert_eq!(metric(&metrics, &served_line("live", "stale")), Some(3.0));

    // A series the history does not have: a second service answered live.
    let svc_live =
        r#"sum(rate(http_requests_total{namespace="default",service=~".+"}[2m])) by (service)"#;
    fake.set_query(
        svc_live,
        QueryResult::Vector(vec![
            sample(&[("service", "api")], 2.0),
            sample(&[("service", "web")], 6.0),
        ]),
    );
    fake.set_range(svc_live, vec![range(&[("service", "web")], NOW, &full)]);
    let request = CustomRequest {
        resource: "services".into(),
        ..pods_request("default")
    };
    let (_, twin) = snap.custom_twin("services", true, METRIC).unwrap();
    let items = engine
        .custom_metric(&snap, &request, twin, None, t(NOW))
        .await
        .unwrap();
    assert_eq!(
        items
            .iter()
            .map(|i| (i.name.as_str(), i.value))
            .collect::<Vec<_>>(),
        vec![("api", 2.0), ("web", 13.5)]
    );
    assert_eq!(
        metric(&metrics, &served_line("live", "no_history")),
        Some(1.0)
    );

    // Recovery: the short history fills up, the fallback gauge goes away.
    fake.set_range(sum_pods("short"), vec![range(&[], NOW + 60, &[9.0; 61])]);
    engine.round(t(NOW + 60)).await;
    assert_eq!(
        serve_pods(&engine, &snap, "short", NOW + 60).await[0].1,
        4.5
    );
    assert_eq!(
        metric(&metrics, &fallback_line("short", "sum", "history_short")),
        None
    );
}

#[tokio::test]
async fn a_stale_forecast_is_on_the_fallback_gauge_until_refreshes_succeed_again() {
    let snap = snapshot(CONFIG, "t.yaml");
    let fake = fake();
    fake.set_range(sum_pods("stale"), vec![range(&[], NOW, &[9.0; 60])]);
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::new(fake.clone(), metrics.clone(), options());
    let stale = fallback_line("stale", "sum", "stale");
    assert_eq!(serve_pods(&engine, &snap, "stale", NOW).await[0].1, 4.5);

    // Refreshes fail (requests are answered between rounds, when the live query works);
    // the forecast made at NOW is still served two steps later.
    let failing_round = |at: i64| {
        let (engine, fake) = (engine.clone(), fake.clone());
        async move {
            fake.fail_all(Some(BackendError::Api {
                error_type: "execution".into(),
                message: "boom".into(),
            }));
            engine.round(t(at)).await;
            fake.fail_all(None);
        }
    };
    for at in [NOW + 60, NOW + 120] {
        failing_round(at).await;
        assert_eq!(metric(&metrics, &stale), None, "at NOW + {}", at - NOW);
    }
    assert_eq!(
        serve_pods(&engine, &snap, "stale", NOW + 120).await[0].1,
        4.5
    );
    // Three steps on it is stale: served live, and the gauge says why.
    failing_round(NOW + 180).await;
    assert_eq!(serve_pods(&engine, &snap, "stale", NOW + 180).await, live());
    assert_eq!(metric(&metrics, &served_line("live", "stale")), Some(3.0));
    assert_eq!(metric(&metrics, &stale), Some(1.0));

    // Prometheus answers again: the forecast is served and the gauge goes away.
    fake.set_range(sum_pods("stale"), vec![range(&[], NOW + 240, &[9.0; 60])]);
    engine.round(t(NOW + 240)).await;
    assert_eq!(
        serve_pods(&engine, &snap, "stale", NOW + 240).await[0].1,
        4.5
    );
    assert_eq!(metric(&metrics, &stale), None);
}

#[tokio::test]
async fn model_errors_and_bad_accuracy_serve_live() {
    let fake = fake();
    fake.set_range(sum_pods("default"), vec![range(&[], NOW, &[9.0; 60])]);
    let (snap, factory) = with_model(CONFIG, Arc::new(Broken));
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::with_models(fake.clone(), metrics.clone(), options(), factory);
    assert_eq!(serve_pods(&engine, &snap, "default", NOW).await, live());
    assert_eq!(
        metric(&metrics, &fallback_line("default", "sum", "model_error")),
        Some(1.0)
    );

    // A model that always says 0 on a constant 9: the warm start over the 5-minute window
    // already shows it worse than persistence (MAE 9 vs 0).
    let config = CONFIG.replace("fallbackWindow: 0", "fallbackWindow: 5m");
    let (snap, factory) = with_model(&config, Arc::new(Zero));
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::with_models(fake.clone(), metrics.clone(), options(), factory);
    assert_eq!(serve_pods(&engine, &snap, "default", NOW).await, live());
    assert_eq!(
        metric(
            &metrics,
            &fallback_line("default", "sum", "worse_than_persistence")
        ),
        Some(1.0)
    );
    let labels = r#"{rule="rules[0]",metric="http_requests_per_second_forecast",namespace="default",object="sum"} "#;
    assert_eq!(
        metric(&metrics, &format!("augur_forecast_mae{labels}")),
        Some(9.0)
    );
    assert_eq!(
        metric(&metrics, &format!("augur_forecast_persistence_mae{labels}")),
        Some(0.0)
    );
    assert_eq!(
        metric(&metrics, &format!("augur_forecast_value{labels}")),
        Some(0.0)
    );
}

#[tokio::test]
async fn first_wait_and_max_targets_serve_live() {
    let snap = snapshot(CONFIG, "t.yaml");
    let fake = fake();
    fake.set_range(sum_pods("default"), vec![range(&[], NOW, &[9.0; 60])]);
    fake.set_range(sum_pods("other"), vec![range(&[], NOW, &[9.0; 60])]);
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::new(
        fake.clone(),
        metrics.clone(),
        EngineOptions {
            first_wait: Duration::from_millis(20),
            max_targets: 1,
            ..options()
        },
    );
    fake.set_delay(Duration::from_millis(300));
    assert_eq!(serve_pods(&engine, &snap, "default", NOW).await, live());
    assert_eq!(
        metric(&metrics, &served_line("live", "warming_up")),
        Some(3.0)
    );
    // The first refresh finishes in the background; the next request has the forecast.
    tokio::time::sleep(Duration::from_millis(400)).await;
    fake.set_delay(Duration::ZERO);
    assert_eq!(serve_pods(&engine, &snap, "default", NOW).await[0].1, 4.5);

    assert_eq!(serve_pods(&engine, &snap, "other", NOW).await, live());
    assert_eq!(
        metric(&metrics, &served_line("live", "max_targets")),
        Some(3.0)
    );
    assert_eq!(
        metric(&metrics, "augur_forecast_refused_targets_total "),
        Some(1.0)
    );
    assert_eq!(engine.target_count(), 1);
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

#[tokio::test]
async fn history_is_extended_incrementally() {
    let (snap, fake, _, engine) = steady_pods(false).await;
    // The first fetch covers the whole history: 60 buckets ending now.
    assert_eq!(range_calls(&fake), vec![(NOW - 59 * 60, NOW)]);

    let mut extended = vec![9.0; 60];
    extended.push(12.0);
    fake.set_range(sum_pods("default"), vec![range(&[], NOW + 60, &extended)]);
    engine.round(t(NOW + 30)).await; // nothing due yet
    engine.round(t(NOW + 60)).await;
    engine.round(t(NOW + 90)).await; // nothing due
    extended.extend([13.0, 14.0]);
    fake.set_range(sum_pods("default"), vec![range(&[], NOW + 180, &extended)]);
    engine.round(t(NOW + 185)).await; // one step missed: both buckets at once
    assert_eq!(
        range_calls(&fake),
        vec![
            (NOW - 59 * 60, NOW),
            // Each refresh asks again for the newest bucket it has (REFETCH_STEPS).
            (NOW, NOW + 60),
            (NOW + 60, NOW + 180)
        ]
    );
    // Persistence now forecasts the newest bucket: 14 × 1.5 = 21 → 7 per pod.
    assert_eq!(
        serve_pods(&engine, &snap, "default", NOW + 185).await[0].1,
        7.0
    );
    let key = engine.targets()[0].key().clone();
    let frame = engine.target(&key).unwrap().frame().unwrap();
    assert_eq!(frame.origin, NOW + 180);
    assert_eq!(frame.series.get("sum"), Some(&Ok(14.0)));
}

#[tokio::test]
async fn idle_targets_are_evicted_with_their_metrics() {
    let snap = snapshot(CONFIG, "t.yaml");
    let fake = fake();
    fake.set_range(sum_pods("a"), vec![range(&[], NOW, &[9.0; 60])]);
    fake.set_range(sum_pods("b"), vec![range(&[], NOW, &[9.0; 60])]);
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::new(fake.clone(), metrics.clone(), options());
    serve_pods(&engine, &snap, "a", NOW).await;
    serve_pods(&engine, &snap, "b", NOW).await;
    let value_a = r#"augur_forecast_value{rule="rules[0]",metric="http_requests_per_second_forecast",namespace="a",object="sum"} "#;
    assert_eq!(metric(&metrics, value_a), Some(13.5));
    // b is requested again later; a is not. Idle window: 10 steps = 600 s.
    serve_pods(&engine, &snap, "b", NOW + 300).await;
    engine.evict_idle(t(NOW + 600));
    assert_eq!(engine.target_count(), 2);
    engine.evict_idle(t(NOW + 601));
    assert_eq!(engine.target_count(), 1);
    assert_eq!(engine.targets()[0].key().namespace, "b");
    assert_eq!(metric(&metrics, value_a), None);
    assert_eq!(metric(&metrics, "augur_forecast_targets "), Some(1.0));
    // A new request for a makes a new target.
    serve_pods(&engine, &snap, "a", NOW + 602).await;
    assert_eq!(engine.target_count(), 2);
}

#[tokio::test]
async fn a_shared_pretrained_model_predicts_all_series_in_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.onnx"), b"weights").unwrap();
    let config = CONFIG.replace(
        "model: persistence, horizon: 5m, step",
        "model: m.onnx, horizon: 5m, step",
    );
    let batches = Arc::new(Mutex::new(Vec::new()));
    let model: Arc<dyn Model> = Arc::new(Counting(batches.clone()));
    let factory: Arc<ModelFactory> = Arc::new(move |m: &ModelRef| {
        assert!(matches!(m, ModelRef::Onnx(_)), "{m:?}");
        Ok(model.clone())
    });
    let snap = snapshot(
        &config,
        &dir.path().join("rules.yaml").display().to_string(),
    );
    let fake = fake();
    for ns in ["a", "b", "c"] {
        fake.set_range(sum_pods(ns), vec![range(&[], NOW + 60, &[9.0; 61])]);
    }
    let engine = Engine::with_models(fake.clone(), Arc::new(Metrics::new()), options(), factory);
    for ns in ["a", "b", "c"] {
        assert_eq!(serve_pods(&engine, &snap, ns, NOW).await[0].1, 4.5);
    }
    assert_eq!(*batches.lock().unwrap(), vec![1, 1, 1]);
    engine.round(t(NOW + 60)).await;
    assert_eq!(*batches.lock().unwrap(), vec![1, 1, 1, 3]);
}

#[test]
fn the_grafana_dashboard_queries_only_metrics_that_exist() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/grafana-forecast.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let families: Vec<String> = Metrics::new()
        .encode()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            exprs.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    assert!(exprs.len() >= 10, "{exprs:?}");
    let mut seen = Vec::new();
    for expr in &exprs {
        for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("augur_") {
                let known = families.iter().any(|f| {
                    word == f
                        || word.strip_prefix(f.as_str()).is_some_and(|rest| {
                            ["_total", "_bucket", "_count", "_sum"].contains(&rest)
                        })
                });
                assert!(
                    known,
                    "{word} in {expr:?} is not one of augur's metrics: {families:?}"
                );
                seen.push(word.to_owned());
            } else if word.starts_with("kube_") {
                assert!(
                    [
                        "kube_horizontalpodautoscaler_status_current_replicas",
                        "kube_horizontalpodautoscaler_status_desired_replicas"
                    ]
                    .contains(&word),
                    "{word}"
                );
            }
        }
    }
    for wanted in [
        "augur_forecast_value",
        "augur_forecast_origin_value",
        "augur_forecast_realised_value",
        "augur_forecast_mae",
        "augur_forecast_persistence_mae",
        "augur_forecast_mape",
        "augur_forecast_fallback",
    ] {
        assert!(seen.iter().any(|s| s == wanted), "{wanted} not charted");
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_created_together_fit_a_few_at_a_time() {
    let fake = fake();
    let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let model: Arc<dyn Model> = Arc::new(SlowFit {
        in_flight: Arc::default(),
        most: most.clone(),
    });
    let factory: Arc<ModelFactory> = Arc::new(move |_: &ModelRef| Ok(model.clone()));
    let engine = Engine::with_models(fake.clone(), Arc::new(Metrics::new()), options(), factory);
    let spec = Arc::new(spec(ServeMode::Forecast, 0.0));
    let lookups = (0..6).map(|i| {
        let promql = sum_pods(&format!("ns-{i}"));
        fake.set_range(promql.clone(), vec![range(&[], NOW, &[i as f64 + 1.0; 60])]);
        let key = TargetKey {
            rule: "rules[0]".into(),
            metric: METRIC.into(),
            namespace: format!("ns-{i}"),
            promql,
            spec: fingerprint(&spec),
        };
        engine.lookup(key, spec.clone(), SeriesKind::PodSum, t(NOW))
    });
    let forecasts: Vec<Option<f64>> = futures::future::join_all(lookups)
        .await
        .into_iter()
        .map(|lookup| match lookup {
            Lookup::Frame(frame) => frame.series.get("sum").and_then(|r| r.ok()),
            Lookup::Fallback(_) => None,
        })
        .collect();
    // Every target got its first forecast (persistence: its last value)...
    assert_eq!(
        forecasts,
        vec![
            Some(1.0),
            Some(2.0),
            Some(3.0),
            Some(4.0),
            Some(5.0),
            Some(6.0)
        ]
    );
    // ...with at most one first fit per core (and at most --forecast-concurrency) at once.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let allowed = cores.clamp(1, options().concurrency);
    let most = most.load(std::sync::atomic::Ordering::SeqCst);
    assert!((1..=allowed).contains(&most), "{most} fits at once");
}

#[tokio::test]
async fn series_beyond_the_budget_serve_live_until_evictions_make_room() {
    let snap = snapshot(CONFIG, "t.yaml");
    let fake = fake();
    fake.set_query(
        QUEUES_LIVE,
        QueryResult::Vector(vec![
            sample(&[("queue", "a")], 1.0),
            sample(&[("queue", "b")], 2.0),
            sample(&[("queue", "c")], 3.0),
        ]),
    );
    let history = |end: i64| {
        ["a", "b", "c"]
            .iter()
            .map(|q| range(&[("queue", q)], end, &[10.0; 60]))
            .collect::<Vec<_>>()
    };
    fake.set_range(QUEUES_LIVE, history(NOW));
    fake.set_range(sum_pods("default"), vec![range(&[], NOW, &[9.0; 60])]);
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::new(
        fake.clone(),
        metrics.clone(),
        EngineOptions {
            max_series: 2,
            ..options()
        },
    );
    // Two series take the budget and serve their forecast (10); the third its live 3.
    assert_eq!(
        serve_queues(&engine, &snap, NOW).await,
        vec![
            (r#"{queue="a"}"#.to_owned(), 10.0),
            (r#"{queue="b"}"#.to_owned(), 10.0),
            (r#"{queue="c"}"#.to_owned(), 3.0)
        ]
    );
    let external_served = |source: &str, reason: &str| {
        format!(
            r#"augur_forecast_served_total{{rule="externalRules[0]",metric="queue_messages_ready_forecast",source="{source}",reason="{reason}"}} "#
        )
    };
    assert_eq!(
        metric(&metrics, &external_served("live", "max_series")),
        Some(1.0)
    );
    assert_eq!(
        metric(&metrics, &external_served("forecast", "")),
        Some(2.0)
    );
    assert_eq!(metric(&metrics, "augur_forecast_series "), Some(2.0));
    assert_eq!(engine.series_count(), 2);

    // A Pods twin is a series too: no room, so it serves live (the sum has no history).
    assert_eq!(serve_pods(&engine, &snap, "default", NOW).await, live());
    assert_eq!(
        metric(&metrics, &served_line("live", "max_series")),
        Some(3.0)
    );
    assert_eq!(engine.target_count(), 2);

    // While there is no room, refreshes fetch only what is new.
    engine.round(t(NOW + 60)).await;
    assert_eq!(range_calls(&fake).last(), Some(&(NOW, NOW + 60)));
    assert_eq!(engine.series_count(), 2);

    // The external target goes idle and is evicted: its two series are given back, and the
    // pods target's next refresh asks for its whole hour again, so the sum joins with all
    // of it and is forecast at once.
    serve_pods(&engine, &snap, "default", NOW + 300).await;
    engine.evict_idle(t(NOW + 601));
    assert_eq!(engine.target_count(), 1);
    assert_eq!(engine.series_count(), 0);
    assert_eq!(metric(&metrics, "augur_forecast_series "), Some(0.0));
    let mut hour = vec![9.0; 50];
    hour.extend([12.0; 10]);
    fake.set_range(sum_pods("default"), vec![range(&[], NOW + 600, &hour)]);
    engine.round(t(NOW + 610)).await;
    assert_eq!(
        range_calls(&fake).last(),
        Some(&(NOW + 600 - 59 * 60, NOW + 600))
    );
    assert_eq!(engine.series_count(), 1);
    assert_eq!(metric(&metrics, "augur_forecast_series "), Some(1.0));
    // Persistence: 12 × 1.5 = 18 → 6 per pod.
    assert_eq!(
        serve_pods(&engine, &snap, "default", NOW + 610).await,
        vec![
            ("web-1".to_owned(), 6.0),
            ("web-2".to_owned(), 6.0),
            ("web-3".to_owned(), 6.0)
        ]
    );
    // The next refresh is incremental again.
    engine.round(t(NOW + 660)).await;
    assert_eq!(range_calls(&fake).last(), Some(&(NOW + 600, NOW + 660)));
}

#[tokio::test]
async fn a_series_gone_for_the_whole_history_gives_back_its_budget_and_gauges() {
    let snap = snapshot(CONFIG, "t.yaml");
    let fake = fake();
    fake.set_query(
        QUEUES_LIVE,
        QueryResult::Vector(vec![sample(&[("queue", "a")], 1.0)]),
    );
    fake.set_range(
        QUEUES_LIVE,
        vec![
            range(&[("queue", "a")], NOW, &[10.0; 60]),
            range(&[("queue", "b")], NOW, &[10.0; 60]),
        ],
    );
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::new(fake.clone(), metrics.clone(), options());
    serve_queues(&engine, &snap, NOW).await;
    assert_eq!(engine.series_count(), 2);
    // Two hours later only queue a answers: b has no value left in its 1-hour history.
    fake.set_range(
        QUEUES_LIVE,
        vec![range(&[("queue", "a")], NOW + 7200, &[10.0; 120])],
    );
    serve_queues(&engine, &snap, NOW + 7200).await;
    let gauge = |queue: &str| {
        format!(
            r#"augur_forecast_value{{rule="externalRules[0]",metric="queue_messages_ready_forecast",namespace="default",object="queue={queue}"}} "#
        )
    };
    assert_eq!(metric(&metrics, &gauge("b")), Some(10.0));
    engine.round(t(NOW + 7200)).await;
    assert_eq!(engine.series_count(), 1);
    assert_eq!(metric(&metrics, "augur_forecast_series "), Some(1.0));
    // Its gauges go with it; a's stay.
    assert_eq!(metric(&metrics, &gauge("b")), None);
    assert_eq!(metric(&metrics, &gauge("a")), Some(10.0));
}

#[tokio::test]
async fn an_infinite_sample_in_the_history_is_a_missing_bucket() {
    let config = CONFIG.replace(
        "forecast: {model: persistence, horizon: 5m, history: 1h}",
        "forecast: {model: linear, horizon: 10m, history: 3d}",
    );
    let snap = snapshot(&config, "t.yaml");
    let fake = fake();
    fake.set_query(
        QUEUES_LIVE,
        QueryResult::Vector(vec![sample(&[("queue", "a")], 1.0)]),
    );
    // Three days of a daily cycle, with one ratio over zero (+Inf from Prometheus) a day
    // and a half ago, inside the fit's window.
    let n = 3 * 1440;
    let mut values: Vec<f64> = (0..n)
        .map(|i| 10.0 + 5.0 * (std::f64::consts::TAU * i as f64 / 1440.0).sin())
        .collect();
    values[n / 2] = f64::INFINITY;
    fake.set_range(QUEUES_LIVE, vec![range(&[("queue", "a")], NOW, &values)]);
    let metrics = Arc::new(Metrics::new());
    // A three-day linear fit takes ~10 s in the dev profile on a loaded 2-core machine: wait
    // for it, so the test checks the fit and not the machine's speed.
    let options = EngineOptions {
        first_wait: Duration::from_secs(120),
        ..options()
    };
    let engine = Engine::new(fake.clone(), metrics.clone(), options);
    // The forecast of the next 10 minutes' max, as without the infinity (about 10.2); with
    // it, the fit would be NaN and the twin would serve its live 1 (model_error).
    let served = serve_queues(&engine, &snap, NOW).await;
    assert_eq!(served.len(), 1);
    assert!((served[0].1 - 10.2).abs() < 0.1, "{served:?}");
    let external_served = r#"augur_forecast_served_total{rule="externalRules[0]",metric="queue_messages_ready_forecast",source="forecast",reason=""} "#;
    assert_eq!(metric(&metrics, external_served), Some(1.0));
}

#[tokio::test]
async fn a_twin_request_the_live_metric_cannot_answer_names_the_twin() {
    let snap = snapshot(CONFIG, "t.yaml");
    let empty =
        Arc::new(FakeBackend::new().with_query_fn(|_, _| Ok(QueryResult::Vector(Vec::new()))));
    let engine = Engine::new(empty, Arc::new(Metrics::new()), options());
    let (_, twin) = snap.custom_twin("pods", true, METRIC).unwrap();
    let request = CustomRequest {
        name: ObjectName::Named("web-9".into()),
        ..pods_request("default")
    };
    let error = engine
        .custom_metric(&snap, &request, twin, None, t(NOW))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ProviderError::ObjectNotFound(_)),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        r#"the server could not find the metric http_requests_per_second for pods web-9 in namespace default: the query returned nothing (query: sum(rate(http_requests_total{namespace="default",pod="web-9"}[2m])) by (pod)) (the live metric of the forecast twin http_requests_per_second_forecast)"#
    );
}

// Backends that answer range queries unusually (VictoriaMetrics, Thanos, Mimir, or a
// misbehaving proxy): the twin must serve the forecast of the points on the grid, or live
// with a reason, never fail or panic.

/// The External twin over queue `a` answered live 1, with `points` as its range answer.
async fn serve_queue_points(points: Vec<(f64, f64)>) -> (Vec<(String, f64)>, Arc<Metrics>) {
    let snap = snapshot(CONFIG, "t.yaml");
    let fake = fake();
    fake.set_query(
        QUEUES_LIVE,
        QueryResult::Vector(vec![sample(&[("queue", "a")], 1.0)]),
    );
    fake.set_range(
        QUEUES_LIVE,
        vec![RangeSeries {
            labels: labels(&[("queue", "a")]),
            points,
        }],
    );
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::new(fake.clone(), metrics.clone(), options());
    (serve_queues(&engine, &snap, NOW).await, metrics)
}

#[tokio::test]
async fn points_out_of_range_order_or_grid_are_placed_by_their_timestamp() {
    // 60 points ending NOW, the newest 20, given newest first, with millisecond jitter,
    // duplicates, points before the history and after the range, and points off the grid.
    let mut points: Vec<(f64, f64)> = points(NOW, &[10.0; 60]);
    points[59].1 = 20.0;
    points.reverse();
    for p in &mut points {
        p.0 += 0.001;
    }
    points.extend([
        ((NOW - 60) as f64, 10.0),
        ((NOW - 7200) as f64, 999.0),
        ((NOW + 60) as f64, 999.0),
        ((NOW + 30) as f64, 999.0),
        ((NOW - 30) as f64, 999.0),
        (NOW as f64 - 0.4, 20.0),
    ]);
    let (served, _) = serve_queue_points(points).await;
    assert_eq!(served, vec![(r#"{queue="a"}"#.to_owned(), 20.0)]);
}

#[tokio::test]
async fn absurd_timestamps_are_ignored_without_a_panic() {
    let mut points = points(NOW, &[10.0; 60]);
    points.extend([
        (-1e300, 999.0),
        (f64::MIN, 999.0),
        (1e300, 999.0),
        (f64::MAX, 999.0),
        (-0.0, 999.0),
    ]);
    let (served, metrics) = serve_queue_points(points).await;
    assert_eq!(served, vec![(r#"{queue="a"}"#.to_owned(), 10.0)]);
    let external_served = r#"augur_forecast_served_total{rule="externalRules[0]",metric="queue_messages_ready_forecast",source="forecast",reason=""} "#;
    assert_eq!(metric(&metrics, external_served), Some(1.0));
}

#[tokio::test]
async fn after_an_outage_longer_than_the_history_only_the_history_is_fetched() {
    let (snap, fake, _, engine) = steady_pods(true).await;
    // Prometheus is down for a day; every refresh fails, and requests are answered live.
    let day = 86_400;
    for at in (NOW + 180..NOW + day).step_by(300) {
        fake.fail_all(Some(BackendError::Api {
            error_type: "unavailable".into(),
            message: "down".into(),
        }));
        engine.round(t(at)).await;
        fake.fail_all(None);
        assert_eq!(serve_pods(&engine, &snap, "default", at).await, live());
    }
    // Back: the catch-up query asks for the history the target holds (one hour), not the
    // whole day missed, which a backend could refuse (or time out on) round after round.
    let back = NOW + day;
    fake.set_range(sum_pods("default"), vec![range(&[], back, &[12.0; 1500])]);
    engine.round(t(back)).await;
    assert_eq!(range_calls(&fake).last(), Some(&(back - 59 * 60, back)));
    assert_eq!(serve_pods(&engine, &snap, "default", back).await[0].1, 6.0);
    // The history buffers did not grow past the history and its trim slack.
    let target = engine.targets()[0].clone();
    let data = target.lock();
    let history = &data.series[0].history;
    assert_eq!(history.len(), 60);
    assert!(
        history.capacity() <= 60 + TRIM_SLACK,
        "{}",
        history.capacity()
    );
    assert_eq!(history.origin(), Some(back - 60));
}

#[tokio::test]
async fn a_target_whose_first_fetch_was_empty_gets_the_whole_history_once_there_is_data() {
    let snap = snapshot(CONFIG, "t.yaml");
    let fake = fake();
    fake.clip_ranges(true);
    // Thanos Query before it has discovered its stores answers every query empty (with a
    // warning): the first fetch holds no series, and requests are answered live.
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::new(fake.clone(), metrics.clone(), options());
    assert_eq!(serve_pods(&engine, &snap, "default", NOW).await, live());
    assert_eq!(
        metric(&metrics, &served_line("live", "no_history")),
        Some(3.0)
    );
    // A step later the stores are there, with the last hour: the twin forecasts from it
    // rather than from the one point asked of an incremental refresh.
    fake.set_range(sum_pods("default"), vec![range(&[], NOW + 60, &[9.0; 60])]);
    engine.round(t(NOW + 60)).await;
    assert_eq!(
        range_calls(&fake).last(),
        Some(&(NOW + 60 - 59 * 60, NOW + 60))
    );
    assert_eq!(
        serve_pods(&engine, &snap, "default", NOW + 60).await[0].1,
        4.5
    );
    // Then incremental again.
    fake.set_range(sum_pods("default"), vec![range(&[], NOW + 120, &[9.0; 61])]);
    engine.round(t(NOW + 120)).await;
    assert_eq!(range_calls(&fake).last(), Some(&(NOW + 60, NOW + 120)));
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

#[tokio::test]
async fn a_panic_while_computing_serves_live_at_once_with_a_reason() {
    let fake = fake();
    fake.set_range(sum_pods("default"), vec![range(&[], NOW, &[9.0; 60])]);
    let (snap, factory) = with_model(CONFIG, Arc::new(Panicking));
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::with_models(
        fake.clone(),
        metrics.clone(),
        EngineOptions {
            first_wait: Duration::from_secs(30),
            ..options()
        },
        factory,
    );
    // Not after waiting out --forecast-first-wait as warming_up, on every request.
    let started = std::time::Instant::now();
    assert_eq!(serve_pods(&engine, &snap, "default", NOW).await, live());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        metric(&metrics, &served_line("live", "model_error")),
        Some(3.0)
    );
    // And the target is refreshed again next step.
    fake.clear_calls();
    engine.round(t(NOW + 60)).await;
    assert_eq!(range_calls(&fake), vec![(NOW, NOW + 60)]);
}

#[tokio::test]
async fn a_bucket_that_lands_late_is_read_on_the_next_refresh() {
    let (snap, fake, metrics, engine) = steady_pods(true).await;
    // At NOW+60 the backend has nothing for the new bucket yet (remote-write lag).
    engine.round(t(NOW + 60)).await;
    // By NOW+120 both buckets are in; the refresh asks again for NOW+60 (the newest bucket
    // it had asked for), so it is filled and the last h+1 buckets have no gap.
    let mut later = vec![9.0; 60];
    later.extend([12.0, 14.0]);
    fake.set_range(sum_pods("default"), vec![range(&[], NOW + 120, &later)]);
    engine.round(t(NOW + 120)).await;
    assert_eq!(range_calls(&fake).last(), Some(&(NOW + 60, NOW + 120)));
    // Persistence: 14 × 1.5 = 21 → 7 per pod, not live (history_gap).
    assert_eq!(
        serve_pods(&engine, &snap, "default", NOW + 120).await[0].1,
        7.0
    );
    assert_eq!(metric(&metrics, &served_line("live", "history_gap")), None);
}
