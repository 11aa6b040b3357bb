//! The HTTP layer: routes, discovery and error rendering; no PromQL or registry logic.

pub mod custom;
pub mod discovery;
pub mod error;
pub mod external;
pub mod health;
pub mod openapi;
pub mod types;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header::CONTENT_TYPE;

use crate::prometheus::Backend;
use crate::series::Registry;
use crate::telemetry::Metrics;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Current registry snapshot.
    pub registry: Arc<Registry>,
    /// The Prometheus-compatible backend.
    pub backend: Arc<dyn Backend>,
    /// augur's own metrics.
    pub metrics: Arc<Metrics>,
}

/// Serialises a JSON body; `?pretty=true` indents it as the apiserver does.
pub(crate) fn json_response(
    value: &serde_json::Value,
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
        Err(e) => error::ApiError::internal(format!("cannot encode response: {e}")).into_response(),
    }
}

/// Every route augur serves.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/apis/custom.metrics.k8s.io/{version}/{*path}",
            get(custom::get_metric),
        )
        .route(
            "/apis/external.metrics.k8s.io/v1beta1/{*path}",
            get(external::get_metric),
        )
        .with_state(state)
}
