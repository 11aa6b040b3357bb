//! Unit tests of config loading: every error message, naming and resource mapping.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::promql::template::{Context, Value};
use crate::resources::GroupResource;

fn ok(text: &str) -> Config {
    match parse(
        text,
        "c.yaml",
        &ResourceTable::builtin(),
        UnknownResources::Reject,
    ) {
        Ok(c) => c,
        Err(e) => panic!("unexpected errors:\n{e}"),
    }
}

fn errors(text: &str) -> Vec<String> {
    let e = parse(
        text,
        "c.yaml",
        &ResourceTable::builtin(),
        UnknownResources::Reject,
    )
    .unwrap_err();
    e.problems.iter().map(ToString::to_string).collect()
}

fn naming(matches: &str, as_template: &str) -> Naming {
    Naming {
        matches: Regex::new(matches).unwrap(),
        as_template: as_template.to_owned(),
    }
}

const RULE: &str = "rules:\n- seriesQuery: up\n  metricsQuery: x\n";

#[test]
fn empty_and_comment_only_files_are_empty_configs() {
    for text in ["", "# nothing here\n", "---\n"] {
        let c = ok(text);
        assert!(c.rules.is_empty() && c.external_rules.is_empty() && c.resource_rules.is_none());
    }
}

#[test]
fn rule_defaults() {
    let c = ok(RULE);
    let r = &c.rules[0];
    assert_eq!((r.section, r.index, r.line), (Section::Rules, 0, 2));
    assert_eq!(r.naming.matches.as_str(), ".*");
    assert_eq!(r.naming.as_template, "$0");
    assert!(r.namespaced);
    assert_eq!(r.series_filters.len(), 1);
    assert_eq!(r.metrics_query_source, "x");
}

#[test]
fn naming_follows_go_expand() {
    let n = naming("^(.*)_total$", "$1_per_second");
    assert_eq!(n.metric_name("http_requests_total").as_deref(), Some(""));
    let n = naming("^(.*)_total$", "${1}_per_second");
    assert_eq!(
        n.metric_name("http_requests_total").as_deref(),
        Some("http_requests_per_second")
    );
    assert_eq!(n.metric_name("up"), None);
    // $0 is the matched substring, not the whole name.
    assert_eq!(
        naming("_total", "$0").metric_name("a_total_b").as_deref(),
        Some("_total")
    );
    let n = naming(
        "^(?P<base>.*)_seconds_total$",
        "${base}_x_$base $$1 $2 $ ${nope",
    );
    assert_eq!(
        n.metric_name("cpu_seconds_total").as_deref(),
        Some("cpu_x_cpu $1  $ ${nope")
    );
    assert_eq!(
        naming("a(b)", "$01|$1").metric_name("ab").as_deref(),
        Some("|b")
    );
}

#[test]
fn default_as_depends_on_capture_groups() {
    let c = ok(
        "rules:\n- seriesQuery: up\n  name: {matches: \"^container_(.*)_total$\", as: \"\"}\n  metricsQuery: x\n",
    );
    assert_eq!(c.rules[0].naming.as_template, "$1");
    assert_eq!(
        c.rules[0]
            .naming
            .metric_name("container_cpu_total")
            .as_deref(),
        Some("cpu")
    );
    let c = ok("rules:\n- seriesQuery: up\n  name: {as: fixed}\n  metricsQuery: x\n");
    assert_eq!(
        c.rules[0].naming.metric_name("anything").as_deref(),
        Some("fixed")
    );
}

#[test]
fn series_filters_and_implicit_name_filter() {
    let c = ok(concat!(
        "rules:\n- seriesQuery: up\n  seriesFilters:\n  - is: ^container_\n  - isNot: _seconds_total$\n",
        "  name: {matches: _total$}\n  metricsQuery: x\n",
    ));
    let f = &c.rules[0].series_filters;
    assert_eq!(f.len(), 3);
    let passes = |name: &str| f.iter().all(|f| f.passes(name));
    assert!(passes("container_network_bytes_total"));
    assert!(!passes("container_cpu_seconds_total"));
    assert!(!passes("node_bytes_total"));
    assert!(!passes("container_memory_bytes"));
}

fn table() -> ResourceTable {
    ResourceTable::builtin()
}

#[test]
fn overrides_map_both_ways() {
    let c = ok(concat!(
        "rules:\n- seriesQuery: up\n  resources:\n    overrides:\n      kube_ns: {resource: namespace}\n",
        "      deploy: {group: apps, resource: deployment}\n  metricsQuery: x\n",
    ));
    let m = &c.rules[0].resources;
    let t = table();
    let ns = m.resource_for_label("kube_ns", &t).unwrap();
    assert_eq!(ns.group_resource, GroupResource::new("", "namespaces"));
    let dep = m.resource_for_label("deploy", &t).unwrap();
    assert_eq!(dep.group_resource.to_string(), "deployments.apps");
    assert_eq!(m.resource_for_label("namespace", &t), None);
    assert_eq!(m.label_for_resource(&dep).as_deref(), Some("deploy"));
    assert_eq!(m.label_for_resource(t.lookup("pods").unwrap()), None);
    // An override without a group resolves in any group, like the RESTMapper.
    let c = ok(
        "rules:\n- seriesQuery: up\n  resources: {overrides: {ingress: {resource: ingress}}}\n  metricsQuery: x\n",
    );
    let ing = c.rules[0]
        .resources
        .resource_for_label("ingress", &t)
        .unwrap();
    assert_eq!(
        ing.group_resource.to_string(),
        "ingresses.networking.k8s.io"
    );
}

#[test]
fn template_maps_both_ways() {
    let c = ok(
        "rules:\n- seriesQuery: up\n  resources: {template: \"kube_<<.Group>>_<<.Resource>>\"}\n  metricsQuery: x\n",
    );
    let m = &c.rules[0].resources;
    let t = table();
    let dep = m.resource_for_label("kube_apps_deployment", &t).unwrap();
    assert_eq!(dep.group_resource.to_string(), "deployments.apps");
    assert_eq!(
        m.label_for_resource(&dep).as_deref(),
        Some("kube_apps_deployment")
    );
    assert_eq!(m.resource_for_label("kube_apps_widget", &t), None);
    assert_eq!(m.resource_for_label("deployment", &t), None);
    let ing = t.lookup("ingresses.networking.k8s.io").unwrap();
    assert_eq!(
        m.label_for_resource(ing).as_deref(),
        Some("kube_networking_k8s_io_ingress")
    );
    // As in Go, the lazy `group` capture stops at the first `_`, so a dotted group does not
    // map back from the label.
    assert_eq!(
        m.resource_for_label("kube_networking_k8s_io_ingress", &t),
        None
    );

    let plain = ResourceMapping {
        overrides: vec![("node_name".into(), t.lookup("node").unwrap().clone())],
        template: Some(ResourceMapping::compile_template("<<.Resource>>").unwrap()),
    };
    assert_eq!(plain.resource_for_label("pod", &t).unwrap().kind, "Pod");
    assert_eq!(plain.resource_for_label("pods", &t).unwrap().kind, "Pod");
    assert_eq!(
        plain.resource_for_label("node_name", &t).unwrap().kind,
        "Node"
    );
    assert_eq!(plain.resource_for_label("instance", &t), None);
    assert_eq!(
        plain
            .label_for_resource(t.lookup("pods").unwrap())
            .as_deref(),
        Some("pod")
    );
    assert_eq!(
        plain
            .label_for_resource(t.lookup("nodes").unwrap())
            .as_deref(),
        Some("node_name")
    );
    // Literal text is escaped: `.` in the template is not a wildcard.
    let dotted = ResourceMapping::compile_template("a.<<.Resource>>").unwrap();
    assert!(dotted.regex.is_match("a.pod") && !dotted.regex.is_match("axpod"));
}

#[test]
fn unknown_resources_are_guessed_or_rejected() {
    let text = "rules:\n- seriesQuery: up\n  resources:\n    overrides:\n      brand: {group: cheese.io, resource: brand}\n  metricsQuery: x\n";
    let c = parse(text, "c.yaml", &table(), UnknownResources::Guess).unwrap();
    let (label, info) = &c.rules[0].resources.overrides[0];
    assert_eq!(label, "brand");
    assert_eq!(info.group_resource.to_string(), "brands.cheese.io");
    assert_eq!(
        (
            info.singular.as_str(),
            info.kind.as_str(),
            info.version.as_str()
        ),
        ("brand", "Brand", "v1")
    );
    assert_eq!(
        errors(text),
        [
            "c.yaml:5: rules[0].resources.overrides.brand.resource: unable to normalize group-resource \"brand.cheese.io\": not a known resource"
        ]
    );
    let text = "externalRules:\n- seriesQuery: up\n  resources:\n    overrides:\n      namespace: {resource: nmespace}\n  metricsQuery: x\n";
    assert_eq!(
        errors(text),
        [
            "c.yaml:5: externalRules[0].resources.overrides.namespace.resource: unable to normalize group-resource \"nmespace\": not a known resource"
        ]
    );
}

#[test]
fn resource_rules_and_window() {
    let text = concat!(
        "\"resourceRules\":\n  cpu:\n    containerQuery: a(<<.LabelMatchers>>)\n    nodeQuery: b\n",
        "    resources: {overrides: {instance: {resource: node}}}\n    containerLabel: container\n",
        "  memory: {containerQuery: c, nodeQuery: d}\n  window: 1h30m\n",
    );
    let rr = ok(text).resource_rules.unwrap();
    assert_eq!(rr.window, Duration::from_secs(5400));
    assert_eq!(rr.cpu.container_label, "container");
    assert_eq!(rr.memory.container_label, "");
    let mut ctx = Context::new();
    ctx.insert("LabelMatchers", Value::Str("pod=\"p\"".into()));
    assert_eq!(rr.cpu.container_query.render(&ctx).unwrap(), "a(pod=\"p\")");
    let node = rr
        .cpu
        .resources
        .resource_for_label("instance", &table())
        .unwrap();
    assert_eq!(node.kind, "Node");
    let rr = ok("resourceRules: {cpu: {containerQuery: a, nodeQuery: b}, memory: {containerQuery: c, nodeQuery: d}}").resource_rules.unwrap();
    assert_eq!(rr.window, Duration::from_secs(60));
}

#[test]
fn unknown_key_with_suggestion() {
    assert_eq!(
        errors("rules:\n- seriesQuery: up\n  metricQuery: x\n"),
        [
            "c.yaml:2: rules[0].metricsQuery: missing required field `metricsQuery`",
            "c.yaml:3: rules[0].metricQuery: unknown field \"metricQuery\" (did you mean \"metricsQuery\"?); allowed: seriesQuery, seriesFilters, resources, name, metricsQuery, forecast",
        ]
    );
    assert_eq!(
        errors("rules:\n- seriesQuery: up\n  name:\n    matches: a\n    metricsQuery: x\n"),
        [
            "c.yaml:2: rules[0].metricsQuery: missing required field `metricsQuery`",
            "c.yaml:5: rules[0].name.metricsQuery: unknown field \"metricsQuery\" (a rule field: indent it as rules[0].metricsQuery); allowed: matches, as",
        ]
    );
    assert_eq!(
        errors("rule: []\n"),
        [
            "c.yaml:1: rule: unknown field \"rule\" (did you mean \"rules\"?); allowed: rules, resourceRules, externalRules"
        ]
    );
}

#[test]
fn duplicate_keys_and_wrong_types() {
    assert_eq!(
        errors("rules:\n- seriesQuery: up\n  metricsQuery: x\n  seriesQuery: down\n"),
        ["c.yaml:4: rules[0].seriesQuery: duplicate key \"seriesQuery\" (first defined on line 2)"]
    );
    assert_eq!(
        errors(
            "rules: {seriesQuery: up}\nexternalRules:\n- seriesQuery: [a]\n  metricsQuery: x\n  resources: {namespaced: \"no\"}\n"
        ),
        [
            "c.yaml:1: rules: expected a list, got a mapping",
            "c.yaml:3: externalRules[0].seriesQuery: expected a string, got a list",
            "c.yaml:5: externalRules[0].resources.namespaced: expected true or false, got \"no\"",
        ]
    );
    assert_eq!(
        errors("- a\n"),
        ["c.yaml:1: expected a mapping, got a list"]
    );
    assert_eq!(
        errors("{[a]: b}\n"),
        ["c.yaml:1: mapping keys must be strings, got a list"]
    );
    let c = ok(
        "externalRules:\n- seriesQuery: 1\n  metricsQuery: true\n  resources: {namespaced: false}\n",
    );
    assert_eq!(c.external_rules[0].series_query, "1");
    assert!(!c.external_rules[0].namespaced);
}

#[test]
fn series_filter_errors() {
    assert_eq!(
        errors(
            "rules:\n- seriesQuery: up\n  metricsQuery: x\n  seriesFilters:\n  - {is: a, isNot: b}\n  - {}\n  - isNot: \"(\"\n"
        ),
        [
            "c.yaml:5: rules[0].seriesFilters[0]: cannot have both an `is` (\"a\") and `isNot` (\"b\")",
            "c.yaml:6: rules[0].seriesFilters[1]: must have either an `is` or `isNot`",
            "c.yaml:7: rules[0].seriesFilters[2].isNot: invalid regular expression \"(\": unclosed group",
        ]
    );
}

#[test]
fn naming_errors() {
    assert_eq!(
        errors("rules:\n- seriesQuery: up\n  metricsQuery: x\n  name:\n    matches: ^(a)_(b)$\n"),
        [
            "c.yaml:5: rules[0].name.as: must specify an 'as' value: `matches` \"^(a)_(b)$\" has 2 capture groups"
        ]
    );
    assert_eq!(
        errors("rules:\n- seriesQuery: up\n  metricsQuery: x\n  name: {matches: \"[z-a]\"}\n"),
        [
            "c.yaml:4: rules[0].name.matches: invalid regular expression \"[z-a]\": invalid character class range, the start must be <= the end"
        ]
    );
}

#[test]
fn missing_queries_and_bad_templates() {
    assert_eq!(
        errors("rules:\n- metricsQuery: x\n- seriesQuery: up\n  metricsQuery: \"\"\n"),
        [
            "c.yaml:2: rules[0].seriesQuery: missing required field `seriesQuery`",
            "c.yaml:4: rules[1].metricsQuery: `metricsQuery` must not be empty",
        ]
    );
    assert_eq!(
        errors("rules:\n- seriesQuery: up\n  metricsQuery: <<join .GroupBySlice \",\">>\n"),
        [
            "c.yaml:3: rules[0].metricsQuery: invalid template: line 1, column 3: function \"join\" not defined"
        ]
    );
    assert_eq!(
        errors(
            "rules:\n- seriesQuery: up\n  metricsQuery: x\n  resources: {template: \"kube_<<.Group>>\"}\n"
        ),
        ["c.yaml:4: rules[0].resources.template: must include at least `<<.Resource>>`"]
    );
    assert_eq!(
        errors("resourceRules:\n  cpu: {containerQuery: a, nodeQuery: b}\n  window: 5 minutes\n"),
        [
            "c.yaml:2: resourceRules.memory: missing required field `memory`",
            "c.yaml:3: resourceRules.window: invalid duration \"5 minutes\": expected a Prometheus duration like 30s, 5m or 1h30m",
        ]
    );
}

#[test]
fn yaml_syntax_error_is_one_problem() {
    let e = errors("rules:\n- seriesQuery: \"a\"b\"\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("c.yaml:2: invalid YAML: "), "{}", e[0]);
}

#[test]
fn all_problems_are_reported_together_in_file_order() {
    let text = concat!(
        "rules:\n",
        "- seriesQuery: up\n",      // 2
        "  metricsQuery: x\n",      // 3
        "  seriesFilters: [{}]\n",  // 4
        "- metricsQuery: y\n",      // 5
        "  nmae: {}\n",             // 6
        "externalRules:\n",         // 7
        "- seriesQuery: up\n",      // 8
        "  metricsQuery: <<if>>\n", // 9
        "extra: 1\n",               // 10
    );
    let e = parse(text, "c.yaml", &table(), UnknownResources::Reject).unwrap_err();
    let lines: Vec<usize> = e.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, [4, 5, 6, 9, 10]);
    assert_eq!(e.problems[2].path, "rules[1].nmae");
    assert!(e.problems[2].message.contains("did you mean \"name\"?"));
    assert!(e.to_string().lines().count() == 5);
}

#[test]
fn truncated_and_hostile_inputs_do_not_panic() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/compat");
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let cuts: Vec<usize> = text.char_indices().map(|(i, _)| i).step_by(41).collect();
        for cut in cuts {
            for unknown in [UnknownResources::Reject, UnknownResources::Guess] {
                let _ = parse(&text[..cut], "c.yaml", &table(), unknown);
            }
        }
    }
    for text in [
        "[",
        "{",
        ": :",
        "? [a]\n: b",
        "rules: &a [*a]",
        "rules: !!map {}",
        "\t",
        "rules:\n- [1, {2: 3}]",
    ] {
        let _ = parse(text, "c.yaml", &table(), UnknownResources::Reject);
    }
    let deep = format!("rules: {}{}", "[".repeat(20_000), "]".repeat(20_000));
    assert!(parse(&deep, "c.yaml", &table(), UnknownResources::Reject).is_err());
}

#[test]
fn forecast_block_defaults_and_values() {
    let c = ok(&format!("{RULE}  forecast: {{}}\n"));
    let f = c.rules[0].forecast.as_deref().unwrap();
    assert_eq!(
        f,
        &ForecastSpec {
            line: 4,
            name: "${metric}_forecast".into(),
            model: ModelRef::Builtin("guarded-linear".into()),
            horizon: Duration::from_secs(600),
            step: Duration::from_secs(60),
            history: Duration::from_secs(7 * 86400),
            reduce: Reduce::Max,
            headroom: 0.0,
            serve: ServeMode::Max,
            fallback_window: Duration::from_secs(3600),
        }
    );
    assert_eq!(f.twin_name("http_rps"), "http_rps_forecast");
    assert_eq!((f.horizon_steps(), f.history_buckets()), (10, 10080));
    assert!(ok(RULE).rules[0].forecast.is_none());
    let c = ok(concat!(
        "externalRules:\n- seriesQuery: up\n  metricsQuery: x\n  forecast:\n",
        "    name: predicted_${metric}\n    model: persistence\n    horizon: 15m\n    step: 30s\n",
        "    history: 2d\n    reduce: point\n    headroom: 0.25\n    serve: forecast\n    fallbackWindow: 0\n",
    ));
    let f = c.external_rules[0].forecast.as_deref().unwrap();
    assert_eq!(f.twin_name("q"), "predicted_q");
    assert_eq!(
        (
            f.horizon,
            f.step,
            f.history,
            f.reduce,
            f.headroom,
            f.serve,
            f.fallback_window
        ),
        (
            Duration::from_secs(900),
            Duration::from_secs(30),
            Duration::from_secs(2 * 86400),
            Reduce::Point,
            0.25,
            ServeMode::Forecast,
            Duration::ZERO
        )
    );
    assert_eq!(f.horizon_steps(), 30);
    // A fixed name (no `${metric}`) is taken as is.
    let c = ok(&format!("{RULE}  forecast: {{name: rps_ahead}}\n"));
    assert_eq!(
        c.rules[0].forecast.as_ref().unwrap().twin_name("anything"),
        "rps_ahead"
    );
}

#[test]
fn forecast_onnx_model_paths_resolve_against_the_config_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.onnx"), b"not really onnx").unwrap();
    let file = dir.path().join("rules.yaml");
    let text = format!("{RULE}  forecast: {{model: m.onnx}}\n");
    let c = parse(
        &text,
        &file.display().to_string(),
        &ResourceTable::builtin(),
        UnknownResources::Reject,
    )
    .unwrap();
    assert_eq!(
        c.rules[0].forecast.as_ref().unwrap().model,
        ModelRef::Onnx(dir.path().join("m.onnx"))
    );
    let e = parse(
        &format!("{RULE}  forecast: {{model: missing.onnx}}\n"),
        &file.display().to_string(),
        &ResourceTable::builtin(),
        UnknownResources::Reject,
    )
    .unwrap_err();
    assert_eq!(
        e.problems[0].to_string(),
        format!(
            "{}:4: rules[0].forecast.model: ONNX model file {} not found (relative paths start at the config file's directory)",
            file.display(),
            dir.path().join("missing.onnx").display()
        )
    );
    // The file is checked after the pure compile, yet its problem keeps its place among the
    // others on the same line: after the name's, before the step's.
    let e = parse(
        &format!("{RULE}  forecast: {{name: a/b, model: missing.onnx, step: 500ms}}\n"),
        &file.display().to_string(),
        &ResourceTable::builtin(),
        UnknownResources::Reject,
    )
    .unwrap_err();
    let fields: Vec<&str> = e.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        fields,
        [
            "rules[0].forecast.name",
            "rules[0].forecast.model",
            "rules[0].forecast.step"
        ]
    );
}

#[test]
fn forecast_errors_name_file_line_rule_and_field() {
    let builtin = crate::forecast::model::BUILTIN.join(", ");
    assert_eq!(
        errors(concat!(
            "rules:\n- seriesQuery: up\n  metricsQuery: x\n  forecast:\n",
            "    horizon: 7m\n    step: 2m\n    modle: x\n    headroom: -0.1\n    reduce: mean\n",
            "    serve: live\n    fallbackWindow: 1 hour\n",
            "- seriesQuery: up\n  metricsQuery: x\n  forecast: {model: prophet, name: a/b, step: 500ms}\n",
            "- seriesQuery: up\n  metricsQuery: x\n  forecast: {horizon: 1h, history: 30m, name: $1_x}\n",
            "- seriesQuery: up\n  metricsQuery: x\n  forecast: [1]\n",
            "- seriesQuery: up\n  metricsQuery: x\n  forecast: {name: '${metric}', history: 139d}\n",
            "- seriesQuery: up\n  metricsQuery: x\n  forecast: {step: 15s, history: 35d, fallbackWindow: 1y}\n",
        )),
        [
            "c.yaml:5: rules[0].forecast.horizon: horizon 7m must be a positive multiple of step 2m".to_owned(),
            "c.yaml:7: rules[0].forecast.modle: unknown field \"modle\" (did you mean \"model\"?); allowed: name, model, horizon, step, history, reduce, headroom, serve, fallbackWindow".to_owned(),
            "c.yaml:8: rules[0].forecast.headroom: invalid headroom \"-0.1\": expected a fraction ≥ 0, e.g. 0.2 for 20 % above the forecast".to_owned(),
            "c.yaml:9: rules[0].forecast.reduce: invalid value \"mean\"; allowed: max, point".to_owned(),
            "c.yaml:10: rules[0].forecast.serve: invalid value \"live\"; allowed: max, forecast".to_owned(),
            "c.yaml:11: rules[0].forecast.fallbackWindow: invalid duration \"1 hour\": expected a Prometheus duration like 30s, 5m or 1h30m".to_owned(),
            "c.yaml:14: rules[1].forecast.name: \"a/b\" contains `/`, which cannot appear in a metric path".to_owned(),
            format!("c.yaml:14: rules[1].forecast.model: unknown model \"prophet\"; built-in models are {builtin}, or give a path ending in .onnx"),
            "c.yaml:14: rules[1].forecast.step: step 500ms must be a whole number of seconds, at least 1s".to_owned(),
            "c.yaml:17: rules[2].forecast.name: \"$1_x\": the only variable is `${metric}` (the live metric's name)".to_owned(),
            "c.yaml:17: rules[2].forecast.history: history 30m must be longer than horizon 1h".to_owned(),
            "c.yaml:20: rules[3].forecast: expected a mapping, got a list".to_owned(),
            "c.yaml:23: rules[4].forecast.name: \"${metric}\" is the live metric's own name, which the live metric keeps, so the twin would never be served; use e.g. \"${metric}_forecast\"".to_owned(),
            // 139 days at 1m = 200,160 buckets; 35 days at 15 s = 201,600.
            "c.yaml:23: rules[4].forecast.history: history 139d at step 1m is 200160 buckets per series (4 bytes each in memory, all downloaded by the first refresh), more than 200000 (7 days at 1m is 10080): shorten it or use a longer step".to_owned(),
            "c.yaml:26: rules[5].forecast.history: history 35d at step 15s is 201600 buckets per series (4 bytes each in memory, all downloaded by the first refresh), more than 200000 (7 days at 1m is 10080): shorten it or use a longer step".to_owned(),
            "c.yaml:26: rules[5].forecast.fallbackWindow: fallbackWindow 365d at step 15s is 2102400 buckets per series (12 bytes each in memory), more than 200000 (7 days at 1m is 10080): shorten it or use a longer step".to_owned(),
        ]
    );
}
