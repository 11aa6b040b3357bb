//! Incremental decoding of Prometheus API answers: the body is fed chunk by chunk, and each
//! element of the answer's one big array (`data` of `/api/v1/series`, `data.result` of a
//! query) is decoded on its own as soon as it is complete, so no answer is ever held whole.

use std::borrow::Cow;
use std::collections::HashSet;

use prometheus_http_query::response::{InstantVector, RangeVector, Sample as PromSample};
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::{
    Error, LabelSet, QueryResult, RangeSeries, Result, Sample, SeriesList, SeriesListBuilder,
};

/// What a [`Scanner`] hands over: members of the objects on its path and the elements of the
/// array at the end of it.
pub(crate) trait Sink {
    /// Whether the value of `key` in the object at `depth` (0 = the top object) is wanted;
    /// unwanted values are skipped without being kept.
    fn wants(&self, depth: usize, key: &str) -> bool;
    /// A wanted member that is not descended into, with its raw JSON value.
    fn member(&mut self, depth: usize, key: &str, value: &[u8]) -> Result<()>;
    /// One element of the array at the end of the path, raw JSON.
    fn element(&mut self, value: &[u8]) -> Result<()>;
    /// The member `key` of the object at `depth` is on the path and is descended into.
    fn enter(&mut self, _depth: usize, _key: &str) {}
}

/// Where the scanner is between tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the top-level `{`.
    Start,
    /// After `{`: a key or `}`.
    ObjectOpen,
    /// After `,` in an object: a key.
    ObjectKey,
    /// After a key: `:`.
    Colon,
    /// After `:`: the member's value.
    MemberValue,
    /// After a member's value: `,` or `}`.
    ObjectNext,
    /// After `[` of the target array: an element or `]`.
    ArrayOpen,
    /// After `,` in the target array: an element.
    ArrayElement,
    /// After an element: `,` or `]`.
    ArrayNext,
    /// After the top-level `}`: only whitespace.
    End,
}

/// What the value being scanned is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// A member handed to [`Sink::member`].
    Member,
    /// A member nobody wants: scanned, not kept.
    Skip,
    /// An element handed to [`Sink::element`].
    Element,
}

/// A value being scanned, resumable across chunks.
#[derive(Debug, Clone, Copy)]
struct ValueScan {
    /// Where the value starts in the buffer.
    start: usize,
    /// Where scanning resumes in the buffer.
    pos: usize,
    /// Open brackets (for an object or array value).
    depth: u32,
    in_string: bool,
    /// A `\` was the last byte seen inside a string.
    escaped: bool,
    /// A number, `true`, `false` or `null`: ends at a delimiter.
    literal: bool,
    target: Target,
}

/// A push parser for one JSON object answer: descends into the members named by `path`
/// (objects, then one array at the end) and hands everything else to its [`Sink`].
pub(crate) struct Scanner<S> {
    path: &'static [&'static str],
    sink: S,
    /// Bytes received and not yet consumed.
    buf: Vec<u8>,
    /// Bytes consumed before `buf[0]` (for error positions).
    consumed: usize,
    state: State,
    /// Depth of the object being read (0 = top), while in an object state.
    depth: usize,
    /// The key whose value comes next.
    key: String,
    scan: Option<ValueScan>,
}

impl<S: Sink> Scanner<S> {
    /// A scanner descending along `path` (e.g. `["data", "result"]`).
    pub(crate) fn new(path: &'static [&'static str], sink: S) -> Self {
        Scanner {
            path,
            sink,
            buf: Vec::new(),
            consumed: 0,
            state: State::Start,
            depth: 0,
            key: String::new(),
            scan: None,
        }
    }

    /// Feeds the next piece of the body.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(chunk);
        let used = self.run(false)?;
        self.consumed += used;
        self.buf.drain(..used);
        if let Some(scan) = &mut self.scan {
            scan.start -= used;
            scan.pos -= used;
        }
        Ok(())
    }

    /// Ends the body: the answer must be one complete object.
    pub(crate) fn finish(mut self) -> Result<S> {
        self.run(true)?;
        if self.state != State::End {
            return Err(Error::Decode(format!(
                "the answer ends early, after {} bytes",
                self.consumed + self.buf.len()
            )));
        }
        Ok(self.sink)
    }

    fn error(&self, at: usize, what: &str) -> Error {
        let found = match self.buf.get(at) {
            Some(b) if b.is_ascii_graphic() => format!("`{}`", *b as char),
            Some(b) => format!("byte 0x{b:02x}"),
            None => "the end".to_owned(),
        };
        Error::Decode(format!(
            "invalid JSON at byte {}: expected {what}, found {found}",
            self.consumed + at
        ))
    }

    /// Consumes as much of `buf` as it can; returns how many bytes may be dropped.
    fn run(&mut self, eof: bool) -> Result<usize> {
        let mut i = 0;
        loop {
            if let Some(mut scan) = self.scan.take() {
                if let Some(end) = advance(&self.buf, &mut scan, eof) {
                    self.value_done(scan, end)?;
                    i = end;
                    continue;
                }
                // Incomplete: keep the value from its start, or nothing of a skipped one.
                if scan.target == Target::Skip {
                    scan.start = scan.pos;
                }
                let keep = scan.start;
                self.scan = Some(scan);
                return Ok(keep);
            }
            while i < self.buf.len() && self.buf[i].is_ascii_whitespace() {
                i += 1;
            }
            let Some(&byte) = self.buf.get(i) else {
                return Ok(i);
            };
            match self.state {
                State::Start => {
                    if byte != b'{' {
                        return Err(self.error(i, "a JSON object"));
                    }
                    self.depth = 0;
                    self.state = State::ObjectOpen;
                    i += 1;
                }
                State::ObjectOpen | State::ObjectKey => {
                    if byte == b'}' && self.state == State::ObjectOpen {
                        i += 1;
                        self.close_object();
                        continue;
                    }
                    if byte != b'"' {
                        return Err(self.error(i, "a key"));
                    }
                    let Some(end) = string_end(&self.buf, i + 1) else {
                        if eof {
                            return Err(self.error(self.buf.len(), "the end of a key"));
                        }
                        return Ok(i);
                    };
                    self.key = decode_key(&self.buf[i..end]).map_err(|_| self.error(i, "a key"))?;
                    self.state = State::Colon;
                    i = end;
                }
                State::Colon => {
                    if byte != b':' {
                        return Err(self.error(i, "`:`"));
                    }
                    self.state = State::MemberValue;
                    i += 1;
                }
                State::MemberValue => {
                    let on_path = self.path.get(self.depth).is_some_and(|p| *p == self.key);
                    let last = self.depth + 1 == self.path.len();
                    if on_path && !last && byte == b'{' {
                        self.sink.enter(self.depth, &self.key);
                        self.depth += 1;
                        self.state = State::ObjectOpen;
                        i += 1;
                    } else if on_path && last && byte == b'[' {
                        self.sink.enter(self.depth, &self.key);
                        self.state = State::ArrayOpen;
                        i += 1;
                    } else {
                        let target = if self.sink.wants(self.depth, &self.key) {
                            Target::Member
                        } else {
                            Target::Skip
                        };
                        self.scan = Some(self.start_scan(i, byte, target)?);
                    }
                }
                State::ObjectNext => {
                    match byte {
                        b',' => self.state = State::ObjectKey,
                        b'}' => self.close_object(),
                        _ => return Err(self.error(i, "`,` or `}`")),
                    }
                    i += 1;
                }
                State::ArrayOpen | State::ArrayElement => {
                    if byte == b']' && self.state == State::ArrayOpen {
                        self.state = State::ObjectNext;
                        i += 1;
                        continue;
                    }
                    self.scan = Some(self.start_scan(i, byte, Target::Element)?);
                }
                State::ArrayNext => {
                    match byte {
                        b',' => self.state = State::ArrayElement,
                        b']' => self.state = State::ObjectNext,
                        _ => return Err(self.error(i, "`,` or `]`")),
                    }
                    i += 1;
                }
                State::End => return Err(self.error(i, "nothing after the answer")),
            }
        }
    }

    /// Leaves the object at `self.depth`.
    fn close_object(&mut self) {
        if self.depth == 0 {
            self.state = State::End;
        } else {
            self.depth -= 1;
            self.state = State::ObjectNext;
        }
    }

    fn start_scan(&self, at: usize, byte: u8, target: Target) -> Result<ValueScan> {
        let mut scan = ValueScan {
            start: at,
            pos: at + 1,
            depth: 0,
            in_string: false,
            escaped: false,
            literal: false,
            target,
        };
        match byte {
            b'{' | b'[' => scan.depth = 1,
            b'"' => scan.in_string = true,
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => scan.literal = true,
            _ => return Err(self.error(at, "a value")),
        }
        Ok(scan)
    }

    fn value_done(&mut self, scan: ValueScan, end: usize) -> Result<()> {
        let value = &self.buf[scan.start..end];
        match scan.target {
            Target::Member => {
                self.sink.member(self.depth, &self.key, value)?;
                self.state = State::ObjectNext;
            }
            Target::Skip => self.state = State::ObjectNext,
            Target::Element => {
                self.sink.element(value)?;
                self.state = State::ArrayNext;
            }
        }
        Ok(())
    }
}

/// Scans `buf` on from `scan.pos`; the end of the value (exclusive) once it is complete.
fn advance(buf: &[u8], scan: &mut ValueScan, eof: bool) -> Option<usize> {
    let mut i = scan.pos;
    let end = loop {
        if scan.in_string {
            if scan.escaped {
                if i >= buf.len() {
                    break None;
                }
                scan.escaped = false;
                i += 1;
            }
            match memchr::memchr2(b'"', b'\\', buf.get(i..).unwrap_or_default()) {
                None => {
                    i = buf.len();
                    break None;
                }
                Some(off) => {
                    i += off + 1;
                    if buf[i - 1] == b'\\' {
                        scan.escaped = true;
                        continue;
                    }
                    scan.in_string = false;
                    if scan.depth == 0 {
                        break Some(i);
                    }
                }
            }
        } else if scan.literal {
            let rest = buf.get(i..).unwrap_or_default();
            match rest
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace())
            {
                Some(off) => break Some(i + off),
                None => {
                    i = buf.len();
                    break eof.then_some(i);
                }
            }
        } else {
            let Some(&b) = buf.get(i) else { break None };
            i += 1;
            match b {
                b'"' => scan.in_string = true,
                b'{' | b'[' => scan.depth += 1,
                b'}' | b']' => {
                    scan.depth -= 1;
                    if scan.depth == 0 {
                        break Some(i);
                    }
                }
                _ => {}
            }
        }
    };
    scan.pos = i;
    end
}

/// The index just past the closing quote of the string whose contents start at `from`.
fn string_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    loop {
        let off = memchr::memchr2(b'"', b'\\', buf.get(i..)?)?;
        i += off;
        if buf[i] == b'\\' {
            i += 2;
            continue;
        }
        return Some(i + 1);
    }
}

/// A key's text (escapes resolved).
fn decode_key(quoted: &[u8]) -> std::result::Result<String, ()> {
    let inner = &quoted[1..quoted.len() - 1];
    if !inner.contains(&b'\\') {
        return std::str::from_utf8(inner)
            .map(str::to_owned)
            .map_err(|_| ());
    }
    serde_json::from_slice(quoted).map_err(|_| ())
}

/// `status`, `errorType` and `error` of the envelope.
#[derive(Debug, Default)]
struct Envelope {
    status: Option<String>,
    error_type: Option<String>,
    error: Option<String>,
}

impl Envelope {
    fn wants(key: &str) -> bool {
        matches!(key, "status" | "errorType" | "error")
    }

    fn member(&mut self, key: &str, value: &[u8]) -> Result<()> {
        let text = || -> Result<Option<String>> {
            // Prometheus sends strings; anything else (VictoriaMetrics' numbers) as written.
            Ok(Some(
                match serde_json::from_slice::<Option<String>>(value) {
                    Ok(Some(s)) => s,
                    Ok(None) => return Ok(None),
                    Err(_) => String::from_utf8_lossy(value).into_owned(),
                },
            ))
        };
        match key {
            "status" => self.status = text()?,
            "errorType" => self.error_type = text()?,
            "error" => self.error = text()?,
            _ => {}
        }
        Ok(())
    }

    /// Ok for `success`; the answer's error otherwise.
    fn check(&mut self) -> Result<()> {
        match self.status.as_deref() {
            Some("success") => Ok(()),
            Some("error") => Err(Error::Api {
                error_type: self.error_type.take().unwrap_or_default(),
                message: self.error.take().unwrap_or_default(),
            }),
            Some(other) => Err(Error::Decode(format!("unknown status {other:?}"))),
            None => Err(Error::Decode("missing field `status`".to_owned())),
        }
    }
}

/// Decodes `/api/v1/series` into distinct shapes: names and label names, values skipped unread.
///
/// Each label set is read in place (no allocation) and its shape looked up by its raw bytes;
/// only a shape not seen before is decoded and interned. A label set the fast path does not
/// cover (escapes in a key or the name, a value that is not a string) goes through serde.
#[derive(Debug, Default)]
pub(crate) struct SeriesSink {
    envelope: Envelope,
    builder: SeriesListBuilder,
    /// Shapes seen, keyed by `name` then the sorted label names, each length-prefixed.
    seen: HashSet<Box<[u8]>, foldhash::fast::RandomState>,
    /// Reused per label set: the key being built, the label names' byte ranges.
    key: Vec<u8>,
    labels: Vec<(usize, usize)>,
}

impl SeriesSink {
    /// The path of the series array.
    pub(crate) const PATH: &'static [&'static str] = &["data"];

    /// A scanner for one `/api/v1/series` answer.
    pub(crate) fn scanner() -> Scanner<SeriesSink> {
        Scanner::new(Self::PATH, SeriesSink::default())
    }

    /// The shapes, or the answer's error.
    pub(crate) fn finish(mut self) -> Result<SeriesList> {
        self.envelope.check()?;
        Ok(self.builder.finish())
    }
}

impl Sink for SeriesSink {
    fn wants(&self, depth: usize, key: &str) -> bool {
        depth == 0 && (Envelope::wants(key) || key == "data")
    }

    fn member(&mut self, _depth: usize, key: &str, value: &[u8]) -> Result<()> {
        if key == "data" {
            // Not an array (the array is descended into): only null is allowed.
            return match value {
                b"null" => Ok(()),
                _ => Err(Error::Decode(
                    "series data: expected a list of label sets".to_owned(),
                )),
            };
        }
        self.envelope.member(key, value)
    }

    fn element(&mut self, value: &[u8]) -> Result<()> {
        let Some(name) = label_names(value, &mut self.labels) else {
            let shape: RawShape = serde_json::from_slice(value)
                .map_err(|e| Error::Decode(format!("series data: {e}")))?;
            self.builder.push(shape.name.as_deref(), shape.labels);
            return Ok(());
        };
        let Some((from, to)) = name else {
            self.builder.push(None, Vec::new());
            return Ok(());
        };
        let labels = &mut self.labels;
        labels.sort_unstable_by(|a, b| value[a.0..a.1].cmp(&value[b.0..b.1]));
        self.key.clear();
        for (from, to) in std::iter::once((from, to)).chain(labels.iter().copied()) {
            let len = u32::try_from(to - from).unwrap_or(u32::MAX);
            self.key.extend_from_slice(&len.to_le_bytes());
            self.key.extend_from_slice(&value[from..to]);
        }
        if self.seen.contains(self.key.as_slice()) {
            self.builder.push_seen();
            return Ok(());
        }
        let text = |(from, to): (usize, usize)| {
            std::str::from_utf8(&value[from..to])
                .map_err(|e| Error::Decode(format!("series data: {e}")))
        };
        let names = labels
            .iter()
            .map(|&range| text(range).map(Box::from))
            .collect::<Result<Vec<Box<str>>>>()?;
        self.builder.push(Some(text((from, to))?), names);
        self.seen.insert(self.key.as_slice().into());
        Ok(())
    }
}

/// The byte ranges of the name and the other label names of a label set in the common form: a
/// flat object of string values whose keys and name have no escapes. None for anything else.
fn label_names(value: &[u8], labels: &mut Vec<(usize, usize)>) -> Option<Option<(usize, usize)>> {
    labels.clear();
    let mut name = None;
    if value.first() != Some(&b'{') {
        return None;
    }
    let mut i = skip_space(value, 1);
    if value.get(i) == Some(&b'}') {
        return (skip_space(value, i + 1) == value.len()).then_some(None);
    }
    loop {
        // A key without escapes.
        if value.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = i + 1 + memchr::memchr2(b'"', b'\\', value.get(i + 1..)?)?;
        if value[key_end] != b'"' {
            return None;
        }
        let key = (i + 1, key_end);
        i = skip_space(value, key_end + 1);
        if value.get(i) != Some(&b':') {
            return None;
        }
        i = skip_space(value, i + 1);
        if value.get(i) != Some(&b'"') {
            return None;
        }
        let value_end = string_end(value, i + 1)?;
        if &value[key.0..key.1] == b"__name__" {
            if value[i + 1..value_end - 1].contains(&b'\\') {
                return None;
            }
            name = Some((i + 1, value_end - 1));
        } else {
            labels.push(key);
        }
        i = skip_space(value, value_end);
        match value.get(i) {
            Some(b',') => i = skip_space(value, i + 1),
            Some(b'}') => return (skip_space(value, i + 1) == value.len()).then_some(name),
            _ => return None,
        }
    }
}

/// The index of the first non-whitespace byte at or after `i`.
fn skip_space(value: &[u8], mut i: usize) -> usize {
    while value.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// One label set: its `__name__` value and the other label names (values skipped unread).
struct RawShape {
    name: Option<String>,
    labels: Vec<Box<str>>,
}

impl<'de> Deserialize<'de> for RawShape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Labels;
        impl<'de> Visitor<'de> for Labels {
            type Value = RawShape;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a label set")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut shape = RawShape {
                    name: None,
                    labels: Vec::new(),
                };
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "__name__" {
                        shape.name = Some(map.next_value::<String>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                        shape.labels.push(Box::from(key.as_ref()));
                    }
                }
                Ok(shape)
            }
        }
        deserializer.deserialize_map(Labels)
    }
}

/// Decodes the answer of `/api/v1/query` or `/api/v1/query_range`: result elements are decoded
/// with prometheus-http-query's types one at a time.
#[derive(Debug, Default)]
pub(crate) struct QuerySink {
    envelope: Envelope,
    /// `data` was present and an object.
    data: bool,
    result_type: Option<String>,
    /// `result` was present.
    result: bool,
    vector: Vec<Sample>,
    matrix: Vec<RangeSeries>,
    /// Elements that came before `resultType`, or of a scalar or string.
    pending: Vec<Vec<u8>>,
}

impl QuerySink {
    /// The path of the result array.
    pub(crate) const PATH: &'static [&'static str] = &["data", "result"];

    /// A scanner for one query answer.
    pub(crate) fn scanner() -> Scanner<QuerySink> {
        Scanner::new(Self::PATH, QuerySink::default())
    }

    fn decode(&mut self, value: &[u8]) -> Result<()> {
        match self.result_type.as_deref() {
            Some("vector") => {
                let item: InstantVector = serde_json::from_slice(value).map_err(|e| {
                    if memchr::memmem::find(value, b"\"histogram\"").is_some() {
                        Error::Decode(
                            "vector sample without a value (native histogram?)".to_owned(),
                        )
                    } else {
                        Error::Decode(format!("query result: {e}"))
                    }
                })?;
                let (metric, sample) = item.into_inner();
                self.vector.push(Sample {
                    labels: metric.into_iter().collect(),
                    timestamp: sample_time(sample.timestamp())?,
                    value: sample.value(),
                });
            }
            Some("matrix") => {
                let item: RangeVector = serde_json::from_slice(value)
                    .map_err(|e| Error::Decode(format!("query result: {e}")))?;
                let (metric, samples) = item.into_inner();
                let points = samples
                    .iter()
                    .map(|s| Ok((sample_time(s.timestamp())?, s.value())))
                    .collect::<Result<_>>()?;
                self.matrix.push(RangeSeries {
                    labels: metric.into_iter().collect(),
                    points,
                });
            }
            _ => self.pending.push(value.to_vec()),
        }
        Ok(())
    }

    /// The result, or the answer's error.
    pub(crate) fn finish(mut self) -> Result<QueryResult> {
        self.envelope.check()?;
        if !self.data {
            return Err(Error::Decode("query result: no data".to_owned()));
        }
        let Some(result_type) = self.result_type.clone() else {
            return Err(Error::Decode(
                "query result: missing field `resultType`".to_owned(),
            ));
        };
        if !self.result {
            return Err(Error::Decode(
                "query result: missing field `result`".to_owned(),
            ));
        }
        let pending = std::mem::take(&mut self.pending);
        let pair = || -> Result<Vec<u8>> {
            let mut joined = b"[".to_vec();
            joined.extend(pending.join(&b","[..]));
            joined.push(b']');
            Ok(joined)
        };
        match result_type.as_str() {
            "vector" | "matrix" => {
                for value in &pending {
                    self.decode(value)?;
                }
                Ok(if result_type == "vector" {
                    QueryResult::Vector(self.vector)
                } else {
                    QueryResult::Matrix(self.matrix)
                })
            }
            "scalar" => {
                let sample: PromSample = serde_json::from_slice(&pair()?)
                    .map_err(|e| Error::Decode(format!("query result: {e}")))?;
                Ok(QueryResult::Scalar(Sample {
                    labels: LabelSet::new(),
                    timestamp: sample_time(sample.timestamp())?,
                    value: sample.value(),
                }))
            }
            "string" => {
                let (_, text): (f64, String) = serde_json::from_slice(&pair()?)
                    .map_err(|e| Error::Decode(format!("query result: {e}")))?;
                Ok(QueryResult::String(text))
            }
            other => Err(Error::Decode(format!(
                "query result: unknown resultType {other:?}"
            ))),
        }
    }
}

/// Checks a sample time: Unix seconds augur can represent (1970 to 9999), not what a broken
/// backend or proxy may write (`3e11`, `1e19`), which would be served as RFC 3339.
fn sample_time(t: f64) -> Result<f64> {
    crate::units::checked_unix_f64(t)
        .map(|_| t)
        .map_err(|e| Error::Decode(format!("sample time: {e}")))
}

impl Sink for QuerySink {
    fn wants(&self, depth: usize, key: &str) -> bool {
        match depth {
            0 => Envelope::wants(key) || key == "data",
            _ => key == "resultType" || key == "result",
        }
    }

    fn member(&mut self, depth: usize, key: &str, value: &[u8]) -> Result<()> {
        match (depth, key) {
            (0, "data") => match value {
                b"null" => Ok(()),
                _ => Err(Error::Decode("query result: expected an object".to_owned())),
            },
            (0, _) => self.envelope.member(key, value),
            (_, "resultType") => {
                let text: String = serde_json::from_slice(value)
                    .map_err(|e| Error::Decode(format!("query resultType: {e}")))?;
                self.result_type = Some(text);
                let pending = std::mem::take(&mut self.pending);
                for value in &pending {
                    self.decode(value)?;
                }
                Ok(())
            }
            // `result` not an array.
            _ => Err(Error::Decode("query result: expected a list".to_owned())),
        }
    }

    fn element(&mut self, value: &[u8]) -> Result<()> {
        self.decode(value)
    }

    fn enter(&mut self, depth: usize, _key: &str) {
        match depth {
            0 => self.data = true,
            _ => self.result = true,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Decodes `body` fed whole, then split at every byte (and one byte at a time): every way
    /// of cutting it must give the same answer.
    fn decode_all_ways<S: Sink, T: std::fmt::Debug + PartialEq>(
        body: &[u8],
        scanner: impl Fn() -> Scanner<S>,
        finish: impl Fn(S) -> Result<T>,
    ) -> Result<T> {
        let run = |pieces: &[&[u8]]| -> Result<T> {
            let mut s = scanner();
            for piece in pieces {
                s.feed(piece)?;
            }
            finish(s.finish()?)
        };
        let whole = run(&[body]);
        let show = |r: &Result<T>| format!("{r:?}");
        for cut in 1..body.len() {
            let (a, b) = body.split_at(cut);
            assert_eq!(show(&run(&[a, b])), show(&whole), "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(show(&run(&bytes)), show(&whole), "byte by byte");
        whole
    }

    fn series(body: &[u8]) -> Result<SeriesList> {
        decode_all_ways(body, SeriesSink::scanner, SeriesSink::finish)
    }

    fn query(body: &str) -> Result<QueryResult> {
        decode_all_ways(body.as_bytes(), QuerySink::scanner, QuerySink::finish)
    }

    #[test]
    fn decodes_series_into_shapes() {
        let body = br#"{"status":"success","data":[{"__name__":"up","job":"a","instance":"x"},{"job":"b","__name__":"up","instance":"y"},{"job":"c"},{"__name__":"down","job":"\u0061"},{"__name__":"gone","job":"d"}]}"#;
        let list = series(body).unwrap();
        assert_eq!(list.total, 5);
        let shapes: Vec<String> = list.shapes.iter().map(ToString::to_string).collect();
        assert_eq!(shapes, ["down{job}", "gone{job}", "up{instance,job}"]);
        // Equal label-name lists are shared, not copied.
        assert!(Arc::ptr_eq(&list.shapes[0].labels, &list.shapes[1].labels));
        // Whitespace, escapes in keys and values, members in any order, extra members.
        let body = br#" { "warnings" : ["a \"b\" ]}"] , "data" : [ { "__name__" : "x\"}" , "l\u0061bel" : "v\\" } ] , "status" : "success" , "infos": {"x": [1, {"y": null}]} } "#;
        let list = series(body).unwrap();
        let shapes: Vec<String> = list.shapes.iter().map(ToString::to_string).collect();
        assert_eq!(shapes, ["x\"}{label}"]);
        // The fast path (plain keys) and serde (escapes, non-string values) agree.
        let body = br#"{"status":"success","data":[{"__name__":"up","job":"a"},{"j\u006fb":"b","__name__":"up"},{"__name__":"u\u0070","job":1},{ "job" : "c" , "__name__" : "up" },{},{"job":"x"}]}"#;
        let list = series(body).unwrap();
        assert_eq!(list.total, 6);
        let shapes: Vec<String> = list.shapes.iter().map(ToString::to_string).collect();
        assert_eq!(shapes, ["up{job}"]);
        assert_eq!(
            series(br#"{"status":"success","data":null}"#).unwrap(),
            SeriesList::default()
        );
        assert_eq!(
            series(br#"{"status":"success","data":[]}"#).unwrap(),
            SeriesList::default()
        );
        assert_eq!(
            series(br#"{"status":"success"}"#).unwrap(),
            SeriesList::default()
        );
    }

    #[test]
    fn bad_series_answers_are_decode_errors() {
        for body in [
            &br#"{"status":"success","data":{"a":1}}"#[..],
            br#"{"status":"success","data":[1]}"#,
            br#"{"status":"success","data":[{"__name__":1}]}"#,
            br#"{"status":"success","data":[{}"#,
            br#"{"status":"success","data":[{}] "#,
            br#"{"status":"success","data":[{}]}}"#,
            br#"{"status":"success","data":[{}],}"#,
            br#"{"status":"success" "data":[]}"#,
            br#"{"status":"success","data":[{}}]}"#,
            br#"{"data":[]}"#,
            br#"{"status":"weird","data":[]}"#,
            b"<html>",
            b"",
            b"[]",
        ] {
            let err = series(body).unwrap_err();
            assert!(
                matches!(err, Error::Decode(_)),
                "{}: {err:?}",
                String::from_utf8_lossy(body)
            );
        }
        let err = series(b"{\"status\":\"success\",\n\"data\":x}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot decode prometheus response: invalid JSON at byte 28: expected a value, found `x`"
        );
    }

    #[test]
    fn error_status_in_a_success_code_is_an_api_error() {
        let err =
            series(br#"{"status":"error","errorType":"bad_data","error":"1:5: parse error"}"#)
                .unwrap_err();
        assert!(
            matches!(&err, Error::Api { error_type, message } if error_type == "bad_data" && message == "1:5: parse error"),
            "{err:?}"
        );
        let err = query(r#"{"status":"error","errorType":422,"error":"too long"}"#).unwrap_err();
        assert!(
            matches!(&err, Error::Api { error_type, .. } if error_type == "422"),
            "{err:?}"
        );
    }

    #[test]
    fn decodes_vector() {
        let r = query(
            r#"{"status":"success","data":{"resultType":"vector","result":[
                {"metric":{"pod":"web-1"},"value":[1700000000.5,"1.25"]},
                {"metric":{"pod":"web-2"},"value":[1700000000.5,"NaN"]},
                {"metric":{"pod":"web-3"},"value":[1700000000.5,"+Inf"]},
                {"metric":{},"value":[1700000000.5,"-Inf"]}]}}"#,
        )
        .unwrap();
        let QueryResult::Vector(samples) = r else {
            panic!("{r:?}")
        };
        assert_eq!(samples.len(), 4);
        assert_eq!(samples[0].labels["pod"], "web-1");
        assert_eq!(samples[0].timestamp, 1_700_000_000.5);
        assert_eq!(samples[0].value, 1.25);
        assert!(samples[1].value.is_nan());
        assert_eq!(samples[2].value, f64::INFINITY);
        assert_eq!(samples[3].value, f64::NEG_INFINITY);
        assert!(samples[3].labels.is_empty());
    }

    #[test]
    fn decodes_scalar_string_and_matrix() {
        let r = query(r#"{"status":"success","data":{"resultType":"scalar","result":[12.5,"3"]}}"#)
            .unwrap();
        assert_eq!(
            r,
            QueryResult::Scalar(Sample {
                labels: LabelSet::new(),
                timestamp: 12.5,
                value: 3.0
            })
        );
        assert_eq!(r.type_name(), "scalar");
        let r =
            query(r#"{"status":"success","data":{"resultType":"string","result":[12.5,"hello"]}}"#)
                .unwrap();
        assert_eq!(r, QueryResult::String("hello".into()));
        let r = query(
            r#"{"status":"success","data":{"resultType":"matrix","result":[
                {"metric":{"a":"b"},"values":[[1,"1"],[2,"2.5"]]},{"metric":{},"values":[]}]}}"#,
        )
        .unwrap();
        let QueryResult::Matrix(m) = r else {
            panic!("{r:?}")
        };
        assert_eq!(m[0].labels["a"], "b");
        assert_eq!(m[0].points, vec![(1.0, 1.0), (2.0, 2.5)]);
        assert!(m[1].points.is_empty());
        // `result` before `resultType`: held until the type is known.
        let r = query(r#"{"data":{"result":[{"metric":{"a":"b"},"value":[1,"2"]}],"resultType":"vector"},"status":"success"}"#)
            .unwrap();
        assert_eq!(
            r,
            QueryResult::Vector(vec![Sample {
                labels: [("a".to_owned(), "b".to_owned())].into(),
                timestamp: 1.0,
                value: 2.0
            }])
        );
    }

    #[test]
    fn bad_query_answers_are_decode_errors() {
        for body in [
            r#"{"status":"success"}"#,
            r#"{"status":"success","data":null}"#,
            r#"{"status":"success","data":[]}"#,
            r#"{"status":"success","data":{"result":[]}}"#,
            r#"{"status":"success","data":{"resultType":"vector"}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":{}}}"#,
            r#"{"status":"success","data":{"resultType":"histogram","result":[]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"abc"]}]}}"#,
            r#"{"status":"success","data":{"resultType":"scalar","result":[1]}}"#,
        ] {
            let err = query(body).unwrap_err();
            assert!(matches!(err, Error::Decode(_)), "{body}: {err:?}");
        }
        let err = query(r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"histogram":[1,{"count":"2"}]}]}}"#)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot decode prometheus response: vector sample without a value (native histogram?)"
        );
    }

    #[test]
    fn skipped_members_are_not_kept() {
        // A large member nobody wants is dropped while it streams by.
        let mut s = SeriesSink::scanner();
        s.feed(br#"{"status":"success","stats":[""#).unwrap();
        for _ in 0..1000 {
            s.feed(&[b'x'; 1024]).unwrap();
            assert!(s.buf.len() < 2048, "{}", s.buf.len());
        }
        s.feed(br#""],"data":[]}"#).unwrap();
        assert_eq!(s.finish().unwrap().finish().unwrap(), SeriesList::default());
    }
}
