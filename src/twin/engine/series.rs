//! One series through a refresh: its fetched points merged into the history grid, its
//! model fitted when due, and each forecast checked against persistence for what to serve.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::config::{ForecastSpec, ModelRef};
use crate::forecast::serve::{self, Fallback};
use crate::forecast::{Fitted, History, Model, ModelError};
use crate::prometheus::RangeSeries;
use crate::telemetry::{ForecastFigures, ForecastLabels, Metrics};

use super::super::buckets::Buckets;
use super::serve::model_target;
use super::targets::{SeriesBudget, SeriesState, TargetData, TargetState, object_label};
use super::{Reason, SharedFits};

/// Trim a history only once it is this many buckets over its length (amortises the shift).
pub const TRIM_SLACK: usize = 64;

/// Appends a fetched range (ending at `end`) to a target's series; a series new to the
/// target joins only while `budget` has room (else it is listed in `data.refused`, and the
/// next fetch with room asks for the whole history again, so it joins with all of it).
pub(super) fn merge(
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
pub(super) fn prepare(
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
/// outcome (the forecast shrunk toward the origin's value, [`Fallback::shrink`]) and the
/// series' figures.
pub(super) fn finish(
    spec: &ForecastSpec,
    state: &mut SeriesState,
    outcome: Result<f64, Reason>,
) -> (Result<f64, Reason>, ForecastFigures) {
    let h = spec.horizon_steps();
    let target = model_target(spec);
    let start = state.history.start();
    let values = state.history.values();
    if state.history.origin().is_none() {
        return (outcome, ForecastFigures::default());
    }
    let live = state.history.last_present_bucket();
    let mut realised_now = state.fallback.observe(values, start, outcome.ok(), live);
    if realised_now.is_none() && values.len() > h {
        realised_now = serve::realised(values, values.len() - 1 - h, target);
    }
    let raw = outcome.ok();
    let outcome = match (outcome, live) {
        (Ok(forecast), Some(persistence)) => state
            .fallback
            .shrink(forecast, persistence)
            .map_err(Reason::from),
        (other, _) => other,
    };
    let tracker = state.fallback.tracker();
    let figures = ForecastFigures {
        forecast: raw.map(|v| v * (1.0 + spec.headroom)),
        live,
        realised: realised_now,
        mae: tracker.mae(),
        persistence_mae: tracker.persistence_mae(),
        mape: tracker.mape(),
        weight: raw.map(|_| state.fallback.weight()),
    };
    (outcome, figures)
}
