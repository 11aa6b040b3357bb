//! Health endpoints: /healthz, /livez and /readyz.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The reason given by `/readyz` until [`Health::set_ready`] is first called.
pub const DEFAULT_NOT_READY_REASON: &str = "waiting for the first successful series relist";

/// Shared readiness state; cloning is cheap and every clone sees the same state.
#[derive(Debug, Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ready: AtomicBool,
    reason: ArcSwap<String>,
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    /// Not ready, with [`DEFAULT_NOT_READY_REASON`].
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                ready: AtomicBool::new(false),
                reason: ArcSwap::from_pointee(DEFAULT_NOT_READY_REASON.to_owned()),
            }),
        }
    }

    /// Mark the server ready.
    pub fn set_ready(&self) {
        self.inner.ready.store(true, Ordering::Release);
    }

    /// Mark the server not ready, saying why in `/readyz`.
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        self.inner.reason.store(Arc::new(reason.into()));
        self.inner.ready.store(false, Ordering::Release);
    }

    /// Whether the server is ready.
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire)
    }

    /// Why the server is not ready (meaningful only when [`Health::is_ready`] is false).
    pub fn reason(&self) -> Arc<String> {
        self.inner.reason.load_full()
    }
}

/// `/healthz` and `/livez`: the process is up and serving; always 200 `ok`.
pub async fn live() -> &'static str {
    "ok"
}

/// `/readyz`: 200 `ok` when ready, else 503 `not ready: <reason>`.
pub async fn ready(State(health): State<Health>) -> Response {
    if health.is_ready() {
        (StatusCode::OK, "ok").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}", health.reason()),
        )
            .into_response()
    }
}

/// The three health routes (GET), with their state applied.
pub fn routes(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(live))
        .route("/livez", get(live))
        .route("/readyz", get(ready))
        .with_state(health)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get_path(router: &Router, path: &str) -> (StatusCode, String) {
        let response = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn liveness_is_always_ok() {
        let router = routes(Health::new());
        for path in ["/healthz", "/livez"] {
            assert_eq!(
                get_path(&router, path).await,
                (StatusCode::OK, "ok".to_owned())
            );
        }
    }

    #[tokio::test]
    async fn readiness_follows_state() {
        let health = Health::new();
        let router = routes(health.clone());
        assert_eq!(
            get_path(&router, "/readyz").await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: waiting for the first successful series relist".to_owned()
            )
        );
        health.set_ready();
        assert!(health.is_ready());
        assert_eq!(
            get_path(&router, "/readyz").await,
            (StatusCode::OK, "ok".to_owned())
        );
        health.set_not_ready("configuration reload failed");
        assert_eq!(
            get_path(&router, "/readyz").await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: configuration reload failed".to_owned()
            )
        );
        // Liveness does not depend on readiness.
        assert_eq!(get_path(&router, "/livez").await.0, StatusCode::OK);
    }
}
