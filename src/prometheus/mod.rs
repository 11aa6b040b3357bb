//! Talking to a Prometheus-compatible query API: the [`Backend`] trait the rest of augur uses,
//! the result types, and the HTTP implementation in [`client`].

pub mod args;
pub mod auth;
pub mod client;
pub mod coalesce;
mod decode;
#[cfg(any(test, feature = "test-util"))]
pub mod fake;
pub mod instrumented;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

pub use args::{DEFAULT_PROMETHEUS_URL, PrometheusArgs, VerbArg};
pub use client::{BackendOptions, HttpBackend, Verb};

/// Labels of one series, `__name__` included when the API returns it.
pub type LabelSet = BTreeMap<String, String>;

/// One distinct (series name, label names) pair: all that naming and resource association
/// need. Label values are never kept, which keeps memory flat at a million series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesShape {
    /// `__name__`.
    pub name: Arc<str>,
    /// The other label names, sorted.
    pub labels: Arc<[Box<str>]>,
}

impl std::fmt::Display for SeriesShape {
    /// `name{label1,label2}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{{{}}}", self.name, self.labels.join(","))
    }
}

/// The answer of `/api/v1/series`, reduced to distinct shapes while it is decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesList {
    /// Distinct shapes, sorted.
    pub shapes: Vec<SeriesShape>,
    /// How many series the backend returned (with duplicates and nameless ones).
    pub total: usize,
}

impl SeriesList {
    /// Reduces full label sets (fakes, tests).
    pub fn from_label_sets(sets: &[LabelSet]) -> Self {
        let mut builder = SeriesListBuilder::default();
        for set in sets {
            let name = set.get("__name__").map(String::as_str);
            builder.push(
                name,
                set.keys()
                    .filter(|k| *k != "__name__")
                    .map(|k| Box::from(k.as_str()))
                    .collect(),
            );
        }
        builder.finish()
    }
}

/// Accumulates shapes one series at a time, sharing names and label-name lists.
#[derive(Debug, Default)]
pub struct SeriesListBuilder {
    shapes: HashSet<SeriesShape>,
    names: HashSet<Arc<str>>,
    label_lists: HashSet<Arc<[Box<str>]>>,
    total: usize,
}

impl SeriesListBuilder {
    /// Adds one series; one without a name is counted and dropped.
    pub fn push(&mut self, name: Option<&str>, mut labels: Vec<Box<str>>) {
        self.total += 1;
        let Some(name) = name else { return };
        labels.sort_unstable();
        let name = match self.names.get(name) {
            Some(existing) => existing.clone(),
            None => {
                let interned: Arc<str> = Arc::from(name);
                self.names.insert(interned.clone());
                interned
            }
        };
        let labels = match self.label_lists.get(labels.as_slice()) {
            Some(existing) => existing.clone(),
            None => {
                let interned: Arc<[Box<str>]> = labels.into();
                self.label_lists.insert(interned.clone());
                interned
            }
        };
        self.shapes.insert(SeriesShape { name, labels });
    }

    /// Counts one more series of a shape already pushed.
    pub(crate) fn push_seen(&mut self) {
        self.total += 1;
    }

    /// The distinct shapes, sorted, and the series count.
    pub fn finish(self) -> SeriesList {
        let mut shapes: Vec<SeriesShape> = self.shapes.into_iter().collect();
        shapes.sort_unstable();
        SeriesList {
            shapes,
            total: self.total,
        }
    }
}

/// One sample of an instant-query result.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Labels of the result series (empty for a scalar).
    pub labels: LabelSet,
    /// Sample time, Unix seconds.
    pub timestamp: f64,
    /// Sample value (may be NaN or ±Inf).
    pub value: f64,
}

/// The result of an instant query.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    /// An instant vector.
    Vector(Vec<Sample>),
    /// A scalar (labels empty).
    Scalar(Sample),
    /// A range vector (only from a malformed rule: instant queries should not return one).
    Matrix(Vec<RangeSeries>),
    /// A string result.
    String(String),
}

impl QueryResult {
    /// The result type's name as Prometheus spells it.
    pub fn type_name(&self) -> &'static str {
        match self {
            QueryResult::Vector(_) => "vector",
            QueryResult::Scalar(_) => "scalar",
            QueryResult::Matrix(_) => "matrix",
            QueryResult::String(_) => "string",
        }
    }
}

/// Most points asked of one range query per series (Prometheus refuses more than 11,000).
pub const MAX_RANGE_POINTS: i64 = 10_000;

/// The pieces `(start, end)` (Unix seconds, both included) of a range query from `start`
/// to `end` every `step` seconds, each of at most [`MAX_RANGE_POINTS`] points; none when
/// `end < start`.
pub fn range_chunks(start: i64, end: i64, step: i64) -> impl Iterator<Item = (i64, i64)> {
    let step = step.max(1);
    let span = (MAX_RANGE_POINTS - 1).saturating_mul(step);
    std::iter::successors((start <= end).then_some(start), move |&s| {
        s.checked_add(span)
            .and_then(|last| last.checked_add(step))
            .filter(|&next| next <= end)
    })
    .map(move |s| (s, s.saturating_add(span).min(end)))
}

/// One series of a range-query result.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    /// Labels of the series.
    pub labels: LabelSet,
    /// (Unix seconds, value) pairs in time order.
    pub points: Vec<(f64, f64)>,
}

/// Why a call to the backend failed. Messages name the endpoint and the cause.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Connection refused, DNS failure, TLS failure: the backend could not be reached.
    #[error("prometheus at {url} is unreachable: {cause}")]
    Unreachable {
        /// The URL that was called (without query string).
        url: String,
        /// The innermost transport error.
        cause: String,
    },
    /// No answer within `--prometheus-timeout`.
    #[error("prometheus at {url} did not answer within {after:?}")]
    Timeout {
        /// The URL that was called (without query string).
        url: String,
        /// The configured timeout.
        after: Duration,
    },
    /// The backend answered with `status: error` (bad query, execution error, ...).
    #[error("prometheus rejected the request ({error_type}): {message}")]
    Api {
        /// Prometheus' `errorType` (`bad_data`, `execution`, `timeout`, ...).
        error_type: String,
        /// Prometheus' `error`.
        message: String,
    },
    /// An HTTP status without a Prometheus error body (414, 502, ...).
    #[error("prometheus answered HTTP {code}: {body}")]
    Status {
        /// HTTP status code.
        code: u16,
        /// The start of the response body.
        body: String,
    },
    /// The response was not the JSON Prometheus' API documents.
    #[error("cannot decode prometheus response: {0}")]
    Decode(String),
    /// The client could not be built from its options (bad URL, unreadable CA file, ...).
    #[error("invalid prometheus client settings: {0}")]
    Setup(String),
}

impl Error {
    /// True for failures where the backend was not reached or did not answer in time.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unreachable { .. } | Error::Timeout { .. })
    }
}

/// Result alias for backend calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The three read calls augur makes. Implemented over HTTP by [`HttpBackend`]; tests use the
/// in-memory `fake::FakeBackend` (`cfg(test)` or the `test-util` feature).
pub trait Backend: Send + Sync + 'static {
    /// `GET|POST /api/v1/series` with `match[]=selector` and `start`, no `end`.
    fn series<'a>(
        &'a self,
        selector: &'a str,
        start: SystemTime,
    ) -> BoxFuture<'a, Result<SeriesList>>;
    /// `GET|POST /api/v1/query` at time `at`.
    fn query<'a>(&'a self, promql: &'a str, at: SystemTime) -> BoxFuture<'a, Result<QueryResult>>;
    /// `GET|POST /api/v1/query_range`.
    fn query_range<'a>(
        &'a self,
        promql: &'a str,
        start: SystemTime,
        end: SystemTime,
        step: Duration,
    ) -> BoxFuture<'a, Result<Vec<RangeSeries>>>;
}

#[cfg(test)]
mod tests {
    use super::range_chunks;

    #[test]
    fn range_queries_split_at_ten_thousand_points() {
        let chunks = |start, end, step| range_chunks(start, end, step).collect::<Vec<_>>();
        // 25,001 points at 60 s: 10,000 + 10,000 + 5,001.
        assert_eq!(
            chunks(0, 60 * 25_000, 60),
            vec![(0, 599_940), (600_000, 1_199_940), (1_200_000, 1_500_000)]
        );
        // Exactly 10,000 points: one query; one point: one query; end before start: none.
        assert_eq!(chunks(0, 9_999, 1), vec![(0, 9_999)]);
        assert_eq!(chunks(0, 10_000, 1), vec![(0, 9_999), (10_000, 10_000)]);
        assert_eq!(chunks(120, 120, 60), vec![(120, 120)]);
        assert_eq!(chunks(120, 60, 60), Vec::<(i64, i64)>::new());
        // Near the end of time: no overflow, one last piece.
        assert_eq!(
            chunks(i64::MAX - 5, i64::MAX, 1),
            vec![(i64::MAX - 5, i64::MAX)]
        );
    }
}
