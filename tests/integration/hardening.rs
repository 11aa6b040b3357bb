//! Hostile and broken input end to end: absurd numbers from Prometheus and flags, YAML alias
//! bombs, rules Prometheus rejects, emptied config files. Each answer is checked exactly: a
//! status code and a `Status` message, an exit code and the line of a file, a log line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use augur::api::router;
use augur::prometheus::client::decode_query_answer;
use augur::prometheus::fake::{FakeBackend, labels};
use augur::prometheus::{Backend, QueryResult, RangeSeries, SeriesList};
use augur::testing::app_with_rules;

use crate::support::stdout_of;
use futures::FutureExt as _;
use futures::future::BoxFuture;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const RULES: &str = r#"
externalRules:
- seriesQuery: 'queue_messages_ready{namespace!=""}'
  resources: {overrides: {namespace: {resource: namespace}}}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (queue)'
- seriesQuery: 'queue_messages_ready{namespace!=""}'
  resources: {overrides: {namespace: {resource: namespace}}}
  name: {as: "queue_messages_ready_forecast_source"}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>})'
  forecast: {name: "queue_twin", horizon: 5m, step: 1m, history: 1h}
- seriesQuery: 'queue_messages_ready{namespace!=""}'
  resources: {namespaced: false}
  name: {as: "queue_messages_ready_cluster"}
  metricsQuery: 'scalar(sum(<<.Series>>{<<.LabelMatchers>>}))'
resourceRules:
  cpu:
    containerQuery: 'sum by (<<.GroupBy>>) (rate(container_cpu_usage_seconds_total{<<.LabelMatchers>>}[3m]))'
    nodeQuery: 'sum by (<<.GroupBy>>) (rate(node_cpu_seconds_total{<<.LabelMatchers>>}[3m]))'
    resources: {overrides: {node: {resource: node}, namespace: {resource: namespace}, pod: {resource: pod}}}
    containerLabel: container
  memory:
    containerQuery: 'sum by (<<.GroupBy>>) (container_memory_working_set_bytes{<<.LabelMatchers>>})'
    nodeQuery: 'sum by (<<.GroupBy>>) (node_memory_MemTotal_bytes{<<.LabelMatchers>>})'
    resources: {overrides: {node: {resource: node}, namespace: {resource: namespace}, pod: {resource: pod}}}
    containerLabel: container
  window: 3m
"#;

/// A backend that answers every query with the same recorded Prometheus body, decoded by the
/// HTTP backend's own decoder; series come from `series`.
struct Recorded {
    answer: &'static str,
    series: FakeBackend,
}

impl Backend for Recorded {
    fn series<'a>(
        &'a self,
        selector: &'a str,
        start: SystemTime,
    ) -> BoxFuture<'a, augur::prometheus::Result<SeriesList>> {
        self.series.series(selector, start)
    }

    fn query<'a>(
        &'a self,
        _: &'a str,
        _: SystemTime,
    ) -> BoxFuture<'a, augur::prometheus::Result<QueryResult>> {
        futures::future::ready(decode_query_answer(200, self.answer.as_bytes())).boxed()
    }

    fn query_range<'a>(
        &'a self,
        _: &'a str,
        _: SystemTime,
        _: SystemTime,
        _: Duration,
    ) -> BoxFuture<'a, augur::prometheus::Result<Vec<RangeSeries>>> {
        futures::future::ready(Ok(Vec::new())).boxed()
    }
}

/// The router over `answer`, with the rules above discovered.
async fn app(answer: &'static str) -> axum::Router {
    let series = FakeBackend::new().with_series(
        r#"queue_messages_ready{namespace!=""}"#,
        vec![labels(&[
            ("__name__", "queue_messages_ready"),
            ("namespace", "default"),
            ("queue", "orders"),
        ])],
    );
    router(app_with_rules(RULES, Arc::new(Recorded { answer, series })).await)
}

async fn get(app: &axum::Router, path: &str) -> (u16, Value) {
    let request = http::Request::get(path)
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let code = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        code,
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into())),
    )
}

const OUT_OF_RANGE: &str = "is out of range (expected seconds from 0, 1970-01-01T00:00:00Z, to 253402300799, 9999-12-31T23:59:59Z)";

/// Sample times at or after year 10000 (`3e11`) and near 1e19 (which overflowed
/// `UNIX_EPOCH + Duration`) answer a 500 `Status` that says why, on every route that serves
/// sample times; before, the connection was reset by a panic.
#[tokio::test]
async fn absurd_sample_times_answer_a_status_not_a_reset() {
    let cases: [(&'static str, &str, &str); 6] = [
        (
            r#"{"status":"success","data":{"resultType":"scalar","result":[3e11,"1"]}}"#,
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue_messages_ready_cluster",
            "300000000000",
        ),
        (
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"queue":"orders"},"value":[1e19,"1"]}]}}"#,
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue_messages_ready",
            "10000000000000000000",
        ),
        (
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1e19,"1"]}]}}"#,
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue_twin",
            "10000000000000000000",
        ),
        (
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"namespace":"default","pod":"web-1","container":"app"},"value":[1e19,"1"]}]}}"#,
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
            "10000000000000000000",
        ),
        (
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"node":"node-a"},"value":[1e19,"1"]}]}}"#,
            "/apis/metrics.k8s.io/v1beta1/nodes/node-a",
            "10000000000000000000",
        ),
        (
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"node":"node-a"},"value":[3e11,"1"]}]}}"#,
            "/apis/metrics.k8s.io/v1beta1/nodes",
            "300000000000",
        ),
    ];
    for (answer, path, shown) in cases {
        let app = app(answer).await;
        let (code, body) = get(&app, path).await;
        assert_eq!(code, 500, "{path}: {body}");
        assert_eq!(body["kind"], "Status", "{path}: {body}");
        assert_eq!(body["code"], 500, "{path}: {body}");
        assert_eq!(body["reason"], "InternalError", "{path}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with("Internal error occurred: unable to fetch metrics from prometheus: cannot decode prometheus response: sample time: Unix time ")
                && message.contains(&format!("{shown} {OUT_OF_RANGE}")),
            "{path}: {message}"
        );
    }
    // The last second of year 9999 is still served, as RFC 3339.
    let app =
        app(r#"{"status":"success","data":{"resultType":"scalar","result":[253402300799,"1"]}}"#)
            .await;
    let (code, body) = get(
        &app,
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue_messages_ready_cluster",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["items"],
        json!([{"metricName": "queue_messages_ready_cluster", "metricLabels": null, "timestamp": "9999-12-31T23:59:59Z", "value": "1"}])
    );
}

/// `--start 1e30` (and other times no calendar holds) is a flag error naming the flag, not
/// a panic in the float-to-duration conversion.
#[test]
fn absurd_start_times_are_flag_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.onnx");
    let runs: [Vec<String>; 4] = [
        vec![
            "backtest".into(),
            "--prometheus-url=http://127.0.0.1:9".into(),
            "--query=up".into(),
            "--start=1e30".into(),
            "--end=now".into(),
        ],
        vec![
            "backtest".into(),
            "--prometheus-url=http://127.0.0.1:9".into(),
            "--query=up".into(),
            "--start=0".into(),
            "--end=-5".into(),
        ],
        vec![
            "train".into(),
            "--prometheus-url=http://127.0.0.1:9".into(),
            "--query=up".into(),
            "--start=1e30".into(),
            "--step=1m".into(),
            "--targets=max@1".into(),
            format!("--out={}", out.display()),
        ],
        vec![
            "train".into(),
            "--prometheus-url=http://127.0.0.1:9".into(),
            "--query=up".into(),
            "--start=NaN".into(),
            "--step=1m".into(),
            "--targets=max@1".into(),
            format!("--out={}", out.display()),
        ],
    ];
    let expected = [
        "augur: --start: time \"1e30\" is too far in the future",
        "augur: --end: time \"-5\" is before 1970",
        "augur: --start: time \"1e30\" is too far in the future",
        "augur: --start: time \"NaN\" is not a finite number of Unix seconds",
    ];
    for (args, expected) in runs.iter().zip(expected) {
        let output = Command::new(env!("CARGO_BIN_EXE_augur"))
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.starts_with(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// The nested-anchor bomb of the hardening issue (377 bytes here; the issue's was 361 with
/// less spacing): seven anchors, each a list of ten aliases of the previous one, so
/// `rules: *a6` would be a million nodes (2.47 GB before it was bounded). It is refused at
/// the alias that crosses the budget, on line 6.
fn yaml_bomb() -> String {
    let mut text = String::from("a0: &a0 [x]\n");
    for level in 1..7 {
        let aliases = vec![format!("*a{}", level - 1); 10].join(", ");
        text.push_str(&format!("a{level}: &a{level} [{aliases}]\n"));
    }
    text.push_str("rules: *a6\n");
    text
}

const BOMB_REFUSED: &str = ":6: invalid YAML: aliases expand to more than 1024 KiB (4 times the file's size, at least 1 MiB); nested aliases this large are refused to bound memory (column 10)";

/// `augur check` refuses the bomb with its line, within 300 MB of address space (it used to
/// take 2.47 GB).
#[test]
fn yaml_alias_bomb_is_refused_by_check_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = dir.path().join("bomb.yaml");
    std::fs::write(&bomb, yaml_bomb()).unwrap();
    assert_eq!(std::fs::metadata(&bomb).unwrap().len(), 377);
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 300000 && exec {} check --config {}",
            env!("CARGO_BIN_EXE_augur"),
            bomb.display()
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert_eq!(stderr.trim(), format!("{}{BOMB_REFUSED}", bomb.display()));
}

/// `augur serve` refuses the bomb at startup, naming the file and line.
#[test]
fn yaml_alias_bomb_is_refused_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = dir.path().join("bomb.yaml");
    std::fs::write(&bomb, yaml_bomb()).unwrap();
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 1000000 && exec {} serve --config {} --prometheus-url http://127.0.0.1:9 --bind-address 127.0.0.1 --secure-port {} --cert-dir {}",
            env!("CARGO_BIN_EXE_augur"),
            bomb.display(),
            crate::support::free_port(),
            dir.path().join("certs").display()
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("{}{BOMB_REFUSED}", bomb.display())),
        "{stderr}"
    );
}

/// Waits until augur's log contains `text` (the reloader polls every second).
async fn wait_for_log(augur: &crate::support::Augur, text: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !augur.log().contains(text) {
        assert!(
            std::time::Instant::now() < deadline,
            "log never said {text:?}:\n{}",
            augur.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Rules whose queries a real Prometheus rejects: `rules[1]`'s seriesQuery (an unclosed
/// brace) and `rules[2]`'s rendered metricsQuery (an unclosed parenthesis); `rules[0]` is
/// fine.
const REJECTED_RULES: &str = r#"rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
- seriesQuery: 'http_requests_total{namespace!="",pod!=""'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {as: broken_series_query}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
- seriesQuery: 'node_load1'
  resources: {template: "<<.Resource>>"}
  metricsQuery: 'max(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>'
"#;

/// The lines of `stderr` that start with `file`'s path (`augur check`'s per-field errors).
fn lines_naming<'a>(stderr: &'a str, file: &std::path::Path) -> Vec<&'a str> {
    let file = file.display().to_string();
    stderr.lines().filter(|l| l.starts_with(&file)).collect()
}

fn check(config: &std::path::Path, extra: &[String]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["check", "--config"])
        .arg(config)
        .args(extra)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `augur check --prometheus-url` fails, naming file, line, rule and field, for every query a
/// real Prometheus rejects; the report of the good rule is still printed.
#[test]
fn check_fails_on_queries_prometheus_rejects() {
    let fixture = crate::support::fixture_series(SystemTime::now());
    let prometheus = crate::support::TestPrometheus::start(&fixture.openmetrics());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rules.yaml");
    std::fs::write(&config, REJECTED_RULES).unwrap();
    let (code, stdout, stderr) =
        check(&config, &[format!("--prometheus-url={}", prometheus.url())]);
    assert_eq!(code, Some(64), "{stdout}\n{stderr}");
    let file = config.display();
    let lines = lines_naming(&stderr, &config);
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with(&format!(
            "{file}:5: rules[1].seriesQuery: prometheus rejected it (bad_data): "
        )) && lines[0].contains("parse error"),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with(&format!("{file}:9: rules[2].metricsQuery: prometheus rejected the example query max(node_load1{{namespace=\"default\",pod=\"example\"}}) by (pod (bad_data): ")) && lines[1].contains("parse error"),
        "{stderr}"
    );
    assert!(stdout.contains("rules[0] (line 2): seriesQuery http_requests_total{namespace!=\"\",pod!=\"\"}\n  discovered: 4 series -> 1 metric(s): http_requests_total\n"), "{stdout}");

    // Without the bad rules: exit 0.
    let good: String = REJECTED_RULES
        .lines()
        .take(4)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&config, good).unwrap();
    let (code, stdout, stderr) =
        check(&config, &[format!("--prometheus-url={}", prometheus.url())]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(stderr, "");
}

/// `augur check` fails on an ONNX model that does not load, and on one that loads but does
/// not forecast what the rule asks (the shipped model forecasts 10 steps of 60 s ahead).
#[test]
fn check_fails_on_onnx_models_that_do_not_load_or_fit_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.onnx");
    let mut bytes =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/models/default.onnx")).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&corrupt, &bytes).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/models/default.onnx"),
        dir.path().join("default.onnx"),
    )
    .unwrap();
    let rule = |model: &str, horizon: &str| {
        format!(
            "- seriesQuery: 'queue_messages_ready'\n  resources: {{namespaced: false}}\n  metricsQuery: 'sum(<<.Series>>{{<<.LabelMatchers>>}})'\n  forecast: {{model: {model}, horizon: {horizon}}}\n"
        )
    };
    let config = dir.path().join("rules.yaml");
    let text = format!(
        "externalRules:\n{}{}{}",
        rule("corrupt.onnx", "10m"),
        rule("default.onnx", "5m"),
        rule("default.onnx", "10m")
    );
    std::fs::write(&config, text).unwrap();
    let (code, stdout, stderr) = check(&config, &[]);
    assert_eq!(code, Some(64), "{stdout}\n{stderr}");
    let file = config.display();
    let lines = lines_naming(&stderr, &config);
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with(&format!(
            "{file}:5: externalRules[0].forecast.model: {}: ONNX Runtime cannot load it: ",
            corrupt.display()
        )),
        "{stderr}"
    );
    assert_eq!(
        lines[1],
        format!(
            "{file}:9: externalRules[1].forecast.model: {}: does not meet the rule: the model does not forecast max@5 (it forecasts max@10,point@10)",
            dir.path().join("default.onnx").display()
        )
    );
}

/// At serve time a rule whose seriesQuery Prometheus rejects is logged with Prometheus's
/// reason, and neither readiness nor the other rules wait for it.
#[tokio::test]
async fn a_rejected_rule_does_not_hold_readiness_or_the_other_rules() {
    let fixture = crate::support::fixture_series(SystemTime::now());
    let prometheus = crate::support::TestPrometheus::start(&fixture.openmetrics());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rules.yaml");
    // Only the rejected rule: ready all the same (Augur::start waits for /readyz).
    let only_bad: String = REJECTED_RULES
        .lines()
        .skip(4)
        .take(4)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&config, format!("rules:\n{only_bad}")).unwrap();
    let augur = crate::support::Augur::start(&prometheus.url(), &config, &[]).await;
    wait_for_log(&augur, "relist: prometheus rejected the seriesQuery of rules[0], which serves nothing until it is fixed").await;
    assert!(augur.log().contains("(bad_data)"), "{}", augur.log());
    drop(augur);

    std::fs::write(&config, REJECTED_RULES).unwrap();
    let augur = crate::support::Augur::start(&prometheus.url(), &config, &[]).await;
    let (status, body) = augur
        .get(
            "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/pods/web-1/http_requests_total",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"][0]["value"], "2200");
    wait_for_log(&augur, "relist: prometheus rejected the seriesQuery of rules[1], which serves nothing until it is fixed").await;
}

/// A hot reload of the bomb is refused with its line; the previous config keeps serving.
/// So is a reload of an emptied (truncated) file while the running config has rules, which
/// would otherwise stop serving every metric; `augur check` still accepts the empty file.
#[tokio::test]
async fn reloads_of_a_bomb_or_an_emptied_file_keep_the_previous_config() {
    let fixture = crate::support::fixture_series(SystemTime::now());
    let prometheus = crate::support::TestPrometheus::start(&fixture.openmetrics());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rules.yaml");
    std::fs::copy(crate::support::rules(), &config).unwrap();
    let augur = crate::support::Augur::start(&prometheus.url(), &config, &[]).await;
    let path = "/apis/custom.metrics.k8s.io/v1beta1/nodes/node-a/node_load1";
    let served = |body: &Value| body["items"][0]["value"] == "500m";
    let (status, body) = augur.get(path).await;
    assert!(status == 200 && served(&body), "{status} {body}");

    std::fs::write(&config, yaml_bomb()).unwrap();
    wait_for_log(&augur, &format!("{}{BOMB_REFUSED}", config.display())).await;
    let (status, body) = augur.get(path).await;
    assert!(status == 200 && served(&body), "{status} {body}");

    std::fs::write(&config, "").unwrap();
    wait_for_log(
        &augur,
        "problems=the new config has no rules, externalRules or resourceRules while the running one has 5 rules and 2 externalRules: an emptied file is refused (a truncated write?); restart augur to serve nothing",
    )
    .await;
    // Well after the next relist (2 s): still served, discovery included.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, body) = augur.get(path).await;
    assert!(status == 200 && served(&body), "{status} {body}");
    let (status, _) = augur.get("/apis/custom.metrics.k8s.io/v1beta1").await;
    assert_eq!(status, 200);

    let stdout = stdout_of(
        Command::new(env!("CARGO_BIN_EXE_augur"))
            .args(["check", "--config"])
            .arg(&config),
    );
    assert_eq!(
        stdout,
        format!(
            "{}: valid (0 rules, 0 externalRules, resourceRules absent)\nno rules or externalRules: augur would serve no custom or external metrics\n",
            config.display()
        )
    );
}

/// Every error the router itself makes is a `Status` too: a 405 (which had an empty body)
/// and an extractor's rejection (which was plain text), with the same code.
#[tokio::test]
async fn router_errors_are_status_bodies() {
    let app = app(r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#).await;
    let request = http::Request::post(
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue_messages_ready",
    )
    .body(axum::body::Body::empty())
    .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET,HEAD");
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "the server does not allow this method on the requested resource", "reason": "MethodNotAllowed", "code": 405})
    );
    for (path, message) in [
        (
            "/apis/custom.metrics.k8s.io/v1beta1/%FF/x",
            "Invalid URL: Invalid UTF-8 in `path`",
        ),
        (
            "/apis/metrics.k8s.io/v1beta1/namespaces/%FF/pods",
            "Invalid URL: Invalid UTF-8 in `namespace`",
        ),
    ] {
        let (code, body) = get(&app, path).await;
        assert_eq!(code, 400, "{path}");
        assert_eq!(
            body,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": "BadRequest", "code": 400}),
            "{path}"
        );
    }
}
