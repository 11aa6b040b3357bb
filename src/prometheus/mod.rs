//! Talking to a Prometheus-compatible query API: the [`Backend`] trait the rest of augur uses,
//! the result types, and the HTTP implementation in [`client`].

pub mod client;
pub mod fake;
pub mod instrumented;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

pub use client::{BackendOptions, HttpBackend, Verb};

/// Labels of one series, `__name__` included when the API returns it.
pub type LabelSet = BTreeMap<String, String>;

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

/// The three read calls augur makes. Implemented over HTTP by [`HttpBackend`]; unit tests use
/// the in-memory [`fake::FakeBackend`].
pub trait Backend: Send + Sync + 'static {
    /// `GET|POST /api/v1/series` with `match[]=selector` and `start`, no `end`.
    fn series<'a>(
        &'a self,
        selector: &'a str,
        start: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<LabelSet>>>;
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
