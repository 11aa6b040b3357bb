//! augur's own metrics: the registry, every metric's name and help, and the typed label sets.
//!
//! The forecast engine's metrics are declared in the sibling `forecast` file; both register
//! into the one [`Metrics`] registry served on `/metrics`.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::forecast::ForecastMetrics;
use super::refusals::RefusalMetrics;

/// Histogram buckets for request latencies, 0.5 ms to 10 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Histogram buckets for relist durations, 10 ms to 5 min.
pub(super) const RELIST_BUCKETS: [f64; 12] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Labels of `augur_http_requests_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The matched route template (`/apis/custom.metrics.k8s.io/{version}/...`) or `unmatched`.
    pub route: String,
    /// The HTTP status code.
    pub code: u16,
}

/// Labels carrying only the route.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The matched route template or `unmatched`.
    pub route: String,
}

/// Labels of `augur_relist_errors_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryIndexLabels {
    /// Index of the failed series query among the distinct series queries of the rules.
    pub query_index: usize,
}

/// A Prometheus HTTP API endpoint augur calls.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum PromEndpoint {
    /// `/api/v1/series`.
    Series,
    /// `/api/v1/query`.
    Query,
    /// `/api/v1/query_range`.
    QueryRange,
}

impl PromEndpoint {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Series => "series",
            Self::Query => "query",
            Self::QueryRange => "query_range",
        }
    }
}

impl EncodeLabelValue for PromEndpoint {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

/// Why a Prometheus call failed.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum PromErrorKind {
    /// Connection refused, DNS, TLS.
    Unreachable,
    /// The request timed out.
    Timeout,
    /// Prometheus answered `status: error`.
    Api,
    /// An unexpected HTTP status.
    Status,
    /// The body did not decode.
    Decode,
}

impl PromErrorKind {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
            Self::Api => "api",
            Self::Status => "status",
            Self::Decode => "decode",
        }
    }
}

impl EncodeLabelValue for PromErrorKind {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

/// Labels of `augur_prometheus_request_duration_seconds`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    /// series, query or query_range.
    pub endpoint: PromEndpoint,
}

/// Labels of `augur_prometheus_errors_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PromErrorLabels {
    /// series, query or query_range.
    pub endpoint: PromEndpoint,
    /// unreachable, timeout, api, status or decode.
    pub kind: PromErrorKind,
}

/// The outcome of a configuration reload.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum ReloadResult {
    /// The new configuration is in use.
    Success,
    /// The new configuration was rejected; the old one stays.
    Failure,
}

impl EncodeLabelValue for ReloadResult {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), fmt::Error> {
        fmt::Write::write_str(
            encoder,
            match self {
                Self::Success => "success",
                Self::Failure => "failure",
            },
        )
    }
}

/// Labels of `augur_config_reloads_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// success or failure.
    pub result: ReloadResult,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;
pub(super) type FloatGauge = Gauge<f64, AtomicU64>;

/// augur's own metrics and the registry that encodes them. Share it as `Arc<Metrics>`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<RouteLabels>,
    relist_duration: Histogram,
    relist_series: Gauge,
    relist_metrics: Gauge,
    relist_errors: Family<QueryIndexLabels, Counter>,
    relist_last_success: Gauge<f64, AtomicU64>,
    prometheus_duration: HistogramFamily<EndpointLabels>,
    prometheus_errors: Family<PromErrorLabels, Counter>,
    prometheus_coalesced: Counter,
    prometheus_in_flight: Gauge,
    prometheus_queued: Gauge,
    config_reloads: Family<ReloadLabels, Counter>,
    config_last_reload_success: Gauge,
    pub(super) forecast: ForecastMetrics,
    pub(super) refusals: RefusalMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every augur metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "augur_http_requests",
            "HTTP requests served, by route template and status code",
            http_requests.clone(),
        );
        let http_duration: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "augur_http_request_duration",
            "HTTP request latency, by route template",
            Unit::Seconds,
            http_duration.clone(),
        );
        let relist_duration = Histogram::new(RELIST_BUCKETS);
        registry.register_with_unit(
            "augur_relist_duration",
            "Duration of series relists, successful or not",
            Unit::Seconds,
            relist_duration.clone(),
        );
        let relist_series = Gauge::default();
        registry.register(
            "augur_relist_series",
            "Series returned by the last successful relist",
            relist_series.clone(),
        );
        let relist_metrics = Gauge::default();
        registry.register(
            "augur_relist_metrics",
            "Metrics registered by the last successful relist",
            relist_metrics.clone(),
        );
        let relist_errors = Family::<QueryIndexLabels, Counter>::default();
        registry.register(
            "augur_relist_errors",
            "Failed series queries during relists, by index of the distinct series query",
            relist_errors.clone(),
        );
        let relist_last_success = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "augur_relist_last_success_timestamp",
            "Unix time of the last successful relist",
            Unit::Seconds,
            relist_last_success.clone(),
        );
        let prometheus_duration: HistogramFamily<EndpointLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "augur_prometheus_request_duration",
            "Latency of Prometheus HTTP API calls, by endpoint",
            Unit::Seconds,
            prometheus_duration.clone(),
        );
        let prometheus_errors = Family::<PromErrorLabels, Counter>::default();
        registry.register(
            "augur_prometheus_errors",
            "Failed Prometheus HTTP API calls, by endpoint and kind of failure",
            prometheus_errors.clone(),
        );
        let prometheus_coalesced = Counter::default();
        registry.register(
            "augur_prometheus_coalesced_queries",
            "Queries not sent to Prometheus because an identical one was in flight",
            prometheus_coalesced.clone(),
        );
        let prometheus_in_flight = Gauge::default();
        registry.register(
            "augur_prometheus_in_flight_requests",
            "Prometheus HTTP API calls being sent or answered",
            prometheus_in_flight.clone(),
        );
        let prometheus_queued = Gauge::default();
        registry.register(
            "augur_prometheus_queued_requests",
            "Prometheus HTTP API calls waiting for a connection (--prometheus-max-connections)",
            prometheus_queued.clone(),
        );
        let config_reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "augur_config_reloads",
            "Configuration reloads, by result",
            config_reloads.clone(),
        );
        let config_last_reload_success = Gauge::default();
        registry.register(
            "augur_config_last_reload_success",
            "1 when the last configuration reload succeeded, else 0",
            config_last_reload_success.clone(),
        );
        let forecast = ForecastMetrics::register(&mut registry);
        let refusals = RefusalMetrics::register(&mut registry);
        Self {
            registry,
            http_requests,
            http_duration,
            relist_duration,
            relist_series,
            relist_metrics,
            relist_errors,
            relist_last_success,
            prometheus_duration,
            prometheus_errors,
            prometheus_coalesced,
            prometheus_in_flight,
            prometheus_queued,
            config_reloads,
            config_last_reload_success,
            forecast,
            refusals,
        }
    }

    /// Record one served HTTP request.
    pub fn observe_http(&self, route: &str, code: u16, seconds: f64) {
        self.http_requests
            .get_or_create(&HttpLabels {
                route: route.to_owned(),
                code,
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// Record how long a relist took (successful or not).
    pub fn observe_relist_duration(&self, seconds: f64) {
        self.relist_duration.observe(seconds);
    }

    /// Record a successful relist: series seen, metrics registered, and now as the last success.
    pub fn relist_succeeded(&self, series: u64, metrics: u64) {
        self.relist_series
            .set(i64::try_from(series).unwrap_or(i64::MAX));
        self.relist_metrics
            .set(i64::try_from(metrics).unwrap_or(i64::MAX));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        self.relist_last_success.set(now);
    }

    /// Record a failed series query of a relist.
    pub fn relist_failed(&self, query_index: usize) {
        self.relist_errors
            .get_or_create(&QueryIndexLabels { query_index })
            .inc();
    }

    /// Record the latency of one Prometheus call.
    pub fn observe_prometheus(&self, endpoint: PromEndpoint, seconds: f64) {
        self.prometheus_duration
            .get_or_create(&EndpointLabels { endpoint })
            .observe(seconds);
    }

    /// Record a failed Prometheus call.
    pub fn prometheus_failed(&self, endpoint: PromEndpoint, kind: PromErrorKind) {
        self.prometheus_errors
            .get_or_create(&PromErrorLabels { endpoint, kind })
            .inc();
    }

    /// The counter of queries that joined an identical one in flight.
    pub fn prometheus_coalesced(&self) -> Counter {
        self.prometheus_coalesced.clone()
    }

    /// The gauges of Prometheus calls in flight and queued for a connection.
    pub fn prometheus_load(&self) -> (Gauge, Gauge) {
        (
            self.prometheus_in_flight.clone(),
            self.prometheus_queued.clone(),
        )
    }

    /// Record a configuration reload.
    pub fn config_reloaded(&self, result: ReloadResult) {
        self.config_reloads
            .get_or_create(&ReloadLabels { result })
            .inc();
        self.config_last_reload_success
            .set(i64::from(result == ReloadResult::Success));
    }

    /// Every metric in the OpenMetrics text format (ends with `# EOF`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(err) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %err, "encoding metrics failed");
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    #[test]
    fn http_metrics_encode() {
        let metrics = Metrics::new();
        metrics.observe_http("/apis", 200, 0.003);
        metrics.observe_http("/apis", 200, 0.02);
        metrics.observe_http("/apis", 406, 0.0001);
        let text = metrics.encode();
        let l = lines(&text);
        assert!(l.contains(&"# TYPE augur_http_requests counter"), "{text}");
        assert!(
            l.contains(&r#"augur_http_requests_total{route="/apis",code="200"} 2"#),
            "{text}"
        );
        assert!(
            l.contains(&r#"augur_http_requests_total{route="/apis",code="406"} 1"#),
            "{text}"
        );
        assert!(
            l.contains(&"# UNIT augur_http_request_duration_seconds seconds"),
            "{text}"
        );
        assert!(
            l.contains(&r#"augur_http_request_duration_seconds_count{route="/apis"} 3"#),
            "{text}"
        );
        assert!(
            l.contains(
                &r#"augur_http_request_duration_seconds_bucket{le="0.0005",route="/apis"} 1"#
            ),
            "{text}"
        );
        assert!(
            l.contains(
                &r#"augur_http_request_duration_seconds_bucket{le="0.005",route="/apis"} 2"#
            ),
            "{text}"
        );
        assert!(
            l.contains(&r#"augur_http_request_duration_seconds_bucket{le="10.0",route="/apis"} 3"#),
            "{text}"
        );
        assert!(
            l.contains(&r#"augur_http_request_duration_seconds_bucket{le="+Inf",route="/apis"} 3"#),
            "{text}"
        );
        assert_eq!(l.last(), Some(&"# EOF"));
    }

    #[test]
    fn relist_prometheus_and_config_metrics_encode() {
        let metrics = Metrics::new();
        metrics.observe_relist_duration(0.2);
        metrics.relist_succeeded(1234, 56);
        metrics.relist_failed(2);
        metrics.relist_failed(2);
        metrics.observe_prometheus(PromEndpoint::QueryRange, 0.05);
        metrics.prometheus_failed(PromEndpoint::Series, PromErrorKind::Timeout);
        metrics.config_reloaded(ReloadResult::Success);
        metrics.config_reloaded(ReloadResult::Failure);
        let text = metrics.encode();
        let l = lines(&text);
        for expected in [
            "augur_relist_duration_seconds_count 1",
            "augur_relist_duration_seconds_sum 0.2",
            "augur_relist_series 1234",
            "augur_relist_metrics 56",
            r#"augur_relist_errors_total{query_index="2"} 2"#,
            r#"augur_prometheus_request_duration_seconds_count{endpoint="query_range"} 1"#,
            r#"augur_prometheus_errors_total{endpoint="series",kind="timeout"} 1"#,
            r#"augur_config_reloads_total{result="success"} 1"#,
            r#"augur_config_reloads_total{result="failure"} 1"#,
            "augur_config_last_reload_success 0",
        ] {
            assert!(l.contains(&expected), "missing {expected:?} in\n{text}");
        }
        let ts = l
            .iter()
            .find_map(|line| line.strip_prefix("augur_relist_last_success_timestamp_seconds "))
            .unwrap();
        let ts: f64 = ts.parse().unwrap();
        assert!(ts > 1.7e9, "{ts}");
    }
}
