//! Fuzz harnesses: one function per target, from raw bytes to augur's real code, shared by the
//! libFuzzer binaries (`fuzz/fuzz_targets/`, nightly) and the stable corpus replay in the
//! normal test suite (`tests/integration/fuzz_replay.rs`).
//!
//! Each harness reads its input with [`arbitrary::Unstructured`] into a structure that looks
//! like the real input (a YAML config, a request path, a Prometheus answer), so mutations
//! reach past the first parser; a raw-bytes variant keeps the plain parsers covered too.
//! Besides "no panic", each checks what must hold of every answer (an error is a Kubernetes
//! `Status` with the response's code, a rendered selector parses back to itself, ...).

pub mod config;
pub mod onnx;
pub mod prometheus;
pub mod router;
pub mod selector;
pub mod template;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use augur::api::health::Health;
use augur::api::{AppState, router as api_router};
use augur::config::{self as augur_config, Config, UnknownResources};
use augur::prometheus::Backend;
use augur::resources::ResourceTable;
use augur::series::{Registry, RelistOptions, Relister, Snapshot};
use augur::telemetry::Metrics;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

/// The runtime every harness shares (one thread: a fuzz input runs start to finish on it).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("tokio runtime: {e}"))
    })
}

/// A config and the registry a relist of `series` (a fake backend's canned answers) gives it.
pub fn registry(rules: &str, series: Arc<dyn Backend>) -> (Arc<Config>, Arc<Registry>) {
    let table = Arc::new(ResourceTable::builtin());
    let config = Arc::new(
        augur_config::parse(rules, "fuzz.yaml", &table, UnknownResources::Reject)
            .unwrap_or_else(|e| panic!("harness rules do not load: {e}")),
    );
    let registry = Arc::new(Registry::new(Snapshot::empty(
        config.clone(),
        table.clone(),
    )));
    let options = RelistOptions {
        interval: Duration::from_secs(60),
        max_age: Duration::from_secs(600),
        concurrency: 1,
    };
    let metrics = Arc::new(Metrics::new());
    runtime().block_on(
        Relister::new(series, registry.clone(), table, options, metrics).relist(config.clone()),
    );
    (config, registry)
}

/// Sends one request through the router and checks what every answer must be (see
/// [`check_answer`]). Returns the status (0 when `http` refuses the request) and the body.
pub fn send(state: AppState, method: &str, uri: &str, accept: &str) -> (u16, Vec<u8>) {
    send_to(api_router(state), method, uri, accept)
}

/// [`send`] through a router already built: building one costs more than most requests
/// (40 % of an input of the `router` target), so a harness that sends several requests per
/// input builds it once.
pub fn send_to(app: axum::Router, method: &str, uri: &str, accept: &str) -> (u16, Vec<u8>) {
    let mut builder = http::Request::builder().method(method).uri(uri);
    if !accept.is_empty() {
        builder = builder.header(http::header::ACCEPT, accept);
    }
    let Ok(request) = builder.body(axum::body::Body::empty()) else {
        return (0, Vec::new());
    };
    let path = request.uri().path().to_owned();
    runtime().block_on(async move {
        let response = app
            .oneshot(request)
            .await
            .unwrap_or_else(|never| match never {});
        let code = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes().to_vec())
            .unwrap_or_default();
        if method != "HEAD" {
            check_answer(method, uri, &path, code, &body);
        }
        (code, body)
    })
}

/// An error answer (4xx, 5xx) of an API route is a Kubernetes `Status` with the same code
/// and a message (health checks and /metrics answer text, as kube-apiserver's do); a 200
/// from an API route is JSON. `path` is the request's path as routed: `http` ends it at `?`
/// and `#` and drops a scheme and authority (found by the `router` target: `PUT /healthz###`
/// and `PATCH ://n/readyz` are health checks, whose 405 is plain text).
pub fn check_answer(method: &str, uri: &str, path: &str, code: u16, body: &[u8]) {
    let text = ["/healthz", "/readyz", "/livez", "/metrics"]
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")));
    let api =
        path.starts_with("/apis") || path.starts_with("/openapi") || path.starts_with("/version");
    if code >= 400 && !text {
        let status: serde_json::Value = serde_json::from_slice(body).unwrap_or_else(|e| {
            panic!(
                "{method} {uri}: {code} without a Status body ({e}): {:?}",
                String::from_utf8_lossy(body)
            )
        });
        assert_eq!(status["kind"], "Status", "{method} {uri}: {status}");
        assert_eq!(status["code"], code, "{method} {uri}: {status}");
        assert!(
            status["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{method} {uri}: Status without a message: {status}"
        );
    } else if code == 200 && api {
        serde_json::from_slice::<serde_json::Value>(body)
            .unwrap_or_else(|e| panic!("{method} {uri}: 200 that is not JSON: {e}"));
    }
}

/// The app state of `base` (built once: its OpenAPI documents are costly) over `backend`,
/// with a fresh forecast engine that waits for its first forecast (so twin requests reach
/// the models) and runs no background loop.
pub fn state(base: &AppState, backend: Arc<dyn Backend>) -> AppState {
    let options = augur::twin::engine::EngineOptions {
        first_wait: Duration::from_secs(5),
        background: false,
        ..Default::default()
    };
    let forecast = augur::twin::engine::Engine::new(backend.clone(), base.metrics.clone(), options);
    AppState {
        backend,
        forecast,
        ..base.clone()
    }
}

/// A base state for [`state`]: `registry`, a backend answering nothing, fresh metrics.
pub fn base_state(registry: Arc<Registry>) -> AppState {
    AppState::new(
        registry,
        Arc::new(augur::prometheus::fake::FakeBackend::new()),
        Arc::new(Metrics::new()),
        Health::new(),
    )
}

/// Picks one of `items` (the first when the input is exhausted).
pub fn pick<'a, T: ?Sized>(u: &mut arbitrary::Unstructured<'_>, items: &[&'a T]) -> &'a T {
    let index = u.choose_index(items.len()).unwrap_or(0);
    items[index]
}
