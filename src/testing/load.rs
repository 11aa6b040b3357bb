//! Load for benchmarks: GET requests at a fixed rate or as fast as they are answered, and
//! latency percentiles.

use std::time::{Duration, Instant};

/// GETs `url` `rate` times a second for `seconds` seconds, each request in its own task so
/// a slow answer never delays the next request; asserts every answer is 200 and returns the
/// latencies (request sent to body read), sorted.
pub async fn fixed_rate(
    client: &reqwest::Client,
    url: &str,
    rate: u64,
    seconds: u64,
) -> Vec<Duration> {
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    let mut tasks = Vec::new();
    for _ in 0..rate * seconds {
        ticker.tick().await;
        let client = client.clone();
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let response = client.get(&url).send().await.expect("request");
            let ok = response.status() == 200;
            let _ = response.bytes().await.expect("response body");
            (t.elapsed(), ok)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        let (latency, ok) = task.await.expect("request task");
        assert!(ok);
        latencies.push(latency);
    }
    latencies.sort();
    latencies
}

/// `clients` tasks GET `url` one request after another until `window` has passed; asserts
/// every answer is 200 and returns how many were answered.
pub async fn saturate(
    client: &reqwest::Client,
    url: &str,
    clients: usize,
    window: Duration,
) -> u64 {
    let deadline = Instant::now() + window;
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (client, url) = (client.clone(), url.to_owned());
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < deadline {
                    let response = client.get(&url).send().await.expect("request");
                    assert_eq!(response.status(), 200);
                    let _ = response.bytes().await.expect("response body");
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker.await.expect("request task");
    }
    total
}

/// The `p` quantile (0 to 1) of `sorted` latencies: the nearest rank.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}
