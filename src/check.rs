//! `augur check`: validate a config, then per rule show what it discovers, the PromQL an
//! example request renders, and warnings for known pitfalls.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use clap::Args;
use regex::Regex;

use crate::config::{
    Config, ConfigError, ForecastSpec, ModelRef, Problem, Reduce, Rule, Section, ServeMode,
};
use crate::forecast::onnx::contract::format_targets;
use crate::prometheus::{Backend, Error as BackendError, PrometheusArgs};
use crate::promql::selector::LabelSelector;
use crate::provider::query::{Names, build_custom, build_external};
use crate::resources::{ResourceInfo, ResourceTable};
use crate::series::registry::RuleStats;
use crate::series::{Listing, Snapshot};
use crate::units::{go_duration, positive_duration};

/// `augur check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Config file to check.
    #[arg(long)]
    pub config: PathBuf,
    /// Backend flags; without an explicit --prometheus-url nothing is queried.
    #[command(flatten)]
    pub prometheus: PrometheusArgs,
    /// How far back series count as present.
    #[arg(long, default_value = "10m", value_parser = positive_duration)]
    pub metrics_max_age: Duration,
    /// ONNX Runtime, to load the ONNX models rules name.
    #[command(flatten)]
    pub onnx: crate::forecast::onnx::RuntimeArgs,
}

/// Matchers of a series selector: label, operator, quoted value.
static MATCHER: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)""#).ok()
});
/// A `$1_x` / `$name-x`-style reference: Go reads the whole word as the group name.
static GREEDY_GROUP_REF: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\$([0-9]+[A-Za-z_][A-Za-z0-9_]*)").ok());
/// A bare metric name at the start of a seriesQuery.
static BARE_NAME: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)").ok());

/// Warnings for a rule that need no backend.
pub fn static_warnings(rule: &Rule) -> Vec<String> {
    let mut warnings = Vec::new();
    let query = rule.metrics_query_source.replace(' ', "");
    if let Some(re) = MATCHER.as_ref() {
        for cap in re.captures_iter(&rule.series_query) {
            let (label, op, value) = (&cap[1], &cap[2], &cap[3]);
            if label == "__name__" || (op == "!=" && value.is_empty()) {
                continue;
            }
            if !query.contains(&format!("{label}{op}\"{value}\""))
                && !query.contains(&format!("{label}{op}'{value}'"))
            {
                warnings.push(format!(
                    "seriesQuery filters on {label}{op}\"{value}\" but metricsQuery does not repeat it: discovery filters do not apply to the query, so values may include series you filtered out (prometheus-adapter #279)"
                ));
            }
        }
    }
    if rule.section == Section::Rules && !rule.metrics_query_source.contains(".GroupBy") {
        warnings.push(
            "metricsQuery does not group by <<.GroupBy>>: results are matched to objects by the resource label, so a query that aggregates it away answers 404 for every object".to_owned(),
        );
    }
    if let Some(cap) = GREEDY_GROUP_REF
        .as_ref()
        .and_then(|re| re.captures(&rule.naming.as_template))
    {
        let name = &cap[1];
        let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
        let rest = &name[digits.len()..];
        warnings.push(format!(
            "name.as {:?}: ${name} refers to a capture group named {name:?}, which expands to empty; write ${{{digits}}}{rest}",
            rule.naming.as_template
        ));
    }
    warnings
}

/// A series name to use in the example when nothing was discovered.
fn example_series(rule: &Rule, stats: Option<&Listing>) -> String {
    if let Some(shape) = stats.and_then(|l| {
        l.series
            .iter()
            .find(|s| rule.series_filters.iter().all(|f| f.passes(&s.name)))
    }) {
        return shape.name.to_string();
    }
    if let Some(re) = MATCHER.as_ref() {
        for cap in re.captures_iter(&rule.series_query) {
            if &cap[1] == "__name__" && &cap[2] == "=" {
                return cap[3].to_owned();
            }
        }
    }
    BARE_NAME
        .as_ref()
        .and_then(|re| re.captures(&rule.series_query))
        .map(|c| c[1].to_owned())
        .unwrap_or_else(|| "<series>".to_owned())
}

/// The resource an example request for a custom rule uses: the first non-namespace override
/// (or pods).
fn example_resource(rule: &Rule, table: &ResourceTable) -> Option<ResourceInfo> {
    rule.resources
        .overrides
        .iter()
        .map(|(_, info)| info)
        .find(|info| info.group_resource.resource != "namespaces")
        .cloned()
        .or_else(|| {
            let pods = table.lookup("pods")?;
            rule.resources
                .label_for_resource(pods)
                .map(|_| pods.clone())
        })
        .or_else(|| {
            rule.resources
                .overrides
                .first()
                .map(|(_, info)| info.clone())
        })
}

/// The example request shown for a rule (none when the rule maps no label to a resource)
/// and the PromQL it renders, or why it renders none.
struct Example {
    path: Option<String>,
    promql: Result<String, String>,
}

fn example(
    rule: &Rule,
    table: &ResourceTable,
    namespaces: &ResourceInfo,
    series: &str,
    metric: &str,
) -> Example {
    match rule.section {
        Section::Rules => {
            let Some(resource) = example_resource(rule, table) else {
                return Example {
                    path: None,
                    promql: Err(
                        "the rule maps no label to a resource, so it serves nothing".to_owned()
                    ),
                };
            };
            let names = ["example".to_owned()];
            let ns = resource.namespaced.then_some(("default", namespaces));
            let path = if resource.group_resource.resource == "namespaces" {
                format!("namespaces/example/metrics/{metric}")
            } else if resource.namespaced {
                format!(
                    "namespaces/default/{}/example/{metric}",
                    resource.group_resource
                )
            } else {
                format!("{}/example/{metric}", resource.group_resource)
            };
            Example {
                path: Some(format!("/apis/custom.metrics.k8s.io/v1beta2/{path}")),
                promql: build_custom(
                    rule,
                    series,
                    &resource,
                    ns,
                    Names::List(&names),
                    &LabelSelector::default(),
                )
                .map(|built| built.promql)
                .map_err(|e| e.to_string()),
            }
        }
        Section::ExternalRules => Example {
            path: Some(format!(
                "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/{metric}"
            )),
            promql: build_external(
                rule,
                series,
                "default",
                namespaces,
                &LabelSelector::default(),
            )
            .map_err(|e| e.to_string()),
        },
    }
}

/// Every rule with the series name and metric name its example uses.
fn rule_examples<'c>(
    config: &'c Config,
    snapshot: &Snapshot,
    listings: Option<&HashMap<String, Listing>>,
) -> Vec<(&'c Rule, String, String)> {
    let sections = [
        (&config.rules, &snapshot.rule_stats),
        (&config.external_rules, &snapshot.external_rule_stats),
    ];
    let mut out = Vec::new();
    for (rules, stats) in sections {
        for (rule, stats) in rules.iter().zip(stats.iter()) {
            let listing = listings.and_then(|l| l.get(&rule.series_query));
            let series = example_series(rule, listing);
            let metric = stats
                .metrics
                .iter()
                .find(|m| !m.is_empty())
                .cloned()
                .unwrap_or_else(|| {
                    rule.naming
                        .metric_name(&series)
                        .unwrap_or_else(|| "<metric>".to_owned())
                });
            out.push((rule, series, metric));
        }
    }
    out
}

/// Renders the report for every rule. `listings` is None when no backend was queried.
pub fn report(
    config: &Arc<Config>,
    table: &Arc<ResourceTable>,
    listings: Option<&HashMap<String, Listing>>,
) -> String {
    let empty = HashMap::new();
    let snapshot = Snapshot::build(
        config.clone(),
        table.clone(),
        listings.unwrap_or(&empty),
        None,
    );
    let mut out = String::new();
    let Some(namespaces) = table.lookup("namespaces") else {
        return "the resource table has no namespaces resource\n".to_owned();
    };
    let stats = snapshot
        .rule_stats
        .iter()
        .chain(snapshot.external_rule_stats.iter());
    for ((rule, series, metric), stats) in rule_examples(config, &snapshot, listings)
        .into_iter()
        .zip(stats)
    {
        let _ = writeln!(
            out,
            "{} (line {}): seriesQuery {}",
            rule.label(),
            rule.line,
            rule.series_query
        );
        let listing = listings.and_then(|l| l.get(&rule.series_query));
        if listings.is_some() {
            describe_discovery(&mut out, rule, stats, listing);
        }
        let example = example(rule, table, namespaces, &series, &metric);
        if let Some(path) = &example.path {
            let _ = writeln!(out, "  example: GET {path}");
        }
        match &example.promql {
            Ok(promql) => {
                let _ = writeln!(out, "  promql:  {}", promql.trim());
            }
            Err(e) => {
                let _ = writeln!(out, "  error:   {e}");
            }
        }
        describe_forecast(&mut out, rule, &stats.metrics, &metric);
        for warning in static_warnings(rule) {
            let _ = writeln!(out, "  warning: {warning}");
        }
    }
    if config.rules.is_empty() && config.external_rules.is_empty() {
        out.push_str(
            "no rules or externalRules: augur would serve no custom or external metrics\n",
        );
    }
    out
}

/// One line per forecast twin of a rule with a `forecast:` block: the twin's name and its
/// model, horizon, step, reduce, headroom and serve mode. `metrics` are the discovered
/// metrics; without any, the twin of the example metric is shown. A warning follows when
/// several discovered metrics get the same twin name (a `name` without `${metric}`).
fn describe_forecast(
    out: &mut String,
    rule: &Rule,
    metrics: &std::collections::BTreeSet<String>,
    example: &str,
) {
    let Some(spec) = &rule.forecast else {
        return;
    };
    let reduce = match spec.reduce {
        Reduce::Max => "max",
        Reduce::Point => "point",
    };
    let serve = match spec.serve {
        ServeMode::Max => "max",
        ServeMode::Forecast => "forecast",
    };
    let mut live: Vec<&str> = metrics
        .iter()
        .map(String::as_str)
        .filter(|m| !m.is_empty())
        .collect();
    if live.is_empty() {
        live.push(example);
    }
    let mut sharing: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
    for metric in live {
        let twin = spec.twin_name(metric);
        let _ = writeln!(
            out,
            "  forecast: {twin} (model {}, horizon {}, step {}, reduce {reduce}, headroom {}, serve {serve})",
            spec.model,
            go_duration(spec.horizon),
            go_duration(spec.step),
            spec.headroom,
        );
        sharing.entry(twin).or_default().push(metric);
    }
    for (twin, metrics) in sharing.iter().filter(|(_, m)| m.len() > 1) {
        let _ = writeln!(
            out,
            "  warning: {} metrics ({}) get the same twin name {twin}; only one of them is served: put ${{metric}} in forecast.name",
            metrics.len(),
            metrics.join(", "),
        );
    }
}

fn describe_discovery(out: &mut String, rule: &Rule, stats: &RuleStats, listing: Option<&Listing>) {
    let Some(listing) = listing else {
        let _ = writeln!(out, "  discovered: nothing (the series query failed)");
        return;
    };
    if stats.metrics.is_empty() {
        let _ = writeln!(
            out,
            "  warning: matches nothing: the series query returned {} series, {} passed the filters and naming",
            listing.raw_series, stats.series
        );
        return;
    }
    let resources: Vec<String> = stats.resources.iter().map(ToString::to_string).collect();
    let metrics: Vec<&str> = stats
        .metrics
        .iter()
        .map(|m| {
            if m.is_empty() {
                "\"\" (an empty name: check name.as)"
            } else {
                m.as_str()
            }
        })
        .collect();
    let _ = writeln!(
        out,
        "  discovered: {} series -> {} metric(s): {}",
        listing.raw_series,
        metrics.len(),
        metrics.join(", ")
    );
    if rule.section == Section::Rules {
        let shown = if resources.is_empty() {
            "none (no label maps to a resource)".to_owned()
        } else {
            resources.join(", ")
        };
        let _ = writeln!(out, "  resources:  {shown}");
    }
}

/// Runs `augur check`: returns the report text, or the config problems, or (with the
/// report) the rules Prometheus rejects and the ONNX models that do not load or do not
/// forecast what their rule asks.
pub async fn run(args: &CheckArgs) -> Result<String, CheckError> {
    let table = Arc::new(ResourceTable::builtin());
    let config = Arc::new(crate::config::load(
        &args.config,
        &table,
        crate::config::UnknownResources::Guess,
    )?);
    let file = args.config.display().to_string();
    let problem = |rule: &Rule, line: usize, field: &str, message: String| Problem {
        file: file.clone(),
        line,
        path: format!("{}.{field}", rule.label()),
        message,
    };
    let mut problems = Vec::new();
    crate::forecast::onnx::runtime::choose_library(args.onnx.onnxruntime_library.clone());
    for rule in config.rules.iter().chain(config.external_rules.iter()) {
        if let Some(spec) = &rule.forecast
            && let ModelRef::Onnx(path) = &spec.model
            && let Err(why) = check_model(path, spec)
        {
            problems.push(problem(rule, spec.line, "forecast.model", why));
        }
    }
    let mut header = format!(
        "{}: valid ({} rules, {} externalRules, resourceRules {})\n",
        args.config.display(),
        config.rules.len(),
        config.external_rules.len(),
        if config.resource_rules.is_some() {
            "present"
        } else {
            "absent"
        }
    );
    let listings = match &args.prometheus.prometheus_url {
        None => None,
        Some(_) => {
            crate::tls::install_crypto_provider();
            let backend = crate::prometheus::HttpBackend::new(&args.prometheus.backend_options())?;
            let (listings, rejected) = query_backend(&backend, &config, &table, args).await?;
            for (rule, field, message) in rejected {
                problems.push(problem(rule, rule.line, field, message));
            }
            Some(listings)
        }
    };
    header.push_str(&report(&config, &table, listings.as_ref()));
    if problems.is_empty() {
        return Ok(header);
    }
    problems.sort_by_key(|p| p.line);
    Err(CheckError::Rejected {
        report: header,
        problems: ConfigError { problems },
    })
}

/// Lists every seriesQuery and sends every rule's example metricsQuery to the backend: the
/// listings, and each query the backend rejected (rule, field, Prometheus's reason). A
/// backend that cannot be reached is an error: the check asked of it cannot be made.
async fn query_backend<'c>(
    backend: &dyn Backend,
    config: &'c Arc<Config>,
    table: &Arc<ResourceTable>,
    args: &CheckArgs,
) -> Result<
    (
        HashMap<String, Listing>,
        Vec<(&'c Rule, &'static str, String)>,
    ),
    CheckError,
> {
    let now = std::time::SystemTime::now();
    let start = now
        .checked_sub(args.metrics_max_age)
        .unwrap_or(std::time::UNIX_EPOCH);
    let rules: Vec<&Rule> = config
        .rules
        .iter()
        .chain(config.external_rules.iter())
        .collect();
    let mut queries: Vec<&str> = rules.iter().map(|r| r.series_query.as_str()).collect();
    queries.sort_unstable();
    queries.dedup();
    let mut listings = HashMap::new();
    let mut rejected = Vec::new();
    for query in queries {
        match backend.series(query, start).await {
            Ok(sets) => {
                listings.insert(query.to_owned(), Listing::new(sets, now));
            }
            Err(BackendError::Api {
                error_type,
                message,
            }) => {
                for rule in rules.iter().filter(|r| r.series_query == query) {
                    rejected.push((
                        *rule,
                        "seriesQuery",
                        format!("prometheus rejected it ({error_type}): {message}"),
                    ));
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    let snapshot = Snapshot::build(config.clone(), table.clone(), &listings, None);
    let Some(namespaces) = table.lookup("namespaces") else {
        return Ok((listings, rejected));
    };
    for (rule, series, metric) in rule_examples(config, &snapshot, Some(&listings)) {
        if !listings.contains_key(&rule.series_query) {
            continue;
        }
        let Ok(promql) = example(rule, table, namespaces, &series, &metric).promql else {
            continue;
        };
        match backend.query(&promql, now).await {
            Ok(_) => {}
            Err(BackendError::Api {
                error_type,
                message,
            }) => rejected.push((
                rule,
                "metricsQuery",
                format!(
                    "prometheus rejected the example query {} ({error_type}): {message}",
                    promql.trim()
                ),
            )),
            Err(e) => return Err(e.into()),
        }
    }
    Ok((listings, rejected))
}

/// Loads an ONNX model a rule names and checks it forecasts what the rule asks: its step
/// and the target its horizon and reduce give.
fn check_model(path: &std::path::Path, spec: &ForecastSpec) -> Result<(), String> {
    let model = crate::forecast::onnx::OnnxModel::load(path).map_err(|e| e.to_string())?;
    let contract = model.contract();
    let shown = path.display();
    let step = i64::try_from(spec.step.as_secs()).unwrap_or(i64::MAX);
    if contract.step_seconds != step {
        return Err(format!(
            "{shown}: does not meet the rule: the model's step is {}s, forecast.step is {step}s",
            contract.step_seconds
        ));
    }
    let target = crate::twin::engine::model_target(spec);
    if !contract.targets.contains(&target) {
        return Err(format!(
            "{shown}: does not meet the rule: the model does not forecast {} (it forecasts {})",
            format_targets(&[target]),
            format_targets(&contract.targets)
        ));
    }
    Ok(())
}

/// Why `augur check` could not produce a report, or found problems.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The config is invalid.
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    /// The backend client could not be built, or the backend could not be reached.
    #[error(transparent)]
    Backend(#[from] crate::prometheus::Error),
    /// The config is valid, but Prometheus rejects some of its queries or some ONNX models
    /// do not load or do not fit their rule.
    #[error("{problems}")]
    Rejected {
        /// The report of every rule.
        report: String,
        /// What was rejected, as config problems.
        problems: ConfigError,
    },
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{UnknownResources, parse};
    use crate::prometheus::fake::labels;

    const CONFIG: &str = r#"rules:
- seriesQuery: 'istio_requests_total{reporter="destination",namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {matches: "^(.*)_total$", as: "$1_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (pod)'
- seriesQuery: 'up{namespace!=""}'
  resources: {overrides: {namespace: {resource: namespace}}}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
externalRules:
- seriesQuery: 'queue_depth'
  resources: {namespaced: false}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>})'
"#;

    #[test]
    fn report_shows_promql_discovery_and_pitfalls() {
        let table = Arc::new(ResourceTable::builtin());
        let config = Arc::new(parse(CONFIG, "c.yaml", &table, UnknownResources::Reject).unwrap());
        let mut listings = HashMap::new();
        let sets = vec![labels(&[
            ("__name__", "istio_requests_total"),
            ("namespace", "a"),
            ("pod", "p"),
            ("reporter", "destination"),
        ])];
        listings.insert(
            r#"istio_requests_total{reporter="destination",namespace!="",pod!=""}"#.to_owned(),
            Listing::reduce(&sets, std::time::UNIX_EPOCH),
        );
        listings.insert(r#"up{namespace!=""}"#.to_owned(), Listing::default());
        listings.insert(
            "queue_depth".to_owned(),
            Listing::reduce(
                &[labels(&[("__name__", "queue_depth")])],
                std::time::UNIX_EPOCH,
            ),
        );
        let text = report(&config, &table, Some(&listings));
        let expected = r#"rules[0] (line 2): seriesQuery istio_requests_total{reporter="destination",namespace!="",pod!=""}
  discovered: 1 series -> 1 metric(s): "" (an empty name: check name.as)
  resources:  namespaces, pods
  example: GET /apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/example/
  promql:  sum(rate(istio_requests_total{namespace="default",pod="example"}[2m])) by (pod)
  warning: seriesQuery filters on reporter="destination" but metricsQuery does not repeat it: discovery filters do not apply to the query, so values may include series you filtered out (prometheus-adapter #279)
  warning: metricsQuery does not group by <<.GroupBy>>: results are matched to objects by the resource label, so a query that aggregates it away answers 404 for every object
  warning: name.as "$1_per_second": $1_per_second refers to a capture group named "1_per_second", which expands to empty; write ${1}_per_second
rules[1] (line 6): seriesQuery up{namespace!=""}
  warning: matches nothing: the series query returned 0 series, 0 passed the filters and naming
  example: GET /apis/custom.metrics.k8s.io/v1beta2/namespaces/example/metrics/up
  promql:  sum(up{namespace="example"}) by (namespace)
externalRules[0] (line 10): seriesQuery queue_depth
  discovered: 1 series -> 1 metric(s): queue_depth
  example: GET /apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue_depth
  promql:  sum(queue_depth{})
"#;
        assert_eq!(text, expected);
    }

    #[test]
    fn report_lists_forecast_twins_with_their_settings() {
        let text = r#"rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {matches: "^(.*)_total$", as: "${1}_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
  forecast: {model: seasonal-naive, horizon: 15m, step: 30s, reduce: point, headroom: 0.25, serve: forecast}
- seriesQuery: 'up{namespace!=""}'
  resources: {overrides: {namespace: {resource: namespace}}}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
externalRules:
- seriesQuery: 'queue_depth'
  resources: {namespaced: false}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>})'
  forecast: {name: "${metric}_ahead"}
"#;
        let table = Arc::new(ResourceTable::builtin());
        let config = Arc::new(parse(text, "c.yaml", &table, UnknownResources::Reject).unwrap());
        let mut listings = HashMap::new();
        let pod = |name: &str| labels(&[("__name__", name), ("namespace", "a"), ("pod", "p")]);
        listings.insert(
            r#"http_requests_total{namespace!="",pod!=""}"#.to_owned(),
            Listing::reduce(
                &[pod("http_requests_total"), pod("grpc_requests_total")],
                std::time::UNIX_EPOCH,
            ),
        );
        let discovered = report(&config, &table, Some(&listings));
        let twins: Vec<&str> = discovered
            .lines()
            .filter(|l| l.starts_with("  forecast:"))
            .collect();
        assert_eq!(
            twins,
            [
                "  forecast: grpc_requests_per_second_forecast (model seasonal-naive, horizon 15m0s, step 30s, reduce point, headroom 0.25, serve forecast)",
                "  forecast: http_requests_per_second_forecast (model seasonal-naive, horizon 15m0s, step 30s, reduce point, headroom 0.25, serve forecast)",
                "  forecast: queue_depth_ahead (model guarded-linear, horizon 10m0s, step 1m0s, reduce max, headroom 0, serve max)",
            ]
        );
        assert!(!discovered.contains("warning: 2 metrics"), "{discovered}");
        // A fixed twin name on a rule that discovers two metrics: they collide.
        let fixed = text.replace("serve: forecast}", "serve: forecast, name: requests_ahead}");
        let fixed = Arc::new(parse(&fixed, "c.yaml", &table, UnknownResources::Reject).unwrap());
        let report_text = report(&fixed, &table, Some(&listings));
        assert!(
            report_text.contains("  forecast: requests_ahead (model seasonal-naive, horizon 15m0s, step 30s, reduce point, headroom 0.25, serve forecast)\n  forecast: requests_ahead (model seasonal-naive, horizon 15m0s, step 30s, reduce point, headroom 0.25, serve forecast)\n  warning: 2 metrics (grpc_requests_per_second, http_requests_per_second) get the same twin name requests_ahead; only one of them is served: put ${metric} in forecast.name\n"),
            "{report_text}"
        );
        // Without a backend the twin of the example metric is shown, after its PromQL.
        let offline = report(&config, &table, None);
        let first_rule: Vec<&str> = offline.lines().take(4).collect();
        assert_eq!(
            first_rule,
            [
                r#"rules[0] (line 2): seriesQuery http_requests_total{namespace!="",pod!=""}"#,
                "  example: GET /apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/example/http_requests_per_second",
                r#"  promql:  sum(rate(http_requests_total{namespace="default",pod="example"}[2m])) by (pod)"#,
                "  forecast: http_requests_per_second_forecast (model seasonal-naive, horizon 15m0s, step 30s, reduce point, headroom 0.25, serve forecast)",
            ]
        );
    }
}
