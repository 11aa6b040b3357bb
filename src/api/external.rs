//! external.metrics.k8s.io handlers: parse the path and selector, call the provider, render
//! the ExternalMetricValueList or a Status error.

use std::collections::HashMap;
use std::time::SystemTime;

use axum::extract::{Path, Query, State};
use axum::response::Response;

use crate::provider::ExternalRequest;
use crate::provider::external::external_metric;

use super::custom::{Api, provider_error, selector_param};
use super::error::ApiError;
use super::types::external_metric_value_list;
use super::{AppState, json_response};

/// `GET /apis/external.metrics.k8s.io/v1beta1/{*path}`: `namespaces/{ns}/{metric}`.
pub(crate) async fn get_metric(
    State(state): State<AppState>,
    Path(path): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let ["namespaces", namespace, metric] = parts.as_slice() else {
        return Err(ApiError::not_found(format!(
            "no external metrics route matches the path {path:?}: expected namespaces/{{namespace}}/{{metric}}"
        )));
    };
    let request = ExternalRequest {
        namespace: (*namespace).to_owned(),
        metric: (*metric).to_owned(),
        selector: selector_param(&params, "labelSelector")?,
    };
    let snapshot = state.registry.load();
    let items = match snapshot.external_twins.get(&request.metric) {
        Some(twin) => {
            state
                .forecast
                .external_metric(&snapshot, &request, twin, SystemTime::now())
                .await
        }
        None => {
            external_metric(
                &snapshot,
                state.backend.as_ref(),
                &request,
                SystemTime::now(),
            )
            .await
        }
    }
    .map_err(|e| provider_error(Api::External, e))?;
    Ok(json_response(&external_metric_value_list(&items), &params))
}
