//! Target `router`: request methods, paths and query strings (built from the segments and
//! parameters the metrics APIs use, or any bytes) through the whole router with a backend
//! that answers realistic samples; every error must be a `Status` with the response's code.

use std::sync::{Arc, OnceLock};

use arbitrary::{Arbitrary, Unstructured};
use augur::api::AppState;
use augur::prometheus::fake::{FakeBackend, labels};
use augur::prometheus::{QueryResult, Sample};

const SEGMENTS: &[&str] = &[
    "apis",
    "custom.metrics.k8s.io",
    "external.metrics.k8s.io",
    "metrics.k8s.io",
    "v1beta1",
    "v1beta2",
    "v1",
    "namespaces",
    "default",
    "pods",
    "*",
    "web-1",
    "http_requests_per_second",
    "http_requests_per_second_forecast",
    "queue_messages_ready",
    "queue_messages_ready_forecast",
    "queue_messages_ready_cluster",
    "nodes",
    "node-a",
    "services",
    "deployments.apps",
    "ingresses.networking.k8s.io",
    "metrics",
    "openapi",
    "v2",
    "v3",
    "version",
    "healthz",
    "readyz",
    "livez",
    "..",
    ".",
    "",
    "%2F",
    "%00",
    "%ZZ",
    "%2A",
    "%E2%82%AC",
    "\u{20ac}",
];
const PARAMS: &[&str] = &[
    "labelSelector",
    "metricLabelSelector",
    "pretty",
    "fieldSelector",
    "resourceVersion",
    "watch",
    "limit",
    "timeout",
    "x",
];
const VALUES: &[&str] = &[
    "",
    "true",
    "1",
    "app%3Dweb",
    "app=web",
    "queue%3Dorders",
    "queue+in+(orders,jobs)",
    "!app",
    "app%21%3Dweb",
    "a%3E1",
    "%",
    "%ZZ",
    "a=b,,c",
    "app+notin+()",
    "=",
    "x%00y",
];
const METHODS: &[&str] = &[
    "GET", "GET", "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "LIST",
];
const ACCEPTS: &[&str] = &[
    "application/json",
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
    "application/vnd.kubernetes.protobuf",
    "*/*",
    "",
];

#[derive(Debug, Arbitrary)]
enum Input {
    Raw {
        method: u8,
        target: String,
    },
    Built {
        method: u8,
        accept: u8,
        segments: Vec<Piece>,
        trailing_slash: bool,
        params: Vec<(Piece, Piece)>,
    },
}

#[derive(Debug, Arbitrary)]
enum Piece {
    Known(u8),
    Any(String),
}

impl Piece {
    fn text(&self, known: &[&str]) -> String {
        match self {
            Piece::Known(i) => known[usize::from(*i) % known.len()].to_owned(),
            Piece::Any(s) => s.clone(),
        }
    }
}

fn base() -> &'static (AppState, Arc<FakeBackend>) {
    static BASE: OnceLock<(AppState, Arc<FakeBackend>)> = OnceLock::new();
    BASE.get_or_init(|| {
        let series = |pairs: &[(&str, &str)]| labels(pairs);
        let fake = FakeBackend::new()
            .with_series(
                r#"http_requests_total{namespace!="",pod!=""}"#,
                vec![series(&[
                    ("__name__", "http_requests_total"),
                    ("namespace", "default"),
                    ("pod", "web-1"),
                ])],
            )
            .with_series(
                r#"queue_messages_ready{namespace!=""}"#,
                vec![series(&[
                    ("__name__", "queue_messages_ready"),
                    ("namespace", "default"),
                    ("queue", "orders"),
                ])],
            );
        let (_, registry) = super::registry(super::prometheus::RULES, Arc::new(fake));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64().floor());
        let answers = FakeBackend::new().with_query_fn(move |_, _| {
            let sample = |pairs: &[(&str, &str)], value| Sample {
                labels: labels(pairs),
                timestamp: now,
                value,
            };
            Ok(QueryResult::Vector(vec![
                sample(
                    &[
                        ("namespace", "default"),
                        ("pod", "web-1"),
                        ("container", "app"),
                        ("node", "node-a"),
                        ("queue", "orders"),
                    ],
                    1.5,
                ),
                sample(
                    &[
                        ("namespace", "default"),
                        ("pod", "web-2"),
                        ("node", "node-b"),
                    ],
                    2.0,
                ),
            ]))
        });
        (super::base_state(registry), Arc::new(answers))
    })
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(input) = Input::arbitrary(&mut u) else {
        return;
    };
    let (method, accept, target) = match input {
        Input::Raw { method, target } => (method, ACCEPTS.len() - 1, target),
        Input::Built {
            method,
            accept,
            segments,
            trailing_slash,
            params,
        } => {
            let mut target = String::new();
            for segment in segments.iter().take(12) {
                target.push('/');
                target.push_str(&segment.text(SEGMENTS));
            }
            if trailing_slash || target.is_empty() {
                target.push('/');
            }
            let query: Vec<String> = params
                .iter()
                .take(6)
                .map(|(k, v)| format!("{}={}", k.text(PARAMS), v.text(VALUES)))
                .collect();
            if !query.is_empty() {
                target.push('?');
                target.push_str(&query.join("&"));
            }
            (method, usize::from(accept) % ACCEPTS.len(), target)
        }
    };
    let method = METHODS[usize::from(method) % METHODS.len()];
    let (base, backend) = base();
    let state = super::state(base, backend.clone());
    super::send(state, method, &target, ACCEPTS[accept]);
}
