//! The model's weight at each hour of the week, learnt from its outcomes at that hour in the
//! weeks before, so that a twin stops serving a forecast that was wrong at this time last
//! week before the first outcome of this week's comes due.
//!
//! Traffic that differs by day of the week (a weekday morning ramp, quiet weekends) fools a
//! model that repeats yesterday: on Saturday it forecasts Friday's ramp, and the fast
//! estimate of the weight only learns that one horizon later, after serving it. The same
//! mistake was made at the same hour the Saturday before. So each hour of the UTC week keeps
//! the sums of the weight's least-squares slope (the forecast change times the realised one,
//! held as [`super::serve::credited`] holds it, and the forecast change squared) over the
//! outcomes of origins in that hour, merged when the hour ends, each earlier week counting
//! [`KEEP`] times as much as the one after it. The twin's weight is at most that hour's slope times [`LENIENCY`], clamped to
//! [0, 1]; an hour not yet seen a week ago does not limit it (so a twin's first week serves as
//! without this).
//!
//! Chosen by replaying every built-in model's forecasts over the second week of 14-day
//! backtests (benches/README.md, "The same hour last week").

use super::serve::credited;
use super::{WEEK_SECONDS, seconds_into_week};

/// Seconds in one part: an hour.
pub const PART_SECONDS: i64 = 3_600;

/// Parts in a week: 168.
pub const PARTS: usize = (WEEK_SECONDS / PART_SECONDS) as usize;

/// How much an earlier week's outcomes count against the next week's (a half-life of one
/// week).
pub const KEEP: f64 = 0.5;

/// A week's slope at an hour is multiplied by this before it limits the weight: one hour of one
/// week is few outcomes, and a slope of 0.8 there is noise as often as it is the model's skill,
/// so only a slope below 0.8 limits the weight, in proportion; a blow-up (a slope near 0)
/// still takes it near 0. At 1 (every slope limiting) the twin lost 1.4 % of its accuracy on
/// NASA's trace; chosen with [`PARTS`] and [`KEEP`] (benches/README.md, "The same hour last
/// week").
pub const LENIENCY: f64 = 1.25;

/// The fewest buckets an hour must hold (a step of at most 5 minutes): with fewer, one
/// week's slope at an hour rests on too few outcomes to judge the model by.
pub const MIN_PART_BUCKETS: i64 = 12;

/// The weight's sums per hour of the week, and those of the hour whose outcomes are arriving.
#[derive(Debug, Clone, Default)]
pub struct WeekWeight {
    /// Per part, `[Σ change · realised, Σ change²]` of the weeks before (empty until the first
    /// part ends).
    parts: Vec<[f64; 2]>,
    /// The part whose outcomes are arriving, and its sums so far.
    current: Option<(usize, [f64; 2])>,
}

/// The part of the week an origin (Unix seconds) falls in; parts start on Monday 00:00 UTC.
pub fn part_of(origin: i64) -> usize {
    usize::try_from(seconds_into_week(origin) / PART_SECONDS).unwrap_or(0)
}

impl WeekWeight {
    /// Whether a twin at a step of `step` seconds with a `fallbackWindow` of `window` buckets
    /// keeps the weight: the check is on, and the step short enough.
    pub fn applies(step: i64, window: u64) -> bool {
        window > 0 && step > 0 && PART_SECONDS / step >= MIN_PART_BUCKETS
    }

    /// Adds the outcome of a forecast made at `origin`: its forecast change and realised
    /// change. Outcomes arrive in the order of their origins; an origin in another part than
    /// the previous one closes that part's week.
    pub fn record(&mut self, origin: i64, change: f64, realised: f64) {
        let part = part_of(origin);
        let realised = credited(change, realised);
        match &mut self.current {
            Some((p, sums)) if *p == part => {
                sums[0] += change * realised;
                sums[1] += change * change;
            }
            current => {
                if let Some((closed, sums)) = current.take() {
                    if self.parts.is_empty() {
                        self.parts = vec![[0.0; 2]; PARTS];
                    }
                    if let Some(kept) = self.parts.get_mut(closed) {
                        *kept = [KEEP * kept[0] + sums[0], KEEP * kept[1] + sums[1]];
                    }
                }
                *current = Some((part, [change * realised, change * change]));
            }
        }
    }

    /// The model's slope at the part of the week `origin` falls in, over the weeks before,
    /// times [`LENIENCY`], clamped to [0, 1]; 1 where that part has no outcome with a forecast
    /// change yet.
    pub fn weight(&self, origin: i64) -> f64 {
        match self.parts.get(part_of(origin)) {
            Some(&[cross, spread]) if spread > 0.0 => (LENIENCY * cross / spread).clamp(0.0, 1.0),
            _ => 1.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::serve::CREDIT;

    /// Monday 1995-07-03 00:00 UTC.
    const MONDAY: i64 = 804_729_600;
    const WEEK: i64 = 7 * 86_400;

    #[test]
    fn parts_are_the_hours_of_the_utc_week_from_monday() {
        assert_eq!(part_of(MONDAY), 0);
        assert_eq!(part_of(MONDAY + 3_599), 0);
        assert_eq!(part_of(MONDAY + 3_600), 1);
        assert_eq!(part_of(MONDAY + 5 * 86_400 + 8 * 3_600 + 60), 128);
        assert_eq!(part_of(MONDAY + WEEK - 1), 167);
        assert_eq!(part_of(MONDAY + 3 * WEEK + 7_200), 2);
        assert_eq!(part_of(MONDAY - 1), 167);
        assert!(WeekWeight::applies(60, 60) && WeekWeight::applies(300, 12));
        assert!(!WeekWeight::applies(301, 12) && !WeekWeight::applies(900, 4));
        assert!(!WeekWeight::applies(0, 12) && !WeekWeight::applies(60, 0));
    }

    #[test]
    fn an_hour_limits_the_weight_only_from_its_next_week_on() {
        let saturday_8 = MONDAY + 5 * 86_400 + 8 * 3_600;
        let mut week = WeekWeight::default();
        // Saturday 08:00-09:00: the model forecast +4 each minute, nothing happened.
        for m in 0..60 {
            week.record(saturday_8 + m * 60, 4.0, 0.0);
        }
        // Not yet closed: the hour is still arriving.
        assert_eq!(week.weight(saturday_8 + WEEK), 1.0);
        // 09:00: half of the forecast change came true, which closes 08:00.
        week.record(saturday_8 + 3_600, 2.0, 1.0);
        assert_eq!(week.weight(saturday_8 + WEEK + 600), 0.0);
        assert_eq!(week.weight(saturday_8 + 600), 0.0);
        // Other hours are not limited, 09:00 not until it closes.
        assert_eq!(week.weight(saturday_8 + WEEK + 3_600), 1.0);
        assert_eq!(week.weight(saturday_8 - 3_600), 1.0);
        week.record(saturday_8 + 7_200, 1.0, 1.0);
        assert!((week.weight(saturday_8 + WEEK + 3_600) - 0.5 * LENIENCY).abs() < 1e-12);
        // The next Saturday 08:00 the forecast changes came true in full: that week counts
        // twice as much as the one before, (0.5 · 0 + 240) / (0.5 · 960 + 240) = 1/3 (times
        // LENIENCY).
        for m in 0..60 {
            week.record(saturday_8 + WEEK + m * 60, 2.0, 2.0);
        }
        week.record(saturday_8 + WEEK + 3_600, 1.0, 1.0);
        let expected = LENIENCY * 240.0 / (0.5 * 960.0 + 240.0);
        assert!((week.weight(saturday_8 + 2 * WEEK) - expected).abs() < 1e-12);
    }

    #[test]
    fn a_realised_change_counts_at_most_credit_times_the_forecast() {
        let mut week = WeekWeight::default();
        // +1 forecast, +10 happened: counted as +CREDIT, so the slope is CREDIT, clamped.
        week.record(MONDAY, 1.0, 10.0);
        week.record(MONDAY + 60, -2.0, 0.0);
        week.record(MONDAY + 3_600, 1.0, 1.0);
        // (1 · CREDIT + 0) / (1 + 4) = 0.35, times LENIENCY.
        assert!((week.weight(MONDAY + WEEK) - LENIENCY * CREDIT / 5.0).abs() < 1e-12);
        // A fall undershot: held the same way on its side.
        let mut week = WeekWeight::default();
        week.record(MONDAY, -1.0, -10.0);
        week.record(MONDAY + 3_600, 1.0, 1.0);
        assert_eq!(week.weight(MONDAY), 1.0);
    }
}
