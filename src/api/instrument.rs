//! augur's own metrics over HTTP: the middleware recording every request's route, code and
//! latency, and `GET /metrics` serving the registry in the OpenMetrics text format.

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::telemetry::{Metrics, Refusal};

/// Content type of [`metrics_handler`] answers.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /metrics`.
pub async fn metrics_handler(State(metrics): State<Arc<Metrics>>) -> Response {
    let mut response = (StatusCode::OK, metrics.encode()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE),
    );
    response
}

/// A router serving `/metrics`.
pub fn routes(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .with_state(metrics)
}

/// Middleware recording route, status code and latency of every request; use it with
/// `axum::middleware::from_fn_with_state(metrics, track_http)` or [`instrument`].
/// The route is the matched route template, `unmatched` for the fallback, so the label
/// stays low-cardinality. A response refusing the request (auth puts a [`Refusal`] in it)
/// is also counted by reason and logged ([`Metrics::refused`]).
pub async fn track_http(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let start = tokio::time::Instant::now();
    let response = next.run(req).await;
    if let Some(refusal) = response.extensions().get::<Refusal>() {
        metrics.refused(refusal);
    }
    metrics.observe_http(
        &route,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}

/// Wrap every route of `router` (and its fallback) with [`track_http`].
pub fn instrument(router: Router, metrics: Arc<Metrics>) -> Router {
    router.layer(axum::middleware::from_fn_with_state(metrics, track_http))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request as HttpRequest;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    #[tokio::test]
    async fn middleware_records_matched_route_and_metrics_endpoint() {
        let metrics = Arc::new(Metrics::new());
        let app = instrument(
            Router::new()
                .route("/things/{name}", get(|| async { "thing" }))
                .merge(routes(metrics.clone())),
            metrics.clone(),
        );
        for path in ["/things/a", "/things/b", "/nope"] {
            app.clone()
                .oneshot(HttpRequest::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
        }
        let response = app
            .oneshot(HttpRequest::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            OPENMETRICS_CONTENT_TYPE
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(body.to_vec()).unwrap();
        let l = lines(&text);
        assert!(
            l.contains(&r#"augur_http_requests_total{route="/things/{name}",code="200"} 2"#),
            "{text}"
        );
        assert!(
            l.contains(&r#"augur_http_requests_total{route="unmatched",code="404"} 1"#),
            "{text}"
        );
    }
}
