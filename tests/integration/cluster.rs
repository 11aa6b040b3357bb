//! Cluster mode end to end: the real `augur` binary with `--lister-kubeconfig` pointing at
//! the kube-apiserver test double (discovery with a CRD, metadata LIST/WATCH of pods, nodes
//! and widgets) and a real Prometheus with cAdvisor-like series; checked with exact JSON, the
//! double's call log, and the real `kubectl get --raw` / `kubectl top` through the double
//! acting as the aggregation layer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::support::{
    ApiServerDouble, Augur, FixtureFamily, FixtureSeries, TestPrometheus, api_resource,
    client_trusting, core_versions, fixture_series, metadata_list, normalise_times,
    partial_metadata, stdout_of, watch_response,
};

/// One object of the fake cluster.
#[derive(Clone)]
struct Object {
    namespace: &'static str,
    name: &'static str,
    labels: Value,
    running: bool,
}

fn object(namespace: &'static str, name: &'static str, labels: Value, running: bool) -> Object {
    Object {
        namespace,
        name,
        labels,
        running,
    }
}

/// What the double serves, and where it forwards metrics.k8s.io (to augur, once started).
struct FakeCluster {
    pods: Vec<Object>,
    nodes: Vec<Object>,
    widgets: Vec<Object>,
    /// (augur base URL, client trusting augur's certificate).
    aggregated: OnceLock<(String, reqwest::Client)>,
}

fn partial(o: &Object) -> Value {
    partial_metadata(o.namespace, o.name, o.labels.clone())
}

/// A metadata LIST of `objects` (Running ones only when the field selector asks), or a WATCH
/// stream: a BOOKMARK, the `events`, then nothing more while the connection stays open.
fn list_or_watch(
    objects: &[Object],
    params: &HashMap<String, String>,
    events: Vec<Value>,
) -> Response {
    let running_only =
        params.get("fieldSelector").map(String::as_str) == Some("status.phase=Running");
    if params.get("watch").map(String::as_str) == Some("true") {
        return watch_response(events, None);
    }
    let items: Vec<Value> = objects
        .iter()
        .filter(|o| o.running || !running_only)
        .map(partial)
        .collect();
    axum::Json(metadata_list(items)).into_response()
}

fn group(name: &str, version: &str) -> Value {
    let gv = json!({"groupVersion": format!("{name}/{version}"), "version": version});
    json!({"name": name, "versions": [gv.clone()], "preferredVersion": gv})
}

async fn forward(State(cluster): State<Arc<FakeCluster>>, request: Request) -> Response {
    let Some((base, client)) = cluster.aggregated.get() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "augur not started").into_response();
    };
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    match client.get(format!("{base}{path}")).send().await {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
            let body = answer.bytes().await.unwrap_or_default();
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// The kube-apiserver routes: discovery (core, apps, a CRD group, metrics.k8s.io), metadata
/// LIST/WATCH of pods, nodes and widgets, deployments forbidden, full nodes for `kubectl top
/// node`, and metrics.k8s.io forwarded to augur like kube-aggregator does.
fn routes(cluster: Arc<FakeCluster>) -> Router {
    Router::new()
        .route("/api", get(|| async { axum::Json(core_versions()) }))
        .route("/api/v1", get(|| async {
            axum::Json(json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                api_resource("pods", true, "Pod"), api_resource("pods/status", true, "Pod"),
                api_resource("nodes", false, "Node"), api_resource("namespaces", false, "Namespace"),
                api_resource("services", true, "Service")]}))
        }))
        .route("/apis", get(|| async {
            axum::Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                group("apps", "v1"), group("example.com", "v1alpha1"), group("metrics.k8s.io", "v1beta1")]}))
        }))
        .route("/apis/apps/v1", get(|| async {
            axum::Json(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": [api_resource("deployments", true, "Deployment")]}))
        }))
        .route("/apis/example.com/v1alpha1", get(|| async {
            axum::Json(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "example.com/v1alpha1", "resources": [api_resource("widgets", true, "Widget")]}))
        }))
        .route("/api/v1/pods", get(|State(c): State<Arc<FakeCluster>>, Query(p): Query<HashMap<String, String>>| async move {
            // The watch relabels web-3 from app=web-canary to app=web.
            let mut web3 = partial(&object("default", "web-3", json!({"app": "web"}), true));
            web3["metadata"]["resourceVersion"] = json!("12");
            list_or_watch(&c.pods, &p, vec![json!({"type": "MODIFIED", "object": web3})])
        }))
        .route("/api/v1/nodes", get(|State(c): State<Arc<FakeCluster>>, Query(p): Query<HashMap<String, String>>, headers: HeaderMap| async move {
            let metadata_only = headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()).is_some_and(|a| a.contains("PartialObjectMetadata"));
            if metadata_only || p.contains_key("watch") {
                return list_or_watch(&c.nodes, &p, Vec::new());
            }
            // kubectl top node reads allocatable from the full Node objects.
            let items: Vec<Value> = c.nodes.iter().map(|n| json!({"metadata": {"name": n.name, "labels": n.labels},
                "status": {"capacity": {"cpu": "4", "memory": "16Gi"}, "allocatable": {"cpu": "4", "memory": "16Gi"}}})).collect();
            axum::Json(json!({"kind": "NodeList", "apiVersion": "v1", "metadata": {"resourceVersion": "10"}, "items": items})).into_response()
        }))
        .route("/apis/example.com/v1alpha1/widgets", get(|State(c): State<Arc<FakeCluster>>, Query(p): Query<HashMap<String, String>>| async move {
            list_or_watch(&c.widgets, &p, Vec::new())
        }))
        .route("/apis/apps/v1/deployments", get(|| async {
            (StatusCode::FORBIDDEN, axum::Json(json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "deployments.apps is forbidden: User \"augur\" cannot list resource \"deployments\" in API group \"apps\" at the cluster scope",
                "reason": "Forbidden", "code": 403})))
        }))
        .route("/apis/metrics.k8s.io/v1beta1", get(forward))
        .route("/apis/metrics.k8s.io/v1beta1/{*rest}", get(forward))
        .with_state(cluster)
}

fn fake_cluster() -> Arc<FakeCluster> {
    Arc::new(FakeCluster {
        pods: vec![
            object("default", "db-0", json!({"app": "db"}), true),
            object("default", "pending-1", json!({"app": "web"}), false),
            object("default", "batch-0", json!({"app": "batch"}), false),
            object(
                "default",
                "web-1",
                json!({"app": "web", "tier": "front"}),
                true,
            ),
            object("default", "web-2", json!({"app": "web"}), true),
            object("default", "web-3", json!({"app": "web-canary"}), true),
            object("other", "other-1", json!({"app": "other"}), true),
        ],
        nodes: vec![
            object(
                "",
                "node-a",
                json!({"kubernetes.io/hostname": "node-a"}),
                true,
            ),
            object(
                "",
                "node-b",
                json!({"kubernetes.io/hostname": "node-b"}),
                true,
            ),
        ],
        widgets: vec![object("default", "w1", json!({"team": "a"}), true)],
        aggregated: OnceLock::new(),
    })
}

/// The shared fixture plus cAdvisor-like usage (counters with rates that are exact in binary,
/// so `irate` gives exact millicores) and series for a CRD and a deployment.
fn openmetrics() -> String {
    let mut fixture = fixture_series(SystemTime::now());
    let cpu = |labels: Vec<(&'static str, &'static str)>, rate| FixtureSeries {
        name: "container_cpu_usage_seconds_total",
        labels,
        initial: 100.0,
        rate,
    };
    let memory = |labels: Vec<(&'static str, &'static str)>, bytes| FixtureSeries {
        name: "container_memory_working_set_bytes",
        labels,
        initial: bytes,
        rate: 0.0,
    };
    let pod = |pod, container| {
        vec![
            (
                "namespace",
                if pod == "other-1" { "other" } else { "default" },
            ),
            ("pod", pod),
            ("container", container),
        ]
    };
    const MI: f64 = 1024.0 * 1024.0;
    fixture.families.push(FixtureFamily {
        family: "container_cpu_usage_seconds",
        kind: "counter",
        series: vec![
            cpu(pod("web-1", "app"), 0.125),
            cpu(pod("web-1", "sidecar"), 0.0625),
            cpu(pod("web-2", "app"), 0.25),
            cpu(pod("web-3", "app"), 0.5),
            cpu(pod("db-0", "db"), 0.5),
            cpu(pod("pending-1", "app"), 1.0),
            cpu(pod("other-1", "app"), 0.125),
            cpu(vec![("id", "/"), ("node", "node-a")], 1.5),
            cpu(vec![("id", "/"), ("node", "node-b")], 0.75),
        ],
    });
    fixture.families.push(FixtureFamily {
        family: "container_memory_working_set_bytes",
        kind: "gauge",
        series: vec![
            memory(pod("web-1", "app"), 300.0 * MI),
            memory(pod("web-2", "app"), 200.0 * MI),
            memory(pod("db-0", "db"), 1024.0 * MI),
            memory(pod("pending-1", "app"), MI),
            memory(pod("other-1", "app"), 100.0 * MI),
            memory(vec![("id", "/"), ("node", "node-a")], 4096.0 * MI),
            memory(vec![("id", "/"), ("node", "node-b")], 2048.0 * MI),
        ],
    });
    let gauge = |name, labels| FixtureFamily {
        family: name,
        kind: "gauge",
        series: vec![FixtureSeries {
            name,
            labels,
            initial: 4.0,
            rate: 0.0,
        }],
    };
    fixture.families.push(gauge(
        "widget_queue_depth",
        vec![("namespace", "default"), ("widget", "w1")],
    ));
    fixture.families.push(gauge(
        "deployment_busy",
        vec![("deployment", "web"), ("namespace", "default")],
    ));
    fixture.openmetrics()
}

const CONFIG: &str = r#"
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources:
    overrides:
      namespace: {resource: "namespace"}
      pod: {resource: "pod"}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
- seriesQuery: 'widget_queue_depth'
  resources:
    overrides:
      namespace: {resource: namespace}
      widget: {group: example.com, resource: widget}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
- seriesQuery: 'deployment_busy'
  resources: {template: "<<.Resource>>"}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
resourceRules:
  cpu:
    containerQuery: 'sum(irate(container_cpu_usage_seconds_total{<<.LabelMatchers>>,container!=""}[5m])) by (<<.GroupBy>>)'
    nodeQuery: 'sum(irate(container_cpu_usage_seconds_total{<<.LabelMatchers>>,id="/"}[5m])) by (<<.GroupBy>>)'
    resources:
      overrides:
        node: {resource: node}
        namespace: {resource: namespace}
        pod: {resource: pod}
    containerLabel: container
  memory:
    containerQuery: 'sum(container_memory_working_set_bytes{<<.LabelMatchers>>,container!=""}) by (<<.GroupBy>>)'
    nodeQuery: 'sum(container_memory_working_set_bytes{<<.LabelMatchers>>,id="/"}) by (<<.GroupBy>>)'
    resources:
      overrides:
        node: {resource: node}
        namespace: {resource: namespace}
        pod: {resource: pod}
    containerLabel: container
  window: 1m
"#;

/// Replaces `timestamp` and `creationTimestamp` values with "T" after checking each is
/// RFC 3339 within five minutes of now (sample times trail the clock by up to a scrape step).
fn normalise(value: &mut Value) {
    normalise_times(
        value,
        &["timestamp", "creationTimestamp"],
        Duration::from_secs(300),
    );
}

fn names(body: &Value) -> Vec<(String, String)> {
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {body}"))
        .iter()
        .map(|i| {
            (
                i["describedObject"]["name"].as_str().unwrap().to_owned(),
                i["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pair(name: &str, value: &str) -> (String, String) {
    (name.to_owned(), value.to_owned())
}

fn kubectl(kubeconfig: &Path, cache: &Path, args: &[&str]) -> String {
    stdout_of(
        Command::new("/usr/bin/kubectl")
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!("--cache-dir={}", cache.display()))
            .args(args),
    )
}

/// Table output as rows of whitespace-separated cells.
fn cells(table: &str) -> Vec<Vec<&str>> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect()
}

#[tokio::test]
async fn cluster_mode_end_to_end_with_watch_caches_metrics_api_and_kubectl_top() {
    let prometheus = TestPrometheus::start(&openmetrics());
    let cluster = fake_cluster();
    let double = ApiServerDouble::start(routes(cluster.clone()));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = double.write_kubeconfig(dir.path(), "augur-token");
    let config = dir.path().join("rules.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let augur = Augur::start(
        &prometheus.url(),
        &config,
        &[
            &format!("--lister-kubeconfig={}", kubeconfig.display()),
            "--cache-sync-timeout=1s",
            // Delegated auth has its own tests (auth.rs); this double serves no reviews.
            "--authentication-mode=off",
        ],
    )
    .await;
    cluster
        .aggregated
        .set((augur.url(""), client_trusting(&augur.cert())))
        .ok()
        .unwrap();

    // Discovery ran against the double (metrics.k8s.io, served by augur itself, was skipped)
    // and resolves the CRD: the widget's describedObject carries its real group version.
    assert_eq!(double.count("GET", "/apis/example.com/v1alpha1", ""), 1);
    assert_eq!(double.count("GET", "/apis/metrics.k8s.io/v1beta1", ""), 0);
    let (status, mut body) = augur.get("/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/widgets.example.com/w1/widget_queue_depth").await;
    assert_eq!(status, 200, "{body}");
    normalise(&mut body);
    assert_eq!(
        body["items"],
        json!([{"describedObject": {"kind": "Widget", "namespace": "default", "name": "w1", "apiVersion": "example.com/v1alpha1"},
            "metricName": "widget_queue_depth", "timestamp": "T", "value": "4", "selector": null}])
    );
    // `<<.Resource>>` resolves `deployment` through the discovered apps group.
    let (status, body) = augur.get("/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/deployments.apps/web/deployment_busy").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["items"][0]["describedObject"],
        json!({"kind": "Deployment", "namespace": "default", "name": "web", "apiVersion": "apps/v1"})
    );

    // `*` + labelSelector: names from the pod watch cache. The watch relabels web-3 into the
    // selection; wait (bounded) until that event has been applied.
    let web = "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/pods/*/http_requests_total?labelSelector=app%3Dweb";
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = augur.get(web).await;
        assert_eq!(status, 200, "{body}");
        let got = names(&body);
        if got.len() == 3 {
            assert_eq!(
                got,
                vec![
                    pair("web-1", "2200"),
                    pair("web-2", "3400"),
                    pair("web-3", "5800")
                ]
            );
            break;
        }
        assert_eq!(got, vec![pair("web-1", "2200"), pair("web-2", "3400")]);
        assert!(
            Instant::now() < deadline,
            "the watch event never reached the cache"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..20 {
        let (status, body) = augur.get("/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*/http_requests_total?labelSelector=app%3Dweb,tier%3Dfront").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(names(&body), vec![pair("web-1", "2200")]);
    }
    let (status, body) = augur.get("/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/pods/*/http_requests_total?labelSelector=app%3Dnothing").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        body["message"],
        "the server could not find the metric http_requests_total for pods: no objects in namespace default matched the label selector \"app=nothing\""
    );
    // As in prometheus-adapter, the selection does not filter by phase: a selector matching
    // only a Pending pod selects it, the query finds no sample for it, and the answer is an
    // empty list (200), while a selector matching no pod at all is a 404 that says so.
    let (status, body) = augur.get("/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/pods/*/http_requests_total?labelSelector=app%3Dbatch").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"kind": "MetricValueList", "apiVersion": "custom.metrics.k8s.io/v1beta1", "metadata": {}, "items": []})
    );
    // `*` without a selector is every pod the cache knows that has a sample.
    let (status, body) = augur
        .get("/apis/custom.metrics.k8s.io/v1beta1/namespaces/other/pods/*/http_requests_total")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&body), vec![pair("other-1", "10600")]);

    // A cache that cannot list answers 503 with the API server's reason, after a bounded wait.
    let (status, body) = augur.get("/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/deployments.apps/*/deployment_busy?labelSelector=app%3Dweb").await;
    assert_eq!(status, 503, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.starts_with("the object cache of deployments.apps has not synced with the Kubernetes API yet (waited 1s); last error: "), "{message}");
    assert!(
        message.contains("deployments.apps is forbidden"),
        "{message}"
    );

    // metrics.k8s.io: Running pods only (pending-1 is left out), pods without a memory sample
    // skipped (web-3), a container without memory reports 0 (web-1's sidecar).
    let (status, body) = augur.get("/apis/metrics.k8s.io/v1beta1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["resources"][1],
        json!({"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list"]})
    );
    let (status, mut body) = augur
        .get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods")
        .await;
    assert_eq!(status, 200, "{body}");
    normalise(&mut body);
    let pod = |name: &str, labels: Value, containers: Value| json!({"metadata": {"name": name, "namespace": "default", "creationTimestamp": "T", "labels": labels}, "timestamp": "T", "window": "1m0s", "containers": containers});
    assert_eq!(
        body,
        json!({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": [
            pod("db-0", json!({"app": "db"}), json!([{"name": "db", "usage": {"cpu": "500m", "memory": "1Gi"}}])),
            pod("web-1", json!({"app": "web", "tier": "front"}), json!([
                {"name": "app", "usage": {"cpu": "125m", "memory": "300Mi"}},
                {"name": "sidecar", "usage": {"cpu": "62m", "memory": "0"}}])),
            pod("web-2", json!({"app": "web"}), json!([{"name": "app", "usage": {"cpu": "250m", "memory": "200Mi"}}])),
        ]})
    );
    let (status, mut body) = augur
        .get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web-2")
        .await;
    assert_eq!(status, 200, "{body}");
    normalise(&mut body);
    assert_eq!(
        body,
        json!({"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {"name": "web-2", "namespace": "default", "creationTimestamp": "T", "labels": {"app": "web"}},
            "timestamp": "T", "window": "1m0s", "containers": [{"name": "app", "usage": {"cpu": "250m", "memory": "200Mi"}}]})
    );
    let (status, body) = augur
        .get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Ddb")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["items"][0]["metadata"]["name"], "db-0");
    let (status, body) = augur.get("/apis/metrics.k8s.io/v1beta1/pods").await;
    assert_eq!(status, 200, "{body}");
    let all: Vec<String> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}/{}",
                i["metadata"]["namespace"].as_str().unwrap(),
                i["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        all,
        [
            "default/db-0",
            "default/web-1",
            "default/web-2",
            "other/other-1"
        ]
    );
    let (status, body) = augur
        .get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web-3")
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        body["message"],
        "podmetrics.metrics.k8s.io \"web-3\" not found"
    );
    assert_eq!(body["reason"], "NotFound");
    let (status, body) = augur
        .get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/pending-1")
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["message"], "pods \"pending-1\" not found");
    let (status, mut body) = augur.get("/apis/metrics.k8s.io/v1beta1/nodes").await;
    assert_eq!(status, 200, "{body}");
    normalise(&mut body);
    let node = |name: &str, cpu: &str, memory: &str| json!({"metadata": {"name": name, "creationTimestamp": "T", "labels": {"kubernetes.io/hostname": name}}, "timestamp": "T", "window": "1m0s", "usage": {"cpu": cpu, "memory": memory}});
    assert_eq!(
        body,
        json!({"kind": "NodeMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": [node("node-a", "1500m", "4Gi"), node("node-b", "750m", "2Gi")]})
    );
    let (status, mut body) = augur.get("/apis/metrics.k8s.io/v1beta1/nodes/node-b").await;
    assert_eq!(status, 200, "{body}");
    normalise(&mut body);
    let mut want = node("node-b", "750m", "2Gi");
    want.as_object_mut()
        .unwrap()
        .insert("kind".into(), json!("NodeMetrics"));
    assert_eq!(body["kind"], "NodeMetrics");
    assert_eq!(body["usage"], want["usage"]);

    // augur's own discovery lists the groups its config enables.
    let (status, body) = augur.get("/apis").await;
    assert_eq!(status, 200, "{body}");
    let groups: Vec<&str> = body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["custom.metrics.k8s.io", "metrics.k8s.io"]);

    // The real kubectl pointed straight at augur (top pods needs only metrics.k8s.io).
    let top = kubectl(
        &augur.kubeconfig(),
        &dir.path().join("kubectl-cache-direct"),
        &["top", "pods", "-n", "default", "-l", "app=web"],
    );
    assert_eq!(
        cells(&top),
        vec![
            vec!["NAME", "CPU(cores)", "MEMORY(bytes)"],
            vec!["web-1", "187m", "300Mi"],
            vec!["web-2", "250m", "200Mi"]
        ],
        "{top}"
    );

    // The real kubectl through the double, which forwards metrics.k8s.io to augur as the
    // aggregation layer does.
    let cache = dir.path().join("kubectl-cache");
    let raw = kubectl(
        &kubeconfig,
        &cache,
        &[
            "get",
            "--raw",
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web-1",
        ],
    );
    let raw: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        raw["containers"][1],
        json!({"name": "sidecar", "usage": {"cpu": "62m", "memory": "0"}})
    );
    let top = kubectl(&kubeconfig, &cache, &["top", "pods", "-n", "default"]);
    assert_eq!(
        cells(&top),
        vec![
            vec!["NAME", "CPU(cores)", "MEMORY(bytes)"],
            vec!["db-0", "500m", "1024Mi"],
            vec!["web-1", "187m", "300Mi"],
            vec!["web-2", "250m", "200Mi"],
        ],
        "{top}"
    );
    let top = kubectl(&kubeconfig, &cache, &["top", "nodes"]);
    assert_eq!(
        cells(&top),
        vec![
            vec!["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"],
            vec!["node-a", "1500m", "37%", "4096Mi", "25%"],
            vec!["node-b", "750m", "18%", "2048Mi", "12%"],
        ],
        "{top}"
    );

    // One LIST and one WATCH per cache, however many requests were answered from it.
    let calls = double.calls();
    let count = |path: &str, pred: &dyn Fn(&str) -> bool| {
        calls
            .iter()
            .filter(|c| {
                c.method == "GET"
                    && c.uri
                        .split_once('?')
                        .is_some_and(|(p, q)| p == path && pred(q))
            })
            .count()
    };
    let watch = |q: &str| q.contains("watch=true");
    let running = |q: &str| q.contains("fieldSelector=status.phase%3DRunning");
    assert_eq!(
        count("/api/v1/pods", &|q| !watch(q) && !running(q)),
        1,
        "{calls:#?}"
    );
    assert_eq!(
        count("/api/v1/pods", &|q| watch(q) && !running(q)),
        1,
        "{calls:#?}"
    );
    assert_eq!(
        count("/api/v1/pods", &|q| !watch(q) && running(q)),
        1,
        "{calls:#?}"
    );
    assert_eq!(
        count("/api/v1/pods", &|q| watch(q) && running(q)),
        1,
        "{calls:#?}"
    );
    assert_eq!(count("/api/v1/nodes", &|q| watch(q)), 1, "{calls:#?}");
    drop(augur);
}

#[tokio::test]
async fn unknown_override_resource_is_a_startup_error_in_cluster_mode() {
    let double = ApiServerDouble::start(routes(fake_cluster()));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = double.write_kubeconfig(dir.path(), "augur-token");
    let config = dir.path().join("rules.yaml");
    std::fs::write(
        &config,
        "rules:\n- seriesQuery: 'gizmo_load'\n  resources:\n    overrides:\n      gizmo: {group: example.com, resource: gizmo}\n  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args([
            "serve",
            "--bind-address=127.0.0.1",
            "--prometheus-url=http://127.0.0.1:9",
        ])
        .arg(format!("--secure-port={}", crate::support::free_port()))
        .arg(format!("--config={}", config.display()))
        .arg(format!("--lister-kubeconfig={}", kubeconfig.display()))
        .arg("--authentication-mode=off")
        .arg(format!("--cert-dir={}", dir.path().join("certs").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("augur did not exit on a bad override");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(64), "{stderr}");
    let file = config.display().to_string();
    assert!(
        stderr.contains(&format!(
            "{file}:5: rules[0].resources.overrides.gizmo.resource: unable to normalize group-resource \"gizmo.example.com\": not a known resource"
        )),
        "{stderr}"
    );
}

#[tokio::test]
async fn standalone_metrics_api_takes_pods_and_nodes_from_the_query_results() {
    let prometheus = TestPrometheus::start(&openmetrics());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rules.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let augur = Augur::start(&prometheus.url(), &config, &["--cluster=off"]).await;
    // No Running filter and no labels: pending-1 is listed, web-3 still lacks memory.
    let (status, mut body) = augur
        .get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods")
        .await;
    assert_eq!(status, 200, "{body}");
    normalise(&mut body);
    let listed: Vec<(&str, Value)> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["metadata"]["name"].as_str().unwrap(),
                i["containers"].clone(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            (
                "db-0",
                json!([{"name": "db", "usage": {"cpu": "500m", "memory": "1Gi"}}])
            ),
            (
                "pending-1",
                json!([{"name": "app", "usage": {"cpu": "1", "memory": "1Mi"}}])
            ),
            (
                "web-1",
                json!([{"name": "app", "usage": {"cpu": "125m", "memory": "300Mi"}}, {"name": "sidecar", "usage": {"cpu": "62m", "memory": "0"}}])
            ),
            (
                "web-2",
                json!([{"name": "app", "usage": {"cpu": "250m", "memory": "200Mi"}}])
            ),
        ]
    );
    assert_eq!(
        body["items"][0]["metadata"],
        json!({"name": "db-0", "namespace": "default", "creationTimestamp": "T"})
    );
    let (status, body) = augur.get("/apis/metrics.k8s.io/v1beta1/pods").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"].as_array().map(Vec::len), Some(5), "{body}");
    let (status, body) = augur.get("/apis/metrics.k8s.io/v1beta1/nodes/node-a").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["usage"], json!({"cpu": "1500m", "memory": "4Gi"}));
    let (status, body) = augur
        .get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dweb")
        .await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (400, Some("BadRequest")),
        "{body}"
    );
    let top = kubectl(
        &augur.kubeconfig(),
        &dir.path().join("cache"),
        &["top", "pods", "-n", "default"],
    );
    assert_eq!(cells(&top)[2], vec!["pending-1", "1000m", "1Mi"], "{top}");
}
