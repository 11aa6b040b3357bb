//! custom.metrics.k8s.io handlers: parse the path and query, call the provider, render the
//! MetricValueList or a Status error.

use std::collections::HashMap;
use std::time::SystemTime;

use axum::extract::{Path, Query, State};
use axum::response::Response;

use crate::promql::selector::LabelSelector;
use crate::provider::custom::custom_metric_with_objects;
use crate::provider::objects::ObjectsError;
use crate::provider::{CustomRequest, ObjectName, ProviderError};

use super::error::ApiError;
use super::types::{CustomVersion, metric_value_list};
use super::{AppState, json_response};

/// Which metrics API a provider error comes from: the original maps some errors differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    Custom,
    External,
}

/// Maps provider errors to the status codes prometheus-adapter's clients rely on.
pub(crate) fn provider_error(api: Api, error: ProviderError) -> ApiError {
    let message = error.to_string();
    match error {
        ProviderError::UnknownResource { .. }
        | ProviderError::MetricNotFound(_)
        | ProviderError::ObjectNotFound(_) => ApiError::not_found(message),
        ProviderError::NeedsCluster(_) => ApiError::bad_request(message),
        ProviderError::UnsupportedSelector(_) => match api {
            Api::Custom => ApiError::not_found(message),
            Api::External => ApiError::bad_request(message),
        },
        ProviderError::QueryBuild(_) => match api {
            Api::Custom => ApiError::not_found(message),
            Api::External => ApiError::internal(message),
        },
        ProviderError::Backend { ref error, .. } if error.is_unavailable() => {
            ApiError::service_unavailable(message)
        }
        ProviderError::Backend { .. } | ProviderError::BadResult(_) => ApiError::internal(message),
        ProviderError::Objects(ObjectsError::NotSynced(_)) => {
            ApiError::service_unavailable(message)
        }
        ProviderError::Objects(ObjectsError::Failed(_)) => ApiError::internal(message),
    }
}

/// Parses a selector query parameter; syntax errors are 400s naming the parameter.
pub(crate) fn selector_param(
    params: &HashMap<String, String>,
    name: &str,
) -> Result<LabelSelector, ApiError> {
    match params.get(name) {
        None => Ok(LabelSelector::default()),
        Some(text) => {
            LabelSelector::parse(text).map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
        }
    }
}

/// `GET /apis/custom.metrics.k8s.io/{version}/{*path}`.
pub(crate) async fn get_metric(
    State(state): State<AppState>,
    Path((version, path)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let version = CustomVersion::parse(&version).ok_or_else(|| {
        ApiError::not_found(format!(
            "custom.metrics.k8s.io has no version {version:?}; augur serves v1beta1 and v1beta2"
        ))
    })?;
    let request = parse_path(&path, &params)?;
    let snapshot = state.registry.load();
    let twin = snapshot.custom_twin(
        &request.resource,
        request.namespace.is_some(),
        &request.metric,
    );
    let items = match twin {
        Some((_, twin)) => {
            state
                .forecast
                .custom_metric(
                    &snapshot,
                    &request,
                    twin,
                    state.objects.as_deref(),
                    SystemTime::now(),
                )
                .await
        }
        None => {
            custom_metric_with_objects(
                &snapshot,
                state.backend.as_ref(),
                state.objects.as_deref(),
                &request,
                SystemTime::now(),
            )
            .await
        }
    }
    .map_err(|e| provider_error(Api::Custom, e))?;
    Ok(json_response(
        &metric_value_list(version, &items, &request.metric_selector),
        &params,
    ))
}

/// Splits the path after the version into a request:
/// `namespaces/{ns}/metrics/{m}`, `namespaces/{ns}/{resource}/{name}/{m}`, `{resource}/{name}/{m}`.
fn parse_path(path: &str, params: &HashMap<String, String>) -> Result<CustomRequest, ApiError> {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let (resource, namespace, name, metric) = match parts.as_slice() {
        ["namespaces", ns, "metrics", metric] => ("namespaces", None, *ns, *metric),
        ["namespaces", ns, resource, name, metric] => {
            (*resource, Some((*ns).to_owned()), *name, *metric)
        }
        [resource, name, metric] => (*resource, None, *name, *metric),
        _ if parts.len() < 3 => {
            return Err(ApiError::bad_request(format!(
                "invalid request path {path:?}: expected {{resource}}/{{name}}/{{metric}}, namespaces/{{namespace}}/{{resource}}/{{name}}/{{metric}} or namespaces/{{namespace}}/metrics/{{metric}}"
            )));
        }
        _ => {
            return Err(ApiError::not_found(format!(
                "no custom metrics route matches the path {path:?}"
            )));
        }
    };
    if [resource, name, metric].iter().any(|s| s.is_empty()) {
        return Err(ApiError::bad_request(format!(
            "invalid request path {path:?}: empty segment"
        )));
    }
    let mut name = if name == "*" {
        ObjectName::All
    } else {
        ObjectName::Named(name.to_owned())
    };
    if let Some(field) = params.get("fieldSelector").filter(|f| !f.is_empty()) {
        let wanted = field.strip_prefix("metadata.name=").ok_or_else(|| {
            ApiError::bad_request(format!(
                "fieldSelector {field:?}: only metadata.name=<name> is supported"
            ))
        })?;
        name = match name {
            ObjectName::All => ObjectName::Named(wanted.to_owned()),
            ObjectName::Named(n) if n == wanted => ObjectName::Named(n),
            ObjectName::Named(n) => {
                return Err(ApiError::bad_request(format!(
                    "fieldSelector {field:?} does not match the object name {n:?}"
                )));
            }
        };
    }
    Ok(CustomRequest {
        resource: resource.to_owned(),
        namespace,
        name,
        metric: metric.to_owned(),
        metric_selector: selector_param(params, "metricLabelSelector")?,
        object_selector: selector_param(params, "labelSelector")?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(path: &str) -> Result<CustomRequest, ApiError> {
        parse_path(path, &HashMap::new())
    }

    #[test]
    fn paths_map_to_requests_like_the_adapter() {
        let r = parse("namespaces/default/pods/web-1/http_requests").unwrap();
        assert_eq!(
            (
                r.resource.as_str(),
                r.namespace.as_deref(),
                r.metric.as_str()
            ),
            ("pods", Some("default"), "http_requests")
        );
        assert_eq!(r.name, ObjectName::Named("web-1".into()));
        let r = parse("namespaces/default/metrics/budget").unwrap();
        assert_eq!(
            (r.resource.as_str(), r.namespace, r.name),
            ("namespaces", None, ObjectName::Named("default".into()))
        );
        let r = parse("nodes/*/load").unwrap();
        assert_eq!((r.resource.as_str(), r.name), ("nodes", ObjectName::All));
        let err = parse("pods/x").unwrap_err();
        assert_eq!(err.code().as_u16(), 400);
        assert!(
            err.message().starts_with("invalid request path"),
            "{}",
            err.message()
        );
        assert_eq!(parse("a/b/c/d/e/f").unwrap_err().code().as_u16(), 404);
    }

    #[test]
    fn a_query_that_cannot_be_built_keeps_the_adapter_wording_first() {
        let why = "unable to fetch metrics: the query for external metric q cannot be built: externalRules[0] maps no series label to namespaces";
        let external = provider_error(Api::External, ProviderError::QueryBuild(why.into()));
        assert_eq!(external.code().as_u16(), 500);
        assert_eq!(
            external.message(),
            format!("Internal error occurred: {why}")
        );
        // Custom metrics: prometheus-adapter's 404.
        let custom = provider_error(
            Api::Custom,
            ProviderError::QueryBuild("the server could not find the metric m for pods: x".into()),
        );
        assert_eq!(custom.code().as_u16(), 404);
    }

    #[test]
    fn field_selector_names_the_object() {
        let params: HashMap<String, String> =
            [("fieldSelector".to_owned(), "metadata.name=web-2".to_owned())].into();
        let r = parse_path("namespaces/default/pods/*/m", &params).unwrap();
        assert_eq!(r.name, ObjectName::Named("web-2".into()));
        assert_eq!(
            parse_path("namespaces/default/pods/web-1/m", &params)
                .unwrap_err()
                .code()
                .as_u16(),
            400
        );
    }
}
