//! A Go `text/template` subset with `<<` `>>` delimiters, as prometheus-adapter uses for
//! `metricsQuery`, resource queries and `resources.template`.
//!
//! Supported: literal text, `<<.Field>>`, `<<.>>`, trim markers (`<<- ` / ` ->>`), comments
//! (`<</* .. */>>`), pipelines (`a | b`), parenthesised commands, `if`/`else if`/`else`/`end`,
//! `range`/`else`/`end`, and the builtins `index`, `len`, `print`, `printf`, `println`, `not`,
//! `and`, `or`, `eq`, `ne`. Unknown functions (e.g. `join`) are parse errors, as in Go.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::selector::go_quote;

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
    nodes: Vec<Node>,
}

/// A parse or execution error, with the position in the template text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

/// Deepest nesting of parentheses and `if`/`range` blocks accepted (keeps recursion bounded).
const MAX_DEPTH: usize = 64;

/// The functions a template may call (Go text/template builtins only).
const FUNCS: &[&str] = &[
    "index", "len", "print", "printf", "println", "not", "and", "or", "eq", "ne",
];

impl Template {
    /// Parses template text.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let items = lex(source)?;
        let mut parser = Parser {
            src: source,
            items,
            next: 0,
            depth: 0,
        };
        let (nodes, end) = parser.list()?;
        if let Some(end) = end {
            let what = match end {
                Terminator::End(_) => "<<end>>",
                Terminator::Else(..) => "<<else>>",
            };
            return Err(err_at(source, end.pos(), &format!("unexpected {what}")));
        }
        Ok(Self {
            source: source.to_owned(),
            nodes,
        })
    }

    /// The text as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Executes the template.
    pub fn render(&self, ctx: &Context) -> Result<String, TemplateError> {
        let mut exec = Exec {
            ctx,
            src: &self.source,
            out: String::new(),
        };
        exec.walk(&self.nodes, &V::Root)?;
        Ok(exec.out)
    }
}

/// `line L, column C: msg` for a byte offset into the template.
fn err_at(src: &str, pos: usize, msg: &str) -> TemplateError {
    let before = src.get(..pos).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    TemplateError(format!("line {line}, column {col}: {msg}"))
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

// ----------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(String),
    Dot,
    Ident(String),
    Str(String),
    Int(i64),
    LParen,
    RParen,
    Pipe,
}

/// Tokens of one action with their byte offsets.
type Toks = Vec<(Tok, usize)>;

#[derive(Debug)]
enum Item {
    Text(String),
    Action { toks: Toks, pos: usize },
}

fn lex(src: &str) -> Result<Vec<Item>, TemplateError> {
    let mut items = Vec::new();
    let mut i = 0;
    let mut trim_next = false;
    loop {
        let rest = &src[i..];
        let open = rest.find("<<").map(|n| i + n);
        let text_end = open.unwrap_or(src.len());
        let mut text = &src[i..text_end];
        if trim_next {
            text = text.trim_start_matches(is_space);
        }
        let Some(open) = open else {
            if !text.is_empty() {
                items.push(Item::Text(text.to_owned()));
            }
            return Ok(items);
        };
        let mut j = open + 2;
        let after = &src[j..];
        let trim_left = after.starts_with('-') && after[1..].starts_with(is_space);
        if trim_left {
            text = text.trim_end_matches(is_space);
            j += 2;
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_owned()));
        }
        if src[j..].starts_with("/*") {
            let Some(close) = src[j + 2..].find("*/") else {
                return Err(err_at(src, open, "unclosed comment"));
            };
            let k = j + 2 + close + 2;
            let tail = &src[k..];
            if tail.starts_with(">>") {
                trim_next = false;
                i = k + 2;
            } else if tail.starts_with(is_space) && tail[1..].starts_with("->>") {
                trim_next = true;
                i = k + 4;
            } else {
                return Err(err_at(src, open, "comment ends before closing delimiter"));
            }
            continue;
        }
        let (toks, end, trim_right) = lex_action(src, j, open)?;
        items.push(Item::Action { toks, pos: open });
        trim_next = trim_right;
        i = end;
    }
}

/// Lexes one action starting at `j`; returns its tokens, the offset after `>>` and whether
/// it ended with a right trim marker.
fn lex_action(src: &str, mut j: usize, open: usize) -> Result<(Toks, usize, bool), TemplateError> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut toks = Vec::new();
    loop {
        let start = j;
        while src[j..].starts_with(is_space) {
            j += 1;
        }
        let rest = &src[j..];
        if rest.starts_with(">>") {
            return Ok((toks, j + 2, false));
        }
        if j > start && rest.starts_with("->>") {
            return Ok((toks, j + 3, true));
        }
        let Some(c) = rest.chars().next() else {
            return Err(err_at(src, open, "unclosed action"));
        };
        let pos = j;
        match c {
            '.' => {
                let name: String = rest[1..].chars().take_while(|&c| ident(c)).collect();
                if name.is_empty() {
                    toks.push((Tok::Dot, pos));
                    j += 1;
                } else {
                    if name.starts_with(|c: char| c.is_ascii_digit()) {
                        return Err(err_at(src, pos, "bad number syntax"));
                    }
                    j += 1 + name.len();
                    toks.push((Tok::Field(name), pos));
                }
            }
            '(' => {
                toks.push((Tok::LParen, pos));
                j += 1;
            }
            ')' => {
                toks.push((Tok::RParen, pos));
                j += 1;
            }
            '|' => {
                toks.push((Tok::Pipe, pos));
                j += 1;
            }
            '"' => {
                let mut s = String::new();
                let mut chars = rest[1..].char_indices();
                let mut closed = None;
                while let Some((k, c)) = chars.next() {
                    match c {
                        '"' => {
                            closed = Some(k);
                            break;
                        }
                        '\\' => match chars.next().map(|(_, e)| e) {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some('r') => s.push('\r'),
                            Some('\\') => s.push('\\'),
                            Some('"') => s.push('"'),
                            Some('\'') => s.push('\''),
                            _ => return Err(err_at(src, pos, "bad escape in string")),
                        },
                        '\n' => return Err(err_at(src, pos, "unterminated quoted string")),
                        c => s.push(c),
                    }
                }
                let Some(k) = closed else {
                    return Err(err_at(src, pos, "unterminated quoted string"));
                };
                j += 1 + k + 1;
                toks.push((Tok::Str(s), pos));
            }
            '`' => {
                let Some(k) = rest[1..].find('`') else {
                    return Err(err_at(src, pos, "unterminated raw quoted string"));
                };
                toks.push((Tok::Str(rest[1..1 + k].to_owned()), pos));
                j += k + 2;
            }
            c if c.is_ascii_digit()
                || (c == '-' && rest[1..].starts_with(|d: char| d.is_ascii_digit())) =>
            {
                let len = 1 + rest[1..]
                    .chars()
                    .take_while(|&c| ident(c))
                    .map(char::len_utf8)
                    .sum::<usize>();
                let text = &rest[..len];
                let n = text
                    .parse::<i64>()
                    .map_err(|_| err_at(src, pos, &format!("bad number syntax: {text:?}")))?;
                toks.push((Tok::Int(n), pos));
                j += len;
            }
            c if c.is_alphabetic() || c == '_' => {
                let name: String = rest.chars().take_while(|&c| ident(c)).collect();
                j += name.len();
                toks.push((Tok::Ident(name), pos));
            }
            '$' => return Err(err_at(src, pos, "template variables are not supported")),
            c => return Err(err_at(src, pos, &format!("unexpected {c:?} in action"))),
        }
    }
}

// ----------------------------------------------------------------------------------------
// Parser

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If {
        branches: Vec<(Pipeline, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
    Range {
        pipe: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

#[derive(Debug, Clone)]
struct Pipeline {
    cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
struct Cmd {
    args: Vec<(Arg, usize)>,
    pos: usize,
}

#[derive(Debug, Clone)]
enum Arg {
    Field(String),
    Dot,
    Str(String),
    Int(i64),
    Bool(bool),
    Func(String),
    Sub(Pipeline),
}

enum Terminator {
    End(usize),
    Else(usize, Option<Pipeline>),
}

impl Terminator {
    fn pos(&self) -> usize {
        match self {
            Terminator::End(p) | Terminator::Else(p, _) => *p,
        }
    }
}

struct Parser<'a> {
    src: &'a str,
    items: Vec<Item>,
    next: usize,
    depth: usize,
}

impl Parser<'_> {
    /// Parses nodes until EOF or an `end` / `else` action, which is returned.
    fn list(&mut self) -> Result<(Vec<Node>, Option<Terminator>), TemplateError> {
        self.depth += 1;
        let result = self.list_inner();
        self.depth -= 1;
        result
    }

    fn list_inner(&mut self) -> Result<(Vec<Node>, Option<Terminator>), TemplateError> {
        if self.depth > MAX_DEPTH {
            let pos = match self.items.get(self.next.saturating_sub(1)) {
                Some(Item::Action { pos, .. }) => *pos,
                _ => 0,
            };
            return Err(err_at(self.src, pos, "blocks nested too deeply"));
        }
        let mut nodes = Vec::new();
        while self.next < self.items.len() {
            let idx = self.next;
            self.next += 1;
            let (toks, pos) = match &self.items[idx] {
                Item::Text(t) => {
                    nodes.push(Node::Text(t.clone()));
                    continue;
                }
                Item::Action { toks, pos } => (toks.clone(), *pos),
            };
            let keyword = match toks.first() {
                Some((Tok::Ident(k), _)) => k.as_str(),
                _ => "",
            };
            match keyword {
                "end" => {
                    if toks.len() > 1 {
                        return Err(err_at(self.src, pos, "unexpected arguments to end"));
                    }
                    return Ok((nodes, Some(Terminator::End(pos))));
                }
                "else" => {
                    let pipe = match toks.get(1) {
                        None => None,
                        Some((Tok::Ident(k), _)) if k == "if" => {
                            Some(self.pipeline(&toks[2..], pos)?)
                        }
                        Some(_) => {
                            return Err(err_at(self.src, pos, "unexpected arguments to else"));
                        }
                    };
                    return Ok((nodes, Some(Terminator::Else(pos, pipe))));
                }
                "if" => {
                    let pipe = self.pipeline(&toks[1..], pos)?;
                    nodes.push(self.if_node(pipe, pos)?);
                }
                "range" => {
                    let pipe = self.pipeline(&toks[1..], pos)?;
                    let (body, term) = self.list()?;
                    let otherwise = match term {
                        Some(Terminator::End(_)) => Vec::new(),
                        Some(Terminator::Else(p, Some(_))) => {
                            return Err(err_at(self.src, p, "`else if` is not allowed in range"));
                        }
                        Some(Terminator::Else(_, None)) => self.expect_end(pos)?,
                        None => {
                            return Err(err_at(
                                self.src,
                                pos,
                                "unexpected EOF: range has no <<end>>",
                            ));
                        }
                    };
                    nodes.push(Node::Range {
                        pipe,
                        body,
                        otherwise,
                    });
                }
                "with" | "define" | "template" | "block" | "break" | "continue" => {
                    return Err(err_at(
                        self.src,
                        pos,
                        &format!("`{keyword}` is not supported"),
                    ));
                }
                _ => nodes.push(Node::Action(self.pipeline(&toks, pos)?)),
            }
        }
        Ok((nodes, None))
    }

    fn if_node(&mut self, first: Pipeline, pos: usize) -> Result<Node, TemplateError> {
        let mut branches = Vec::new();
        let mut cond = first;
        loop {
            let (body, term) = self.list()?;
            branches.push((cond, body));
            match term {
                Some(Terminator::End(_)) => {
                    return Ok(Node::If {
                        branches,
                        otherwise: Vec::new(),
                    });
                }
                Some(Terminator::Else(_, Some(next))) => cond = next,
                Some(Terminator::Else(_, None)) => {
                    let otherwise = self.expect_end(pos)?;
                    return Ok(Node::If {
                        branches,
                        otherwise,
                    });
                }
                None => return Err(err_at(self.src, pos, "unexpected EOF: if has no <<end>>")),
            }
        }
    }

    /// The `else` branch of an `if` / `range` opened at `pos`, up to its `end`.
    fn expect_end(&mut self, pos: usize) -> Result<Vec<Node>, TemplateError> {
        match self.list()? {
            (nodes, Some(Terminator::End(_))) => Ok(nodes),
            (_, Some(Terminator::Else(p, _))) => {
                Err(err_at(self.src, p, "expected <<end>>, found <<else>>"))
            }
            (_, None) => Err(err_at(self.src, pos, "unexpected EOF: missing <<end>>")),
        }
    }

    fn pipeline(&self, toks: &[(Tok, usize)], pos: usize) -> Result<Pipeline, TemplateError> {
        if toks.is_empty() {
            return Err(err_at(self.src, pos, "missing value for command"));
        }
        let mut cmds = Vec::new();
        let mut depth = 0usize;
        let mut start = 0;
        for (i, (tok, p)) in toks.iter().enumerate() {
            match tok {
                Tok::LParen => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(err_at(self.src, *p, "parentheses nested too deeply"));
                    }
                }
                Tok::RParen => {
                    depth = depth
                        .checked_sub(1)
                        .ok_or_else(|| err_at(self.src, *p, "unexpected right paren"))?;
                }
                Tok::Pipe if depth == 0 => {
                    cmds.push(self.command(&toks[start..i], *p)?);
                    start = i + 1;
                }
                _ => {}
            }
        }
        if depth > 0 {
            return Err(err_at(self.src, pos, "unclosed left paren"));
        }
        let end_pos = toks.last().map_or(pos, |(_, p)| *p);
        cmds.push(self.command(&toks[start..], end_pos)?);
        Ok(Pipeline { cmds })
    }

    fn command(&self, toks: &[(Tok, usize)], pos: usize) -> Result<Cmd, TemplateError> {
        let Some((_, cmd_pos)) = toks.first() else {
            return Err(err_at(self.src, pos, "missing command in pipeline"));
        };
        let mut args = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            let (tok, p) = &toks[i];
            let arg = match tok {
                Tok::Field(name) => Arg::Field(name.clone()),
                Tok::Dot => Arg::Dot,
                Tok::Str(s) => Arg::Str(s.clone()),
                Tok::Int(n) => Arg::Int(*n),
                Tok::Ident(name) if name == "true" || name == "false" => Arg::Bool(name == "true"),
                Tok::Ident(name) => {
                    if !FUNCS.contains(&name.as_str()) {
                        return Err(err_at(
                            self.src,
                            *p,
                            &format!("function {name:?} not defined"),
                        ));
                    }
                    Arg::Func(name.clone())
                }
                Tok::LParen => {
                    let mut depth = 0usize;
                    let mut close = None;
                    for (k, (t, _)) in toks.iter().enumerate().skip(i) {
                        match t {
                            Tok::LParen => depth += 1,
                            Tok::RParen => {
                                depth -= 1;
                                if depth == 0 {
                                    close = Some(k);
                                    break;
                                }
                            }
                            _ => {}
                        }
                    }
                    let Some(close) = close else {
                        return Err(err_at(self.src, *p, "unclosed left paren"));
                    };
                    let sub = self.pipeline(&toks[i + 1..close], *p)?;
                    i = close;
                    Arg::Sub(sub)
                }
                Tok::RParen => return Err(err_at(self.src, *p, "unexpected right paren")),
                Tok::Pipe => return Err(err_at(self.src, *p, "missing command in pipeline")),
            };
            args.push((arg, *p));
            i += 1;
        }
        Ok(Cmd {
            args,
            pos: *cmd_pos,
        })
    }
}

// ----------------------------------------------------------------------------------------
// Execution

/// A runtime value.
#[derive(Debug, Clone, PartialEq)]
enum V {
    /// The context itself (the initial dot).
    Root,
    Str(String),
    List(Vec<String>),
    Map(BTreeMap<String, String>),
    Int(i64),
    Bool(bool),
}

impl V {
    fn from_value(v: &Value) -> Self {
        match v {
            Value::Str(s) => V::Str(s.clone()),
            Value::List(l) => V::List(l.clone()),
            Value::Map(m) => V::Map(m.clone()),
        }
    }

    fn truthy(&self) -> bool {
        match self {
            V::Root => true,
            V::Str(s) => !s.is_empty(),
            V::List(l) => !l.is_empty(),
            V::Map(m) => !m.is_empty(),
            V::Int(n) => *n != 0,
            V::Bool(b) => *b,
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            V::Root => "struct",
            V::Str(_) => "string",
            V::List(_) => "[]string",
            V::Map(_) => "map[string]string",
            V::Int(_) => "int",
            V::Bool(_) => "bool",
        }
    }

    /// Go `fmt` `%v`.
    fn print(&self, ctx: &Context) -> String {
        match self {
            V::Root => {
                let fields: Vec<String> =
                    ctx.values().map(|v| V::from_value(v).print(ctx)).collect();
                format!("{{{}}}", fields.join(" "))
            }
            V::Str(s) => s.clone(),
            V::List(l) => format!("[{}]", l.join(" ")),
            V::Map(m) => {
                let kv: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("map[{}]", kv.join(" "))
            }
            V::Int(n) => n.to_string(),
            V::Bool(b) => b.to_string(),
        }
    }
}

/// Go `fmt.Sprintf` for the verbs `%s`, `%d`, `%q`, `%v` and `%%`.
fn sprintf(format: &str, args: &[V], ctx: &Context) -> String {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        next += 1;
        match (verb, arg) {
            ('s' | 'v', a) => out.push_str(&a.print(ctx)),
            ('d', V::Int(n)) => {
                let _ = write!(out, "{n}");
            }
            ('q', V::Str(s)) => out.push_str(&go_quote(s)),
            ('q', V::List(l)) => {
                let q: Vec<String> = l.iter().map(|s| go_quote(s)).collect();
                let _ = write!(out, "[{}]", q.join(" "));
            }
            (verb, a) => {
                let _ = write!(out, "%!{verb}({}={})", a.type_name(), a.print(ctx));
            }
        }
    }
    if next < args.len() {
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|a| format!("{}={}", a.type_name(), a.print(ctx)))
            .collect();
        let _ = write!(out, "%!(EXTRA {})", extra.join(", "));
    }
    out
}

struct Exec<'a> {
    ctx: &'a Context,
    src: &'a str,
    out: String,
}

impl Exec<'_> {
    fn walk(&mut self, nodes: &[Node], dot: &V) -> Result<(), TemplateError> {
        for node in nodes {
            match node {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(pipe) => {
                    let v = self.pipe(pipe, dot)?;
                    let printed = v.print(self.ctx);
                    self.out.push_str(&printed);
                }
                Node::If {
                    branches,
                    otherwise,
                } => {
                    let mut taken = false;
                    for (cond, body) in branches {
                        if self.pipe(cond, dot)?.truthy() {
                            self.walk(body, dot)?;
                            taken = true;
                            break;
                        }
                    }
                    if !taken {
                        self.walk(otherwise, dot)?;
                    }
                }
                Node::Range {
                    pipe,
                    body,
                    otherwise,
                } => {
                    let items: Vec<String> = match self.pipe(pipe, dot)? {
                        V::List(l) => l,
                        V::Map(m) => m.into_values().collect(),
                        other => {
                            let pos = pipe.cmds.first().map_or(0, |c| c.pos);
                            return Err(err_at(
                                self.src,
                                pos,
                                &format!("range can't iterate over {}", other.print(self.ctx)),
                            ));
                        }
                    };
                    if items.is_empty() {
                        self.walk(otherwise, dot)?;
                    }
                    for item in items {
                        self.walk(body, &V::Str(item))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn pipe(&self, pipe: &Pipeline, dot: &V) -> Result<V, TemplateError> {
        let mut piped = None;
        for cmd in &pipe.cmds {
            piped = Some(self.cmd(cmd, dot, piped)?);
        }
        piped.ok_or_else(|| TemplateError("empty pipeline".into()))
    }

    fn cmd(&self, cmd: &Cmd, dot: &V, piped: Option<V>) -> Result<V, TemplateError> {
        let Some(((first, _), rest)) = cmd.args.split_first() else {
            return Err(err_at(self.src, cmd.pos, "empty command"));
        };
        let Arg::Func(name) = first else {
            if !rest.is_empty() || piped.is_some() {
                return Err(err_at(
                    self.src,
                    cmd.pos,
                    "can't give argument to non-function",
                ));
            }
            return self.arg(first, cmd.pos, dot);
        };
        let mut args = Vec::with_capacity(rest.len() + 1);
        for (a, p) in rest {
            args.push(self.arg(a, *p, dot)?);
        }
        args.extend(piped);
        self.call(name, args, cmd.pos)
    }

    fn arg(&self, arg: &Arg, pos: usize, dot: &V) -> Result<V, TemplateError> {
        Ok(match arg {
            Arg::Dot => dot.clone(),
            Arg::Str(s) => V::Str(s.clone()),
            Arg::Int(n) => V::Int(*n),
            Arg::Bool(b) => V::Bool(*b),
            Arg::Sub(p) => self.pipe(p, dot)?,
            Arg::Func(name) => self.call(name, Vec::new(), pos)?,
            Arg::Field(name) => match dot {
                V::Root => match self.ctx.get(name.as_str()) {
                    Some(v) => V::from_value(v),
                    None => {
                        return Err(err_at(
                            self.src,
                            pos,
                            &format!("can't evaluate field {name}"),
                        ));
                    }
                },
                V::Map(m) => V::Str(m.get(name).cloned().unwrap_or_default()),
                other => {
                    return Err(err_at(
                        self.src,
                        pos,
                        &format!("can't evaluate field {name} in type {}", other.type_name()),
                    ));
                }
            },
        })
    }

    fn call(&self, name: &str, args: Vec<V>, pos: usize) -> Result<V, TemplateError> {
        let fail = |msg: String| {
            Err(err_at(
                self.src,
                pos,
                &format!("error calling {name}: {msg}"),
            ))
        };
        let want = |n: usize| {
            format!(
                "wrong number of args for {name}: want {n} got {}",
                args.len()
            )
        };
        match name {
            "len" => match args.as_slice() {
                [V::Str(s)] => Ok(V::Int(s.len() as i64)),
                [V::List(l)] => Ok(V::Int(l.len() as i64)),
                [V::Map(m)] => Ok(V::Int(m.len() as i64)),
                [other] => fail(format!("len of type {}", other.type_name())),
                _ => Err(err_at(self.src, pos, &want(1))),
            },
            "index" => {
                let Some((base, keys)) = args.split_first() else {
                    return Err(err_at(
                        self.src,
                        pos,
                        "wrong number of args for index: want at least 1 got 0",
                    ));
                };
                let mut cur = base.clone();
                for key in keys {
                    cur = match (&cur, key) {
                        (V::Map(m), V::Str(k)) => V::Str(m.get(k).cloned().unwrap_or_default()),
                        (V::List(l), V::Int(i)) => {
                            match usize::try_from(*i).ok().and_then(|i| l.get(i)) {
                                Some(s) => V::Str(s.clone()),
                                None => return fail(format!("index out of range: {i}")),
                            }
                        }
                        (c, k) => {
                            return fail(format!(
                                "can't index item of type {} with {}",
                                c.type_name(),
                                k.type_name()
                            ));
                        }
                    };
                }
                Ok(cur)
            }
            "print" | "println" => {
                let mut out = String::new();
                for (i, a) in args.iter().enumerate() {
                    let is_str = |v: &V| matches!(v, V::Str(_));
                    if i > 0 && (name == "println" || (!is_str(a) && !is_str(&args[i - 1]))) {
                        out.push(' ');
                    }
                    out.push_str(&a.print(self.ctx));
                }
                if name == "println" {
                    out.push('\n');
                }
                Ok(V::Str(out))
            }
            "printf" => match args.split_first() {
                Some((V::Str(f), rest)) => Ok(V::Str(sprintf(f, rest, self.ctx))),
                Some((other, _)) => fail(format!(
                    "format must be a string, got {}",
                    other.type_name()
                )),
                None => Err(err_at(
                    self.src,
                    pos,
                    "wrong number of args for printf: want at least 1 got 0",
                )),
            },
            "not" => match args.as_slice() {
                [a] => Ok(V::Bool(!a.truthy())),
                _ => Err(err_at(self.src, pos, &want(1))),
            },
            "and" | "or" => {
                if args.is_empty() {
                    return Err(err_at(
                        self.src,
                        pos,
                        &format!("wrong number of args for {name}: want at least 1 got 0"),
                    ));
                }
                let stop = |v: &V| {
                    if name == "and" {
                        !v.truthy()
                    } else {
                        v.truthy()
                    }
                };
                let last = args.len() - 1;
                let i = args.iter().position(stop).unwrap_or(last);
                Ok(args[i].clone())
            }
            "eq" | "ne" => {
                let Some((a, rest)) = args.split_first().filter(|(_, r)| !r.is_empty()) else {
                    return Err(err_at(
                        self.src,
                        pos,
                        &format!(
                            "wrong number of args for {name}: want at least 2 got {}",
                            args.len()
                        ),
                    ));
                };
                if name == "ne" && rest.len() != 1 {
                    return Err(err_at(self.src, pos, &want(2)));
                }
                let mut equal = false;
                for b in rest {
                    match (a, b) {
                        (V::Str(_), V::Str(_))
                        | (V::Int(_), V::Int(_))
                        | (V::Bool(_), V::Bool(_)) => {
                            equal |= a == b;
                        }
                        _ => return fail("incompatible types for comparison".into()),
                    }
                }
                Ok(V::Bool(if name == "eq" { equal } else { !equal }))
            }
            other => Err(err_at(
                self.src,
                pos,
                &format!("function {other:?} not defined"),
            )),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        let mut c = Context::new();
        c.insert("Series", Value::Str("http_requests_total".into()));
        c.insert(
            "LabelMatchers",
            Value::Str(r#"namespace="default",pod="p1""#.into()),
        );
        c.insert("GroupBy", Value::Str("pod".into()));
        c.insert(
            "GroupBySlice",
            Value::List(vec!["pod".into(), "container".into()]),
        );
        c.insert("Empty", Value::Str(String::new()));
        c.insert("EmptyList", Value::List(Vec::new()));
        let mut m = BTreeMap::new();
        m.insert("pod".to_owned(), "p1|p2".to_owned());
        m.insert("namespace".to_owned(), "default".to_owned());
        c.insert("LabelValuesByName", Value::Map(m));
        c
    }

    fn render(src: &str) -> String {
        Template::parse(src).unwrap().render(&ctx()).unwrap()
    }

    fn parse_err(src: &str) -> String {
        Template::parse(src).unwrap_err().0
    }

    fn render_err(src: &str) -> String {
        Template::parse(src).unwrap().render(&ctx()).unwrap_err().0
    }

    #[test]
    fn literal_text_and_fields() {
        assert_eq!(render("up"), "up");
        assert_eq!(render(""), "");
        assert_eq!(
            render("sum(rate(<<.Series>>{<<.LabelMatchers>>}[5m])) by (<<.GroupBy>>)"),
            r#"sum(rate(http_requests_total{namespace="default",pod="p1"}[5m])) by (pod)"#
        );
        // A single `<` or `>` is literal text.
        assert_eq!(render("a < b > c <<.GroupBy>>>"), "a < b > c pod>");
    }

    #[test]
    fn lists_and_maps_print_like_go_fmt() {
        assert_eq!(render("<<.GroupBySlice>>"), "[pod container]");
        assert_eq!(render("<<.EmptyList>>"), "[]");
        assert_eq!(
            render("<<.LabelValuesByName>>"),
            "map[namespace:default pod:p1|p2]"
        );
    }

    #[test]
    fn trim_markers_and_comments() {
        assert_eq!(render("a  \n <<- .GroupBy ->>  \n b"), "apodb");
        assert_eq!(render("a <<- .GroupBy>> b"), "apod b");
        assert_eq!(render("a <<.GroupBy ->> b"), "a podb");
        assert_eq!(render("x<</* a comment >> */>>y"), "xy");
        assert_eq!(render("x <<- /* c */ ->> y"), "xy");
        // `<<-3>>` is the number -3, not a trim marker.
        assert_eq!(render("a <<-3>>"), "a -3");
        assert_eq!(
            parse_err("x<</* c */ >>"),
            "line 1, column 2: comment ends before closing delimiter"
        );
    }

    #[test]
    fn index_len_print_printf() {
        assert_eq!(render(r#"<<index .LabelValuesByName "pod">>"#), "p1|p2");
        assert_eq!(render(r#"<<index .LabelValuesByName "nope">>"#), "");
        assert_eq!(render("<<index .GroupBySlice 1>>"), "container");
        assert_eq!(
            render("<<len .GroupBySlice>> <<len .Series>> <<len .LabelValuesByName>>"),
            "2 19 2"
        );
        assert_eq!(render(r#"<<print "a" "b" 1 2 .GroupBy>>"#), "ab1 2pod");
        assert_eq!(
            render(r#"<<printf "%s=%q %d%% %v" .GroupBy .Series 42 .GroupBySlice>>"#),
            r#"pod="http_requests_total" 42% [pod container]"#
        );
        assert_eq!(render(r#"<<printf "%q" "a\"b\n">>"#), r#""a\"b\n""#);
        assert_eq!(render(r#"<<printf "%d" .GroupBy>>"#), "%!d(string=pod)");
        assert_eq!(render(r#"<<printf "%s %s" .GroupBy>>"#), "pod %!s(MISSING)");
        assert_eq!(render(r#"<<.GroupBy | printf "by (%s)">>"#), "by (pod)");
        assert_eq!(render(r#"<<printf "%d" (len .GroupBySlice)>>"#), "2");
        assert_eq!(render("<<`raw\\n`>>"), "raw\\n");
        assert_eq!(
            render_err("<<index .GroupBySlice 5>>"),
            "line 1, column 3: error calling index: index out of range: 5"
        );
    }

    #[test]
    fn if_else_truthiness() {
        assert_eq!(
            render("<<if .GroupBy>>by (<<.GroupBy>>)<<end>>"),
            "by (pod)"
        );
        assert_eq!(render("<<if .Empty>>yes<<else>>no<<end>>"), "no");
        assert_eq!(render("<<if .EmptyList>>yes<<else>>no<<end>>"), "no");
        assert_eq!(
            render("<<if .LabelValuesByName>>yes<<else>>no<<end>>"),
            "yes"
        );
        assert_eq!(
            render("<<if .Empty>>a<<else if .GroupBy>>b<<else>>c<<end>>"),
            "b"
        );
        assert_eq!(render("<<if not .Empty>>a<<end>>"), "a");
        assert_eq!(
            render(r#"<<if eq .GroupBy "pod">>a<<end>><<if ne .GroupBy "pod">>b<<end>>"#),
            "a"
        );
        assert_eq!(
            render("<<if and .GroupBy .Empty>>a<<else>>b<<end>><<or .Empty .GroupBy>>"),
            "bpod"
        );
    }

    #[test]
    fn range_over_lists_and_maps() {
        assert_eq!(
            render("<<range .GroupBySlice>>[<<.>>]<<end>>"),
            "[pod][container]"
        );
        assert_eq!(render("<<range .EmptyList>>x<<else>>none<<end>>"), "none");
        assert_eq!(
            render("<<range .LabelValuesByName>><<.>>;<<end>>"),
            "default;p1|p2;"
        );
        assert_eq!(
            render("<<range .GroupBySlice>><<.>><<if .>>!<<end>><<end>>"),
            "pod!container!"
        );
    }

    #[test]
    fn parse_errors_name_the_position() {
        assert_eq!(
            parse_err(r#"<<join .GroupBySlice ",">>"#),
            "line 1, column 3: function \"join\" not defined"
        );
        assert_eq!(
            parse_err("a\n  <<.Series"),
            "line 2, column 3: unclosed action"
        );
        assert_eq!(
            parse_err("<<if .Series>>x"),
            "line 1, column 1: unexpected EOF: if has no <<end>>"
        );
        assert_eq!(
            parse_err("x<<end>>"),
            "line 1, column 2: unexpected <<end>>"
        );
        assert_eq!(
            parse_err("<<>>"),
            "line 1, column 1: missing value for command"
        );
        assert_eq!(
            parse_err("<<$x := 1>>"),
            "line 1, column 3: template variables are not supported"
        );
        assert_eq!(
            parse_err(r#"<<"abc>>"#),
            "line 1, column 3: unterminated quoted string"
        );
        assert_eq!(
            parse_err("<<with .X>><<end>>"),
            "line 1, column 1: `with` is not supported"
        );
    }

    #[test]
    fn hostile_input_does_not_panic() {
        assert!(
            parse_err(&format!(
                "<<{}.X{}>>",
                "(".repeat(10_000),
                ")".repeat(10_000)
            ))
            .contains("too deeply")
        );
        assert!(parse_err(&"<<if .X>>".repeat(10_000)).contains("too deeply"));
        assert!(parse_err("<<1é>>").contains("bad number syntax"));
        for src in [
            "<<", "<<-", "<<- ", "<</*", "<</* */", "<<(", "<<)>>", "<<|>>", "<<.X|>>", "<<\"\\",
            "<<`",
        ] {
            assert!(Template::parse(src).is_err(), "{src}");
        }
    }

    #[test]
    fn unknown_fields_fail_at_render_time() {
        let t = Template::parse("ok <<.Nope>>").unwrap();
        assert_eq!(
            t.render(&ctx()).unwrap_err().0,
            "line 1, column 6: can't evaluate field Nope"
        );
        assert_eq!(
            render_err("<<range .GroupBySlice>><<.X>><<end>>"),
            "line 1, column 26: can't evaluate field X in type string"
        );
        assert_eq!(
            render_err("<<.Series 1>>"),
            "line 1, column 3: can't give argument to non-function"
        );
    }
}
