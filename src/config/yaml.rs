//! A YAML node tree with line numbers and ordered mappings, built from yaml-rust2 events.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// One YAML node and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) line: usize,
    pub(crate) kind: Kind,
}

/// What a node holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// A scalar; `plain` when unquoted (so `~`, `null`, `true` keep their YAML meaning).
    Scalar { value: String, plain: bool },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping in file order, duplicates kept.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// Whether this is a YAML null (`~`, `null`, or nothing at all).
    pub(crate) fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { value, plain: true }
            if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// A short name of the node's type for messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match &self.kind {
            _ if self.is_null() => "null",
            Kind::Scalar { .. } => "a scalar",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }
}

/// A YAML syntax error: line and what the parser said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) message: String,
}

/// Most bytes of nodes aliases may add to a file of `len` bytes: four times its size, at
/// least 1 MiB. Each alias copies the node it names, so nested anchors (`a1: &a1 [*a0, *a0,
/// …]`, `a2: &a2 [*a1, *a1, …]`, …) grow exponentially; past this the file is refused.
pub(crate) fn alias_budget(len: usize) -> usize {
    len.saturating_mul(4).max(1 << 20)
}

/// Deepest nesting of sequences and mappings accepted (deeper trees would recurse deeply in
/// the compiler and when dropped).
pub(crate) const MAX_DEPTH: usize = 256;

/// Parses the first document of `text`; `None` for an empty stream (or only comments).
pub(crate) fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut builder = Builder {
        budget: alias_budget(text.len()),
        ..Builder::default()
    };
    let mut parser = Parser::new_from_str(text);
    loop {
        let (event, mark) = parser.next_token().map_err(|e| SyntaxError {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info().to_owned(),
        })?;
        match event {
            Event::StreamEnd => break,
            // Only the first document counts (as `load` with `multi = false`).
            Event::DocumentEnd => break,
            event => builder.on_event(event, mark)?,
        }
    }
    Ok(builder.root)
}

enum Frame {
    Seq {
        line: usize,
        anchor: usize,
        items: Vec<Node>,
        weight: usize,
    },
    Map {
        line: usize,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        weight: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    /// Anchored nodes and their weights (see [`weight_of_scalar`]).
    anchors: HashMap<usize, (Node, usize)>,
    root: Option<Node>,
    /// Bytes aliases have added so far, and how many they may.
    expanded: usize,
    budget: usize,
}

/// What a scalar node costs in memory, roughly: the node and its text.
fn weight_of_scalar(value: &str) -> usize {
    std::mem::size_of::<Node>() + value.len()
}

impl Builder {
    fn finish(&mut self, node: Node, anchor: usize, weight: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), weight));
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Seq {
                items, weight: w, ..
            }) => {
                items.push(node);
                *w = w.saturating_add(weight);
            }
            Some(Frame::Map {
                entries,
                key,
                weight: w,
                ..
            }) => {
                *w = w.saturating_add(weight);
                match key.take() {
                    None => *key = Some(node),
                    Some(k) => entries.push((k, node)),
                }
            }
        }
    }

    fn push(&mut self, frame: Frame, mark: Marker) -> Result<(), SyntaxError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(SyntaxError {
                line: mark.line(),
                column: mark.col() + 1,
                message: format!(
                    "lists and mappings nested more than {MAX_DEPTH} deep; the file is refused"
                ),
            });
        }
        self.stack.push(frame);
        Ok(())
    }

    fn on_event(&mut self, ev: Event, mark: Marker) -> Result<(), SyntaxError> {
        let line = mark.line();
        match ev {
            Event::Scalar(value, style, anchor, _tag) => {
                let plain = style == TScalarStyle::Plain;
                let weight = weight_of_scalar(&value);
                self.finish(
                    Node {
                        line,
                        kind: Kind::Scalar { value, plain },
                    },
                    anchor,
                    weight,
                );
            }
            Event::SequenceStart(anchor, _) => self.push(
                Frame::Seq {
                    line,
                    anchor,
                    items: Vec::new(),
                    weight: std::mem::size_of::<Node>(),
                },
                mark,
            )?,
            Event::MappingStart(anchor, _) => self.push(
                Frame::Map {
                    line,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                    weight: std::mem::size_of::<Node>(),
                },
                mark,
            )?,
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor, weight) = match self.stack.pop() {
                    Some(Frame::Seq {
                        line,
                        anchor,
                        items,
                        weight,
                    }) => (
                        Node {
                            line,
                            kind: Kind::Seq(items),
                        },
                        anchor,
                        weight,
                    ),
                    Some(Frame::Map {
                        line,
                        anchor,
                        entries,
                        weight,
                        ..
                    }) => (
                        Node {
                            line,
                            kind: Kind::Map(entries),
                        },
                        anchor,
                        weight,
                    ),
                    None => return Ok(()),
                };
                self.finish(node, anchor, weight);
            }
            Event::Alias(id) => {
                let (node, weight) = match self.anchors.get(&id) {
                    Some((node, weight)) => {
                        self.expanded = self.expanded.saturating_add(*weight);
                        if self.expanded > self.budget {
                            return Err(SyntaxError {
                                line,
                                column: mark.col() + 1,
                                message: format!(
                                    "aliases expand to more than {} KiB (4 times the file's size, at least 1 MiB); nested aliases this large are refused to bound memory",
                                    self.budget / 1024
                                ),
                            });
                        }
                        let mut node = node.clone();
                        node.line = line;
                        (node, *weight)
                    }
                    None => (
                        Node {
                            line,
                            kind: Kind::Scalar {
                                value: String::new(),
                                plain: true,
                            },
                        },
                        weight_of_scalar(""),
                    ),
                };
                self.finish(node, 0, weight);
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn scalar(n: &Node) -> &str {
        match &n.kind {
            Kind::Scalar { value, .. } => value,
            _ => panic!("not a scalar"),
        }
    }

    #[test]
    fn keeps_lines_order_and_duplicates() {
        let root = parse("# c\na: 1\n\"b\": [x, y]\na: {c: d}\n")
            .unwrap()
            .unwrap();
        let Kind::Map(entries) = &root.kind else {
            panic!("not a map")
        };
        let keys: Vec<(&str, usize)> = entries.iter().map(|(k, _)| (scalar(k), k.line)).collect();
        assert_eq!(keys, vec![("a", 2), ("b", 3), ("a", 4)]);
        assert!(matches!(&entries[1].1.kind, Kind::Seq(items) if items.len() == 2));
    }

    #[test]
    fn empty_and_comment_only_documents_are_none() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("# only a comment\n\n").unwrap(), None);
        assert!(parse("~").unwrap().unwrap().is_null());
    }

    #[test]
    fn aliases_resolve_and_syntax_errors_have_lines() {
        let root = parse("a: &x {k: v}\nb: *x\n").unwrap().unwrap();
        let Kind::Map(entries) = &root.kind else {
            panic!("not a map")
        };
        assert_eq!(entries[1].1.line, 2);
        assert!(matches!(&entries[1].1.kind, Kind::Map(e) if e.len() == 1));
        let err = parse("a: 1\nb: \"x\"y\"\n").unwrap_err();
        assert_eq!(err.line, 2);
    }

    /// Seven anchors, each a list of ten aliases of the previous one: a million nodes
    /// unbounded. Refused at the first alias past the budget, with its line and column.
    #[test]
    fn nested_alias_bombs_are_refused_at_the_alias_that_crosses_the_budget() {
        let mut text = String::from("a0: &a0 [x]\n");
        for level in 1..7 {
            let aliases = vec![format!("*a{}", level - 1); 10].join(", ");
            text.push_str(&format!("a{level}: &a{level} [{aliases}]\n"));
        }
        text.push_str("rules: *a6\n");
        let err = parse(&text).unwrap_err();
        assert_eq!(
            err,
            SyntaxError {
                line: 6,
                column: 10,
                message: "aliases expand to more than 1024 KiB (4 times the file's size, at least 1 MiB); nested aliases this large are refused to bound memory".to_owned(),
            }
        );
        // Three levels (a thousand leaves) are within the budget and expand in full.
        let small: String = text.lines().take(4).map(|l| format!("{l}\n")).collect();
        let root = parse(&format!("{small}rules: *a3\n")).unwrap().unwrap();
        let Kind::Map(entries) = &root.kind else {
            panic!("not a map")
        };
        fn leaves(n: &Node) -> usize {
            match &n.kind {
                Kind::Scalar { .. } => 1,
                Kind::Seq(items) => items.iter().map(leaves).sum(),
                Kind::Map(entries) => entries.iter().map(|(k, v)| leaves(k) + leaves(v)).sum(),
            }
        }
        assert_eq!(leaves(&entries[4].1), 1_000);
    }

    #[test]
    fn the_budget_grows_with_the_file() {
        assert_eq!(alias_budget(10), 1 << 20);
        assert_eq!(alias_budget(1 << 20), 4 << 20);
        assert_eq!(alias_budget(usize::MAX), usize::MAX);
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused() {
        let nested = |depth: usize| format!("{}x\n", "- ".repeat(depth));
        assert!(parse(&nested(MAX_DEPTH)).is_ok());
        let err = parse(&nested(MAX_DEPTH + 1)).unwrap_err();
        assert_eq!(
            err.message,
            "lists and mappings nested more than 256 deep; the file is refused"
        );
        assert_eq!((err.line, err.column), (1, 513));
    }
}
