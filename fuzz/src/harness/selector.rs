//! Target `selector`: Kubernetes label selectors (`labelSelector`, `metricLabelSelector`) as
//! text or built from requirements; a parsed selector must print back to text that parses to
//! the same selector, and its PromQL matchers, JSON and matching must not panic.

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Unstructured};
use augur::promql::selector::LabelSelector;

const KEYS: &[&str] = &[
    "app",
    "tier",
    "app.kubernetes.io/name",
    "example.com/x",
    "a",
    "_",
    "9",
    "-a",
    "a-",
    "a/b/c",
];
const OPERATORS: &[&str] = &[
    "=", "==", "!=", " in ", " notin ", ">", "<", "", "!", " in", "=!",
];
const VALUES: &[&str] = &[
    "web", "", "a.b-c_d", "x y", "(", ")", ",", "\"q\"", "1", "-1", "é",
];

#[derive(Debug, Arbitrary)]
enum Input {
    Text(String),
    Built(Vec<Requirement>, Vec<(u8, u8)>),
}

#[derive(Debug, Arbitrary)]
struct Requirement {
    negate: bool,
    key: Piece,
    operator: u8,
    values: Vec<Piece>,
    spaces: u8,
}

#[derive(Debug, Arbitrary)]
enum Piece {
    Known(u8),
    Any(String),
}

impl Piece {
    fn text<'a>(&'a self, known: &'a [&'a str]) -> &'a str {
        match self {
            Piece::Known(i) => known[usize::from(*i) % known.len()],
            Piece::Any(s) => s,
        }
    }
}

fn render(requirements: &[Requirement]) -> String {
    let parts: Vec<String> = requirements
        .iter()
        .map(|r| {
            let pad = " ".repeat(usize::from(r.spaces % 3));
            let op = OPERATORS[usize::from(r.operator) % OPERATORS.len()];
            let values: Vec<&str> = r.values.iter().map(|v| v.text(VALUES)).collect();
            let value = if op.contains("in") {
                format!("({})", values.join(","))
            } else {
                values.first().copied().unwrap_or_default().to_owned()
            };
            let bang = if r.negate { "!" } else { "" };
            format!("{pad}{bang}{}{pad}{op}{pad}{value}", r.key.text(KEYS))
        })
        .collect();
    parts.join(",")
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(input) = Input::arbitrary(&mut u) else {
        return;
    };
    let (text, objects) = match input {
        Input::Text(text) => (text, Vec::new()),
        Input::Built(requirements, objects) => (render(&requirements), objects),
    };
    let Ok(selector) = LabelSelector::parse(&text) else {
        return;
    };
    let printed = selector.to_string();
    let again = LabelSelector::parse(&printed)
        .unwrap_or_else(|e| panic!("{text:?} parsed, printed as {printed:?}, which does not: {e}"));
    assert_eq!(again, selector, "{text:?} printed as {printed:?}");
    let _ = selector.to_matchers();
    let _ = selector.to_json();
    for (key, value) in objects {
        let labels: BTreeMap<String, String> = [(
            KEYS[usize::from(key) % KEYS.len()].to_owned(),
            VALUES[usize::from(value) % VALUES.len()].to_owned(),
        )]
        .into();
        let _ = selector.matches(&labels);
    }
}
