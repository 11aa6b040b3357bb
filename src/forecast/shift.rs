//! Spots a rise of level a series has not shown in the last day, from the values alone, so
//! that a twin can serve the live value as soon as it shows instead of one horizon later, when
//! the first forecasts made across it come due.
//!
//! The change at an origin is `ln((r + ε) / (b + ε))`: `r` the median of the newest
//! [`RECENT_BUCKETS`] buckets, `b` the median of the hour before them, `ε` a noise floor of
//! [`FLOOR_OF_MEAN`] times the last day's mean (so that a few requests more at night do not
//! count as a doubling). A shift is a rise larger than [`MIN_CHANGE`] and larger than every
//! change, up or down, at the origins of the day before it (up to an hour ago): what the series
//! does every day, a morning ramp, is no shift. Falls are not watched: serving the live value
//! after a fall scales the workload down, and on real traffic most falls the series has not
//! shown are pauses that end within minutes (serving them live cost the twin's lead over plain
//! headroom on NASA's trace: benches/README.md); a model that keeps forecasting the old level
//! after a lasting fall loses its weight as for any miss. Both levels are ratios of the
//! series' own values, so the rule does not depend on the metric's unit.

use std::collections::VecDeque;

use super::median;

/// Buckets whose median is the series' newest level: two outliers among them (a spike of two
/// buckets) do not move it, and a shift shows on its third bucket.
pub const RECENT_BUCKETS: usize = 5;

/// The noise floor added to both levels, as a fraction of the last day's mean.
pub const FLOOR_OF_MEAN: f64 = 0.1;

/// The smallest rise of level that is a shift: a doubling (`ln 2`).
pub const MIN_CHANGE: f64 = std::f64::consts::LN_2;

/// The fewest buckets an hour must hold for the rule to apply (a step of at most 5 minutes,
/// the steps it was chosen on). At 15 minutes the newest five buckets span more than an
/// hour and the rule takes ordinary morning rises for shifts: on NASA's trace at 900 s it
/// served live through some of them, the lead over plain headroom fell from 64 % to 61 % and
/// no worst hour improved (benches/README.md).
pub const MIN_HOUR_BUCKETS: usize = 12;

/// How much a rise must exceed the day's largest change by (in log units, so unit-free).
const TIE_MARGIN: f64 = 1e-9;

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// The shift watch of one series: the changes of level over the last day, kept as origins
/// arrive.
#[derive(Debug, Clone)]
pub struct ShiftWatch {
    step: i64,
    /// Buckets in an hour, in a day (0: the watch is off, the step is too long).
    hour: usize,
    day: usize,
    /// The newest origin whose change is known.
    newest: Option<i64>,
    /// The oldest origin whose change was compared against: shifts are judged once a day of
    /// them is (so from the second day of a history on).
    oldest: Option<i64>,
    /// |change| of the origins from a day to an hour ago that no later one exceeds,
    /// decreasing: the front is the day's largest. Tens of entries on real traffic.
    day_max: VecDeque<(i64, f64)>,
    /// The origin of the newest shift.
    last_shift: Option<i64>,
}

impl ShiftWatch {
    /// A watch over a grid of `step` seconds.
    pub fn new(step: i64) -> Self {
        let per = |span: i64| usize::try_from(span / step.max(1)).unwrap_or(0);
        let (hour, day) = if per(HOUR) >= MIN_HOUR_BUCKETS {
            (per(HOUR), per(DAY))
        } else {
            (0, 0)
        };
        Self {
            step: step.max(1),
            hour,
            day,
            newest: None,
            oldest: None,
            day_max: VecDeque::new(),
            last_shift: None,
        }
    }

    /// Takes in the history `values` (bucket `i` starts at `start + i · step`; `NaN`: missing)
    /// up to its newest bucket, the origin, and tells whether the level shifted up there. An
    /// origin already seen is never a shift again.
    pub fn update<T: Copy + Into<f64>>(&mut self, values: &[T], start: i64) -> bool {
        if self.hour == 0 || values.is_empty() {
            return false;
        }
        let last = values.len() - 1;
        let origin = start + last as i64 * self.step;
        if self.newest.is_some_and(|n| origin <= n) {
            return false;
        }
        // Each origin `k` not seen yet brings the change of `k − hour` into the day's
        // (recomputed rather than kept for an hour); at most a day of them is read. A change
        // needs a whole day before it for its noise floor.
        let from_newest = self.newest.map_or(0, |n| {
            usize::try_from((n - start) / self.step + 1).unwrap_or(0)
        });
        let first = from_newest
            .max(last.saturating_sub(self.day))
            .max(self.day + self.hour);
        let mut scratch = Scratch::new(
            values,
            first.min(last).saturating_sub(self.hour + self.day),
            last,
            (last + 1).saturating_sub(first) + 1,
        );
        for k in first..=last {
            let j = k - self.hour;
            let c = change(values, j, self.hour, self.day, &mut scratch).abs();
            self.push(start + j as i64 * self.step, c);
        }
        let day_ago = origin - self.day as i64 * self.step;
        while self.day_max.front().is_some_and(|&(o, _)| o < day_ago) {
            self.day_max.pop_front();
        }
        let now = if last >= self.day {
            change(values, last, self.hour, self.day, &mut scratch)
        } else {
            0.0
        };
        self.newest = Some(origin);
        let covered = self
            .oldest
            .is_some_and(|o| o <= origin - self.day as i64 * self.step);
        let quiet = self
            .last_shift
            .is_none_or(|s| origin - s > self.hour as i64 * self.step);
        let usual = self.day_max.front().map_or(0.0, |&(_, c)| c);
        // A change is a log ratio: the margin keeps a day that repeats the one before to the
        // last bit but for rounding from being judged above it.
        let shifted = covered && quiet && now > MIN_CHANGE.max(usual) + TIE_MARGIN;
        if shifted {
            self.last_shift = Some(origin);
        }
        shifted
    }

    /// Adds the |change| `c` of `origin` (an hour before the newest) to the day's.
    fn push(&mut self, origin: i64, c: f64) {
        self.oldest.get_or_insert(origin);
        while self.day_max.back().is_some_and(|&(_, b)| b <= c) {
            self.day_max.pop_back();
        }
        self.day_max.push_back((origin, c));
    }
}

/// Changes computed in one update past which a day's mean comes from running sums rather than
/// a pass over the day: a new series' first update computes a day of them, a refresh one or
/// two.
const RUNNING_SUMS_FROM: usize = 8;

/// What the changes of one update read: running sums of the present values over the buckets
/// their days span when there are many changes (so a day's mean costs two lookups), and a
/// buffer for the medians.
struct Scratch {
    /// The bucket `sums[0]` starts before.
    from: usize,
    /// `sums[i]`, `counts[i]`: sum and number of present values of buckets `from..from + i`;
    /// empty for an update of a few changes.
    sums: Vec<f64>,
    counts: Vec<u32>,
    buffer: Vec<f64>,
}

impl Scratch {
    /// For `changes` changes whose days span buckets `from..=to` of `values`.
    fn new<T: Copy + Into<f64>>(values: &[T], from: usize, to: usize, changes: usize) -> Self {
        let (mut sums, mut counts) = (Vec::new(), Vec::new());
        if changes >= RUNNING_SUMS_FROM {
            sums.reserve(to + 2 - from);
            counts.reserve(to + 2 - from);
            let (mut sum, mut count) = (0.0, 0u32);
            sums.push(sum);
            counts.push(count);
            for &v in &values[from..=to] {
                let v: f64 = v.into();
                if v.is_finite() {
                    sum += v;
                    count += 1;
                }
                sums.push(sum);
                counts.push(count);
            }
        }
        Self {
            from,
            sums,
            counts,
            buffer: Vec::new(),
        }
    }

    /// The mean of the present values of buckets `lo..=hi` (within the span).
    fn mean<T: Copy + Into<f64>>(&self, values: &[T], lo: usize, hi: usize) -> f64 {
        let (sum, count) = if self.sums.is_empty() {
            present_sum(&values[lo..=hi])
        } else {
            let (a, b) = (lo - self.from, hi + 1 - self.from);
            (self.sums[b] - self.sums[a], self.counts[b] - self.counts[a])
        };
        if count == 0 {
            return f64::NAN;
        }
        sum / f64::from(count)
    }

    /// The median of the present values of `values[range]`, if at least `least` are.
    fn median<T: Copy + Into<f64>>(
        &mut self,
        values: &[T],
        range: std::ops::Range<usize>,
        least: usize,
    ) -> Option<f64> {
        self.buffer.clear();
        self.buffer.extend(
            values[range]
                .iter()
                .map(|&v| v.into())
                .filter(|v: &f64| v.is_finite()),
        );
        if self.buffer.is_empty() || self.buffer.len() < least {
            return None;
        }
        Some(median(&mut self.buffer))
    }
}

/// The sum and number of the present values of `values`, in four running sums (a day of them
/// on every refresh of every series: one chain of dependent additions would take four times as
/// long).
fn present_sum<T: Copy + Into<f64>>(values: &[T]) -> (f64, u32) {
    let (mut sums, mut counts) = ([0.0f64; 4], [0u32; 4]);
    let mut chunks = values.chunks_exact(4);
    for chunk in &mut chunks {
        for (i, &v) in chunk.iter().enumerate() {
            let v: f64 = v.into();
            if v.is_finite() {
                sums[i] += v;
                counts[i] += 1;
            }
        }
    }
    for &v in chunks.remainder() {
        let v: f64 = v.into();
        if v.is_finite() {
            sums[0] += v;
            counts[0] += 1;
        }
    }
    (
        (sums[0] + sums[1]) + (sums[2] + sums[3]),
        counts.iter().sum(),
    )
}

/// The change of level at bucket `k` of `values` (0 where too few buckets are present to
/// tell, or the levels are not positive numbers); `scratch` spans bucket `k − day` on.
fn change<T: Copy + Into<f64>>(
    values: &[T],
    k: usize,
    hour: usize,
    day: usize,
    scratch: &mut Scratch,
) -> f64 {
    let recent_from = (k + 1).saturating_sub(RECENT_BUCKETS);
    let before_from = recent_from.saturating_sub(hour);
    let Some(recent) = scratch.median(values, recent_from..k + 1, RECENT_BUCKETS.div_ceil(2))
    else {
        return 0.0;
    };
    let Some(before) = scratch.median(values, before_from..recent_from, hour.div_ceil(2)) else {
        return 0.0;
    };
    let floor = FLOOR_OF_MEAN * scratch.mean(values, k.saturating_sub(day), k);
    let ratio = (recent + floor) / (before + floor);
    if ratio.is_finite() && ratio > 0.0 {
        ratio.ln()
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minute buckets of a daily wave between `low` and `high` for `days` days.
    fn wave(days: usize, low: f64, high: f64) -> Vec<f64> {
        (0..days * 1440)
            .map(|i| {
                let phase = (i % 1440) as f64 / 1440.0 * std::f64::consts::TAU;
                low + (high - low) * (0.5 - 0.5 * phase.cos())
            })
            .collect()
    }

    /// Feeds `values` bucket by bucket and returns the indices of the shifts.
    fn shifts(values: &[f64], step: i64) -> Vec<usize> {
        let mut watch = ShiftWatch::new(step);
        (0..values.len())
            .filter(|&k| watch.update(&values[..=k], 1_000_000))
            .collect()
    }

    #[test]
    fn a_rise_the_series_never_showed_is_a_shift_within_the_recent_buckets() {
        let mut values = wave(3, 10.0, 40.0);
        let at = 2 * 1440 + 700;
        for v in &mut values[at..] {
            *v *= 5.0;
        }
        // The median of the newest five moves on the third bucket of the rise.
        assert_eq!(shifts(&values, 60), vec![at + 2]);
        // A fall of the same size is not watched.
        let mut values = wave(3, 10.0, 40.0);
        for v in &mut values[at..] {
            *v /= 5.0;
        }
        assert_eq!(shifts(&values, 60), Vec::<usize>::new());
    }

    #[test]
    fn what_the_series_does_every_day_is_no_shift() {
        // A ramp from 5 to 60 in 20 minutes every morning and a drop back to 5 at noon: the
        // first two days' are not judged (a change needs a day before it, and a day of
        // changes before it is judged), every later one is usual.
        let mut values = vec![5.0; 4 * 1440];
        for day in 0..4 {
            for m in 0..20 {
                values[day * 1440 + 480 + m] = 5.0 + 55.0 * m as f64 / 20.0;
            }
            for v in &mut values[day * 1440 + 500..day * 1440 + 700] {
                *v = 60.0;
            }
        }
        assert_eq!(shifts(&values, 60), Vec::<usize>::new());
        assert_eq!(shifts(&wave(4, 1.0, 100.0), 60), Vec::<usize>::new());
    }

    #[test]
    fn the_rule_does_not_depend_on_the_unit_and_ignores_a_single_spike() {
        let mut values = wave(3, 10.0, 40.0);
        values[2 * 1440 + 100] = 1e4;
        let at = 2 * 1440 + 900;
        for v in &mut values[at..] {
            *v *= 4.0;
        }
        for scale in [1e-200, 1e-3, 1.0, 1e200] {
            let scaled: Vec<f64> = values.iter().map(|v| v * scale).collect();
            assert_eq!(shifts(&scaled, 60), vec![at + 2], "scale {scale}");
        }
    }

    #[test]
    fn gaps_long_steps_and_zeros_never_make_a_shift() {
        let mut values = wave(3, 10.0, 40.0);
        for v in &mut values[2 * 1440 + 200..2 * 1440 + 260] {
            *v = f64::NAN;
        }
        assert_eq!(shifts(&values, 60), Vec::<usize>::new());
        assert_eq!(shifts(&vec![0.0; 3 * 1440], 60), Vec::<usize>::new());
        // A fall to 0, for a few buckets or for longer, is no shift; nor is the way back to
        // the old level (a change the size of the fall, within the day); a way back to 10
        // times the old level is.
        let mut paused = wave(4, 10.0, 40.0);
        for v in &mut paused[2 * 1440 + 300..2 * 1440 + 304] {
            *v = 0.0;
        }
        for v in &mut paused[2 * 1440 + 900..2 * 1440 + 1000] {
            *v = 0.0;
        }
        assert_eq!(shifts(&paused, 60), Vec::<usize>::new());
        let back = 3 * 1440 + 900;
        for v in &mut paused[back - 100..back] {
            *v = 0.0;
        }
        for v in &mut paused[back..] {
            *v *= 10.0;
        }
        assert_eq!(shifts(&paused, 60), vec![back + 2]);
        // Hourly or 15-minute buckets: the rule is off; at 5 minutes it is on.
        for step in [3_600, 900, 300] {
            let per_day = 86_400 / step as usize;
            let mut coarse = vec![10.0; per_day * 5];
            for v in &mut coarse[per_day * 3..] {
                *v = 100.0;
            }
            let expected = if step == 300 {
                vec![per_day * 3 + 2]
            } else {
                vec![]
            };
            assert_eq!(shifts(&coarse, step), expected, "step {step}");
        }
    }

    #[test]
    fn origins_skipped_between_updates_are_caught_up_and_a_seen_one_is_not_judged_again() {
        let mut values = wave(3, 10.0, 40.0);
        let at = 2 * 1440 + 700;
        for v in &mut values[at..] {
            *v *= 5.0;
        }
        let mut watch = ShiftWatch::new(60);
        // One update with two days of history, then one every ten minutes.
        assert!(!watch.update(&values[..2 * 1440], 1_000_000));
        let mut hits = Vec::new();
        for k in (2 * 1440..values.len()).step_by(10) {
            if watch.update(&values[..=k], 1_000_000) {
                hits.push(k);
            }
            assert!(!watch.update(&values[..=k], 1_000_000));
        }
        // `at` falls on an update, where the newest five buckets hold one of the rise.
        assert_eq!(hits, vec![at + 10]);
    }
}
