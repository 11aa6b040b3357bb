//! Forecast fallbacks caused by a failing history end to end: a fault-injecting proxy
//! between augur and a real Prometheus makes range queries fail or come back empty, and
//! each twin must then serve exactly its live value with `stale`, `query_failed` or
//! `no_history` counted in augur's /metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header::CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use crate::support::{
    Augur, Background, EXTERNAL, TestPrometheus, gauge, gauge_rule, items, metric_value, metrics,
    now_aligned, wait_metric,
};

/// What the proxy does with `/api/v1/query_range` (everything else is always forwarded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Fault {
    /// Forward to Prometheus.
    None = 0,
    /// HTTP 503 with a Prometheus error body.
    Unavailable = 1,
    /// HTTP 422 with a Prometheus error body.
    Unprocessable = 2,
    /// HTTP 200 with an empty matrix.
    EmptyMatrix = 3,
}

const INJECTED_ERROR: &str = r#"{"status":"error","errorType":"execution","error":"injected"}"#;
const EMPTY_MATRIX: &str = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;

struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    fault: AtomicU8,
    /// Range queries answered by the proxy itself.
    injected: AtomicU64,
}

/// An HTTP proxy in front of Prometheus on its own thread and runtime, so it answers
/// whatever the test task is doing.
struct FaultProxy {
    port: u16,
    state: Arc<ProxyState>,
    _server: Background,
}

async fn forward(State(state): State<Arc<ProxyState>>, request: Request) -> Response {
    if request.uri().path() == "/api/v1/query_range" {
        let canned = match state.fault.load(Ordering::SeqCst) {
            1 => Some((StatusCode::SERVICE_UNAVAILABLE, INJECTED_ERROR)),
            2 => Some((StatusCode::UNPROCESSABLE_ENTITY, INJECTED_ERROR)),
            3 => Some((StatusCode::OK, EMPTY_MATRIX)),
            _ => None,
        };
        if let Some((status, body)) = canned {
            state.injected.fetch_add(1, Ordering::SeqCst);
            return (status, [(CONTENT_TYPE, "application/json")], body).into_response();
        }
    }
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut upstream = state
        .client
        .request(parts.method, format!("{}{path}", state.upstream))
        .body(body);
    if let Some(content_type) = parts.headers.get(CONTENT_TYPE) {
        upstream = upstream.header(CONTENT_TYPE, content_type);
    }
    match upstream.send().await {
        Ok(answer) => {
            let status = answer.status();
            let content_type = answer.headers().get(CONTENT_TYPE).cloned();
            let bytes = answer.bytes().await.unwrap_or_default();
            let mut response = Response::new(Body::from(bytes));
            *response.status_mut() = status;
            if let Some(content_type) = content_type {
                response.headers_mut().insert(CONTENT_TYPE, content_type);
            }
            response
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// A client for plain HTTP (reqwest is built without a default TLS provider, so give it one).
fn plain_http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(augur::testing::client_config(&[], None))
        .build()
        .unwrap()
}

impl FaultProxy {
    /// Starts forwarding to `upstream` (`http://host:port`) with `fault` applied.
    fn start(upstream: &str, fault: Fault) -> FaultProxy {
        let state = Arc::new(ProxyState {
            upstream: upstream.to_owned(),
            client: plain_http_client(),
            fault: AtomicU8::new(fault as u8),
            injected: AtomicU64::new(0),
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(state.clone());
        let server = Background::start(move |listener, stop| async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
                .unwrap();
        });
        FaultProxy {
            port: server.addr.port(),
            state,
            _server: server,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn set(&self, fault: Fault) {
        self.state.fault.store(fault as u8, Ordering::SeqCst);
    }

    fn injected(&self) -> u64 {
        self.state.injected.load(Ordering::SeqCst)
    }
}

/// A Prometheus holding one gauge `name{namespace="demo"} = value`, a sample a minute from
/// an hour ago to two hours ahead.
fn prometheus_with(name: &str, value: f64) -> TestPrometheus {
    let now = now_aligned();
    let mut text = String::new();
    gauge(&mut text, name, now - 3600, now + 2 * 3600, |_| Some(value));
    text.push_str("# EOF\n");
    TestPrometheus::start(&text)
}

/// A config with one external rule over `name` with this forecast block.
fn rules(dir: &Path, name: &str, forecast: &str) -> PathBuf {
    let path = dir.join("rules.yaml");
    std::fs::write(
        &path,
        format!("externalRules:\n{}", gauge_rule(name, forecast)),
    )
    .unwrap();
    path
}

/// `augur_forecast_served_total` of the only rule's twin, by source and reason.
fn served(text: &str, twin: &str, reason: &str) -> Option<f64> {
    let source = if reason.is_empty() {
        "forecast"
    } else {
        "live"
    };
    metric_value(
        text,
        &format!(
            r#"augur_forecast_served_total{{rule="externalRules[0]",metric="{twin}",source="{source}",reason="{reason}"}} "#
        ),
    )
}

/// Lines of augur's log warning that the history query failed with the injected error.
fn injected_warnings(augur: &Augur) -> usize {
    augur
        .log()
        .lines()
        .filter(|l| l.contains("forecast history query failed") && l.contains("injected"))
        .count()
}

/// Asserts that each of `n` requests of a twin whose history fails for `reason` serves
/// exactly `live`, counted once each under that reason, the forecast count unchanged.
async fn assert_live_each_time(augur: &Augur, twin: &str, reason: &str, live: f64, n: u32) {
    let text = metrics(augur).await;
    let forecast = served(&text, twin, "");
    let before = served(&text, twin, reason).unwrap_or(0.0);
    for i in 1..=n {
        assert_eq!(
            items(augur, &format!("{EXTERNAL}/{twin}")).await,
            vec![("{}".to_owned(), live)],
            "{twin} must serve its live value"
        );
        let text = metrics(augur).await;
        assert_eq!(
            served(&text, twin, reason),
            Some(before + f64::from(i)),
            "{reason}\n{text}"
        );
        assert_eq!(served(&text, twin, ""), forecast, "{text}");
    }
}

/// Asserts augur counted at least one failed range query, and no more than the proxy made.
async fn assert_range_errors_counted(augur: &Augur, proxy: &FaultProxy) {
    let errors = wait_metric(
        augur,
        r#"augur_prometheus_errors_total{endpoint="query_range",kind="api"} "#,
    )
    .await;
    let injected = proxy.injected() as f64;
    assert!(
        errors >= 1.0 && errors <= injected,
        "{errors} errors, {injected} injected"
    );
}

#[tokio::test]
async fn a_forecast_whose_history_stops_answering_goes_stale_and_serves_live() {
    let prometheus = prometheus_with("fc_stale", 3.0);
    let proxy = FaultProxy::start(&prometheus.url(), Fault::None);
    let dir = tempfile::tempdir().unwrap();
    // persistence × (1 + 1) = 6 while the history answers; live is 3.
    let rules = rules(
        dir.path(),
        "fc_stale",
        "{model: persistence, step: 2s, horizon: 4s, history: 2m, headroom: 1, fallbackWindow: 0}",
    );
    // No eviction while the test pauses, so the one target lives through every phase.
    let augur = Augur::start(&proxy.url(), &rules, &["--forecast-idle-eviction=1h"]).await;
    let twin = format!("{EXTERNAL}/fc_stale_forecast");
    let deadline = Instant::now() + Duration::from_secs(60);

    // Healthy: eventually served from the forecast (the first request may still be warming up).
    loop {
        if items(&augur, &twin).await == vec![("{}".to_owned(), 6.0)] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never served from the forecast; log:\n{}",
            augur.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(served(&metrics(&augur).await, "fc_stale_forecast", "").unwrap() >= 1.0);
    assert_eq!(injected_warnings(&augur), 0);

    // Range queries now fail: the last forecast keeps being served until it is older than
    // two steps, then the live value with `stale`; each answer is counted under its source.
    proxy.set(Fault::Unavailable);
    // Refreshes of a target never overlap, so once one has been refused no refresh that
    // got through before the switch can still publish a newer forecast.
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.injected() == 0 {
        assert!(Instant::now() < deadline, "no range query after the switch");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = metrics(&augur).await;
    let forecast_before = served(&text, "fc_stale_forecast", "").unwrap();
    let stale_before = served(&text, "fc_stale_forecast", "stale").unwrap_or(0.0);
    let (mut from_forecast, mut from_live) = (0.0, 0.0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while from_live == 0.0 {
        match items(&augur, &twin).await.as_slice() {
            [(labels, v)] if labels == "{}" && *v == 6.0 => from_forecast += 1.0,
            [(labels, v)] if labels == "{}" && *v == 3.0 => from_live += 1.0,
            other => panic!("unexpected answer {other:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "never went stale; log:\n{}",
            augur.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let text = metrics(&augur).await;
    assert_eq!(
        served(&text, "fc_stale_forecast", ""),
        Some(forecast_before + from_forecast),
        "{text}"
    );
    assert_eq!(
        served(&text, "fc_stale_forecast", "stale"),
        Some(stale_before + from_live),
        "{text}"
    );
    assert_range_errors_counted(&augur, &proxy).await;
    // Stale for good while the failures go on: live each time, counted as stale.
    assert_live_each_time(&augur, "fc_stale_forecast", "stale", 3.0, 3).await;
    assert_eq!(
        items(&augur, &format!("{EXTERNAL}/fc_stale")).await,
        vec![("{}".to_owned(), 3.0)]
    );
    // One warning for the failure, with Prometheus' error in it (not one per retry).
    assert_eq!(injected_warnings(&augur), 1, "{}", augur.log());
    // The series' fallback gauge says stale too (from the first failed refresh after the
    // forecast went stale, at most a step later).
    let gauge = r#"augur_forecast_fallback{rule="externalRules[0]",metric="fc_stale_forecast",namespace="demo",object="all",reason="stale"} "#;
    assert_eq!(wait_metric(&augur, gauge).await, 1.0);

    // Prometheus answers again: the forecast is served again, and the gauge is gone (it is
    // cleared before the new forecast is published).
    proxy.set(Fault::None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while items(&augur, &twin).await != vec![("{}".to_owned(), 6.0)] {
        assert!(
            Instant::now() < deadline,
            "forecast never came back; log:\n{}",
            augur.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(metric_value(&metrics(&augur).await, gauge), None);
}

#[tokio::test]
async fn a_history_query_failing_from_the_start_serves_live_as_query_failed() {
    let prometheus = prometheus_with("fc_failed", 4.0);
    let proxy = FaultProxy::start(&prometheus.url(), Fault::Unprocessable);
    let dir = tempfile::tempdir().unwrap();
    let rules = rules(
        dir.path(),
        "fc_failed",
        "{model: persistence, history: 1h, headroom: 1}",
    );
    // The first request waits for the first (failing) refresh, so every answer is counted.
    let augur = Augur::start(
        &proxy.url(),
        &rules,
        &["--forecast-first-wait=60s", "--forecast-idle-eviction=1h"],
    )
    .await;
    assert_live_each_time(&augur, "fc_failed_forecast", "query_failed", 4.0, 3).await;
    assert_eq!(
        items(&augur, &format!("{EXTERNAL}/fc_failed")).await,
        vec![("{}".to_owned(), 4.0)]
    );
    assert_eq!(injected_warnings(&augur), 1, "{}", augur.log());
    assert_range_errors_counted(&augur, &proxy).await;
}

#[tokio::test]
async fn an_empty_history_serves_live_as_no_history() {
    let prometheus = prometheus_with("fc_empty", 5.0);
    let proxy = FaultProxy::start(&prometheus.url(), Fault::EmptyMatrix);
    let dir = tempfile::tempdir().unwrap();
    let rules = rules(
        dir.path(),
        "fc_empty",
        "{model: persistence, history: 1h, headroom: 1}",
    );
    // POST, so the proxy's fault is seen on both verbs across the suite.
    let augur = Augur::start(
        &proxy.url(),
        &rules,
        &[
            "--forecast-first-wait=60s",
            "--forecast-idle-eviction=1h",
            "--prometheus-verb=POST",
        ],
    )
    .await;
    assert_live_each_time(&augur, "fc_empty_forecast", "no_history", 5.0, 3).await;
    assert_eq!(
        items(&augur, &format!("{EXTERNAL}/fc_empty")).await,
        vec![("{}".to_owned(), 5.0)]
    );
    assert!(proxy.injected() >= 1);
    // An empty answer is no failure: nothing to warn about, but the log says once why the
    // twin serves live.
    assert_eq!(injected_warnings(&augur), 0);
    let log = augur.log();
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("forecast history query returned no series")
                && l.contains("fc_empty_forecast"))
            .count(),
        1,
        "{log}"
    );
}
