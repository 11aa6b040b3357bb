//! Label-selector benchmark: `GET …/namespaces/default/pods/*/http_requests_per_second?
//! labelSelector=app=web` over 5,000 pods, answered from the watch cache (the real
//! `ObjectCache`, synced once from an in-process Kubernetes API over HTTP) with an in-memory
//! backend that returns a sample per pod at once, so the latency is augur's own: routing,
//! label matching over the cache, name matcher, PromQL rendering, filtering 5,000 samples back
//! to the selection and JSON. Also reports the rendered query's length.
//!
//! Run: `cargo bench --bench selector`. Under `cargo test` it runs a short smoke case.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use augur::api::router;
use augur::cluster::ObjectCache;
use augur::prometheus::fake::{FakeBackend, labels, sample};
use augur::prometheus::{Backend, QueryResult};
use augur::testing::{PODS_RULES, PODS_SERIES, app_with_rules, percentile};
use axum::body::Body;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// One Deployment's pods (100 of the 5,000), as an HPA selects them.
const ONE_DEPLOYMENT: &str = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*/http_requests_per_second?labelSelector=app%3Dsvc-07";
/// Every pod of the namespace (5,000): the longest name list a selector can produce.
const EVERY_POD: &str = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*/http_requests_per_second?labelSelector=tier%3Dweb";

/// Deployments in the namespace; each has `pods / DEPLOYMENTS` pods.
const DEPLOYMENTS: usize = 50;

/// Pod `i`: Deployment `svc-NN` (i % DEPLOYMENTS), two ReplicaSets each, as a rollout leaves them.
fn pod(i: usize) -> (String, String) {
    let deployment = i % DEPLOYMENTS;
    let hash = 0x7d9f8c6b0u64 + (i / DEPLOYMENTS % 2) as u64 * 0x11;
    (
        format!("svc-{deployment:02}-{hash:x}-{i:05x}"),
        format!("svc-{deployment:02}"),
    )
}

/// A Kubernetes API that lists `pods` pods in `default` (labels app=svc-NN, tier=web) as
/// metadata and then keeps the watch open, over HTTP.
async fn fake_kube(pods: usize) -> kube::Client {
    let items: Vec<Value> = (0..pods)
        .map(pod)
        .map(|(name, app)| json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"name": name, "namespace": "default", "resourceVersion": "1", "labels": {"app": app, "tier": "web", "pod-template-hash": "7d9f8c6b0"}}}))
        .collect();
    let list = Arc::new(
        json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": "1"}, "items": items}),
    );
    let app = axum::Router::new().route(
        "/api/v1/pods",
        axum::routing::get(
            move |axum::extract::Query(q): axum::extract::Query<
                std::collections::HashMap<String, String>,
            >| {
                let list = list.clone();
                async move {
                    if q.contains_key("watch") {
                        let never = futures::stream::pending::<
                            Result<bytes::Bytes, std::convert::Infallible>,
                        >();
                        return axum::response::Response::new(Body::from_stream(never));
                    }
                    axum::response::IntoResponse::into_response(axum::Json((*list).clone()))
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap()
}

struct Run {
    first: Duration,
    latencies: Vec<Duration>,
    items: usize,
    body_kib: usize,
    query: String,
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (pods, requests) = if full { (5000, 2000) } else { (500, 20) };
    augur::tls::install_crypto_provider();
    // The backend answers with a sample for exactly the pods the query names, computed
    // once per scenario, as Prometheus would for the exact name list.
    let one: Vec<_> = (0..pods)
        .filter(|i| i % DEPLOYMENTS == 7)
        .map(|i| sample(&[("pod", &pod(i).0)], 1.5))
        .collect();
    let every: Vec<_> = (0..pods)
        .map(|i| sample(&[("pod", &pod(i).0)], i as f64 + 0.5))
        .collect();
    let (one, every) = (QueryResult::Vector(one), QueryResult::Vector(every));
    let series = vec![labels(&[
        ("__name__", "http_requests_total"),
        ("namespace", "default"),
        ("pod", "web-1"),
    ])];
    let fake = Arc::new(
        FakeBackend::new()
            .with_series(PODS_SERIES, series)
            .with_query_fn(move |promql, _| {
                Ok(if promql.contains("svc-07") && !promql.contains("svc-08") {
                    one.clone()
                } else {
                    every.clone()
                })
            }),
    );
    let backend: Arc<dyn Backend> = fake.clone();
    let state = app_with_rules(PODS_RULES, backend).await;

    let cache = Arc::new(ObjectCache::new(
        fake_kube(pods).await,
        Duration::from_secs(30),
    ));
    let app = router(state.with_objects(cache));
    let call = |path: &'static str| {
        let app = app.clone();
        async move {
            let request = http::Request::get(path).body(Body::empty()).unwrap();
            let response = app.oneshot(request).await.unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, body)
        }
    };
    let mut runs = Vec::new();
    for path in [ONE_DEPLOYMENT, EVERY_POD] {
        // The first request starts the watch and waits for its LIST.
        let started = Instant::now();
        let (status, body) = call(path).await;
        let first = started.elapsed();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let value: Value = serde_json::from_slice(&body).unwrap();
        let items = value["items"].as_array().unwrap().len();
        let query = fake.queries().pop().unwrap();
        assert!(query.len() < 16 * 1024, "query of {} bytes", query.len());
        let mut latencies = Vec::with_capacity(requests);
        for _ in 0..requests {
            let started = Instant::now();
            let (status, _) = call(path).await;
            latencies.push(started.elapsed());
            assert_eq!(status, 200);
        }
        latencies.sort();
        fake.clear_calls();
        runs.push(Run {
            first,
            latencies,
            items,
            body_kib: body.len() / 1024,
            query,
        });
    }
    assert_eq!(runs[0].items, pods / DEPLOYMENTS, "one Deployment's pods");
    assert_eq!(runs[1].items, pods, "every pod");
    for (run, what) in runs.iter().zip([
        "one Deployment (labelSelector=app=svc-07)",
        "every pod (labelSelector=tier=web)",
    ]) {
        let l = &run.latencies;
        println!(
            "{pods} pods in the cache, {what}: {} items, {} KiB; {requests} requests: p50 {:?}, p90 {:?}, p99 {:?}, max {:?} (first, with LIST+sync: {:?}); query {} bytes: {}",
            run.items,
            run.body_kib,
            percentile(l, 0.5),
            percentile(l, 0.9),
            percentile(l, 0.99),
            l[l.len() - 1],
            run.first,
            run.query.len(),
            if run.query.len() > 160 {
                format!("{}…", &run.query[..160])
            } else {
                run.query.clone()
            },
        );
    }
}
