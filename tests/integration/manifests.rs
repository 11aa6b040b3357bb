//! manifests/: what the real `kubectl kustomize` builds from them, after the real
//! `augur certs` wrote the serving certificate, parsed strictly as the k8s-openapi type of
//! every kind, with the facts an install depends on checked across objects; and the rules
//! they ship (rules/default.yaml, rules/examples/) serving the metrics their comments
//! promise from a real Prometheus.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, HTTPGetAction, Namespace, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::support::{
    Augur, Fixture, FixtureFamily, FixtureSeries, TestPrometheus, fixture_series, stdout_of,
};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every object of a build, typed by its kind.
#[derive(Default)]
struct Objects {
    kinds: Vec<String>,
    namespaces: Vec<Namespace>,
    service_accounts: Vec<ServiceAccount>,
    cluster_roles: Vec<ClusterRole>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    role_bindings: Vec<RoleBinding>,
    config_maps: Vec<ConfigMap>,
    secrets: Vec<Secret>,
    deployments: Vec<Deployment>,
    pdbs: Vec<PodDisruptionBudget>,
    services: Vec<Service>,
    api_services: Vec<APIService>,
}

/// Deserializes `doc` as `T` and checks that serializing it back gives `doc` again, so no
/// field was misspelt, misplaced or of the wrong type (k8s-openapi ignores unknown fields).
fn strict<T: DeserializeOwned + Serialize>(doc: &Value) -> T {
    let typed: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| {
        panic!(
            "{} {}: {e}",
            doc["kind"],
            doc["metadata"]["name"].as_str().unwrap_or("?")
        )
    });
    let back = serde_json::to_value(&typed).unwrap();
    let mut differences = Vec::new();
    differ(doc, &back, String::new(), &mut differences);
    assert!(
        differences.is_empty(),
        "{} {} does not round-trip through its k8s-openapi type (unknown, misplaced or mistyped fields): {}",
        doc["kind"],
        doc["metadata"]["name"],
        differences.join(", ")
    );
    typed
}

/// JSON paths where `a` and `b` differ.
fn differ(a: &Value, b: &Value, path: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                let at = format!("{path}.{key}");
                match (x.get(key), y.get(key)) {
                    (Some(p), Some(q)) => differ(p, q, at, out),
                    (Some(_), None) => out.push(format!("{at} (dropped)")),
                    (None, _) => out.push(format!("{at} (added)")),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                differ(p, q, format!("{path}[{i}]"), out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} became {b}")),
        _ => {}
    }
}

/// kustomize writes long base64 values (Secret `data`, APIService `caBundle`) as YAML
/// literal blocks broken into lines; kube-apiserver's decoder (Go's encoding/base64)
/// ignores the line breaks, k8s-openapi's does not, so join them as the server would.
fn join_base64_lines(doc: &mut Value) {
    let unbreak = |v: &mut Value| {
        if let Some(text) = v.as_str() {
            *v = Value::String(text.replace('\n', ""));
        }
    };
    match doc["kind"].as_str() {
        Some("Secret") => {
            if let Some(data) = doc.get_mut("data").and_then(Value::as_object_mut) {
                data.values_mut().for_each(unbreak);
            }
        }
        Some("APIService") => {
            if let Some(bundle) = doc.pointer_mut("/spec/caBundle") {
                unbreak(bundle);
            }
        }
        _ => {}
    }
}

impl Objects {
    fn parse(yaml: &str) -> Objects {
        let docs: Vec<Value> = serde_saphyr::from_multiple(yaml)
            .unwrap_or_else(|e| panic!("kustomize output is not YAML: {e}\n{yaml}"));
        let mut objects = Objects::default();
        for mut doc in docs {
            join_base64_lines(&mut doc);
            let doc = &doc;
            let kind = doc["kind"].as_str().unwrap().to_owned();
            match kind.as_str() {
                "Namespace" => objects.namespaces.push(strict(doc)),
                "ServiceAccount" => objects.service_accounts.push(strict(doc)),
                "ClusterRole" => objects.cluster_roles.push(strict(doc)),
                "ClusterRoleBinding" => objects.cluster_role_bindings.push(strict(doc)),
                "RoleBinding" => objects.role_bindings.push(strict(doc)),
                "ConfigMap" => objects.config_maps.push(strict(doc)),
                "Secret" => objects.secrets.push(strict(doc)),
                "Deployment" => objects.deployments.push(strict(doc)),
                "PodDisruptionBudget" => objects.pdbs.push(strict(doc)),
                "Service" => objects.services.push(strict(doc)),
                "APIService" => objects.api_services.push(strict(doc)),
                other => panic!("unexpected kind {other} in the manifests"),
            }
            objects.kinds.push(kind);
        }
        objects
    }

    fn cluster_role(&self, name: &str) -> &ClusterRole {
        self.cluster_roles
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no ClusterRole {name}"))
    }

    fn api_service_names(&self) -> Vec<&str> {
        self.api_services
            .iter()
            .map(|a| a.metadata.name.as_deref().unwrap())
            .collect()
    }
}

/// A copy of manifests/ and certs/ (without any local certificate files) with a fresh
/// serving certificate written into certs/ by the real `augur certs`, run from the copy's
/// root with its default `--out`.
struct Checkout {
    dir: tempfile::TempDir,
}

impl Checkout {
    fn new(with_certs: bool) -> Checkout {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&repo().join("manifests"), &dir.path().join("manifests"));
        copy_tree(&repo().join("certs"), &dir.path().join("certs"));
        if with_certs {
            stdout_of(
                Command::new(env!("CARGO_BIN_EXE_augur"))
                    .arg("certs")
                    .current_dir(dir.path()),
            );
        }
        Checkout { dir }
    }

    fn manifests(&self) -> PathBuf {
        self.dir.path().join("manifests")
    }

    fn kustomize(&self, sub: &str) -> std::process::Output {
        Command::new("/usr/bin/kubectl")
            .arg("kustomize")
            .arg(self.manifests().join(sub))
            .output()
            .unwrap()
    }

    fn build(&self, sub: &str) -> Objects {
        let output = self.kustomize(sub);
        assert!(
            output.status.success(),
            "kubectl kustomize manifests/{sub}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Objects::parse(&String::from_utf8(output.stdout).unwrap())
    }

    fn cert_file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join("certs").join(name)).unwrap()
    }
}

/// Copies a directory tree, leaving out certificate and key files a developer may have in
/// certs/.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let name = entry.file_name();
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&path, &to.join(&name));
        } else if !matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("crt" | "key" | "pem" | "tmp")
        ) {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

fn sorted<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = items.into_iter().collect();
    v.sort();
    v
}

fn labels(map: &Option<BTreeMap<String, String>>) -> BTreeMap<String, String> {
    map.clone().unwrap_or_default()
}

/// Whether `rules` grant `verb` on `group`/`resource`.
fn allows(rules: &[PolicyRule], verb: &str, group: &str, resource: &str) -> bool {
    rules.iter().any(|r| {
        let has = |list: &Option<Vec<String>>, want: &str| {
            list.as_ref()
                .is_some_and(|l| l.iter().any(|x| x == want || x == "*"))
        };
        r.verbs.iter().any(|v| v == verb || v == "*")
            && has(&r.api_groups, group)
            && has(&r.resources, resource)
    })
}

fn http_get(probe: &Option<k8s_openapi::api::core::v1::Probe>) -> &HTTPGetAction {
    probe
        .as_ref()
        .and_then(|p| p.http_get.as_ref())
        .expect("an httpGet probe")
}

#[test]
fn kustomize_config_is_rules_default_byte_for_byte() {
    let copy = std::fs::read(repo().join("manifests/base/config.yaml")).unwrap();
    let rules = std::fs::read(repo().join("rules/default.yaml")).unwrap();
    assert!(
        copy == rules,
        "manifests/base/config.yaml differs from rules/default.yaml: run `cp rules/default.yaml manifests/base/config.yaml`"
    );
}

#[test]
fn base_builds_into_the_objects_an_install_needs() {
    let checkout = Checkout::new(true);
    let objects = checkout.build("");
    assert_eq!(
        sorted(objects.kinds.iter().map(String::as_str)),
        sorted([
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRole",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "RoleBinding",
            "ConfigMap",
            "Secret",
            "Deployment",
            "PodDisruptionBudget",
            "Service",
            "APIService",
            "APIService",
            "APIService",
        ])
    );

    // Namespace: everything namespaced lives in augur, except the RoleBinding that must be
    // in kube-system.
    assert_eq!(
        objects.namespaces[0].metadata.name.as_deref(),
        Some("augur")
    );
    let in_augur = objects
        .service_accounts
        .iter()
        .map(|o| &o.metadata)
        .chain(objects.config_maps.iter().map(|o| &o.metadata))
        .chain(objects.secrets.iter().map(|o| &o.metadata))
        .chain(objects.deployments.iter().map(|o| &o.metadata))
        .chain(objects.pdbs.iter().map(|o| &o.metadata))
        .chain(objects.services.iter().map(|o| &o.metadata));
    for meta in in_augur {
        assert_eq!(meta.namespace.as_deref(), Some("augur"), "{:?}", meta.name);
    }

    // Deployment: 2 replicas, the flags augur accepts, probes, hardening.
    let deployment = &objects.deployments[0];
    let spec = &deployment.spec;
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.as_ref().unwrap();
    let pod_labels = labels(&spec.template.metadata.as_ref().unwrap().labels);
    assert_eq!(
        spec.selector.match_labels.as_ref().unwrap(),
        &pod_labels,
        "the Deployment selects its own pods"
    );
    assert_eq!(pod.service_account_name.as_deref(), Some("augur"));
    assert_eq!(
        objects.service_accounts[0].metadata.name.as_deref(),
        Some("augur")
    );
    assert_eq!(pod.containers.len(), 1);
    let container = &pod.containers[0];
    // The image `bash .ci/image` builds and tags, used as is when the node has it.
    assert_eq!(
        container.image.as_deref(),
        Some(concat!("localhost/augur:", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(container.image_pull_policy.as_deref(), Some("IfNotPresent"));
    let args = container.args.clone().unwrap();
    let cli = augur::cli::Cli::try_parse_from(std::iter::once("augur".to_owned()).chain(args))
        .unwrap_or_else(|e| panic!("the Deployment's args are not augur's flags: {e}"));
    let augur::cli::Command::Serve(serve) = cli.command else {
        panic!("the Deployment does not run `augur serve`")
    };
    assert_eq!(
        serve.prometheus.prometheus_url.as_deref(),
        Some("http://prometheus-k8s.monitoring.svc:9090/")
    );
    let port = container
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .find(|p| p.name.as_deref() == Some("https"))
        .unwrap();
    assert_eq!(port.container_port, i32::from(serve.secure_port));
    assert_eq!(serve.secure_port, 6443);
    for (probe, path) in [
        (&container.liveness_probe, "/livez"),
        (&container.readiness_probe, "/readyz"),
        (&container.startup_probe, "/livez"),
    ] {
        let get = http_get(probe);
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(get.scheme.as_deref(), Some("HTTPS"));
        assert_eq!(get.port, IntOrString::String("https".into()));
    }
    let resources = container.resources.as_ref().unwrap();
    for list in [&resources.requests, &resources.limits] {
        assert_eq!(
            sorted(list.as_ref().unwrap().keys().map(String::as_str)),
            ["cpu", "memory"]
        );
    }
    // The memory limit holds --forecast-max-series series of a rule with the default
    // forecast block (guarded-linear, 7 days at 1 minute) next to the rest of augur, as the
    // startup estimate computes it: no warning with the shipped Deployment.
    let limit = &resources.limits.as_ref().unwrap()["memory"].0;
    let limit_bytes = binary_bytes(limit);
    assert_eq!((limit.as_str(), limit_bytes), ("512Mi", 536_870_912));
    assert_eq!(serve.forecast.forecast_max_targets, 3500);
    assert_eq!(serve.forecast.forecast_max_series, 3500);
    let defaults = augur::config::parse(
        "rules:\n- seriesQuery: up\n  metricsQuery: x\n  forecast: {}\n",
        "defaults.yaml",
        &augur::resources::ResourceTable::builtin(),
        augur::config::UnknownResources::Guess,
    )
    .unwrap();
    let estimate =
        augur::twin::sizing::estimate(&defaults, serve.forecast.forecast_max_series).unwrap();
    assert_eq!(estimate.per_series, 104_272);
    let limit = Some((limit_bytes, augur::twin::sizing::CGROUP_MEMORY_MAX));
    assert_eq!(augur::twin::sizing::over_limit(&estimate, limit), None);
    let pod_security = pod.security_context.as_ref().unwrap();
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_eq!(
        pod_security.seccomp_profile.as_ref().unwrap().type_,
        "RuntimeDefault"
    );
    let security = container.security_context.as_ref().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        security.capabilities.as_ref().unwrap().drop,
        Some(vec!["ALL".to_owned()])
    );
    let anti = pod
        .affinity
        .as_ref()
        .unwrap()
        .pod_anti_affinity
        .as_ref()
        .unwrap()
        .preferred_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap();
    assert_eq!(
        anti[0].pod_affinity_term.topology_key,
        "kubernetes.io/hostname"
    );
    assert_eq!(
        anti[0]
            .pod_affinity_term
            .label_selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap(),
        &pod_labels
    );

    // The files the flags name come from the ConfigMap and the Secret, mounted as whole
    // directories (subPath mounts would never see updates, so nothing would reload).
    let mounts = container.volume_mounts.as_ref().unwrap();
    let volumes = pod.volumes.as_ref().unwrap();
    let source_of = |file: &Path| {
        let mount = mounts
            .iter()
            .find(|m| file.parent() == Some(Path::new(&m.mount_path)))
            .unwrap_or_else(|| panic!("{} is not in a mounted directory", file.display()));
        assert_eq!(mount.sub_path, None);
        let volume = volumes.iter().find(|v| v.name == mount.name).unwrap();
        let key = file.file_name().unwrap().to_str().unwrap().to_owned();
        (volume.clone(), key)
    };
    let (config_volume, config_key) = source_of(&serve.config);
    let config_map = &objects.config_maps[0];
    assert_eq!(
        config_volume.config_map.as_ref().unwrap().name,
        config_map.metadata.name.clone().unwrap()
    );
    let rules = std::fs::read_to_string(repo().join("rules/default.yaml")).unwrap();
    assert_eq!(
        config_map.data.as_ref().unwrap().get(&config_key),
        Some(&rules),
        "the ConfigMap holds rules/default.yaml"
    );
    let secret = &objects.secrets[0];
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let data = secret.data.as_ref().unwrap();
    assert_eq!(
        sorted(data.keys().map(String::as_str)),
        ["ca.crt", "tls.crt", "tls.key"]
    );
    for file in [
        serve.tls_cert_file.as_ref().unwrap(),
        serve.tls_private_key_file.as_ref().unwrap(),
    ] {
        let (volume, key) = source_of(file);
        assert_eq!(
            volume.secret.as_ref().unwrap().secret_name,
            secret.metadata.name
        );
        assert_eq!(data[&key].0, checkout.cert_file(&key), "{}", key);
    }

    // PodDisruptionBudget and Service select the Deployment's pods.
    let pdb = objects.pdbs[0].spec.as_ref().unwrap();
    assert_eq!(pdb.min_available, Some(IntOrString::Int(1)));
    assert_eq!(
        pdb.selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap(),
        &pod_labels
    );
    let service = &objects.services[0];
    let service_spec = service.spec.as_ref().unwrap();
    assert_eq!(service_spec.selector.as_ref().unwrap(), &pod_labels);
    let service_port = &service_spec.ports.as_ref().unwrap()[0];
    assert_eq!(service_port.port, 443);
    assert_eq!(
        service_port.target_port,
        Some(IntOrString::String("https".into()))
    );

    // APIServices: the three groups/versions, pointing at the Service, trusting ca.crt.
    assert_eq!(
        sorted(objects.api_service_names()),
        [
            "v1beta1.custom.metrics.k8s.io",
            "v1beta1.external.metrics.k8s.io",
            "v1beta2.custom.metrics.k8s.io"
        ]
    );
    let ca = checkout.cert_file("ca.crt");
    for api in &objects.api_services {
        let name = api.metadata.name.as_deref().unwrap();
        let spec = api.spec.as_ref().unwrap();
        assert_eq!(
            format!(
                "{}.{}",
                spec.version.as_deref().unwrap(),
                spec.group.as_deref().unwrap()
            ),
            name
        );
        let target = spec.service.as_ref().unwrap();
        assert_eq!(target.name, service.metadata.name);
        assert_eq!(target.namespace, service.metadata.namespace);
        assert_eq!(target.port, Some(443));
        assert_eq!(spec.insecure_skip_tls_verify, Some(false));
        assert_eq!(spec.ca_bundle.as_ref().unwrap().0, ca, "{name} caBundle");
        assert_eq!(spec.group_priority_minimum, 100);
        let expected_priority = if name.starts_with("v1beta2.") {
            200
        } else {
            100
        };
        assert_eq!(spec.version_priority, expected_priority, "{name}");
    }
    assert!(
        !objects
            .api_service_names()
            .contains(&"v1beta1.metrics.k8s.io"),
        "metrics.k8s.io belongs to the optional overlay only"
    );

    // RBAC: the SA reads the objects rules map to, delegates auth, reads the auth
    // ConfigMap; the HPA controller's SA reads custom and external metrics.
    let is_augur_sa = |b: &Option<Vec<k8s_openapi::api::rbac::v1::Subject>>| {
        b.as_ref().unwrap().iter().any(|s| {
            s.kind == "ServiceAccount"
                && s.name == "augur"
                && s.namespace.as_deref() == Some("augur")
        })
    };
    let bound_roles: BTreeMap<&str, &ClusterRoleBinding> = objects
        .cluster_role_bindings
        .iter()
        .map(|b| (b.role_ref.name.as_str(), b))
        .collect();
    assert!(is_augur_sa(&bound_roles["system:auth-delegator"].subjects));
    assert!(is_augur_sa(&bound_roles["augur:resource-reader"].subjects));
    let reader = objects
        .cluster_role("augur:resource-reader")
        .rules
        .clone()
        .unwrap();
    for (group, resource) in [
        ("", "pods"),
        ("", "nodes"),
        ("", "namespaces"),
        ("", "services"),
        ("apps", "deployments"),
        ("apps", "statefulsets"),
        ("apps", "replicasets"),
        ("networking.k8s.io", "ingresses"),
    ] {
        for verb in ["get", "list", "watch"] {
            assert!(
                allows(&reader, verb, group, resource),
                "resource-reader cannot {verb} {group}/{resource}"
            );
        }
    }
    assert!(
        !allows(&reader, "get", "", "secrets"),
        "augur has no business reading Secrets"
    );
    let auth_reader = &objects.role_bindings[0];
    assert_eq!(
        auth_reader.metadata.namespace.as_deref(),
        Some("kube-system")
    );
    assert_eq!(auth_reader.role_ref.kind, "Role");
    assert_eq!(
        auth_reader.role_ref.name,
        "extension-apiserver-authentication-reader"
    );
    assert!(is_augur_sa(&auth_reader.subjects));
    let hpa = objects
        .cluster_role_bindings
        .iter()
        .find(|b| {
            b.subjects.as_ref().unwrap().iter().any(|s| {
                s.kind == "ServiceAccount"
                    && s.name == "horizontal-pod-autoscaler"
                    && s.namespace.as_deref() == Some("kube-system")
            })
        })
        .expect("a binding for kube-system/horizontal-pod-autoscaler");
    let hpa_rules = objects
        .cluster_role(&hpa.role_ref.name)
        .rules
        .clone()
        .unwrap();
    for group in ["custom.metrics.k8s.io", "external.metrics.k8s.io"] {
        assert!(allows(&hpa_rules, "get", group, "pods"), "{group}");
        assert!(allows(&hpa_rules, "list", group, "queue_depth"), "{group}");
    }
    // Every binding names a role that exists here or is built into Kubernetes.
    let own_roles: BTreeSet<&str> = objects
        .cluster_roles
        .iter()
        .map(|r| r.metadata.name.as_deref().unwrap())
        .collect();
    for binding in &objects.cluster_role_bindings {
        let role = binding.role_ref.name.as_str();
        assert!(
            own_roles.contains(role) || role == "system:auth-delegator",
            "binding to unknown ClusterRole {role}"
        );
    }
}

#[test]
fn resource_metrics_overlay_adds_only_the_metrics_apiservice_and_reader_role() {
    let checkout = Checkout::new(true);
    let base = checkout.build("");
    let overlay = checkout.build("overlays/with-resource-metrics");
    let mut expected_kinds = base.kinds.clone();
    expected_kinds.extend(["APIService".to_owned(), "ClusterRole".to_owned()]);
    assert_eq!(
        sorted(overlay.kinds.iter().map(String::as_str)),
        sorted(expected_kinds.iter().map(String::as_str))
    );
    let metrics = overlay
        .api_services
        .iter()
        .find(|a| a.metadata.name.as_deref() == Some("v1beta1.metrics.k8s.io"))
        .expect("the metrics.k8s.io APIService");
    let spec = metrics.spec.as_ref().unwrap();
    assert_eq!(spec.group.as_deref(), Some("metrics.k8s.io"));
    assert_eq!(spec.version.as_deref(), Some("v1beta1"));
    let target = spec.service.as_ref().unwrap();
    assert_eq!(
        (
            target.name.as_deref(),
            target.namespace.as_deref(),
            target.port
        ),
        (Some("augur"), Some("augur"), Some(443))
    );
    assert_eq!(
        spec.ca_bundle.as_ref().unwrap().0,
        checkout.cert_file("ca.crt")
    );
    let role = overlay.cluster_role("system:aggregated-metrics-reader");
    let role_labels = labels(&role.metadata.labels);
    for aggregate in ["view", "edit", "admin"] {
        assert_eq!(
            role_labels
                .get(&format!(
                    "rbac.authorization.k8s.io/aggregate-to-{aggregate}"
                ))
                .map(String::as_str),
            Some("true")
        );
    }
    let rules = role.rules.clone().unwrap();
    for resource in ["pods", "nodes"] {
        for verb in ["get", "list", "watch"] {
            assert!(allows(&rules, verb, "metrics.k8s.io", resource));
        }
    }
    // The base APIServices are unchanged by the overlay.
    for api in &base.api_services {
        let same = overlay
            .api_services
            .iter()
            .find(|a| a.metadata.name == api.metadata.name)
            .unwrap();
        assert_eq!(same, api);
    }
}

#[test]
fn without_augur_certs_kustomize_names_the_missing_certificate() {
    let checkout = Checkout::new(false);
    let output = checkout.kustomize("");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let missing = checkout.dir.path().join("certs/tls.crt");
    assert!(
        stderr.contains(&format!(
            "lstat {}: no such file or directory",
            missing.display()
        )),
        "{stderr}"
    );
}

/// Series shaped like kube-prometheus's cAdvisor, a ServiceMonitor'd app, ingress-nginx and
/// RabbitMQ/Kafka exporters, for the shipped rules. Rates are whole numbers per second:
/// Prometheus' rate() of fractional slopes comes out a hair low (0.2499…), which the
/// milli-quantity truncation (as prometheus-adapter does) would turn into 249m.
fn shipped_rules_fixture() -> Fixture {
    let now = std::time::SystemTime::now();
    let base = fixture_series(now);
    let series = |name, labels: Vec<(&'static str, &'static str)>, initial, rate| FixtureSeries {
        name,
        labels,
        initial,
        rate,
    };
    let cpu = |labels| series("container_cpu_usage_seconds_total", labels, 100.0, 0.0);
    let families = vec![
        FixtureFamily {
            family: "container_cpu_usage_seconds",
            kind: "counter",
            series: vec![
                FixtureSeries {
                    rate: 1.0,
                    ..cpu(vec![
                        ("container", "app"),
                        ("id", "/kubepods/a"),
                        ("namespace", "shop"),
                        ("node", "node-a"),
                        ("pod", "web-1"),
                    ])
                },
                FixtureSeries {
                    rate: 2.0,
                    ..cpu(vec![
                        ("container", "app"),
                        ("id", "/kubepods/b"),
                        ("namespace", "shop"),
                        ("node", "node-a"),
                        ("pod", "web-2"),
                    ])
                },
                FixtureSeries {
                    rate: 1.0,
                    ..cpu(vec![
                        ("container", "sidecar"),
                        ("id", "/kubepods/c"),
                        ("namespace", "shop"),
                        ("node", "node-a"),
                        ("pod", "web-2"),
                    ])
                },
                // The node's root cgroup: no namespace or pod, so not a pod metric.
                FixtureSeries {
                    rate: 4.0,
                    ..cpu(vec![("id", "/"), ("node", "node-a")])
                },
            ],
        },
        FixtureFamily {
            family: "container_memory_working_set_bytes",
            kind: "gauge",
            series: vec![
                series(
                    "container_memory_working_set_bytes",
                    vec![
                        ("container", "app"),
                        ("namespace", "shop"),
                        ("pod", "web-1"),
                    ],
                    2e8,
                    0.0,
                ),
                series(
                    "container_memory_working_set_bytes",
                    vec![
                        ("container", "app"),
                        ("namespace", "shop"),
                        ("pod", "web-2"),
                    ],
                    1e8,
                    0.0,
                ),
                series(
                    "container_memory_working_set_bytes",
                    vec![
                        ("container", "sidecar"),
                        ("namespace", "shop"),
                        ("pod", "web-2"),
                    ],
                    5e7,
                    0.0,
                ),
            ],
        },
        FixtureFamily {
            family: "http_requests",
            kind: "counter",
            series: vec![
                series(
                    "http_requests_total",
                    vec![("namespace", "shop"), ("pod", "web-1"), ("service", "web")],
                    1000.0,
                    3.0,
                ),
                series(
                    "http_requests_total",
                    vec![("namespace", "shop"), ("pod", "web-2"), ("service", "web")],
                    1000.0,
                    5.0,
                ),
                series(
                    "http_requests_total",
                    vec![("namespace", "shop"), ("pod", "api-1"), ("service", "api")],
                    1000.0,
                    11.0,
                ),
            ],
        },
        FixtureFamily {
            family: "nginx_ingress_controller_requests",
            kind: "unknown",
            series: vec![
                series(
                    "nginx_ingress_controller_requests",
                    vec![("ingress", "web"), ("namespace", "shop"), ("status", "200")],
                    0.0,
                    6.0,
                ),
                series(
                    "nginx_ingress_controller_requests",
                    vec![("ingress", "web"), ("namespace", "shop"), ("status", "500")],
                    0.0,
                    2.0,
                ),
            ],
        },
        FixtureFamily {
            family: "rabbitmq_queue_messages_ready",
            kind: "gauge",
            series: vec![
                series(
                    "rabbitmq_queue_messages_ready",
                    vec![
                        ("namespace", "rabbitmq"),
                        ("queue", "orders"),
                        ("vhost", "/"),
                    ],
                    42.0,
                    0.0,
                ),
                series(
                    "rabbitmq_queue_messages_ready",
                    vec![
                        ("namespace", "rabbitmq"),
                        ("queue", "payments"),
                        ("vhost", "/"),
                    ],
                    5.0,
                    0.0,
                ),
            ],
        },
        FixtureFamily {
            family: "kafka_consumergroup_lag",
            kind: "gauge",
            series: vec![
                series(
                    "kafka_consumergroup_lag",
                    vec![
                        ("consumergroup", "billing"),
                        ("partition", "0"),
                        ("topic", "invoices"),
                    ],
                    10.0,
                    0.0,
                ),
                series(
                    "kafka_consumergroup_lag",
                    vec![
                        ("consumergroup", "billing"),
                        ("partition", "1"),
                        ("topic", "invoices"),
                    ],
                    15.0,
                    0.0,
                ),
                series(
                    "kafka_consumergroup_lag",
                    vec![
                        ("consumergroup", "audit"),
                        ("partition", "0"),
                        ("topic", "invoices"),
                    ],
                    99.0,
                    0.0,
                ),
            ],
        },
    ];
    Fixture { families, ..base }
}

/// Bytes of a binary-suffixed Quantity string (`512Mi`, `1Gi`).
fn binary_bytes(quantity: &str) -> u64 {
    let (digits, scale) = match quantity.len().checked_sub(2).map(|i| quantity.split_at(i)) {
        Some((digits, "Ki")) => (digits, 1 << 10),
        Some((digits, "Mi")) => (digits, 1 << 20),
        Some((digits, "Gi")) => (digits, 1 << 30),
        _ => (quantity, 1),
    };
    digits
        .parse::<u64>()
        .unwrap_or_else(|e| panic!("quantity {quantity:?}: {e}"))
        * scale
}

/// Milli-units of a decimal Quantity string as augur writes them (`999m`, `3`, `150M`).
fn milli(quantity: &str) -> i64 {
    let (digits, scale) = match quantity.char_indices().last() {
        Some((i, 'm')) => (&quantity[..i], 1),
        Some((i, 'k')) => (&quantity[..i], 1_000_000),
        Some((i, 'M')) => (&quantity[..i], 1_000_000_000),
        Some((i, 'G')) => (&quantity[..i], 1_000_000_000_000),
        _ => (quantity, 1000),
    };
    digits
        .parse::<i64>()
        .unwrap_or_else(|e| panic!("quantity {quantity:?}: {e}"))
        * scale
}

/// Checks a custom or external metric list: its kind, and (object or metric name, value)
/// per item, values within one milli-unit (rate() of a whole-number slope may come out a
/// hair low, and augur truncates to milli-units as prometheus-adapter does).
fn assert_values(body: &Value, kind: &str, expected: &[(&str, &str)]) {
    assert_eq!(body["kind"], kind, "{body}");
    let mut got: Vec<(String, i64)> = body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|item| {
            let name = item["describedObject"]["name"]
                .as_str()
                .or(item["metricName"].as_str())
                .unwrap()
                .to_owned();
            (name, milli(item["value"].as_str().unwrap()))
        })
        .collect();
    got.sort();
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    let want: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, want, "{body}");
    for ((name, value), (_, text)) in got.iter().zip(expected) {
        let want = milli(text);
        assert!(
            (value - want).abs() <= 1,
            "{name}: {value} milli-units, expected {text}; {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_rules_serve_their_documented_metrics_from_real_prometheus() {
    let prometheus = TestPrometheus::start(&shipped_rules_fixture().openmetrics());
    let url = prometheus.url();
    let rules = repo().join("rules");

    let augur = Augur::start(&url, &rules.join("default.yaml"), &[]).await;
    let custom = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop";
    let (status, body) = augur.get(&format!("{custom}/pods/*/cpu_usage")).await;
    assert_eq!(status, 200, "{body}");
    assert_values(&body, "MetricValueList", &[("web-1", "1"), ("web-2", "3")]);
    let (_, body) = augur
        .get(&format!("{custom}/pods/web-2/memory_working_set_bytes"))
        .await;
    assert_values(&body, "MetricValueList", &[("web-2", "150M")]);
    let (_, body) = augur
        .get(&format!("{custom}/pods/*/http_requests_per_second"))
        .await;
    assert_values(
        &body,
        "MetricValueList",
        &[("api-1", "11"), ("web-1", "3"), ("web-2", "5")],
    );
    let (_, body) = augur
        .get(&format!("{custom}/services/web/http_requests_per_second"))
        .await;
    assert_values(&body, "MetricValueList", &[("web", "8")]);
    let (_, body) = augur
        .get("/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/http_requests_per_second?labelSelector=service%3Dweb")
        .await;
    assert_values(
        &body,
        "ExternalMetricValueList",
        &[("http_requests_per_second", "8")],
    );
    // The request-rate rules ship forecast twins: discovered, and served (the fixture's
    // rates are constant, so the twin is 8 whether it forecasts or serves live).
    let (_, body) = augur.get("/apis/custom.metrics.k8s.io/v1beta1").await;
    let names: Vec<&str> = body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .filter(|n| n.ends_with("_forecast"))
        .collect();
    assert!(
        names.contains(&"services/http_requests_per_second_forecast")
            && names.contains(&"pods/http_requests_per_second_forecast"),
        "{names:?}"
    );
    let (status, body) = augur
        .get(&format!(
            "{custom}/services/web/http_requests_per_second_forecast"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_values(&body, "MetricValueList", &[("web", "8")]);
    let (status, body) = augur
        .get("/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/http_requests_per_second_forecast?labelSelector=service%3Dweb")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_values(
        &body,
        "ExternalMetricValueList",
        &[("http_requests_per_second_forecast", "8")],
    );
    drop(augur);

    let augur = Augur::start(&url, &rules.join("examples/ingress-rps.yaml"), &[]).await;
    let (status, body) = augur
        .get(&format!(
            "{custom}/ingresses.networking.k8s.io/web/nginx_ingress_requests_per_second"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_values(&body, "MetricValueList", &[("web", "8")]);
    assert_eq!(
        body["items"][0]["describedObject"]["apiVersion"],
        "networking.k8s.io/v1"
    );
    drop(augur);

    let augur = Augur::start(&url, &rules.join("examples/queue-depth.yaml"), &[]).await;
    let external = "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop";
    for (query, expected) in [
        // Cross-namespace: the exporter's series are in namespace rabbitmq.
        (
            "rabbitmq_queue_messages_ready?labelSelector=queue%3Dorders",
            "42",
        ),
        ("rabbitmq_queue_messages_ready", "47"),
        (
            "kafka_consumergroup_lag?labelSelector=consumergroup%3Dbilling%2Ctopic%3Dinvoices",
            "25",
        ),
    ] {
        let (status, body) = augur.get(&format!("{external}/{query}")).await;
        assert_eq!(status, 200, "{query}: {body}");
        let metric = query.split('?').next().unwrap();
        assert_values(&body, "ExternalMetricValueList", &[(metric, expected)]);
    }
}
