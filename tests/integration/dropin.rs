//! prometheus-adapter deployments' exact command lines (kube-prometheus, the Helm chart with
//! default values, OpenShift's cluster-monitoring-operator), run as written, with no `serve`:
//! only the paths, ports and URLs are pointed at the test's own files. Each starts the real
//! augur binary against the real test Prometheus, serves a custom and an external metric,
//! and logs one warning for each flag that has no effect.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use serde_json::{Value, json};

use crate::support::{Augur, TestPrometheus, fixture_series, free_port, rules};
use augur::testing::TestCa;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/deployments")
        .join(name)
}

/// The first container's `args` of a Deployment fixture.
fn container_args(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    let deployment: Value = serde_saphyr::from_str(&text).unwrap();
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// Replaces the value of each `--flag=` in `values`; every one must be present.
fn point_at(args: &[String], values: &[(&str, String)]) -> Vec<String> {
    let mut out = args.to_vec();
    for (flag, value) in values {
        let prefix = format!("--{flag}=");
        let arg = out
            .iter_mut()
            .find(|a| a.starts_with(&prefix))
            .unwrap_or_else(|| panic!("the fixture has no {prefix}"));
        *arg = format!("{prefix}{value}");
    }
    out
}

/// Runs augur with `args` exactly (no subcommand) in `dir`, waiting until it is ready.
async fn run(dir: tempfile::TempDir, port: u16, args: &[String], cert: PathBuf) -> Augur {
    let mut command = Command::new(env!("CARGO_BIN_EXE_augur"));
    command.args(args).current_dir(dir.path());
    Augur::launch(command, dir, port, cert).await
}

/// A custom metric (one pod's rate) and an external metric, exact values.
async fn serves_custom_and_external(augur: &Augur) {
    let (status, body) = augur
        .get(
            "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/pods/web-1/http_requests_total",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"][0]["describedObject"]["name"], "web-1");
    assert_eq!(body["items"][0]["value"], "2200", "{body}");
    let (status, body) = augur
        .get("/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue_messages_ready?labelSelector=queue%3Dorders")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"][0]["metricLabels"], json!({"queue": "orders"}));
    assert_eq!(body["items"][0]["value"], "50", "{body}");
}

/// The startup warnings about flags (targets `augur`, from the command line, and
/// `augur::app`, from the TLS flags), message only. Standalone mode's "authentication and
/// authorization off" warning is not about a given flag.
fn warnings(augur: &Augur) -> Vec<String> {
    augur
        .log()
        .lines()
        .filter(|l| l.contains(" WARN "))
        .filter_map(|l| {
            l.split_once(" augur: ")
                .or_else(|| l.split_once(" augur::app: "))
                .map(|(_, message)| message.to_owned())
        })
        .collect()
}

#[tokio::test]
async fn kube_prometheus_deployment_args() {
    let prometheus = TestPrometheus::start(&fixture_series(SystemTime::now()).openmetrics());
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let args = point_at(
        &container_args("kube-prometheus.yaml"),
        &[
            (
                "cert-dir",
                dir.path().join("serving-cert").display().to_string(),
            ),
            ("config", rules().display().to_string()),
            ("prometheus-url", format!("{}/", prometheus.url())),
            ("secure-port", port.to_string()),
        ],
    );
    assert_eq!(args.len(), 6, "{args:?}");
    let cert = dir.path().join("serving-cert/apiserver.crt");
    let augur = run(dir, port, &args, cert).await;
    serves_custom_and_external(&augur).await;
    // The nine suites rustls does not implement are named once; the six others are served.
    let warned = warnings(&augur);
    assert_eq!(
        warned,
        [
            "--tls-cipher-suites: augur (rustls) does not implement TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA (CBC mode), TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 (CBC mode), TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA (CBC mode), TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA (CBC mode), TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA (CBC mode), TLS_RSA_WITH_AES_128_GCM_SHA256 (static RSA key exchange), TLS_RSA_WITH_AES_256_GCM_SHA384 (static RSA key exchange), TLS_RSA_WITH_AES_128_CBC_SHA (static RSA key exchange), TLS_RSA_WITH_AES_256_CBC_SHA (static RSA key exchange); serving the other 6 listed"
        ],
        "{}",
        augur.log()
    );
}

#[tokio::test]
async fn helm_chart_deployment_args() {
    let prometheus = TestPrometheus::start(&fixture_series(SystemTime::now()).openmetrics());
    for chart in ["helm-chart.yaml", "helm-chart-logtostderr.yaml"] {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let args = point_at(
            &container_args(chart),
            &[
                ("secure-port", port.to_string()),
                ("cert-dir", dir.path().join("cert").display().to_string()),
                ("prometheus-url", prometheus.url()),
                ("config", rules().display().to_string()),
            ],
        );
        // The chart's first argument is the binary itself (ENTRYPOINT /adapter).
        assert_eq!(args[0], "/adapter");
        let cert = dir.path().join("cert/apiserver.crt");
        let augur = run(dir, port, &args, cert).await;
        serves_custom_and_external(&augur).await;
        // --v=4 is augur's debug level; --logtostderr=true is what augur does: no warnings.
        assert_eq!(
            warnings(&augur),
            [] as [&str; 0],
            "{chart}: {}",
            augur.log()
        );
        assert!(
            augur.log().contains(" DEBUG "),
            "{chart}: --v=4 logs debug lines:\n{}",
            augur.log()
        );
    }
}

#[tokio::test]
async fn openshift_deployment_args_with_prometheus_auth_config() {
    // Prometheus behind TLS, trusted through the kubeconfig's certificate-authority.
    let ca_pki = TestCa::new("prometheus-ca");
    let server = ca_pki.server(&["localhost", "127.0.0.1"]);
    let prometheus = TestPrometheus::start_with_tls(
        &fixture_series(SystemTime::now()).openmetrics(),
        Some((&server.cert, &server.key)),
    );
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("service-ca.crt");
    std::fs::write(&ca, &ca_pki.pem).unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "service-account-token\n").unwrap();
    let configmap: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(fixture("openshift-prometheus-config.yaml")).unwrap(),
    )
    .unwrap();
    let kubeconfig = configmap["data"]["prometheus-config.yaml"]
        .as_str()
        .unwrap()
        .replace("/etc/ssl/certs/service-ca.crt", &ca.display().to_string())
        .replace(
            "/var/run/secrets/kubernetes.io/serviceaccount/token",
            &token.display().to_string(),
        );
    let kubeconfig_path = dir.path().join("prometheus-config.yaml");
    std::fs::write(&kubeconfig_path, kubeconfig).unwrap();
    let port = free_port();
    let args = point_at(
        &container_args("openshift.yaml"),
        &[
            (
                "prometheus-auth-config",
                kubeconfig_path.display().to_string(),
            ),
            ("config", rules().display().to_string()),
            ("prometheus-url", prometheus.url()),
            ("secure-port", port.to_string()),
        ],
    );
    // No --cert-dir: k8s.io/apiserver's default, under the working directory.
    let cert = dir
        .path()
        .join("apiserver.local.config/certificates/apiserver.crt");
    let augur = run(dir, port, &args, cert).await;
    serves_custom_and_external(&augur).await;
    // All six suites are ECDHE AEAD, --logtostderr=true is augur's way: nothing to warn about.
    assert_eq!(warnings(&augur), [] as [&str; 0], "{}", augur.log());
}

#[tokio::test]
async fn flags_without_effect_are_each_warned_once() {
    let prometheus = TestPrometheus::start(&fixture_series(SystemTime::now()).openmetrics());
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let args: Vec<String> = [
        "/adapter".to_owned(),
        format!("--secure-port={port}"),
        format!("--cert-dir={}", dir.path().join("cert").display()),
        format!("--prometheus-url={}", prometheus.url()),
        format!("--config={}", rules().display()),
        "--audit-log-path=/var/log/adapter/audit.log".to_owned(),
        "--audit-log-maxsize=100".to_owned(),
        "--profiling".to_owned(),
        "--log_dir=/var/log".to_owned(),
        "--tls-min-version=VersionTLS12".to_owned(),
        "--v=2".to_owned(),
        "--log-level=info".to_owned(),
    ]
    .into();
    let cert = dir.path().join("cert/apiserver.crt");
    let augur = run(dir, port, &args, cert).await;
    assert_eq!(
        warnings(&augur),
        [
            "--audit-log-path=/var/log/adapter/audit.log has no effect in augur (augur writes no audit log); accepted for prometheus-adapter compatibility",
            "--audit-log-maxsize=100 has no effect in augur (augur writes no audit log); accepted for prometheus-adapter compatibility",
            "--profiling=true has no effect in augur (augur serves no /debug/pprof profiling endpoints); accepted for prometheus-adapter compatibility",
            "--log-dir=/var/log has no effect in augur (augur writes its log to stderr only); accepted for prometheus-adapter compatibility",
            "--v=2 has no effect: --log-level=info (or AUGUR_LOG) is given and wins",
        ],
        "{}",
        augur.log()
    );
}

/// A flag value that cannot work stops augur (exit 64) with the flag and the reason, before
/// anything else happens.
#[test]
fn invalid_values_stop_startup_naming_the_flag() {
    for (arg, message) in [
        (
            "--audit-log-maxsize=big",
            "augur: invalid value \"big\" for --audit-log-maxsize: \"big\" is not an integer",
        ),
        (
            "--v=loud",
            "augur: invalid value \"loud\" for --v (klog verbosity): \"loud\" is not an integer",
        ),
        (
            "--log-level=loud",
            "error: invalid value 'loud' for '--log-level <LOG_LEVEL>': \"loud\" in \"loud\" is not a log level: expected one of off, error, warn, info, debug, trace or a filter such as info,augur=debug",
        ),
        (
            "--prometheus-timeout=0s",
            "error: invalid value '0s' for '--prometheus-timeout <PROMETHEUS_TIMEOUT>': \"0s\" is zero; this duration must be more than 0",
        ),
        (
            "--relist-concurrency=0",
            "error: invalid value '0' for '--relist-concurrency <RELIST_CONCURRENCY>': 0 is not in 1..18446744073709551615",
        ),
        (
            "--tls-min-version=VersionTLS14",
            "augur: --tls-min-version: unknown tls version \"VersionTLS14\"; expected one of VersionTLS10, VersionTLS11, VersionTLS12, VersionTLS13",
        ),
        (
            "--tls-cipher-suites=TLS_RSA_WITH_AES_128_CBC_SHA",
            "augur: --tls-cipher-suites: none of the listed suites can be served by augur (rustls): TLS_RSA_WITH_AES_128_CBC_SHA (static RSA key exchange); list at least one of",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_augur"))
            .args(["--config=/nonexistent.yaml", arg])
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{arg}: {stderr}");
        assert!(
            stderr
                .lines()
                .next()
                .unwrap_or_default()
                .starts_with(message),
            "{arg}: {stderr}"
        );
    }
}
