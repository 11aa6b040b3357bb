//! The forecast engine: serves twin metrics of rules with a `forecast:` block from an
//! in-memory cache of histories and forecasts, refreshed in the background, falling back
//! to the live value (with the reason recorded) whenever the forecast cannot be trusted.
//!
//! A *target* is what one kind of request forecasts: the rule, the twin metric, the
//! namespace and the rendered query (which carries the objects and selectors). Its history
//! comes from a range query of that rule's own query (`sum(...)` of it for pods), kept per
//! series on a grid of the rule's `step`, extended incrementally each step. Targets are made
//! on first request, refreshed every step, evicted when idle, and bounded in number.

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use futures::StreamExt;
use tokio::sync::watch;

use crate::config::{ForecastSpec, ModelRef, Reduce, ServeMode};
use crate::prometheus::{Backend, LabelSet, RangeSeries, range_chunks};
use crate::provider::custom::{resolve_custom, run_custom};
use crate::provider::external::{resolve_external, run_external};
use crate::provider::objects::ObjectSource;
use crate::provider::{CustomItem, CustomRequest, ExternalItem, ExternalRequest, ProviderError};
use crate::resources::GroupResource;
use crate::series::{Snapshot, TwinRef};
use crate::telemetry::{ForecastFigures, ForecastLabels, Metrics};
use crate::units::{from_unix, unix};

use super::ForecastArgs;
use super::buckets::Buckets;
use crate::forecast::serve::{self, Fallback};
use crate::forecast::{Fitted, History, Model, ModelError, Target};

/// Buckets at the end of a history fetched again by the next incremental refresh.
const REFETCH_STEPS: i64 = 1;

/// Trim a history only once it is this many buckets over its length (amortises the shift).
pub const TRIM_SLACK: usize = 64;

/// Series whose histories are materialised as `f64` at once for one batched prediction
/// (bounds the scratch of a pre-trained model shared by thousands of series).
const PREDICT_CHUNK: usize = 256;

/// Why a twin metric serves the live value instead of the forecast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The target is new and its first forecast was not ready within `--forecast-first-wait`.
    WarmingUp,
    /// `--forecast-max-targets` targets exist already.
    MaxTargets,
    /// `--forecast-max-series` series are held already (this series has no history).
    MaxSeries,
    /// The newest forecast is older than two steps (refreshes are failing).
    Stale,
    /// The history range query failed before any forecast was made.
    QueryFailed,
    /// The model could not be loaded, fitted or run.
    ModelError,
    /// Fewer present buckets than the horizon needs (or than the model needs).
    HistoryShort,
    /// A bucket within the last horizon is missing.
    HistoryGap,
    /// The rolling error over `fallbackWindow` is worse than persistence's.
    WorseThanPersistence,
    /// The live query returned a series the history does not have (yet).
    NoHistory,
}

impl Reason {
    /// The label value and log text.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::WarmingUp => "warming_up",
            Reason::MaxTargets => "max_targets",
            Reason::MaxSeries => "max_series",
            Reason::Stale => "stale",
            Reason::QueryFailed => "query_failed",
            Reason::ModelError => "model_error",
            Reason::HistoryShort => "history_short",
            Reason::HistoryGap => "history_gap",
            Reason::WorseThanPersistence => "worse_than_persistence",
            Reason::NoHistory => "no_history",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Engine settings (from [`ForecastArgs`]).
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// `--forecast-first-wait`.
    pub first_wait: Duration,
    /// `--forecast-max-targets`.
    pub max_targets: usize,
    /// `--forecast-max-series`.
    pub max_series: usize,
    /// `--forecast-idle-eviction` (None: 10 × the rule's step).
    pub idle_eviction: Option<Duration>,
    /// `--forecast-refit-interval`.
    pub refit_interval: Duration,
    /// `--forecast-concurrency`.
    pub concurrency: usize,
    /// Run the background refresh loop (off in unit tests, which drive rounds themselves).
    pub background: bool,
}

impl From<&ForecastArgs> for EngineOptions {
    fn from(args: &ForecastArgs) -> Self {
        Self {
            first_wait: args.forecast_first_wait,
            max_targets: args.forecast_max_targets,
            max_series: args.forecast_max_series,
            idle_eviction: args.forecast_idle_eviction,
            refit_interval: args.forecast_refit_interval,
            concurrency: args.forecast_concurrency.max(1),
            background: true,
        }
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self::from(&ForecastArgs::default())
    }
}

/// Turns a model reference from config into a model.
pub type ModelFactory = dyn Fn(&ModelRef) -> Result<Arc<dyn Model>, String> + Send + Sync;

/// The built-in models by name; ONNX files through the ONNX runtime.
pub fn default_models(model: &ModelRef) -> Result<Arc<dyn Model>, String> {
    match model {
        ModelRef::Builtin(name) => crate::forecast::model::build(name)
            .map(Arc::from)
            .map_err(|e| e.to_string()),
        ModelRef::Onnx(path) => crate::forecast::onnx::OnnxModel::load(path)
            .map(|m| Arc::new(m) as Arc<dyn Model>)
            .map_err(|e| e.to_string()),
    }
}

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
    fn id(&self, labels: &LabelSet) -> Option<String> {
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
fn object_label(kind: &SeriesKind, labels: &LabelSet, id: &str) -> String {
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
fn fingerprint(spec: &ForecastSpec) -> String {
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
struct SeriesState {
    id: String,
    /// One `f32` per bucket; models read it as `f64` through [`Buckets::tail_into`].
    history: Buckets,
    /// Built-in models get an instance per series (a guarded model keeps per-series state).
    model: Option<Arc<dyn Model>>,
    fitted: Option<Arc<dyn Fitted>>,
    fitted_at: i64,
    /// What to serve: the forecast's errors against persistence's, and the forecasts
    /// awaiting their outcome (the check `augur backtest` replays).
    fallback: Fallback,
    reason: Option<Reason>,
    labels: ForecastLabels,
}

/// The mutable part of a target, touched only by refreshes.
struct TargetData {
    /// Unix seconds of the last evaluation time fetched.
    fetched_until: Option<i64>,
    series: Vec<SeriesState>,
    index: HashMap<String, usize>,
    /// A fetch failure of this round.
    fetch_error: Option<String>,
    /// Whether the log already says the history query returned no series.
    empty_logged: bool,
    /// Series of the last fetch refused a history by `--forecast-max-series`.
    refused: Vec<String>,
    /// Series this target holds against the engine's [`SeriesBudget`] (returned on
    /// eviction; an evicted target takes no more).
    budgeted: usize,
}

/// The series all targets may hold at once (`--forecast-max-series`): memory grows with
/// series, not targets, and one External target can return thousands.
#[derive(Debug)]
pub struct SeriesBudget {
    max: usize,
    used: std::sync::atomic::AtomicUsize,
}

impl SeriesBudget {
    fn new(max: usize) -> Self {
        Self {
            max,
            used: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Takes one series; false when the budget is spent.
    fn take(&self) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < self.max).then_some(used + 1)
            })
            .is_ok()
    }

    /// Returns `n` series taken by `data`.
    fn give_back(&self, data: &mut TargetData, n: usize) {
        let n = n.min(data.budgeted);
        data.budgeted -= n;
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    /// Whether one more series would be taken.
    fn has_room(&self) -> bool {
        self.used() < self.max
    }

    /// Series held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// One forecast target.
pub struct TargetState {
    key: TargetKey,
    spec: Arc<ForecastSpec>,
    kind: SeriesKind,
    step: i64,
    last_request: AtomicI64,
    next_due: AtomicI64,
    busy: AtomicBool,
    evicted: AtomicBool,
    frame: ArcSwapOption<Frame>,
    ready: watch::Sender<bool>,
    data: Mutex<TargetData>,
}

impl std::fmt::Debug for TargetState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl TargetState {
    fn lock(&self) -> MutexGuard<'_, TargetData> {
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

/// What a lookup found for a request.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// A fresh frame.
    Frame(Arc<Frame>),
    /// No usable frame: serve live for this reason.
    Fallback(Reason),
}

/// A due target's fetched range (or why not).
struct Fetched {
    target: Arc<TargetState>,
    end: i64,
    result: Result<Vec<RangeSeries>, String>,
}

/// Fitted models shared by every series using the same pre-trained (ONNX) model, so their
/// predictions run as one batch: model, step (seconds), target.
type SharedFits = Mutex<HashMap<(ModelRef, i64, Target), (Arc<dyn Fitted>, i64)>>;

/// The forecast engine. Share it as `Arc<Engine>`.
pub struct Engine {
    backend: Arc<dyn Backend>,
    metrics: Arc<Metrics>,
    options: EngineOptions,
    models: Arc<ModelFactory>,
    model_cache: Mutex<HashMap<ModelRef, Arc<dyn Model>>>,
    shared_fits: Arc<SharedFits>,
    targets: RwLock<HashMap<TargetKey, Arc<TargetState>>>,
    series: Arc<SeriesBudget>,
    /// First refreshes (fetch the whole history, fit) in flight at once: as many as cores.
    /// Targets requested together (after a restart, every HPA at once) would otherwise fit
    /// all at once, each with megabytes of scratch: 400 at once peaked at 2.2 GiB.
    first_refreshes: Arc<tokio::sync::Semaphore>,
    loop_started: AtomicBool,
    self_ref: Weak<Engine>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A live-metric error answered for a twin request, saying which twin asked: the message
/// names the live metric, which is not the one in the request path.
fn for_twin(error: ProviderError, twin: &str) -> ProviderError {
    let note = |message: String| format!("{message} (the live metric of the forecast twin {twin})");
    match error {
        ProviderError::MetricNotFound(m) => ProviderError::MetricNotFound(note(m)),
        ProviderError::ObjectNotFound(m) => ProviderError::ObjectNotFound(note(m)),
        ProviderError::QueryBuild(m) => ProviderError::QueryBuild(note(m)),
        ProviderError::BadResult(m) => ProviderError::BadResult(note(m)),
        other => other,
    }
}

/// The value a twin serves for one series: the forecast with headroom, never below live
/// with `serve: max`.
pub fn served_value(spec: &ForecastSpec, live: f64, forecast: f64) -> f64 {
    let ahead = forecast * (1.0 + spec.headroom);
    match spec.serve {
        ServeMode::Max => live.max(ahead),
        ServeMode::Forecast => ahead,
    }
}

/// Per-pod values of a Pods twin: the combined total (live sum vs forecast sum, as
/// [`served_value`]) spread evenly over the `live.len()` pods, so the HPA's average times
/// the pod count is the combined total. With no forecast every pod keeps its live value.
pub fn pod_values(spec: &ForecastSpec, live: &[f64], forecast_sum: Option<f64>) -> Vec<f64> {
    let Some(forecast) = forecast_sum else {
        return live.to_vec();
    };
    if live.is_empty() {
        return Vec::new();
    }
    let total = served_value(spec, live.iter().sum(), forecast);
    vec![total / live.len() as f64; live.len()]
}

/// What a rule's `forecast` block asks of its model: the max or the point at the horizon.
pub fn model_target(spec: &ForecastSpec) -> Target {
    match spec.reduce {
        Reduce::Max => Target::Max(spec.horizon_steps()),
        Reduce::Point => Target::Point(spec.horizon_steps()),
    }
}

impl Engine {
    /// An engine over `backend` with the built-in models.
    pub fn new(
        backend: Arc<dyn Backend>,
        metrics: Arc<Metrics>,
        options: EngineOptions,
    ) -> Arc<Self> {
        Self::with_models(backend, metrics, options, Arc::new(default_models))
    }

    /// An engine with a custom model factory (tests inject models through it).
    pub fn with_models(
        backend: Arc<dyn Backend>,
        metrics: Arc<Metrics>,
        options: EngineOptions,
        models: Arc<ModelFactory>,
    ) -> Arc<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let first_refreshes = cores.clamp(1, options.concurrency.max(1));
        let series = Arc::new(SeriesBudget::new(options.max_series));
        Arc::new_cyclic(|weak| Engine {
            first_refreshes: Arc::new(tokio::sync::Semaphore::new(first_refreshes)),
            backend,
            metrics,
            options,
            models,
            model_cache: Mutex::new(HashMap::new()),
            shared_fits: Arc::new(Mutex::new(HashMap::new())),
            targets: RwLock::new(HashMap::new()),
            series,
            loop_started: AtomicBool::new(false),
            self_ref: weak.clone(),
        })
    }

    /// The options in use.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Number of series held by all targets.
    pub fn series_count(&self) -> usize {
        self.series.used()
    }

    /// Number of targets held.
    pub fn target_count(&self) -> usize {
        self.targets.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The target with this key, if held.
    pub fn target(&self, key: &TargetKey) -> Option<Arc<TargetState>> {
        self.targets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    /// Every target held.
    pub fn targets(&self) -> Vec<Arc<TargetState>> {
        self.targets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Answers a custom metrics request for a twin metric.
    pub async fn custom_metric(
        &self,
        snapshot: &Snapshot,
        request: &CustomRequest,
        twin: &TwinRef,
        objects: Option<&dyn ObjectSource>,
        now: SystemTime,
    ) -> Result<Vec<CustomItem>, ProviderError> {
        let rule = snapshot.config.rules.get(twin.rule);
        let Some((rule, spec)) = rule.and_then(|r| r.forecast.clone().map(|s| (r, s))) else {
            return Err(ProviderError::MetricNotFound(format!(
                "the metric {:?} refers to a forecast rule that is no longer configured",
                request.metric
            )));
        };
        let live_request = CustomRequest {
            metric: twin.live_metric.clone(),
            ..request.clone()
        };
        let resolved = resolve_custom(snapshot, objects, &live_request)
            .await
            .map_err(|e| for_twin(e, &request.metric))?;
        let pods = resolved.resource.group_resource == GroupResource::new("", "pods");
        let (promql, kind) = if pods {
            // Cluster mode: a matcher for the workload's pods, so the history survives scale
            // events; otherwise the live query's own matchers.
            let history = resolved.stable.as_ref().unwrap_or(&resolved.built);
            (format!("sum({})", history.promql), SeriesKind::PodSum)
        } else {
            (
                resolved.built.promql.clone(),
                SeriesKind::ByLabel(resolved.built.resource_label.clone()),
            )
        };
        let key = TargetKey {
            rule: rule.label(),
            metric: request.metric.clone(),
            namespace: request.namespace.clone().unwrap_or_default(),
            promql,
            spec: fingerprint(&spec),
        };
        let (live, lookup) = tokio::join!(
            run_custom(self.backend.as_ref(), &live_request, &resolved, now),
            self.lookup(key.clone(), spec.clone(), kind, now)
        );
        let mut items = live.map_err(|e| for_twin(e, &request.metric))?;
        for item in &mut items {
            item.metric = request.metric.clone();
        }
        let mut counts: HashMap<Option<Reason>, u64> = HashMap::new();
        match &lookup {
            Lookup::Fallback(reason) => {
                *counts.entry(Some(*reason)).or_default() += items.len() as u64;
            }
            Lookup::Frame(frame) if pods => {
                let outcome = frame
                    .series
                    .get("sum")
                    .copied()
                    .unwrap_or(Err(Reason::NoHistory));
                let live: Vec<f64> = items.iter().map(|i| i.value).collect();
                let values = pod_values(&spec, &live, outcome.ok());
                for (item, value) in items.iter_mut().zip(values) {
                    item.value = value;
                }
                *counts.entry(outcome.err()).or_default() += items.len() as u64;
            }
            Lookup::Frame(frame) => {
                for item in &mut items {
                    let outcome = frame
                        .series
                        .get(&item.name)
                        .copied()
                        .unwrap_or(Err(Reason::NoHistory));
                    if let Ok(forecast) = outcome {
                        item.value = served_value(&spec, item.value, forecast);
                    }
                    *counts.entry(outcome.err()).or_default() += 1;
                }
            }
        }
        self.count_served(&key, counts);
        Ok(items)
    }

    /// Answers an external metrics request for a twin metric.
    pub async fn external_metric(
        &self,
        snapshot: &Snapshot,
        request: &ExternalRequest,
        twin: &TwinRef,
        now: SystemTime,
    ) -> Result<Vec<ExternalItem>, ProviderError> {
        let rule = snapshot.config.external_rules.get(twin.rule);
        let Some((rule, spec)) = rule.and_then(|r| r.forecast.clone().map(|s| (r, s))) else {
            return Err(ProviderError::MetricNotFound(format!(
                "the metric {:?} refers to a forecast rule that is no longer configured",
                request.metric
            )));
        };
        let live_request = ExternalRequest {
            metric: twin.live_metric.clone(),
            ..request.clone()
        };
        let promql =
            resolve_external(snapshot, &live_request).map_err(|e| for_twin(e, &request.metric))?;
        let key = TargetKey {
            rule: rule.label(),
            metric: request.metric.clone(),
            namespace: request.namespace.clone(),
            promql: promql.clone(),
            spec: fingerprint(&spec),
        };
        let (live, lookup) = tokio::join!(
            run_external(self.backend.as_ref(), &live_request, &promql, now),
            self.lookup(key.clone(), spec.clone(), SeriesKind::ByLabels, now)
        );
        let mut items = live.map_err(|e| for_twin(e, &request.metric))?;
        let mut counts: HashMap<Option<Reason>, u64> = HashMap::new();
        for item in &mut items {
            item.metric = request.metric.clone();
            let outcome = match &lookup {
                Lookup::Fallback(reason) => Err(*reason),
                Lookup::Frame(frame) => {
                    let id = item
                        .labels
                        .as_ref()
                        .map_or_else(|| "{}".to_owned(), label_text);
                    frame
                        .series
                        .get(&id)
                        .copied()
                        .unwrap_or(Err(Reason::NoHistory))
                }
            };
            if let Ok(forecast) = outcome {
                item.value = served_value(&spec, item.value, forecast);
            }
            *counts.entry(outcome.err()).or_default() += 1;
        }
        self.count_served(&key, counts);
        Ok(items)
    }

    fn count_served(&self, key: &TargetKey, counts: HashMap<Option<Reason>, u64>) {
        for (reason, count) in counts {
            if count > 0 {
                self.metrics.forecast_served(
                    &key.rule,
                    &key.metric,
                    reason.map(Reason::as_str),
                    count,
                );
            }
        }
    }

    /// The frame for a target, creating the target (and waiting up to
    /// `--forecast-first-wait` for its first forecast) when it is new.
    pub async fn lookup(
        &self,
        key: TargetKey,
        spec: Arc<ForecastSpec>,
        kind: SeriesKind,
        now: SystemTime,
    ) -> Lookup {
        let now_secs = unix(now);
        let target = match self.target(&key) {
            Some(t) => t,
            None => match self.create(key, spec, kind, now) {
                Some(t) => t,
                None => return Lookup::Fallback(Reason::MaxTargets),
            },
        };
        target.last_request.store(now_secs, Ordering::Relaxed);
        let frame = match target.frame() {
            Some(frame) => frame,
            None => {
                let mut ready = target.ready.subscribe();
                let waited =
                    tokio::time::timeout(self.options.first_wait, ready.wait_for(|r| *r)).await;
                match (waited, target.frame()) {
                    (Ok(Ok(_)), Some(frame)) => frame,
                    _ => {
                        tracing::debug!(target = ?target.key, "first forecast not ready in time, serving live");
                        return Lookup::Fallback(Reason::WarmingUp);
                    }
                }
            }
        };
        if let Some(reason) = frame.failure {
            return Lookup::Fallback(reason);
        }
        if now_secs - frame.origin > 2 * target.step {
            return Lookup::Fallback(Reason::Stale);
        }
        Lookup::Frame(frame)
    }

    /// Makes a target and starts its first refresh; None when the limit is reached.
    fn create(
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
            tokio::spawn(async move {
                let queued = Instant::now();
                // Closed never: the engine owns the semaphore. Without a permit, go anyway.
                let _permit = permits.acquire_owned().await.ok();
                engine.refresh(vec![first], now + queued.elapsed()).await
            });
            self.start_loop();
        }
        Some(target)
    }

    fn start_loop(&self) {
        if !self.options.background || self.loop_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = self.self_ref.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                let Some(engine) = weak.upgrade() else { return };
                engine.round(SystemTime::now()).await;
            }
        });
    }

    /// One background round at `now`: evict idle targets, refresh the due ones.
    pub async fn round(&self, now: SystemTime) {
        self.evict_idle(now);
        let now_secs = unix(now);
        let due: Vec<Arc<TargetState>> = self
            .targets()
            .into_iter()
            .filter(|t| t.next_due.load(Ordering::Relaxed) <= now_secs)
            .collect();
        if !due.is_empty() {
            self.refresh(due, now).await;
        }
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

    /// Refreshes `targets` as of `now`: fetch the new range of each, then fit (when due)
    /// and predict all their series, batched per fitted model, and publish the frames.
    pub async fn refresh(&self, targets: Vec<Arc<TargetState>>, now: SystemTime) {
        let started = Instant::now();
        let now_secs = unix(now);
        let mine: Vec<Arc<TargetState>> = targets
            .into_iter()
            .filter(|t| !t.busy.swap(true, Ordering::AcqRel))
            .collect();
        if mine.is_empty() {
            return;
        }
        let fetches = futures::stream::iter(mine.into_iter().map(|t| self.fetch(t, now_secs)))
            .buffer_unordered(self.options.concurrency.max(1))
            .collect::<Vec<Fetched>>()
            .await;
        let compute_started = Instant::now();
        let targets: Vec<Arc<TargetState>> = fetches.iter().map(|f| f.target.clone()).collect();
        // CPU work (merge, fit, predict) stays off the request-serving workers.
        let work = {
            let metrics = self.metrics.clone();
            let shared = self.shared_fits.clone();
            let budget = self.series.clone();
            let models = self.models.clone();
            let refit = i64::try_from(self.options.refit_interval.as_secs()).unwrap_or(3600);
            let cache = self.cached_models(&fetches);
            move || {
                compute(
                    fetches,
                    now_secs,
                    refit,
                    &metrics,
                    models.as_ref(),
                    cache,
                    Held {
                        fits: &shared,
                        series: &budget,
                    },
                )
            }
        };
        if tokio::task::spawn_blocking(work).await.is_err() {
            tracing::error!("forecast refresh computation panicked");
            for target in &targets {
                // A new target's requests would each wait out --forecast-first-wait for a
                // frame that never comes: they serve live at once (a frame already
                // published goes stale as after failed refreshes).
                if target.frame().is_none() {
                    publish(
                        target,
                        Frame {
                            origin: now_secs,
                            failure: Some(Reason::ModelError),
                            series: HashMap::new(),
                        },
                    );
                }
            }
        }
        for target in targets {
            target.busy.store(false, Ordering::Release);
        }
        self.metrics.forecast_refreshed(
            started.elapsed().as_secs_f64(),
            compute_started.elapsed().as_secs_f64(),
        );
    }

    /// The pre-trained (ONNX) models the fetched targets need, loaded once and cached (load
    /// errors are retried next round). Built-in models are made per series.
    fn cached_models(
        &self,
        fetches: &[Fetched],
    ) -> HashMap<ModelRef, Result<Arc<dyn Model>, String>> {
        let mut out = HashMap::new();
        let mut cache = self.model_cache.lock().unwrap_or_else(|p| p.into_inner());
        for f in fetches {
            let model = &f.target.spec.model;
            if !matches!(model, ModelRef::Onnx(_)) || out.contains_key(model) {
                continue;
            }
            let loaded = match cache.get(model) {
                Some(m) => Ok(m.clone()),
                None => {
                    let loaded = (self.models)(model);
                    if let Ok(m) = &loaded {
                        cache.insert(model.clone(), m.clone());
                    }
                    loaded
                }
            };
            out.insert(model.clone(), loaded);
        }
        out
    }

    /// Fetches the range a target does not have yet (in chunks Prometheus accepts).
    async fn fetch(&self, target: Arc<TargetState>, now_secs: i64) -> Fetched {
        let step = target.step;
        let end = now_secs.div_euclid(step) * step;
        let buckets = i64::try_from(target.spec.history_buckets()).unwrap_or(i64::MAX);
        let whole = end - (buckets - 1).max(0) * step;
        let start = {
            let data = target.lock();
            match data.fetched_until {
                // Series the budget refused get their whole history once there is room, and
                // so do series of a target that holds none (Thanos Query answers empty
                // until it has found its stores): they join with the history the backend
                // has, as on a first fetch, not with the newest point alone.
                Some(_)
                    if (!data.refused.is_empty() || data.series.is_empty())
                        && self.series.has_room() =>
                {
                    whole
                }
                // From the newest bucket already held, asked for again (a scrape in flight at
                // the step boundary, or remote-write lag in Mimir or Thanos Receive, lands
                // after it was first read; without this it would stay wrong, or missing, a
                // history_gap, for good), but after an outage longer than the history only
                // the history: the range missed grows with every failed round, and a backend
                // may refuse it (or time out on it) round after round.
                Some(until) => (until + step - REFETCH_STEPS * step).max(whole),
                None => whole,
            }
        };
        let mut series: Vec<RangeSeries> = Vec::new();
        for (chunk_start, chunk_end) in range_chunks(start, end, step) {
            match self
                .backend
                .query_range(
                    &target.key.promql,
                    from_unix(chunk_start),
                    from_unix(chunk_end),
                    Duration::from_secs(u64::try_from(step).unwrap_or(60)),
                )
                .await
            {
                Ok(mut part) => series.append(&mut part),
                Err(e) => {
                    return Fetched {
                        target,
                        end,
                        result: Err(e.to_string()),
                    };
                }
            }
        }
        Fetched {
            target,
            end,
            result: Ok(series),
        }
    }
}

/// What all targets share: the fitted pre-trained models and the series budget.
struct Held<'a> {
    fits: &'a SharedFits,
    series: &'a SeriesBudget,
}

/// A prediction to make: target index, series index, with which fitted model.
struct Job {
    target: usize,
    series: usize,
    fitted: Arc<dyn Fitted>,
}

/// Merge fetched ranges, fit where due, predict batched per fitted model, publish frames.
fn compute(
    fetches: Vec<Fetched>,
    now_secs: i64,
    refit_every: i64,
    metrics: &Metrics,
    models: &ModelFactory,
    loaded: HashMap<ModelRef, Result<Arc<dyn Model>, String>>,
    held: Held<'_>,
) {
    let Held {
        fits: shared,
        series: budget,
    } = held;
    let targets: Vec<Arc<TargetState>> = fetches.iter().map(|f| f.target.clone()).collect();
    let mut guards: Vec<(Arc<TargetState>, MutexGuard<'_, TargetData>)> = Vec::new();
    let mut outcomes: Vec<Vec<Option<Result<f64, Reason>>>> = Vec::new();
    let mut jobs: Vec<Job> = Vec::new();
    let mut ends: Vec<Option<i64>> = Vec::new();
    for (ti, (fetched, target)) in fetches.into_iter().zip(targets.iter()).enumerate() {
        let mut data = target.lock();
        let step = target.step;
        match fetched.result {
            Ok(series) => {
                merge(target, &mut data, fetched.end, series, budget, metrics);
                data.fetch_error = None;
                target.next_due.store(fetched.end + step, Ordering::Relaxed);
                ends.push(Some(fetched.end));
            }
            Err(e) => {
                if data.fetch_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(rule = %target.key.rule, metric = %target.key.metric, error = %e, "forecast history query failed; the forecast goes stale after two steps");
                }
                data.fetch_error = Some(e);
                target
                    .next_due
                    .store((now_secs.div_euclid(step) + 1) * step, Ordering::Relaxed);
                ends.push(None);
            }
        }
        let pretrained = loaded.get(&target.spec.model);
        let mut per_series = Vec::with_capacity(data.series.len());
        if ends[ti].is_some() {
            for (si, state) in data.series.iter_mut().enumerate() {
                let model = match (&target.spec.model, &state.model) {
                    (ModelRef::Onnx(_), _) => pretrained.cloned(),
                    (ModelRef::Builtin(_), Some(m)) => Some(Ok(m.clone())),
                    (ModelRef::Builtin(_), None) => {
                        let built = models(&target.spec.model);
                        if let Ok(m) = &built {
                            state.model = Some(m.clone());
                        }
                        Some(built)
                    }
                };
                match prepare(target, state, model.as_ref(), now_secs, refit_every, shared) {
                    Ok(fitted) => {
                        jobs.push(Job {
                            target: ti,
                            series: si,
                            fitted,
                        });
                        per_series.push(None);
                    }
                    Err(reason) => per_series.push(Some(Err(reason))),
                }
            }
        }
        outcomes.push(per_series);
        guards.push((target.clone(), data));
    }
    metrics.forecast_series(budget.used());
    // Batch predictions per fitted model (an ONNX model shared by many series runs once).
    let mut groups: HashMap<*const (), Vec<usize>> = HashMap::new();
    for (j, job) in jobs.iter().enumerate() {
        groups
            .entry(Arc::as_ptr(&job.fitted).cast::<()>())
            .or_default()
            .push(j);
    }
    // Models read `f64`: each history's tail the model reads is materialised into scratch
    // buffers reused for every series (not a copy of every history every step).
    let mut scratch: Vec<History> = Vec::new();
    for chunk in groups
        .values()
        .flat_map(|members| members.chunks(PREDICT_CHUNK))
    {
        let Some(first) = chunk.first() else {
            continue;
        };
        let fitted = jobs[*first].fitted.clone();
        let lookback = fitted.lookback();
        if scratch.len() < chunk.len() {
            scratch.resize_with(chunk.len(), || History::new(0, 1, Vec::new()));
        }
        for (&j, out) in chunk.iter().zip(scratch.iter_mut()) {
            guards[jobs[j].target].1.series[jobs[j].series]
                .history
                .tail_into(lookback, out);
        }
        let histories: Vec<&History> = scratch[..chunk.len()].iter().collect();
        let results = fitted.predict_batch(&histories);
        for (&j, result) in chunk.iter().zip(results) {
            let job = &jobs[j];
            let outcome = match result {
                Ok(values) => match values.first().copied() {
                    Some(v) if v.is_finite() => Ok(v.max(0.0)),
                    _ => Err(Reason::ModelError),
                },
                Err(ModelError::TooShort { .. }) => Err(Reason::HistoryShort),
                Err(ModelError::Gap(_)) => Err(Reason::HistoryGap),
                Err(e) => {
                    tracing::debug!(error = %e, "forecast prediction failed");
                    Err(Reason::ModelError)
                }
            };
            outcomes[job.target][job.series] = Some(outcome);
        }
    }
    for (ti, (target, data)) in guards.iter_mut().enumerate() {
        let Some(end) = ends[ti] else {
            match target.frame() {
                None => publish(
                    target,
                    Frame {
                        origin: now_secs,
                        failure: Some(Reason::QueryFailed),
                        series: HashMap::new(),
                    },
                ),
                // Requests serve live once the forecast is older than two steps: say so on
                // each series' fallback gauge (and in the log), as for the other reasons.
                Some(frame)
                    if frame.failure.is_none()
                        && now_secs - frame.origin > 2 * target.step
                        && !target.evicted.load(Ordering::Acquire) =>
                {
                    for state in data.series.iter_mut() {
                        set_reason(metrics, state, Some(Reason::Stale));
                    }
                }
                Some(_) => {}
            }
            continue;
        };
        // Requests then serve live with `no_history`; say so once, not per request.
        if data.series.is_empty() != data.empty_logged {
            data.empty_logged = data.series.is_empty();
            if data.empty_logged {
                tracing::info!(rule = %target.key.rule, metric = %target.key.metric, namespace = %target.key.namespace, "forecast history query returned no series: serving the live value (no_history)");
            }
        }
        let mut frame = Frame {
            origin: end,
            failure: None,
            series: HashMap::new(),
        };
        for (si, state) in data.series.iter_mut().enumerate() {
            let outcome = outcomes[ti]
                .get(si)
                .cloned()
                .flatten()
                .unwrap_or(Err(Reason::ModelError));
            let (outcome, figures) = finish(&target.spec, state, outcome);
            // An evicted target finishing its last refresh must not bring its gauges back.
            if !target.evicted.load(Ordering::Acquire) {
                metrics.forecast_figures(&state.labels, &figures);
                set_reason(metrics, state, outcome.err());
            }
            frame.series.insert(state.id.clone(), outcome);
        }
        for id in &data.refused {
            frame.series.insert(id.clone(), Err(Reason::MaxSeries));
        }
        publish(target, frame);
    }
}

fn publish(target: &TargetState, frame: Frame) {
    target.frame.store(Some(Arc::new(frame)));
    // Free for the next round before waiters wake (they may start one at once).
    target.busy.store(false, Ordering::Release);
    target.ready.send_replace(true);
}

fn set_reason(metrics: &Metrics, state: &mut SeriesState, reason: Option<Reason>) {
    if state.reason != reason {
        match reason {
            Some(r) => {
                tracing::info!(rule = %state.labels.rule, metric = %state.labels.metric, namespace = %state.labels.namespace, object = %state.labels.object, reason = %r, "forecast falls back to the live value")
            }
            None => {
                tracing::info!(rule = %state.labels.rule, metric = %state.labels.metric, namespace = %state.labels.namespace, object = %state.labels.object, "forecast served again")
            }
        }
        metrics.forecast_fallback(
            &state.labels,
            state.reason.map(Reason::as_str),
            reason.map(Reason::as_str),
        );
        state.reason = reason;
    }
}

/// Appends a fetched range (ending at `end`) to a target's series; a series new to the
/// target joins only while `budget` has room (else it is listed in `data.refused`, and the
/// next fetch with room asks for the whole history again, so it joins with all of it).
fn merge(
    target: &TargetState,
    data: &mut TargetData,
    end: i64,
    fetched: Vec<RangeSeries>,
    budget: &SeriesBudget,
    metrics: &Metrics,
) {
    let step = target.step;
    let capacity = target.spec.history_buckets().max(1);
    // A sample evaluated at `t` describes the bucket ending at `t`, i.e. the bucket that
    // starts at `t - step` (the convention of `augur train` and `augur backtest`, so that
    // calendar features line up with the models they fit).
    let last_bucket = end - step;
    let mut grid_start = data
        .series
        .first()
        .map(|s| s.history.start())
        .unwrap_or_else(|| last_bucket - (capacity as i64 - 1) * step);
    let mut len = usize::try_from((last_bucket - grid_start) / step + 1).unwrap_or(0);
    // Trim before extending: after a long outage the grid would otherwise grow every
    // buffer past the history and its slack for good (a `Vec` keeps its capacity).
    if len > capacity + TRIM_SLACK {
        let drop = len - capacity;
        for state in &mut data.series {
            state.history.drop_front(drop);
        }
        grid_start += i64::try_from(drop).unwrap_or(i64::MAX) * step;
        len = capacity;
    }
    for state in &mut data.series {
        state.history.resize(len);
    }
    let had_refused = !data.refused.is_empty();
    data.refused.clear();
    for series in fetched {
        let Some(id) = target.kind.id(&series.labels) else {
            continue;
        };
        let index = match data.index.get(&id) {
            Some(&i) => i,
            None => {
                // An evicted target finishing its last refresh takes nothing more.
                if target.evicted.load(Ordering::Acquire) || !budget.take() {
                    data.refused.push(id);
                    continue;
                }
                data.budgeted += 1;
                let i = data.series.len();
                let window = (target.spec.fallback_window.as_secs()
                    / target.spec.step.as_secs().max(1)) as usize;
                data.series.push(SeriesState {
                    labels: ForecastLabels {
                        rule: target.key.rule.clone(),
                        metric: target.key.metric.clone(),
                        namespace: target.key.namespace.clone(),
                        object: object_label(&target.kind, &series.labels, &id),
                    },
                    id: id.clone(),
                    history: Buckets::new(grid_start, step, len, capacity + TRIM_SLACK),
                    model: None,
                    fitted: None,
                    fitted_at: 0,
                    fallback: Fallback::new(model_target(&target.spec), step, window),
                    reason: None,
                });
                data.index.insert(id, i);
                i
            }
        };
        let history = &mut data.series[index].history;
        for (t, v) in series.points {
            // The backend's timestamps are floats from JSON: one far off the grid (a broken
            // proxy's -1e300) saturates the cast and must not overflow what follows.
            let offset = (t.round() as i64)
                .checked_sub(step)
                .and_then(|t| t.checked_sub(grid_start))
                .filter(|offset| *offset >= 0 && offset % step == 0);
            if let Some(i) = offset.and_then(|o| usize::try_from(o / step).ok()) {
                history.set(i, v);
            }
        }
    }
    if !data.refused.is_empty() && !had_refused && !target.evicted.load(Ordering::Acquire) {
        tracing::warn!(
            rule = %target.key.rule,
            metric = %target.key.metric,
            namespace = %target.key.namespace,
            refused = data.refused.len(),
            max = budget.max,
            "forecast series refused: --forecast-max-series reached, serving their live values"
        );
    }
    data.fetched_until = Some(end);
    // Forget series that have no value left in the window (objects gone for good).
    if data.series.iter().any(|s| s.history.all_missing()) {
        let before = data.series.len();
        data.series.retain(|s| {
            let gone = s.history.all_missing();
            if gone {
                metrics.forecast_forget(&s.labels, s.reason.map(Reason::as_str));
            }
            !gone
        });
        let gone = before - data.series.len();
        budget.give_back(data, gone);
        data.index = data
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
    }
}

/// Checks a series' history and fits its model when due; the fitted model to predict
/// with, or why not.
fn prepare(
    target: &TargetState,
    state: &mut SeriesState,
    model: Option<&Result<Arc<dyn Model>, String>>,
    now_secs: i64,
    refit_every: i64,
    shared: &SharedFits,
) -> Result<Arc<dyn Fitted>, Reason> {
    let spec = &target.spec;
    let h = spec.horizon_steps();
    let values = state.history.values();
    if !state.history.has_present(h + 1) {
        return Err(Reason::HistoryShort);
    }
    if !serve::recent_complete(values, h) {
        return Err(Reason::HistoryGap);
    }
    let model = match model {
        Some(Ok(m)) => m,
        Some(Err(e)) => {
            if state.reason != Some(Reason::ModelError) {
                tracing::warn!(model = %spec.model, error = %e, "forecast model unavailable");
            }
            return Err(Reason::ModelError);
        }
        None => return Err(Reason::ModelError),
    };
    // A pre-trained model is fitted once and shared, so all its series predict in one batch.
    let shared_key = matches!(spec.model, ModelRef::Onnx(_))
        .then(|| (spec.model.clone(), target.step, model_target(spec)));
    let mut shared = shared_key
        .as_ref()
        .map(|_| shared.lock().unwrap_or_else(|p| p.into_inner()));
    if let (Some(key), Some(fits)) = (&shared_key, &shared)
        && let Some((fitted, fitted_at)) = fits.get(key)
        && now_secs - fitted_at < refit_every
    {
        if state.fallback.tracker().is_empty() && state.fitted.is_none() {
            let full = state.history.to_history();
            warm_start(spec, state, fitted.as_ref(), full);
        }
        state.fitted = Some(fitted.clone());
        state.fitted_at = *fitted_at;
    }
    if state.fitted.is_none() || now_secs - state.fitted_at >= refit_every {
        // Fitting reads the whole history: as `f64`, for this fit only.
        let full = state.history.to_history();
        match model.fit(&full, &[model_target(spec)]) {
            Ok(fitted) => {
                let fitted: Arc<dyn Fitted> = Arc::from(fitted);
                if let (Some(key), Some(fits)) = (shared_key, shared.as_mut()) {
                    fits.insert(key, (fitted.clone(), now_secs));
                }
                if state.fallback.tracker().is_empty() {
                    warm_start(spec, state, fitted.as_ref(), full);
                }
                // Spread the refits of series first fitted together over the interval, so a
                // thousand targets created at once do not all refit in the same round.
                let jitter = if state.fitted.is_none() && refit_every > 0 {
                    let mut hasher = std::hash::DefaultHasher::new();
                    std::hash::Hash::hash(&state.labels, &mut hasher);
                    std::hash::Hash::hash(&target.key.promql, &mut hasher);
                    i64::try_from(std::hash::Hasher::finish(&hasher) % refit_every.unsigned_abs())
                        .unwrap_or(0)
                } else {
                    0
                };
                state.fitted = Some(fitted);
                state.fitted_at = now_secs - jitter;
            }
            Err(ModelError::TooShort { .. }) => return Err(Reason::HistoryShort),
            Err(ModelError::Gap(_)) => return Err(Reason::HistoryGap),
            Err(e) => {
                if state.reason != Some(Reason::ModelError) {
                    tracing::warn!(model = %spec.model, error = %e, "forecast model fit failed");
                }
                state.fitted = None;
                return Err(Reason::ModelError);
            }
        }
    }
    state.fitted.clone().ok_or(Reason::ModelError)
}

/// Fills an empty check by replaying the model over the last `fallbackWindow` of origins
/// whose outcome is already in the history ([`serve::warm_start`]).
fn warm_start(spec: &ForecastSpec, state: &mut SeriesState, fitted: &dyn Fitted, prefix: History) {
    let window = (spec.fallback_window.as_secs() / spec.step.as_secs().max(1)) as usize;
    if prefix.len() != state.history.len() {
        return;
    }
    for (forecast, persistence, actual) in
        serve::warm_start(fitted, prefix, model_target(spec), 0, window)
    {
        state.fallback.record(forecast, persistence, actual);
    }
}

/// Records the new forecast and resolves forecasts whose horizon has passed; the served
/// outcome ([`Fallback::verdict`]) and the series' figures.
fn finish(
    spec: &ForecastSpec,
    state: &mut SeriesState,
    outcome: Result<f64, Reason>,
) -> (Result<f64, Reason>, ForecastFigures) {
    let h = spec.horizon_steps();
    let target = model_target(spec);
    let step = state.history.step();
    let start = state.history.start();
    let values = state.history.values();
    let Some(origin) = state.history.origin() else {
        return (outcome, ForecastFigures::default());
    };
    let live = state.history.last_present_bucket();
    let mut realised_now = state.fallback.observe(origin, outcome.ok(), live, |o| {
        usize::try_from((o - start) / step)
            .ok()
            .and_then(|i| serve::realised(values, i, target))
    });
    if realised_now.is_none() && values.len() > h {
        realised_now = serve::realised(values, values.len() - 1 - h, target);
    }
    let raw = outcome.ok();
    let outcome = match outcome {
        Ok(_) if state.fallback.verdict().is_err() => Err(Reason::WorseThanPersistence),
        other => other,
    };
    let tracker = state.fallback.tracker();
    let figures = ForecastFigures {
        forecast: raw.map(|v| v * (1.0 + spec.headroom)),
        live,
        realised: realised_now,
        mae: tracker.mae(),
        persistence_mae: tracker.persistence_mae(),
        mape: tracker.mape(),
    };
    (outcome, figures)
}
