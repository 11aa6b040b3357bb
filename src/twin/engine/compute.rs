//! One refresh's CPU work, off the request-serving workers: merge the fetched ranges, fit
//! where due, predict batched per fitted model, and publish each target's frame.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};

use crate::config::ModelRef;
use crate::forecast::{Fitted, History, Model, ModelError};
use crate::telemetry::Metrics;

use super::refresh::Fetched;
use super::series::{finish, merge, prepare};
use super::targets::{Frame, SeriesBudget, SeriesState, TargetData, TargetState};
use super::{ModelFactory, Reason, SharedFits};

/// Series whose histories are materialised as `f64` at once for one batched prediction
/// (bounds the scratch of a pre-trained model shared by thousands of series).
const PREDICT_CHUNK: usize = 256;

/// What all targets share: the fitted pre-trained models and the series budget.
pub(super) struct Held<'a> {
    pub(super) fits: &'a SharedFits,
    pub(super) series: &'a SeriesBudget,
}

/// A prediction to make: target index, series index, with which fitted model.
struct Job {
    target: usize,
    series: usize,
    fitted: Arc<dyn Fitted>,
}

/// Merge fetched ranges, fit where due, predict batched per fitted model, publish frames.
pub(super) fn compute(
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

pub(super) fn publish(target: &TargetState, frame: Frame) {
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
