//! The metrics APIs end to end: the real `augur` binary over HTTPS in front of a real
//! Prometheus and a real VictoriaMetrics loaded with the fixture, checked with exact JSON
//! through reqwest and the real `kubectl get --raw`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use crate::support::{
    Augur, TestPrometheus, TestVictoria, fixture_series, normalise_times, resource_names, rules,
};

/// Replaces every `timestamp` with "T" after checking it is RFC 3339 within a minute of now.
fn normalise_timestamps(value: &mut Value) {
    normalise_times(value, &["timestamp"], Duration::from_secs(60));
}

fn pod(name: &str, value: &str, version: &str, metric: &str) -> Value {
    let object = json!({"kind": "Pod", "namespace": "default", "name": name, "apiVersion": "/v1"});
    if version == "v1beta1" {
        json!({"describedObject": object, "metricName": metric, "timestamp": "T", "value": value, "selector": null})
    } else {
        json!({"describedObject": object, "metric": {"name": metric, "selector": null}, "timestamp": "T", "value": value})
    }
}

fn list(version: &str, items: Vec<Value>) -> Value {
    json!({"kind": "MetricValueList", "apiVersion": format!("custom.metrics.k8s.io/{version}"), "metadata": {}, "items": items})
}

/// Which engine serves the fixture: the assertions differ only where the engines do.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Engine {
    Prometheus,
    Victoria,
}

/// The API checks both engines must pass.
async fn api_suite(augur: &Augur, engine: Engine) {
    // Discovery: exact resource list.
    let (status, body) = augur.get("/apis/custom.metrics.k8s.io/v1beta1").await;
    assert_eq!(status, 200);
    let names = resource_names(&body);
    let expected: Vec<(String, bool)> = [
        ("ingresses.networking.k8s.io/ingress_requests_total", true),
        ("namespaces/http_requests_per_second", false),
        ("namespaces/http_requests_total", false),
        ("namespaces/ingress_requests_total", false),
        ("namespaces/namespace_budget", false),
        ("nodes/node_load1", false),
        ("pods/http_requests_per_second", true),
        ("pods/http_requests_total", true),
        ("services/http_requests_total", true),
    ]
    .iter()
    .map(|(n, b)| ((*n).to_owned(), *b))
    .collect();
    assert_eq!(names, expected);
    assert_eq!(body["kind"], "APIResourceList");
    assert_eq!(body["groupVersion"], "custom.metrics.k8s.io/v1beta1");
    assert_eq!(
        body["resources"][0],
        json!({"name": "ingresses.networking.k8s.io/ingress_requests_total", "singularName": "", "namespaced": true, "kind": "MetricValueList", "verbs": ["get"]})
    );

    // Pods, every object, both versions, exact JSON.
    for version in ["v1beta1", "v1beta2"] {
        let (status, mut body) =
            augur.get(&format!("/apis/custom.metrics.k8s.io/{version}/namespaces/default/pods/*/http_requests_total")).await;
        assert_eq!(status, 200, "{body}");
        normalise_timestamps(&mut body);
        let metric = "http_requests_total";
        assert_eq!(
            body,
            list(
                version,
                vec![
                    pod("web-1", "2200", version, metric),
                    pod("web-2", "3400", version, metric),
                    pod("web-3", "5800", version, metric)
                ]
            )
        );
    }

    // One named pod, rate, value within a milli of 2.
    let (status, body) = augur.get("/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/web-2/http_requests_per_second").await;
    assert_eq!(status, 200, "{body}");
    let value = body["items"][0]["value"].as_str().unwrap();
    assert!(["2", "1999m"].contains(&value), "rate of web-2 is {value}");

    // Metric label selector → matcher (the fixture's series carry service="web").
    let (status, mut body) = augur
        .get("/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/pods/web-1/http_requests_total?metricLabelSelector=service%3Dweb")
        .await;
    assert_eq!(status, 200, "{body}");
    normalise_timestamps(&mut body);
    assert_eq!(
        body["items"][0]["selector"],
        json!({"matchLabels": {"service": "web"}})
    );
    assert_eq!(body["items"][0]["value"], "2200");

    // Group-qualified resource, namespace object, root-scoped nodes.
    let (status, mut body) =
        augur.get("/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/ingresses.networking.k8s.io/web/ingress_requests_total").await;
    assert_eq!(status, 200, "{body}");
    normalise_timestamps(&mut body);
    assert_eq!(
        body["items"][0]["describedObject"],
        json!({"kind": "Ingress", "namespace": "default", "name": "web", "apiVersion": "networking.k8s.io/v1"})
    );
    assert_eq!(body["items"][0]["value"], "12k");
    let (status, mut body) = augur
        .get("/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/metrics/namespace_budget")
        .await;
    assert_eq!(status, 200, "{body}");
    normalise_timestamps(&mut body);
    assert_eq!(
        body["items"],
        json!([{"describedObject": {"kind": "Namespace", "name": "default", "apiVersion": "/v1"}, "metricName": "namespace_budget", "timestamp": "T", "value": "3", "selector": null}])
    );
    let (status, mut body) = augur
        .get("/apis/custom.metrics.k8s.io/v1beta2/nodes/*/node_load1")
        .await;
    assert_eq!(status, 200, "{body}");
    normalise_timestamps(&mut body);
    let nodes: Vec<(&str, &str)> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["describedObject"]["name"].as_str().unwrap(),
                i["value"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(nodes, vec![("node-a", "500m"), ("node-b", "1500m")]);

    // External: namespaced with a selector, and cluster-wide scalar.
    let (status, mut body) =
        augur.get("/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue_messages_ready?labelSelector=queue%3Dorders").await;
    assert_eq!(status, 200, "{body}");
    normalise_timestamps(&mut body);
    assert_eq!(
        body,
        json!({"kind": "ExternalMetricValueList", "apiVersion": "external.metrics.k8s.io/v1beta1", "metadata": {}, "items": [
            {"metricName": "queue_messages_ready", "metricLabels": {"queue": "orders"}, "timestamp": "T", "value": "50"}
        ]})
    );
    let (status, mut body) = augur.get("/apis/external.metrics.k8s.io/v1beta1/namespaces/elsewhere/queue_messages_ready_cluster").await;
    assert_eq!(status, 200, "{body}");
    normalise_timestamps(&mut body);
    // VictoriaMetrics answers scalar() with a label-less one-sample vector, not a scalar.
    let labels = if engine == Engine::Victoria {
        json!({})
    } else {
        Value::Null
    };
    assert_eq!(
        body["items"],
        json!([{"metricName": "queue_messages_ready_cluster", "metricLabels": labels, "timestamp": "T", "value": "57"}])
    );

    // Errors: Status bodies that say why.
    let (status, body) = augur
        .get("/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/pods/web-1/http_request_total")
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "the server could not find the metric http_request_total for pods: no rule discovered it; closest metrics for pods: http_requests_total",
            "reason": "NotFound", "code": 404})
    );
    let (status, body) = augur
        .get(
            "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/pods/web-9/http_requests_total",
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        body["message"],
        r#"the server could not find the metric http_requests_total for pods web-9 in namespace default: the query returned nothing (query: sum(http_requests_total{namespace="default",pod="web-9"}) by (pod))"#
    );
    let (status, body) = augur.get("/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/pods/*/http_requests_total?labelSelector=app%3Dweb").await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (400, Some("BadRequest")),
        "{body}"
    );
    let (status, body) = augur.get("/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/pods/*/http_requests_total?metricLabelSelector=a%20in").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("metricLabelSelector: unable to parse label selector"),
        "{body}"
    );
    let (status, body) = augur.get("/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/pods/*/http_requests_total?metricLabelSelector=a%3E1").await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = augur
        .get("/apis/custom.metrics.k8s.io/v1/namespaces/default/pods/*/x")
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn api_over_prometheus_with_kubectl_and_outage() {
    let fixture = fixture_series(SystemTime::now());
    let mut prometheus = TestPrometheus::start(&fixture.openmetrics());
    let augur = Augur::start(&prometheus.url(), &rules(), &[]).await;
    api_suite(&augur, Engine::Prometheus).await;

    // The same answers through the real kubectl.
    let mut body = augur.kubectl_raw(
        "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/pods/*/http_requests_total",
    );
    normalise_timestamps(&mut body);
    let metric = "http_requests_total";
    assert_eq!(
        body,
        list(
            "v1beta1",
            vec![
                pod("web-1", "2200", "v1beta1", metric),
                pod("web-2", "3400", "v1beta1", metric),
                pod("web-3", "5800", "v1beta1", metric)
            ]
        )
    );
    let body = augur.kubectl_raw(
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue_messages_ready",
    );
    let values: Vec<(&str, &str)> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["metricLabels"]["queue"].as_str().unwrap(),
                i["value"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(values, vec![("orders", "50"), ("payments", "7")]);
    let apis = augur.kubectl_raw("/apis");
    assert_eq!(apis["groups"][0]["name"], "custom.metrics.k8s.io");
    assert_eq!(apis["groups"][1]["name"], "external.metrics.k8s.io");
    // kubectl decodes augur's Status bodies: it prints their reason and message.
    let output = Command::new("/usr/bin/kubectl")
        .arg(format!("--kubeconfig={}", augur.kubeconfig().display()))
        .args([
            "get",
            "--raw",
            "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/pods/*/no_such_metric",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        "Error from server (NotFound): the server could not find the metric no_such_metric for pods: no rule discovered it and no metric is discovered for pods"
    );

    // Prometheus killed: a clean 503 within the 2 s timeout, then recovery.
    prometheus.kill();
    let started = Instant::now();
    let (status, body) = augur
        .get(
            "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/pods/web-1/http_requests_total",
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["reason"], "ServiceUnavailable");
    assert!(
        body["message"].as_str().unwrap().contains("unreachable"),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    // Discovery keeps serving from the last good relist.
    let (status, _) = augur.get("/apis/custom.metrics.k8s.io/v1beta1").await;
    assert_eq!(status, 200);
    prometheus.restart();
    let (status, body) = augur
        .get(
            "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/pods/web-1/http_requests_total",
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Own metrics are exposed.
    let metrics = augur
        .client()
        .get(augur.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .contains("augur_prometheus_errors_total{endpoint=\"query\",kind=\"unreachable\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn becomes_ready_soon_after_prometheus_appears() {
    let fixture = fixture_series(SystemTime::now());
    let mut prometheus = TestPrometheus::start(&fixture.openmetrics());
    prometheus.kill();
    // Relisting every minute: without retries augur would stay unready for up to a minute
    // after Prometheus appears.
    let spawned = Instant::now();
    let augur = Augur::spawn(
        &prometheus.url(),
        &rules(),
        &["--metrics-relist-interval=1m"],
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, body) = augur.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    prometheus.restart();
    let appeared = Instant::now();
    // Retries start at 1 s and double, so the wait after Prometheus appears is at most about
    // the time already waited (a few seconds), far below the minute.
    let waited = appeared - spawned;
    let augur = augur
        .ready(appeared + waited + Duration::from_secs(3))
        .await;
    let took = appeared.elapsed();
    assert!(
        took < waited + Duration::from_secs(3) && took < Duration::from_secs(30),
        "ready {took:?} after Prometheus appeared ({waited:?} after augur started)"
    );
    assert!(augur.log().contains("retrying soon"), "{}", augur.log());
}

#[tokio::test]
async fn api_over_victoria_metrics() {
    let fixture = fixture_series(SystemTime::now());
    let victoria = TestVictoria::start(&fixture.prometheus_text());
    let augur = Augur::start(&victoria.url(), &rules(), &[]).await;
    api_suite(&augur, Engine::Victoria).await;
}

#[tokio::test]
async fn config_reload_applies_good_files_and_rejects_bad_ones() {
    let fixture = fixture_series(SystemTime::now());
    let prometheus = TestPrometheus::start(&fixture.openmetrics());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rules.yaml");
    std::fs::copy(rules(), &config).unwrap();
    let augur = Augur::start(&prometheus.url(), &config, &[]).await;
    let path = "/apis/custom.metrics.k8s.io/v1beta1/nodes/node-a/node_load_renamed";
    assert_eq!(augur.get(path).await.0, 404);

    // A bad file is rejected; the old config keeps serving.
    std::fs::write(&config, "rules:\n- seriesQuery: x\n  metricQuery: y\n").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, _) = augur
        .get("/apis/custom.metrics.k8s.io/v1beta1/nodes/node-a/node_load1")
        .await;
    assert_eq!(status, 200);
    assert!(
        augur.log().contains("config reload rejected"),
        "{}",
        augur.log()
    );

    // A good file is applied and relisted at once.
    let renamed = std::fs::read_to_string(rules()).unwrap().replace(
        "- seriesQuery: 'node_load1'\n  resources: {template: \"<<.Resource>>\"}\n",
        "- seriesQuery: 'node_load1'\n  resources: {template: \"<<.Resource>>\"}\n  name: {as: node_load_renamed}\n  forecast: {history: 1d}\n",
    );
    let estimate = "forecast series may hold up to";
    assert!(!augur.log().contains(estimate), "{}", augur.log());
    std::fs::write(&config, renamed).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = augur.get(path).await;
        if status == 200 {
            assert_eq!(body["items"][0]["value"], "500m");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reloaded metric never appeared: {body}\n{}",
            augur.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The reload added a forecast rule: its memory estimate is logged as at startup
    // (guarded-linear, 1 day at 1 minute: 4 × 1,504 + 12 × 1,500 + 2,688 + 43,008 = 69,712
    // bytes).
    assert!(
        augur.log().contains(
            "forecast series may hold up to 233 MiB: --forecast-max-series 3500 × 69 KiB per series"
        ),
        "{}",
        augur.log()
    );
}
