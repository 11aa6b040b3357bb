//! Target `template`: `metricsQuery` templates (Go text/template with `<< >>`), as text or
//! built from actions, parsed and executed with the context a request gives them; the output
//! must stay bounded whatever the template does.

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Unstructured};
use augur::promql::template::{Context, Template, Value};

/// Pieces of real templates and of the constructs the subset supports.
const PIECES: &[&str] = &[
    "sum(",
    ")",
    " by (",
    "rate(",
    "[2m]",
    "{",
    "}",
    ",",
    "<<.Series>>",
    "<<.LabelMatchers>>",
    "<<.GroupBy>>",
    "<<.GroupBySlice>>",
    "<<.LabelValuesByName>>",
    "<<.>>",
    "<<- ",
    " ->>",
    "<</* c */>>",
    "<<if .GroupBy>>",
    "<<else>>",
    "<<else if .Series>>",
    "<<end>>",
    "<<range .GroupBySlice>>",
    "<<range $k, $v := .LabelValuesByName>>",
    "<<$k>>",
    "<<$v>>",
    "<<range .LabelValuesByName>>",
    "<<index .LabelValuesByName \"pod\">>",
    "<<len .GroupBySlice>>",
    "<<printf \"%s=%q %d%% %v\" .GroupBy .Series 42 .GroupBySlice>>",
    "<<print .Series>>",
    "<<println>>",
    "<<not .GroupBy>>",
    "<<and .Series .GroupBy>>",
    "<<or \"\" .Series>>",
    "<<eq .GroupBy \"pod\">>",
    "<<ne 1 2>>",
    "<<.GroupBy | printf \"%s\">>",
    "<<(len .Series)>>",
    "<<with .Series>>",
    "<<join .GroupBySlice \",\">>",
    "<<",
    ">>",
    "\"",
    "(",
    "<<.Missing>>",
    "<<.Series.Field>>",
    "<<index .GroupBySlice 99>>",
    "<<$>>",
];

#[derive(Debug, Arbitrary)]
enum Input {
    Text(String),
    Built(Vec<Piece>),
}

#[derive(Debug, Arbitrary)]
enum Piece {
    Known(u8),
    Any(String),
}

/// The context a custom metrics request renders a `metricsQuery` with.
fn context(names: &[String]) -> Context {
    let mut ctx = Context::new();
    ctx.insert("Series", Value::Str("http_requests_total".to_owned()));
    ctx.insert(
        "LabelMatchers",
        Value::Str(format!(
            "namespace=\"default\",pod=~\"{}\"",
            names.join("|")
        )),
    );
    ctx.insert("GroupBy", Value::Str("pod".to_owned()));
    ctx.insert(
        "GroupBySlice",
        Value::List(vec!["pod".to_owned(), "namespace".to_owned()]),
    );
    ctx.insert(
        "LabelValuesByName",
        Value::Map(BTreeMap::from([
            ("pod".to_owned(), names.join("|")),
            ("namespace".to_owned(), "default".to_owned()),
        ])),
    );
    ctx
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(input) = Input::arbitrary(&mut u) else {
        return;
    };
    let source = match input {
        Input::Text(text) => text,
        Input::Built(pieces) => pieces
            .iter()
            .map(|p| match p {
                Piece::Known(i) => PIECES[usize::from(*i) % PIECES.len()].to_owned(),
                Piece::Any(s) => s.clone(),
            })
            .collect(),
    };
    let Ok(template) = Template::parse(&source) else {
        return;
    };
    let names: Vec<String> = (0..3).map(|i| format!("web-{i}")).collect();
    let _ = template.render(&context(&names));
}
