//! What the engine tracks: target keys and the series they hold, their state, the
//! series budget that bounds memory, and making and evicting targets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwapOption;
use tokio::sync::watch;

use crate::config::ForecastSpec;
use crate::forecast::serve::Fallback;
use crate::forecast::{Fitted, Model};
use crate::prometheus::LabelSet;
use crate::telemetry::ForecastLabels;
use crate::units::unix;

use super::super::buckets::Buckets;
use super::{Engine, Reason};

/// Which series of a range query result is which served series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeriesKind {
    /// `sum(...)` over the selected pods: one series, served divided by the pod count.
    PodSum,
    /// One series per object, named by this label (Object metrics).
    ByLabel(String),
    /// One series per label set (External metrics).
    ByLabels,
}

impl SeriesKind {
    /// The series id of a result series (None when it lacks the object label).
    pub(super) fn id(&self, labels: &LabelSet) -> Option<String> {
        match self {
            SeriesKind::PodSum => Some("sum".to_owned()),
            SeriesKind::ByLabel(label) => labels.get(label).filter(|v| !v.is_empty()).cloned(),
            SeriesKind::ByLabels => Some(label_text(labels)),
        }
    }
}

/// `{a="1",b="2"}` (sorted, as the label set is), `{}` for none.
pub fn label_text(labels: &LabelSet) -> String {
    let inner: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// The `object` label of a series' gauges: the object name, `sum` for pods, or
/// `k=v,k2=v2` for an external series (`all` without labels); quotes, backslashes and
/// line breaks become `_` so the exposition stays valid.
pub(super) fn object_label(kind: &SeriesKind, labels: &LabelSet, id: &str) -> String {
    let text = match kind {
        SeriesKind::ByLabels => {
            let pairs: Vec<String> = labels
                .iter()
                .filter(|(k, _)| k.as_str() != "__name__")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            if pairs.is_empty() {
                "all".to_owned()
            } else {
                pairs.join(",")
            }
        }
        _ => id.to_owned(),
    };
    text.replace(['"', '\\', '\n'], "_")
}

/// The forecast block as part of a target key, without its line (moving a rule in the file
/// keeps its targets; changing the block makes new ones).
pub(super) fn fingerprint(spec: &ForecastSpec) -> String {
    format!(
        "{:?}",
        ForecastSpec {
            line: 0,
            ..spec.clone()
        }
    )
}

/// Identity of a target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetKey {
    /// `rules[i]` / `externalRules[i]`.
    pub rule: String,
    /// The twin metric.
    pub metric: String,
    /// The request namespace ("" for root-scoped).
    pub namespace: String,
    /// The forecast query (carries objects and selectors).
    pub promql: String,
    /// Fingerprint of the forecast block, so a changed block makes a new target.
    pub spec: String,
}

/// One published forecast of a target: per series, the forecast or why there is none.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Unix seconds of the newest history bucket the forecasts were made from.
    pub origin: i64,
    /// Set when the history could not be fetched at all.
    pub failure: Option<Reason>,
    /// Series id → raw forecast (no headroom) or the reason there is none.
    pub series: HashMap<String, Result<f64, Reason>>,
}

/// The state of one series of a target.
pub(super) struct SeriesState {
    pub(super) id: String,
    /// One `f32` per bucket; models read it as `f64` through [`Buckets::tail_into`].
    pub(super) history: Buckets,
    /// Built-in models get an instance per series (a guarded model keeps per-series state).
    pub(super) model: Option<Arc<dyn Model>>,
    pub(super) fitted: Option<Arc<dyn Fitted>>,
    pub(super) fitted_at: i64,
    /// What to serve: the forecast's errors against persistence's, and the forecasts
    /// awaiting their outcome (the check `augur backtest` replays).
    pub(super) fallback: Fallback,
    pub(super) reason: Option<Reason>,
    pub(super) labels: ForecastLabels,
}

/// The mutable part of a target, touched only by refreshes.
pub(super) struct TargetData {
    /// Unix seconds of the last evaluation time fetched.
    pub(super) fetched_until: Option<i64>,
    pub(super) series: Vec<SeriesState>,
    pub(super) index: HashMap<String, usize>,
    /// A fetch failure of this round.
    pub(super) fetch_error: Option<String>,
    /// Whether the log already says the history query returned no series.
    pub(super) empty_logged: bool,
    /// Series of the last fetch refused a history by `--forecast-max-series`.
    pub(super) refused: Vec<String>,
    /// Series this target holds against the engine's [`SeriesBudget`] (returned on
    /// eviction; an evicted target takes no more).
    pub(super) budgeted: usize,
}

/// The series all targets may hold at once (`--forecast-max-series`): memory grows with
/// series, not targets, and one External target can return thousands.
#[derive(Debug)]
pub struct SeriesBudget {
    pub(super) max: usize,
    used: std::sync::atomic::AtomicUsize,
}

impl SeriesBudget {
    pub(super) fn new(max: usize) -> Self {
        Self {
            max,
            used: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Takes one series; false when the budget is spent.
    pub(super) fn take(&self) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < self.max).then_some(used + 1)
            })
            .is_ok()
    }

    /// Returns `n` series taken by `data`.
    pub(super) fn give_back(&self, data: &mut TargetData, n: usize) {
        let n = n.min(data.budgeted);
        data.budgeted -= n;
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    /// Whether one more series would be taken.
    pub(super) fn has_room(&self) -> bool {
        self.used() < self.max
    }

    /// Series held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// One forecast target.
pub struct TargetState {
    pub(super) key: TargetKey,
    pub(super) spec: Arc<ForecastSpec>,
    pub(super) kind: SeriesKind,
    pub(super) step: i64,
    pub(super) last_request: AtomicI64,
    pub(super) next_due: AtomicI64,
    pub(super) busy: AtomicBool,
    pub(super) evicted: AtomicBool,
    pub(super) frame: ArcSwapOption<Frame>,
    pub(super) ready: watch::Sender<bool>,
    pub(super) data: Mutex<TargetData>,
}

impl std::fmt::Debug for TargetState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl TargetState {
    pub(super) fn lock(&self) -> MutexGuard<'_, TargetData> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The newest published frame.
    pub fn frame(&self) -> Option<Arc<Frame>> {
        self.frame.load_full()
    }

    /// The target's key.
    pub fn key(&self) -> &TargetKey {
        &self.key
    }
}

/// One first refresh counted in [`Engine`]'s pending first refreshes while it lives.
struct Pending(Arc<AtomicUsize>);

impl Pending {
    fn count(pending: &Arc<AtomicUsize>) -> Self {
        pending.fetch_add(1, Ordering::AcqRel);
        Pending(pending.clone())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Engine {
    /// Makes a target and starts its first refresh; None when the limit is reached.
    pub(super) fn create(
        &self,
        key: TargetKey,
        spec: Arc<ForecastSpec>,
        kind: SeriesKind,
        now: SystemTime,
    ) -> Option<Arc<TargetState>> {
        let target = {
            let mut targets = self.targets.write().unwrap_or_else(|p| p.into_inner());
            if let Some(existing) = targets.get(&key) {
                return Some(existing.clone());
            }
            if targets.len() >= self.options.max_targets {
                drop(targets);
                self.metrics.forecast_target_refused();
                tracing::warn!(
                    rule = %key.rule,
                    metric = %key.metric,
                    namespace = %key.namespace,
                    max = self.options.max_targets,
                    "forecast target refused: --forecast-max-targets reached, serving live"
                );
                return None;
            }
            let step = i64::try_from(spec.step.as_secs()).unwrap_or(60).max(1);
            let target = Arc::new(TargetState {
                key: key.clone(),
                spec,
                kind,
                step,
                last_request: AtomicI64::new(unix(now)),
                next_due: AtomicI64::new(i64::MAX),
                busy: AtomicBool::new(false),
                evicted: AtomicBool::new(false),
                frame: ArcSwapOption::empty(),
                ready: watch::channel(false).0,
                data: Mutex::new(TargetData {
                    fetched_until: None,
                    series: Vec::new(),
                    index: HashMap::new(),
                    fetch_error: None,
                    empty_logged: false,
                    refused: Vec::new(),
                    budgeted: 0,
                }),
            });
            targets.insert(key, target.clone());
            self.metrics.forecast_targets(targets.len());
            target
        };
        tracing::info!(rule = %target.key.rule, metric = %target.key.metric, namespace = %target.key.namespace, query = %target.key.promql, "forecast target created");
        if let Some(engine) = self.self_ref.upgrade() {
            let first = target.clone();
            let permits = self.first_refreshes.clone();
            let pending = Pending::count(&self.first_pending);
            tokio::spawn(async move {
                let _pending = pending;
                let queued = Instant::now();
                // Closed never: the engine owns the semaphore. Without a permit, go anyway.
                let _permit = permits.acquire_owned().await.ok();
                engine.refresh(vec![first], now + queued.elapsed()).await
            });
            self.start_loop();
        }
        Some(target)
    }

    /// Drops targets not requested within the idle window.
    pub fn evict_idle(&self, now: SystemTime) {
        let now_secs = unix(now);
        let idle = |t: &TargetState| {
            let window = self.options.idle_eviction.map_or(10 * t.step, |d| {
                i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
            });
            now_secs.saturating_sub(t.last_request.load(Ordering::Relaxed)) > window
        };
        let evicted: Vec<Arc<TargetState>> = {
            let mut targets = self.targets.write().unwrap_or_else(|p| p.into_inner());
            let keys: Vec<TargetKey> = targets
                .iter()
                .filter(|(_, t)| idle(t))
                .map(|(k, _)| k.clone())
                .collect();
            let evicted = keys.iter().filter_map(|k| targets.remove(k)).collect();
            self.metrics.forecast_targets(targets.len());
            evicted
        };
        for target in evicted {
            target.evicted.store(true, Ordering::Release);
            tracing::info!(rule = %target.key.rule, metric = %target.key.metric, namespace = %target.key.namespace, "forecast target evicted (idle)");
            let mut data = target.lock();
            for series in &data.series {
                self.metrics
                    .forecast_forget(&series.labels, series.reason.map(Reason::as_str));
            }
            let held = data.budgeted;
            self.series.give_back(&mut data, held);
        }
        self.metrics.forecast_series(self.series.used());
    }
}
