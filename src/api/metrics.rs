//! metrics.k8s.io v1beta1 handlers: PodMetrics and NodeMetrics (get, list, by namespace, by
//! label selector) in metrics-server's JSON shapes, and the group's APIResourceList.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList;
use serde_json::{Map, Value, json};

use crate::provider::ProviderError;
use crate::provider::resource::{
    NodeUsage, PodUsage, ResourceRequest, node_metrics, pod_metrics, rules,
};
use crate::quantity::{binary_from_milli, decimal_from_milli};
use crate::units::go_duration;

use super::custom::{Api, provider_error, selector_param};
use super::discovery::{RESOURCE_METRICS, api_resource, api_resource_list};
use super::error::ApiError;
use super::types::rfc3339;
use super::{AppState, json_response};

const GROUP_VERSION: &str = "metrics.k8s.io/v1beta1";

/// The metrics.k8s.io routes (state: [`AppState`]).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/apis/metrics.k8s.io/v1beta1", get(resources))
        .route("/apis/metrics.k8s.io/v1beta1/pods", get(all_pods))
        .route(
            "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods",
            get(namespace_pods),
        )
        .route(
            "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/{name}",
            get(one_pod),
        )
        .route("/apis/metrics.k8s.io/v1beta1/nodes", get(all_nodes))
        .route("/apis/metrics.k8s.io/v1beta1/nodes/{name}", get(one_node))
}

/// The APIResourceList metrics-server serves for the group.
pub fn resource_list() -> APIResourceList {
    let verbs = &["get", "list"];
    api_resource_list(
        RESOURCE_METRICS.name,
        RESOURCE_METRICS.preferred_version(),
        vec![
            api_resource("nodes".to_owned(), false, "NodeMetrics", verbs),
            api_resource("pods".to_owned(), true, "PodMetrics", verbs),
        ],
    )
}

async fn resources(State(state): State<AppState>) -> Result<Response, ApiError> {
    rules(&state.registry.load()).map_err(not_served)?;
    Ok(json_response(&resource_list(), &HashMap::new()))
}

fn not_served(error: ProviderError) -> ApiError {
    ApiError::not_found(error.to_string())
}

/// `labelSelector` and `fieldSelector=metadata.name=<name>` of a list request.
fn list_request(
    namespace: Option<String>,
    params: &HashMap<String, String>,
) -> Result<ResourceRequest, ApiError> {
    let name = match params.get("fieldSelector").filter(|f| !f.is_empty()) {
        None => None,
        Some(field) => Some(
            field
                .strip_prefix("metadata.name=")
                .map(str::to_owned)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "fieldSelector {field:?}: only metadata.name=<name> is supported"
                    ))
                })?,
        ),
    };
    Ok(ResourceRequest {
        namespace,
        name,
        selector: selector_param(params, "labelSelector")?,
    })
}

/// A list request whose field selector names an object answers an empty list, not 404.
fn found_or_empty<T>(result: Result<Vec<T>, ProviderError>) -> Result<Vec<T>, ProviderError> {
    match result {
        Err(ProviderError::ObjectNotFound(_)) => Ok(Vec::new()),
        other => other,
    }
}

async fn pods(
    state: AppState,
    namespace: Option<String>,
    params: HashMap<String, String>,
) -> Result<Response, ApiError> {
    let snapshot = state.registry.load();
    let window = rules(&snapshot).map_err(not_served)?.window;
    let request = list_request(namespace, &params)?;
    let items = found_or_empty(
        pod_metrics(
            &snapshot,
            state.backend.as_ref(),
            state.objects.as_deref(),
            &request,
        )
        .await,
    )
    .map_err(|e| provider_error(Api::External, e))?;
    let now = SystemTime::now();
    let items: Vec<Value> = items
        .iter()
        .map(|pod| pod_json(pod, window, now, false))
        .collect();
    Ok(json_response(
        &json!({"kind": "PodMetricsList", "apiVersion": GROUP_VERSION, "metadata": {}, "items": items}),
        &params,
    ))
}

async fn all_pods(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    pods(state, None, params).await
}

async fn namespace_pods(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    pods(state, Some(namespace), params).await
}

async fn one_pod(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let snapshot = state.registry.load();
    let window = rules(&snapshot).map_err(not_served)?.window;
    let request = ResourceRequest {
        namespace: Some(namespace),
        name: Some(name.clone()),
        selector: Default::default(),
    };
    let items = pod_metrics(
        &snapshot,
        state.backend.as_ref(),
        state.objects.as_deref(),
        &request,
    )
    .await
    .map_err(|e| provider_error(Api::External, e))?;
    let pod = items.iter().find(|p| p.name == name).ok_or_else(|| {
        ApiError::not_found(format!("podmetrics.metrics.k8s.io {name:?} not found"))
    })?;
    Ok(json_response(
        &pod_json(pod, window, SystemTime::now(), true),
        &params,
    ))
}

async fn nodes(
    state: AppState,
    name: Option<String>,
    params: HashMap<String, String>,
) -> Result<Response, ApiError> {
    let snapshot = state.registry.load();
    let window = rules(&snapshot).map_err(not_served)?.window;
    let single = name.is_some();
    let mut request = list_request(None, &params)?;
    if name.is_some() {
        request = ResourceRequest {
            name,
            ..Default::default()
        };
    }
    let result = node_metrics(
        &snapshot,
        state.backend.as_ref(),
        state.objects.as_deref(),
        &request,
    )
    .await;
    let result = if single {
        result
    } else {
        found_or_empty(result)
    };
    let items = result.map_err(|e| provider_error(Api::External, e))?;
    let now = SystemTime::now();
    if single {
        let node = items.first().ok_or_else(|| {
            ApiError::not_found(format!(
                "nodemetrics.metrics.k8s.io {:?} not found",
                request.name.unwrap_or_default()
            ))
        })?;
        return Ok(json_response(&node_json(node, window, now, true), &params));
    }
    let items: Vec<Value> = items
        .iter()
        .map(|node| node_json(node, window, now, false))
        .collect();
    Ok(json_response(
        &json!({"kind": "NodeMetricsList", "apiVersion": GROUP_VERSION, "metadata": {}, "items": items}),
        &params,
    ))
}

async fn all_nodes(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    nodes(state, None, params).await
}

async fn one_node(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    nodes(state, Some(name), params).await
}

/// `metadata` as metrics-server fills it: name, namespace, creationTimestamp (the time of
/// the request) and the object's labels (omitted when empty).
fn metadata(
    name: &str,
    namespace: Option<&str>,
    labels: Option<&crate::provider::objects::Labels>,
    now: SystemTime,
) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), Value::String(name.to_owned()));
    if let Some(ns) = namespace {
        out.insert("namespace".into(), Value::String(ns.to_owned()));
    }
    out.insert("creationTimestamp".into(), Value::String(rfc3339(now)));
    if let Some(labels) = labels.filter(|l| !l.is_empty()) {
        out.insert("labels".into(), json!(labels));
    }
    Value::Object(out)
}

fn usage(cpu_milli: i64, memory_milli: i64) -> Value {
    json!({"cpu": decimal_from_milli(cpu_milli), "memory": binary_from_milli(memory_milli)})
}

/// One PodMetrics; `kind`/`apiVersion` only on a top-level object (list items have none).
pub fn pod_json(pod: &PodUsage, window: Duration, now: SystemTime, top_level: bool) -> Value {
    let mut out = Map::new();
    if top_level {
        out.insert("kind".into(), Value::String("PodMetrics".into()));
        out.insert("apiVersion".into(), Value::String(GROUP_VERSION.into()));
    }
    out.insert(
        "metadata".into(),
        metadata(&pod.name, Some(&pod.namespace), pod.labels.as_deref(), now),
    );
    out.insert("timestamp".into(), Value::String(rfc3339(pod.timestamp)));
    out.insert("window".into(), Value::String(go_duration(window)));
    let containers: Vec<Value> = pod
        .containers
        .iter()
        .map(|c| json!({"name": c.name, "usage": usage(c.cpu_milli, c.memory_milli)}))
        .collect();
    out.insert("containers".into(), Value::Array(containers));
    Value::Object(out)
}

/// One NodeMetrics; `kind`/`apiVersion` only on a top-level object.
pub fn node_json(node: &NodeUsage, window: Duration, now: SystemTime, top_level: bool) -> Value {
    let mut out = Map::new();
    if top_level {
        out.insert("kind".into(), Value::String("NodeMetrics".into()));
        out.insert("apiVersion".into(), Value::String(GROUP_VERSION.into()));
    }
    out.insert(
        "metadata".into(),
        metadata(&node.name, None, node.labels.as_deref(), now),
    );
    out.insert("timestamp".into(), Value::String(rfc3339(node.timestamp)));
    out.insert("window".into(), Value::String(go_duration(window)));
    out.insert("usage".into(), usage(node.cpu_milli, node.memory_milli));
    Value::Object(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::provider::resource::ContainerUsage;

    #[test]
    fn pod_and_node_metrics_match_metrics_server_shapes() {
        let at = UNIX_EPOCH + Duration::from_secs(1_704_067_200);
        let labels = Arc::new([("app".to_owned(), "web".to_owned())].into_iter().collect());
        let pod = PodUsage {
            namespace: "default".into(),
            name: "web-1".into(),
            labels: Some(labels),
            timestamp: at,
            containers: vec![ContainerUsage {
                name: "app".into(),
                cpu_milli: 120,
                memory_milli: 300 * 1024 * 1024 * 1000,
            }],
        };
        assert_eq!(
            pod_json(&pod, Duration::from_secs(300), at, true).to_string(),
            r#"{"kind":"PodMetrics","apiVersion":"metrics.k8s.io/v1beta1","metadata":{"name":"web-1","namespace":"default","creationTimestamp":"2024-01-01T00:00:00Z","labels":{"app":"web"}},"timestamp":"2024-01-01T00:00:00Z","window":"5m0s","containers":[{"name":"app","usage":{"cpu":"120m","memory":"300Mi"}}]}"#
        );
        let node = NodeUsage {
            name: "node-a".into(),
            labels: None,
            timestamp: at,
            cpu_milli: 1500,
            memory_milli: 2 * 1024 * 1024 * 1024 * 1000,
        };
        assert_eq!(
            node_json(&node, Duration::from_secs(60), at, false).to_string(),
            r#"{"metadata":{"name":"node-a","creationTimestamp":"2024-01-01T00:00:00Z"},"timestamp":"2024-01-01T00:00:00Z","window":"1m0s","usage":{"cpu":"1500m","memory":"2Gi"}}"#
        );
        assert_eq!(
            serde_json::to_string(&resource_list()).unwrap(),
            r#"{"apiVersion":"v1","kind":"APIResourceList","groupVersion":"metrics.k8s.io/v1beta1","resources":[{"kind":"NodeMetrics","name":"nodes","namespaced":false,"singularName":"","verbs":["get","list"]},{"kind":"PodMetrics","name":"pods","namespaced":true,"singularName":"","verbs":["get","list"]}]}"#
        );
    }
}
