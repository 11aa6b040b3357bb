//! What a forecast twin serves for one series at each origin: the model's forecast, or the
//! live value while that forecast cannot be trusted. One decision for the serving engine and
//! for `augur backtest`, so that the backtest's figures are what the server would serve.

use std::collections::VecDeque;

use super::guard::ErrorTracker;
use super::resolution::Resolution;
use super::shift::ShiftWatch;
use super::week::WeekWeight;
use super::{Fitted, History, Target};

/// Why a twin serves the live value although the model produced a forecast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distrust {
    /// A bucket within the last horizon (or the origin) is missing.
    HistoryGap,
    /// The model's recent forecasts have carried no information beyond persistence's: its
    /// weight ([`Fallback::weight`]) is 0.
    WorseThanPersistence,
    /// The level rose as it did not in the day before ([`ShiftWatch`]), and fewer than
    /// [`SHIFT_HOLD_OUTCOMES`] forecasts made since have come due.
    LevelShift,
    /// The model's recent forecasts earn it a weight, but its forecasts at this hour of the
    /// week, the weeks before, carried no information beyond persistence's ([`WeekWeight`]).
    WrongLastWeek,
}

/// A forecast waiting for its target to be realised.
#[derive(Debug, Clone, Copy)]
struct Pending {
    origin: i64,
    forecast: f64,
    persistence: f64,
}

/// The half-life, in realised points, of the fast estimate of the weight: a point counts
/// half as much 30 outcomes later (30 minutes at a 1-minute step). Fewer points make the
/// estimate noisy (and cost accuracy on noisy traces); a blow-up still takes it down at its
/// first outcome. Chosen by leave-one-trace-out over the shared traces (benches/README.md,
/// "Issue 13 targets").
pub const FAST_HALF_LIFE: f64 = 30.0;

/// The half-life of the slow estimate of the weight, in multiples of `fallbackWindow` (4 h
/// at the default 1 h window): trust is earned over hours, so a short run of outcomes that
/// happen to agree with the model does not restore its weight at once. Chosen with
/// [`FAST_HALF_LIFE`].
pub const SLOW_HALF_LIFE: f64 = 4.0;

/// After a rise of level, the outcomes of forecasts made since that the twin waits for
/// before it serves the model again (with the weight learnt from every outcome, these
/// included): the first horizon after a change is when a model fitted on the old level errs
/// most, and nothing realised tells it before then. Chosen with the rule of [`ShiftWatch`]
/// (benches/README.md, "Switched to live at a rise of level").
pub const SHIFT_HOLD_OUTCOMES: usize = 5;

/// How far one realised point may vouch for the model: its realised change counts in the
/// weight's sums as at most this many times its forecast change, on the forecast's side. The
/// weight is clamped at 1, so without a bound a run of rises the model undershot (realised
/// changes several times the forecast's) banks an excess the clamp hides, and the model's
/// overshoots that follow (the fall after a peak, a quiet night it forecasts a rise into) are
/// outweighed by it for half an hour; single noisy points do the same in a quiet hour. A
/// point whose change came true in full or a little more still counts as it is. Chosen by
/// leave-one-trace-out over the shared and odd traces (benches/README.md, "What one outcome
/// may vouch for").
pub const CREDIT: f64 = 1.75;

/// The realised change `a − p` of a point as the weight counts it: at most [`CREDIT`] times the
/// forecast change `f − p`, on the forecast's side.
pub fn credited(change: f64, realised: f64) -> f64 {
    if change > 0.0 {
        realised.min(CREDIT * change)
    } else {
        realised.max(CREDIT * change)
    }
}

/// One estimate of the weight: exponentially weighted sums over realised points.
#[derive(Debug, Clone, Copy)]
struct Slope {
    /// The weighted sum of `(f − p)(a − p)`.
    cross: f64,
    /// The weighted sum of `(f − p)²`.
    spread: f64,
    /// What a point's weight is multiplied by at each new realised point.
    decay: f64,
}

impl Slope {
    fn new(half_life: f64) -> Self {
        Self {
            cross: 0.0,
            spread: 0.0,
            decay: 0.5f64.powf(1.0 / half_life.max(1.0)),
        }
    }

    /// Adds a point: the forecast change `f − p` and the realised change `a − p`, the latter
    /// held to [`CREDIT`] times the former on its side.
    fn record(&mut self, change: f64, realised: f64) {
        let realised = credited(change, realised);
        self.cross = self.decay * self.cross + change * realised;
        self.spread = self.decay * self.spread + change * change;
    }

    /// The slope clamped to [0, 1]; 1 while every forecast change was 0.
    fn weight(&self) -> f64 {
        if self.spread > 0.0 {
            (self.cross / self.spread).clamp(0.0, 1.0)
        } else {
            1.0
        }
    }
}

/// The serving check of one series: the forecasts still waiting for their outcome, the
/// model's recent errors against persistence's (the last value), and from them the weight
/// the twin gives the model's forecast over persistence's.
///
/// The twin serves `p + w · (f − p)`: the model's forecast `f` shrunk toward persistence `p`
/// (the origin's value) by a weight `w` ∈ [0, 1] learnt from the realised outcomes `a`: the
/// least-squares slope of the realised changes `a − p` on the forecast changes `f − p`
/// (through the origin, i.e. the blend weight that would have served best in the squared
/// sense), clamped to [0, 1], each point's realised change counted as at most [`CREDIT`]
/// times its forecast change. It is estimated twice, with exponential forgetting: fast (a
/// point counts half [`FAST_HALF_LIFE`] outcomes later) and slow (half after
/// [`SLOW_HALF_LIFE`] × `fallbackWindow`), and the smaller is used: the fast one drops
/// within minutes when the model starts to miss, the slow one keeps a short lucky run from
/// being trusted. A model whose forecast changes come true serves them in full (`w` = 1);
/// one whose changes carry no information serves persistence (`w` = 0: the live value, with
/// [`Distrust::WorseThanPersistence`]); in between, the forecast is believed in part. A
/// blow-up (a forecast far from the last value that does not come true) adds its square to
/// the denominator and nothing to the numerator, so the weight falls at its first outcome.
/// At a step of at most 5 minutes the weight is also at most the same slope over the
/// outcomes of the same hour of the week in the weeks before ([`WeekWeight`]), so that a
/// forecast that was wrong at this time last week (a weekday ramp forecast on a Saturday) is
/// not served before its own outcome comes due. Where the live value is 0, a served forecast
/// below half the series' smallest value above 0 is served as 0 ([`Resolution`]).
#[derive(Debug, Clone)]
pub struct Fallback {
    target: Target,
    step: i64,
    /// Origins the errors are compared over (0: the check is off).
    window: usize,
    tracker: ErrorTracker,
    pending: VecDeque<Pending>,
    fast: Slope,
    slow: Slope,
    /// Whether any point was realised (else there is no evidence yet).
    evidence: bool,
    shift: ShiftWatch,
    /// The origin of the newest shift of level, and the outcomes of forecasts made since it
    /// that have come due.
    shifted_at: Option<i64>,
    since_shift: usize,
    /// The weight at each hour of the week, learnt from the weeks before (`None`: off, the
    /// step is too long or the check is off).
    week: Option<WeekWeight>,
    /// The newest origin observed (the hour of the week the weight is for).
    now: Option<i64>,
    /// The series' smallest value above 0.
    resolution: Resolution,
}

impl Fallback {
    /// The check for forecasts of `target` on a grid of `step` seconds, over `window`
    /// realised origins (`fallbackWindow / step`; 0 turns the check off: the forecast is
    /// served as it is).
    pub fn new(target: Target, step: i64, window: usize) -> Self {
        Self {
            target,
            step,
            window,
            tracker: ErrorTracker::new(window),
            pending: VecDeque::new(),
            fast: Slope::new(FAST_HALF_LIFE),
            slow: Slope::new(SLOW_HALF_LIFE * window as f64),
            evidence: false,
            shift: ShiftWatch::new(step),
            shifted_at: None,
            since_shift: 0,
            week: WeekWeight::applies(step, window as u64).then(WeekWeight::default),
            now: None,
            resolution: Resolution::default(),
        }
    }

    /// The rolling errors (for the accuracy gauges).
    pub fn tracker(&self) -> &ErrorTracker {
        &self.tracker
    }

    /// Records one realised outcome: the model's forecast, persistence's, and what
    /// happened (also the warm start's replay of past origins).
    pub fn record(&mut self, forecast: f64, persistence: f64, actual: f64) {
        self.record_point(None, forecast, persistence, actual);
    }

    /// As [`Fallback::record`]; with the forecast's `origin` (Unix seconds), also in the weight
    /// of its hour of the week.
    fn record_point(&mut self, origin: Option<i64>, forecast: f64, persistence: f64, actual: f64) {
        if !(forecast.is_finite() && persistence.is_finite() && actual.is_finite()) {
            return;
        }
        self.tracker.record(forecast, persistence, actual);
        let change = forecast - persistence;
        self.fast.record(change, actual - persistence);
        self.slow.record(change, actual - persistence);
        self.evidence = true;
        if let (Some(week), Some(origin)) = (&mut self.week, origin) {
            week.record(origin, change, actual - persistence);
        }
    }

    /// At the newest bucket of `values` (the history, bucket `i` starting at `start + i ·
    /// step`), the origin: watches the level for a shift, resolves the forecasts whose target
    /// is realised by now (`None` where a bucket of it is missing), then keeps the new
    /// `forecast` (with `live`, persistence's forecast) for later. Returns the value realised
    /// now, if any.
    pub fn observe<T: Copy + Into<f64>>(
        &mut self,
        values: &[T],
        start: i64,
        forecast: Option<f64>,
        live: Option<f64>,
    ) -> Option<f64> {
        let origin = start + values.len().saturating_sub(1) as i64 * self.step;
        self.now = Some(origin);
        if self.window > 0 {
            if self.shift.update(values, start) {
                self.shifted_at = Some(origin);
                self.since_shift = 0;
            }
            self.resolution.update(values, start, self.step);
        }
        let (target, step) = (self.target, self.step);
        let actual = |o: i64| {
            usize::try_from((o - start) / step)
                .ok()
                .and_then(|i| realised(values, i, target))
        };
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
                self.record_point(Some(p.origin), p.forecast, p.persistence, value);
                if self.shifted_at.is_some_and(|s| p.origin >= s) {
                    self.since_shift += 1;
                }
                realised = Some(value);
            }
        }
        realised
    }

    /// The model's weight now, in [0, 1]: 1 while the check is off or before any outcome
    /// is realised (the warm start normally gives a window of them at once), and where the
    /// model has always forecast persistence's value (nothing to weigh).
    /// 0 while the twin waits out a shift of level. At most the weight of the newest
    /// origin's hour of the week in the weeks before ([`WeekWeight`]).
    pub fn weight(&self) -> f64 {
        if self.window == 0 {
            return 1.0;
        }
        if self.holding() {
            return 0.0;
        }
        if !self.evidence {
            return 1.0;
        }
        self.learnt().min(self.week_weight())
    }

    /// The smaller of the fast and slow estimates.
    fn learnt(&self) -> f64 {
        self.fast.weight().min(self.slow.weight())
    }

    /// The weight of the newest origin's hour of the week (1 where there is none).
    fn week_weight(&self) -> f64 {
        match (&self.week, self.now) {
            (Some(week), Some(now)) => week.weight(now),
            _ => 1.0,
        }
    }

    /// Whether the level shifted and too few forecasts made since have come due.
    fn holding(&self) -> bool {
        self.shifted_at.is_some() && self.since_shift < SHIFT_HOLD_OUTCOMES
    }

    /// What to serve for the model's `forecast` when persistence forecasts `persistence`:
    /// `persistence + w · (forecast − persistence)` with the current [`Fallback::weight`],
    /// or the live value (an error) while the weight is 0, with the estimate that made it 0.
    /// With the check on, 0 where the live value is 0 and the value to serve is below half the
    /// series' smallest value above 0 ([`Resolution::round`]).
    pub fn shrink(&self, forecast: f64, persistence: f64) -> Result<f64, Distrust> {
        let w = self.weight();
        if self.holding() {
            Err(Distrust::LevelShift)
        } else if w <= 0.0 && self.learnt() > 0.0 {
            Err(Distrust::WrongLastWeek)
        } else if w <= 0.0 {
            Err(Distrust::WorseThanPersistence)
        } else if self.window == 0 {
            Ok(forecast)
        } else {
            let served = if w >= 1.0 {
                forecast
            } else {
                persistence + w * (forecast - persistence)
            };
            Ok(self.resolution.round(served, persistence))
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
/// forecast shrunk toward the origin's value ([`Fallback::shrink`]), or `NaN` where the live
/// value is served.
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
    forecasts
        .iter()
        .enumerate()
        .map(|(k, &forecast)| {
            let origin = first_origin + k;
            let seen = &history.values[..=origin.min(history.len() - 1)];
            let live = seen.last().copied().filter(|v| !v.is_nan());
            let forecast = forecast.is_finite().then_some(forecast);
            check.observe(seen, history.start, forecast, live);
            match (forecast, live) {
                (Some(f), Some(p)) if recent_complete(seen, target.steps()) => {
                    check.shrink(f, p).unwrap_or(f64::NAN)
                }
                _ => f64::NAN,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records a point where persistence forecast 10, the model `10 + change` and
    /// `10 + realised` happened.
    fn point(check: &mut Fallback, change: f64, realised: f64) {
        check.record(10.0 + change, 10.0, 10.0 + realised);
    }

    #[test]
    fn the_weight_is_the_slope_of_realised_on_forecast_changes() {
        // Off, or before any outcome: the forecast as it is.
        let mut check = Fallback::new(Target::Point(1), 60, 0);
        point(&mut check, 4.0, 0.0);
        assert_eq!(check.weight(), 1.0);
        let mut check = Fallback::new(Target::Point(1), 60, 8);
        assert_eq!(check.shrink(14.0, 10.0), Ok(14.0));
        // A model that forecasts persistence's value: nothing to weigh.
        point(&mut check, 0.0, 3.0);
        assert_eq!(check.weight(), 1.0);
        // Forecast changes that come true: weight 1, the forecast served as it is.
        for change in [2.0, -1.0, 3.0] {
            point(&mut check, change, change);
        }
        assert_eq!(check.weight(), 1.0);
        // Changes twice what happens: both estimates are 1/2, which serves exactly what
        // happens.
        let mut check = Fallback::new(Target::Point(1), 60, 8);
        for i in 0..64 {
            let change = if i % 2 == 0 { 2.0 } else { -4.0 };
            point(&mut check, change, change / 2.0);
        }
        assert!((check.weight() - 0.5).abs() < 1e-12, "{}", check.weight());
        let served = check.shrink(14.0, 10.0).unwrap_or(f64::NAN);
        assert!((served - 12.0).abs() < 1e-9, "{served}");
        // Changes that do not happen (or the other way): weight 0, the live value.
        let mut check = Fallback::new(Target::Point(1), 60, 8);
        point(&mut check, 2.0, -1.0);
        point(&mut check, -3.0, 0.0);
        assert_eq!(check.weight(), 0.0);
        assert_eq!(
            check.shrink(14.0, 10.0),
            Err(Distrust::WorseThanPersistence)
        );
    }

    #[test]
    fn an_undershot_rise_vouches_for_at_most_credit_times_its_forecast() {
        // 20 rises the model undershot (it forecast +1, +4 happened), then one overshoot
        // (+4 forecast, nothing happened). Each undershot point counts as +CREDIT, so each
        // estimate is CREDIT·d·S / (d·S + 16), S = 1 + d + … + d^19 for its decay d: below
        // 1 at once. Counted in full (+4 each) the slope would be 4·d·S / (d·S + 16) ≈ 2,
        // clamped to 1, and the overshoot would not show.
        let mut check = Fallback::new(Target::Point(1), 60, 8);
        for _ in 0..20 {
            point(&mut check, 1.0, 4.0);
        }
        assert_eq!(check.weight(), 1.0);
        point(&mut check, 4.0, 0.0);
        let estimate = |half_life: f64, credit: f64| {
            let d = 0.5f64.powf(1.0 / half_life);
            let s: f64 = (0..20).map(|i| d.powi(i)).sum();
            credit * d * s / (d * s + 16.0)
        };
        let expected = estimate(FAST_HALF_LIFE, CREDIT).min(estimate(SLOW_HALF_LIFE * 8.0, CREDIT));
        assert!(expected < 0.9 && estimate(FAST_HALF_LIFE, 4.0) > 1.9);
        assert!(
            (check.weight() - expected).abs() < 1e-12,
            "{} {expected}",
            check.weight()
        );
        // A fall the model undershot is held the same way, on its side.
        let mut check = Fallback::new(Target::Point(1), 60, 8);
        for _ in 0..20 {
            point(&mut check, -1.0, -4.0);
        }
        point(&mut check, -4.0, 0.0);
        assert!(
            (check.weight() - expected).abs() < 1e-12,
            "{}",
            check.weight()
        );
        // A point that came true a little beyond its forecast (1.5 times, within CREDIT)
        // counts as it is: +2 forecast, +3 happened, then the overshoot gives
        // 6·d / (4·d + 16) in each estimate.
        let mut check = Fallback::new(Target::Point(1), 60, 8);
        point(&mut check, 2.0, 3.0);
        point(&mut check, 4.0, 0.0);
        let within = |half_life: f64| {
            let d = 0.5f64.powf(1.0 / half_life);
            6.0 * d / (4.0 * d + 16.0)
        };
        let expected = within(FAST_HALF_LIFE).min(within(SLOW_HALF_LIFE * 8.0));
        assert!(
            (check.weight() - expected).abs() < 1e-12,
            "{} {expected}",
            check.weight()
        );
    }

    #[test]
    fn a_blow_up_takes_the_weight_down_at_its_first_outcome_and_good_points_restore_it() {
        // A model whose changes of ±1 came true 64 times; then it forecasts 10 above the
        // last value where nothing changes. One such point: each estimate's sums were
        // 1 + d + … + d^63 ≈ 33.8 (fast, d = 2^(-1/30)) and 35.0 (slow, half-life 4 × 8);
        // the blow-up adds 100 to the spread only, so the weight is about
        // 33.8·d / (33.8·d + 100) ≈ 0.248.
        let mut check = Fallback::new(Target::Point(1), 60, 8);
        for i in 0..64 {
            let change = if i % 2 == 0 { 1.0 } else { -1.0 };
            point(&mut check, change, change);
        }
        assert_eq!(check.weight(), 1.0);
        point(&mut check, 10.0, 0.0);
        let w = check.weight();
        assert!((0.245..0.25).contains(&w), "{w}");
        let served = check.shrink(20.0, 10.0).unwrap_or(f64::NAN);
        assert!((served - (10.0 + 10.0 * w)).abs() < 1e-9, "{served}");
        // Once its changes come true again the blow-up's weight halves every 30 points (32
        // in the slow estimate): 320 points on it is below 100 / 2^10 against the good
        // points' 44.
        for i in 0..320 {
            let change = if i % 2 == 0 { 1.0 } else { -1.0 };
            point(&mut check, change, change);
        }
        assert!(check.weight() > 0.99, "{}", check.weight());
    }

    #[test]
    fn a_shift_of_level_serves_the_live_value_until_forecasts_made_since_come_due() {
        // Minute buckets: 20 everywhere for three days, then 100 from bucket `at` on (a rise
        // the series never showed). The model forecasts yesterday's level, 20, throughout,
        // which was right before the rise (nothing to weigh: weight 1). Point target 2
        // steps ahead.
        let at = 3 * 1440;
        let mut values = vec![20.0; at];
        values.extend([100.0; 30]);
        let mut check = Fallback::new(Target::Point(2), 60, 60);
        let mut served = Vec::new();
        for k in 2 * 1440..values.len() {
            let seen = &values[..=k];
            check.observe(seen, 0, Some(20.0), Some(seen[k]));
            served.push((k, check.shrink(20.0, seen[k])));
        }
        let reason = |k: usize| served[k - 2 * 1440].1;
        // Served as forecast up to the rise's second bucket (the median of the newest five
        // holds two new values); then the live value, while the forecasts made from the shift
        // on (at + 2) come due two buckets later: 5 of them by at + 8.
        assert_eq!(reason(at + 1), Ok(20.0));
        for k in at + 2..at + 8 {
            assert_eq!(reason(k), Err(Distrust::LevelShift), "bucket {k}");
        }
        // Then the weight of every outcome: those before the rise forecast no change (nothing
        // to weigh), the forecasts of 20 at 100 since took it to 0.
        assert_eq!(reason(at + 8), Err(Distrust::WorseThanPersistence));
        assert_eq!(check.weight(), 0.0);
        // Off (window 0), the watch does nothing.
        let mut off = Fallback::new(Target::Point(2), 60, 0);
        for k in 2 * 1440..values.len() {
            off.observe(&values[..=k], 0, Some(20.0), Some(values[k]));
            assert_eq!(off.shrink(20.0, values[k]), Ok(20.0));
        }
    }

    #[test]
    fn at_a_live_0_a_forecast_below_half_the_smallest_value_is_served_as_0() {
        // A cron job's minutes: 0, with a run of 3 requests (0.05 req/s) now and then.
        let values: Vec<f64> = (0..300)
            .map(|k| if k % 60 == 30 { 0.05 } else { 0.0 })
            .collect();
        let mut check = Fallback::new(Target::Max(2), 60, 60);
        check.observe(&values, 0, Some(0.02), Some(0.0));
        // Nearer 0 than the series' smallest value above 0: 0.
        assert_eq!(check.shrink(0.02, 0.0), Ok(0.0));
        // A forecast of the run itself, or any forecast at a live value above 0, as it is.
        assert_eq!(check.shrink(0.03, 0.0), Ok(0.03));
        assert_eq!(check.shrink(0.02, 0.05), Ok(0.02));
        // Off (window 0): the forecast as it is.
        let mut off = Fallback::new(Target::Max(2), 60, 0);
        off.observe(&values, 0, Some(0.02), Some(0.0));
        assert_eq!(off.shrink(0.02, 0.0), Ok(0.02));
    }

    #[test]
    fn forecasts_are_judged_once_their_target_is_realised() {
        // A step from 1 to 5 at bucket 10; the model forecasts 20 from origin 10 on (a
        // blow-up), 1 before. Window 8, point target 2 steps ahead: each forecast is
        // realised two buckets later. Before 10 the model forecasts persistence's value
        // (weight 1, nothing to weigh); the forecast of origin 10, realised at 12, changed
        // 15 where nothing changed: the weight is 0 at once.
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

    #[test]
    fn a_forecast_wrong_at_this_hour_last_week_is_not_served_before_its_outcome() {
        // 22 days (three Saturdays) at 5 minutes from Monday 00:00 UTC, alternating 10 and 11;
        // the model forecasts the next bucket exactly, except 10 too high on Saturdays
        // 08:00-09:00 (the weekday ramp a daily model repeats). Point target one step ahead,
        // window 12.
        const MONDAY: i64 = 804_729_600;
        let step = 300;
        let n = 8 * 288 + 2 * 7 * 288;
        let values: Vec<f64> = (0..n).map(|i| 10.0 + (i % 2) as f64).collect();
        let history = History::new(MONDAY, step, values.clone());
        let saturday_8 = |week: usize| week * 7 * 288 + 5 * 288 + 8 * 12;
        let wrong = |o: usize| (0..3).any(|w| (saturday_8(w)..saturday_8(w) + 12).contains(&o));
        let forecasts: Vec<f64> = (0..n - 1)
            .map(|o| values[o + 1] + if wrong(o) { 10.0 } else { 0.0 })
            .collect();
        let served = replay(&history, 0, Target::Point(1), &forecasts, 12, &[]);
        // The first Saturday's first wrong forecast is served as it is: nothing said otherwise.
        let first = saturday_8(0);
        assert_eq!(served[first], forecasts[first]);
        // A week later, the same hour's slope was 2 / 202 per pair of outcomes (times the
        // leniency): the first wrong forecast is served within 0.15 of the live value, before
        // any outcome of it.
        let next = saturday_8(1);
        let weight = crate::forecast::week::LENIENCY * 2.0 / 202.0;
        let expected = values[next] + weight * (forecasts[next] - values[next]);
        assert!(
            (served[next] - expected).abs() < 1e-9,
            "{} {expected}",
            served[next]
        );
        assert!((served[next] - values[next]).abs() < 0.15);
        // The hour before is served as forecast (weight 1 but for the week-old outcomes'
        // traces in the slow estimate).
        assert!((served[next - 1] - forecasts[next - 1]).abs() < 1e-9);
        // Had none of them come true, the twin would serve the live value there, and say why.
        let wrong: Vec<f64> = forecasts
            .iter()
            .enumerate()
            .map(|(o, &f)| if wrong(o) { values[o] + 10.0 } else { f })
            .collect();
        let mut check = Fallback::new(Target::Point(1), step, 12);
        for o in 0..=next {
            check.observe(&values[..=o], MONDAY, Some(wrong[o]), Some(values[o]));
        }
        assert!(check.fast.weight() > 0.99 && check.week_weight() == 0.0);
        assert_eq!(
            check.shrink(wrong[next], values[next]),
            Err(Distrust::WrongLastWeek)
        );
        // Off at a 15-minute step: the fast estimate alone, as on the first Saturday.
        let mut off = Fallback::new(Target::Point(1), 900, 12);
        assert!(off.week.is_none());
        off.observe(&[10.0, 11.0], MONDAY, Some(11.0), Some(11.0));
        assert_eq!(off.weight(), 1.0);
    }
}
