//! A [`Backend`] decorator that joins identical queries in flight: while one query runs, every
//! caller asking the same gets its answer instead of a query of its own. Nothing outlives the
//! query: once it is answered, the next caller queries afresh, so no value is older than the
//! time the query takes (plus [`SLACK`] between evaluation times).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared, WeakShared};
use prometheus_client::metrics::counter::Counter;

use super::{Backend, QueryResult, RangeSeries, Result, SeriesList};

/// How far apart the evaluation times of two instant queries may be, beyond the time the first
/// has been running, for the second to join it. Callers ask "now" a little before the query
/// starts; this absorbs that gap.
pub const SLACK: Duration = Duration::from_millis(100);

/// Distinct query texts (and range queries) remembered before those every caller gave up
/// on are dropped: a query nobody waits for any more is never answered, so nothing else
/// removes it.
const PRUNE_ABOVE: usize = 1024;

type Flying<T> = BoxFuture<'static, Result<T>>;

/// One query in flight.
struct Flight<T> {
    id: u64,
    /// Evaluation time (instant queries).
    at: SystemTime,
    started: Instant,
    /// Weak, so that a query every caller gave up on is not joined (nor kept).
    answer: WeakShared<Flying<T>>,
}

/// A range query's identity: the same text, range and step.
type RangeKey = (String, SystemTime, SystemTime, Duration);

/// The flights of one kind of query, by identity.
type Table<K, T> = HashMap<K, Vec<Flight<T>>>;

#[derive(Default)]
struct Flights {
    next_id: u64,
    queries: Table<String, QueryResult>,
    ranges: Table<RangeKey, Vec<RangeSeries>>,
}

/// Joins identical concurrent `query` and `query_range` calls; `series` passes through.
pub struct Coalescing {
    inner: Arc<dyn Backend>,
    flights: Arc<Mutex<Flights>>,
    saved: Counter,
}

impl Coalescing {
    /// Wraps `inner`; `saved` counts the queries that joined one in flight.
    pub fn new(inner: Arc<dyn Backend>, saved: Counter) -> Self {
        Self {
            inner,
            flights: Arc::default(),
            saved,
        }
    }

    /// The answer of a flight of `table` under `key` that `joins` accepts, or of a new
    /// flight running the query `run` makes (registered under `key`, evaluated `at`, and
    /// gone from the table once answered). `run` is only called for a new flight.
    fn join_or_fly<K, T>(
        &self,
        table: fn(&mut Flights) -> &mut Table<K, T>,
        key: K,
        at: SystemTime,
        joins: impl Fn(&Flight<T>) -> bool,
        run: impl FnOnce() -> Flying<T>,
    ) -> Shared<Flying<T>>
    where
        K: Eq + Hash + Clone + Send + 'static,
        T: Clone + Send + Sync + 'static,
    {
        let mut flights = lock(&self.flights);
        let list = table(&mut flights).entry(key.clone()).or_default();
        list.retain(|f| f.answer.upgrade().is_some());
        if let Some(answer) = list
            .iter()
            .filter(|f| joins(f))
            .find_map(|f| f.answer.upgrade())
        {
            self.saved.inc();
            return answer;
        }
        flights.next_id += 1;
        let id = flights.next_id;
        let (registry, flying_key, query) = (self.flights.clone(), key.clone(), run());
        let answer: Shared<Flying<T>> = async move {
            let result = query.await;
            // Gone before anyone is answered: later callers query afresh.
            let mut flights = lock(&registry);
            let table = table(&mut flights);
            if let Some(list) = table.get_mut(&flying_key) {
                list.retain(|f| f.id != id);
                if list.is_empty() {
                    table.remove(&flying_key);
                }
            }
            result
        }
        .boxed()
        .shared();
        let table = table(&mut flights);
        if table.len() > PRUNE_ABOVE {
            table.retain(|_, list| {
                list.retain(|f| f.answer.upgrade().is_some());
                !list.is_empty()
            });
        }
        if let Some(weak) = answer.downgrade() {
            table.entry(key).or_default().push(Flight {
                id,
                at,
                started: Instant::now(),
                answer: weak,
            });
        }
        answer
    }
}

fn lock(flights: &Mutex<Flights>) -> MutexGuard<'_, Flights> {
    flights
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// True when a query at `at` may take the answer of `flight`.
fn joinable<T>(flight: &Flight<T>, at: SystemTime) -> bool {
    let apart = at
        .duration_since(flight.at)
        .or_else(|_| flight.at.duration_since(at))
        .unwrap_or(Duration::MAX);
    apart <= flight.started.elapsed().saturating_add(SLACK)
}

impl Backend for Coalescing {
    fn series<'a>(
        &'a self,
        selector: &'a str,
        start: SystemTime,
    ) -> BoxFuture<'a, Result<SeriesList>> {
        self.inner.series(selector, start)
    }

    fn query<'a>(&'a self, promql: &'a str, at: SystemTime) -> BoxFuture<'a, Result<QueryResult>> {
        let run = || {
            let (inner, text) = (self.inner.clone(), promql.to_owned());
            async move { inner.query(&text, at).await }.boxed()
        };
        self.join_or_fly(
            |f| &mut f.queries,
            promql.to_owned(),
            at,
            |flight| joinable(flight, at),
            run,
        )
        .boxed()
    }

    fn query_range<'a>(
        &'a self,
        promql: &'a str,
        start: SystemTime,
        end: SystemTime,
        step: Duration,
    ) -> BoxFuture<'a, Result<Vec<RangeSeries>>> {
        let run = || {
            let (inner, text) = (self.inner.clone(), promql.to_owned());
            async move { inner.query_range(&text, start, end, step).await }.boxed()
        };
        // The same text, range and step: any flight of the key has the answer.
        self.join_or_fly(
            |f| &mut f.ranges,
            (promql.to_owned(), start, end, step),
            start,
            |_| true,
            run,
        )
        .boxed()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::prometheus::fake::{Call, FakeBackend, sample};

    fn coalescing(fake: &Arc<FakeBackend>) -> (Coalescing, Counter) {
        let saved = Counter::default();
        (Coalescing::new(fake.clone(), saved.clone()), saved)
    }

    fn query_calls(fake: &FakeBackend) -> usize {
        fake.calls()
            .iter()
            .filter(|c| matches!(c, Call::Query { .. }))
            .count()
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_identical_queries_are_one_backend_query() {
        let fake = Arc::new(FakeBackend::new().with_query(
            "up",
            QueryResult::Vector(vec![sample(&[("pod", "a")], 1.5)]),
        ));
        fake.set_delay(Duration::from_millis(200));
        let (backend, saved) = coalescing(&fake);
        let now = SystemTime::now();
        // Twenty callers, each asking "now" a little later than the one before.
        let answers = futures::future::join_all((0..20).map(|i| {
            let backend = &backend;
            async move {
                tokio::time::sleep(Duration::from_millis(5 * i)).await;
                backend
                    .query("up", now + Duration::from_millis(5 * i))
                    .await
            }
        }))
        .await;
        assert_eq!(query_calls(&fake), 1, "{:?}", fake.calls());
        assert_eq!(saved.get(), 19);
        for answer in answers {
            assert_eq!(
                answer.unwrap(),
                QueryResult::Vector(vec![sample(&[("pod", "a")], 1.5)])
            );
        }
        // Answered: the next caller queries afresh (nothing is cached).
        backend.query("up", SystemTime::now()).await.unwrap();
        assert_eq!(query_calls(&fake), 2);
        assert_eq!(saved.get(), 19);
    }

    #[tokio::test(start_paused = true)]
    async fn queries_saved_are_counted_in_metrics() {
        let fake = Arc::new(FakeBackend::new());
        fake.set_delay(Duration::from_millis(100));
        let metrics = crate::telemetry::Metrics::new();
        let backend = Coalescing::new(fake.clone(), metrics.prometheus_coalesced());
        let now = SystemTime::now();
        let (a, b, c) = tokio::join!(
            backend.query("up", now),
            backend.query("up", now),
            backend.query("up", now)
        );
        for answer in [a, b, c] {
            answer.unwrap();
        }
        assert_eq!(query_calls(&fake), 1);
        let text = metrics.encode();
        assert!(
            text.contains("\naugur_prometheus_coalesced_queries_total 2\n"),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn different_queries_and_distant_times_are_not_joined() {
        let fake = Arc::new(FakeBackend::new());
        fake.set_delay(Duration::from_millis(200));
        let (backend, saved) = coalescing(&fake);
        let now = SystemTime::now();
        let (a, b, c, d) = tokio::join!(
            backend.query("up", now),
            backend.query("down", now),
            // An hour earlier: a different answer, not the one in flight.
            backend.query("up", now - Duration::from_secs(3600)),
            backend.query("up", now + SLACK / 2),
        );
        for answer in [a, b, c, d] {
            answer.unwrap();
        }
        assert_eq!(query_calls(&fake), 3, "{:?}", fake.calls());
        assert_eq!(saved.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_shared_and_not_kept() {
        let fake = Arc::new(FakeBackend::new());
        fake.set_delay(Duration::from_millis(100));
        fake.fail_on("up", crate::prometheus::Error::Decode("boom".into()));
        let (backend, saved) = coalescing(&fake);
        let now = SystemTime::now();
        let (a, b) = tokio::join!(backend.query("up", now), backend.query("up", now));
        assert!(matches!(a, Err(crate::prometheus::Error::Decode(_))));
        assert!(matches!(b, Err(crate::prometheus::Error::Decode(_))));
        assert_eq!((query_calls(&fake), saved.get()), (1, 1));
        backend.query("up", now).await.unwrap_err();
        assert_eq!(query_calls(&fake), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_giving_up_does_not_cancel_the_others() {
        let fake = Arc::new(
            FakeBackend::new().with_query("up", QueryResult::Vector(vec![sample(&[], 2.0)])),
        );
        fake.set_delay(Duration::from_millis(200));
        let (backend, _) = coalescing(&fake);
        let now = SystemTime::now();
        let first = backend.query("up", now);
        let second = backend.query("up", now);
        // The first caller waits 50 ms and leaves; the second still gets the answer.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), first)
                .await
                .is_err()
        );
        assert_eq!(
            second.await.unwrap(),
            QueryResult::Vector(vec![sample(&[], 2.0)])
        );
        assert_eq!(query_calls(&fake), 1);
        // Everyone gave up on a query: the next caller does not join it.
        let abandoned = backend.query("up", now);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), abandoned)
                .await
                .is_err()
        );
        backend.query("up", now).await.unwrap();
        assert_eq!(query_calls(&fake), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn identical_range_queries_are_joined() {
        let fake = Arc::new(FakeBackend::new());
        fake.set_delay(Duration::from_millis(100));
        let (backend, saved) = coalescing(&fake);
        let end = SystemTime::now();
        let start = end - Duration::from_secs(600);
        let step = Duration::from_secs(60);
        let (a, b, c) = tokio::join!(
            backend.query_range("r", start, end, step),
            backend.query_range("r", start, end, step),
            backend.query_range("r", start, end, Duration::from_secs(30)),
        );
        for answer in [a, b, c] {
            answer.unwrap();
        }
        assert_eq!(fake.queries(), ["r", "r"]);
        assert_eq!(saved.get(), 1);
        backend.query_range("r", start, end, step).await.unwrap();
        assert_eq!(fake.queries().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn range_queries_every_caller_gave_up_on_are_not_kept() {
        let fake = Arc::new(FakeBackend::new());
        fake.set_delay(Duration::from_millis(200));
        let (backend, _) = coalescing(&fake);
        let end = SystemTime::now();
        let step = Duration::from_secs(60);
        // Each range (a moving window, never asked again) is abandoned before its answer.
        for i in 0..PRUNE_ABOVE as u64 + 50 {
            let start = end - Duration::from_secs(600 + i);
            let abandoned = backend.query_range("r", start, end, step);
            assert!(
                tokio::time::timeout(Duration::from_millis(1), abandoned)
                    .await
                    .is_err()
            );
        }
        // Before, every one of them stayed in the table for the life of the process.
        let kept = lock(&backend.flights).ranges.len();
        assert!(
            kept <= PRUNE_ABOVE + 1,
            "{kept} abandoned range queries kept"
        );
        // A live one is still joined.
        let start = end - Duration::from_secs(60);
        let (a, b) = tokio::join!(
            backend.query_range("r", start, end, step),
            backend.query_range("r", start, end, step)
        );
        a.unwrap();
        b.unwrap();
        assert_eq!(fake.queries().len(), PRUNE_ABOVE + 50 + 1);
    }
}
