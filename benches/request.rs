//! Request-overhead benchmark: augur's full HTTPS path (TLS, routing, registry lookup, PromQL
//! rendering, result mapping, JSON) for a custom metric request, with an in-memory backend that
//! answers instantly, so all measured latency is augur's (plus the client's) own.
//! Phase 1: a fixed 1,000 req/s for 10 s, latency percentiles. Phase 2: saturation with 64
//! concurrent requests for 5 s, req/s. Client and server share the machine's cores.
//!
//! Run: `cargo bench --bench request`. Under `cargo test` it runs a short smoke case.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use augur::api::router;
use augur::testing::{
    PODS_RULES, app_with_rules, fixed_rate, percentile, pods_backend, saturate, serve_tls,
};

const PATH: &str =
    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*/http_requests_per_second";

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    augur::tls::install_crypto_provider();
    let state = app_with_rules(PODS_RULES, Arc::new(pods_backend("default", 10))).await;
    let server = serve_tls(router(state)).await;
    let client = server.client(None).http1_only().build().unwrap();
    let url = server.url(PATH);

    let first = client.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let body: serde_json::Value = first.json().await.unwrap();
    assert_eq!(body["items"].as_array().map(Vec::len), Some(10));
    assert_eq!(body["items"][9]["value"], "9500m");

    // Phase 1: fixed rate.
    let (rate, seconds) = if full { (1000u64, 10u64) } else { (200, 1) };
    let started = Instant::now();
    let latencies = fixed_rate(&client, &url, rate, seconds).await;
    let elapsed = started.elapsed();
    println!(
        "fixed rate {rate} req/s for {seconds} s ({} requests in {elapsed:.2?}): p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.90),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );

    // Phase 2: saturation.
    let (concurrency, window) = if full {
        (64, Duration::from_secs(5))
    } else {
        (8, Duration::from_millis(500))
    };
    let total = saturate(&client, &url, concurrency, window).await;
    println!(
        "saturation with {concurrency} concurrent requests: {:.0} req/s over {window:?} ({} cores shared by client and server)",
        total as f64 / window.as_secs_f64(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
}
