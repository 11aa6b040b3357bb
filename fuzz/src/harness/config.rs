//! Target `config`: prometheus-adapter configs with augur's `forecast` blocks, as text or
//! built as YAML (flow style) from the keys and values real configs use, anchors and aliases
//! included; loading must answer a config or errors that name the file and a line, within
//! bounded memory.

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use augur::config::{self, UnknownResources};
use augur::resources::ResourceTable;

const KEYS: &[&str] = &[
    "rules",
    "externalRules",
    "resourceRules",
    "seriesQuery",
    "seriesFilters",
    "is",
    "isNot",
    "resources",
    "overrides",
    "template",
    "namespaced",
    "resource",
    "group",
    "name",
    "matches",
    "as",
    "metricsQuery",
    "forecast",
    "model",
    "horizon",
    "step",
    "history",
    "reduce",
    "headroom",
    "serve",
    "fallbackWindow",
    "cpu",
    "memory",
    "containerQuery",
    "nodeQuery",
    "containerLabel",
    "window",
    "namespace",
    "pod",
    "node",
    "service",
    "<<",
    "x",
];

const WORDS: &[&str] = &[
    "http_requests_total{namespace!=\"\",pod!=\"\"}",
    "sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)",
    "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
    "scalar(sum(<<.Series>>{<<.LabelMatchers>>}))",
    "<<.Resource>>",
    "<<.Group>>",
    "kube_<<.Resource>>",
    "^(.*)_total$",
    "${1}_per_second",
    "^container_(.*)$",
    "namespace",
    "pod",
    "node",
    "service",
    "deployment",
    "apps",
    "networking.k8s.io",
    "ingress",
    "container",
    "1m",
    "0",
    "0s",
    "10m",
    "7d",
    "500ms",
    "-1m",
    "1e30s",
    "99999999999y",
    "292277026596y",
    "18446744073709551616s",
    "true",
    "false",
    "null",
    "~",
    "max",
    "point",
    "forecast",
    "guarded-linear",
    "linear",
    "holt-winters",
    "seasonal-naive",
    "model.onnx",
    "/dev/zero",
    "1.5",
    "-0.5",
    ".nan",
    ".inf",
    "1e308",
    "${metric}_forecast",
    "${metric}",
    "<<range .GroupBySlice>><<.>><<end>>",
    "<<",
    ">>",
];

#[derive(Debug, Arbitrary)]
enum Input {
    Text(String),
    Built(Vec<(Key, Node)>),
}

#[derive(Debug, Arbitrary)]
enum Node {
    Word(u8),
    Quoted(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
    Anchor(u8, Box<Node>),
    Alias(u8),
    Null,
}

#[derive(Debug, Arbitrary)]
enum Key {
    Known(u8),
    Any(String),
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

impl Key {
    fn render(&self) -> String {
        match self {
            Key::Known(i) => KEYS[usize::from(*i) % KEYS.len()].to_owned(),
            Key::Any(s) => quoted(s),
        }
    }
}

impl Node {
    fn render(&self, out: &mut String) {
        match self {
            Node::Word(i) => out.push_str(&quoted(WORDS[usize::from(*i) % WORDS.len()])),
            Node::Quoted(s) => out.push_str(&quoted(s)),
            Node::Seq(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.render(out);
                }
                out.push(']');
            }
            Node::Map(entries) => map(entries, out),
            Node::Anchor(id, node) => {
                out.push_str(&format!("&a{} ", id % 8));
                node.render(out);
            }
            Node::Alias(id) => out.push_str(&format!("*a{}", id % 8)),
            Node::Null => out.push('~'),
        }
    }
}

fn map(entries: &[(Key, Node)], out: &mut String) {
    out.push('{');
    for (i, (key, value)) in entries.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&key.render());
        out.push_str(": ");
        value.render(out);
    }
    out.push('}');
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(input) = Input::arbitrary(&mut u) else {
        return;
    };
    let text = match input {
        Input::Text(text) => text,
        Input::Built(entries) => {
            let mut out = String::new();
            map(&entries, &mut out);
            out
        }
    };
    static TABLE: OnceLock<ResourceTable> = OnceLock::new();
    let table = TABLE.get_or_init(ResourceTable::builtin);
    // `Guess` walks the config exactly as `Reject` does until an override names a resource
    // the table does not know, so it is loaded again (and its regexes compiled again, most
    // of an input's time) only when `Reject` refused such a resource.
    if let Err(shown) = load(&text, table, UnknownResources::Reject)
        && shown.contains(UNKNOWN_RESOURCE)
    {
        let _ = load(&text, table, UnknownResources::Guess);
    }
}

/// What `Reject` says of a resource the table does not know (`config/compile.rs`).
const UNKNOWN_RESOURCE: &str = "not a known resource";

/// Loads `text`; an error must name the file. Returns the error as shown.
fn load(text: &str, table: &ResourceTable, unknown: UnknownResources) -> Result<(), String> {
    config::parse(text, "fuzz.yaml", table, unknown)
        .map(drop)
        .map_err(|error| {
            let shown = error.to_string();
            assert!(
                shown.contains("fuzz.yaml"),
                "error without the file: {shown}"
            );
            shown
        })
}
