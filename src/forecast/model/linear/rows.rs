//! Training rows from a history: relative features and targets per forecast origin, their
//! standardisation, and one target's standardised columns for the solver.

// Dense linear algebra reads clearer with explicit indices.
#![allow(clippy::needless_range_loop)]

use super::design::Design;
use super::solve::Columns;
use super::spec::{feature_value, transform_value};
use crate::forecast::model::max_steps;
use crate::forecast::{Feature, History, Target, Transform};

/// Training rows: standardised relative features, targets in transformed change, and what
/// is needed to score forecasts in raw space.
pub(super) struct Rows {
    /// Origin index of each row.
    pub(super) origin: Vec<usize>,
    /// Row-major `rows × features` raw (relative) feature values.
    pub(super) x: Vec<f64>,
    /// Row-major `rows × targets` changes from the origin (transformed).
    pub(super) y: Vec<f64>,
    /// Transformed origin value per row.
    pub(super) u0: Vec<f64>,
    /// Raw realised target per row and target.
    pub(super) actual: Vec<f64>,
    /// Raw origin value per row.
    pub(super) raw0: Vec<f64>,
}

/// The rows of `history` for `design`: every origin whose target and recent lags are clear
/// of gaps, thinned evenly to at most `max_rows` (the newest kept).
pub(super) fn build_rows(
    history: &History,
    targets: &[Target],
    design: &Design,
    transform: Transform,
    max_rows: usize,
) -> Rows {
    let raw = history.forward_filled();
    let u: Vec<f64> = raw.iter().map(|&x| transform_value(transform, x)).collect();
    let len = raw.len();
    // Prefix count of missing buckets, to reject rows touching a gap.
    let mut missing = vec![0usize; len + 1];
    for (i, v) in history.values.iter().enumerate() {
        missing[i + 1] = missing[i] + usize::from(v.is_nan());
    }
    let clean = |from: usize, to: usize| missing[to + 1] == missing[from];
    let horizon = max_steps(targets);
    let p = design.features.len();
    let m = targets.len();
    // Rows whose target or recent lags touch a gap are dropped; older buckets (seasonal
    // and window features) are read forward-filled, as at predict time.
    let recent = design
        .features
        .iter()
        .filter_map(|&f| match f {
            Feature::Lag(l) if l < design.recent => Some(l),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let first = design.lookback - 1;
    let candidates: Vec<usize> = if len > first + horizon {
        (first..len - horizon)
            .filter(|&t| clean(t - recent, t + horizon))
            .collect()
    } else {
        Vec::new()
    };
    let stride = candidates.len().div_ceil(max_rows.max(1)).max(1);
    // Keep the newest row: walk back from the end.
    let chosen: Vec<usize> = candidates
        .iter()
        .rev()
        .step_by(stride)
        .rev()
        .copied()
        .collect();
    let mut rows = Rows {
        origin: Vec::with_capacity(chosen.len()),
        x: Vec::with_capacity(chosen.len() * p),
        y: Vec::with_capacity(chosen.len() * m),
        u0: Vec::with_capacity(chosen.len()),
        actual: Vec::with_capacity(chosen.len() * m),
        raw0: Vec::with_capacity(chosen.len()),
    };
    for &t in &chosen {
        let u0 = u[t];
        let phase = History::phase(history.start + t as i64 * history.step);
        for &f in &design.features {
            let v = feature_value(f, |l| u[t - l], phase);
            rows.x.push(if f.is_level() { v - u0 } else { v });
        }
        for &target in targets {
            let (value, actual) = match target {
                Target::Point(h) => (u[t + h], raw[t + h]),
                Target::Max(h) => (
                    u[t + 1..=t + h].iter().copied().fold(f64::MIN, f64::max),
                    raw[t + 1..=t + h].iter().copied().fold(f64::MIN, f64::max),
                ),
            };
            rows.y.push(value - u0);
            rows.actual.push(actual);
        }
        rows.origin.push(t);
        rows.u0.push(u0);
        rows.raw0.push(raw[t]);
    }
    rows
}

/// Per-feature mean and standard deviation over every row (a deviation that is zero, not
/// finite, or below 1e-12 of the mean's size becomes 1); `value(r, i)` is feature `i` of
/// row `r`.
pub(super) fn moments(
    count: usize,
    p: usize,
    value: impl Fn(usize, usize) -> f64,
) -> (Vec<f64>, Vec<f64>) {
    let mut mean = vec![0.0; p];
    let mut scale = vec![0.0; p];
    for r in 0..count {
        for i in 0..p {
            mean[i] += value(r, i);
        }
    }
    mean.iter_mut().for_each(|v| *v /= count as f64);
    for r in 0..count {
        for i in 0..p {
            let d = value(r, i) - mean[i];
            scale[i] += d * d;
        }
    }
    for (s, m) in scale.iter_mut().zip(&mean) {
        *s = (*s / count as f64).sqrt();
        // Constant up to rounding, relative to the feature's size so that the fit is the
        // same in any unit.
        if !s.is_normal() || *s <= 1e-12 * m.abs() {
            *s = 1.0;
        }
    }
    (mean, scale)
}

/// One target's view of the rows: its features, standardised, and its values.
pub(super) struct TargetRows<'a> {
    /// The rows.
    pub(super) rows: &'a Rows,
    /// Which target (column of `rows.y`), of how many.
    pub(super) j: usize,
    pub(super) m: usize,
    /// Features per row.
    pub(super) p: usize,
    /// The target's features (indices into the design's features).
    pub(super) used: &'a [usize],
    /// Standardisation of the relative features.
    pub(super) mean: &'a [f64],
    pub(super) scale: &'a [f64],
}

impl TargetRows<'_> {
    /// Standardised design of the rows `pick`: column 0 is the intercept, then the
    /// target's features; row-major.
    pub(super) fn columns(&self, pick: &[usize]) -> Columns {
        let (rows, p) = (self.rows, self.p);
        let width = self.used.len() + 1;
        let mut a = Vec::with_capacity(pick.len() * width);
        for &r in pick {
            a.push(1.0);
            for &i in self.used {
                a.push((rows.x[r * p + i] - self.mean[i]) / self.scale[i]);
            }
        }
        Columns { a, width }
    }

    /// The target's values (changes from the origin) of the rows `pick`.
    pub(super) fn values(&self, pick: &[usize]) -> Vec<f64> {
        pick.iter()
            .map(|&r| self.rows.y[r * self.m + self.j])
            .collect()
    }
}
