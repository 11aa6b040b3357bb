//! The fake backend wired as `augur serve` wires the real one: rules compiled, a registry
//! relisted once from the backend, and the state augur's router serves.

use std::sync::Arc;
use std::time::Duration;

use crate::api::AppState;
use crate::api::health::Health;
use crate::config::{self, UnknownResources};
use crate::prometheus::fake::{FakeBackend, labels, sample};
use crate::prometheus::{Backend, QueryResult};
use crate::resources::ResourceTable;
use crate::series::{Registry, RelistOptions, Relister, Snapshot};
use crate::telemetry::Metrics;

/// The series query of [`PODS_RULES`].
pub const PODS_SERIES: &str = r#"http_requests_total{namespace!="",pod!=""}"#;

/// One rule: pods' `http_requests_per_second`, the rate of their `http_requests_total`.
pub const PODS_RULES: &str = r#"
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {matches: "^(.*)_total$", as: "${1}_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
"#;

/// A fake backend that lists `http_requests_total` of pods `web-0` … `web-<count - 1>` in
/// `namespace` for [`PODS_SERIES`] and answers every instant query with `web-i` = i + 0.5.
pub fn pods_backend(namespace: &str, count: usize) -> FakeBackend {
    let pods: Vec<String> = (0..count).map(|i| format!("web-{i}")).collect();
    let series = pods
        .iter()
        .map(|p| {
            labels(&[
                ("__name__", "http_requests_total"),
                ("namespace", namespace),
                ("pod", p),
            ])
        })
        .collect();
    let result = QueryResult::Vector(
        pods.iter()
            .enumerate()
            .map(|(i, p)| sample(&[("pod", p)], i as f64 + 0.5))
            .collect(),
    );
    FakeBackend::new()
        .with_series(PODS_SERIES, series)
        .with_query_fn(move |_, _| Ok(result.clone()))
}

/// `rules` compiled against the built-in resources (unknown ones rejected), a registry
/// relisted once from `backend`, and the state for [`crate::api::router`] (not ready yet:
/// call `health.set_ready()` where readiness matters).
pub async fn app_with_rules(rules: &str, backend: Arc<dyn Backend>) -> AppState {
    let table = Arc::new(ResourceTable::builtin());
    let config = Arc::new(
        config::parse(rules, "rules.yaml", &table, UnknownResources::Reject).expect("test rules"),
    );
    let registry = Arc::new(Registry::new(Snapshot::empty(
        config.clone(),
        table.clone(),
    )));
    let metrics = Arc::new(Metrics::new());
    let options = RelistOptions {
        interval: Duration::from_secs(60),
        max_age: Duration::from_secs(600),
        concurrency: 1,
    };
    Relister::new(
        backend.clone(),
        registry.clone(),
        table,
        options,
        metrics.clone(),
    )
    .relist(config)
    .await;
    AppState::new(registry, backend, metrics, Health::new())
}
