//! The HTTP layer: routes, discovery and error rendering; no PromQL or registry logic.

pub mod custom;
pub mod discovery;
pub mod error;
pub mod external;
pub mod health;
pub mod instrument;
pub mod metrics;
pub mod openapi;
pub mod types;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http::StatusCode;
use http::header::CONTENT_TYPE;
use serde_json::Value;

use crate::prometheus::Backend;
use crate::provider::objects::ObjectSource;
use crate::series::{Registry, Snapshot};
use crate::telemetry::Metrics;

use self::discovery::{ApiGroup, CUSTOM_METRICS, EXTERNAL_METRICS, RESOURCE_METRICS, api_resource};
use self::error::ApiError;
use self::health::Health;
use self::openapi::OpenApiDocs;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Current registry snapshot.
    pub registry: Arc<Registry>,
    /// The Prometheus-compatible backend.
    pub backend: Arc<dyn Backend>,
    /// augur's own metrics.
    pub metrics: Arc<Metrics>,
    /// Readiness.
    pub health: Health,
    /// OpenAPI documents, built once.
    pub openapi: Arc<OpenApiDocs>,
    /// The forecast engine behind twin metrics.
    pub forecast: Arc<crate::twin::engine::Engine>,
    /// Cluster mode: the watch caches that answer which objects a request selects.
    pub objects: Option<Arc<dyn ObjectSource>>,
}

impl AppState {
    /// State with OpenAPI documents for the groups augur can serve.
    pub fn new(
        registry: Arc<Registry>,
        backend: Arc<dyn Backend>,
        metrics: Arc<Metrics>,
        health: Health,
    ) -> Self {
        let openapi = Arc::new(OpenApiDocs::build(&[CUSTOM_METRICS, EXTERNAL_METRICS]));
        let forecast = crate::twin::engine::Engine::new(
            backend.clone(),
            metrics.clone(),
            crate::twin::engine::EngineOptions::default(),
        );
        Self {
            registry,
            backend,
            metrics,
            health,
            openapi,
            forecast,
            objects: None,
        }
    }

    /// The same state with this forecast engine.
    pub fn with_forecast(mut self, engine: Arc<crate::twin::engine::Engine>) -> Self {
        self.forecast = engine;
        self
    }

    /// Cluster mode: select objects (label selectors, Running pods) from `objects`.
    pub fn with_objects(mut self, objects: Arc<dyn ObjectSource>) -> Self {
        self.objects = Some(objects);
        self
    }
}

/// The API groups a snapshot's config enables: a group is served only when its section of
/// the config is non-empty, as in prometheus-adapter.
fn enabled_groups(snapshot: &Snapshot) -> Vec<ApiGroup> {
    let mut groups = Vec::new();
    if !snapshot.config.rules.is_empty() {
        groups.push(CUSTOM_METRICS);
    }
    if !snapshot.config.external_rules.is_empty() {
        groups.push(EXTERNAL_METRICS);
    }
    if snapshot.config.resource_rules.is_some() {
        groups.push(RESOURCE_METRICS);
    }
    groups
}

/// Serialises a JSON body; `?pretty=true` indents it as the apiserver does.
pub(crate) fn json_response(
    value: &impl serde::Serialize,
    params: &HashMap<String, String>,
) -> Response {
    let pretty = params
        .get("pretty")
        .is_some_and(|v| v == "true" || v == "1");
    let body = if pretty {
        serde_json::to_vec_pretty(value)
    } else {
        serde_json::to_vec(value)
    };
    match body {
        Ok(body) => ([(CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => ApiError::internal(format!("cannot encode response: {e}")).into_response(),
    }
}

fn json_bytes(body: Bytes) -> Response {
    ([(CONTENT_TYPE, "application/json")], body).into_response()
}

async fn apis(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if discovery::wants_aggregated_discovery(&headers) {
        // kube-aggregator falls back to the per-version APIResourceList on 406.
        return (
            StatusCode::NOT_ACCEPTABLE,
            "aggregated discovery is not served; use /apis/<group>/<version>",
        )
            .into_response();
    }
    let groups = enabled_groups(&state.registry.load());
    json_response(&discovery::api_group_list(&groups), &HashMap::new())
}

fn find_group(snapshot: &Snapshot, name: &str) -> Result<ApiGroup, ApiError> {
    enabled_groups(snapshot).into_iter().find(|g| g.name == name).ok_or_else(|| {
        ApiError::not_found(format!(
            "the API group {name:?} is not served: custom.metrics.k8s.io needs `rules`, external.metrics.k8s.io needs `externalRules`, metrics.k8s.io needs `resourceRules` in the config"
        ))
    })
}

async fn api_group(
    State(state): State<AppState>,
    Path(group): Path<String>,
) -> Result<Response, ApiError> {
    let group = find_group(&state.registry.load(), &group)?;
    Ok(json_response(
        &discovery::api_group(&group),
        &HashMap::new(),
    ))
}

async fn custom_resources(
    State(state): State<AppState>,
    Path(version): Path<String>,
) -> Result<Response, ApiError> {
    let snapshot = state.registry.load();
    let group = find_group(&snapshot, CUSTOM_METRICS.name)?;
    if !group.serves(&version) {
        return Err(ApiError::not_found(format!(
            "custom.metrics.k8s.io has no version {version:?}; augur serves v1beta1 and v1beta2"
        )));
    }
    let resources = snapshot
        .custom_resources()
        .into_iter()
        .map(|(name, namespaced)| api_resource(name, namespaced, "MetricValueList", &["get"]))
        .collect();
    Ok(json_response(
        &discovery::api_resource_list(group.name, &version, resources),
        &HashMap::new(),
    ))
}

async fn external_resources(State(state): State<AppState>) -> Result<Response, ApiError> {
    let snapshot = state.registry.load();
    let group = find_group(&snapshot, EXTERNAL_METRICS.name)?;
    let resources = snapshot
        .external_metrics()
        .into_iter()
        .map(|name| api_resource(name, true, "ExternalMetricValueList", &["get"]))
        .collect();
    Ok(json_response(
        &discovery::api_resource_list(group.name, "v1beta1", resources),
        &HashMap::new(),
    ))
}

async fn version() -> Response {
    json_response(&discovery::version_info(), &HashMap::new())
}

async fn openapi_v2(State(state): State<AppState>) -> Response {
    json_bytes(state.openapi.v2())
}

async fn openapi_v3_index(State(state): State<AppState>) -> Response {
    json_bytes(state.openapi.v3_index())
}

async fn openapi_v3(
    State(state): State<AppState>,
    Path((group, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    state
        .openapi
        .v3(&group, &version)
        .map(json_bytes)
        .ok_or_else(|| ApiError::not_found(format!("no OpenAPI v3 document for {group}/{version}")))
}

async fn fallback(uri: http::Uri) -> ApiError {
    ApiError::not_found(format!(
        "the server could not find the requested resource {}",
        uri.path()
    ))
}

/// Every route augur serves, instrumented with request metrics.
pub fn router(state: AppState) -> Router {
    router_behind(state, |routes| routes)
}

/// Every route augur serves behind `guard` (delegated auth), instrumented outside it: the
/// answers `guard` gives itself (401, 403) are counted like the others.
pub fn router_behind(state: AppState, guard: impl FnOnce(Router) -> Router) -> Router {
    let api = Router::new()
        .route("/apis", get(apis))
        .route("/apis/{group}", get(api_group))
        .route(
            "/apis/custom.metrics.k8s.io/{version}",
            get(custom_resources),
        )
        .route(
            "/apis/custom.metrics.k8s.io/{version}/{*path}",
            get(custom::get_metric),
        )
        .route(
            "/apis/external.metrics.k8s.io/v1beta1",
            get(external_resources),
        )
        .route(
            "/apis/external.metrics.k8s.io/v1beta1/{*path}",
            get(external::get_metric),
        )
        .merge(metrics::routes())
        .route("/version", get(version))
        .route("/openapi/v2", get(openapi_v2))
        .route("/openapi/v3", get(openapi_v3_index))
        .route("/openapi/v3/apis/{group}/{version}", get(openapi_v3))
        .fallback(fallback)
        .with_state(state.clone())
        .layer(axum::middleware::from_fn(error::status_bodies))
        .merge(health::routes(state.health.clone()))
        .merge(instrument::routes(state.metrics.clone()));
    instrument::instrument(guard(api), state.metrics)
}

/// The JSON value type handlers build.
pub type Json = Value;
