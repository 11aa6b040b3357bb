//! What a forecast twin serves for one series at each origin: the model's forecast, or the
//! live value while that forecast cannot be trusted. One decision for the serving engine and
//! for `augur backtest`, so that the backtest's figures are what the server would serve.

use std::collections::VecDeque;

use super::guard::ErrorTracker;
use super::{Fitted, History, Target};

/// Why a twin serves the live value although the model produced a forecast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distrust {
    /// A bucket within the last horizon (or the origin) is missing.
    HistoryGap,
    /// The forecast's errors have been worse than persistence's (see [`Fallback`]).
    WorseThanPersistence,
}

/// A forecast waiting for its target to be realised.
#[derive(Debug, Clone, Copy)]
struct Pending {
    origin: i64,
    forecast: f64,
    persistence: f64,
}

/// How many standard errors the model's mean error must exceed persistence's by, over the
/// fallback window, for the twin to serve live (a one-sided test at about 2.3 %).
pub const PAIRED_Z: f64 = 2.0;

/// The blow-up detector's allowance per realised point, in units of persistence's mean
/// error: excesses below it do not accumulate (CUSUM's reference value k = 0.5 σ).
pub const CUSUM_ALLOWANCE: f64 = 0.5;

/// The accumulated excess, in units of persistence's mean error, at which the detector
/// trips (CUSUM's decision interval h = 4 σ).
pub const CUSUM_THRESHOLD: f64 = 4.0;

/// Realised points after a trip whose mean excess must be ≤ 0 before the forecast is
/// served again.
pub const CLEAR_POINTS: usize = 5;

/// The serving check of one series: the model's recent errors against persistence's
/// (the last value), and the forecasts still waiting for their outcome.
///
/// The twin serves live while either
/// - over `fallbackWindow` the model's errors are significantly worse than persistence's
///   ([`ErrorTracker::significantly_worse`] at [`PAIRED_Z`]): sustained underperformance,
///   judged with the noise of the window in mind, so that a model about as good as
///   persistence is not switched off and on by bursts; or
/// - a CUSUM of the excess errors (each realised point's `|model error| − |persistence
///   error|` over persistence's mean error, less [`CUSUM_ALLOWANCE`]) has passed
///   [`CUSUM_THRESHOLD`]: a blow-up (a level shift the model cannot follow) trips it within
///   a few realised points, i.e. minutes after its first forecasts come due, where the
///   window's mean would take most of the window. It clears once the mean excess of the
///   last [`CLEAR_POINTS`] (up to a window) of points realised since is no longer above 0,
///   so a model that has caught up is served again.
#[derive(Debug, Clone)]
pub struct Fallback {
    target: Target,
    step: i64,
    /// Origins the errors are compared over (0: the check is off).
    window: usize,
    tracker: ErrorTracker,
    pending: VecDeque<Pending>,
    /// The CUSUM of excess errors (while not tripped).
    cusum: f64,
    /// Excess errors realised since the detector tripped (`None`: not tripped).
    tripped: Option<VecDeque<f64>>,
}

impl Fallback {
    /// The check for forecasts of `target` on a grid of `step` seconds, comparing errors
    /// over the last `window` realised origins (`fallbackWindow / step`; 0 turns it off).
    pub fn new(target: Target, step: i64, window: usize) -> Self {
        Self {
            target,
            step,
            window,
            tracker: ErrorTracker::new(window),
            pending: VecDeque::new(),
            cusum: 0.0,
            tripped: None,
        }
    }

    /// The rolling errors (for the accuracy gauges).
    pub fn tracker(&self) -> &ErrorTracker {
        &self.tracker
    }

    /// Records one realised outcome: the model's forecast, persistence's, and what
    /// happened (also the warm start's replay of past origins).
    pub fn record(&mut self, forecast: f64, persistence: f64, actual: f64) {
        if !(forecast.is_finite() && persistence.is_finite() && actual.is_finite()) {
            return;
        }
        self.tracker.record(forecast, persistence, actual);
        let excess = (forecast - actual).abs() - (persistence - actual).abs();
        match &mut self.tripped {
            Some(since) => {
                if since.len() >= self.window.max(CLEAR_POINTS) {
                    since.pop_front();
                }
                since.push_back(excess);
                if since.len() >= CLEAR_POINTS && since.iter().sum::<f64>() <= 0.0 {
                    self.tripped = None;
                    self.cusum = 0.0;
                }
            }
            None => {
                let scale = self
                    .tracker
                    .persistence_mae()
                    .filter(|s| *s > 0.0)
                    .unwrap_or(f64::MIN_POSITIVE);
                self.cusum = (self.cusum + excess / scale - CUSUM_ALLOWANCE).max(0.0);
                if self.cusum > CUSUM_THRESHOLD {
                    self.tripped = Some(VecDeque::new());
                }
            }
        }
    }

    /// At `origin` (Unix seconds of the newest bucket): resolves the forecasts whose target
    /// is realised by now (`actual(o)` gives the realised target of a forecast made at `o`,
    /// `None` when a bucket of it is missing), then keeps the new `forecast` (with `live`,
    /// persistence's forecast) for later. Returns the value realised now, if any.
    pub fn observe(
        &mut self,
        origin: i64,
        forecast: Option<f64>,
        live: Option<f64>,
        actual: impl Fn(i64) -> Option<f64>,
    ) -> Option<f64> {
        if let (Some(forecast), Some(persistence)) = (forecast, live) {
            self.pending.push_back(Pending {
                origin,
                forecast,
                persistence,
            });
        }
        let horizon = self.target.steps() as i64 * self.step;
        let mut realised = None;
        while let Some(&p) = self.pending.front() {
            if p.origin + horizon > origin {
                break;
            }
            self.pending.pop_front();
            if let Some(value) = actual(p.origin) {
                self.record(p.forecast, p.persistence, value);
                realised = Some(value);
            }
        }
        realised
    }

    /// Whether a forecast may be served now; why not otherwise.
    pub fn verdict(&self) -> Result<(), Distrust> {
        if self.window > 0 && (self.tripped.is_some() || self.tracker.significantly_worse(PAIRED_Z))
        {
            Err(Distrust::WorseThanPersistence)
        } else {
            Ok(())
        }
    }
}

/// The realised value of `target` for a forecast made at bucket `origin` of `values`
/// (`None` when a bucket of it is missing or not there yet).
pub fn realised<T: Copy + Into<f64>>(values: &[T], origin: usize, target: Target) -> Option<f64> {
    let h = target.steps();
    let window = match target {
        Target::Point(_) => values.get(origin + h..=origin + h)?,
        Target::Max(_) => values.get(origin + 1..=origin + h)?,
    };
    window.iter().try_fold(f64::MIN, |m, &v| {
        let v: f64 = v.into();
        (!v.is_nan()).then(|| m.max(v))
    })
}

/// Whether the last `horizon + 1` buckets of `values` are all present (else the twin serves
/// live: `history_gap`).
pub fn recent_complete<T: Copy + Into<f64>>(values: &[T], horizon: usize) -> bool {
    values.len() > horizon
        && values[values.len() - horizon - 1..]
            .iter()
            .all(|&v| !Into::<f64>::into(v).is_nan())
}

/// The warm start of a new series' check: `fitted` (just fitted on `prefix`, the whole
/// history so far) replayed over the last `window` origins of `prefix` whose outcome it
/// already holds, as `(forecast, persistence, actual)` for [`Fallback::record`], oldest
/// first; `index` picks the forecast of `target` among the fitted model's targets. These
/// forecasts are in-sample, so they favour the model slightly until a window of real ones
/// has passed; without them a model that does not fit the data would be served for a
/// quarter of the window before the check could judge it.
pub fn warm_start(
    fitted: &dyn Fitted,
    mut prefix: History,
    target: Target,
    index: usize,
    window: usize,
) -> Vec<(f64, f64, f64)> {
    let h = target.steps();
    let len = prefix.len();
    if window == 0 || len < h + 2 {
        return Vec::new();
    }
    let last = len - 1 - h;
    let first = last.saturating_sub(window - 1);
    let outcomes: Vec<Option<f64>> = (first..=last)
        .map(|o| realised(&prefix.values, o, target))
        .collect();
    let mut replay = Vec::new();
    // Newest first, so that each shorter prefix is a truncation, not a copy.
    for (origin, actual) in (first..last + 1).zip(outcomes).rev() {
        prefix.values.truncate(origin + 1);
        let persistence = prefix.values[origin];
        let Some(actual) = actual.filter(|_| !persistence.is_nan()) else {
            continue;
        };
        if let Ok(values) = fitted.predict(&prefix)
            && let Some(&forecast) = values.get(index)
        {
            replay.push((forecast, persistence, actual));
        }
    }
    replay.reverse();
    replay
}

/// What a twin would have served at each origin `first_origin + k` of `history`, given the
/// model's forecasts of `target` there (`forecasts[k]`, `NaN`: none) and a warm start
/// (`(forecast, persistence, actual)` of origins before the first, oldest first): the
/// forecast, or `NaN` where the live value is served.
pub fn replay(
    history: &History,
    first_origin: usize,
    target: Target,
    forecasts: &[f64],
    window: usize,
    warm: &[(f64, f64, f64)],
) -> Vec<f64> {
    let mut check = Fallback::new(target, history.step, window);
    for &(f, p, a) in warm {
        check.record(f, p, a);
    }
    let index = |t: i64| usize::try_from((t - history.start) / history.step).ok();
    forecasts
        .iter()
        .enumerate()
        .map(|(k, &forecast)| {
            let origin = first_origin + k;
            let seen = &history.values[..=origin.min(history.len() - 1)];
            let live = seen.last().copied().filter(|v| !v.is_nan());
            let forecast = forecast.is_finite().then_some(forecast);
            let at = history.start + origin as i64 * history.step;
            check.observe(at, forecast, live, |o| {
                index(o).and_then(|i| realised(seen, i, target))
            });
            match forecast {
                Some(f) if recent_complete(seen, target.steps()) && check.verdict().is_ok() => f,
                _ => f64::NAN,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records a point where the model is `model` off and persistence 1 off.
    fn point(check: &mut Fallback, model: f64) {
        check.record(10.0 + model, 11.0, 10.0);
    }

    #[test]
    fn a_blow_up_trips_within_two_points_and_clears_after_five_good_ones() {
        let mut check = Fallback::new(Target::Point(1), 60, 8);
        for _ in 0..8 {
            point(&mut check, 0.5);
        }
        assert_eq!(check.verdict(), Ok(()));
        // 4 off where persistence is 1 off: an excess of 3 persistence errors a point, less
        // the allowance of 0.5, accumulates 2.5 and then 5 > 4.
        point(&mut check, 4.0);
        assert_eq!(check.verdict(), Ok(()));
        point(&mut check, 4.0);
        assert_eq!(check.verdict(), Err(Distrust::WorseThanPersistence));
        // The window alone (6 points 0.5 better, 2 points 3 worse) would not say so.
        assert!(!check.tracker().significantly_worse(PAIRED_Z));
        assert!(check.tracker().worse_than_persistence());
        for _ in 0..4 {
            point(&mut check, 0.5);
            assert_eq!(check.verdict(), Err(Distrust::WorseThanPersistence));
        }
        point(&mut check, 0.5);
        assert_eq!(check.verdict(), Ok(()));
    }

    #[test]
    fn a_model_steadily_a_little_worse_is_caught_by_the_window_not_the_cusum() {
        let mut check = Fallback::new(Target::Point(1), 60, 8);
        // 1.1 and 1.3 off against persistence's 1: 0.2 worse on average, never by the
        // allowance (0.5 of persistence's error) at one point.
        for i in 0..8 {
            point(&mut check, if i % 2 == 0 { 1.1 } else { 1.3 });
        }
        assert!(check.tripped.is_none());
        assert_eq!(check.verdict(), Err(Distrust::WorseThanPersistence));
        // A window as good as persistence on average, with noise: served.
        let mut check = Fallback::new(Target::Point(1), 60, 8);
        for i in 0..8 {
            point(&mut check, if i % 2 == 0 { 0.4 } else { 1.6 });
        }
        let mae = check.tracker().mae().unwrap_or_default();
        assert!((mae - 1.0).abs() < 1e-6, "{mae}");
        assert_eq!(check.verdict(), Ok(()));
        // Off: never distrusted.
        let mut check = Fallback::new(Target::Point(1), 60, 0);
        for _ in 0..8 {
            point(&mut check, 9.0);
        }
        assert_eq!(check.verdict(), Ok(()));
    }

    #[test]
    fn forecasts_are_judged_once_their_target_is_realised() {
        // A step from 1 to 5 at bucket 10; the model forecasts 20 from origin 10 on (a
        // blow-up), 1 before. Window 8, point target 2 steps ahead: each forecast is
        // realised two buckets later. The forecast of origin 10, realised at 12, is 15 off
        // where persistence is exact, against persistence's mean error of 1 over the window
        // (it missed the step twice): 15 − 0.5 > 4 trips the check at once.
        let mut values = vec![1.0; 10];
        values.extend([5.0; 10]);
        let history = History::new(0, 60, values);
        let forecasts: Vec<f64> = (2..20).map(|o| if o < 10 { 1.0 } else { 20.0 }).collect();
        let served = replay(&history, 2, Target::Point(2), &forecasts, 8, &[]);
        let live: Vec<usize> = served
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_nan())
            .map(|(k, _)| k + 2)
            .collect();
        // Origins 10 and 11 serve the blow-up; from 12 on the live value.
        assert_eq!(live, (12..20).collect::<Vec<_>>());
        assert_eq!(served[8..10], [20.0, 20.0]);
        assert_eq!(realised(&history.values, 8, Target::Max(3)), Some(5.0));
        assert_eq!(realised(&history.values, 18, Target::Point(2)), None);
        assert!(recent_complete(&[1.0, 2.0, 3.0], 2));
        assert!(!recent_complete(&[1.0, f64::NAN, 3.0], 1));
    }
}
