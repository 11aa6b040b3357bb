//! An in-memory [`Backend`] for unit tests and benchmarks only: canned answers, recorded calls.
//!
//! Not for production use: compiled under `cfg(test)` and with the `test-util` feature (which
//! integration tests and benchmarks turn on), never in a release build.
//!
//! ```
//! # use augur::prometheus::{fake::{FakeBackend, labels}, Backend, QueryResult};
//! # use std::time::SystemTime;
//! let fake = FakeBackend::new()
//!     .with_series("{__name__=\"up\"}", vec![labels(&[("__name__", "up"), ("job", "a")])])
//!     .with_query("up", QueryResult::Vector(vec![]));
//! # futures::executor::block_on(async {
//! let series = fake.series("{__name__=\"up\"}", SystemTime::now()).await.unwrap();
//! assert_eq!((series.total, series.shapes.len()), (1, 1));
//! # });
//! assert_eq!(fake.selectors(), vec!["{__name__=\"up\"}".to_owned()]);
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use futures::FutureExt;
use futures::future::BoxFuture;

use super::{Backend, Error, LabelSet, QueryResult, RangeSeries, Result, Sample, SeriesList};

/// One call the fake received.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// A `series` call.
    Series {
        /// The selector, verbatim.
        selector: String,
        /// The `start` argument.
        start: SystemTime,
    },
    /// A `query` call.
    Query {
        /// The PromQL text, verbatim.
        promql: String,
        /// The evaluation time.
        at: SystemTime,
    },
    /// A `query_range` call.
    QueryRange {
        /// The PromQL text, verbatim.
        promql: String,
        /// Range start.
        start: SystemTime,
        /// Range end.
        end: SystemTime,
        /// Step.
        step: Duration,
    },
}

/// Computes the answer of a `query` call (for answers that depend on the query text or time).
pub type QueryFn = dyn Fn(&str, SystemTime) -> Result<QueryResult> + Send + Sync;

#[derive(Default)]
struct State {
    series: HashMap<String, Vec<LabelSet>>,
    queries: HashMap<String, QueryResult>,
    ranges: HashMap<String, Vec<RangeSeries>>,
    query_fn: Option<Arc<QueryFn>>,
    failure: Option<Error>,
    failures: HashMap<String, Error>,
    clip_ranges: bool,
    delay: Duration,
    calls: Vec<Call>,
}

/// In-memory backend (test-only; see the module docs).
///
/// Unknown selectors answer an empty series list; unknown queries (with no closure set) an
/// empty vector, as Prometheus does for a selector matching nothing. A failure set with
/// [`FakeBackend::fail_all`] or [`FakeBackend::fail_on`] wins over canned answers. Every call
/// is recorded, failed ones included.
#[derive(Default)]
pub struct FakeBackend {
    state: Mutex<State>,
}

impl std::fmt::Debug for FakeBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeBackend").finish_non_exhaustive()
    }
}

impl FakeBackend {
    /// A fake with no canned answers.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Builder form of [`FakeBackend::set_series`].
    pub fn with_series(self, selector: impl Into<String>, series: Vec<LabelSet>) -> Self {
        self.set_series(selector, series);
        self
    }

    /// Builder form of [`FakeBackend::set_query`].
    pub fn with_query(self, promql: impl Into<String>, result: QueryResult) -> Self {
        self.set_query(promql, result);
        self
    }

    /// Builder form of [`FakeBackend::set_range`].
    pub fn with_range(self, promql: impl Into<String>, result: Vec<RangeSeries>) -> Self {
        self.set_range(promql, result);
        self
    }

    /// Builder form of [`FakeBackend::set_query_fn`].
    pub fn with_query_fn(
        self,
        f: impl Fn(&str, SystemTime) -> Result<QueryResult> + Send + Sync + 'static,
    ) -> Self {
        self.set_query_fn(f);
        self
    }

    /// The answer of `series(selector, _)` (exact selector text).
    pub fn set_series(&self, selector: impl Into<String>, series: Vec<LabelSet>) {
        self.lock().series.insert(selector.into(), series);
    }

    /// The answer of `query(promql, _)` (exact query text). Wins over the closure.
    pub fn set_query(&self, promql: impl Into<String>, result: QueryResult) {
        self.lock().queries.insert(promql.into(), result);
    }

    /// The answer of `query_range(promql, ..)` (exact query text).
    pub fn set_range(&self, promql: impl Into<String>, result: Vec<RangeSeries>) {
        self.lock().ranges.insert(promql.into(), result);
    }

    /// Answers `query` calls that have no canned result with a closure.
    pub fn set_query_fn(
        &self,
        f: impl Fn(&str, SystemTime) -> Result<QueryResult> + Send + Sync + 'static,
    ) {
        self.lock().query_fn = Some(Arc::new(f));
    }

    /// Makes every call fail with `error` (`None` restores normal answers).
    pub fn fail_all(&self, error: Option<Error>) {
        self.lock().failure = error;
    }

    /// Makes calls whose selector or query text is exactly `text` fail with `error`.
    pub fn fail_on(&self, text: impl Into<String>, error: Error) {
        self.lock().failures.insert(text.into(), error);
    }

    /// Answers `query_range` calls with only the canned points within `[start, end]`, as
    /// Prometheus does (by default every canned point is returned, whatever the range).
    pub fn clip_ranges(&self, clip: bool) {
        self.lock().clip_ranges = clip;
    }

    /// Waits this long (tokio timer) before answering each call.
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The selectors of the `series` calls so far, in order.
    pub fn selectors(&self) -> Vec<String> {
        self.lock()
            .calls
            .iter()
            .filter_map(|c| match c {
                Call::Series { selector, .. } => Some(selector.clone()),
                _ => None,
            })
            .collect()
    }

    /// The PromQL texts of the `query` and `query_range` calls so far, in order.
    pub fn queries(&self) -> Vec<String> {
        self.lock()
            .calls
            .iter()
            .filter_map(|c| match c {
                Call::Query { promql, .. } | Call::QueryRange { promql, .. } => {
                    Some(promql.clone())
                }
                Call::Series { .. } => None,
            })
            .collect()
    }

    /// Forgets the recorded calls.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Records `call` and returns the delay and the failure to apply, if any.
    fn record(&self, call: Call, text: &str) -> (Duration, Option<Error>) {
        let mut state = self.lock();
        state.calls.push(call);
        let failure = state
            .failure
            .clone()
            .or_else(|| state.failures.get(text).cloned());
        (state.delay, failure)
    }

    async fn pause(delay: Duration) {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}

impl Backend for FakeBackend {
    fn series<'a>(
        &'a self,
        selector: &'a str,
        start: SystemTime,
    ) -> BoxFuture<'a, Result<SeriesList>> {
        async move {
            let call = Call::Series {
                selector: selector.to_owned(),
                start,
            };
            let (delay, failure) = self.record(call, selector);
            Self::pause(delay).await;
            if let Some(e) = failure {
                return Err(e);
            }
            let state = self.lock();
            let sets = state
                .series
                .get(selector)
                .map(Vec::as_slice)
                .unwrap_or_default();
            Ok(SeriesList::from_label_sets(sets))
        }
        .boxed()
    }

    fn query<'a>(&'a self, promql: &'a str, at: SystemTime) -> BoxFuture<'a, Result<QueryResult>> {
        async move {
            let call = Call::Query {
                promql: promql.to_owned(),
                at,
            };
            let (delay, failure) = self.record(call, promql);
            Self::pause(delay).await;
            if let Some(e) = failure {
                return Err(e);
            }
            let (canned, f) = {
                let state = self.lock();
                (state.queries.get(promql).cloned(), state.query_fn.clone())
            };
            match (canned, f) {
                (Some(result), _) => Ok(result),
                (None, Some(f)) => f(promql, at),
                (None, None) => Ok(QueryResult::Vector(Vec::new())),
            }
        }
        .boxed()
    }

    fn query_range<'a>(
        &'a self,
        promql: &'a str,
        start: SystemTime,
        end: SystemTime,
        step: Duration,
    ) -> BoxFuture<'a, Result<Vec<RangeSeries>>> {
        async move {
            let call = Call::QueryRange {
                promql: promql.to_owned(),
                start,
                end,
                step,
            };
            let (delay, failure) = self.record(call, promql);
            Self::pause(delay).await;
            if let Some(e) = failure {
                return Err(e);
            }
            let state = self.lock();
            let mut series = state.ranges.get(promql).cloned().unwrap_or_default();
            if state.clip_ranges {
                let secs = |t: SystemTime| {
                    t.duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64())
                };
                let (from, to) = (secs(start), secs(end));
                for s in &mut series {
                    s.points.retain(|&(t, _)| t >= from && t <= to);
                }
                series.retain(|s| !s.points.is_empty());
            }
            Ok(series)
        }
        .boxed()
    }
}

/// A label set from pairs: `labels(&[("pod", "web-1")])`.
pub fn labels(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A vector sample with the given labels and value, at time 0.
pub fn sample(pairs: &[(&str, &str)], value: f64) -> Sample {
    Sample {
        labels: labels(pairs),
        timestamp: 0.0,
        value,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_and_records() {
        let fake = FakeBackend::new()
            .with_series("{a=\"1\"}", vec![labels(&[("a", "1")])])
            .with_query(
                "q1",
                QueryResult::Vector(vec![sample(&[("pod", "p")], 2.0)]),
            )
            .with_range(
                "r",
                vec![RangeSeries {
                    labels: labels(&[]),
                    points: vec![(1.0, 2.0)],
                }],
            )
            .with_query_fn(|q, _| Ok(QueryResult::String(q.to_owned())));
        let now = SystemTime::now();
        assert_eq!(fake.series("{a=\"1\"}", now).await.unwrap().total, 1);
        assert_eq!(fake.series("{b=\"1\"}", now).await.unwrap().total, 0);
        let QueryResult::Vector(v) = fake.query("q1", now).await.unwrap() else {
            panic!()
        };
        assert_eq!(v[0].value, 2.0);
        assert_eq!(
            fake.query("other", now).await.unwrap(),
            QueryResult::String("other".into())
        );
        assert_eq!(
            fake.query_range("r", now, now, Duration::from_secs(1))
                .await
                .unwrap()[0]
                .points,
            vec![(1.0, 2.0)]
        );
        assert_eq!(fake.selectors(), vec!["{a=\"1\"}", "{b=\"1\"}"]);
        assert_eq!(fake.queries(), vec!["q1", "other", "r"]);
        assert_eq!(fake.calls().len(), 5);
        fake.clear_calls();
        assert!(fake.calls().is_empty());
    }

    #[tokio::test]
    async fn unknown_query_is_empty_vector_without_closure() {
        let fake = FakeBackend::new();
        assert_eq!(
            fake.query("x", SystemTime::now()).await.unwrap(),
            QueryResult::Vector(vec![])
        );
    }

    #[tokio::test]
    async fn failures() {
        let fake = FakeBackend::new().with_query("ok", QueryResult::Vector(vec![]));
        fake.fail_on(
            "bad",
            Error::Api {
                error_type: "bad_data".into(),
                message: "nope".into(),
            },
        );
        let now = SystemTime::now();
        assert!(fake.query("ok", now).await.is_ok());
        assert!(matches!(
            fake.query("bad", now).await,
            Err(Error::Api { .. })
        ));
        fake.fail_all(Some(Error::Timeout {
            url: "u".into(),
            after: Duration::from_secs(1),
        }));
        assert!(fake.series("s", now).await.unwrap_err().is_unavailable());
        assert!(fake.query("ok", now).await.is_err());
        fake.fail_all(None);
        assert!(fake.query("ok", now).await.is_ok());
        assert_eq!(fake.calls().len(), 5);
    }
}
