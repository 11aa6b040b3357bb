//! A small kube-apiserver test double over real TLS: serves only the routes a test gives
//! it, records every call, and writes a kubeconfig that points kube-rs (or kubectl) at it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use super::Background;

/// One request the double received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    /// HTTP method.
    pub(crate) method: String,
    /// Path and query, e.g. `/api/v1/pods?watch=true&resourceVersion=1`.
    pub(crate) uri: String,
}

/// A running double; stops when dropped.
pub(crate) struct ApiServerDouble {
    /// `https://127.0.0.1:PORT`.
    pub(crate) url: String,
    /// PEM of the CA that signed the double's serving certificate.
    pub(crate) ca_pem: String,
    calls: Arc<Mutex<Vec<Call>>>,
    _server: Background,
}

impl ApiServerDouble {
    /// Serves `routes` over TLS on a free loopback port (own thread and runtime).
    pub(crate) fn start(routes: Router) -> Self {
        augur::tls::install_crypto_provider();
        let ca = augur::testing::TestCa::new("apiserver-double-ca");
        let serving = ca.server(&["127.0.0.1", "localhost"]);

        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let files = augur::tls::KeyPairFiles {
            cert: dir.path().join("tls.crt"),
            key: dir.path().join("tls.key"),
        };
        std::fs::write(&files.cert, &serving.cert).unwrap_or_else(|e| panic!("write: {e}"));
        std::fs::write(&files.key, &serving.key).unwrap_or_else(|e| panic!("write: {e}"));
        let tls = augur::tls::TlsOptions {
            cert_file: Some(files.cert.clone()),
            key_file: Some(files.key.clone()),
            cert_dir: dir.path().to_path_buf(),
            disable_http2: false,
        }
        .load()
        .unwrap_or_else(|e| panic!("tls: {e}"));

        let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
        let recorded = calls.clone();
        let app = routes.layer(axum::middleware::from_fn(
            move |request: Request, next: Next| {
                let recorded = recorded.clone();
                async move {
                    let call = Call {
                        method: request.method().to_string(),
                        uri: request
                            .uri()
                            .path_and_query()
                            .map(|p| p.to_string())
                            .unwrap_or_default(),
                    };
                    if let Ok(mut calls) = recorded.lock() {
                        calls.push(call);
                    }
                    let response: Response = next.run(request).await;
                    response
                }
            },
        ));

        let server = Background::start(move |listener, stop| async move {
            let _dir = dir;
            if let Err(e) = augur::tls::serve(listener, tls, app, stop).await {
                eprintln!("apiserver double stopped: {e}");
            }
        });
        Self {
            url: format!("https://{}", server.addr),
            ca_pem: ca.pem,
            calls,
            _server: server,
        }
    }

    /// Every call so far, in arrival order.
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Calls whose path (without query) equals `path` and whose query contains `query_part`.
    pub(crate) fn count(&self, method: &str, path: &str, query_part: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| {
                let (p, q) = c.uri.split_once('?').unwrap_or((&c.uri, ""));
                c.method == method && p == path && q.contains(query_part)
            })
            .count()
    }

    /// Writes a kubeconfig for this double into `dir` (CA file next to it, bearer `token`)
    /// and returns its path.
    pub(crate) fn write_kubeconfig(&self, dir: &Path, token: &str) -> PathBuf {
        let ca = dir.join("apiserver-double-ca.crt");
        std::fs::write(&ca, &self.ca_pem).unwrap_or_else(|e| panic!("write ca: {e}"));
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: double\n  cluster:\n    server: {url}\n    certificate-authority: {ca}\nusers:\n- name: augur\n  user:\n    token: {token}\ncontexts:\n- name: double\n  context:\n    cluster: double\n    user: augur\n    namespace: default\ncurrent-context: double\n",
            url = self.url,
            ca = ca.display(),
        );
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write kubeconfig: {e}"));
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_double_serves_over_tls_and_counts_calls_through_kubectl() {
        let routes = Router::new().route(
            "/version",
            axum::routing::get(|| async {
                axum::Json(
                    serde_json::json!({"major": "1", "minor": "34", "gitVersion": "v1.34.0"}),
                )
            }),
        );
        let double = ApiServerDouble::start(routes);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let kubeconfig = double.write_kubeconfig(dir.path(), "t0ken");
        let out = crate::support::stdout_of(std::process::Command::new("/usr/bin/kubectl").args([
            "--kubeconfig",
            &kubeconfig.display().to_string(),
            "get",
            "--raw",
            "/version",
        ]));
        let body: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("json: {e}"));
        assert_eq!(body["gitVersion"], "v1.34.0");
        // kubectl may ask more than once; every call it made is recorded with its path.
        let calls = double.calls();
        assert!(!calls.is_empty());
        assert_eq!(
            double.count("GET", "/version", ""),
            calls.len(),
            "{calls:?}"
        );
    }
}
