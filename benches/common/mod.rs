//! Shared by the benches that run the real `augur` binary against a real Prometheus
//! (`hpas`, `serve`, `soak`): the integration tests' support (Prometheus, augur, the kube-apiserver double and
//! its answers), routes serving pod metadata for cluster mode, and readers of /metrics text.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};

/// The integration tests' support module, compiled into the bench (its submodules are found
/// next to it because this inline module sets the directory).
#[path = "../../tests/integration"]
pub(crate) mod integration {
    #[allow(dead_code, unused_imports)]
    pub(crate) mod support;
}

#[allow(unused_imports)]
pub(crate) use integration::support::{
    ApiServerDouble, Augur, TestPrometheus, api_resource, core_versions, metadata_list,
    parse_quantity, partial_metadata, watch_response,
};

/// One pod of the fake cluster: namespace, name and labels.
#[derive(Debug, Clone)]
pub(crate) struct Pod {
    /// Namespace.
    pub(crate) namespace: String,
    /// Name.
    pub(crate) name: String,
    /// Labels.
    pub(crate) labels: Vec<(String, String)>,
}

/// The kube-apiserver routes cluster mode needs for pods: discovery of the core group and a
/// metadata LIST of `pods` (serialised once), then WATCHes that stay open, empty, until their
/// `timeoutSeconds`, as the real server ends them.
pub(crate) fn pod_routes(pods: &[Pod]) -> Router {
    let items: Vec<Value> = pods
        .iter()
        .map(|p| {
            let labels: serde_json::Map<String, Value> = p
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            partial_metadata(&p.namespace, &p.name, Value::Object(labels))
        })
        .collect();
    let list = Arc::new(serde_json::to_vec(&metadata_list(items)).unwrap());
    Router::new()
        .route("/api", get(|| async { axum::Json(core_versions()) }))
        .route("/api/v1", get(|| async {
            axum::Json(json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                api_resource("pods", true, "Pod"), api_resource("services", true, "Service"),
                api_resource("namespaces", false, "Namespace"), api_resource("nodes", false, "Node")]}))
        }))
        .route("/apis", get(|| async { axum::Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})) }))
        .route("/api/v1/pods", get(move |Query(params): Query<HashMap<String, String>>| {
            let list = list.clone();
            async move {
                if params.get("watch").map(String::as_str) == Some("true") {
                    let seconds = params.get("timeoutSeconds").and_then(|s| s.parse().ok()).unwrap_or(290);
                    return watch_response(Vec::new(), Some(Duration::from_secs(seconds)));
                }
                ([("content-type", "application/json")], (*list).clone()).into_response()
            }
        }))
}

/// Starts the real augur binary (the one `cargo bench` or `cargo test` built) with `config`
/// against `prometheus_url`, in cluster mode over `kubeconfig` (authentication off: the
/// double serves no reviews), with `extra` flags, every other flag at its default.
pub(crate) async fn start_augur(
    prometheus_url: &str,
    config: &Path,
    kubeconfig: &Path,
    extra: &[String],
) -> Augur {
    let mut flags = vec![
        format!("--lister-kubeconfig={}", kubeconfig.display()),
        "--authentication-mode=off".to_owned(),
    ];
    flags.extend_from_slice(extra);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Augur::serve(prometheus_url, config, &flags).await
}

/// The sum of the values of every exposition line of `text` whose series starts with
/// `name` (followed by `{` or a space) and contains each of `parts`.
pub(crate) fn metric_sum(text: &str, name: &str, parts: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        })
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// GET `url` → body text (panics on an error: the benches' own calls must work).
pub(crate) async fn get_text(client: &reqwest::Client, url: &str) -> String {
    let response = client.get(url).send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.text().await.unwrap()
}

/// GET `url` → its JSON body (panics on an error: the benches' own calls must work).
pub(crate) async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    serde_json::from_str(&get_text(client, url).await).unwrap()
}

/// The load average line of `/proc/loadavg` (1, 5 and 15 minutes).
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
