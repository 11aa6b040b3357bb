//! A Go `text/template` subset with `<<` `>>` delimiters, as prometheus-adapter uses for
//! `metricsQuery`, resource queries and `resources.template`.
//!
//! CONTRACT STUB (to be implemented).

use std::collections::BTreeMap;

/// A value a template can refer to as `.Name`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Printed as is.
    Str(String),
    /// Printed as Go's `fmt` prints a `[]string`: `[a b]`.
    List(Vec<String>),
    /// Printed as Go's `fmt` prints a `map[string]string`: `map[k:v k2:v2]` (sorted keys).
    Map(BTreeMap<String, String>),
}

/// The data a template is executed with: field name (without the dot) → value.
pub type Context = BTreeMap<&'static str, Value>;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
}

/// A parse or execution error, with the position in the template text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

impl Template {
    /// Parses template text.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        Ok(Self {
            source: source.to_owned(),
        })
    }

    /// The text as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Executes the template.
    pub fn render(&self, _ctx: &Context) -> Result<String, TemplateError> {
        Err(TemplateError("not implemented".into()))
    }
}
