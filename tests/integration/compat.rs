//! Compatibility: every real prometheus-adapter config in tests/fixtures/compat loads.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use augur::config::{self, Config, ConfigError, Rule, UnknownResources};
use augur::promql::template::{Context, Template, Value};
use augur::resources::ResourceTable;

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/compat")
        .join(name)
}

fn try_load(name: &str) -> Result<Config, ConfigError> {
    config::load(
        &path(name),
        &ResourceTable::builtin(),
        UnknownResources::Guess,
    )
}

fn load(name: &str) -> Config {
    match try_load(name) {
        Ok(c) => c,
        Err(e) => panic!("{name} does not load:\n{e}"),
    }
}

/// A custom-metrics request for pods p1, p2 in namespace default.
fn pod_ctx(series: &str) -> Context {
    let mut ctx = Context::new();
    ctx.insert("Series", Value::Str(series.into()));
    ctx.insert(
        "LabelMatchers",
        Value::Str(r#"namespace="default",pod=~"p1|p2""#.into()),
    );
    ctx.insert("GroupBy", Value::Str("pod".into()));
    ctx.insert("GroupBySlice", Value::List(vec!["pod".into()]));
    let mut by_name = BTreeMap::new();
    by_name.insert("pod".to_owned(), "p1|p2".to_owned());
    ctx.insert("LabelValuesByName", Value::Map(by_name));
    ctx
}

fn render(t: &Template, ctx: &Context) -> String {
    t.render(ctx)
        .unwrap_or_else(|e| panic!("render {:?}: {e}", t.source()))
}

fn metric(rule: &Rule, series: &str) -> Option<String> {
    let passes = rule.series_filters.iter().all(|f| f.passes(series));
    passes.then(|| rule.naming.metric_name(series)).flatten()
}

#[test]
fn deckhouse_config_map_rendered() {
    let c = load("deckhouse__modules__301-prometheus-metrics-adapter__config-map-rendered.yaml");
    assert_eq!((c.rules.len(), c.external_rules.len()), (9, 1));
    let rr = c.resource_rules.as_ref().map(|r| r.window);
    assert_eq!(rr, Some(Duration::from_secs(30)));
    let ext = &c.external_rules[0];
    assert!(!ext.namespaced);
    assert_eq!(
        metric(ext, "kube_adapter_metric_queue_depth").as_deref(),
        Some("queue_depth")
    );
    assert_eq!(
        render(
            &ext.metrics_query,
            &pod_ctx("kube_adapter_metric_queue_depth")
        ),
        r#"label_replace(kube_adapter_metric_queue_depth{namespace="default",pod=~"p1|p2"}, "__name__", "$1", "__name__", "^kube_adapter_metric_(.*)$")"#
    );
    assert_eq!(
        metric(&c.rules[1], "container_cpu_usage_seconds_total").as_deref(),
        Some("cpu_1m")
    );
    let ingress = c.rules[0]
        .resources
        .resource_for_label("ingress", &ResourceTable::builtin());
    assert_eq!(
        ingress.map(|i| i.group_resource.to_string()).as_deref(),
        Some("ingresses.networking.k8s.io")
    );
}

#[test]
fn helm_chart_default_rules_rendered() {
    let c = load("helm-charts__prometheus-adapter__default-rules-rendered.yaml");
    assert_eq!((c.rules.len(), c.external_rules.len()), (6, 0));
    assert!(c.resource_rules.is_none());
    // The folded metricsQuery scalar joins its two lines with a space.
    assert_eq!(
        render(
            &c.rules[0].metrics_query,
            &pod_ctx("container_cpu_usage_seconds_total")
        ),
        r#"sum(rate(container_cpu_usage_seconds_total{namespace="default",pod=~"p1|p2",container!="POD"}[5m])) by (pod)"#
    );
    assert_eq!(
        metric(&c.rules[0], "container_cpu_usage_seconds_total").as_deref(),
        Some("cpu_usage")
    );
    assert_eq!(
        metric(&c.rules[1], "container_cpu_usage_seconds_total"),
        None
    );
    assert_eq!(
        metric(&c.rules[1], "container_network_receive_bytes_total").as_deref(),
        Some("network_receive_bytes")
    );
    assert_eq!(
        metric(&c.rules[3], "http_requests").as_deref(),
        Some("http_requests")
    );
    let table = ResourceTable::builtin();
    let m = &c.rules[3].resources;
    assert_eq!(
        m.resource_for_label("pod", &table)
            .map(|i| i.kind)
            .as_deref(),
        Some("Pod")
    );
    assert_eq!(m.resource_for_label("instance", &table), None);
}

#[test]
fn helm_chart_values_resource_example() {
    let c = load("helm-charts__prometheus-adapter__values-resource-example.yaml");
    assert_eq!((c.rules.len(), c.external_rules.len()), (0, 0));
    let rr = c
        .resource_rules
        .unwrap_or_else(|| panic!("resourceRules missing"));
    assert_eq!(rr.window, Duration::from_secs(180));
    assert_eq!(rr.cpu.container_label, "container");
    let mut ctx = pod_ctx("");
    ctx.insert("GroupBy", Value::Str("pod,container".into()));
    assert_eq!(
        render(&rr.cpu.container_query, &ctx),
        "sum by (pod,container) (\n  rate(container_cpu_usage_seconds_total{container!=\"\",namespace=\"default\",pod=~\"p1|p2\"}[3m])\n)\n"
    );
}

fn check_kube_prometheus_style(name: &str, node_label: &str) {
    let c = load(name);
    assert_eq!((c.rules.len(), c.external_rules.len()), (0, 0));
    let rr = c
        .resource_rules
        .unwrap_or_else(|| panic!("resourceRules missing"));
    assert_eq!(rr.window, Duration::from_secs(300));
    assert_eq!(rr.memory.container_label, "container");
    let table = ResourceTable::builtin();
    let node = table.lookup("node").unwrap_or_else(|| panic!("no nodes"));
    assert_eq!(
        rr.memory.resources.label_for_resource(node).as_deref(),
        Some(node_label)
    );
    let mut ctx = Context::new();
    ctx.insert("LabelMatchers", Value::Str(r#"node=~"n1|n2""#.into()));
    ctx.insert("GroupBy", Value::Str("node".into()));
    let rendered = render(&rr.cpu.node_query, &ctx);
    assert!(rendered.starts_with("sum by (node) (\n"), "{rendered}");
    assert!(rendered.contains(r#"{node=~"n1|n2"}"#), "{rendered}");
}

#[test]
fn kube_prometheus_config_map() {
    check_kube_prometheus_style(
        "kube-prometheus__manifests__prometheusAdapter-configMap.yaml",
        "instance",
    );
}

#[test]
fn openshift_config_map() {
    check_kube_prometheus_style(
        "openshift-cluster-monitoring-operator__assets__prometheus-adapter__config-map.yaml",
        "instance",
    );
}

#[test]
fn prometheus_adapter_deploy_config_map() {
    check_kube_prometheus_style(
        "prometheus-adapter__deploy__manifests__config-map.yaml",
        "node",
    );
    let c = load("prometheus-adapter__deploy__manifests__config-map.yaml");
    let rr = c
        .resource_rules
        .unwrap_or_else(|| panic!("resourceRules missing"));
    let mut ctx = Context::new();
    ctx.insert("LabelMatchers", Value::Str(r#"node="n1""#.into()));
    ctx.insert("GroupBy", Value::Str("node".into()));
    assert_eq!(
        render(&rr.memory.node_query, &ctx),
        "sum by (node) (\n  node_memory_working_set_bytes{node=\"n1\"}\n)\n"
    );
}

#[test]
fn martinheinz_metrics_on_kind() {
    let c = load("martinheinz-metrics-on-kind__custom-metrics-config-map.yaml");
    assert_eq!((c.rules.len(), c.external_rules.len()), (1, 1));
    assert!(c.resource_rules.is_none());
    let rule = &c.rules[0];
    assert_eq!(rule.series_filters.len(), 3);
    assert_eq!(
        metric(rule, "http_requests").as_deref(),
        Some("http_requests")
    );
    assert_eq!(metric(rule, "http_requests_total"), None);
    assert_eq!(metric(rule, "external_queue"), None);
    let ext = &c.external_rules[0];
    assert_eq!(
        metric(ext, "external_queue_x").as_deref(),
        Some("external_queue_messages_ready")
    );
    assert_eq!(ext.resources.overrides.len(), 3);
    assert_eq!(
        render(&ext.metrics_query, &pod_ctx("external_queue_x")),
        r#"sum(external_queue_x{namespace="default",pod=~"p1|p2"})"#
    );
}

#[test]
fn prometheus_adapter_v0_9_1_custom_metrics_config_map() {
    let c = load("prometheus-adapter__v0.9.1__deploy__manifests__custom-metrics-config-map.yaml");
    assert_eq!((c.rules.len(), c.external_rules.len()), (6, 2));
    let rr = c.resource_rules.as_ref().map(|r| r.window);
    assert_eq!(rr, Some(Duration::from_secs(60)));
    assert_eq!(
        metric(&c.external_rules[0], "rabbit_queue_length").as_deref(),
        Some("rabbit_queue_length")
    );
    assert_eq!(
        metric(&c.rules[4], "http_requests_total").as_deref(),
        Some("http_requests")
    );
    assert_eq!(
        render(&c.rules[4].metrics_query, &pod_ctx("http_requests_total")),
        r#"sum(rate(http_requests_total{namespace="default",pod=~"p1|p2"}[1m])) by (pod)"#
    );
}

#[test]
fn stefanprodan_k8s_prom_hpa() {
    let c = load("stefanprodan-k8s-prom-hpa__custom-metrics-api__custom-metrics-config-map.yaml");
    assert_eq!((c.rules.len(), c.external_rules.len()), (6, 0));
    let rr = c
        .resource_rules
        .as_ref()
        .unwrap_or_else(|| panic!("resourceRules missing"));
    assert_eq!(rr.cpu.container_label, "container_name");
    let table = ResourceTable::builtin();
    let pod = table.lookup("pod").unwrap_or_else(|| panic!("no pods"));
    assert_eq!(
        c.rules[0].resources.label_for_resource(pod).as_deref(),
        Some("pod_name")
    );
    assert_eq!(
        render(
            &c.rules[2].metrics_query,
            &pod_ctx("container_memory_usage_bytes")
        ),
        r#"sum(container_memory_usage_bytes{namespace="default",pod=~"p1|p2",container_name!="POD"}) by (pod)"#
    );
}

#[test]
fn vllm_production_stack_custom_rules() {
    let c = load("vllm-production-stack__observability__prom-adapter__custom-rules.yaml");
    assert_eq!((c.rules.len(), c.external_rules.len()), (2, 0));
    assert_eq!(
        metric(&c.rules[0], "vllm:num_requests_waiting").as_deref(),
        Some("vllm_num_requests_waiting")
    );
    assert_eq!(
        render(
            &c.rules[1].metrics_query,
            &pod_ctx("vllm:num_incoming_requests_total")
        ),
        "sum by(namespace, model) (vllm:num_incoming_requests_total)"
    );
}

#[test]
fn prometheus_adapter_sample_config_is_invalid_yaml() {
    let Err(e) = try_load("prometheus-adapter__docs__sample-config.yaml") else {
        panic!("the upstream sample config is not valid YAML and must not load");
    };
    assert_eq!(e.problems.len(), 1);
    let p = &e.problems[0];
    // Upstream line 30; the fixture's 3 header comment lines move it to 33.
    assert_eq!(p.line, 33);
    assert!(p.message.starts_with("invalid YAML: "), "{}", p.message);
    assert!(
        p.file
            .ends_with("prometheus-adapter__docs__sample-config.yaml")
    );
    assert!(
        e.to_string()
            .contains("prometheus-adapter__docs__sample-config.yaml:33: invalid YAML: ")
    );
}
