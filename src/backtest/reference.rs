//! Non-causal reference forecasts for `augur backtest --level-oracle`: what knowing the
//! local traffic level (but not the next bucket's noise) would buy, as a bound on what any
//! forecaster can reach on a trace.
//!
//! The level at bucket `T` is the median of the present buckets `T − k ..= T + k` other
//! than `T` itself: it reads the future, so it is a diagnostic, never a model. Its point
//! forecast of `y[t + h]` is the level at `t + h`; its max forecast is the max of the level
//! over `(t, t + h]`.

use crate::forecast::{History, Target, median};

/// The two-sided median level of every bucket (`NaN` where no neighbour is present).
pub fn levels(history: &History, half_width: usize) -> Vec<f64> {
    let values = &history.values;
    let mut window = Vec::with_capacity(2 * half_width);
    (0..values.len())
        .map(|at| {
            window.clear();
            let from = at.saturating_sub(half_width);
            let to = (at + half_width).min(values.len().saturating_sub(1));
            window.extend(
                (from..=to)
                    .filter(|&i| i != at)
                    .map(|i| values[i])
                    .filter(|v| !v.is_nan()),
            );
            median(&mut window)
        })
        .collect()
}

/// Forecasts of every target from each origin `first_origin ..` of `history`, laid out as
/// [`crate::forecast::evaluate::rolling_forecasts`] lays out a model's (origin-major).
pub fn level_oracle(
    history: &History,
    first_origin: usize,
    targets: &[Target],
    half_width: usize,
) -> Vec<Vec<f64>> {
    let level = levels(history, half_width);
    let at = |i: usize| level.get(i).copied().unwrap_or(f64::NAN);
    (first_origin..history.len())
        .map(|origin| {
            targets
                .iter()
                .map(|&target| match target {
                    Target::Point(h) => at(origin + h),
                    Target::Max(h) => (origin + 1..=origin + h)
                        .map(at)
                        .reduce(|a, b| {
                            if a.is_nan() || b.is_nan() {
                                f64::NAN
                            } else {
                                a.max(b)
                            }
                        })
                        .unwrap_or(f64::NAN),
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(values: &[f64]) -> History {
        History {
            start: 0,
            step: 60,
            values: values.to_vec(),
        }
    }

    #[test]
    fn level_is_the_median_of_the_neighbours_without_the_bucket() {
        let h = history(&[1.0, 9.0, 2.0, 4.0, f64::NAN, 3.0]);
        let level = levels(&h, 1);
        // 0: {9} → 9; 1: {1, 2} → 1.5; 2: {9, 4} → 6.5; 3: {2} (NaN skipped) → 2;
        // 4: {4, 3} → 3.5; 5: {} (NaN skipped) → NaN.
        assert_eq!(&level[..5], &[9.0, 1.5, 6.5, 2.0, 3.5]);
        assert!(level[5].is_nan());
        let wide = levels(&h, 2);
        // 2: {1, 9, 4} → 4.
        assert_eq!(wide[2], 4.0);
    }

    #[test]
    fn forecasts_read_the_level_ahead_of_each_origin() {
        let h = history(&[1.0, 9.0, 2.0, 4.0, 8.0, 3.0, 5.0]);
        // Levels (k = 1): [9, 1.5, 6.5, 5, 3.5, 6.5, 3].
        let f = level_oracle(&h, 3, &[Target::Point(2), Target::Max(3)], 1);
        assert_eq!(f.len(), 4);
        assert_eq!(f[0], vec![6.5, 6.5]);
        // Origin 4: point at 6 → 3; max over 5..=7, bucket 7 beyond the trace → NaN.
        assert_eq!(f[1][0], 3.0);
        assert!(f[1][1].is_nan());
        assert!(f[3][0].is_nan());
    }
}
