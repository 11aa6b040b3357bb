//! Rolling windows of a model's errors against persistence's (the backtest's "worst 1-hour
//! window"): every window's ratio, the worst one, and how the rest are spread.

use super::evaluate::actual;
use super::{History, Target};

/// One window of a model's errors against persistence's: see [`windows`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// The model's MAE over persistence's MAE on the scored points of the window (1 when
    /// both are 0; infinite when only persistence's is).
    pub ratio: f64,
    /// The first origin (bucket index) of the window.
    pub origin: usize,
    /// The model's MAE over the window.
    pub mae: f64,
    /// Persistence's MAE over the same points.
    pub persistence_mae: f64,
}

/// Every run of `window` consecutive origins from `first_origin` (`forecasts[k]` made at
/// origin `first_origin + k`, `NaN`: none, persistence stands in), in order, with the
/// model's MAE on `target` relative to persistence's on the same points, scored as
/// [`super::evaluate::score`] scores (forecasts clipped at 0, only origins whose target
/// buckets all exist). Windows with fewer than half their origins scored are left out.
pub fn windows(
    history: &History,
    first_origin: usize,
    target: Target,
    forecasts: &[f64],
    window: usize,
) -> Vec<Window> {
    let window = window.max(1);
    let filled = history.forward_filled();
    // Prefix sums of the model's and persistence's absolute errors and of scored points.
    let mut model = vec![0.0];
    let mut baseline = vec![0.0];
    let mut scored = vec![0usize];
    for (k, &forecast) in forecasts.iter().enumerate() {
        let origin = first_origin + k;
        let (mut m, mut p, mut n) = (0.0, 0.0, 0);
        if let (Some(actual), Some(&last)) = (actual(history, origin, target), filled.get(origin)) {
            let persistence = last.max(0.0);
            let forecast = if forecast.is_finite() {
                forecast.max(0.0)
            } else {
                persistence
            };
            m = (forecast - actual).abs();
            p = (persistence - actual).abs();
            n = 1;
        }
        model.push(model[k] + m);
        baseline.push(baseline[k] + p);
        scored.push(scored[k] + n);
    }
    let Some(last) = forecasts.len().checked_sub(window) else {
        return Vec::new();
    };
    (0..=last)
        .filter_map(|k| {
            let n = scored[k + window] - scored[k];
            if 2 * n < window || n == 0 {
                return None;
            }
            let mae = (model[k + window] - model[k]) / n as f64;
            let persistence_mae = (baseline[k + window] - baseline[k]) / n as f64;
            // Prefix-sum differences leave rounding dust where both are exact.
            let tiny = 1e-12 * (model[k + window].abs() + baseline[k + window].abs());
            let ratio = match (mae > tiny, persistence_mae > tiny) {
                (false, true) => 0.0,
                (false, false) => 1.0,
                (true, false) => f64::INFINITY,
                (true, true) => mae / persistence_mae,
            };
            Some(Window {
                ratio,
                origin: first_origin + k,
                mae,
                persistence_mae,
            })
        })
        .collect()
}

/// The window of [`windows`] where the model's MAE is highest relative to persistence's
/// (the first of equals); `None` when no window is left (fewer than `window` origins, or
/// too many gaps).
pub fn worst_window(
    history: &History,
    first_origin: usize,
    target: Target,
    forecasts: &[f64],
    window: usize,
) -> Option<Window> {
    worst(&windows(history, first_origin, target, forecasts, window))
}

/// The first window with the highest ratio.
pub fn worst(all: &[Window]) -> Option<Window> {
    all.iter()
        .copied()
        .reduce(|worst, w| if w.ratio > worst.ratio { w } else { worst })
}

/// How the windows' ratios are spread: the worst one alone is a single draw out of
/// thousands of overlapping windows, decided on a 5-minute trace by one or two bursts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// Windows scored.
    pub windows: usize,
    /// The ratio below which half, 90 % and 99 % of the windows lie (the sorted ratios'
    /// entry at `⌊n·q⌋`).
    pub median: f64,
    /// See `median`.
    pub p90: f64,
    /// See `median`.
    pub p99: f64,
    /// The share of windows (0–1) whose ratio is above 1.1 (the bar for the default).
    pub above_1_1: f64,
    /// The share of windows whose ratio is above 1: worse than the live value.
    pub above_1: f64,
}

impl Spread {
    /// The spread of `all`; `None` when there is no window.
    pub fn of(all: &[Window]) -> Option<Spread> {
        let mut ratios: Vec<f64> = all.iter().map(|w| w.ratio).collect();
        ratios.sort_by(f64::total_cmp);
        let n = ratios.len();
        if n == 0 {
            return None;
        }
        let at = |q: f64| ratios[((n as f64 * q) as usize).min(n - 1)];
        let share = |bar: f64| ratios.iter().filter(|&&r| r > bar).count() as f64 / n as f64;
        Some(Spread {
            windows: n,
            median: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            above_1_1: share(1.1),
            above_1: share(1.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_window_is_the_highest_ratio_of_summed_errors() {
        // Origins 1–4, point target 1 step ahead: actuals 3, 5, 4, 6; persistence 2, 3, 5,
        // 4 (errors 1, 2, 1, 2); forecasts 3.5, 4, 4, 8 (errors 0.5, 1, 0, 2). Windows of
        // two origins: 1.5 / 3, 1 / 3, 2 / 3: the last, from origin 3.
        let history = History::new(0, 60, vec![1.0, 2.0, 3.0, 5.0, 4.0, 6.0]);
        let target = Target::Point(1);
        let worst = worst_window(&history, 1, target, &[3.5, 4.0, 4.0, 8.0], 2);
        assert_eq!(
            worst,
            Some(Window {
                ratio: 2.0 / 3.0,
                origin: 3,
                mae: 1.0,
                persistence_mae: 1.5
            })
        );
        // No forecast at origin 2: persistence stands in (error 2): (0.5 + 2) / 3.
        let worst = worst_window(&history, 1, target, &[3.5, f64::NAN, 4.0, 8.0], 2)
            .unwrap_or_else(|| panic!("no window"));
        assert_eq!((worst.ratio, worst.origin), (2.5 / 3.0, 1));
        // One window of all four; too few origins for a window of five.
        let all = worst_window(&history, 1, target, &[3.5, 4.0, 4.0, 8.0], 4);
        assert_eq!(all.map(|w| w.ratio), Some(3.5 / 6.0));
        assert_eq!(worst_window(&history, 1, target, &[3.5; 4], 5), None);
        // Flat: both exact is 1; a model off where persistence is exact is infinite.
        let flat = History::new(0, 60, vec![2.0; 6]);
        assert_eq!(
            worst_window(&flat, 1, target, &[2.0; 4], 2).map(|w| w.ratio),
            Some(1.0)
        );
        assert_eq!(
            worst_window(&flat, 1, target, &[2.0, 2.0, 2.5, 2.0], 2).map(|w| w.ratio),
            Some(f64::INFINITY)
        );
        // Origin 4's target bucket is missing: the window of origins 3 and 4 counts with
        // half its origins scored (origin 3: 5 off where persistence is 1 off).
        let gap = History::new(0, 60, vec![1.0, 2.0, 3.0, 5.0, 4.0, f64::NAN]);
        let worst = worst_window(&gap, 3, target, &[9.0, 9.0], 2);
        assert_eq!(worst.map(|w| (w.origin, w.ratio)), Some((3, 5.0)));
    }

    #[test]
    fn the_spread_reads_the_sorted_ratios() {
        let at = |ratio: f64| Window {
            ratio,
            origin: 0,
            mae: 0.0,
            persistence_mae: 0.0,
        };
        // Twenty windows: 0.5, 0.5625, …, 1.625 (given in reverse), the worst infinite.
        let mut all: Vec<Window> = (0..19)
            .rev()
            .map(|i| at(0.5 + 0.0625 * f64::from(i)))
            .collect();
        all.push(at(f64::INFINITY));
        let spread = Spread::of(&all).unwrap_or_else(|| panic!("no spread"));
        assert_eq!(spread.windows, 20);
        assert_eq!((spread.median, spread.p90), (1.125, 1.625));
        assert_eq!(spread.p99, f64::INFINITY);
        // Above 1.1: 1.125 … 1.625 (9) and ∞; above 1: 1.0625 … 1.625 (10) and ∞.
        assert_eq!((spread.above_1_1, spread.above_1), (0.5, 0.55));
        assert_eq!(worst(&all).map(|w| w.ratio), Some(f64::INFINITY));
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(worst(&[]), None);
    }
}
