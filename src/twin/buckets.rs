//! The engine's per-series history store: one `f32` per bucket (half an `f64` history), read
//! by models as the `f64` [`History`] they take, materialised only as far back as the fitted
//! model reads, into a buffer reused across series.

use crate::forecast::History;

/// A regular grid of buckets kept as `f32` (request rates need no more than its 7
/// significant digits); `NaN` marks a missing bucket. The buffer is allocated once for the
/// history plus the trim slack and never grows past it.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    /// Unix seconds of the first bucket's start.
    start: i64,
    /// Bucket length in seconds (> 0).
    step: i64,
    values: Vec<f32>,
}

impl Buckets {
    /// `len` missing buckets from `start`, with room for `capacity` buckets (at least `len`).
    pub fn new(start: i64, step: i64, len: usize, capacity: usize) -> Self {
        let mut values = Vec::with_capacity(capacity.max(len));
        values.resize(len, f32::NAN);
        Self {
            start,
            step,
            values,
        }
    }

    /// Unix seconds of the first bucket's start.
    pub fn start(&self) -> i64 {
        self.start
    }

    /// Bucket length in seconds.
    pub fn step(&self) -> i64 {
        self.step
    }

    /// Number of buckets (missing ones included).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when there is no bucket at all.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The stored values (`NaN` = missing).
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Buckets the buffer holds without reallocating.
    pub fn capacity(&self) -> usize {
        self.values.capacity()
    }

    /// Unix seconds of the start of the last bucket (the forecast origin); `None` if empty.
    pub fn origin(&self) -> Option<i64> {
        let last = i64::try_from(self.values.len().checked_sub(1)?).ok()?;
        Some(self.start + last * self.step)
    }

    /// The newest bucket's value, if present.
    pub fn last_present_bucket(&self) -> Option<f64> {
        self.values
            .last()
            .copied()
            .filter(|v| !v.is_nan())
            .map(f64::from)
    }

    /// Stores `value` in bucket `index` (ignored when out of range).
    pub fn set(&mut self, index: usize, value: f64) {
        if let Some(slot) = self.values.get_mut(index) {
            // Non-finite samples (a ratio over zero, `+Inf`) and rates beyond f32's range
            // (3.4e38) are missing buckets: one infinity in a fit's window would make every
            // forecast of the day NaN.
            let value = value as f32;
            *slot = if value.is_finite() { value } else { f32::NAN };
        }
    }

    /// Extends (with missing buckets) or shortens the grid to `len` buckets.
    pub fn resize(&mut self, len: usize) {
        if len > self.values.capacity() {
            // Only when the grid outgrows the history it was made for (never in the
            // engine, which trims first): grow exactly, not by doubling.
            self.values.reserve_exact(len - self.values.len());
        }
        self.values.resize(len, f32::NAN);
    }

    /// Drops the `count` oldest buckets (all of them if fewer), moving the start on by
    /// `count` buckets even past the last one, so the grid stays where the caller puts it.
    pub fn drop_front(&mut self, count: usize) {
        self.values.drain(..count.min(self.values.len()));
        let moved = i64::try_from(count).unwrap_or(i64::MAX);
        self.start = self.start.saturating_add(moved.saturating_mul(self.step));
    }

    /// True when at least `count` buckets are present (counted from the newest, so a full
    /// history answers after `count` buckets, not after all of them).
    pub fn has_present(&self, count: usize) -> bool {
        count == 0
            || self
                .values
                .iter()
                .rev()
                .filter(|v| !v.is_nan())
                .nth(count - 1)
                .is_some()
    }

    /// True when every bucket is missing (or there is none); newest first, where a live
    /// series has its values.
    pub fn all_missing(&self) -> bool {
        self.values.iter().rev().all(|v| v.is_nan())
    }

    /// The whole history as `f64` (for fitting, which reads all of it).
    pub fn to_history(&self) -> History {
        let mut history = History::new(self.start, self.step, Vec::new());
        self.tail_into(None, &mut history);
        history
    }

    /// Writes into `out` (reusing its buffer) the newest `lookback` buckets as `f64` (all of
    /// them for `None`), extended back to the last present bucket before them: a model that
    /// searches backwards for a present value (a forward fill's seed, the last observed
    /// value) then finds what it would find in the whole history.
    pub fn tail_into(&self, lookback: Option<usize>, out: &mut History) {
        let len = self.values.len();
        let mut from = lookback.map_or(0, |l| len.saturating_sub(l.max(1)));
        while from > 0 && self.values[from].is_nan() {
            from -= 1;
        }
        out.start = self.start + from as i64 * self.step;
        out.step = self.step;
        out.values.clear();
        out.values
            .extend(self.values[from..].iter().map(|&v| f64::from(v)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(values: &[f64]) -> Buckets {
        let mut b = Buckets::new(600, 60, values.len(), values.len() + 2);
        for (i, &v) in values.iter().enumerate() {
            b.set(i, v);
        }
        b
    }

    #[test]
    fn stores_f32_and_reads_back_f64() {
        let b = buckets(&[1.5, f64::NAN, 0.1, 123_456.79]);
        assert_eq!(b.len(), 4);
        assert!(b.has_present(3));
        assert!(!b.has_present(4));
        assert!(b.has_present(0));
        assert_eq!(b.origin(), Some(600 + 3 * 60));
        let h = b.to_history();
        assert_eq!((h.start, h.step), (600, 60));
        assert_eq!(h.values[0], 1.5);
        assert!(h.values[1].is_nan());
        // 0.1 is kept to f32 precision: 7 significant digits.
        assert_eq!(h.values[2], f64::from(0.1f32));
        assert_eq!(h.values[2], 0.10000000149011612);
        assert_eq!(h.values[3], 123_456.7890625);
        assert_eq!(b.last_present_bucket(), Some(123_456.7890625));
    }

    #[test]
    fn non_finite_samples_are_missing_buckets() {
        let b = buckets(&[f64::INFINITY, f64::NEG_INFINITY, 1e39, 2.0]);
        let h = b.to_history();
        assert!(h.values[..3].iter().all(|v| v.is_nan()), "{:?}", h.values);
        assert_eq!(h.values[3], 2.0);
        assert!(b.has_present(1));
        assert!(!b.has_present(2));
    }

    #[test]
    fn a_tail_reaches_back_to_the_last_present_bucket() {
        let b = buckets(&[1.0, 2.0, f64::NAN, f64::NAN, 5.0, 6.0]);
        let mut out = History::new(0, 1, vec![9.0; 100]);
        b.tail_into(Some(2), &mut out);
        assert_eq!(out, History::new(600 + 4 * 60, 60, vec![5.0, 6.0]));
        // The tail starts in a gap: it takes the bucket before the gap too.
        b.tail_into(Some(3), &mut out);
        assert_eq!(out.start, 600 + 60);
        assert_eq!(out.values.len(), 5);
        assert_eq!(out.values[0], 2.0);
        assert_eq!(out.values[4], 6.0);
        // Longer than the history, or None: all of it.
        b.tail_into(Some(50), &mut out);
        assert_eq!(out.values.len(), 6);
        b.tail_into(None, &mut out);
        assert_eq!((out.start, out.values.len()), (600, 6));
        // Lookback 0 reads the origin at least.
        b.tail_into(Some(0), &mut out);
        assert_eq!(out.values, vec![6.0]);
        let leading = buckets(&[f64::NAN, f64::NAN, 3.0]);
        leading.tail_into(Some(2), &mut out);
        assert_eq!(out.start, 600);
        assert_eq!(out.values.len(), 3);
    }

    #[test]
    fn the_buffer_never_grows_past_its_capacity_by_doubling() {
        let mut b = Buckets::new(0, 60, 10, 12);
        assert_eq!(b.capacity(), 12);
        b.resize(12);
        assert_eq!(b.capacity(), 12);
        b.set(11, 4.0);
        b.drop_front(3);
        assert_eq!((b.start(), b.len(), b.capacity()), (180, 9, 12));
        assert_eq!(b.last_present_bucket(), Some(4.0));
        b.resize(13);
        assert_eq!((b.len(), b.capacity()), (13, 13));
        b.drop_front(100);
        assert!(b.is_empty());
        assert_eq!(b.start(), 180 + 100 * 60);
        assert!(b.all_missing());
        assert_eq!(b.origin(), None);
    }
}
