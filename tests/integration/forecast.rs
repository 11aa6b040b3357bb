//! Forecast twin metrics end to end: the real `augur` binary in front of a real Prometheus
//! backfilled with the shared NASA trace (shifted so a chosen minute of 1995-07-12 is now)
//! plus a few gauges shaped to trigger each fallback; served values checked against the
//! live metric and augur's own /metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use crate::support::{
    Augur, EXTERNAL, TestPrometheus, gauge, gauge_rule, http_call, items, metric_value, metrics,
    now_aligned, quantity, resource_names, stdout_of, wait_metric,
};

/// 1995-07-12 11:57 UTC: the morning rise of the daily cycle is about to start (live
/// ≈ 0.65 req/s summed over the pods; the same 10 minutes one day earlier peaked at 1.72).
const RISE: i64 = 805_550_220;

const TRACE: &str = "tests/fixtures/traces/nasa_ksc_1995_07_10-13_60s.csv";

/// The NASA trace as `http_requests_total` of pods web-0..2 of service web in namespace
/// demo, shifted so the bucket starting at [`RISE`] starts at `now`, then the gauges:
/// - `fc_steady` = 3 over the last 3 hours (and 2 hours ahead);
/// - `fc_short` = 5 only from 4 minutes ago;
/// - `fc_gap` = 7 with no sample between 14 and 1 minutes ago;
/// - `fc_worse` = 1, except 100 around the same time one day earlier;
/// - `fc_rise` = 10 for three days, then 100 from 4 minutes ago (a rise it never showed).
fn openmetrics(now: i64) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut output = Command::new("python3");
    output
        .arg(root.join("tests/fixtures/traces/csv2openmetrics.py"))
        .arg(root.join(TRACE))
        .args(["-o", "-", "--metric", "http_requests_total"])
        .args([
            "--label",
            "namespace=demo",
            "--label",
            "service=web",
            "--pods",
            "3",
        ])
        .arg(format!("--shift={}", now - RISE));
    let text = stdout_of(output);
    let mut out = text.trim_end().strip_suffix("# EOF").unwrap().to_owned();
    let (from, to) = (now - 2 * 86_400, now + 2 * 3600);
    gauge(&mut out, "fc_steady", now - 3 * 3600, to, |_| Some(3.0));
    gauge(&mut out, "fc_short", now - 4 * 60, to, |_| Some(5.0));
    gauge(&mut out, "fc_gap", now - 3 * 3600, to, |t| {
        (t <= now - 15 * 60 || t >= now).then_some(7.0)
    });
    let yesterday = now - 86_400;
    gauge(&mut out, "fc_worse", from, to, |t| {
        Some(if (yesterday - 3600..=yesterday + 3600).contains(&t) {
            100.0
        } else {
            1.0
        })
    });
    gauge(&mut out, "fc_rise", now - 3 * 86_400, to, |t| {
        Some(if t >= now - 4 * 60 { 100.0 } else { 10.0 })
    });
    out.push_str("# EOF\n");
    out
}

/// Rules over the trace: pods/services/namespaces custom metric and a per-service external
/// metric, each with a forecast block, then `extra` external rules.
fn config(dir: &Path, pods: &str, external: &str, extra: &str) -> std::path::PathBuf {
    let text = format!(
        r#"rules:
- seriesQuery: 'http_requests_total{{namespace!="",pod!=""}}'
  resources:
    overrides:
      namespace: {{resource: "namespace"}}
      pod: {{resource: "pod"}}
      service: {{resource: "service"}}
  name: {{matches: "^(.*)_total$", as: "${{1}}_per_second"}}
  metricsQuery: 'sum(rate(<<.Series>>{{<<.LabelMatchers>>}}[2m])) by (<<.GroupBy>>)'
  forecast: {pods}
externalRules:
- seriesQuery: 'http_requests_total{{namespace!="",service!=""}}'
  resources: {{overrides: {{namespace: {{resource: namespace}}}}}}
  name: {{matches: "^http_requests_total$", as: "service_requests_per_second"}}
  metricsQuery: 'sum(rate(<<.Series>>{{<<.LabelMatchers>>}}[2m])) by (service)'
  forecast: {external}
{extra}"#
    );
    let path = dir.join("rules.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

const CUSTOM: &str = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo";

fn gauge_labels(rule: &str, metric: &str, object: &str) -> String {
    format!(r#"{{rule="{rule}",metric="{metric}",namespace="demo",object="{object}"}} "#)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The summed request rate (`sum(rate(http_requests_total[2m]))`, the twins' history) as
/// Prometheus gives it at every whole minute from `from` to `to`.
fn summed_rates(prometheus: &TestPrometheus, from: i64, to: i64) -> Vec<f64> {
    let url = prometheus.url();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let (from, to) = (from - from.rem_euclid(60), to - to.rem_euclid(60));
    let path = format!(
        "/api/v1/query_range?query=sum(rate(http_requests_total%5B2m%5D))&start={from}&end={to}&step=60"
    );
    let (status, body) = http_call(port, "GET", &path, b"").unwrap();
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    json["data"]["result"][0]["values"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|p| p[1].as_str().unwrap().parse().unwrap())
        .collect()
}

/// Bounds of a daily seasonal-naive forecast (max over the next 10 minutes) made at an
/// origin between 2 minutes before `asked` and `answered`: the max of yesterday's summed
/// rate over the minutes every such window covers, and over the minutes any covers (a
/// minute narrower and wider, for where a bucket's value is evaluated).
fn seasonal_bounds(prometheus: &TestPrometheus, asked: i64, answered: i64) -> (f64, f64) {
    let day = 86_400;
    let max = |v: Vec<f64>| v.into_iter().fold(f64::MIN, f64::max);
    let least = max(summed_rates(
        prometheus,
        answered - day + 2 * 60,
        asked - day + 7 * 60,
    ));
    let most = max(summed_rates(
        prometheus,
        asked - day - 4 * 60,
        answered - day + 12 * 60,
    ));
    (least, most)
}

/// Asserts a fallback twin serves its live value with `reason` on the fallback gauge.
async fn assert_fallback(augur: &Augur, rule: &str, live_metric: &str, reason: &str, live: f64) {
    let twin = format!("{live_metric}_forecast");
    let gauge = format!(
        r#"augur_forecast_fallback{{rule="{rule}",metric="{twin}",namespace="demo",object="all",reason="{reason}"}} "#
    );
    // The first request makes the target; the reason appears once its first refresh ran.
    let first = items(augur, &format!("{EXTERNAL}/{twin}")).await;
    assert_eq!(first, vec![("{}".to_owned(), live)]);
    assert_eq!(wait_metric(augur, &gauge).await, 1.0);
    assert_eq!(
        items(augur, &format!("{EXTERNAL}/{twin}")).await,
        vec![("{}".to_owned(), live)],
        "{twin} must serve its live value"
    );
    assert_eq!(
        items(augur, &format!("{EXTERNAL}/{live_metric}")).await,
        vec![("{}".to_owned(), live)]
    );
    let served = format!(
        r#"augur_forecast_served_total{{rule="{rule}",metric="{twin}",source="live",reason="{reason}"}} "#
    );
    assert!(
        metric_value(&metrics(augur).await, &served).unwrap() >= 1.0,
        "{served}"
    );
}

#[tokio::test]
async fn twins_are_discovered_served_and_fall_back_to_live() {
    let now = now_aligned();
    let prometheus = TestPrometheus::start(&openmetrics(now));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.onnx"), b"not an ONNX model").unwrap();
    let extra = [
        gauge_rule("fc_steady", "{model: persistence, headroom: 0.5}"),
        gauge_rule("fc_short", "{model: persistence, horizon: 30m}"),
        gauge_rule("fc_gap", "{model: persistence, horizon: 30m}"),
        gauge_rule("fc_model", "{model: broken.onnx}")
            .replace("'fc_model'", "'fc_steady'")
            .replace("metricsQuery", "name: {as: fc_model}\n  metricsQuery"),
    ]
    .concat();
    let rules = config(
        dir.path(),
        "{model: persistence, headroom: 1}",
        "{model: persistence, serve: forecast, history: 1d}",
        &extra,
    );
    // First requests do not wait, so the warming-up fallback is seen too.
    let augur = Augur::start(&prometheus.url(), &rules, &["--forecast-first-wait=0s"]).await;

    // Discovery: each twin next to its live metric, for every resource the live one has.
    let (status, body) = augur.get("/apis/custom.metrics.k8s.io/v1beta1").await;
    assert_eq!(status, 200);
    let names = resource_names(&body);
    let expected: Vec<(String, bool)> = [
        ("namespaces/http_requests_per_second", false),
        ("namespaces/http_requests_per_second_forecast", false),
        ("pods/http_requests_per_second", true),
        ("pods/http_requests_per_second_forecast", true),
        ("services/http_requests_per_second", true),
        ("services/http_requests_per_second_forecast", true),
    ]
    .iter()
    .map(|(n, b)| ((*n).to_owned(), *b))
    .collect();
    assert_eq!(names, expected);
    let (_, body) = augur.get("/apis/external.metrics.k8s.io/v1beta1").await;
    let mut external: Vec<&str> = body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    external.sort_unstable();
    assert_eq!(
        external,
        [
            "fc_gap",
            "fc_gap_forecast",
            "fc_model",
            "fc_model_forecast",
            "fc_short",
            "fc_short_forecast",
            "fc_steady",
            "fc_steady_forecast",
            "service_requests_per_second",
            "service_requests_per_second_forecast"
        ]
    );

    // Pods: the first request is answered live (warming up), then from the forecast.
    let pods_twin = format!("{CUSTOM}/pods/*/http_requests_per_second_forecast");
    let pods_live = format!("{CUSTOM}/pods/*/http_requests_per_second");
    let first = items(&augur, &pods_twin).await;
    assert_eq!(first.len(), 3, "{first:?}");
    let warming = r#"augur_forecast_served_total{rule="rules[0]",metric="http_requests_per_second_forecast",source="live",reason="warming_up"} "#;
    assert_eq!(metric_value(&metrics(&augur).await, warming), Some(3.0));
    let sum = gauge_labels("rules[0]", "http_requests_per_second_forecast", "sum");
    wait_metric(&augur, &format!("augur_forecast_value{sum}")).await;
    // Served per pod = max(live sum, forecast sum × (1 + 1)) / 3, read between two identical
    // /metrics reads (a refresh at a minute boundary would change the forecast).
    loop {
        let before = metrics(&augur).await;
        let twin = items(&augur, &pods_twin).await;
        let live = items(&augur, &pods_live).await;
        let after = metrics(&augur).await;
        let forecast = metric_value(&before, &format!("augur_forecast_value{sum}")).unwrap();
        if forecast != metric_value(&after, &format!("augur_forecast_value{sum}")).unwrap() {
            continue;
        }
        // persistence: the forecast is the newest history bucket, doubled by the headroom.
        let newest = metric_value(&before, &format!("augur_forecast_origin_value{sum}")).unwrap();
        assert!(
            (forecast - 2.0 * newest).abs() < 1e-9,
            "{forecast} vs {newest}"
        );
        let live_sum: f64 = live.iter().map(|(_, v)| v).sum();
        let expected = live_sum.max(forecast) / 3.0;
        let names: Vec<&str> = twin.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["web-0", "web-1", "web-2"]);
        for (name, value) in &twin {
            assert!(
                (value - expected).abs() < 0.002,
                "{name}: {value} vs {expected}"
            );
        }
        assert!(
            forecast > live_sum,
            "headroom 1 puts the forecast above live"
        );
        break;
    }

    // Object (the service): max(live, forecast × 2).
    let svc_twin = format!("{CUSTOM}/services/web/http_requests_per_second_forecast");
    items(&augur, &svc_twin).await;
    let web = gauge_labels("rules[0]", "http_requests_per_second_forecast", "web");
    wait_metric(&augur, &format!("augur_forecast_value{web}")).await;
    loop {
        let before = metrics(&augur).await;
        let twin = items(&augur, &svc_twin).await;
        let after = metrics(&augur).await;
        let forecast = metric_value(&before, &format!("augur_forecast_value{web}")).unwrap();
        if forecast != metric_value(&after, &format!("augur_forecast_value{web}")).unwrap() {
            continue;
        }
        assert_eq!(twin.len(), 1);
        assert_eq!(twin[0].0, "web");
        assert!(
            (twin[0].1 - forecast).abs() < 0.001,
            "{twin:?} vs {forecast}"
        );
        break;
    }

    // External with `serve: forecast`: the forecast alone, through the real kubectl too.
    let ext_twin = format!("{EXTERNAL}/service_requests_per_second_forecast");
    items(&augur, &ext_twin).await;
    let svc = gauge_labels(
        "externalRules[0]",
        "service_requests_per_second_forecast",
        "service=web",
    );
    wait_metric(&augur, &format!("augur_forecast_value{svc}")).await;
    loop {
        let before = metrics(&augur).await;
        let body = augur.kubectl_raw(&ext_twin);
        let after = metrics(&augur).await;
        let forecast = metric_value(&before, &format!("augur_forecast_value{svc}")).unwrap();
        if forecast != metric_value(&after, &format!("augur_forecast_value{svc}")).unwrap() {
            continue;
        }
        let item = &body["items"][0];
        assert_eq!(item["metricName"], "service_requests_per_second_forecast");
        assert_eq!(item["metricLabels"], serde_json::json!({"service": "web"}));
        assert!(
            (quantity(&item["value"]) - forecast).abs() < 0.001,
            "{body} vs {forecast}"
        );
        break;
    }

    // A steady gauge: forecast 3 × 1.5 = 4.5 over live 3; accuracy figures exposed.
    items(&augur, &format!("{EXTERNAL}/fc_steady_forecast")).await;
    let steady = gauge_labels("externalRules[1]", "fc_steady_forecast", "all");
    assert_eq!(
        wait_metric(&augur, &format!("augur_forecast_value{steady}")).await,
        4.5
    );
    assert_eq!(
        items(&augur, &format!("{EXTERNAL}/fc_steady_forecast")).await,
        vec![("{}".to_owned(), 4.5)]
    );
    let text = metrics(&augur).await;
    assert_eq!(
        metric_value(&text, &format!("augur_forecast_mae{steady}")),
        Some(0.0)
    );
    assert_eq!(
        metric_value(&text, &format!("augur_forecast_mape{steady}")),
        Some(0.0)
    );
    assert_eq!(
        metric_value(&text, &format!("augur_forecast_realised_value{steady}")),
        Some(3.0)
    );

    // Each fallback serves the live value, with the reason in /metrics.
    assert_fallback(&augur, "externalRules[2]", "fc_short", "history_short", 5.0).await;
    assert_fallback(&augur, "externalRules[3]", "fc_gap", "history_gap", 7.0).await;
    assert_fallback(&augur, "externalRules[4]", "fc_model", "model_error", 3.0).await;

    // The target limit: an augur allowed no targets serves every twin live.
    let text = steady_twin_limited(&prometheus, &rules, &["--forecast-max-targets=0"]).await;
    assert_eq!(metric_value(&text, &served_live("max_targets")), Some(1.0));
    assert_eq!(
        metric_value(&text, "augur_forecast_refused_targets_total "),
        Some(1.0)
    );

    // The series limit: the target is made, but its one series gets no history.
    let flags = ["--forecast-max-series=0", "--forecast-first-wait=60s"];
    let text = steady_twin_limited(&prometheus, &rules, &flags).await;
    assert_eq!(metric_value(&text, &served_live("max_series")), Some(1.0));
    assert_eq!(metric_value(&text, "augur_forecast_series "), Some(0.0));
    assert_eq!(metric_value(&text, "augur_forecast_targets "), Some(1.0));
}

/// Starts an augur with `flags`, checks that the steady twin serves its live value (3), and
/// returns its /metrics text.
async fn steady_twin_limited(prometheus: &TestPrometheus, rules: &Path, flags: &[&str]) -> String {
    let limited = Augur::start(&prometheus.url(), rules, flags).await;
    assert_eq!(
        items(&limited, &format!("{EXTERNAL}/fc_steady_forecast")).await,
        vec![("{}".to_owned(), 3.0)]
    );
    metrics(&limited).await
}

/// The served-live counter of the steady twin for `reason`.
fn served_live(reason: &str) -> String {
    format!(
        r#"augur_forecast_served_total{{rule="externalRules[1]",metric="fc_steady_forecast",source="live",reason="{reason}"}} "#
    )
}

#[tokio::test]
async fn seasonal_forecast_is_above_live_before_the_daily_rise() {
    let now = now_aligned();
    let prometheus = TestPrometheus::start(&openmetrics(now));
    let dir = tempfile::tempdir().unwrap();
    let rules = config(
        dir.path(),
        "{model: seasonal-naive, history: 2d, fallbackWindow: 0}",
        "{model: seasonal-naive, history: 2d, fallbackWindow: 0}",
        &(gauge_rule(
            "fc_worse",
            "{model: seasonal-naive, history: 2d, fallbackWindow: 30m}",
        ) + &gauge_rule(
            "fc_rise",
            "{model: seasonal-naive, history: 3d, fallbackWindow: 30m}",
        )),
    );
    let augur = Augur::start(&prometheus.url(), &rules, &[]).await;

    // Pods: the seasonal forecast of the summed rate, served spread over the pods. Its
    // origin is the newest complete bucket when the twin's first forecast is made (from 2
    // minutes before the request to its answer), so its window is yesterday's 10 minutes
    // after that: it covers yesterday's [answer + 2m, request + 7m] and lies within
    // [request − 4m, answer + 12m]. Both are computed here from Prometheus, so the test holds however late
    // augur's start-up makes the request (before, a start-up of more than 1–2 minutes moved
    // the live value into the rise and failed "served > 1.5 × live").
    let asked = unix_now();
    let pods = items(
        &augur,
        &format!("{CUSTOM}/pods/*/http_requests_per_second_forecast"),
    )
    .await;
    let answered = unix_now();
    let live = items(&augur, &format!("{CUSTOM}/pods/*/http_requests_per_second")).await;
    let served: f64 = pods.iter().map(|(_, v)| v).sum();
    let live_sum: f64 = live.iter().map(|(_, v)| v).sum();
    let (least, most) = seasonal_bounds(&prometheus, asked, answered);
    // At RISE (a start-up under a minute) yesterday's next 10 minutes peaked at 1.72 req/s
    // against a live sum of ≈ 0.65: the bounds are far from the live value.
    assert!(
        served >= 0.98 * least.max(live_sum) && served <= 1.02 * most.max(live_sum) + 0.01,
        "served {served} ({pods:?}), yesterday's max between {least} and {most}, live {live:?}\n{}",
        augur.log()
    );
    assert!(most > 1.2, "yesterday's rise is near: {most}");
    let spread: Vec<f64> = pods.iter().map(|(_, v)| *v).collect();
    assert!(
        spread.iter().all(|v| (v - spread[0]).abs() < 0.002),
        "{spread:?}"
    );

    // External: the same seasonal forecast, for the service as a whole.
    let asked = unix_now();
    let twin = items(
        &augur,
        &format!("{EXTERNAL}/service_requests_per_second_forecast"),
    )
    .await;
    let answered = unix_now();
    let live = items(&augur, &format!("{EXTERNAL}/service_requests_per_second")).await;
    let (least, most) = seasonal_bounds(&prometheus, asked, answered);
    assert!(
        twin[0].1 >= 0.98 * least.max(live[0].1) && twin[0].1 <= 1.02 * most.max(live[0].1) + 0.01,
        "{twin:?} vs yesterday's max between {least} and {most}, live {live:?}"
    );

    // A gauge whose yesterday looked nothing like today: seasonal-naive has been far worse
    // than persistence over the last 30 minutes, so the live value is served.
    assert_fallback(
        &augur,
        "externalRules[1]",
        "fc_worse",
        "worse_than_persistence",
        1.0,
    )
    .await;
    let worse = gauge_labels("externalRules[1]", "fc_worse_forecast", "all");
    let text = metrics(&augur).await;
    assert_eq!(
        metric_value(&text, &format!("augur_forecast_mae{worse}")),
        Some(99.0)
    );
    assert_eq!(
        metric_value(&text, &format!("augur_forecast_persistence_mae{worse}")),
        Some(0.0)
    );

    // A gauge that rose tenfold minutes ago, as it had not in three days: yesterday's 10
    // is no forecast for it, and the twin serves the live value from the shift on, before
    // any forecast made across the rise has come due.
    assert_fallback(&augur, "externalRules[2]", "fc_rise", "level_shift", 100.0).await;
}
