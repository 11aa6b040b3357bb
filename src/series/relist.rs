//! The relist loop: one `/api/v1/series` call per distinct seriesQuery of all rules (custom and
//! external together), reduced to what serving needs, published as a new [`Snapshot`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use futures::StreamExt;
use tokio::sync::watch;

use crate::config::Config;
use crate::prometheus::{Backend, Error as BackendError, LabelSet, SeriesList, SeriesShape};
use crate::resources::ResourceTable;
use crate::telemetry::Metrics;

use super::registry::{Registry, Snapshot};

/// The reduced result of one seriesQuery.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Distinct shapes.
    pub series: Vec<SeriesShape>,
    /// How many series the backend returned.
    pub raw_series: usize,
    /// When it was fetched.
    pub fetched_at: Option<SystemTime>,
}

impl Listing {
    /// A listing of what the backend returned at `fetched_at`.
    pub fn new(list: SeriesList, fetched_at: SystemTime) -> Self {
        Listing {
            series: list.shapes,
            raw_series: list.total,
            fetched_at: Some(fetched_at),
        }
    }

    /// Reduces full label sets (tests and fakes).
    pub fn reduce(label_sets: &[LabelSet], fetched_at: SystemTime) -> Self {
        Self::new(SeriesList::from_label_sets(label_sets), fetched_at)
    }
}

/// Relist settings.
#[derive(Debug, Clone)]
pub struct RelistOptions {
    /// `--metrics-relist-interval`.
    pub interval: Duration,
    /// `--metrics-max-age`: series seen within this window are listed.
    pub max_age: Duration,
    /// How many `/series` calls run at once.
    pub concurrency: usize,
}

/// First wait before retrying a first relist that failed; it doubles with each failure, up to
/// the relist interval.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);

/// The result of one relist round.
#[derive(Debug, Clone, Default)]
pub struct RelistReport {
    /// Queries that succeeded.
    pub succeeded: usize,
    /// Queries that failed, with why (their previous listing was kept).
    pub failed: Vec<(String, BackendError)>,
    /// Distinct series shapes in the new snapshot's listings.
    pub shapes: usize,
    /// Raw series returned by the backend this round.
    pub raw_series: usize,
}

impl RelistReport {
    /// Whether the backend answered: a query succeeded, none was made, or Prometheus
    /// rejected one (a bad rule must not keep the others, or readiness, waiting).
    pub fn backend_answered(&self) -> bool {
        self.succeeded > 0
            || self.failed.iter().any(|(_, e)| !e.is_unavailable())
            || self.failed.is_empty()
    }
}

/// Owns the per-query listings between rounds and publishes snapshots to the [`Registry`].
pub struct Relister {
    backend: Arc<dyn Backend>,
    registry: Arc<Registry>,
    table: Arc<ArcSwap<ResourceTable>>,
    options: RelistOptions,
    metrics: Arc<Metrics>,
    listings: HashMap<String, Listing>,
}

impl Relister {
    /// A relister that has not listed anything yet.
    pub fn new(
        backend: Arc<dyn Backend>,
        registry: Arc<Registry>,
        table: Arc<ResourceTable>,
        options: RelistOptions,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            backend,
            registry,
            table: Arc::new(ArcSwap::new(table)),
            options,
            metrics,
            listings: HashMap::new(),
        }
    }

    /// Resolves labels against `table`, which cluster mode replaces when API discovery is
    /// refreshed; each relist uses the table current at its start.
    pub fn with_shared_table(mut self, table: Arc<ArcSwap<ResourceTable>>) -> Self {
        self.table = table;
        self
    }

    /// Lists every distinct seriesQuery of `config` once and publishes a snapshot. A failed
    /// query keeps its previous listing, so one bad call never makes metrics disappear.
    pub async fn relist(&mut self, config: Arc<Config>) -> RelistReport {
        let started = Instant::now();
        let now = SystemTime::now();
        let start = now
            .checked_sub(self.options.max_age)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut queries: Vec<String> = config
            .rules
            .iter()
            .chain(config.external_rules.iter())
            .map(|rule| rule.series_query.clone())
            .collect();
        queries.sort_unstable();
        queries.dedup();
        // Owned queries and a cloned backend per call keep the future `Send + 'static`-friendly
        // (borrowed items in `buffer_unordered` trip rustc's higher-ranked lifetime check).
        let calls = queries.into_iter().enumerate().map(|(index, query)| {
            let backend = self.backend.clone();
            async move {
                let result = backend.series(&query, start).await;
                (index, query, result)
            }
        });
        let results: Vec<(usize, String, Result<SeriesList, BackendError>)> =
            futures::stream::iter(calls)
                .buffer_unordered(self.options.concurrency.max(1))
                .collect()
                .await;
        let mut report = RelistReport::default();
        let mut next: HashMap<String, Listing> = HashMap::with_capacity(results.len());
        for (index, query, result) in results {
            match result {
                Ok(list) => {
                    report.succeeded += 1;
                    report.raw_series += list.total;
                    next.insert(query, Listing::new(list, now));
                }
                Err(err) => {
                    if matches!(err, BackendError::Api { .. }) {
                        for rule in config
                            .rules
                            .iter()
                            .chain(config.external_rules.iter())
                            .filter(|r| r.series_query == query)
                        {
                            let label = rule.label();
                            tracing::error!(rule = %label, line = rule.line, series_query = %query, error = %err, "relist: prometheus rejected the seriesQuery of {label}, which serves nothing until it is fixed");
                        }
                    } else {
                        tracing::warn!(series_query = %query, error = %err, "relist: series query failed, keeping its previous result");
                    }
                    self.metrics.relist_failed(index);
                    if let Some(previous) = self.listings.remove(&query) {
                        next.insert(query.clone(), previous);
                    }
                    report.failed.push((query, err));
                }
            }
        }
        self.listings = next;
        report.shapes = self.listings.values().map(|l| l.series.len()).sum();
        let snapshot = Snapshot::build(config, self.table.load_full(), &self.listings, Some(now));
        let metric_count = snapshot.custom.len() + snapshot.external.len();
        self.registry.store(snapshot);
        self.metrics
            .observe_relist_duration(started.elapsed().as_secs_f64());
        if report.backend_answered() {
            self.metrics
                .relist_succeeded(report.raw_series as u64, metric_count as u64);
        }
        tracing::info!(
            succeeded = report.succeeded,
            failed = report.failed.len(),
            series = report.raw_series,
            metrics = metric_count,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "relist done"
        );
        report
    }

    /// Relists every interval and immediately whenever `configs` changes, until it closes.
    /// Until a round first lists something (the backend may not be up yet) it retries sooner:
    /// after [`FIRST_RETRY`], doubling up to the interval. `on_round` is told after each round
    /// whether any query succeeded (readiness).
    pub async fn run(
        mut self,
        mut configs: watch::Receiver<Arc<Config>>,
        on_round: impl Fn(&RelistReport),
    ) {
        let mut ticker = tokio::time::interval(self.options.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Some(next wait) until a round has listed something.
        let mut retry = Some(FIRST_RETRY.min(self.options.interval));
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                changed = configs.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    ticker.reset();
                }
            }
            let config = configs.borrow_and_update().clone();
            let report = self.relist(config).await;
            on_round(&report);
            if report.backend_answered() {
                retry = None;
            } else if let Some(wait) = retry {
                tracing::info!(retry_in = ?wait, "relist: the backend has not answered yet, retrying soon");
                ticker.reset_after(wait);
                retry = Some(wait.saturating_mul(2).min(self.options.interval));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::config::{self, UnknownResources};
    use crate::prometheus::fake::FakeBackend;
    use crate::series::Snapshot;

    #[tokio::test(start_paused = true)]
    async fn first_relist_retries_with_backoff_until_it_lists() {
        let fake = Arc::new(FakeBackend::new());
        fake.fail_all(Some(BackendError::Unreachable {
            url: "http://prometheus/api/v1/series".into(),
            cause: "Connection refused (os error 111)".into(),
        }));
        let table = Arc::new(ResourceTable::builtin());
        let rules = "rules:\n- seriesQuery: 'up{namespace!=\"\"}'\n  resources: {template: <<.Resource>>}\n  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'\n";
        let config =
            Arc::new(config::parse(rules, "t.yaml", &table, UnknownResources::Reject).unwrap());
        let registry = Arc::new(Registry::new(Snapshot::empty(
            config.clone(),
            table.clone(),
        )));
        let options = RelistOptions {
            interval: Duration::from_secs(60),
            max_age: Duration::from_secs(600),
            concurrency: 1,
        };
        let relister = Relister::new(fake.clone(), registry, table, options, Arc::default());
        let (configs, receiver) = watch::channel(config);
        let rounds = Arc::new(Mutex::new(Vec::new()));
        let seen = rounds.clone();
        let started = tokio::time::Instant::now();
        let task = tokio::spawn(relister.run(receiver, move |report: &RelistReport| {
            let at = started.elapsed().as_secs();
            seen.lock().unwrap().push((at, report.backend_answered()));
        }));
        // Prometheus comes up 10 s in.
        tokio::time::sleep(Duration::from_secs(10)).await;
        fake.fail_all(None);
        tokio::time::sleep(Duration::from_secs(130)).await;
        drop(configs);
        task.await.unwrap();
        // Retries after 1, 2, 4 and 8 s, then the interval once it has listed.
        assert_eq!(
            *rounds.lock().unwrap(),
            [
                (0, false),
                (1, false),
                (3, false),
                (7, false),
                (15, true),
                (75, true),
                (135, true)
            ]
        );
    }

    fn set(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn reduce_keeps_distinct_name_and_label_names_only() {
        let sets = vec![
            set(&[
                ("__name__", "http_requests_total"),
                ("namespace", "a"),
                ("pod", "p1"),
            ]),
            set(&[
                ("__name__", "http_requests_total"),
                ("namespace", "b"),
                ("pod", "p2"),
            ]),
            set(&[
                ("__name__", "http_requests_total"),
                ("namespace", "b"),
                ("pod", "p2"),
                ("code", "500"),
            ]),
            set(&[("__name__", "queue_depth"), ("queue", "q")]),
            set(&[("pod", "nameless")]),
        ];
        let listing = Listing::reduce(&sets, SystemTime::UNIX_EPOCH);
        assert_eq!(listing.raw_series, 5);
        let shapes: Vec<String> = listing.series.iter().map(ToString::to_string).collect();
        assert_eq!(
            shapes,
            [
                "http_requests_total{code,namespace,pod}",
                "http_requests_total{namespace,pod}",
                "queue_depth{queue}"
            ]
        );
    }
}
