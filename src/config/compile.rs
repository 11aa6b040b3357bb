//! Walks the YAML node tree strictly (unknown/duplicate keys, types) and compiles [`Config`].

use std::time::Duration;

use regex::Regex;

use super::forecast::ModelFile;
use super::yaml::{Kind, Node};
use super::{
    Config, Naming, Problem, ResourceMapping, ResourceRule, ResourceRules, Rule, Section,
    SeriesFilter, UnknownResources, mapping,
};
use crate::promql::template::Template;
use crate::resources::ResourceTable;
use crate::units::prom_duration;

const TOP_KEYS: &[&str] = &["rules", "resourceRules", "externalRules"];
const RULE_KEYS: &[&str] = &[
    "seriesQuery",
    "seriesFilters",
    "resources",
    "name",
    "metricsQuery",
    "forecast",
];
const FILTER_KEYS: &[&str] = &["is", "isNot"];
const RESOURCES_KEYS: &[&str] = &["overrides", "template", "namespaced"];
const OVERRIDE_KEYS: &[&str] = &["group", "resource"];
const NAME_KEYS: &[&str] = &["matches", "as"];
const RESOURCE_RULES_KEYS: &[&str] = &["cpu", "memory", "window"];

const RESOURCE_RULE_KEYS: &[&str] = &["containerQuery", "nodeQuery", "resources", "containerLabel"];

/// Collects problems while compiling one file.
pub(crate) struct Walker<'a> {
    pub(crate) file: &'a str,
    pub(crate) table: &'a ResourceTable,
    pub(crate) unknown: UnknownResources,
    pub(crate) problems: Vec<Problem>,
    /// ONNX model files named by `forecast.model`, for the load step to check.
    pub(crate) model_files: Vec<ModelFile>,
}

/// The entries of a mapping whose keys were checked.
pub(super) struct Fields<'n> {
    pub(super) line: usize,
    entries: Vec<(String, &'n Node)>,
}

impl<'n> Fields<'n> {
    pub(super) fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, n)| *n)
    }
}

pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The allowed key closest to a misspelt one, if it is close enough to be a typo.
fn suggest<'k>(key: &str, allowed: &[&'k str]) -> Option<&'k str> {
    allowed
        .iter()
        .map(|a| {
            (
                strsim::levenshtein(&key.to_lowercase(), &a.to_lowercase()),
                *a,
            )
        })
        .min()
        .filter(|(d, a)| *d <= 2.max(a.len() / 3))
        .map(|(_, a)| a)
}

impl Walker<'_> {
    pub(super) fn problem(&mut self, line: usize, path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.to_owned(),
            line,
            path: path.to_owned(),
            message: message.into(),
        });
    }

    /// The entries of a mapping (null = empty), reporting non-string and duplicate keys.
    fn entries<'n>(&mut self, node: &'n Node, path: &str) -> Option<Fields<'n>> {
        if node.is_null() {
            return Some(Fields {
                line: node.line,
                entries: Vec::new(),
            });
        }
        let Kind::Map(pairs) = &node.kind else {
            self.problem(
                node.line,
                path,
                format!("expected a mapping, got {}", node.type_name()),
            );
            return None;
        };
        let mut entries: Vec<(String, &'n Node)> = Vec::new();
        let mut lines: Vec<usize> = Vec::new();
        for (key, value) in pairs {
            let Kind::Scalar { value: name, .. } = &key.kind else {
                self.problem(
                    key.line,
                    path,
                    format!("mapping keys must be strings, got {}", key.type_name()),
                );
                continue;
            };
            if let Some(i) = entries.iter().position(|(k, _)| k == name) {
                let first = lines[i];
                self.problem(
                    key.line,
                    &join(path, name),
                    format!("duplicate key {name:?} (first defined on line {first})"),
                );
                continue;
            }
            entries.push((name.clone(), value));
            lines.push(key.line);
        }
        Some(Fields {
            line: node.line,
            entries,
        })
    }

    /// A mapping with a fixed set of keys: unknown keys are reported (and dropped).
    pub(super) fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        allowed: &[&str],
    ) -> Option<Fields<'n>> {
        let mut fields = self.entries(node, path)?;
        let mut unknown = Vec::new();
        fields.entries.retain(|(k, v)| {
            let ok = allowed.contains(&k.as_str());
            if !ok {
                unknown.push((k.clone(), v.line));
            }
            ok
        });
        for (key, line) in unknown {
            // A rule-level key nested one level too deep (`metricsQuery` under `name:`) is the
            // classic indentation mistake: say where it belongs.
            let misplaced = || {
                let parent = path.rsplit_once('.').map(|(p, _)| p)?;
                (RULE_KEYS.contains(&key.as_str()) && parent.ends_with(']'))
                    .then(|| format!(" (a rule field: indent it as {parent}.{key})"))
            };
            let hint = suggest(&key, allowed)
                .map(|s| format!(" (did you mean {s:?}?)"))
                .or_else(misplaced)
                .unwrap_or_default();
            self.problem(
                line,
                &join(path, &key),
                format!(
                    "unknown field {key:?}{hint}; allowed: {}",
                    allowed.join(", ")
                ),
            );
        }
        Some(fields)
    }

    /// A string field: any scalar (as Go yaml.v2 decodes into a string); null is "".
    pub(super) fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.kind {
            _ if node.is_null() => Some(String::new()),
            Kind::Scalar { value, .. } => Some(value.clone()),
            _ => {
                self.problem(
                    node.line,
                    path,
                    format!("expected a string, got {}", node.type_name()),
                );
                None
            }
        }
    }

    fn opt_string(&mut self, fields: &Fields<'_>, path: &str, key: &str) -> Option<String> {
        match fields.get(key) {
            Some(node) => self.string(node, &join(path, key)),
            None => Some(String::new()),
        }
    }

    /// A required, non-empty string field; returns it with its line.
    fn required_string(
        &mut self,
        fields: &Fields<'_>,
        path: &str,
        key: &str,
    ) -> Option<(String, usize)> {
        let Some(node) = fields.get(key) else {
            self.problem(
                fields.line,
                &join(path, key),
                format!("missing required field `{key}`"),
            );
            return None;
        };
        let value = self.string(node, &join(path, key))?;
        if value.trim().is_empty() {
            self.problem(
                node.line,
                &join(path, key),
                format!("`{key}` must not be empty"),
            );
            return None;
        }
        Some((value, node.line))
    }

    fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        if let Kind::Scalar { value, plain: true } = &node.kind {
            match value.as_str() {
                "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "y"
                | "Y" => {
                    return Some(true);
                }
                "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "n"
                | "N" => {
                    return Some(false);
                }
                _ => {}
            }
        }
        let got = match &node.kind {
            Kind::Scalar { value, .. } if !node.is_null() => format!("{value:?}"),
            _ => node.type_name().to_owned(),
        };
        self.problem(
            node.line,
            path,
            format!("expected true or false, got {got}"),
        );
        None
    }

    fn list<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n [Node]> {
        match &node.kind {
            _ if node.is_null() => Some(&[]),
            Kind::Seq(items) => Some(items),
            _ => {
                self.problem(
                    node.line,
                    path,
                    format!("expected a list, got {}", node.type_name()),
                );
                None
            }
        }
    }

    fn regex(&mut self, text: &str, line: usize, path: &str) -> Option<Regex> {
        match Regex::new(text) {
            Ok(re) => Some(re),
            Err(e) => {
                let why = mapping::regex_message(&e);
                self.problem(
                    line,
                    path,
                    format!("invalid regular expression {text:?}: {why}"),
                );
                None
            }
        }
    }

    fn template(&mut self, text: &str, line: usize, path: &str) -> Option<Template> {
        match Template::parse(text) {
            Ok(t) => Some(t),
            Err(e) => {
                self.problem(line, path, format!("invalid template: {e}"));
                None
            }
        }
    }

    /// The whole document (`None` = empty file).
    pub(crate) fn config(&mut self, root: Option<&Node>) -> Option<Config> {
        let mut config = Config {
            rules: Vec::new(),
            external_rules: Vec::new(),
            resource_rules: None,
        };
        let Some(root) = root else {
            return Some(config);
        };
        let fields = self.fields(root, "", TOP_KEYS)?;
        if let Some(node) = fields.get("rules") {
            config.rules = self.rules(node, "rules", Section::Rules);
        }
        if let Some(node) = fields.get("externalRules") {
            config.external_rules = self.rules(node, "externalRules", Section::ExternalRules);
        }
        if let Some(node) = fields.get("resourceRules").filter(|n| !n.is_null()) {
            config.resource_rules = self.resource_rules(node, "resourceRules");
        }
        Some(config)
    }

    fn rules(&mut self, node: &Node, path: &str, section: Section) -> Vec<Rule> {
        let Some(items) = self.list(node, path) else {
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| self.rule(item, &format!("{path}[{i}]"), section, i))
            .collect()
    }

    fn rule(&mut self, node: &Node, path: &str, section: Section, index: usize) -> Option<Rule> {
        let before = self.problems.len();
        let fields = self.fields(node, path, RULE_KEYS)?;
        let series_query = self.required_string(&fields, path, "seriesQuery");
        let mut series_filters = Vec::new();
        if let Some(list) = fields.get("seriesFilters") {
            let p = join(path, "seriesFilters");
            for (i, item) in self.list(list, &p).unwrap_or_default().iter().enumerate() {
                if let Some(filter) = self.filter(item, &format!("{p}[{i}]")) {
                    series_filters.push(filter);
                }
            }
        }
        let (resources, namespaced) = match fields.get("resources") {
            Some(n) => self.resources(n, &join(path, "resources"), true),
            None => Some((ResourceMapping::default(), true)),
        }
        .unzip();
        let naming = self.naming(fields.get("name"), &join(path, "name"), fields.line);
        let metrics = self
            .required_string(&fields, path, "metricsQuery")
            .and_then(|(text, line)| {
                self.template(&text, line, &join(path, "metricsQuery"))
                    .map(|t| (t, text))
            });
        let forecast = match fields.get("forecast").filter(|n| !n.is_null()) {
            Some(n) => self.forecast(n, &join(path, "forecast")).map(Some),
            None => Some(None),
        };
        if self.problems.len() > before {
            return None;
        }
        let (series_query, _) = series_query?;
        let naming = naming?;
        series_filters.push(SeriesFilter::Is(naming.matches.clone()));
        let (metrics_query, metrics_query_source) = metrics?;
        Some(Rule {
            section,
            index,
            line: node.line,
            series_query,
            series_filters,
            resources: resources?,
            namespaced: namespaced?,
            naming,
            metrics_query,
            metrics_query_source,
            forecast: forecast?.map(std::sync::Arc::new),
        })
    }

    /// A duration field with a default; `at_least_second` requires whole seconds ≥ 1s.
    pub(super) fn duration_field(
        &mut self,
        fields: &Fields<'_>,
        path: &str,
        key: &str,
        default: Duration,
    ) -> Option<(Duration, usize)> {
        let Some(node) = fields.get(key).filter(|n| !n.is_null()) else {
            return Some((default, fields.line));
        };
        let p = join(path, key);
        let text = self.string(node, &p)?;
        match prom_duration(text.trim()) {
            Some(d) => Some((d, node.line)),
            None => {
                self.problem(
                    node.line,
                    &p,
                    format!("invalid duration {text:?}: expected a Prometheus duration like 30s, 5m or 1h30m"),
                );
                None
            }
        }
    }

    /// A field with a fixed set of values; returns the index in `allowed`.
    pub(super) fn choice(
        &mut self,
        fields: &Fields<'_>,
        path: &str,
        key: &str,
        allowed: &[&str],
    ) -> Option<usize> {
        let Some(node) = fields.get(key).filter(|n| !n.is_null()) else {
            return Some(0);
        };
        let p = join(path, key);
        let text = self.string(node, &p)?;
        let found = allowed.iter().position(|a| *a == text.trim());
        if found.is_none() {
            self.problem(
                node.line,
                &p,
                format!("invalid value {text:?}; allowed: {}", allowed.join(", ")),
            );
        }
        found
    }

    fn filter(&mut self, node: &Node, path: &str) -> Option<SeriesFilter> {
        let fields = self.fields(node, path, FILTER_KEYS)?;
        let is = self.opt_string(&fields, path, "is")?;
        let is_not = self.opt_string(&fields, path, "isNot")?;
        let line = |key: &str| fields.get(key).map_or(fields.line, |n| n.line);
        match (is.is_empty(), is_not.is_empty()) {
            (false, false) => {
                self.problem(
                    fields.line,
                    path,
                    format!("cannot have both an `is` ({is:?}) and `isNot` ({is_not:?})"),
                );
                None
            }
            (true, true) => {
                self.problem(fields.line, path, "must have either an `is` or `isNot`");
                None
            }
            (false, true) => self
                .regex(&is, line("is"), &join(path, "is"))
                .map(SeriesFilter::Is),
            (true, false) => self
                .regex(&is_not, line("isNot"), &join(path, "isNot"))
                .map(SeriesFilter::IsNot),
        }
    }

    fn naming(&mut self, node: Option<&Node>, path: &str, rule_line: usize) -> Option<Naming> {
        let (matches, as_template, line, as_line) = match node {
            Some(node) => {
                let fields = self.fields(node, path, NAME_KEYS)?;
                let matches = self.opt_string(&fields, path, "matches")?;
                let as_template = self.opt_string(&fields, path, "as")?;
                let line_of = |k: &str| fields.get(k).map_or(fields.line, |n| n.line);
                (matches, as_template, line_of("matches"), line_of("as"))
            }
            None => (String::new(), String::new(), rule_line, rule_line),
        };
        let pattern = if matches.is_empty() {
            ".*"
        } else {
            matches.as_str()
        };
        let regex = self.regex(pattern, line, &join(path, "matches"))?;
        let as_template = if as_template.is_empty() {
            match regex.captures_len() - 1 {
                0 => "$0".to_owned(),
                1 => "$1".to_owned(),
                n => {
                    self.problem(
                        as_line,
                        &join(path, "as"),
                        format!("must specify an 'as' value: `matches` {pattern:?} has {n} capture groups"),
                    );
                    return None;
                }
            }
        } else {
            as_template
        };
        Some(Naming {
            matches: regex,
            as_template,
        })
    }

    /// `resources` of a rule (with `namespaced`) or of a resource rule (`allow_namespaced` off).
    fn resources(
        &mut self,
        node: &Node,
        path: &str,
        allow_namespaced: bool,
    ) -> Option<(ResourceMapping, bool)> {
        let keys = if allow_namespaced {
            RESOURCES_KEYS
        } else {
            &RESOURCES_KEYS[..2]
        };
        let fields = self.fields(node, path, keys)?;
        let before = self.problems.len();
        let mut mapping = ResourceMapping::default();
        if let Some(node) = fields.get("overrides") {
            let p = join(path, "overrides");
            if let Some(labels) = self.entries(node, &p) {
                for (label, value) in labels.entries {
                    let lp = join(&p, &label);
                    if let Some(info) = self.override_entry(value, &lp) {
                        mapping.overrides.push((label, info));
                    }
                }
            }
        }
        if let Some(node) = fields.get("template") {
            let p = join(path, "template");
            if let Some(text) = self.string(node, &p).filter(|t| !t.is_empty()) {
                match mapping::compile_template(&text) {
                    Ok(t) => mapping.template = Some(t),
                    Err(msg) => self.problem(node.line, &p, msg),
                }
            }
        }
        let namespaced = match fields.get("namespaced") {
            Some(n) if !n.is_null() => self.boolean(n, &join(path, "namespaced")),
            _ => Some(true),
        };
        if self.problems.len() > before {
            return None;
        }
        Some((mapping, namespaced?))
    }

    fn override_entry(
        &mut self,
        node: &Node,
        path: &str,
    ) -> Option<crate::resources::ResourceInfo> {
        let fields = self.fields(node, path, OVERRIDE_KEYS)?;
        let group = self.opt_string(&fields, path, "group")?;
        let (resource, line) = self.required_string(&fields, path, "resource")?;
        // An empty group matches any group, as the RESTMapper does (`ingress` → networking.k8s.io).
        let known = if group.is_empty() {
            self.table.lookup(&resource)
        } else {
            self.table.lookup_group(&group, &resource)
        };
        if let Some(info) = known {
            return Some(info.clone());
        }
        match self.unknown {
            UnknownResources::Guess => Some(mapping::guess(&group, &resource)),
            UnknownResources::Reject => {
                let gr = if group.is_empty() {
                    resource.clone()
                } else {
                    format!("{resource}.{group}")
                };
                self.problem(
                    line,
                    &join(path, "resource"),
                    format!("unable to normalize group-resource {gr:?}: not a known resource"),
                );
                None
            }
        }
    }

    fn resource_rules(&mut self, node: &Node, path: &str) -> Option<ResourceRules> {
        let fields = self.fields(node, path, RESOURCE_RULES_KEYS)?;
        let rule = |w: &mut Self, key: &str| match fields.get(key) {
            Some(n) => w.resource_rule(n, &join(path, key)),
            None => {
                w.problem(
                    fields.line,
                    &join(path, key),
                    format!("missing required field `{key}`"),
                );
                None
            }
        };
        let cpu = rule(self, "cpu");
        let memory = rule(self, "memory");
        let window = match fields.get("window") {
            Some(n) => {
                let p = join(path, "window");
                match self.string(n, &p)? {
                    text if text.is_empty() => Some(Duration::from_secs(60)),
                    text => {
                        let d = prom_duration(&text);
                        if d.is_none() {
                            self.problem(
                                n.line,
                                &p,
                                format!("invalid duration {text:?}: expected a Prometheus duration like 30s, 5m or 1h30m"),
                            );
                        }
                        d
                    }
                }
            }
            None => Some(Duration::from_secs(60)),
        };
        Some(ResourceRules {
            cpu: cpu?,
            memory: memory?,
            window: window?,
        })
    }

    fn resource_rule(&mut self, node: &Node, path: &str) -> Option<ResourceRule> {
        let fields = self.fields(node, path, RESOURCE_RULE_KEYS)?;
        let query = |w: &mut Self, key: &str| {
            w.required_string(&fields, path, key)
                .and_then(|(text, line)| w.template(&text, line, &join(path, key)))
        };
        let container_query = query(self, "containerQuery");
        let node_query = query(self, "nodeQuery");
        let resources = match fields.get("resources") {
            Some(n) => self
                .resources(n, &join(path, "resources"), false)
                .map(|(m, _)| m),
            None => Some(ResourceMapping::default()),
        };
        let container_label = self.opt_string(&fields, path, "containerLabel");
        Some(ResourceRule {
            container_query: container_query?,
            node_query: node_query?,
            resources: resources?,
            container_label: container_label?,
        })
    }
}
