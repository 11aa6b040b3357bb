//! prometheus-adapter's discovery configuration: load, validate and compile into [`Config`].
//!
//! Loading is strict like Go's `yaml.UnmarshalStrict`: unknown and duplicate keys and wrong
//! types are errors, and every problem in a file is reported at once with its line and field
//! path. Submodules: [`yaml`] (node tree with lines), [`compile`] (strict walk and rule
//! semantics), [`forecast`] (the `forecast:` block), [`mapping`] (label ↔ resource),
//! [`expand`] (Go `Regexp.Expand`).
//!
//! Steps: read ([`load`]) → parse YAML → compile (pure: no file system, no clock) → check
//! that the ONNX model files the rules name exist. `config` imports only the libraries below
//! it (`promql` templates, `resources`, `units`, the forecast model names).

mod compile;
mod expand;
mod forecast;
mod mapping;
#[cfg(test)]
mod tests;
mod yaml;

use std::path::Path;
use std::time::Duration;

use regex::Regex;

pub use forecast::{DEFAULT_FORECAST_MODEL, ForecastSpec, ModelRef, Reduce, ServeMode};

use crate::promql::template::Template;
use crate::resources::{ResourceInfo, ResourceTable};

/// What to do with an override naming a resource the [`ResourceTable`] does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownResources {
    /// A config error (cluster mode: discovery knows every resource).
    Reject,
    /// Accept it with a guessed kind and plural (standalone mode: CRDs are not in the table).
    Guess,
}

/// A validated, compiled configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `rules`: custom.metrics.k8s.io.
    pub rules: Vec<Rule>,
    /// `externalRules`: external.metrics.k8s.io.
    pub external_rules: Vec<Rule>,
    /// `resourceRules`: metrics.k8s.io.
    pub resource_rules: Option<ResourceRules>,
}

/// Which list a rule came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    /// `rules`
    Rules,
    /// `externalRules`
    ExternalRules,
}

/// One compiled discovery rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The list it came from.
    pub section: Section,
    /// Index in that list (0-based, as `rules[3]` in error messages).
    pub index: usize,
    /// Line of the rule in the file (1-based).
    pub line: usize,
    /// `seriesQuery`, sent verbatim as `match[]`.
    pub series_query: String,
    /// `seriesFilters` followed by the implicit `is` filter from `name.matches`.
    pub series_filters: Vec<SeriesFilter>,
    /// `resources`.
    pub resources: ResourceMapping,
    /// `resources.namespaced` (default true); only used by external rules.
    pub namespaced: bool,
    /// `name`.
    pub naming: Naming,
    /// `metricsQuery`, compiled.
    pub metrics_query: Template,
    /// `metricsQuery` as written.
    pub metrics_query_source: String,
    /// `forecast` (augur extension): serve a forecast twin of every metric of this rule.
    pub forecast: Option<std::sync::Arc<ForecastSpec>>,
}

impl Rule {
    /// `rules[i]` or `externalRules[i]`, as in error messages, `augur check` and the
    /// forecast metrics' `rule` label.
    pub fn label(&self) -> String {
        let section = match self.section {
            Section::Rules => "rules",
            Section::ExternalRules => "externalRules",
        };
        format!("{section}[{}]", self.index)
    }
}

/// One `seriesFilters` entry (unanchored, on the series name only).
#[derive(Debug, Clone)]
pub enum SeriesFilter {
    /// `is: re`: the name must match.
    Is(Regex),
    /// `isNot: re`: the name must not match.
    IsNot(Regex),
}

impl SeriesFilter {
    /// Whether a series name passes this filter.
    pub fn passes(&self, series_name: &str) -> bool {
        match self {
            SeriesFilter::Is(re) => re.is_match(series_name),
            SeriesFilter::IsNot(re) => !re.is_match(series_name),
        }
    }
}

/// `name.matches` / `name.as`.
#[derive(Debug, Clone)]
pub struct Naming {
    /// `matches` (default `.*`).
    pub matches: Regex,
    /// `as`, a Go `Regexp.Expand` template (default `$0` or `$1`).
    pub as_template: String,
}

impl Naming {
    /// The metric name for a series name (Go `FindStringSubmatchIndex` + `Expand`), or `None`
    /// when `matches` does not match.
    pub fn metric_name(&self, series_name: &str) -> Option<String> {
        let caps = self.matches.captures(series_name)?;
        Some(expand::expand(&self.matches, &caps, &self.as_template))
    }
}

/// `resources`: label ↔ group-resource mapping of a rule.
#[derive(Debug, Clone, Default)]
pub struct ResourceMapping {
    /// `overrides`: label → resource, normalised through the resource table.
    pub overrides: Vec<(String, ResourceInfo)>,
    /// `template`, compiled both ways.
    pub template: Option<ResourceTemplate>,
}

/// A compiled `resources.template`.
#[derive(Debug, Clone)]
pub struct ResourceTemplate {
    /// The template executed with `.Group` / `.Resource` (resource → label).
    pub template: Template,
    /// The template turned into an anchored regex with `group` / `resource` captures
    /// (label → resource).
    pub regex: Regex,
}

impl ResourceMapping {
    /// The resource a series label names: overrides first, then the template (kept only when
    /// the table resolves the captured resource).
    pub fn resource_for_label(&self, label: &str, table: &ResourceTable) -> Option<ResourceInfo> {
        mapping::resource_for_label(self, label, table)
    }

    /// The label that holds a resource's object names: the override's label, else the template
    /// executed with `.Group` (`.`/`-` → `_`) and the singular `.Resource`.
    pub fn label_for_resource(&self, resource: &ResourceInfo) -> Option<String> {
        mapping::label_for_resource(self, resource)
    }

    /// Compiles a `resources.template` text (as in a config file) into a [`ResourceTemplate`].
    pub fn compile_template(source: &str) -> Result<ResourceTemplate, String> {
        mapping::compile_template(source)
    }
}

/// `resourceRules`.
#[derive(Debug, Clone)]
pub struct ResourceRules {
    /// `cpu`.
    pub cpu: ResourceRule,
    /// `memory`.
    pub memory: ResourceRule,
    /// `window` (default 1m).
    pub window: Duration,
}

/// `resourceRules.cpu` or `resourceRules.memory`.
#[derive(Debug, Clone)]
pub struct ResourceRule {
    /// `containerQuery`.
    pub container_query: Template,
    /// `nodeQuery`.
    pub node_query: Template,
    /// `resources`.
    pub resources: ResourceMapping,
    /// `containerLabel`.
    pub container_label: String,
}

/// Every problem found in one config file, reported together.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    /// The problems, in file order.
    pub problems: Vec<Problem>,
}

/// One config problem: where and why. Displayed as `file:line: path: message` (the path part
/// is left out when empty, e.g. for YAML syntax errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problem {
    /// File name as given.
    pub file: String,
    /// 1-based line (0 when the file could not be read).
    pub line: usize,
    /// Field path, e.g. `rules[2].name.as`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Reads, parses and compiles a config file.
pub fn load(
    path: &Path,
    table: &ResourceTable,
    unknown: UnknownResources,
) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        problems: vec![Problem {
            file: file.clone(),
            line: 0,
            path: String::new(),
            message: format!("cannot read file: {e}"),
        }],
    })?;
    parse(&text, &file, table, unknown)
}

/// Parses and compiles config text, then checks the ONNX model files it names (relative to
/// `file`'s directory); `file` is used in messages.
pub fn parse(
    text: &str,
    file: &str,
    table: &ResourceTable,
    unknown: UnknownResources,
) -> Result<Config, ConfigError> {
    let root = yaml::parse(text).map_err(|e| ConfigError {
        problems: vec![Problem {
            file: file.to_owned(),
            line: e.line,
            path: String::new(),
            message: format!("invalid YAML: {} (column {})", e.message, e.column),
        }],
    })?;
    let mut walker = compile::Walker {
        file,
        table,
        unknown,
        problems: Vec::new(),
        model_files: Vec::new(),
    };
    let config = walker.config(root.as_ref());
    let mut problems = walker.problems;
    forecast::check_model_files(&walker.model_files, file, &mut problems);
    problems.sort_by_key(|p| p.line);
    match config {
        Some(config) if problems.is_empty() => Ok(config),
        _ => Err(ConfigError { problems }),
    }
}
