//! The container image end to end: the real `.ci/image` packages the dev binary with the
//! Containerfile, and podman runs it in front of the real test Prometheus the way the
//! manifests' Deployment runs it (its args, user, read-only root filesystem and mounts), with
//! kube-prometheus' flags-only command line, and with the Helm chart's list that starts with
//! `/adapter`; each serves a custom metric, its forecast twin and an ONNX model's twin (ONNX
//! Runtime loaded inside the image) through HTTPS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use augur::forecast::{History, Model as _, Target};
use k8s_openapi::api::apps::v1::Deployment;

use crate::support::{
    Augur, EXTERNAL, TestPrometheus, client_builder_trusting, client_trusting, fixture_series,
    free_port, gauge, gauge_rule, items, metric_value, metrics, now_aligned, resource_names,
    stdout_of, wait_metric,
};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `podman --runtime runc ARGS` (Debian's podman and runc, installed by `.ci/podman`).
fn podman<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> Command {
    let mut command = Command::new("/usr/bin/podman");
    command.args(["--runtime", "runc"]).args(args);
    command
}

/// The tag of the image the tests share, and how many of them hold it.
static IMAGE: Mutex<(usize, Option<String>)> = Mutex::new((0, None));

/// The image under test: the dev binary packaged by the real `.ci/image`. Tests that run
/// at the same time share it; the last one to let go removes it.
struct Image {
    tag: String,
}

impl Image {
    fn get() -> Image {
        let mut shared = IMAGE.lock().unwrap_or_else(PoisonError::into_inner);
        if shared.1.is_none() {
            remove_leftovers();
            let tag = format!("localhost/augur-test:{}", std::process::id());
            let mut build = Command::new("bash");
            build.arg(repo().join(".ci/image")).args([
                "--binary",
                env!("CARGO_BIN_EXE_augur"),
                "--tag",
                &tag,
            ]);
            assert_eq!(stdout_of(build).trim(), tag, ".ci/image prints the tag");
            shared.1 = Some(tag);
        }
        shared.0 += 1;
        Image {
            tag: shared.1.clone().unwrap(),
        }
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let mut shared = IMAGE.lock().unwrap_or_else(PoisonError::into_inner);
        shared.0 -= 1;
        if shared.0 == 0 {
            let _ = podman(["rmi", "--force", &self.tag]).output();
            shared.1 = None;
        }
    }
}

/// Removes the test images and containers of test runs that are gone (killed before their
/// drops ran): both are named after the test process' id.
fn remove_leftovers() {
    let gone = |pid: &str| !Path::new("/proc").join(pid).exists();
    let containers = stdout_of(podman([
        "ps",
        "--all",
        "--filter=name=^augur-test-",
        "--format={{.Names}}",
    ]));
    for name in containers.lines() {
        let pid = name
            .strip_prefix("augur-test-")
            .and_then(|n| n.split('-').next());
        if pid.is_some_and(gone) {
            let _ = podman(["rm", "--force", "--time=0", name]).output();
        }
    }
    let tags = stdout_of(podman([
        "images",
        "--filter=reference=localhost/augur-test",
        "--format={{.Tag}}",
    ]));
    for pid in tags.lines().filter(|pid| gone(pid)) {
        let _ = podman(["rmi", "--force", &format!("localhost/augur-test:{pid}")]).output();
    }
}

/// Removes the named container on drop, whatever state it is in.
struct Removal(String);

impl Drop for Removal {
    fn drop(&mut self) {
        let _ = podman(["rm", "--force", "--time=0", &self.0]).output();
    }
}

/// A container of the image, running augur in the foreground of `podman run` (its output
/// in the log); removed on drop.
struct Running {
    augur: Augur,
    _removal: Removal,
}

/// How the test's client trusts the container's serving certificate.
enum Trust {
    /// A CA file on the host, for a certificate naming `server_name` (as kube-aggregator
    /// trusts the APIService's `caBundle` for `<service>.<namespace>.svc`).
    Ca { file: PathBuf, server_name: String },
    /// The self-signed certificate augur writes inside the container at this path.
    SelfSigned(&'static str),
}

impl Running {
    /// `podman run --network host FLAGS IMAGE ARGS` with the log in `dir/augur.log`; returns
    /// once /readyz answers 200 on `port`.
    async fn start(
        image: &Image,
        style: &str,
        dir: tempfile::TempDir,
        port: u16,
        flags: &[String],
        args: &[String],
        trust: Trust,
    ) -> Running {
        let name = format!("augur-test-{}-{style}", std::process::id());
        let removal = Removal(name.clone());
        let log = std::fs::File::create(dir.path().join("augur.log")).unwrap();
        let mut child = podman(["run", "--rm", "--name", &name, "--network=host"])
            .args(flags)
            .arg(&image.tag)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let (origin, client, cert) = match trust {
            Trust::Ca { file, server_name } => {
                let client = client_builder_trusting(&file)
                    .resolve(&server_name, ([127, 0, 0, 1], port).into())
                    .build()
                    .unwrap();
                (format!("https://{server_name}:{port}"), client, file)
            }
            Trust::SelfSigned(path) => {
                let cert = dir.path().join("served.crt");
                while !podman(["cp", &format!("{name}:{path}")])
                    .arg(&cert)
                    .stderr(Stdio::null())
                    .status()
                    .unwrap()
                    .success()
                {
                    let log = std::fs::read_to_string(dir.path().join("augur.log"));
                    let exited = child.try_wait().unwrap();
                    assert!(
                        exited.is_none() && Instant::now() < deadline,
                        "{path} never appeared in the container ({exited:?}); log:\n{}",
                        log.unwrap_or_default()
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                let client = client_trusting(&cert);
                (format!("https://localhost:{port}"), client, cert)
            }
        };
        let augur = Augur::attach(child, origin, port, dir, cert, client)
            .ready(deadline)
            .await;
        Running {
            augur,
            _removal: removal,
        }
    }
}

/// The test's rules: per-pod request rates with a persistence twin (headroom 1), and an
/// external gauge whose twin is `models/default.onnx`, the forecast alone.
fn rules() -> String {
    let onnx = gauge_rule(
        "onnx_load",
        "{model: default.onnx, history: 8d, serve: forecast, fallbackWindow: 0}",
    );
    format!(
        r#"rules:
- seriesQuery: 'http_requests_total{{namespace!="",pod!=""}}'
  resources:
    overrides:
      namespace: {{resource: namespace}}
      pod: {{resource: pod}}
  name: {{matches: "^(.*)_total$", as: "${{1}}_per_second"}}
  metricsQuery: 'sum(rate(<<.Series>>{{<<.LabelMatchers>>}}[2m])) by (<<.GroupBy>>)'
  forecast: {{model: persistence, history: 10m, horizon: 5m, headroom: 1, fallbackWindow: 0}}
externalRules:
{onnx}"#
    )
}

/// The value of the constant gauge `onnx_load`.
const ONNX_LOAD: f64 = 3.0;

/// The support fixture (pods web-1..3 at 1, 2 and 4 req/s in namespace default) ending 5
/// minutes from now, so the rates are exact however long the image and containers take to
/// start, plus `onnx_load{namespace="demo"}` = 3 every minute from 8 days and an hour ago.
fn start_prometheus() -> TestPrometheus {
    let now = now_aligned();
    let end = std::time::SystemTime::now() + Duration::from_secs(300);
    let fixture = fixture_series(end).openmetrics();
    let mut text = fixture.strip_suffix("# EOF\n").unwrap().to_owned();
    gauge(
        &mut text,
        "onnx_load",
        now - 8 * 86_400 - 3600,
        now + 3600,
        |_| Some(ONNX_LOAD),
    );
    text.push_str("# EOF\n");
    TestPrometheus::start(&text)
}

/// A directory for one container: its log, and `config/` (world-readable, as a mounted
/// ConfigMap is) holding the rules as `config.yaml` and the model they name.
fn container_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir(&config).unwrap();
    std::fs::write(config.join("config.yaml"), rules()).unwrap();
    std::fs::copy(
        repo().join("models/default.onnx"),
        config.join("default.onnx"),
    )
    .unwrap();
    world_readable(dir.path());
    dir
}

/// Makes `dir` and everything below it readable (and directories searchable) by any uid,
/// as the kubelet mounts a ConfigMap or Secret (defaultMode 0644).
fn world_readable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            world_readable(&path);
        } else {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}

/// What `models/default.onnx`, run in this process by ONNX Runtime, forecasts from a
/// history of [`ONNX_LOAD`] every minute whose last bucket starts at `origin`.
fn onnx_reference(origin: i64) -> f64 {
    let model = augur::forecast::onnx::OnnxModel::load(repo().join("models/default.onnx"))
        .unwrap_or_else(|e| panic!("{e} (run .ci/setup)"));
    let buckets = 8 * 1440;
    let history = History::new(
        origin - (buckets - 1) * 60,
        60,
        vec![ONNX_LOAD; buckets as usize],
    );
    let fitted = model.fit(&history, &[Target::Max(10)]).unwrap();
    fitted.predict(&history).unwrap()[0]
}

const PODS: &str = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*";

/// The checks every argument style must pass.
async fn serves_a_metric_and_its_twins(augur: &Augur) {
    // Discovery: each metric next to its twin.
    let (status, body) = augur.get("/apis/custom.metrics.k8s.io/v1beta1").await;
    assert_eq!(status, 200, "{body}");
    let names: Vec<(String, bool)> = [
        ("namespaces/http_requests_per_second", false),
        ("namespaces/http_requests_per_second_forecast", false),
        ("pods/http_requests_per_second", true),
        ("pods/http_requests_per_second_forecast", true),
    ]
    .iter()
    .map(|(n, b)| ((*n).to_owned(), *b))
    .collect();
    assert_eq!(resource_names(&body), names);
    let (status, body) = augur.get("/apis/external.metrics.k8s.io/v1beta1").await;
    assert_eq!(status, 200, "{body}");
    let mut names: Vec<String> = resource_names(&body).into_iter().map(|(n, _)| n).collect();
    names.sort_unstable();
    assert_eq!(names, ["onnx_load", "onnx_load_forecast"]);

    // The live custom metric: web-1..3 at 1, 2 and 4 req/s.
    let live = items(augur, &format!("{PODS}/http_requests_per_second")).await;
    let expected = [("web-1", 1.0), ("web-2", 2.0), ("web-3", 4.0)];
    assert_eq!(live.len(), 3, "{live:?}");
    for ((name, value), (want_name, want)) in live.iter().zip(expected) {
        assert_eq!(name, want_name);
        assert!((value - want).abs() < 0.002, "{name}: {value} vs {want}");
    }

    // Its twin: persistence of the pods' sum (7) doubled by the headroom, spread over the
    // three pods once the first forecast is made.
    let twin = format!("{PODS}/http_requests_per_second_forecast");
    items(augur, &twin).await;
    let sum = r#"augur_forecast_value{rule="rules[0]",metric="http_requests_per_second_forecast",namespace="default",object="sum"} "#;
    let forecast = wait_metric(augur, sum).await;
    assert!(
        (forecast - 14.0).abs() < 0.01,
        "forecast of the sum {forecast}"
    );
    let served = items(augur, &twin).await;
    let names: Vec<&str> = served.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["web-1", "web-2", "web-3"]);
    for (name, value) in &served {
        assert!(
            (value - 14.0 / 3.0).abs() < 0.002,
            "{name}: twin {value}, expected 14/3"
        );
    }

    // The ONNX twin: ONNX Runtime inside the image forecasts what it does in this process.
    let onnx_twin = format!("{EXTERNAL}/onnx_load_forecast");
    items(augur, &onnx_twin).await;
    let value = r#"augur_forecast_value{rule="externalRules[0]",metric="onnx_load_forecast",namespace="demo",object="all"} "#;
    let forecast = wait_metric(augur, value).await;
    let reference = onnx_reference(now_aligned() - 60);
    assert!(
        (forecast - reference).abs() <= 1e-3 * reference,
        "ONNX forecast in the image {forecast}, in this process {reference}"
    );
    let served = items(augur, &onnx_twin).await;
    assert_eq!(served.len(), 1, "{served:?}");
    assert_eq!(served[0].0, "{}");
    assert!(
        (served[0].1 - forecast).abs() < 0.001,
        "served {served:?}, forecast {forecast}"
    );
    let from_forecast = r#"augur_forecast_served_total{rule="externalRules[0]",metric="onnx_load_forecast",source="forecast",reason=""} "#;
    let text = metrics(augur).await;
    assert!(
        metric_value(&text, from_forecast) >= Some(1.0),
        "the ONNX twin was not served from its forecast:\n{text}\nlog:\n{}",
        augur.log()
    );
}

/// The manifests' Deployment (manifests/base/deployment.yaml), translated to podman: its
/// user and group, read-only root filesystem, dropped capabilities, no privilege
/// escalation, and its volumes (the ConfigMap and Secret directories read-only, emptyDirs
/// as tmpfs); its args with the test's Prometheus and port. Returns the podman flags and
/// the args. The config goes where `--config` points, the Secret's files are the real
/// `augur certs` output.
fn as_the_manifests_run_it(dir: &Path, prometheus: &str, port: u16) -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(repo().join("manifests/base/deployment.yaml")).unwrap();
    let deployment: Deployment = serde_saphyr::from_str(&text).unwrap();
    let pod = deployment.spec.template.spec.unwrap();
    let container = &pod.containers[0];
    let pod_security = pod.security_context.unwrap();
    let mut flags = vec![format!(
        "--user={}:{}",
        pod_security.run_as_user.unwrap(),
        pod_security.run_as_group.unwrap()
    )];
    let security = container.security_context.clone().unwrap();
    if security.read_only_root_filesystem == Some(true) {
        flags.extend(["--read-only".into(), "--read-only-tmpfs=false".into()]);
    }
    if security.allow_privilege_escalation == Some(false) {
        flags.push("--security-opt=no-new-privileges".into());
    }
    for capability in security.capabilities.unwrap().drop.unwrap_or_default() {
        flags.push(format!("--cap-drop={capability}"));
    }

    let mut args = container.args.clone().unwrap();
    for arg in &mut args {
        if arg.starts_with("--prometheus-url=") {
            *arg = format!("--prometheus-url={prometheus}/");
        } else if arg.starts_with("--secure-port=") {
            *arg = format!("--secure-port={port}");
        }
    }
    args.push("--bind-address=127.0.0.1".into());
    let config_file = args
        .iter()
        .find_map(|a| a.strip_prefix("--config="))
        .map(PathBuf::from)
        .unwrap();

    let volumes = pod.volumes.unwrap();
    for mount in container.volume_mounts.clone().unwrap() {
        let volume = volumes.iter().find(|v| v.name == mount.name).unwrap();
        let host = dir.join(&mount.name);
        if volume.config_map.is_some() {
            assert_eq!(
                config_file.parent(),
                Some(Path::new(&mount.mount_path)),
                "--config is in the ConfigMap's directory"
            );
            std::fs::rename(dir.join("config"), &host).unwrap();
            let name = config_file.file_name().unwrap();
            std::fs::rename(host.join("config.yaml"), host.join(name)).unwrap();
        } else if volume.secret.is_some() {
            let out = Command::new(env!("CARGO_BIN_EXE_augur"))
                .args(["certs", "--out"])
                .arg(&host)
                .output()
                .unwrap();
            assert!(out.status.success(), "augur certs: {out:?}");
        } else if volume.empty_dir.is_some() {
            flags.push(format!("--tmpfs={}:rw,mode=1777", mount.mount_path));
            continue;
        } else {
            panic!("volume {} of a kind this test does not mount", volume.name);
        }
        flags.push(format!(
            "--volume={}:{}:ro",
            host.display(),
            mount.mount_path
        ));
    }
    world_readable(dir);
    (flags, args)
}

#[tokio::test]
async fn the_image_serves_as_the_manifests_run_it() {
    let image = Image::get();
    let prometheus = start_prometheus();
    let dir = container_dir();
    let port = free_port();
    let (flags, args) = as_the_manifests_run_it(dir.path(), &prometheus.url(), port);
    // The pod runs as uid 65532 with only its emptyDir (/tmp) writable.
    assert!(
        flags.contains(&"--user=65532:65532".to_owned()),
        "{flags:?}"
    );
    assert!(flags.contains(&"--read-only".to_owned()), "{flags:?}");
    let writable: Vec<&String> = flags.iter().filter(|f| f.starts_with("--tmpfs")).collect();
    assert_eq!(writable, ["--tmpfs=/tmp:rw,mode=1777"]);
    // kube-aggregator's view: the caBundle (ca.crt) for augur.augur.svc.
    let trust = Trust::Ca {
        file: dir.path().join("tls/ca.crt"),
        server_name: "augur.augur.svc".into(),
    };
    let running = Running::start(&image, "manifests", dir, port, &flags, &args, trust).await;
    serves_a_metric_and_its_twins(&running.augur).await;
}

/// Runs the image as a prometheus-adapter Deployment would (the manifests' hardening, the
/// config directory read-only at /etc/adapter) with `args(prometheus_url, port)`; augur
/// writes its self-signed certificate to `cert` inside the container.
async fn serves_with_prometheus_adapter_args(
    style: &str,
    cert: &'static str,
    args: impl FnOnce(&str, u16) -> Vec<String>,
) {
    let image = Image::get();
    let prometheus = start_prometheus();
    let dir = container_dir();
    let port = free_port();
    let flags = [
        "--user=65532:65532".to_owned(),
        "--read-only".to_owned(),
        "--read-only-tmpfs=false".to_owned(),
        "--tmpfs=/tmp:rw,mode=1777".to_owned(),
        "--cap-drop=all".to_owned(),
        "--security-opt=no-new-privileges".to_owned(),
        format!(
            "--volume={}:/etc/adapter:ro",
            dir.path().join("config").display()
        ),
    ];
    let args = args(&prometheus.url(), port);
    let trust = Trust::SelfSigned(cert);
    let running = Running::start(&image, style, dir, port, &flags, &args, trust).await;
    serves_a_metric_and_its_twins(&running.augur).await;
}

#[tokio::test]
async fn the_image_serves_with_kube_prometheus_flags_only() {
    // kube-prometheus' list (no subcommand), the certificate in the default --cert-dir,
    // relative to the image's working directory /tmp.
    let cert = "/tmp/apiserver.local.config/certificates/apiserver.crt";
    serves_with_prometheus_adapter_args("flags", cert, |prometheus, port| {
        vec![
            "--config=/etc/adapter/config.yaml".to_owned(),
            "--metrics-relist-interval=1m".to_owned(),
            format!("--prometheus-url={prometheus}/"),
            format!("--secure-port={port}"),
            "--bind-address=127.0.0.1".to_owned(),
        ]
    })
    .await;
}

#[tokio::test]
async fn the_image_serves_the_helm_charts_args_that_start_with_adapter() {
    // The prometheus-community chart's Deployment with its default values.
    let cert = "/tmp/cert/apiserver.crt";
    serves_with_prometheus_adapter_args("chart", cert, |prometheus, port| {
        vec![
            "/adapter".to_owned(),
            format!("--secure-port={port}"),
            "--cert-dir=/tmp/cert".to_owned(),
            "--logtostderr=true".to_owned(),
            format!("--prometheus-url={prometheus}"),
            "--metrics-relist-interval=1m".to_owned(),
            "--v=4".to_owned(),
            "--config=/etc/adapter/config.yaml".to_owned(),
            "--bind-address=127.0.0.1".to_owned(),
        ]
    })
    .await;
}

/// `ldd`'s paths of the libraries `file` links, the loader included.
fn linked(file: &Path) -> Vec<String> {
    let out = stdout_of({
        let mut ldd = Command::new("ldd");
        ldd.arg(file);
        ldd
    });
    out.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [_, "=>", path, ..] if path.starts_with('/') => Some((*path).to_owned()),
                [path, ..] if path.starts_with('/') => Some((*path).to_owned()),
                _ => None,
            }
        })
        .collect()
}

#[test]
fn the_image_holds_the_binary_and_only_what_it_needs() {
    let image = Image::get();
    let dir = tempfile::tempdir().unwrap();

    // The config: prometheus-adapter's entrypoint, uid 65532, /tmp as working directory,
    // ONNX Runtime named by ORT_DYLIB_PATH, the version from Cargo.toml.
    let inspect = stdout_of(podman(["image", "inspect", &image.tag]));
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let config = &inspect[0]["Config"];
    assert_eq!(config["Entrypoint"], serde_json::json!(["/adapter"]));
    assert_eq!(config["Cmd"], serde_json::Value::Null);
    assert_eq!(config["User"], "65532:65532");
    assert_eq!(config["WorkingDir"], "/tmp");
    assert_eq!(
        config["Labels"]["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    let env: Vec<&str> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"ORT_DYLIB_PATH=/usr/lib/augur/libonnxruntime.so"),
        "{env:?}"
    );

    // The files: the binary, what it and ONNX Runtime link, and nothing else (no shell).
    let name = format!("augur-test-{}-files", std::process::id());
    let _removal = Removal(name.clone());
    stdout_of(podman(["create", "--name", &name, &image.tag]));
    let tar = dir.path().join("rootfs.tar");
    let mut export = podman(["export", "--output"]);
    export.arg(&tar).arg(&name);
    stdout_of(export);
    let listing = stdout_of({
        let mut list = Command::new("tar");
        list.arg("--list").arg("--verbose").arg("--file").arg(&tar);
        list
    });
    let mut files = BTreeSet::new();
    for line in listing.lines() {
        let mode = line.split_whitespace().next().unwrap();
        let path = line
            .split_whitespace()
            .nth(5)
            .unwrap()
            .trim_start_matches("./");
        match &mode[..1] {
            "d" => {}
            "l" => {
                files.insert(format!("{path} -> {}", line.rsplit(" -> ").next().unwrap()));
            }
            _ => {
                files.insert(format!("{path} {}", &mode[1..]));
            }
        }
    }
    let ort = repo().join(".cache/onnxruntime/libonnxruntime.so.1.31.1");
    let mut expected: BTreeSet<String> = [
        "adapter rwxr-xr-x",
        "augur -> adapter",
        "etc/group rw-r--r--",
        "etc/nsswitch.conf rw-r--r--",
        "etc/passwd rw-r--r--",
        "etc/ssl/certs/ca-certificates.crt rw-r--r--",
        "usr/lib/augur/libonnxruntime.so rwxr-xr-x",
    ]
    .map(str::to_owned)
    .into();
    for library in linked(Path::new(env!("CARGO_BIN_EXE_augur")))
        .into_iter()
        .chain(linked(&ort))
    {
        let mode = std::fs::metadata(&library).unwrap();
        let mode = if std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o111 != 0 {
            "rwxr-xr-x"
        } else {
            "rw-r--r--"
        };
        expected.insert(format!("{} {mode}", library.trim_start_matches('/')));
    }
    assert_eq!(files, expected);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("drwxrwxrwt") && l.ends_with(" tmp/")),
        "/tmp is a sticky world-writable directory:\n{listing}"
    );

    let read = |path: &str| {
        let mut extract = Command::new("tar");
        extract
            .arg("--extract")
            .arg("--to-stdout")
            .arg("--file")
            .arg(&tar)
            .arg(path);
        extract
            .output()
            .map(|o| o.stdout)
            .unwrap_or_else(|e| panic!("tar {path}: {e}"))
    };
    let passwd = String::from_utf8(read("etc/passwd")).unwrap();
    assert!(
        passwd
            .lines()
            .any(|l| l == "nonroot:x:65532:65532:nonroot:/tmp:/sbin/nologin"),
        "{passwd}"
    );
    let group = String::from_utf8(read("etc/group")).unwrap();
    assert!(group.lines().any(|l| l == "nonroot:x:65532:"), "{group}");
    assert!(
        read("etc/ssl/certs/ca-certificates.crt")
            == std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap(),
        "the CA bundle is the build machine's"
    );
    assert!(
        read("usr/lib/augur/libonnxruntime.so") == std::fs::read(&ort).unwrap(),
        "ONNX Runtime is the library .ci/onnxruntime fetched"
    );

    // The entrypoint runs as the image's user with a read-only root: `--version` alone is
    // the flags-only argument style at its smallest.
    let version = stdout_of(podman([
        "run",
        "--rm",
        "--read-only",
        "--network=none",
        &image.tag,
        "--version",
    ]));
    assert_eq!(version, format!("augur {}\n", env!("CARGO_PKG_VERSION")));
}
