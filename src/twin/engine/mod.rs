//! The forecast engine: serves twin metrics of rules with a `forecast:` block from an
//! in-memory cache of histories and forecasts, refreshed in the background, falling back
//! to the live value (with the reason recorded) whenever the forecast cannot be trusted.
//!
//! A *target* is what one kind of request forecasts: the rule, the twin metric, the
//! namespace and the rendered query (which carries the objects and selectors). Its history
//! comes from a range query of that rule's own query (`sum(...)` of it for pods), kept per
//! series on a grid of the rule's `step`, extended incrementally each step. Targets are made
//! on first request, refreshed every step, evicted when idle, and bounded in number.
//!
//! Parts: the engine, its options and the fallback reasons (here); what it tracks
//! (`targets`: keys, series state, the series budget, making and evicting targets); the
//! request path (`serve`); the background `refresh` (loop, fetch) and its CPU work
//! (`compute`: merge, fit, batched predict, publish), one `series` at a time (history
//! grid, fitting when due, the check against persistence).

mod compute;
mod refresh;
mod series;
mod serve;
mod targets;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use crate::config::ModelRef;
use crate::forecast::serve::Distrust;
use crate::forecast::{Fitted, Model, Target};
use crate::prometheus::Backend;
use crate::telemetry::Metrics;

use super::ForecastArgs;

pub use self::series::TRIM_SLACK;
pub use self::serve::{Lookup, model_target, pod_values, served_value};
pub use self::targets::{Frame, SeriesBudget, SeriesKind, TargetKey, TargetState, label_text};

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
    /// The level rose as it had not in the day before; the model is served again once a
    /// few of its forecasts made since have come due.
    LevelShift,
    /// The model's forecasts at this hour of the week, the weeks before, carried no
    /// information beyond the last value.
    WrongLastWeek,
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
            Reason::LevelShift => "level_shift",
            Reason::WrongLastWeek => "wrong_last_week",
            Reason::NoHistory => "no_history",
        }
    }
}

impl From<Distrust> for Reason {
    fn from(distrust: Distrust) -> Self {
        match distrust {
            Distrust::HistoryGap => Reason::HistoryGap,
            Distrust::WorseThanPersistence => Reason::WorseThanPersistence,
            Distrust::LevelShift => Reason::LevelShift,
            Distrust::WrongLastWeek => Reason::WrongLastWeek,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Requests that may wait for a first forecast at once. A waiting request holds one of its
/// connection's streams (kube-aggregator's connection allows a few hundred): when thousands
/// of targets are new at once (a restart under 10,000 HPAs), waiting requests would fill
/// them and queue every other request behind them.
const FIRST_WAITERS: usize = 64;

/// First refreshes pending per first-refresh permit past which a new target's request serves
/// live at once: its fit is too far down the queue to be ready within `--forecast-first-wait`
/// (a fit over 7 days of minute buckets takes about 0.2 s).
const FIRST_QUEUE_PER_PERMIT: usize = 8;

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
    /// First refreshes queued or running (see [`Engine::may_wait_first`]).
    first_pending: Arc<AtomicUsize>,
    /// Past this many first refreshes pending, a new target's request does not wait.
    first_queue: usize,
    /// Requests waiting for a first forecast now: at most [`FIRST_WAITERS`].
    first_waiters: Arc<tokio::sync::Semaphore>,
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
            first_queue: FIRST_QUEUE_PER_PERMIT * first_refreshes,
            first_pending: Arc::new(AtomicUsize::new(0)),
            first_waiters: Arc::new(tokio::sync::Semaphore::new(FIRST_WAITERS)),
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
}
