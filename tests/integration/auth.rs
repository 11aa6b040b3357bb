//! Delegated authentication and authorization over real TLS with certificates made here:
//! augur's router behind its auth layer, in-process, against the kube-apiserver test double
//! answering TokenReview, SubjectAccessReview and list/watch of the
//! extension-apiserver-authentication ConfigMap.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{Value, json};

use augur::api::router_behind;
use augur::auth::{AuthArgs, Mode};
use augur::telemetry::Metrics;
use augur::testing::{
    Identity, PODS_RULES, TestCa, TlsServer, app_with_rules, pods_backend, serve_tls_with,
};

use crate::support::{ApiServerDouble, Augur, TestPrometheus, fixture_series, rules};

const METRIC: &str =
    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/*/http_requests_per_second";
const TOKEN_REVIEWS: &str = "/apis/authentication.k8s.io/v1/tokenreviews";
const ACCESS_REVIEWS: &str = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
const CONFIGMAPS: &str = "/api/v1/namespaces/kube-system/configmaps";
const FRONT_PROXY_CN: &str = "front-proxy-client";

/// The double's view of the cluster: the ConfigMap (with a resource version bumped on each
/// change, announced to open watches) and every SubjectAccessReview spec received.
#[derive(Clone)]
struct Cluster {
    configmap: Arc<Mutex<(u64, BTreeMap<String, String>)>>,
    changes: tokio::sync::broadcast::Sender<()>,
    access_reviews: Arc<Mutex<Vec<Value>>>,
}

impl Cluster {
    fn new(data: BTreeMap<String, String>) -> Self {
        Self {
            configmap: Arc::new(Mutex::new((1, data))),
            changes: tokio::sync::broadcast::channel(16).0,
            access_reviews: Arc::default(),
        }
    }

    fn configmap_json(&self) -> (u64, Value) {
        let (version, data) = self.configmap.lock().unwrap().clone();
        let object = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "extension-apiserver-authentication",
                "namespace": "kube-system",
                "resourceVersion": version.to_string(),
            },
            "data": data,
        });
        (version, object)
    }

    fn update(&self, key: &str, value: &str) {
        {
            let mut configmap = self.configmap.lock().unwrap();
            configmap.0 += 1;
            configmap.1.insert(key.to_owned(), value.to_owned());
        }
        let _ = self.changes.send(());
    }

    fn access_reviews(&self) -> Vec<Value> {
        self.access_reviews.lock().unwrap().clone()
    }
}

/// kube-apiserver's extension-apiserver-authentication data for these CAs.
fn configmap_data(client_ca: &TestCa, front_proxy_ca: &TestCa) -> BTreeMap<String, String> {
    [
        ("client-ca-file", client_ca.pem.as_str()),
        ("requestheader-client-ca-file", front_proxy_ca.pem.as_str()),
        ("requestheader-allowed-names", r#"["front-proxy-client"]"#),
        ("requestheader-username-headers", r#"["X-Remote-User"]"#),
        ("requestheader-group-headers", r#"["X-Remote-Group"]"#),
        (
            "requestheader-extra-headers-prefix",
            r#"["X-Remote-Extra-"]"#,
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

async fn token_review(Json(review): Json<Value>) -> Json<Value> {
    let status = if review["spec"]["token"] == "alice-token" {
        json!({"authenticated": true, "user": {"username": "alice", "uid": "a-1", "groups": ["dev"]}})
    } else {
        json!({"authenticated": false, "error": "token not found"})
    };
    Json(json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "metadata": {},
        "spec": review["spec"],
        "status": status,
    }))
}
/// Policy: alice and members of `metrics-readers` may do anything; nobody else. Reviews
/// for user `breaker` fail with a 500.
async fn access_review(State(cluster): State<Cluster>, Json(review): Json<Value>) -> Response {
    let spec = review["spec"].clone();
    cluster.access_reviews.lock().unwrap().push(spec.clone());
    if spec["user"] == "breaker" {
        return (
            http::StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "webhook authorizer unavailable",
                "reason": "InternalError",
                "code": 500,
            })),
        )
            .into_response();
    }
    let allowed = spec["user"] == "alice"
        || spec["groups"]
            .as_array()
            .is_some_and(|g| g.iter().any(|g| g == "metrics-readers"));
    Json(json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "metadata": {},
        "spec": spec,
        "status": {"allowed": allowed},
    }))
    .into_response()
}

fn watch_event(object: Value) -> Result<Bytes, Infallible> {
    Ok(Bytes::from(format!(
        "{}\n",
        json!({"type": "MODIFIED", "object": object})
    )))
}

/// List, or watch (one event per change, and the current object when the watch starts
/// behind it; an idle watch ends after a second so shutdown never waits long).
async fn configmaps(
    State(cluster): State<Cluster>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    assert_eq!(
        query.get("fieldSelector").map(String::as_str),
        Some("metadata.name=extension-apiserver-authentication")
    );
    let (version, object) = cluster.configmap_json();
    if query.get("watch").map(String::as_str) != Some("true") {
        return Json(json!({
            "apiVersion": "v1",
            "kind": "ConfigMapList",
            "metadata": {"resourceVersion": version.to_string()},
            "items": [object],
        }))
        .into_response();
    }
    let since: u64 = query
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let changes = cluster.changes.subscribe();
    let first = (version > since).then_some(object);
    let events = futures::stream::unfold(
        (changes, first, cluster),
        |(mut changes, first, cluster)| async move {
            if let Some(object) = first {
                return Some((watch_event(object), (changes, None, cluster)));
            }
            match tokio::time::timeout(Duration::from_secs(1), changes.recv()).await {
                Ok(Ok(())) => {
                    let (_, object) = cluster.configmap_json();
                    Some((watch_event(object), (changes, None, cluster)))
                }
                _ => None,
            }
        },
    );
    Body::from_stream(events).into_response()
}

async fn configmap(State(cluster): State<Cluster>) -> Json<Value> {
    Json(cluster.configmap_json().1)
}

fn double_routes(cluster: Cluster) -> Router {
    Router::new()
        .route(TOKEN_REVIEWS, post(token_review))
        .route(ACCESS_REVIEWS, post(access_review))
        .route(CONFIGMAPS, get(configmaps))
        .route(
            "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication",
            get(configmap),
        )
        .with_state(cluster)
}

/// augur's router (one custom metric over a fake backend) behind delegated auth, served
/// over TLS in-process, with the double as kube-apiserver.
struct Fixture {
    server: TlsServer,
    cluster: Cluster,
    double: ApiServerDouble,
    dir: tempfile::TempDir,
    metrics: Arc<Metrics>,
}

impl Fixture {
    async fn start(data: BTreeMap<String, String>) -> Self {
        Self::start_with(data, |_, _| {}).await
    }

    /// Like [`Fixture::start`], with `customize` changing the flags (given a scratch dir).
    async fn start_with(
        data: BTreeMap<String, String>,
        customize: impl FnOnce(&mut AuthArgs, &std::path::Path),
    ) -> Self {
        let cluster = Cluster::new(data);
        let double = ApiServerDouble::start(double_routes(cluster.clone()));
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = double.write_kubeconfig(dir.path(), "augur-sa-token");
        let mut args = AuthArgs {
            authentication_mode: Mode::Delegated,
            authentication_kubeconfig: Some(kubeconfig.clone()),
            authorization_kubeconfig: Some(kubeconfig),
            authorization_webhook_cache_authorized_ttl: Duration::from_secs(300),
            authorization_webhook_cache_unauthorized_ttl: Duration::from_secs(300),
            authentication_token_webhook_cache_ttl: Duration::from_secs(300),
            ..AuthArgs::default()
        };
        customize(&mut args, dir.path());
        let auth = augur::auth::setup(&args, None)
            .await
            .unwrap_or_else(|e| panic!("setup: {e}"))
            .expect("delegated mode");

        let state = app_with_rules(PODS_RULES, Arc::new(pods_backend("ns", 2))).await;
        state.health.set_ready();
        let metrics = state.metrics.clone();
        let app = router_behind(state, |routes| auth.protect(routes));
        let server = serve_tls_with(app, |tls| auth.tls(tls).unwrap()).await;
        Self {
            server,
            cluster,
            double,
            dir,
            metrics,
        }
    }

    /// A client trusting augur's certificate, presenting `identity` when given.
    fn client(&self, identity: Option<&Identity>) -> reqwest::Client {
        self.server
            .client(identity)
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
    }

    /// GET `path` with `headers` → (status, JSON body).
    async fn get(
        &self,
        client: &reqwest::Client,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = client.get(self.server.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn scratch(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The lines of augur's metrics starting with `prefix`, sorted.
    fn metric_lines(&self, prefix: &str) -> Vec<String> {
        let mut lines: Vec<String> = self
            .metrics
            .encode()
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    }

    fn token_reviews(&self) -> usize {
        self.double.count("POST", TOKEN_REVIEWS, "")
    }
}

/// The resource attributes kube-apiserver sends for [`METRIC`].
fn metric_attributes() -> Value {
    json!({
        "group": "custom.metrics.k8s.io",
        "name": "*",
        "namespace": "ns",
        "resource": "pods",
        "subresource": "http_requests_per_second",
        "verb": "get",
        "version": "v1beta2",
    })
}

fn unauthorized(message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Unauthorized",
        "code": 401,
    })
}

const IMPERSONATION: [(&str, &str); 3] = [
    ("X-Remote-User", "jane"),
    ("X-Remote-Group", "metrics-readers"),
    ("X-Remote-Extra-Scopes", "view"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn front_proxy_headers_are_trusted_only_from_the_front_proxy_certificate() {
    let client_ca = TestCa::new("client-ca");
    let front_proxy_ca = TestCa::new("front-proxy-ca");
    let other_ca = TestCa::new("other-ca");
    let fixture = Fixture::start(configmap_data(&client_ca, &front_proxy_ca)).await;

    // Through the front proxy: served as jane, and the SubjectAccessReview names her.
    let proxy = fixture.client(Some(&front_proxy_ca.client(FRONT_PROXY_CN, &[])));
    let (status, body) = fixture.get(&proxy, METRIC, &IMPERSONATION).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"].as_array().map(Vec::len), Some(2), "{body}");
    assert_eq!(
        fixture.cluster.access_reviews(),
        [json!({
            "user": "jane",
            "groups": ["metrics-readers", "system:authenticated"],
            "extra": {"scopes": ["view"]},
            "resourceAttributes": metric_attributes(),
        })]
    );

    // The same headers without a client certificate: anonymous, denied by the review.
    let plain = fixture.client(None);
    let (status, body) = fixture.get(&plain, METRIC, &IMPERSONATION).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body,
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "pods.custom.metrics.k8s.io \"*\" is forbidden: User \"system:anonymous\" cannot get resource \"pods/http_requests_per_second\" in API group \"custom.metrics.k8s.io\" in the namespace \"ns\"",
            "reason": "Forbidden",
            "details": {"name": "*", "group": "custom.metrics.k8s.io", "kind": "pods"},
            "code": 403,
        })
    );
    let reviews = fixture.cluster.access_reviews();
    assert_eq!(reviews.len(), 2);
    assert_eq!(
        reviews[1],
        json!({
            "user": "system:anonymous",
            "groups": ["system:unauthenticated"],
            "resourceAttributes": metric_attributes(),
        })
    );

    // A certificate from a CA nobody trusts, with the front proxy's CN: 401, never reviewed.
    let stranger = fixture.client(Some(&other_ca.client(FRONT_PROXY_CN, &[])));
    let (status, body) = fixture.get(&stranger, METRIC, &IMPERSONATION).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body,
        unauthorized(
            "Unauthorized: client certificate CN=\"front-proxy-client\" is not signed by the front-proxy CA (configmap kube-system/extension-apiserver-authentication key requestheader-client-ca-file): invalid peer certificate: UnknownIssuer; client certificate CN=\"front-proxy-client\" is not signed by the client CA (configmap kube-system/extension-apiserver-authentication key client-ca-file): invalid peer certificate: UnknownIssuer"
        )
    );

    // The front-proxy CA, but a CN outside requestheader-allowed-names: 401.
    let intruder = fixture.client(Some(&front_proxy_ca.client("intruder", &[])));
    let (status, body) = fixture.get(&intruder, METRIC, &IMPERSONATION).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body["message"],
        "Unauthorized: front-proxy client certificate CN=\"intruder\" is not in the allowed names [\"front-proxy-client\"]; client certificate CN=\"intruder\" is not signed by the client CA (configmap kube-system/extension-apiserver-authentication key client-ca-file): invalid peer certificate: UnknownIssuer"
    );

    // A client-CA user claiming to be someone else through the headers: still itself.
    let carol = fixture.client(Some(&client_ca.client("carol", &["auditors"])));
    let (status, _) = fixture.get(&carol, METRIC, &IMPERSONATION).await;
    assert_eq!(status, 403);
    assert_eq!(fixture.cluster.access_reviews().len(), 3);
    assert_eq!(
        fixture.cluster.access_reviews()[2]["user"],
        "carol",
        "headers ignored on a client-CA connection"
    );

    // system:masters through the front proxy bypasses the review.
    let (status, body) = fixture
        .get(
            &proxy,
            METRIC,
            &[
                ("X-Remote-User", "system:kube-aggregator"),
                ("X-Remote-Group", "system:masters"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        fixture.cluster.access_reviews().len(),
        3,
        "no review for system:masters"
    );

    // Every refusal is counted, by code and by reason.
    let route = "/apis/custom.metrics.k8s.io/{version}/{*path}";
    assert_eq!(
        fixture.metric_lines("augur_http_requests_total"),
        [200, 401, 403].map(|code| format!(
            "augur_http_requests_total{{route=\"{route}\",code=\"{code}\"}} 2"
        ))
    );
    assert_eq!(
        fixture.metric_lines("augur_auth_refusals_total"),
        [
            r#"augur_auth_refusals_total{reason="forbidden"} 2"#,
            r#"augur_auth_refusals_total{reason="front_proxy_certificate"} 2"#,
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ca_users_tokens_and_always_allowed_paths() {
    let client_ca = TestCa::new("client-ca");
    let front_proxy_ca = TestCa::new("front-proxy-ca");
    let fixture = Fixture::start(configmap_data(&client_ca, &front_proxy_ca)).await;

    // x509 user from the client CA: CN is the user, O the group.
    let reader = fixture.client(Some(&client_ca.client("carol", &["metrics-readers"])));
    let (status, body) = fixture.get(&reader, METRIC, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        fixture.cluster.access_reviews(),
        [json!({
            "user": "carol",
            "groups": ["metrics-readers", "system:authenticated"],
            "resourceAttributes": metric_attributes(),
        })]
    );

    // Bearer tokens: reviewed once, then answered from the cache within the TTL.
    let plain = fixture.client(None);
    for _ in 0..2 {
        let (status, body) = fixture
            .get(&plain, METRIC, &[("Authorization", "Bearer alice-token")])
            .await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(fixture.token_reviews(), 1);
    let reviews = fixture.cluster.access_reviews();
    assert_eq!(reviews.len(), 2, "the allow answer is cached too");
    assert_eq!(
        reviews[1],
        json!({
            "user": "alice",
            "uid": "a-1",
            "groups": ["dev", "system:authenticated"],
            "resourceAttributes": metric_attributes(),
        })
    );

    // A rejected token is a 401 (no anonymous fallback), and the rejection is cached.
    for _ in 0..2 {
        let (status, body) = fixture
            .get(&plain, METRIC, &[("Authorization", "Bearer stolen")])
            .await;
        assert_eq!(status, 401);
        assert_eq!(
            body,
            unauthorized("Unauthorized: invalid bearer token: token not found")
        );
    }
    assert_eq!(fixture.token_reviews(), 2);

    // Discovery is a non-resource request.
    let (status, body) = fixture
        .get(&plain, "/apis/custom.metrics.k8s.io/v1beta2", &[])
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        fixture.metric_lines("augur_auth_refusals_total"),
        [
            r#"augur_auth_refusals_total{reason="forbidden"} 1"#,
            r#"augur_auth_refusals_total{reason="invalid_token"} 2"#,
        ]
    );
    assert_eq!(
        body["message"],
        "forbidden: User \"system:anonymous\" cannot get path \"/apis/custom.metrics.k8s.io/v1beta2\""
    );
    assert_eq!(
        fixture.cluster.access_reviews()[2],
        json!({
            "user": "system:anonymous",
            "groups": ["system:unauthenticated"],
            "nonResourceAttributes": {"path": "/apis/custom.metrics.k8s.io/v1beta2", "verb": "get"},
        })
    );

    // Probes need nothing and cause no review.
    for path in ["/healthz", "/readyz", "/livez"] {
        let (status, body) = fixture.get(&plain, path, &[]).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    assert_eq!(fixture.cluster.access_reviews().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_front_proxy_ca_in_the_configmap_is_trusted_without_restart() {
    let client_ca = TestCa::new("client-ca");
    let old_ca = TestCa::new("front-proxy-ca-1");
    let new_ca = TestCa::new("front-proxy-ca-2");
    let fixture = Fixture::start(configmap_data(&client_ca, &old_ca)).await;
    let old_proxy = fixture.client(Some(&old_ca.client(FRONT_PROXY_CN, &[])));
    let new_proxy = fixture.client(Some(&new_ca.client(FRONT_PROXY_CN, &[])));

    let (status, _) = fixture.get(&new_proxy, METRIC, &IMPERSONATION).await;
    assert_eq!(status, 401, "not trusted yet");
    let (status, _) = fixture.get(&old_proxy, METRIC, &IMPERSONATION).await;
    assert_eq!(status, 200);

    fixture
        .cluster
        .update("requestheader-client-ca-file", &new_ca.pem);
    // The watch delivers the change; wait for it (bounded), then check both CAs.
    let mut status = 0;
    for _ in 0..200 {
        (status, _) = fixture.get(&new_proxy, METRIC, &IMPERSONATION).await;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200, "the new front-proxy CA was never trusted");
    let (status, _) = fixture.get(&old_proxy, METRIC, &IMPERSONATION).await;
    assert_eq!(status, 401, "the old front-proxy CA is no longer trusted");
    assert!(
        fixture.double.count("GET", CONFIGMAPS, "watch=true") >= 1,
        "{:?}",
        fixture.double.calls()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_replace_the_configmap_and_name_the_headers() {
    let client_ca = TestCa::new("client-ca");
    let configmap_ca = TestCa::new("front-proxy-ca-in-configmap");
    let flag_ca = TestCa::new("front-proxy-ca-in-flag");
    let fixture = Fixture::start_with(configmap_data(&client_ca, &configmap_ca), |args, dir| {
        let file = dir.join("front-proxy-ca.crt");
        std::fs::write(&file, &flag_ca.pem).unwrap();
        args.requestheader_client_ca_file = Some(file);
        args.requestheader_allowed_names = vec!["aggregator".to_owned()];
        args.requestheader_username_headers = vec!["X-Forwarded-User".to_owned()];
        args.requestheader_group_headers = vec!["X-Forwarded-Group".to_owned()];
        args.authentication_skip_lookup = true;
    })
    .await;
    let proxy = fixture.client(Some(&flag_ca.client("aggregator", &[])));
    let (status, body) = fixture
        .get(
            &proxy,
            METRIC,
            &[
                ("X-Forwarded-User", "jane"),
                ("X-Forwarded-Group", "metrics-readers"),
                ("X-Remote-User", "root"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        fixture.cluster.access_reviews(),
        [json!({
            "user": "jane",
            "groups": ["metrics-readers", "system:authenticated"],
            "resourceAttributes": metric_attributes(),
        })]
    );
    // Without the configured user header the front proxy names nobody: anonymous.
    let (status, _) = fixture
        .get(
            &proxy,
            METRIC,
            &[
                ("X-Remote-User", "root"),
                ("X-Remote-Group", "system:masters"),
            ],
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        fixture.cluster.access_reviews()[1]["user"],
        "system:anonymous"
    );
    // The ConfigMap's CA is not used, and the ConfigMap was never read.
    let old = fixture.client(Some(&configmap_ca.client(FRONT_PROXY_CN, &[])));
    let (status, body) = fixture.get(&old, METRIC, &IMPERSONATION).await;
    assert_eq!(status, 401);
    assert_eq!(
        body["message"],
        "Unauthorized: client certificate CN=\"front-proxy-client\" is not signed by the front-proxy CA (--requestheader-client-ca-file {}): invalid peer certificate: UnknownIssuer"
            .replace("{}", &fixture.scratch().join("front-proxy-ca.crt").display().to_string())
    );
    assert!(
        fixture
            .double
            .calls()
            .iter()
            .all(|c| !c.uri.starts_with(CONFIGMAPS)),
        "{:?}",
        fixture.double.calls()
    );
}

/// A kubeconfig for kubectl talking to `server` (TLS verification off, as the aggregator's
/// APIServices usually are) with `user` (a YAML mapping body).
fn kubectl_config(
    dir: &std::path::Path,
    name: &str,
    server: &str,
    user: &str,
) -> std::path::PathBuf {
    let path = dir.join(format!("kubeconfig-{name}"));
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: augur\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: augur\n  context: {{cluster: augur, user: u}}\ncurrent-context: augur\nusers:\n- name: u\n  user:\n{user}\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn kubectl_raw(kubeconfig: &std::path::Path, path: &str) -> (bool, String) {
    let output = std::process::Command::new("/usr/bin/kubectl")
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(["get", "--raw", path])
        .output()
        .unwrap();
    let text = if output.status.success() {
        output.stdout
    } else {
        output.stderr
    };
    (
        output.status.success(),
        String::from_utf8_lossy(&text).into_owned(),
    )
}

/// The real binary: a kubeconfig flag turns delegated auth on (auto mode); the real kubectl
/// is served as a client-CA user and as a token user, anonymous requests are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_in_cluster_mode_authenticates_kubectl() {
    let client_ca = TestCa::new("client-ca");
    let front_proxy_ca = TestCa::new("front-proxy-ca");
    let cluster = Cluster::new(configmap_data(&client_ca, &front_proxy_ca));
    let double = ApiServerDouble::start(double_routes(cluster.clone()));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = double.write_kubeconfig(dir.path(), "augur-sa-token");
    let series = fixture_series(std::time::SystemTime::now());
    let prometheus = TestPrometheus::start(&series.openmetrics());
    let rules = rules();
    let augur = Augur::start(
        &prometheus.url(),
        &rules,
        &[
            &format!("--authentication-kubeconfig={}", kubeconfig.display()),
            &format!("--authorization-kubeconfig={}", kubeconfig.display()),
        ],
    )
    .await;
    assert!(
        augur
            .log()
            .contains("delegated authentication and authorization on"),
        "{}",
        augur.log()
    );
    let path = "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/pods/*/http_requests_total";

    let (status, body) = augur.get(path).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["message"],
        "pods.custom.metrics.k8s.io \"*\" is forbidden: User \"system:anonymous\" cannot get resource \"pods/http_requests_total\" in API group \"custom.metrics.k8s.io\" in the namespace \"default\""
    );

    let carol = client_ca.client("carol", &["metrics-readers"]);
    std::fs::write(dir.path().join("carol.crt"), &carol.cert).unwrap();
    std::fs::write(dir.path().join("carol.key"), &carol.key).unwrap();
    let server = augur.url("");
    let as_carol = kubectl_config(
        dir.path(),
        "carol",
        &server,
        &format!(
            "    client-certificate: {}\n    client-key: {}",
            dir.path().join("carol.crt").display(),
            dir.path().join("carol.key").display()
        ),
    );
    let (ok, out) = kubectl_raw(&as_carol, path);
    assert!(ok, "{out}\n{}", augur.log());
    let body: Value = serde_json::from_str(&out).unwrap();
    let pods: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["describedObject"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(pods, ["web-1", "web-2", "web-3"]);
    let reviews = cluster.access_reviews();
    let last = reviews.last().unwrap();
    assert_eq!(last["user"], "carol");
    assert_eq!(
        last["groups"],
        json!(["metrics-readers", "system:authenticated"])
    );

    let as_alice = kubectl_config(dir.path(), "alice", &server, "    token: alice-token");
    let (ok, out) = kubectl_raw(&as_alice, path);
    assert!(ok, "{out}");
    assert_eq!(cluster.access_reviews().last().unwrap()["user"], "alice");
    let as_mallory = kubectl_config(dir.path(), "mallory", &server, "    token: stolen-token");
    let (ok, out) = kubectl_raw(&as_mallory, path);
    assert!(!ok);
    assert_eq!(
        out,
        "error: You must be logged in to the server (Unauthorized: invalid bearer token: token not found)\n"
    );

    // The 401 and the 403 are in augur's metrics, by code and by reason, and logged.
    let (ok, out) = kubectl_raw(&as_carol, "/metrics");
    assert!(ok, "{out}");
    let mut lines: Vec<&str> = out
        .lines()
        .filter(|l| {
            l.starts_with("augur_auth_refusals_total")
                || l.starts_with("augur_http_requests_total{route=\"/apis/custom")
        })
        .collect();
    lines.sort_unstable();
    let route = "/apis/custom.metrics.k8s.io/{version}/{*path}";
    assert_eq!(
        lines,
        [
            r#"augur_auth_refusals_total{reason="forbidden"} 1"#.to_owned(),
            r#"augur_auth_refusals_total{reason="invalid_token"} 1"#.to_owned(),
            format!(r#"augur_http_requests_total{{route="{route}",code="200"}} 2"#),
            format!(r#"augur_http_requests_total{{route="{route}",code="401"}} 1"#),
            format!(r#"augur_http_requests_total{{route="{route}",code="403"}} 1"#),
        ],
        "{out}"
    );
    let log = augur.log();
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("request refused"))
        .collect();
    assert_eq!(refused.len(), 2, "{log}");
    assert!(
        refused[1].contains("invalid bearer token: token not found"),
        "{log}"
    );
}

/// A ConfigMap augur may not read: start fails with the cause, unless told to tolerate it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_configmap_stops_start_unless_tolerated() {
    let forbidden = || async {
        (
            http::StatusCode::FORBIDDEN,
            Json(json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "configmaps \"extension-apiserver-authentication\" is forbidden: User \"system:serviceaccount:monitoring:augur\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"kube-system\"",
                "reason": "Forbidden",
                "code": 403,
            })),
        )
    };
    let double = ApiServerDouble::start(
        Router::new()
            .route(
                "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication",
                get(forbidden),
            )
            .route(CONFIGMAPS, get(forbidden)),
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = double.write_kubeconfig(dir.path(), "augur-sa-token");
    let mut args = AuthArgs {
        authentication_kubeconfig: Some(kubeconfig.clone()),
        authorization_kubeconfig: Some(kubeconfig),
        ..AuthArgs::default()
    };
    let err = augur::auth::setup(&args, None).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "authentication setup: reading configmap kube-system/extension-apiserver-authentication: 403 Forbidden: configmaps \"extension-apiserver-authentication\" is forbidden: User \"system:serviceaccount:monitoring:augur\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"kube-system\"; --authentication-tolerate-lookup-failure starts anyway, --authentication-skip-lookup with --client-ca-file/--requestheader-client-ca-file avoids the lookup"
    );
    args.authentication_tolerate_lookup_failure = true;
    let auth = augur::auth::setup(&args, None).await.unwrap();
    assert!(auth.is_some());
}
