//! Logging setup and augur's own metrics (requests, relists, backend calls), all declared here.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime as RfcTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The log level / filter directive does not parse.
    #[error("invalid log filter {directive:?}: {source}")]
    Filter {
        /// The directive as given.
        directive: String,
        /// The parse error.
        source: tracing_subscriber::filter::ParseError,
    },
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Install the global tracing subscriber. `level` is an EnvFilter directive (`info`,
/// `augur=debug,hyper=warn`), overridden by `RUST_LOG` when that is set; `json` selects
/// one JSON object per line instead of the human format.
///
/// Returns `Ok(false)` when a global subscriber was already installed (calling twice is
/// harmless), `Ok(true)` when this call installed it.
pub fn init_logging(level: &str, json: bool) -> Result<bool> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.trim().is_empty() => {
            EnvFilter::try_new(&env).map_err(|source| Error::Filter {
                directive: env.clone(),
                source,
            })?
        }
        _ => EnvFilter::try_new(level).map_err(|source| Error::Filter {
            directive: level.to_owned(),
            source,
        })?,
    };
    // Colours only on a terminal: log files and kubectl logs get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let installed = if json {
        builder.event_format(JsonFormat).try_init().is_ok()
    } else {
        builder.try_init().is_ok()
    };
    Ok(installed)
}

/// One JSON object per event: `timestamp`, `level`, `target`, `spans`, the event's fields
/// (the message under `message`).
struct JsonFormat;

struct JsonVisitor(serde_json::Map<String, serde_json::Value>);

impl Visit for JsonVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        self.0.insert(field.name().to_owned(), text.into());
    }
}

impl<S, N> FormatEvent<S, N> for JsonFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut timestamp = String::new();
        RfcTime.format_time(&mut Writer::new(&mut timestamp))?;
        let mut visitor = JsonVisitor(serde_json::Map::new());
        visitor.0.insert("timestamp".into(), timestamp.into());
        visitor
            .0
            .insert("level".into(), meta.level().as_str().into());
        visitor.0.insert("target".into(), meta.target().into());
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<serde_json::Value> =
                scope.from_root().map(|span| span.name().into()).collect();
            if !spans.is_empty() {
                visitor.0.insert("spans".into(), spans.into());
            }
        }
        event.record(&mut visitor);
        writeln!(writer, "{}", serde_json::Value::Object(visitor.0))
    }
}

/// Histogram buckets for request latencies, 0.5 ms to 10 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Histogram buckets for relist durations, 10 ms to 5 min.
const RELIST_BUCKETS: [f64; 12] = [
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

/// Labels of the per-series forecast gauges: which rule and twin metric, and which series
/// of which target (`object` is the object name, the label set of an external series, or
/// `sum` for the summed pods of a Pods metric).
#[derive(Debug, Clone, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ForecastLabels {
    /// `rules[i]` or `externalRules[i]`.
    pub rule: String,
    /// The twin metric's name.
    pub metric: String,
    /// The request's namespace (empty for root-scoped requests).
    pub namespace: String,
    /// The series within the target.
    pub object: String,
}

/// Labels of `augur_forecast_fallback`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ForecastFallbackLabels {
    /// `rules[i]` or `externalRules[i]`.
    pub rule: String,
    /// The twin metric's name.
    pub metric: String,
    /// The request's namespace.
    pub namespace: String,
    /// The series within the target.
    pub object: String,
    /// Why the live value is served.
    pub reason: String,
}

/// Labels of `augur_forecast_served_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ForecastServedLabels {
    /// `rules[i]` or `externalRules[i]`.
    pub rule: String,
    /// The twin metric's name.
    pub metric: String,
    /// `forecast` or `live`.
    pub source: String,
    /// Why live was served (empty when the forecast was).
    pub reason: String,
}

/// The per-series accuracy figures of one forecast series.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ForecastFigures {
    /// The forecast for the current origin, headroom applied.
    pub forecast: Option<f64>,
    /// The newest live value in the history.
    pub live: Option<f64>,
    /// What actually happened over the horizon that ended at the origin (the value the
    /// forecast made one horizon earlier is compared with).
    pub realised: Option<f64>,
    /// Rolling mean absolute error of the model.
    pub mae: Option<f64>,
    /// Rolling mean absolute error persistence would have had.
    pub persistence_mae: Option<f64>,
    /// Rolling mean absolute percentage error of the model, in percent.
    pub mape: Option<f64>,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;
type FloatGauge = Gauge<f64, AtomicU64>;

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
    forecast: ForecastMetrics,
}

/// The forecast engine's metrics (registered by [`Metrics::new`]).
#[derive(Debug)]
struct ForecastMetrics {
    value: Family<ForecastLabels, FloatGauge>,
    live: Family<ForecastLabels, FloatGauge>,
    realised: Family<ForecastLabels, FloatGauge>,
    mae: Family<ForecastLabels, FloatGauge>,
    persistence_mae: Family<ForecastLabels, FloatGauge>,
    mape: Family<ForecastLabels, FloatGauge>,
    fallback: Family<ForecastFallbackLabels, Gauge>,
    served: Family<ForecastServedLabels, Counter>,
    targets: Gauge,
    series: Gauge,
    refused_targets: Counter,
    refresh_duration: Histogram,
    refresh_cpu: Counter<f64, AtomicU64>,
}

impl ForecastMetrics {
    fn register(registry: &mut Registry) -> Self {
        let mut gauge = |name: &str, help: &str| {
            let family = Family::<ForecastLabels, FloatGauge>::default();
            registry.register(name, help, family.clone());
            family
        };
        let value = gauge(
            "augur_forecast_value",
            "Forecast for the current origin (reduced over the horizon, headroom applied), per rule, twin metric and series",
        );
        let live = gauge(
            "augur_forecast_live_value",
            "Newest value of the live query in the forecast history",
        );
        let realised = gauge(
            "augur_forecast_realised_value",
            "What happened over the horizon that just ended (max or point, as the rule's reduce), compared with the forecast made one horizon earlier",
        );
        let mae = gauge(
            "augur_forecast_mae",
            "Rolling mean absolute error of the forecasts over the fallback window",
        );
        let persistence_mae = gauge(
            "augur_forecast_persistence_mae",
            "Rolling mean absolute error persistence (last value) would have had over the same window",
        );
        let mape = gauge(
            "augur_forecast_mape",
            "Rolling mean absolute percentage error of the forecasts, in percent (buckets with a realised value of 0 left out)",
        );
        let fallback = Family::<ForecastFallbackLabels, Gauge>::default();
        registry.register(
            "augur_forecast_fallback",
            "1 while a forecast series serves its live value instead, with the reason",
            fallback.clone(),
        );
        let served = Family::<ForecastServedLabels, Counter>::default();
        registry.register(
            "augur_forecast_served",
            "Values served for twin metrics, by source (forecast or live) and, for live, why",
            served.clone(),
        );
        let targets = Gauge::default();
        registry.register(
            "augur_forecast_targets",
            "Forecast targets held in memory",
            targets.clone(),
        );
        let series = Gauge::default();
        registry.register(
            "augur_forecast_series",
            "Forecast series held in memory by all targets (bounded by --forecast-max-series)",
            series.clone(),
        );
        let refused_targets = Counter::default();
        registry.register(
            "augur_forecast_refused_targets",
            "Requests for a new forecast target refused because --forecast-max-targets was reached",
            refused_targets.clone(),
        );
        let refresh_duration = Histogram::new(RELIST_BUCKETS);
        registry.register_with_unit(
            "augur_forecast_refresh_duration",
            "Wall time of one forecast refresh round (range queries, fits, predictions)",
            Unit::Seconds,
            refresh_duration.clone(),
        );
        let refresh_cpu = Counter::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "augur_forecast_compute",
            "Time spent fitting and predicting in refresh rounds",
            Unit::Seconds,
            refresh_cpu.clone(),
        );
        Self {
            value,
            live,
            realised,
            mae,
            persistence_mae,
            mape,
            fallback,
            served,
            targets,
            series,
            refused_targets,
            refresh_duration,
            refresh_cpu,
        }
    }
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
        }
    }

    /// Publish the figures of one forecast series (absent figures are removed).
    pub fn forecast_figures(&self, labels: &ForecastLabels, figures: &ForecastFigures) {
        let f = &self.forecast;
        for (family, value) in [
            (&f.value, figures.forecast),
            (&f.live, figures.live),
            (&f.realised, figures.realised),
            (&f.mae, figures.mae),
            (&f.persistence_mae, figures.persistence_mae),
            (&f.mape, figures.mape),
        ] {
            match value.filter(|v| v.is_finite()) {
                Some(v) => {
                    family.get_or_create(labels).set(v);
                }
                None => {
                    family.remove(labels);
                }
            }
        }
    }

    /// Set (or clear, with `None`) the fallback reason of a forecast series; `previous` is
    /// the reason set before, if any.
    pub fn forecast_fallback(
        &self,
        labels: &ForecastLabels,
        previous: Option<&str>,
        reason: Option<&str>,
    ) {
        let with = |reason: &str| ForecastFallbackLabels {
            rule: labels.rule.clone(),
            metric: labels.metric.clone(),
            namespace: labels.namespace.clone(),
            object: labels.object.clone(),
            reason: reason.to_owned(),
        };
        if previous == reason {
            return;
        }
        if let Some(old) = previous {
            self.forecast.fallback.remove(&with(old));
        }
        if let Some(new) = reason {
            self.forecast.fallback.get_or_create(&with(new)).set(1);
        }
    }

    /// Forget every gauge of a forecast series (its target was evicted).
    pub fn forecast_forget(&self, labels: &ForecastLabels, reason: Option<&str>) {
        self.forecast_figures(labels, &ForecastFigures::default());
        self.forecast_fallback(labels, reason, None);
    }

    /// Count values served for a twin metric: `reason` None = from the forecast.
    pub fn forecast_served(&self, rule: &str, metric: &str, reason: Option<&str>, count: u64) {
        self.forecast
            .served
            .get_or_create(&ForecastServedLabels {
                rule: rule.to_owned(),
                metric: metric.to_owned(),
                source: if reason.is_some() { "live" } else { "forecast" }.to_owned(),
                reason: reason.unwrap_or_default().to_owned(),
            })
            .inc_by(count);
    }

    /// The number of forecast targets held.
    pub fn forecast_targets(&self, count: usize) {
        self.forecast
            .targets
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// The number of forecast series held.
    pub fn forecast_series(&self, count: usize) {
        self.forecast
            .series
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// A new target was refused (max targets reached).
    pub fn forecast_target_refused(&self) {
        self.forecast.refused_targets.inc();
    }

    /// One refresh round: wall seconds and compute (fit + predict) seconds.
    pub fn forecast_refreshed(&self, wall: f64, compute: f64) {
        self.forecast.refresh_duration.observe(wall);
        self.forecast.refresh_cpu.inc_by(compute);
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

/// Content type of [`metrics_handler`] answers.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /metrics`.
pub async fn metrics_handler(State(metrics): State<Arc<Metrics>>) -> Response {
    let mut response = (StatusCode::OK, metrics.encode()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE),
    );
    response
}

/// A router serving `/metrics`.
pub fn routes(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .with_state(metrics)
}

/// Middleware recording route, status code and latency of every request; use it with
/// `axum::middleware::from_fn_with_state(metrics, track_http)` or [`instrument`].
/// The route is the matched route template, `unmatched` for the fallback, so the label
/// stays low-cardinality.
pub async fn track_http(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let start = tokio::time::Instant::now();
    let response = next.run(req).await;
    metrics.observe_http(
        &route,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}

/// Wrap every route of `router` (and its fallback) with [`track_http`].
pub fn instrument(router: Router, metrics: Arc<Metrics>) -> Router {
    router.layer(axum::middleware::from_fn_with_state(metrics, track_http))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request as HttpRequest;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

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

    #[tokio::test]
    async fn middleware_records_matched_route_and_metrics_endpoint() {
        let metrics = Arc::new(Metrics::new());
        let app = instrument(
            Router::new()
                .route("/things/{name}", get(|| async { "thing" }))
                .merge(routes(metrics.clone())),
            metrics.clone(),
        );
        for path in ["/things/a", "/things/b", "/nope"] {
            app.clone()
                .oneshot(HttpRequest::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
        }
        let response = app
            .oneshot(HttpRequest::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            OPENMETRICS_CONTENT_TYPE
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(body.to_vec()).unwrap();
        let l = lines(&text);
        assert!(
            l.contains(&r#"augur_http_requests_total{route="/things/{name}",code="200"} 2"#),
            "{text}"
        );
        assert!(
            l.contains(&r#"augur_http_requests_total{route="unmatched",code="404"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn init_logging_twice_does_not_panic() {
        let first = init_logging("info", true).unwrap();
        let second = init_logging("debug", false).unwrap();
        assert!(!(first && second));
        assert!(
            init_logging("not a [valid directive", false).is_err()
                || std::env::var("RUST_LOG").is_ok()
        );
    }
}
