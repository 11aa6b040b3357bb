//! Test support: real Prometheus and VictoriaMetrics on loopback ports with fixture data, free
//! ports, commands run to success; submodules hold the augur binary harness, the
//! kube-apiserver double and pieces of its answers, background servers and forecast gauges.
//!
//! Needs `/usr/bin/prometheus`, `/usr/bin/promtool` and `/usr/bin/victoria-metrics` (Debian
//! packages `prometheus` and `victoria-metrics`; `.ci/setup` installs them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod apiserver_double;
mod augur;
mod background;
mod gauges;
mod kube_answers;

pub(crate) use apiserver_double::ApiServerDouble;
pub(crate) use background::Background;

/// Read by benches/hpas.rs, which records a wrong answer instead of panicking.
#[allow(unused_imports)]
pub(crate) use augur::parse_quantity;
pub(crate) use augur::{
    Augur, client_builder_trusting, client_trusting, items, metric_value, metrics, normalise_times,
    quantity, resource_names, spawn_standalone, wait_metric,
};
pub(crate) use gauges::{EXTERNAL, gauge, gauge_rule, now_aligned};
pub(crate) use kube_answers::{
    api_resource, core_versions, metadata_list, partial_metadata, watch_response,
};

/// Prometheus server binary.
pub(crate) const PROMETHEUS: &str = "/usr/bin/prometheus";
/// promtool, for backfilling blocks.
pub(crate) const PROMTOOL: &str = "/usr/bin/promtool";
/// VictoriaMetrics single-node binary.
pub(crate) const VICTORIA_METRICS: &str = "/usr/bin/victoria-metrics";

/// How long a server may take to become ready before the test panics.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Sample spacing of the fixture.
pub(crate) const STEP_SECS: u64 = 15;
/// Fixture length: 20 minutes, i.e. `SAMPLES` samples per series.
pub(crate) const SPAN_SECS: u64 = 20 * 60;
/// Samples per series (both ends included).
pub(crate) const SAMPLES: u64 = SPAN_SECS / STEP_SECS + 1;

/// A free loopback port (bound then released; a race with other processes is unlikely).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `command` to success and returns its stdout; panics with the command, its stdout
/// and its stderr when it fails.
pub(crate) fn stdout_of(mut command: impl std::borrow::BorrowMut<Command>) -> String {
    let command = command.borrow_mut();
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e} (run .ci/setup)"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// One counter or gauge series of the fixture.
#[derive(Debug, Clone)]
pub(crate) struct FixtureSeries {
    /// Metric (sample) name.
    pub(crate) name: &'static str,
    /// Labels, without `__name__`.
    pub(crate) labels: Vec<(&'static str, &'static str)>,
    /// Value at the first sample.
    pub(crate) initial: f64,
    /// Increase per second (0 for gauges).
    pub(crate) rate: f64,
}

impl FixtureSeries {
    /// Value at the `i`-th sample (exact in f64: integers or halves).
    pub(crate) fn value_at(&self, i: u64) -> f64 {
        self.initial + self.rate * (i * STEP_SECS) as f64
    }

    /// One line per sample from `start` (Unix seconds): `name{labels} value timestamp`, the
    /// timestamp in seconds times `scale` (1000 for milliseconds).
    fn write_samples(&self, out: &mut String, start: u64, scale: u64) {
        let labels = self.label_text();
        for i in 0..SAMPLES {
            let ts = (start + i * STEP_SECS) * scale;
            writeln!(out, "{}{} {} {}", self.name, labels, self.value_at(i), ts).unwrap();
        }
    }

    fn label_text(&self) -> String {
        let inner: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        format!("{{{}}}", inner.join(","))
    }
}

/// One metric family of the fixture: OpenMetrics type and its series.
#[derive(Debug, Clone)]
pub(crate) struct FixtureFamily {
    /// Family name (`http_requests` for the counter `http_requests_total`).
    pub(crate) family: &'static str,
    /// OpenMetrics type: `counter`, `gauge` or `unknown`.
    pub(crate) kind: &'static str,
    /// The series.
    pub(crate) series: Vec<FixtureSeries>,
}

/// The deterministic data set every backend test runs against.
///
/// Samples every 15 s for the 20 minutes ending at [`Fixture::end`] (`now` aligned down to
/// 15 s), 81 samples per series. Values at any instant query time in `[start, end]`:
///
/// | series | kind | value |
/// |---|---|---|
/// | `http_requests_total{namespace="default",pod="web-1",service="web"}` | counter | 1 req/s, from 1000 |
/// | `http_requests_total{namespace="default",pod="web-2",service="web"}` | counter | 2 req/s, from 1000 |
/// | `http_requests_total{namespace="default",pod="web-3",service="web"}` | counter | 4 req/s, from 1000 |
/// | `http_requests_total{namespace="other",pod="other-1",service="other"}` | counter | 8 req/s, from 1000 |
/// | `queue_messages_ready{namespace="default",queue="orders"}` | gauge | 50 |
/// | `queue_messages_ready{namespace="default",queue="payments"}` | gauge | 7 |
/// | `nginx_ingress_controller_requests{exported_namespace="default",ingress="web",namespace="default"}` | counter (type unknown in OpenMetrics, no `_total`) | 10 req/s, from 0 |
/// | `node_load1{node="node-a"}` | gauge | 0.5 |
/// | `node_load1{node="node-b"}` | gauge | 1.5 |
/// | `namespace_budget{namespace="default"}` | gauge | 3 |
///
/// So at `end`: `sum(rate(http_requests_total{namespace="default"}[2m])) by (pod)` is
/// web-1 = 1, web-2 = 2, web-3 = 4 (total 7); `sum(queue_messages_ready)` = 57;
/// `rate(nginx_ingress_controller_requests[2m])` = 10; `sum(node_load1)` = 2;
/// `http_requests_total{pod="web-1"}` = 1000 + 1200 = 2200 (web-2 3400, web-3 5800).
#[derive(Debug, Clone)]
pub(crate) struct Fixture {
    /// Time of the first sample.
    pub(crate) start: SystemTime,
    /// Time of the last sample (`now` aligned down to 15 s).
    pub(crate) end: SystemTime,
    /// The families, in output order.
    pub(crate) families: Vec<FixtureFamily>,
}

/// `tests/fixtures/api-rules.yaml`: rules serving the fixture's metrics (custom and external).
pub(crate) fn rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/api-rules.yaml")
}

/// Builds the fixture ending at `now` aligned down to 15 s. See [`Fixture`] for the values.
pub(crate) fn fixture_series(now: SystemTime) -> Fixture {
    let now_secs = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let end_secs = now_secs - now_secs % STEP_SECS;
    let start_secs = end_secs - SPAN_SECS;
    let counter = |pod, ns, service, rate| FixtureSeries {
        name: "http_requests_total",
        labels: vec![("namespace", ns), ("pod", pod), ("service", service)],
        initial: 1000.0,
        rate,
    };
    let gauge = |name, labels, value| FixtureSeries {
        name,
        labels,
        initial: value,
        rate: 0.0,
    };
    let families = vec![
        FixtureFamily {
            family: "http_requests",
            kind: "counter",
            series: vec![
                counter("web-1", "default", "web", 1.0),
                counter("web-2", "default", "web", 2.0),
                counter("web-3", "default", "web", 4.0),
                counter("other-1", "other", "other", 8.0),
            ],
        },
        FixtureFamily {
            family: "queue_messages_ready",
            kind: "gauge",
            series: vec![
                gauge(
                    "queue_messages_ready",
                    vec![("namespace", "default"), ("queue", "orders")],
                    50.0,
                ),
                gauge(
                    "queue_messages_ready",
                    vec![("namespace", "default"), ("queue", "payments")],
                    7.0,
                ),
            ],
        },
        FixtureFamily {
            // A counter without the `_total` suffix: OpenMetrics only allows that as `unknown`.
            family: "nginx_ingress_controller_requests",
            kind: "unknown",
            series: vec![FixtureSeries {
                name: "nginx_ingress_controller_requests",
                labels: vec![
                    ("exported_namespace", "default"),
                    ("ingress", "web"),
                    ("namespace", "default"),
                ],
                initial: 0.0,
                rate: 10.0,
            }],
        },
        FixtureFamily {
            family: "node_load1",
            kind: "gauge",
            series: vec![
                gauge("node_load1", vec![("node", "node-a")], 0.5),
                gauge("node_load1", vec![("node", "node-b")], 1.5),
            ],
        },
        FixtureFamily {
            family: "namespace_budget",
            kind: "gauge",
            series: vec![gauge(
                "namespace_budget",
                vec![("namespace", "default")],
                3.0,
            )],
        },
    ];
    Fixture {
        start: UNIX_EPOCH + Duration::from_secs(start_secs),
        end: UNIX_EPOCH + Duration::from_secs(end_secs),
        families,
    }
}

impl Fixture {
    fn start_secs(&self) -> u64 {
        self.start.duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    /// All series, in output order.
    pub(crate) fn all_series(&self) -> impl Iterator<Item = &FixtureSeries> {
        self.families.iter().flat_map(|f| f.series.iter())
    }

    /// OpenMetrics text for `promtool tsdb create-blocks-from openmetrics` (seconds timestamps,
    /// `# TYPE` per family, each series contiguous, ends with `# EOF`).
    pub(crate) fn openmetrics(&self) -> String {
        let mut out = String::new();
        let start = self.start_secs();
        for family in &self.families {
            writeln!(out, "# TYPE {} {}", family.family, family.kind).unwrap();
            for series in &family.series {
                series.write_samples(&mut out, start, 1);
            }
        }
        out.push_str("# EOF\n");
        out
    }

    /// Prometheus exposition text with millisecond timestamps, for VictoriaMetrics'
    /// `/api/v1/import/prometheus`.
    pub(crate) fn prometheus_text(&self) -> String {
        let mut out = String::new();
        let start = self.start_secs();
        for series in self.all_series() {
            series.write_samples(&mut out, start, 1000);
        }
        out
    }
}

/// A minimal blocking HTTP/1.0 call to 127.0.0.1 (no chunked encoding, connection closed at
/// the end). Returns `(status, body)`, or `None` when the server is not reachable.
pub(crate) fn http_call(
    port: u16,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> Option<(u16, String)> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let head = format!(
        "{method} {path_and_query} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_owned()))
}

/// Polls `ready` until it holds, or panics with `what` and the process' stderr.
fn wait_until(what: &str, stderr_file: &Path, child: &mut Child, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if ready() {
            return;
        }
        let exited = child.try_wait().ok().flatten();
        if exited.is_some() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = std::fs::read_to_string(stderr_file).unwrap_or_default();
            let tail: String = {
                let lines: Vec<&str> = stderr.lines().collect();
                lines[lines.len().saturating_sub(40)..].join("\n")
            };
            match exited {
                Some(status) => panic!("{what}: process exited with {status}; stderr:\n{tail}"),
                None => panic!("{what}: not ready within {READY_TIMEOUT:?}; stderr:\n{tail}"),
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn kill_child(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// A real Prometheus on a loopback port, serving backfilled fixture data.
pub(crate) struct TestPrometheus {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    /// Serving HTTPS (`dir`/web.yml) instead of HTTP.
    tls: bool,
    /// Extra command-line flags.
    args: Vec<String>,
}

/// Writes `openmetrics` to `dir`/`name` and turns it into blocks in `data` with promtool
/// (`create-blocks-from openmetrics`), then deletes the text.
fn backfill(dir: &Path, name: &str, openmetrics: &str, data: &Path) {
    let input = dir.join(name);
    std::fs::write(&input, openmetrics).unwrap();
    stdout_of(
        Command::new(PROMTOOL)
            .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
            .arg(&input)
            .arg(data),
    );
    std::fs::remove_file(&input).unwrap();
}

impl TestPrometheus {
    /// Backfills `openmetrics` with promtool and starts Prometheus on it (no scrape targets,
    /// 50 y retention); returns once `/-/ready` answers 200.
    pub(crate) fn start(openmetrics: &str) -> TestPrometheus {
        TestPrometheus::start_with_tls(openmetrics, None)
    }

    /// [`TestPrometheus::start`] serving HTTPS with `(certificate, key)` PEM (Prometheus's
    /// `--web.config.file` `tls_server_config`); ready once it logs so.
    pub(crate) fn start_with_tls(openmetrics: &str, tls: Option<(&str, &str)>) -> TestPrometheus {
        TestPrometheus::start_from(std::iter::once(openmetrics.to_owned()), tls, &[])
    }

    /// Backfills each of `chunks` (OpenMetrics text, `# EOF` included) with its own promtool
    /// run, so data larger than memory can be loaded a piece at a time (a chunk holding one
    /// aligned 2 h window becomes one block), and starts Prometheus on them with `args` added.
    pub(crate) fn start_from(
        chunks: impl IntoIterator<Item = String>,
        tls: Option<(&str, &str)>,
        args: &[&str],
    ) -> TestPrometheus {
        let dir = tempfile::Builder::new()
            .prefix("augur-prom-")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        for chunk in chunks {
            backfill(dir.path(), "fixture.om", &chunk, &data);
        }
        std::fs::write(
            dir.path().join("prometheus.yml"),
            "global:\n  evaluation_interval: 1h\n",
        )
        .unwrap();
        if let Some((cert, key)) = tls {
            std::fs::write(dir.path().join("server.crt"), cert).unwrap();
            std::fs::write(dir.path().join("server.key"), key).unwrap();
            std::fs::write(
                dir.path().join("web.yml"),
                "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
            )
            .unwrap();
        }
        let mut prometheus = TestPrometheus {
            dir,
            port: free_port(),
            child: None,
            tls: tls.is_some(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        };
        prometheus.spawn();
        prometheus
    }

    /// The process id, while it runs (benches/hpas.rs reads its CPU time and memory).
    #[allow(dead_code)]
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn spawn(&mut self) {
        let stderr_file = self.dir.path().join("prometheus.stderr");
        let stderr = File::create(&stderr_file).unwrap();
        let mut command = Command::new(PROMETHEUS);
        if self.tls {
            command.arg(format!(
                "--web.config.file={}",
                self.dir.path().join("web.yml").display()
            ));
        }
        let mut child = command
            .arg(format!(
                "--config.file={}",
                self.dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                self.dir.path().join("data").display()
            ))
            .arg("--storage.tsdb.retention.time=50y")
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {PROMETHEUS} (see .ci/setup): {e}"));
        let port = self.port;
        let tls = self.tls;
        wait_until("prometheus", &stderr_file, &mut child, || {
            if tls {
                std::fs::read_to_string(&stderr_file)
                    .is_ok_and(|log| log.contains("Server is ready to receive web requests"))
            } else {
                matches!(http_call(port, "GET", "/-/ready", b""), Some((200, _)))
            }
        });
        self.child = Some(child);
    }

    /// Base URL, `http://127.0.0.1:PORT` (`https://localhost:PORT` with TLS).
    pub(crate) fn url(&self) -> String {
        if self.tls {
            format!("https://localhost:{}", self.port)
        } else {
            format!("http://127.0.0.1:{}", self.port)
        }
    }

    /// Kills the process (SIGKILL) and waits for it; the port then refuses connections.
    pub(crate) fn kill(&mut self) {
        kill_child(&mut self.child);
    }

    /// Kills the process if running and starts it again on the same port and data.
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for TestPrometheus {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}

/// Number of samples and first/last millisecond timestamps of exposition text.
fn sample_stats(text: &str) -> (usize, u64, u64) {
    let timestamps: Vec<u64> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.rsplit(' ')
                .next()
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("sample line without a millisecond timestamp: {l}"))
        })
        .collect();
    let first = timestamps.iter().copied().min().unwrap_or(0);
    let last = timestamps.iter().copied().max().unwrap_or(0);
    (timestamps.len(), first, last)
}

/// A real VictoriaMetrics single-node on a loopback port, with imported fixture data.
pub(crate) struct TestVictoria {
    _dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl TestVictoria {
    /// Starts VictoriaMetrics (default `-search.maxQueryLen=16384`, response cache off,
    /// no latency offset), imports `prometheus_text` (exposition lines with millisecond
    /// timestamps) and returns once every imported sample is visible to queries.
    pub(crate) fn start(prometheus_text: &str) -> TestVictoria {
        let dir = tempfile::Builder::new()
            .prefix("augur-vm-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let stderr_file = dir.path().join("vm.stderr");
        let stderr = File::create(&stderr_file).unwrap();
        let mut child = Command::new(VICTORIA_METRICS)
            .arg(format!(
                "-storageDataPath={}",
                dir.path().join("data").display()
            ))
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg("-retentionPeriod=100y")
            .arg("-search.disableCache")
            .arg("-search.latencyOffset=0s")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {VICTORIA_METRICS} (see .ci/setup): {e}"));
        wait_until("victoria-metrics health", &stderr_file, &mut child, || {
            matches!(http_call(port, "GET", "/health", b""), Some((200, _)))
        });
        let imported = http_call(
            port,
            "POST",
            "/api/v1/import/prometheus",
            prometheus_text.as_bytes(),
        );
        assert!(
            matches!(imported, Some((200..=299, _))),
            "victoria-metrics import failed: {imported:?}"
        );
        // Import returns before the rows are searchable: flush, then wait until every imported
        // sample (the newest included) is counted by a query.
        let (samples, first_ms, last_ms) = sample_stats(prometheus_text);
        let window_secs = (last_ms - first_ms) / 1000 + 1;
        let query = format!(r#"sum(count_over_time({{__name__=~".+"}}[{window_secs}s]))"#);
        let path = format!(
            "/api/v1/query?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("query", &query)
                .append_pair("time", &format!("{}.{:03}", last_ms / 1000, last_ms % 1000))
                .finish()
        );
        let expected = format!(r#""{samples}"]"#);
        wait_until(
            "victoria-metrics samples visible",
            &stderr_file,
            &mut child,
            || {
                let _ = http_call(port, "GET", "/internal/force_flush", b"");
                matches!(http_call(port, "GET", &path, b""), Some((200, body)) if body.contains(&expected))
            },
        );
        TestVictoria {
            _dir: dir,
            port,
            child: Some(child),
        }
    }

    /// Base URL, `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for TestVictoria {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}
