//! The regime-shift guard: tracks a model's recent errors against persistence's on the same
//! points ([`ErrorTracker`]) so callers serve persistence while the model has been worse,
//! and [`Guarded`], a model wrapper that does that inside models (and so in backtests),
//! blending in persistence while the model is not clearly better.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::model::{DAY, buckets_in, last_present};
use super::{Fitted, History, Model, ModelError, Target};

/// Rolling absolute errors of a model and of persistence over the last `window` realised
/// points.
#[derive(Debug, Clone)]
pub struct ErrorTracker {
    window: usize,
    /// Per point, as `f32` (12 bytes, not 32: a guarded model keeps a day of them per
    /// series, 1,440 at 1 minute): |model error|, |persistence error|, and
    /// |model error| / |actual| (`NaN` when the actual value is 0).
    points: VecDeque<[f32; 3]>,
}

impl ErrorTracker {
    /// A tracker over the last `window` points (at least 1).
    pub fn new(window: usize) -> Self {
        Self {
            window: window.max(1),
            points: VecDeque::with_capacity(window.clamp(1, 1 << 16)),
        }
    }

    /// Records one realised point: the model's forecast, persistence's forecast and the
    /// actual value. Points with a non-finite value are ignored.
    pub fn record(&mut self, forecast: f64, persistence: f64, actual: f64) {
        if !(forecast.is_finite() && persistence.is_finite() && actual.is_finite()) {
            return;
        }
        if self.points.len() == self.window {
            self.points.pop_front();
        }
        let error = (forecast - actual).abs();
        let relative = if actual != 0.0 {
            error / actual.abs()
        } else {
            f64::NAN
        };
        self.points.push_back([
            error as f32,
            (persistence - actual).abs() as f32,
            relative as f32,
        ]);
    }

    /// Points currently in the window.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True when no point has been recorded.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The model's mean absolute error over the window.
    pub fn mae(&self) -> Option<f64> {
        self.mean(0)
    }

    /// Persistence's mean absolute error over the same points.
    pub fn persistence_mae(&self) -> Option<f64> {
        self.mean(1)
    }

    /// The model's mean absolute percentage error (points with actual 0 left out), in %.
    pub fn mape(&self) -> Option<f64> {
        self.mean(2).map(|v| 100.0 * v)
    }

    /// True once at least a quarter of the window is filled and the model's MAE over it is
    /// above persistence's: callers should then serve persistence (or the live value).
    pub fn worse_than_persistence(&self) -> bool {
        if self.points.len() * 4 < self.window {
            return false;
        }
        match (self.mae(), self.persistence_mae()) {
            (Some(model), Some(persistence)) => model > persistence,
            _ => false,
        }
    }

    /// The model's weight in a blend with persistence ([`Guarded`]): 1 while less than a
    /// quarter of the window is filled or while the model's MAE is at least `margin` (a
    /// fraction) below persistence's, 0 once it is not below, linear in between.
    pub fn blend_weight(&self, margin: f64) -> f64 {
        if self.points.len() * 4 < self.window {
            return 1.0;
        }
        match (self.mae(), self.persistence_mae()) {
            (Some(model), Some(persistence)) if persistence > 0.0 => {
                ((persistence - model) / (margin * persistence)).clamp(0.0, 1.0)
            }
            // Persistence exact over the window: only an exact model keeps its weight.
            (Some(model), Some(_)) if model > 0.0 => 0.0,
            _ => 1.0,
        }
    }

    /// Mean of one column over the points where it is not `NaN`.
    fn mean(&self, column: usize) -> Option<f64> {
        let (sum, count) = self
            .points
            .iter()
            .map(|p| p[column])
            .filter(|v| !v.is_nan())
            .fold((0.0, 0usize), |(s, c), v| (s + f64::from(v), c + 1));
        (count > 0).then(|| sum / count as f64)
    }
}

/// A forecast waiting for its targets to be realised.
#[derive(Debug, Clone)]
struct Pending {
    /// Unix seconds of the origin bucket.
    origin: i64,
    forecasts: Vec<f64>,
    persistence: f64,
    /// Which targets are still unresolved.
    open: Vec<bool>,
}

#[derive(Debug, Default)]
struct GuardState {
    targets: Vec<Target>,
    step: i64,
    trackers: Vec<ErrorTracker>,
    pending: VecDeque<Pending>,
    last_origin: Option<i64>,
}

/// How much better than persistence (a fraction of its MAE over the window) a model must
/// have been for [`Guarded`] to serve it alone; between that and a tie it serves a blend.
pub const CLEAR_MARGIN: f64 = 0.05;

/// Wraps a model: each target is served `p + w · (f − p)`, persistence `p` blended with the
/// model's forecast `f` by the weight `w` of that target's [`ErrorTracker`]
/// ([`ErrorTracker::blend_weight`] with [`CLEAR_MARGIN`]): the model alone while it has been
/// at least 5 % better than persistence, persistence alone once it has not been better,
/// in between near a tie. A hard switch at the tie flips on a few bursts of error and,
/// where model and persistence are about as good, loses to both. The tracker state
/// survives refits (it lives in the wrapper), so use one `Guarded` per series.
pub struct Guarded {
    inner: Box<dyn Model>,
    name: String,
    window: Option<usize>,
    state: Arc<Mutex<GuardState>>,
}

impl Guarded {
    /// Guards `inner`, comparing errors over the last `window` origins (`None`: one day).
    pub fn new(inner: Box<dyn Model>, window: Option<usize>) -> Self {
        let name = format!("guarded-{}", inner.name());
        Self {
            inner,
            name,
            window,
            state: Arc::default(),
        }
    }
}

impl Model for Guarded {
    fn name(&self) -> &str {
        &self.name
    }

    fn fit(&self, history: &History, targets: &[Target]) -> Result<Box<dyn Fitted>, ModelError> {
        let inner = self.inner.fit(history, targets)?;
        let window = self
            .window
            .or_else(|| buckets_in(DAY, history.step))
            .unwrap_or(288);
        {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if state.targets != targets || state.step != history.step {
                *state = GuardState {
                    targets: targets.to_vec(),
                    step: history.step,
                    trackers: vec![ErrorTracker::new(window); targets.len()],
                    pending: VecDeque::new(),
                    last_origin: None,
                };
            }
        }
        Ok(Box::new(FittedGuarded {
            inner,
            state: Arc::clone(&self.state),
        }))
    }
}

struct FittedGuarded {
    inner: Box<dyn Fitted>,
    state: Arc<Mutex<GuardState>>,
}

/// The realised value of `target` for a forecast made at `origin`, if `history` holds it.
fn realised(history: &History, origin: i64, target: Target) -> Option<Option<f64>> {
    let index = |t: i64| -> Option<usize> {
        let offset = t - history.start;
        (offset >= 0 && offset % history.step == 0)
            .then(|| usize::try_from(offset / history.step).ok())
            .flatten()
    };
    let first = index(origin + history.step)?;
    let last = index(origin + target.steps() as i64 * history.step)?;
    if last >= history.len() {
        return None;
    }
    let window = match target {
        Target::Point(_) => &history.values[last..=last],
        Target::Max(_) => &history.values[first..=last],
    };
    Some(
        window
            .iter()
            .try_fold(f64::MIN, |m, &v| (!v.is_nan()).then(|| m.max(v))),
    )
}

impl Fitted for FittedGuarded {
    /// The inner model's, and the horizon its pending forecasts are realised over.
    fn lookback(&self) -> Option<usize> {
        let horizon = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .targets
            .iter()
            .map(|t| t.steps())
            .max()
            .unwrap_or(0);
        self.inner.lookback().map(|l| l.max(horizon + 1))
    }

    fn predict(&self, history: &History) -> Result<Vec<f64>, ModelError> {
        let forecasts = self.inner.predict(history)?;
        let persistence = last_present(history)
            .ok_or(ModelError::TooShort { needed: 1, have: 0 })?
            .max(0.0);
        let origin = history
            .origin()
            .ok_or(ModelError::TooShort { needed: 1, have: 0 })?;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *state;
        if state.last_origin.is_some_and(|last| origin < last) || state.step != history.step {
            // Another series or a rewind: start over.
            state.pending.clear();
            state
                .trackers
                .iter_mut()
                .for_each(|t| *t = ErrorTracker::new(t.window));
        }
        state.last_origin = Some(origin);
        for pending in &mut state.pending {
            for (j, &target) in state.targets.iter().enumerate() {
                if !pending.open[j] {
                    continue;
                }
                if let Some(actual) = realised(history, pending.origin, target) {
                    pending.open[j] = false;
                    if let Some(actual) = actual {
                        state.trackers[j].record(pending.forecasts[j], pending.persistence, actual);
                    }
                }
            }
        }
        // Also forget forecasts whose window starts before this history (after a pause in
        // predictions longer than the history passed): they can never be resolved.
        state
            .pending
            .retain(|p| p.open.iter().any(|&o| o) && p.origin + history.step >= history.start);
        let served = forecasts
            .iter()
            .zip(&state.trackers)
            .map(|(&f, tracker)| {
                let w = tracker.blend_weight(CLEAR_MARGIN);
                if w >= 1.0 {
                    f
                } else if w <= 0.0 {
                    persistence
                } else {
                    persistence + w * (f - persistence)
                }
            })
            .collect();
        state.pending.push_back(Pending {
            origin,
            forecasts,
            persistence,
            open: vec![true; state.targets.len()],
        });
        Ok(served)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::model::Persistence;

    #[test]
    fn tracker_compares_with_persistence_over_its_window() {
        let mut tracker = ErrorTracker::new(4);
        assert!(!tracker.worse_than_persistence());
        assert_eq!(tracker.mae(), None);
        tracker.record(10.0, 12.0, 11.0); // model 1, persistence 1
        tracker.record(10.0, 10.0, 14.0); // model 4, persistence 4
        assert_eq!(tracker.mae(), Some(2.5));
        assert!(!tracker.worse_than_persistence());
        tracker.record(20.0, 10.0, 10.0); // model 10, persistence 0
        assert!(tracker.worse_than_persistence());
        for _ in 0..4 {
            tracker.record(10.0, 12.0, 10.0); // model 0, persistence 2
        }
        assert_eq!(tracker.len(), 4);
        assert_eq!(tracker.mae(), Some(0.0));
        assert_eq!(tracker.persistence_mae(), Some(2.0));
        assert!(!tracker.worse_than_persistence());
        assert_eq!(tracker.mape(), Some(0.0));
        tracker.record(f64::NAN, 1.0, 1.0);
        assert_eq!(tracker.len(), 4);
    }

    /// Forecasts a constant, whatever the data.
    struct Constant(f64);

    impl Model for Constant {
        fn name(&self) -> &str {
            "constant"
        }
        fn fit(&self, _: &History, targets: &[Target]) -> Result<Box<dyn Fitted>, ModelError> {
            Ok(Box::new(ConstantFitted(self.0, targets.len())))
        }
    }

    struct ConstantFitted(f64, usize);

    impl Fitted for ConstantFitted {
        fn predict(&self, _: &History) -> Result<Vec<f64>, ModelError> {
            Ok(vec![self.0; self.1])
        }
    }

    #[test]
    fn guard_switches_to_persistence_after_worse_errors() {
        // The series sits at 10; the model says 50. After window/4 = 2 realised points the
        // guard serves persistence (10).
        let guarded = Guarded::new(Box::new(Constant(50.0)), Some(8));
        let targets = [Target::Point(1)];
        let values = [10.0; 10];
        let fitted = guarded
            .fit(&History::new(0, 60, values[..2].to_vec()), &targets)
            .unwrap_or_else(|e| panic!("{e}"));
        let served: Vec<f64> = (2..8)
            .map(|end| {
                fitted
                    .predict(&History::new(0, 60, values[..end].to_vec()))
                    .unwrap_or_else(|e| panic!("{e}"))[0]
            })
            .collect();
        // Origins 1..=6; forecasts of origins 1, 2 are realised at origins 2, 3.
        assert_eq!(served, vec![50.0, 50.0, 10.0, 10.0, 10.0, 10.0]);
        // A guarded persistence is persistence.
        let same = Guarded::new(Box::new(Persistence), None);
        let fitted = same
            .fit(&History::new(0, 60, vec![1.0, 2.0]), &targets)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            fitted.predict(&History::new(0, 60, vec![1.0, 2.0])),
            Ok(vec![2.0])
        );
        assert_eq!(same.name(), "guarded-persistence");
    }

    /// Knows the future of the series 10, 12, 10, 12, …: forecasts the next bucket off by
    /// `errors[origin]`.
    struct Scripted(Vec<f64>);

    fn alternating(t: usize) -> f64 {
        if t.is_multiple_of(2) { 10.0 } else { 12.0 }
    }

    impl Model for Scripted {
        fn name(&self) -> &str {
            "scripted"
        }
        fn fit(&self, _: &History, _: &[Target]) -> Result<Box<dyn Fitted>, ModelError> {
            Ok(Box::new(ScriptedFitted(self.0.clone())))
        }
    }

    struct ScriptedFitted(Vec<f64>);

    impl Fitted for ScriptedFitted {
        fn predict(&self, history: &History) -> Result<Vec<f64>, ModelError> {
            let origin = history.len() - 1;
            Ok(vec![alternating(origin + 1) + self.0[origin]])
        }
    }

    #[test]
    fn near_a_tie_the_guard_blends_the_model_with_persistence() {
        // Persistence is always 2 off. The model is 3 off at origins 0-1, 1.95 off at 2-7
        // (2.5 % better: a tie in practice), then 0.5 off. Window 4: the guard serves
        // persistence while the window says worse, half of each at 1.95 (weight
        // (2 - 1.95) / (5 % of 2) = 0.5), and the model alone once it is clearly better.
        // Before, it switched to the model at the first window under 2: on a trace where
        // both are about as good (random on/off traffic, benches/odd_traces.py onoff)
        // those flips made guarded-linear worse than persistence (10-minute point ratio
        // 1.00006, 15-minute 1.0005) although linear alone was not (0.9991, 0.9989).
        let mut errors = vec![3.0; 2];
        errors.extend([1.95; 6]);
        errors.extend([0.5; 6]);
        let guarded = Guarded::new(Box::new(Scripted(errors)), Some(4));
        let targets = [Target::Point(1)];
        let values: Vec<f64> = (0..15).map(alternating).collect();
        let fitted = guarded
            .fit(&History::new(0, 60, values[..1].to_vec()), &targets)
            .unwrap_or_else(|e| panic!("{e}"));
        let served: Vec<f64> = (1..=14)
            .map(|end| {
                fitted
                    .predict(&History::new(0, 60, values[..end].to_vec()))
                    .unwrap_or_else(|e| panic!("{e}"))[0]
            })
            .collect();
        let expected = [
            15.0, 12.0, 10.0, 12.0, 10.0, 12.0, 11.975, 11.975, 11.25, 10.5, 12.5, 10.5, 12.5, 10.5,
        ];
        assert_eq!(served.len(), expected.len());
        // The tracker keeps errors as f32 (1.95 is 1.9500000477), so the blend weight of
        // 0.5 is exact to about 1e-6, not to f64 precision.
        for (t, (s, e)) in served.iter().zip(expected).enumerate() {
            assert!((s - e).abs() < 1e-5, "origin {t}: served {s}, expected {e}");
        }
        let mut tracker = ErrorTracker::new(4);
        assert_eq!(tracker.blend_weight(0.05), 1.0);
        tracker.record(10.0, 10.0, 10.0);
        assert_eq!(tracker.blend_weight(0.05), 1.0, "both exact");
        tracker.record(11.0, 10.0, 10.0);
        assert_eq!(
            tracker.blend_weight(0.05),
            0.0,
            "persistence exact, the model not"
        );
    }
}
