//! Accuracy of rolling-origin forecasts against what happened: MAE, RMSE, sMAPE, MAPE, MASE
//! and MAE relative to persistence on the same points (forecast-anchors.md's metrics).
//!
//! A thin, local scorer: when `forecast::evaluate` gains its own scoring, [`score`] is the
//! one function to point at it.

use crate::forecast::{History, Target};

/// Accuracy of one model for one target over the scored origins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accuracy {
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Mean of `200 |ŷ − y| / (|ŷ| + |y|)` (0 when both are 0), in percent.
    pub smape: f64,
    /// Mean of `100 |ŷ − y| / y` over points with `y > 0`, in percent (`NaN` if none).
    pub mape: f64,
    /// MAE divided by the given scale (the one-step naive MAE before the window).
    pub mase: f64,
    /// MAE divided by persistence's MAE on the same points.
    pub relative: f64,
    /// Points scored.
    pub n: usize,
}

/// The true value of `target` for a forecast made at `origin`, `NaN` when it cannot be
/// scored (a bucket of the target is missing or beyond the trace).
pub fn actual(history: &History, origin: usize, target: Target) -> f64 {
    let values = &history.values;
    match target {
        Target::Point(h) => values.get(origin + h).copied().unwrap_or(f64::NAN),
        Target::Max(h) => {
            let Some(window) = values.get(origin + 1..origin + 1 + h) else {
                return f64::NAN;
            };
            if h == 0 || window.iter().any(|v| v.is_nan()) {
                return f64::NAN;
            }
            window.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        }
    }
}

/// Mean absolute one-step change over the present pairs of `values` (the MASE scale).
pub fn naive_scale(values: &[f64]) -> f64 {
    let (sum, n) = values
        .windows(2)
        .filter(|w| !w[0].is_nan() && !w[1].is_nan())
        .fold((0.0, 0usize), |(s, n), w| (s + (w[1] - w[0]).abs(), n + 1));
    if n == 0 { f64::NAN } else { sum / n as f64 }
}

/// Scores `forecast` against `actual`, on the points where the forecast, the actual value
/// and the `baseline` (persistence) forecast all exist.
pub fn score(forecast: &[f64], baseline: &[f64], actual: &[f64], scale: f64) -> Accuracy {
    let mut n = 0usize;
    let (mut abs, mut sq, mut smape, mut base_abs) = (0.0, 0.0, 0.0, 0.0);
    let (mut ape, mut ape_n) = (0.0, 0usize);
    for ((&f, &b), &y) in forecast.iter().zip(baseline).zip(actual) {
        if !(f.is_finite() && b.is_finite() && y.is_finite()) {
            continue;
        }
        let error = (f - y).abs();
        n += 1;
        abs += error;
        sq += error * error;
        base_abs += (b - y).abs();
        let denominator = f.abs() + y.abs();
        if denominator > 0.0 {
            smape += 200.0 * error / denominator;
        }
        if y > 0.0 {
            ape += 100.0 * error / y;
            ape_n += 1;
        }
    }
    if n == 0 {
        return Accuracy {
            mae: f64::NAN,
            rmse: f64::NAN,
            smape: f64::NAN,
            mape: f64::NAN,
            mase: f64::NAN,
            relative: f64::NAN,
            n: 0,
        };
    }
    let count = n as f64;
    let mae = abs / count;
    Accuracy {
        mae,
        rmse: (sq / count).sqrt(),
        smape: smape / count,
        mape: if ape_n == 0 {
            f64::NAN
        } else {
            ape / ape_n as f64
        },
        mase: mae / scale,
        relative: if base_abs > 0.0 {
            mae / (base_abs / count)
        } else if abs == 0.0 {
            1.0
        } else {
            f64::INFINITY
        },
        n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actual_values_of_point_and_max_targets() {
        let history = History::new(0, 60, vec![1.0, 4.0, 2.0, f64::NAN, 3.0]);
        assert_eq!(actual(&history, 0, Target::Point(2)), 2.0);
        assert_eq!(actual(&history, 0, Target::Max(2)), 4.0);
        assert!(actual(&history, 1, Target::Max(2)).is_nan(), "gap inside");
        assert!(actual(&history, 1, Target::Point(2)).is_nan(), "gap");
        assert!(actual(&history, 3, Target::Point(2)).is_nan(), "beyond");
        assert!(actual(&history, 3, Target::Max(2)).is_nan(), "beyond");
    }

    #[test]
    fn metrics_on_hand_computed_points() {
        // Errors 1, 0, 2 (and a point without an actual value, skipped).
        let forecast = [2.0, 0.0, 4.0, 1.0];
        let baseline = [1.0, 1.0, 1.0, 1.0];
        let actual = [1.0, 0.0, 2.0, f64::NAN];
        let a = score(&forecast, &baseline, &actual, 0.5);
        assert_eq!(a.n, 3);
        assert!((a.mae - 1.0).abs() < 1e-12);
        assert!((a.rmse - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        // sMAPE: 200·1/3, 0 (both 0), 200·2/6 → (66.67 + 0 + 66.67) / 3.
        assert!((a.smape - 400.0 / 9.0).abs() < 1e-9);
        // MAPE over y > 0: 100 and 100.
        assert!((a.mape - 100.0).abs() < 1e-12);
        assert!((a.mase - 2.0).abs() < 1e-12);
        // Baseline errors 0, 1, 1 → MAE 2/3.
        assert!((a.relative - 1.5).abs() < 1e-12);
        assert_eq!(naive_scale(&[1.0, 2.0, f64::NAN, 5.0, 3.0]), 1.5);
    }
}
