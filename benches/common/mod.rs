//! Shared by the benches that run the real `augur` binary against a real Prometheus (`hpas`,
//! `throughput`): the integration tests' support (Prometheus, augur, the kube-apiserver
//! double), a double serving pod metadata for cluster mode, and readers of a process' CPU
//! time and memory from `/proc`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// The integration tests' support module, compiled into the bench (its submodules are found
/// next to it because this inline module sets the directory).
#[path = "../../tests/integration"]
pub(crate) mod integration {
    #[allow(dead_code, unused_imports)]
    pub(crate) mod support;
}

pub(crate) use integration::support::{ApiServerDouble, Augur, TestPrometheus, free_port};

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

fn resource(name: &str, namespaced: bool, kind: &str) -> Value {
    json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": ["get", "list", "watch"]})
}

/// The kube-apiserver routes cluster mode needs for pods: discovery of the core group and a
/// metadata LIST of `pods` (built once), then WATCHes that stay open, empty, until their
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
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": {"name": p.name, "namespace": p.namespace, "resourceVersion": "10", "labels": labels}})
        })
        .collect();
    let list = Arc::new(
        serde_json::to_vec(
            &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": "10"}, "items": items}),
        )
        .unwrap(),
    );
    Router::new()
        .route("/api", get(|| async { axum::Json(json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]})) }))
        .route("/api/v1", get(|| async {
            axum::Json(json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                resource("pods", true, "Pod"), resource("services", true, "Service"),
                resource("namespaces", false, "Namespace"), resource("nodes", false, "Node")]}))
        }))
        .route("/apis", get(|| async { axum::Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})) }))
        .route("/api/v1/pods", get(move |Query(params): Query<HashMap<String, String>>| {
            let list = list.clone();
            async move {
                if params.get("watch").map(String::as_str) == Some("true") {
                    let seconds = params.get("timeoutSeconds").and_then(|s| s.parse().ok()).unwrap_or(290);
                    let bookmark = format!("{}\n", json!({"type": "BOOKMARK", "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": "10"}}}));
                    let first = futures::stream::iter([Ok::<_, Infallible>(bytes::Bytes::from(bookmark))]);
                    let end = futures::stream::once(async move {
                        tokio::time::sleep(Duration::from_secs(seconds)).await;
                        Ok::<_, Infallible>(bytes::Bytes::new())
                    });
                    return Response::builder()
                        .header("content-type", "application/json")
                        .body(Body::from_stream(futures::StreamExt::chain(first, end)))
                        .unwrap();
                }
                ([("content-type", "application/json")], (*list).clone()).into_response()
            }
        }))
}

/// Starts the real augur binary (the one `cargo bench` or `cargo test` built) with
/// `--config`, `--prometheus-url`, cluster mode over `kubeconfig` (authentication off: the
/// double serves no reviews) and `extra` flags, every other flag at its default; waits until
/// /readyz is 200.
pub(crate) async fn start_augur(
    prometheus_url: &str,
    config: &Path,
    kubeconfig: &Path,
    extra: &[String],
) -> Augur {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_augur"));
    command
        .args(["serve", "--bind-address=127.0.0.1"])
        .arg(format!("--secure-port={port}"))
        .arg(format!("--config={}", config.display()))
        .arg(format!("--prometheus-url={prometheus_url}"))
        .arg(format!("--cert-dir={}", dir.path().join("certs").display()))
        .arg(format!("--lister-kubeconfig={}", kubeconfig.display()))
        .arg("--authentication-mode=off")
        .args(extra);
    let cert = dir.path().join("certs/apiserver.crt");
    Augur::launch(command, dir, port, cert).await
}

/// CPU seconds (user + system) used so far by process `pid`, from `/proc/<pid>/stat`.
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after `) state`.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    ticks as f64 / clock_ticks()
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux unless told otherwise).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`); 0 when unreadable.
pub(crate) fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Samples a process' resident memory every `every` on a thread until dropped; keeps the
/// largest sample.
pub(crate) struct RssSampler {
    max_kib: Arc<AtomicU64>,
    last_kib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssSampler {
    /// Starts sampling `pid`.
    pub(crate) fn start(pid: u32, every: Duration) -> Self {
        let max_kib = Arc::new(AtomicU64::new(0));
        let last_kib = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (max, last, done) = (max_kib.clone(), last_kib.clone(), stop.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let rss = status_kib(pid, "VmRSS");
                last.store(rss, Ordering::Relaxed);
                max.fetch_max(rss, Ordering::Relaxed);
                std::thread::sleep(every);
            }
        });
        Self {
            max_kib,
            last_kib,
            stop,
        }
    }

    /// The largest sample so far, MiB.
    pub(crate) fn max_mib(&self) -> f64 {
        self.max_kib.load(Ordering::Relaxed) as f64 / 1024.0
    }

    /// The newest sample, MiB.
    pub(crate) fn last_mib(&self) -> f64 {
        self.last_kib.load(Ordering::Relaxed) as f64 / 1024.0
    }

    /// Forgets the largest sample (to measure a phase on its own).
    pub(crate) fn reset_max(&self) {
        self.max_kib
            .store(self.last_kib.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
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

/// The load average line of `/proc/loadavg` (1, 5 and 15 minutes).
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
