//! Kubernetes label selectors: parsing (`labels.Parse` syntax and ordering), rendering as
//! PromQL label matchers with prometheus-adapter's operator mapping, and as a
//! `metav1.LabelSelector` for responses.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value, json};

/// A selector operator, as `k8s.io/apimachinery/pkg/selection` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `=`
    Equals,
    /// `==`
    DoubleEquals,
    /// `!=`
    NotEquals,
    /// `in`
    In,
    /// `notin`
    NotIn,
    /// a bare key
    Exists,
    /// `!key`
    DoesNotExist,
    /// `>`
    GreaterThan,
    /// `<`
    LessThan,
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        })
    }
}

/// One requirement: key, operator, values (sorted and unique, as a Go `sets.String`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Label key.
    pub key: String,
    /// Operator.
    pub operator: Operator,
    /// Values, sorted.
    pub values: Vec<String>,
}

/// A parsed selector: requirements sorted by key, as `labels.Parse` returns them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// The requirements.
    pub requirements: Vec<Requirement>,
}

/// Why a selector could not be parsed or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// Not valid selector syntax (a 400 for clients).
    #[error("unable to parse label selector {selector:?}: {reason}")]
    Syntax {
        /// The selector text.
        selector: String,
        /// What is wrong, and where.
        reason: String,
    },
    /// Valid syntax that has no PromQL equivalent (`gt`, `lt`).
    #[error("label selector operator {operator:?} on {key:?} is not supported by prometheus")]
    Unsupported {
        /// Label key.
        key: String,
        /// Operator.
        operator: String,
    },
}

impl LabelSelector {
    /// Parses selector text in Kubernetes syntax: `a=b,c!=d,e in (x,y),f notin (z),g,!h,i>3`.
    /// An empty or blank string is the empty selector.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let mut parser = Parser {
            text,
            chars: text.char_indices().collect(),
            pos: 0,
        };
        let mut requirements = Vec::new();
        parser.skip_ws();
        if parser.at_end() {
            return Ok(Self::default());
        }
        loop {
            requirements.push(parser.requirement()?);
            parser.skip_ws();
            match parser.peek() {
                None => break,
                Some(',') => {
                    parser.pos += 1;
                }
                Some(c) => return Err(parser.error(format!("found {c:?}, expected ','"))),
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self { requirements })
    }

    /// True when the selector has no requirement.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object with these labels is selected (`labels.Selector.Matches`): every
    /// requirement must hold.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|req| req.matches(labels))
    }

    /// PromQL matchers in requirement order (prometheus-adapter's `selectMatcher` mapping).
    pub fn to_matchers(&self) -> Result<Vec<String>, SelectorError> {
        self.requirements
            .iter()
            .map(Requirement::to_matcher)
            .collect()
    }

    /// `metav1.LabelSelector` JSON (`matchLabels` for `=`/`==`, `matchExpressions` for the
    /// rest), or `null` for the empty selector, as the metrics APIs report the selector used.
    pub fn to_json(&self) -> Value {
        if self.is_empty() {
            return Value::Null;
        }
        let mut labels = Map::new();
        let mut expressions = Vec::new();
        for req in &self.requirements {
            let (operator, values) = match req.operator {
                Operator::Equals | Operator::DoubleEquals => {
                    let value = req.values.first().cloned().unwrap_or_default();
                    labels.insert(req.key.clone(), Value::String(value));
                    continue;
                }
                Operator::In => ("In", true),
                // A single-valued `!=` is the same selection as `notin` with that value.
                Operator::NotIn | Operator::NotEquals => ("NotIn", true),
                Operator::Exists => ("Exists", false),
                Operator::DoesNotExist => ("DoesNotExist", false),
                Operator::GreaterThan => ("Gt", true),
                Operator::LessThan => ("Lt", true),
            };
            let mut expr = Map::new();
            expr.insert("key".into(), Value::String(req.key.clone()));
            expr.insert("operator".into(), Value::String(operator.into()));
            if values && !req.values.is_empty() {
                expr.insert("values".into(), json!(req.values));
            }
            expressions.push(Value::Object(expr));
        }
        let mut out = Map::new();
        if !labels.is_empty() {
            out.insert("matchLabels".into(), Value::Object(labels));
        }
        if !expressions.is_empty() {
            out.insert("matchExpressions".into(), Value::Array(expressions));
        }
        Value::Object(out)
    }
}

impl fmt::Display for LabelSelector {
    /// Canonical Kubernetes form (`labels.Selector.String`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, req) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let values = req.values.join(",");
            match req.operator {
                Operator::Exists => write!(f, "{}", req.key)?,
                Operator::DoesNotExist => write!(f, "!{}", req.key)?,
                Operator::In => write!(f, "{} in ({values})", req.key)?,
                Operator::NotIn => write!(f, "{} notin ({values})", req.key)?,
                Operator::GreaterThan => write!(f, "{}>{values}", req.key)?,
                Operator::LessThan => write!(f, "{}<{values}", req.key)?,
                Operator::Equals => write!(f, "{}={values}", req.key)?,
                Operator::DoubleEquals => write!(f, "{}=={values}", req.key)?,
                Operator::NotEquals => write!(f, "{}!={values}", req.key)?,
            }
        }
        Ok(())
    }
}

impl Requirement {
    /// Whether labels satisfy this requirement, as `labels.Requirement.Matches` decides:
    /// `!=`/`notin` also hold when the label is absent; `gt`/`lt` compare integers.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        let listed = || value.is_some_and(|v| self.values.iter().any(|w| w == v));
        match self.operator {
            Operator::Equals | Operator::DoubleEquals | Operator::In => listed(),
            Operator::NotEquals | Operator::NotIn => !listed(),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(have), Some(bound)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|v| v.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    have > bound
                } else {
                    have < bound
                }
            }
        }
    }

    /// One PromQL matcher: `=`/`==` one value → `=`; `!=` → `!=`; `in` one value → `=~`;
    /// `notin` one value → `!~` (values passed raw, so a value can be a regex); several values →
    /// `=~"a|b"` / `!~"a|b"`; exists → `l!=""`; `!l` → `l=""`; `gt`/`lt` → error.
    pub fn to_matcher(&self) -> Result<String, SelectorError> {
        let key = &self.key;
        let joined = self.values.join("|");
        let positive = matches!(
            self.operator,
            Operator::Equals | Operator::DoubleEquals | Operator::In
        );
        let op = match self.operator {
            Operator::Exists => return Ok(format!("{key}!=\"\"")),
            Operator::DoesNotExist => return Ok(format!("{key}=\"\"")),
            Operator::GreaterThan | Operator::LessThan => {
                return Err(SelectorError::Unsupported {
                    key: key.clone(),
                    operator: self.operator.to_string(),
                });
            }
            _ if self.values.len() > 1 => {
                if positive {
                    "=~"
                } else {
                    "!~"
                }
            }
            Operator::Equals | Operator::DoubleEquals => "=",
            Operator::NotEquals => "!=",
            Operator::In => "=~",
            Operator::NotIn => "!~",
        };
        Ok(format!("{key}{op}{}", go_quote(&joined)))
    }
}

/// Quotes a string as Go's `%q` (strconv.Quote) does: PromQL accepts the same escapes.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\u{0b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A tiny recursive-descent parser over the selector's characters.
struct Parser<'a> {
    text: &'a str,
    chars: Vec<(usize, char)>,
    pos: usize,
}

impl Parser<'_> {
    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).map(|&(_, c)| c)
    }

    fn peek2(&self) -> Option<char> {
        self.chars.get(self.pos + 1).map(|&(_, c)| c)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn error(&self, reason: String) -> SelectorError {
        let at = self
            .chars
            .get(self.pos)
            .map_or(self.text.len(), |&(i, _)| i);
        SelectorError::Syntax {
            selector: self.text.to_owned(),
            reason: format!("{reason} at position {at}"),
        }
    }

    /// A run of characters allowed in keys and values.
    fn word(&mut self) -> String {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '/') {
                out.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        out
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        self.skip_ws();
        let negated = self.peek() == Some('!');
        if negated {
            self.pos += 1;
            self.skip_ws();
        }
        let key = self.word();
        if key.is_empty() {
            return Err(self.error("expected a label key".into()));
        }
        validate_key(&key).map_err(|r| self.error(r))?;
        self.skip_ws();
        if negated {
            return Ok(Requirement {
                key,
                operator: Operator::DoesNotExist,
                values: Vec::new(),
            });
        }
        let operator = match (self.peek(), self.peek2()) {
            (None | Some(','), _) => {
                return Ok(Requirement {
                    key,
                    operator: Operator::Exists,
                    values: Vec::new(),
                });
            }
            (Some('='), Some('=')) => {
                self.pos += 2;
                Operator::DoubleEquals
            }
            (Some('='), _) => {
                self.pos += 1;
                Operator::Equals
            }
            (Some('!'), Some('=')) => {
                self.pos += 2;
                Operator::NotEquals
            }
            (Some('>'), _) => {
                self.pos += 1;
                Operator::GreaterThan
            }
            (Some('<'), _) => {
                self.pos += 1;
                Operator::LessThan
            }
            _ => {
                let word = self.word();
                match word.as_str() {
                    "in" => Operator::In,
                    "notin" => Operator::NotIn,
                    "" => {
                        return Err(
                            self.error("expected an operator (=, ==, !=, in, notin, >, <)".into())
                        );
                    }
                    other => return Err(self.error(format!("unknown operator {other:?}"))),
                }
            }
        };
        self.skip_ws();
        let mut values = match operator {
            Operator::In | Operator::NotIn => self.value_set()?,
            _ => {
                let value = self.word();
                validate_value(&value).map_err(|r| self.error(r))?;
                if matches!(operator, Operator::GreaterThan | Operator::LessThan)
                    && value.parse::<i64>().is_err()
                {
                    return Err(self.error(format!(
                        "for 'gt', 'lt' operators, the value must be an integer, not {value:?}"
                    )));
                }
                vec![value]
            }
        };
        values.sort();
        values.dedup();
        Ok(Requirement {
            key,
            operator,
            values,
        })
    }

    fn value_set(&mut self) -> Result<Vec<String>, SelectorError> {
        if self.peek() != Some('(') {
            return Err(self.error("expected '(' after 'in'/'notin'".into()));
        }
        self.pos += 1;
        let mut values = Vec::new();
        loop {
            self.skip_ws();
            let value = self.word();
            validate_value(&value).map_err(|r| self.error(r))?;
            values.push(value);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(')') => {
                    self.pos += 1;
                    return Ok(values);
                }
                _ => return Err(self.error("expected ',' or ')' in value set".into())),
            }
        }
    }
}

/// A name part of a key or a value: alphanumerics, `-`, `_`, `.`, starting and ending
/// alphanumeric, at most 63 characters.
fn valid_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    !s.is_empty()
        && s.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

fn validate_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let ok = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix
                .split('.')
                .all(|part| valid_name(part) && !part.contains('_'));
        if !ok {
            return Err(format!(
                "invalid label key {key:?}: prefix must be a DNS subdomain"
            ));
        }
    }
    if !valid_name(name) {
        return Err(format!(
            "invalid label key {key:?}: name part must be 63 characters or less, alphanumeric, '-', '_' or '.', starting and ending alphanumeric"
        ));
    }
    Ok(())
}

fn validate_value(value: &str) -> Result<(), String> {
    if value.is_empty() || valid_name(value) {
        Ok(())
    } else {
        Err(format!(
            "invalid label value {value:?}: must be 63 characters or less, alphanumeric, '-', '_' or '.', starting and ending alphanumeric"
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn object(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn matches_like_kubernetes_selectors() {
        let web = object(&[("app", "web"), ("tier", "front"), ("replicas", "3")]);
        let db = object(&[("app", "db")]);
        let cases = [
            ("", true, true),
            ("app=web", true, false),
            ("app==web,tier=front", true, false),
            ("app!=web", false, true),
            ("tier!=back", true, true),
            ("app in (web,db)", true, true),
            ("app notin (web)", false, true),
            ("tier notin (front)", false, true),
            ("tier", true, false),
            ("!tier", false, true),
            ("replicas>2", true, false),
            ("replicas<3", false, false),
        ];
        for (text, want_web, want_db) in cases {
            let selector = LabelSelector::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(selector.matches(&web), want_web, "{text} on web");
            assert_eq!(selector.matches(&db), want_db, "{text} on db");
        }
    }

    fn matchers(text: &str) -> Result<Vec<String>, SelectorError> {
        LabelSelector::parse(text).unwrap().to_matchers()
    }

    #[test]
    fn every_operator_maps_to_the_adapters_matcher() {
        assert_eq!(matchers("a=x").unwrap(), vec![r#"a="x""#]);
        assert_eq!(matchers("a==x").unwrap(), vec![r#"a="x""#]);
        assert_eq!(matchers("a!=x").unwrap(), vec![r#"a!="x""#]);
        assert_eq!(matchers("a in (x)").unwrap(), vec![r#"a=~"x""#]);
        assert_eq!(matchers("a notin (x)").unwrap(), vec![r#"a!~"x""#]);
        assert_eq!(matchers("a in (y,x)").unwrap(), vec![r#"a=~"x|y""#]);
        assert_eq!(matchers("a notin (y, x, y)").unwrap(), vec![r#"a!~"x|y""#]);
        assert_eq!(matchers("a").unwrap(), vec![r#"a!="""#]);
        assert_eq!(matchers("!a").unwrap(), vec![r#"a="""#]);
        assert_eq!(matchers("a=").unwrap(), vec![r#"a="""#]);
        assert_eq!(
            matchers("a>3").unwrap_err().to_string(),
            r#"label selector operator "gt" on "a" is not supported by prometheus"#
        );
        assert_eq!(
            matchers("a<3").unwrap_err().to_string(),
            r#"label selector operator "lt" on "a" is not supported by prometheus"#
        );
    }

    #[test]
    fn requirements_are_sorted_by_key_like_labels_parse() {
        let sel = LabelSelector::parse("zone=eu, app in (web), !legacy,tier").unwrap();
        assert_eq!(
            sel.to_matchers().unwrap(),
            vec![
                r#"app=~"web""#,
                r#"legacy="""#,
                r#"tier!="""#,
                r#"zone="eu""#
            ]
        );
        assert_eq!(sel.to_string(), "app in (web),!legacy,tier,zone=eu");
    }

    #[test]
    fn syntax_errors_say_where() {
        let err = LabelSelector::parse("a=b,,c").unwrap_err().to_string();
        assert_eq!(
            err,
            r#"unable to parse label selector "a=b,,c": expected a label key at position 4"#
        );
        let err = LabelSelector::parse("a in x").unwrap_err().to_string();
        assert_eq!(
            err,
            r#"unable to parse label selector "a in x": expected '(' after 'in'/'notin' at position 5"#
        );
        let err = LabelSelector::parse("a=b c").unwrap_err().to_string();
        assert_eq!(
            err,
            r#"unable to parse label selector "a=b c": found 'c', expected ',' at position 4"#
        );
        let err = LabelSelector::parse("a=x/y").unwrap_err().to_string();
        assert!(err.contains(r#"invalid label value "x/y""#), "{err}");
        let err = LabelSelector::parse("a>x").unwrap_err().to_string();
        assert!(err.contains("must be an integer"), "{err}");
        assert!(LabelSelector::parse("  ").unwrap().is_empty());
        let prefixed = LabelSelector::parse("app.kubernetes.io/name=web").unwrap();
        assert_eq!(
            prefixed.to_matchers().unwrap(),
            vec![r#"app.kubernetes.io/name="web""#]
        );
    }

    #[test]
    fn selector_json_matches_metav1_label_selector() {
        let sel = LabelSelector::parse("queue=orders,env in (prod,stage),!x,y").unwrap();
        assert_eq!(
            sel.to_json().to_string(),
            r#"{"matchLabels":{"queue":"orders"},"matchExpressions":[{"key":"env","operator":"In","values":["prod","stage"]},{"key":"x","operator":"DoesNotExist"},{"key":"y","operator":"Exists"}]}"#
        );
        assert_eq!(LabelSelector::default().to_json(), Value::Null);
    }

    #[test]
    fn go_quote_escapes_like_strconv_quote() {
        assert_eq!(go_quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(go_quote("x\ny\u{1}"), r#""x\ny\x01""#);
        assert_eq!(go_quote("héllo"), "\"héllo\"");
    }
}
