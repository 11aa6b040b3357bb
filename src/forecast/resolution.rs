//! The smallest value above 0 a series takes, so that a twin serves 0, not a forecast nearer
//! 0 than anything the series does, while the live value is 0.
//!
//! A request rate moves in steps: one request over the rate's window is the least it can be
//! above 0. A model fitted on a series that is mostly at 0 (an idle service, a cron job
//! between runs) forecasts a fraction of a step there, the mean of 0 and a rare burst, which
//! the series never takes; against the live value's exact 0 every such hour is infinitely
//! worse. Below half the series' smallest value above 0, a forecast is nearer 0 than any
//! value the series takes, and 0 is served. Forecasts of the bursts themselves (a cron run
//! forecast from a day ago) are at the bursts' level and are served as they are. A series
//! that takes values as small as it likes (a ratio, a CPU rate) has a smallest value too
//! small for the rule to matter.

use super::WEEK_SECONDS;

/// What fraction of the smallest value above 0 a forecast must reach to be served while the
/// live value is 0: half, the midpoint between 0 and that value.
pub const FRACTION: f64 = 0.5;

/// The smallest value above 0 of a series: of the week of history before the first origin
/// observed, then of every bucket since.
#[derive(Debug, Clone, Copy, Default)]
pub struct Resolution {
    /// The smallest value above 0 seen (`None`: none yet).
    smallest: Option<f64>,
    /// The newest origin taken in (Unix seconds).
    newest: Option<i64>,
}

impl Resolution {
    /// Takes in the history `values` (bucket `i` starts at `start + i · step`; `NaN`: missing)
    /// up to its newest bucket, the origin: the buckets not seen yet, or at the first origin
    /// the week before it.
    pub fn update<T: Copy + Into<f64>>(&mut self, values: &[T], start: i64, step: i64) {
        let Some(last) = values.len().checked_sub(1) else {
            return;
        };
        let step = step.max(1);
        let origin = start + last as i64 * step;
        let first = match self.newest {
            Some(newest) if origin <= newest => return,
            Some(newest) => usize::try_from((newest - start) / step + 1).unwrap_or(0),
            None => last.saturating_sub(usize::try_from(WEEK_SECONDS / step).unwrap_or(0)),
        };
        for &v in &values[first.min(last)..] {
            let v: f64 = v.into();
            if v > 0.0 && v.is_finite() {
                self.smallest = Some(self.smallest.map_or(v, |s| s.min(v)));
            }
        }
        self.newest = Some(origin);
    }

    /// What to serve for a `served` forecast where the live value is `live`: 0 when the live
    /// value is 0 and the forecast below [`FRACTION`] of the smallest value above 0, else the
    /// forecast.
    pub fn round(&self, served: f64, live: f64) -> f64 {
        match self.smallest {
            Some(smallest) if live == 0.0 && served < FRACTION * smallest => 0.0,
            _ => served,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP: i64 = 60;

    #[test]
    fn below_half_the_smallest_value_above_0_is_served_as_0_where_live_is_0() {
        // One request a minute is 1/60 req/s.
        let values = [0.0, 1.0 / 60.0, 0.0, 2.0 / 60.0, 0.0];
        let mut r = Resolution::default();
        r.update(&values, 0, STEP);
        assert_eq!(r.smallest, Some(1.0 / 60.0));
        assert_eq!(r.round(0.008, 0.0), 0.0);
        assert_eq!(r.round(0.009, 0.0), 0.009);
        // A live value above 0: the forecast as it is.
        assert_eq!(r.round(0.008, 1.0 / 60.0), 0.008);
    }

    #[test]
    fn without_a_value_above_0_every_forecast_is_served() {
        let mut r = Resolution::default();
        r.update(&[0.0, f64::NAN, 0.0], 0, STEP);
        assert_eq!(r.smallest, None);
        assert_eq!(r.round(1e-9, 0.0), 1e-9);
    }

    #[test]
    fn the_first_origin_reads_a_week_back_and_later_ones_only_their_new_buckets() {
        let week = (WEEK_SECONDS / STEP) as usize;
        // 0.001 lies one bucket beyond the week before the first origin: not taken in.
        let mut values = vec![5.0; week + 2];
        values[0] = 0.001;
        let mut r = Resolution::default();
        r.update(&values, 0, STEP);
        assert_eq!(r.smallest, Some(5.0));
        // Seen before: an origin already taken in changes nothing.
        values[week + 1] = 0.5;
        r.update(&values, 0, STEP);
        assert_eq!(r.smallest, Some(5.0));
        // A new bucket is read, with the history's start moved on (a trimmed ring).
        values.push(2.0);
        r.update(&values[10..], 10 * STEP, STEP);
        assert_eq!(r.smallest, Some(2.0));
        // Infinite values (never stored by the engine) and NaN are not values.
        values.extend([f64::INFINITY, f64::NAN, -1.0]);
        r.update(&values, 0, STEP);
        assert_eq!(r.smallest, Some(2.0));
    }
}
