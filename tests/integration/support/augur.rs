//! The real `augur serve` binary for end-to-end tests: started on a free loopback port with
//! its own certificate directory, read over HTTPS with a client trusting that certificate
//! (reqwest) or through the real `kubectl`, with readers of its metric lists and /metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{free_port, stdout_of};

/// A running `augur serve` process, killed on drop.
pub(crate) struct Augur {
    child: Option<Child>,
    port: u16,
    /// `https://HOST:PORT` the requests go to.
    origin: String,
    dir: tempfile::TempDir,
    /// Its self-signed serving certificate.
    cert: PathBuf,
    client: reqwest::Client,
}

/// Spawns an augur `command` standalone (a CI pod must not flip cluster mode on), stdout
/// discarded, stderr into the file `log`.
pub(crate) fn spawn_standalone(command: &mut Command, log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    command
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// The (name, namespaced) pairs of an APIResourceList body, in order.
pub(crate) fn resource_names(body: &serde_json::Value) -> Vec<(String, bool)> {
    body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["namespaced"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// The tests' flags on top of `extra`: relist every 2 s (unless `extra` sets an interval),
/// metrics kept an hour, a 2 s backend timeout, config checked every second.
fn test_flags<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let interval = (!extra
        .iter()
        .any(|a| a.starts_with("--metrics-relist-interval")))
    .then_some("--metrics-relist-interval=2s");
    let mut flags = vec!["--metrics-max-age=1h"];
    flags.extend(interval);
    flags.extend(["--prometheus-timeout=2s", "--config-check-interval=1s"]);
    flags.extend_from_slice(extra);
    flags
}

impl Augur {
    /// Starts augur against `prometheus_url` with `config` and the tests' quick intervals
    /// (relist every 2 s, a 2 s backend timeout, config checked every second), and waits until
    /// /readyz is 200.
    pub(crate) async fn start(prometheus_url: &str, config: &Path, extra: &[&str]) -> Augur {
        Augur::serve(prometheus_url, config, &test_flags(extra)).await
    }

    /// Starts augur as [`Augur::start`] does (relisting every 2 s unless `extra` says
    /// otherwise) and returns once it serves HTTPS, ready or not.
    pub(crate) async fn spawn(prometheus_url: &str, config: &Path, extra: &[&str]) -> Augur {
        Augur::spawn_with(prometheus_url, config, &test_flags(extra)).await
    }

    /// Starts augur against `prometheus_url` with `config` and `flags`, every other flag at
    /// its default (as deployed), and waits until /readyz is 200.
    pub(crate) async fn serve(prometheus_url: &str, config: &Path, flags: &[&str]) -> Augur {
        let deadline = Instant::now() + Duration::from_secs(30);
        Augur::spawn_with(prometheus_url, config, flags)
            .await
            .ready(deadline)
            .await
    }

    /// Runs `augur serve` with `config`, `prometheus_url` and `flags` on a free port with
    /// its own certificate directory, up to its certificate.
    async fn spawn_with(prometheus_url: &str, config: &Path, flags: &[&str]) -> Augur {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_augur"));
        command
            .args(["serve", "--bind-address=127.0.0.1"])
            .arg(format!("--secure-port={port}"))
            .arg(format!("--config={}", config.display()))
            .arg(format!("--prometheus-url={prometheus_url}"))
            .arg(format!("--cert-dir={}", dir.path().join("certs").display()))
            .args(flags);
        let cert = dir.path().join("certs/apiserver.crt");
        Augur::launch_unready(command, dir, port, cert).await
    }

    /// Runs `command` (stderr to `dir`/augur.log, standalone), waits for its self-signed
    /// certificate `cert`, then until `https://localhost:port/readyz` is 200.
    pub(crate) async fn launch(
        command: Command,
        dir: tempfile::TempDir,
        port: u16,
        cert: PathBuf,
    ) -> Augur {
        let deadline = Instant::now() + Duration::from_secs(30);
        Augur::launch_unready(command, dir, port, cert)
            .await
            .ready(deadline)
            .await
    }

    /// Runs `command` as [`Augur::launch`] does, up to its certificate.
    async fn launch_unready(
        mut command: Command,
        dir: tempfile::TempDir,
        port: u16,
        cert: PathBuf,
    ) -> Augur {
        let child = spawn_standalone(&mut command, &dir.path().join("augur.log"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cert.exists() {
            let log = std::fs::read_to_string(dir.path().join("augur.log")).unwrap_or_default();
            assert!(
                Instant::now() < deadline,
                "augur never wrote its certificate; log:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The certificate is renamed into place complete, so it can be read at once.
        let client = client_trusting(&cert);
        let origin = format!("https://localhost:{port}");
        Augur::attach(child, origin, port, dir, cert, client)
    }

    /// An augur started some other way (e.g. by `podman run` in the foreground): `child` is
    /// killed on drop, its stderr is expected in `dir/augur.log`, requests go to `origin`
    /// through `client`, which trusts `cert`.
    pub(crate) fn attach(
        child: Child,
        origin: String,
        port: u16,
        dir: tempfile::TempDir,
        cert: PathBuf,
        client: reqwest::Client,
    ) -> Augur {
        Augur {
            child: Some(child),
            port,
            origin,
            dir,
            cert,
            client,
        }
    }

    /// Waits until /readyz answers 200; panics with the log at `deadline` or once the
    /// process exited.
    pub(crate) async fn ready(mut self, deadline: Instant) -> Augur {
        loop {
            if let Ok(r) = self.client.get(self.url("/readyz")).send().await
                && r.status() == 200
            {
                return self;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "augur never became ready ({}); log:\n{}",
                exited.map_or("timed out".to_owned(), |s| format!("exited with {s}")),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The port augur serves HTTPS on (on loopback).
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// `https://localhost:PORT{path}` (or the origin given to [`Augur::attach`]).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// The process id, while it runs (benches/hpas.rs reads its CPU time and memory).
    #[allow(dead_code)]
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// augur's self-signed serving certificate.
    pub(crate) fn cert(&self) -> PathBuf {
        self.cert.clone()
    }

    /// The HTTPS client trusting augur's certificate.
    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// What augur wrote to stderr so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("augur.log")).unwrap_or_default()
    }

    /// GET → (status, JSON body).
    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    /// A kubeconfig for kubectl pointing at this augur, trusting its self-signed cert.
    pub(crate) fn kubeconfig(&self) -> PathBuf {
        let path = self.dir.path().join("kubeconfig");
        let cert = &self.cert;
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: augur\n  cluster:\n    server: https://localhost:{}\n    certificate-authority: {}\ncontexts:\n- name: augur\n  context: {{cluster: augur, user: test}}\ncurrent-context: augur\nusers:\n- name: test\n  user: {{token: augur-test}}\n",
            self.port,
            cert.display()
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `kubectl get --raw PATH` → parsed stdout.
    pub(crate) fn kubectl_raw(&self, path: &str) -> Value {
        let stdout = stdout_of(
            Command::new("/usr/bin/kubectl")
                .arg(format!("--kubeconfig={}", self.kubeconfig().display()))
                .args(["get", "--raw", path]),
        );
        serde_json::from_str(&stdout).unwrap()
    }
}

impl Drop for Augur {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An HTTPS client (10 s timeout) trusting only the PEM certificate at `cert`.
pub(crate) fn client_trusting(cert: &Path) -> reqwest::Client {
    client_builder_trusting(cert).build().unwrap()
}

/// A client builder (10 s timeout) trusting only the PEM certificates of `cert`, for
/// clients that need more (e.g. resolving a Service name to loopback).
pub(crate) fn client_builder_trusting(cert: &Path) -> reqwest::ClientBuilder {
    let pem = std::fs::read_to_string(cert).unwrap();
    augur::testing::https_client(&pem, None).timeout(Duration::from_secs(10))
}

/// A Kubernetes quantity string as a number (`433m`, `2`, `1500k`).
pub(crate) fn quantity(v: &Value) -> f64 {
    parse_quantity(v).unwrap_or_else(|| panic!("not a quantity: {v}"))
}

/// [`quantity`], or None when `v` is not one.
pub(crate) fn parse_quantity(v: &Value) -> Option<f64> {
    let text = v.as_str()?;
    let (number, scale) = match text.char_indices().last() {
        Some((i, 'm')) => (&text[..i], 1e-3),
        Some((i, 'k')) => (&text[..i], 1e3),
        Some((i, 'M')) => (&text[..i], 1e6),
        _ => (text, 1.0),
    };
    Some(number.parse::<f64>().ok()? * scale)
}

/// augur's own /metrics text.
pub(crate) async fn metrics(augur: &Augur) -> String {
    match augur.get("/metrics").await {
        (200, Value::String(text)) => text,
        other => panic!("/metrics: {other:?}"),
    }
}

/// The value of the first /metrics line of `text` starting with `prefix`.
pub(crate) fn metric_value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// Waits (up to 60 s) until a /metrics line starts with `prefix`; returns its value.
pub(crate) async fn wait_metric(augur: &Augur, prefix: &str) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = metrics(augur).await;
        if let Some(v) = metric_value(&text, prefix) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "no {prefix:?} in /metrics:\n{text}\nlog:\n{}",
            augur.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Replaces the value of every key of `keys` (e.g. `timestamp`) anywhere in `value` with "T",
/// after checking it is RFC 3339 within `max_skew` of now, so bodies compare exactly.
pub(crate) fn normalise_times(value: &mut Value, keys: &[&str], max_skew: Duration) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if keys.contains(&key.as_str()) {
                    let text = v.as_str().unwrap_or_default();
                    let at = humantime::parse_rfc3339(text)
                        .unwrap_or_else(|e| panic!("{key} {text:?}: {e}"));
                    let skew = std::time::SystemTime::now()
                        .duration_since(at)
                        .unwrap_or_else(|e| e.duration());
                    assert!(skew < max_skew, "{key} {text} is {skew:?} away from now");
                    *v = Value::String("T".into());
                } else {
                    normalise_times(v, keys, max_skew);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| normalise_times(item, keys, max_skew)),
        _ => {}
    }
}

/// `(name or labels, value)` of every item of a metric list.
pub(crate) async fn items(augur: &Augur, path: &str) -> Vec<(String, f64)> {
    let (status, body) = augur.get(path).await;
    assert_eq!(status, 200, "{path}: {body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let name = i["describedObject"]["name"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| i["metricLabels"].to_string());
            (name, quantity(&i["value"]))
        })
        .collect()
}
