//! Rendering a rule's `metricsQuery` for one request: the template context prometheus-adapter
//! builds (`.Series`, `.LabelMatchers`, `.GroupBy`, `.GroupBySlice`, `.LabelValuesByName`).

use std::collections::BTreeMap;

use crate::config::Rule;
use crate::promql::selector::{LabelSelector, go_quote};
use crate::promql::template::{Context, Value};
use crate::resources::ResourceInfo;

/// Which objects of the resource a custom query selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Names<'a> {
    /// Exactly these names (`lbl="a"` or `lbl=~"a|b"`; `lbl=""` for none).
    List(&'a [String]),
    /// Every object with a sample (standalone `*`): `lbl=~".+"`.
    Any,
    /// Objects whose name matches this regex: a shorter superset of a long name list
    /// (see [`super::objects::compact_matcher`]); results are filtered back to the names.
    Matching(&'a str),
}

/// Why a query could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The metric selector has an operator PromQL lacks.
    #[error("{0}")]
    Selector(String),
    /// The rule maps no label to a resource the request needs.
    #[error("{0}")]
    NoLabel(String),
    /// Template execution failed or produced nothing.
    #[error("{0}")]
    Template(String),
}

/// A rendered query and the label holding object names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltQuery {
    /// The PromQL.
    pub promql: String,
    /// The label whose values are object names (custom queries).
    pub resource_label: String,
}

fn rule_ref(rule: &Rule) -> String {
    let section = match rule.section {
        crate::config::Section::Rules => "rules",
        crate::config::Section::ExternalRules => "externalRules",
    };
    format!("{section}[{}] (line {})", rule.index, rule.line)
}

/// Selector matchers first (sorted by key), recording their values by label.
fn selector_parts(
    selector: &LabelSelector,
    values: &mut BTreeMap<String, String>,
) -> Result<Vec<String>, BuildError> {
    let matchers = selector
        .to_matchers()
        .map_err(|e| BuildError::Selector(e.to_string()))?;
    for req in &selector.requirements {
        values.insert(req.key.clone(), req.values.join("|"));
    }
    Ok(matchers)
}

fn namespace_label(rule: &Rule, namespaces: &ResourceInfo) -> Result<String, BuildError> {
    rule.resources.label_for_resource(namespaces).ok_or_else(|| {
        BuildError::NoLabel(format!(
            "{} maps no series label to namespaces, so it cannot filter by namespace: add `resources.overrides.namespace: {{resource: namespace}}` (or a template)",
            rule_ref(rule)
        ))
    })
}

fn render(rule: &Rule, ctx: &Context) -> Result<String, BuildError> {
    let promql = rule
        .metrics_query
        .render(ctx)
        .map_err(|e| BuildError::Template(format!("{}: metricsQuery: {e}", rule_ref(rule))))?;
    if promql.trim().is_empty() {
        return Err(BuildError::Template(format!(
            "{}: empty query produced by metrics query template",
            rule_ref(rule)
        )));
    }
    Ok(promql)
}

/// prometheus-adapter's `metricsQuery.Build` for a custom metric request.
pub fn build_custom(
    rule: &Rule,
    series: &str,
    resource: &ResourceInfo,
    namespace: Option<(&str, &ResourceInfo)>,
    names: Names<'_>,
    metric_selector: &LabelSelector,
) -> Result<BuiltQuery, BuildError> {
    let mut values = BTreeMap::new();
    let mut exprs = selector_parts(metric_selector, &mut values)?;
    if let Some((ns, namespaces)) = namespace {
        let label = namespace_label(rule, namespaces)?;
        exprs.push(format!("{label}={}", go_quote(ns)));
        values.insert(label, ns.to_owned());
    }
    let label = rule.resources.label_for_resource(resource).ok_or_else(|| {
        BuildError::NoLabel(format!(
            "{} maps no series label to {}",
            rule_ref(rule),
            resource.group_resource
        ))
    })?;
    let (matcher, joined) = name_matcher(&label, names);
    exprs.push(matcher);
    values.insert(label.clone(), joined);
    let ctx = context(series, exprs.join(","), vec![label.clone()], values);
    Ok(BuiltQuery {
        promql: render(rule, &ctx)?,
        resource_label: label,
    })
}

/// A `resourceRules` query (`containerQuery` / `nodeQuery`): `.Series` is empty, the
/// matchers are the namespace then the object names, `.GroupBy` is the object label then
/// `extra_group_by` (the container label for pods), as the adapter's resource provider builds
/// them. `what` names the query in errors (`resourceRules.cpu.containerQuery`).
pub fn build_resource(
    query: &crate::promql::template::Template,
    mapping: &crate::config::ResourceMapping,
    what: &str,
    resource: &ResourceInfo,
    namespace: Option<(&str, &ResourceInfo)>,
    names: Names<'_>,
    extra_group_by: &[String],
) -> Result<BuiltQuery, BuildError> {
    let mut values = BTreeMap::new();
    let mut exprs = Vec::new();
    if let Some((ns, namespaces)) = namespace {
        let label = mapping.label_for_resource(namespaces).ok_or_else(|| {
            BuildError::NoLabel(format!("{what}: `resources` maps no label to namespaces"))
        })?;
        exprs.push(format!("{label}={}", go_quote(ns)));
        values.insert(label, ns.to_owned());
    }
    let label = mapping.label_for_resource(resource).ok_or_else(|| {
        BuildError::NoLabel(format!(
            "{what}: `resources` maps no label to {}",
            resource.group_resource
        ))
    })?;
    let (matcher, joined) = name_matcher(&label, names);
    exprs.push(matcher);
    values.insert(label.clone(), joined);
    let mut group_by = vec![label.clone()];
    group_by.extend(extra_group_by.iter().filter(|l| !l.is_empty()).cloned());
    let ctx = context("", exprs.join(","), group_by, values);
    let promql = query
        .render(&ctx)
        .map_err(|e| BuildError::Template(format!("{what}: {e}")))?;
    if promql.trim().is_empty() {
        return Err(BuildError::Template(format!(
            "{what}: empty query produced by metrics query template"
        )));
    }
    Ok(BuiltQuery {
        promql,
        resource_label: label,
    })
}

/// prometheus-adapter's `metricsQuery.BuildExternal`: no group-by, selector matchers then
/// the namespace matcher unless `resources.namespaced: false`.
pub fn build_external(
    rule: &Rule,
    series: &str,
    namespace: &str,
    namespaces: &ResourceInfo,
    metric_selector: &LabelSelector,
) -> Result<String, BuildError> {
    let mut values = BTreeMap::new();
    let mut exprs = selector_parts(metric_selector, &mut values)?;
    if rule.namespaced && !namespace.is_empty() {
        let label = namespace_label(rule, namespaces).map_err(|_| {
            BuildError::NoLabel(format!(
                "{} maps no series label to namespaces, so it cannot filter by namespace: add `resources.overrides.namespace: {{resource: namespace}}`, or set `resources.namespaced: false` for a cluster-wide metric",
                rule_ref(rule)
            ))
        })?;
        exprs.push(format!("{label}={}", go_quote(namespace)));
        values.insert(label, namespace.to_owned());
    }
    let ctx = context(series, exprs.join(","), Vec::new(), values);
    render(rule, &ctx)
}

fn context(
    series: &str,
    matchers: String,
    group_by: Vec<String>,
    values: BTreeMap<String, String>,
) -> Context {
    let mut ctx = Context::new();
    ctx.insert("Series", Value::Str(series.to_owned()));
    ctx.insert("LabelMatchers", Value::Str(matchers));
    ctx.insert("GroupBy", Value::Str(group_by.join(",")));
    ctx.insert("GroupBySlice", Value::List(group_by));
    ctx.insert("LabelValuesByName", Value::Map(values));
    ctx
}

/// The matcher selecting `names` on `label`, and the value `<<.LabelValuesByName>>` gets.
fn name_matcher(label: &str, names: Names<'_>) -> (String, String) {
    match names {
        Names::List([one]) => (format!("{label}={}", go_quote(one)), one.clone()),
        Names::List(list) if list.len() > 1 => {
            let joined = list.join("|");
            (format!("{label}=~{}", go_quote(&joined)), joined)
        }
        Names::List(_) => (format!("{label}=\"\""), String::new()),
        Names::Any => (format!("{label}=~\".+\""), ".+".to_owned()),
        Names::Matching(pattern) => (
            format!("{label}=~{}", go_quote(pattern)),
            pattern.to_owned(),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{UnknownResources, parse};
    use crate::resources::ResourceTable;

    fn rule(metrics_query: &str, extra: &str) -> Rule {
        let text = format!(
            "externalRules:\n- seriesQuery: x\n  resources:\n    overrides:\n      namespace: {{resource: namespace}}\n      pod: {{resource: pod}}\n{extra}  metricsQuery: '{metrics_query}'\n"
        );
        let config = parse(
            &text,
            "t.yaml",
            &ResourceTable::builtin(),
            UnknownResources::Reject,
        )
        .unwrap();
        config.external_rules.into_iter().next().unwrap()
    }

    #[test]
    fn every_template_variable_renders_for_a_custom_request() {
        let table = ResourceTable::builtin();
        let pods = table.lookup("pods").unwrap();
        let namespaces = table.lookup("namespaces").unwrap();
        let r = rule(
            "<<.Series>>|<<.LabelMatchers>>|<<.GroupBy>>|<<.GroupBySlice>>|<<.LabelValuesByName>>|<<index .LabelValuesByName \"pod\">>",
            "",
        );
        let names = ["a".to_owned(), "b".to_owned()];
        let selector = LabelSelector::parse("verb in (GET,PUT),code!=500").unwrap();
        let built = build_custom(
            &r,
            "http_total",
            pods,
            Some(("ns1", namespaces)),
            Names::List(&names),
            &selector,
        )
        .unwrap();
        assert_eq!(
            built.promql,
            r#"http_total|code!="500",verb=~"GET|PUT",namespace="ns1",pod=~"a|b"|pod|[pod]|map[code:500 namespace:ns1 pod:a|b verb:GET|PUT]|a|b"#
        );
        assert_eq!(built.resource_label, "pod");
        let one = ["a".to_owned()];
        let built = build_custom(
            &r,
            "s",
            pods,
            None,
            Names::List(&one),
            &LabelSelector::default(),
        )
        .unwrap();
        assert_eq!(built.promql, r#"s|pod="a"|pod|[pod]|map[pod:a]|a"#);
        let built = build_custom(
            &r,
            "s",
            pods,
            None,
            Names::List(&[]),
            &LabelSelector::default(),
        )
        .unwrap();
        assert_eq!(built.promql, r#"s|pod=""|pod|[pod]|map[pod:]|"#);
        let built =
            build_custom(&r, "s", pods, None, Names::Any, &LabelSelector::default()).unwrap();
        assert_eq!(built.promql, r#"s|pod=~".+"|pod|[pod]|map[pod:.+]|.+"#);
    }

    #[test]
    fn external_requests_have_no_group_by_and_respect_namespaced() {
        let table = ResourceTable::builtin();
        let namespaces = table.lookup("namespaces").unwrap();
        let r = rule(
            "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>) <<.GroupBySlice>>",
            "",
        );
        let selector = LabelSelector::parse("queue=orders").unwrap();
        let promql = build_external(&r, "q", "prod", namespaces, &selector).unwrap();
        assert_eq!(
            promql,
            r#"sum(q{queue="orders",namespace="prod"}) by () []"#
        );
        let r = rule(
            "sum(<<.Series>>{<<.LabelMatchers>>})",
            "    namespaced: false\n",
        );
        assert_eq!(
            build_external(&r, "q", "prod", namespaces, &selector).unwrap(),
            r#"sum(q{queue="orders"})"#
        );
    }

    #[test]
    fn build_errors_name_the_rule_and_the_fix() {
        let table = ResourceTable::builtin();
        let namespaces = table.lookup("namespaces").unwrap();
        let services = table.lookup("services").unwrap();
        let text =
            "externalRules:\n- seriesQuery: x\n  metricsQuery: '<<.Series>>{<<.LabelMatchers>>}'\n";
        let config = parse(text, "t.yaml", &table, UnknownResources::Reject).unwrap();
        let r = &config.external_rules[0];
        let err =
            build_external(r, "q", "prod", namespaces, &LabelSelector::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "externalRules[0] (line 2) maps no series label to namespaces, so it cannot filter by namespace: add `resources.overrides.namespace: {resource: namespace}`, or set `resources.namespaced: false` for a cluster-wide metric"
        );
        let r = rule("<<.Series>>", "");
        let err = build_custom(
            &r,
            "s",
            services,
            None,
            Names::List(&[]),
            &LabelSelector::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "externalRules[0] (line 2) maps no series label to services"
        );
        let r = rule("<<if .Missing>>x<<end>>", "");
        let err = build_external(&r, "s", "", namespaces, &LabelSelector::default()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("externalRules[0] (line 2): metricsQuery: "),
            "{err}"
        );
        let r = rule("<<if false>>x<<end>>", "");
        let err = build_external(&r, "s", "", namespaces, &LabelSelector::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "externalRules[0] (line 2): empty query produced by metrics query template"
        );
    }
}
