//! Target `prometheus`: Prometheus answers (built like the real JSON, or raw bytes) through
//! augur's decoder, the custom, external, resource and forecast-twin providers and the API
//! layer, for requests on every route that reads sample values or times.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arbitrary::{Arbitrary, Unstructured};
use augur::api::AppState;
use augur::prometheus::client::{
    decode_query_answer, decode_query_range_answer, decode_series_answer,
};
use augur::prometheus::fake::{FakeBackend, labels};
use augur::prometheus::{Backend, QueryResult, RangeSeries, Result, SeriesList};
use futures::FutureExt as _;
use futures::future::BoxFuture;

/// Rules with every kind of route that maps samples: custom (with a twin), external (a
/// vector and a scalar, with a twin) and resource metrics.
pub const RULES: &str = r#"
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {matches: "^(.*)_total$", as: "${1}_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
  forecast: {horizon: 5m, step: 1m, history: 2h, fallbackWindow: 10m}
externalRules:
- seriesQuery: 'queue_messages_ready{namespace!=""}'
  resources: {overrides: {namespace: {resource: namespace}}}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (queue)'
  forecast: {horizon: 5m, step: 1m, history: 2h, model: holt-winters, fallbackWindow: 0}
- seriesQuery: 'queue_messages_ready{namespace!=""}'
  resources: {namespaced: false}
  name: {as: "queue_messages_ready_cluster"}
  metricsQuery: 'scalar(sum(<<.Series>>{<<.LabelMatchers>>}))'
resourceRules:
  cpu:
    containerQuery: 'sum by (<<.GroupBy>>) (rate(container_cpu_usage_seconds_total{container!="",<<.LabelMatchers>>}[3m]))'
    nodeQuery: 'sum by (<<.GroupBy>>) (rate(node_cpu_seconds_total{mode!="idle",<<.LabelMatchers>>}[3m]))'
    resources: {overrides: {node: {resource: node}, namespace: {resource: namespace}, pod: {resource: pod}}}
    containerLabel: container
  memory:
    containerQuery: 'sum by (<<.GroupBy>>) (container_memory_working_set_bytes{container!="",<<.LabelMatchers>>})'
    nodeQuery: 'sum by (<<.GroupBy>>) (node_memory_MemTotal_bytes{<<.LabelMatchers>>})'
    resources: {overrides: {node: {resource: node}, namespace: {resource: namespace}, pod: {resource: pod}}}
    containerLabel: container
  window: 3m
"#;

/// The routes asked, each with what the fuzzer may vary in its query string.
const ROUTES: &[&str] = &[
    "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/pods/*/http_requests_per_second",
    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*/http_requests_per_second",
    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/web-1/http_requests_per_second",
    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*/http_requests_per_second_forecast",
    "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/pods/web-1/http_requests_per_second_forecast",
    "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue_messages_ready",
    "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue_messages_ready?labelSelector=queue%3Dorders",
    "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue_messages_ready_forecast",
    "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue_messages_ready_cluster",
    "/apis/metrics.k8s.io/v1beta1/pods",
    "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
    "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web-1",
    "/apis/metrics.k8s.io/v1beta1/nodes",
    "/apis/metrics.k8s.io/v1beta1/nodes/node-a",
];

const LABEL_NAMES: &[&str] = &[
    "namespace",
    "pod",
    "node",
    "container",
    "queue",
    "service",
    "__name__",
    "instance",
];
const LABEL_VALUES: &[&str] = &["default", "web-1", "web-2", "node-a", "app", "orders", ""];

/// A Prometheus answer: built from the documented shapes, or any bytes.
#[derive(Debug, Arbitrary)]
enum Answer {
    Success(Data),
    Failure {
        http: Http,
        error_type: ErrorType,
        message: String,
    },
    Raw {
        http: Http,
        body: Vec<u8>,
    },
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Http {
    Ok,
    BadRequest,
    Unprocessable,
    Unavailable,
    Other(u16),
}

impl Http {
    fn code(self) -> u16 {
        match self {
            Http::Ok => 200,
            Http::BadRequest => 400,
            Http::Unprocessable => 422,
            Http::Unavailable => 503,
            Http::Other(code) => 100 + code % 500,
        }
    }
}

#[derive(Debug, Arbitrary)]
enum ErrorType {
    BadData,
    Execution,
    Timeout,
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum Data {
    Vector(Vec<Item>),
    Scalar(Point),
    Matrix(Vec<Series>),
    String(Point),
    Null,
    Missing,
    /// A resultType with a result of another shape.
    Mismatched(ResultType, Vec<Point>),
}

#[derive(Debug, Arbitrary)]
enum ResultType {
    Vector,
    Scalar,
    Matrix,
    String,
    Other(String),
}

#[derive(Debug, Arbitrary)]
struct Item {
    labels: Vec<Label>,
    value: Option<Point>,
}

#[derive(Debug, Arbitrary)]
struct Series {
    labels: Vec<Label>,
    values: Vec<Point>,
}

#[derive(Debug, Arbitrary)]
struct Label {
    name: Text,
    value: Text,
}

/// A label name or value: one the rules know, or any string.
#[derive(Debug, Arbitrary)]
enum Text {
    Known(u8),
    Any(String),
}

#[derive(Debug, Arbitrary)]
struct Point {
    time: Time,
    value: Value,
}

/// A sample time: realistic ones around now, and any number or text.
#[derive(Debug, Arbitrary)]
enum Time {
    Now,
    MinutesAgo(u16),
    Unix(u64),
    Signed(i64),
    Float(f64),
    Text(String),
}

/// A sample value: the strings Prometheus writes, or anything.
#[derive(Debug, Arbitrary)]
enum Value {
    Float(f64),
    Int(i64),
    NaN,
    Inf,
    NegInf,
    Text(String),
    Number(f64),
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// A JSON number for a float (JSON has no NaN or infinities: those become `null`).
fn number(x: f64) -> String {
    if x.is_finite() {
        format!("{x:?}")
    } else {
        "null".to_owned()
    }
}

fn string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

impl Text {
    fn render(&self, known: &[&str]) -> String {
        match self {
            Text::Known(i) => string(known[usize::from(*i) % known.len()]),
            Text::Any(s) => string(s),
        }
    }
}

fn render_labels(labels: &[Label]) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .map(|l| {
            format!(
                "{}:{}",
                l.name.render(LABEL_NAMES),
                l.value.render(LABEL_VALUES)
            )
        })
        .collect();
    format!("{{{}}}", pairs.join(","))
}

impl Point {
    fn render(&self) -> String {
        let time = match &self.time {
            Time::Now => now().to_string(),
            Time::MinutesAgo(m) => (now() - 60 * i64::from(*m)).to_string(),
            Time::Unix(t) => t.to_string(),
            Time::Signed(t) => t.to_string(),
            Time::Float(t) => number(*t),
            Time::Text(t) => string(t),
        };
        let value = match &self.value {
            Value::Float(v) => string(&format!("{v}")),
            Value::Int(v) => string(&v.to_string()),
            Value::NaN => string("NaN"),
            Value::Inf => string("+Inf"),
            Value::NegInf => string("-Inf"),
            Value::Text(v) => string(v),
            Value::Number(v) => number(*v),
        };
        format!("[{time},{value}]")
    }
}

impl Answer {
    fn render(&self) -> (u16, Vec<u8>) {
        match self {
            Answer::Success(data) => (200, success(data).into_bytes()),
            Answer::Failure {
                http,
                error_type,
                message,
            } => {
                let error_type = match error_type {
                    ErrorType::BadData => "bad_data".to_owned(),
                    ErrorType::Execution => "execution".to_owned(),
                    ErrorType::Timeout => "timeout".to_owned(),
                    ErrorType::Other(s) => s.clone(),
                };
                let body = format!(
                    r#"{{"status":"error","errorType":{},"error":{}}}"#,
                    string(&error_type),
                    string(message)
                );
                (http.code(), body.into_bytes())
            }
            Answer::Raw { http, body } => (http.code(), body.clone()),
        }
    }
}

fn success(data: &Data) -> String {
    let list = |items: Vec<String>| format!("[{}]", items.join(","));
    let data = match data {
        Data::Vector(items) => format!(
            r#"{{"resultType":"vector","result":{}}}"#,
            list(
                items
                    .iter()
                    .map(|i| match &i.value {
                        Some(p) => format!(
                            r#"{{"metric":{},"value":{}}}"#,
                            render_labels(&i.labels),
                            p.render()
                        ),
                        None => format!(r#"{{"metric":{}}}"#, render_labels(&i.labels)),
                    })
                    .collect()
            )
        ),
        Data::Scalar(p) => format!(r#"{{"resultType":"scalar","result":{}}}"#, p.render()),
        Data::String(p) => format!(r#"{{"resultType":"string","result":{}}}"#, p.render()),
        Data::Matrix(series) => format!(
            r#"{{"resultType":"matrix","result":{}}}"#,
            list(
                series
                    .iter()
                    .map(|s| format!(
                        r#"{{"metric":{},"values":{}}}"#,
                        render_labels(&s.labels),
                        list(s.values.iter().map(Point::render).collect())
                    ))
                    .collect()
            )
        ),
        Data::Null => "null".to_owned(),
        Data::Missing => return r#"{"status":"success"}"#.to_owned(),
        Data::Mismatched(kind, points) => {
            let kind = match kind {
                ResultType::Vector => "vector".to_owned(),
                ResultType::Scalar => "scalar".to_owned(),
                ResultType::Matrix => "matrix".to_owned(),
                ResultType::String => "string".to_owned(),
                ResultType::Other(s) => s.clone(),
            };
            format!(
                r#"{{"resultType":{},"result":{}}}"#,
                string(&kind),
                list(points.iter().map(Point::render).collect())
            )
        }
    };
    format!(r#"{{"status":"success","data":{data}}}"#)
}

/// A backend that answers every call with the next of the fuzzer's answers, decoded by the
/// real HTTP backend's decoder.
struct Answers {
    bodies: Vec<(u16, Vec<u8>)>,
    next: AtomicUsize,
}

impl Answers {
    fn next(&self) -> (u16, &[u8]) {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        match self.bodies.get(i % self.bodies.len().max(1)) {
            Some((code, body)) => (*code, body),
            None => (
                200,
                br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
            ),
        }
    }
}

impl Backend for Answers {
    fn series<'a>(&'a self, _: &'a str, _: SystemTime) -> BoxFuture<'a, Result<SeriesList>> {
        let (code, body) = self.next();
        futures::future::ready(decode_series_answer(code, body)).boxed()
    }

    fn query<'a>(&'a self, _: &'a str, _: SystemTime) -> BoxFuture<'a, Result<QueryResult>> {
        let (code, body) = self.next();
        futures::future::ready(decode_query_answer(code, body)).boxed()
    }

    fn query_range<'a>(
        &'a self,
        _: &'a str,
        _: SystemTime,
        _: SystemTime,
        _: Duration,
    ) -> BoxFuture<'a, Result<Vec<RangeSeries>>> {
        let (code, body) = self.next();
        futures::future::ready(decode_query_range_answer(code, body)).boxed()
    }
}

fn base() -> &'static AppState {
    static BASE: OnceLock<AppState> = OnceLock::new();
    BASE.get_or_init(|| {
        let series = |name: &str, extra: &[(&str, &str)]| {
            let mut pairs = vec![("__name__", name)];
            pairs.extend_from_slice(extra);
            labels(&pairs)
        };
        let fake = FakeBackend::new()
            .with_series(
                r#"http_requests_total{namespace!="",pod!=""}"#,
                vec![series(
                    "http_requests_total",
                    &[("namespace", "default"), ("pod", "web-1")],
                )],
            )
            .with_series(
                r#"queue_messages_ready{namespace!=""}"#,
                vec![series(
                    "queue_messages_ready",
                    &[("namespace", "default"), ("queue", "orders")],
                )],
            );
        let (_, registry) = super::registry(RULES, Arc::new(fake));
        super::base_state(registry)
    })
}

/// Runs one input: up to three requests against up to four answers.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(answers) = u.arbitrary::<Vec<Answer>>() else {
        return;
    };
    let bodies: Vec<(u16, Vec<u8>)> = answers.iter().take(4).map(Answer::render).collect();
    let routes: Vec<&str> = (0..3)
        .map_while(|_| u.choose(ROUTES).ok().copied())
        .collect();
    let backend = Arc::new(Answers {
        bodies,
        next: AtomicUsize::new(0),
    });
    let app = augur::api::router(super::state(base(), backend));
    for route in routes {
        super::send_to(app.clone(), "GET", route, "");
    }
}
