//! `holt-winters`: additive daily-seasonal exponential smoothing with a damped additive trend
//! (ETS(A,Ad,A)) on block means (5 minutes by default; the native bucket when it is longer).
//!
//! Fit: the smoothing parameters (α, β, γ, φ) minimise the one-step squared error over the
//! newest `window` of the history (Nelder–Mead). Predict: the fixed-parameter recursions are
//! rerun over the newest `window` of the given history, on blocks re-phased so the last
//! block ends at the origin (no fresh bucket is ignored); a bucket's forecast is its block's.

use super::{DAY, buckets_in, check_step, filled_tail, max_steps, targets_from_path};
use crate::forecast::{Fitted, History, Model, ModelError, Target};

/// The Holt–Winters forecaster.
#[derive(Debug, Clone)]
pub struct HoltWinters {
    /// Block length in seconds the recursions run on (rounded to whole buckets).
    pub block_seconds: i64,
    /// Seconds of history the fit and each forecast run over.
    pub window_seconds: i64,
    /// Whether the trend is used (damped); `false` is ETS(A,N,A).
    pub trend: bool,
}

impl Default for HoltWinters {
    fn default() -> Self {
        Self {
            block_seconds: 300,
            window_seconds: 14 * DAY,
            trend: true,
        }
    }
}

/// Smoothing parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Smoothing {
    /// Level.
    pub alpha: f64,
    /// Trend.
    pub beta: f64,
    /// Season.
    pub gamma: f64,
    /// Trend damping.
    pub phi: f64,
}

/// Runs the recursions over `y` (period `m`); returns the one-step squared error sum and the
/// forecast path `1..=ahead` blocks after the last value.
fn run(y: &[f64], m: usize, s: Smoothing, ahead: usize) -> (f64, Vec<f64>) {
    // Heuristic start: a straight line through the means of the first two periods; the
    // season is the mean detrended value of each position over those periods; the
    // recursions start at t = m with the line's level at m − 1.
    let first = y[..m].iter().sum::<f64>() / m as f64;
    let second = y[m..2 * m].iter().sum::<f64>() / m as f64;
    let slope = (second - first) / m as f64;
    let line = |t: usize| first + slope * (t as f64 - (m as f64 - 1.0) / 2.0);
    let mut level = line(m - 1);
    let mut trend = if s.beta > 0.0 { slope } else { 0.0 };
    let mut season: Vec<f64> = (0..m)
        .map(|k| ((y[k] - line(k)) + (y[k + m] - line(k + m))) / 2.0)
        .collect();
    let mut sse = 0.0;
    for (t, &v) in y.iter().enumerate().skip(m) {
        let k = t % m;
        let forecast = level + s.phi * trend + season[k];
        let error = v - forecast;
        sse += error * error;
        let previous = level;
        level = s.alpha * (v - season[k]) + (1.0 - s.alpha) * (level + s.phi * trend);
        trend = s.beta * (level - previous) + (1.0 - s.beta) * s.phi * trend;
        season[k] = s.gamma * (v - level) + (1.0 - s.gamma) * season[k];
    }
    let mut path = Vec::with_capacity(ahead);
    let mut damp = 0.0;
    let mut power = 1.0;
    for i in 1..=ahead {
        power *= s.phi;
        damp += power;
        path.push(level + damp * trend + season[(y.len() + i - 1) % m]);
    }
    (sse, path)
}

/// Nelder–Mead minimisation of `f` over `[0, 1]^n` (clamped), from `start`.
fn nelder_mead(f: impl Fn(&[f64]) -> f64, start: &[f64], iterations: usize) -> Vec<f64> {
    let n = start.len();
    let clamp = |x: Vec<f64>| -> Vec<f64> { x.into_iter().map(|v| v.clamp(0.0, 1.0)).collect() };
    let mut simplex: Vec<(Vec<f64>, f64)> = Vec::with_capacity(n + 1);
    simplex.push((start.to_vec(), f(start)));
    for i in 0..n {
        let mut x = start.to_vec();
        x[i] = if x[i] > 0.5 { x[i] - 0.2 } else { x[i] + 0.2 };
        let x = clamp(x);
        let v = f(&x);
        simplex.push((x, v));
    }
    for _ in 0..iterations {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let centroid: Vec<f64> = (0..n)
            .map(|d| simplex[..n].iter().map(|(x, _)| x[d]).sum::<f64>() / n as f64)
            .collect();
        let worst = simplex[n].clone();
        let along = |t: f64| -> Vec<f64> {
            clamp(
                centroid
                    .iter()
                    .zip(&worst.0)
                    .map(|(c, w)| c + t * (c - w))
                    .collect(),
            )
        };
        let reflected = along(1.0);
        let fr = f(&reflected);
        if fr < simplex[0].1 {
            let expanded = along(2.0);
            let fe = f(&expanded);
            simplex[n] = if fe < fr {
                (expanded, fe)
            } else {
                (reflected, fr)
            };
        } else if fr < simplex[n - 1].1 {
            simplex[n] = (reflected, fr);
        } else {
            let contracted = along(-0.5);
            let fc = f(&contracted);
            if fc < worst.1 {
                simplex[n] = (contracted, fc);
            } else {
                let best = simplex[0].0.clone();
                for entry in simplex.iter_mut().skip(1) {
                    let x: Vec<f64> = entry
                        .0
                        .iter()
                        .zip(&best)
                        .map(|(x, b)| b + 0.5 * (x - b))
                        .collect();
                    let v = f(&x);
                    *entry = (x, v);
                }
            }
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    simplex.swap_remove(0).0
}

/// Block means of `values` in blocks of `block` buckets, the last block ending at the end.
fn blocks(values: &[f64], block: usize) -> Vec<f64> {
    let skip = values.len() % block;
    values[skip..]
        .chunks_exact(block)
        .map(|c| c.iter().sum::<f64>() / block as f64)
        .collect()
}

/// Block length, seasonal period (in blocks) and window (in buckets) for a step.
fn geometry(model: &HoltWinters, step: i64) -> Result<(usize, usize, usize), ModelError> {
    let block = usize::try_from((model.block_seconds / step).max(1)).unwrap_or(1);
    let period = buckets_in(DAY, step * block as i64).ok_or_else(|| {
        ModelError::Invalid(format!(
            "a block of {}s does not divide a day",
            step * block as i64
        ))
    })?;
    let window = buckets_in(model.window_seconds, step)
        .unwrap_or(0)
        .max(2 * period * block + block);
    Ok((block, period, window))
}

impl Model for HoltWinters {
    fn name(&self) -> &str {
        "holt-winters"
    }

    fn fit(&self, history: &History, targets: &[Target]) -> Result<Box<dyn Fitted>, ModelError> {
        let (block, period, window) = geometry(self, history.step)?;
        let needed = 2 * period * block + block;
        let len = history.len().min(window);
        if len < needed {
            return Err(ModelError::TooShort {
                needed,
                have: history.len(),
            });
        }
        let values = filled_tail(history, len).ok_or(ModelError::TooShort { needed, have: 0 })?;
        let y = blocks(&values, block);
        let trend = self.trend;
        let smoothing = |x: &[f64]| Smoothing {
            alpha: x[0],
            beta: if trend { x[1] * x[0] } else { 0.0 },
            gamma: x[2] * (1.0 - x[0]),
            phi: if trend { 0.8 + 0.18 * x[3] } else { 1.0 },
        };
        let objective = |x: &[f64]| run(&y, period, smoothing(x), 0).0;
        let best = nelder_mead(objective, &[0.3, 0.1, 0.1, 0.5], 300);
        Ok(Box::new(FittedHoltWinters {
            step: history.step,
            block,
            period,
            window,
            smoothing: smoothing(&best),
            targets: targets.to_vec(),
        }))
    }
}

/// A fitted Holt–Winters model: its parameters and geometry.
#[derive(Debug, Clone)]
pub struct FittedHoltWinters {
    step: i64,
    block: usize,
    period: usize,
    window: usize,
    /// The estimated smoothing parameters.
    pub smoothing: Smoothing,
    targets: Vec<Target>,
}

impl Fitted for FittedHoltWinters {
    fn predict(&self, history: &History) -> Result<Vec<f64>, ModelError> {
        check_step(self.step, history)?;
        let needed = 2 * self.period * self.block + self.block;
        let len = history.len().min(self.window);
        if len < needed {
            return Err(ModelError::TooShort {
                needed,
                have: history.len(),
            });
        }
        let values = filled_tail(history, len).ok_or(ModelError::TooShort { needed, have: 0 })?;
        let y = blocks(&values, self.block);
        let horizon = max_steps(&self.targets);
        let ahead = horizon.div_ceil(self.block);
        let (_, block_path) = run(&y, self.period, self.smoothing, ahead);
        let path: Vec<f64> = (0..horizon).map(|i| block_path[i / self.block]).collect();
        targets_from_path(&self.targets, &path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recursions_track_a_seasonal_series_with_a_trend() {
        // Hourly buckets (blocks of one bucket), 24 per day, 6 days: level 100 + 0.5/h, a
        // daily wave of amplitude 20.
        let truth = |i: usize| {
            100.0 + 0.5 * i as f64 + 20.0 * (std::f64::consts::TAU * i as f64 / 24.0).sin()
        };
        let history = History::new(0, 3600, (0..144).map(truth).collect());
        let model = HoltWinters {
            block_seconds: 3600,
            window_seconds: 6 * DAY,
            trend: true,
        };
        let fitted = model
            .fit(&history, &[Target::Point(1), Target::Point(3)])
            .unwrap_or_else(|e| panic!("{e}"));
        let forecast = fitted.predict(&history).unwrap_or_else(|e| panic!("{e}"));
        assert!((forecast[0] - truth(144)).abs() < 1.5, "{forecast:?}");
        assert!((forecast[1] - truth(146)).abs() < 2.5, "{forecast:?}");
    }

    #[test]
    fn nelder_mead_finds_a_quadratic_minimum() {
        let best = nelder_mead(
            |x| (x[0] - 0.3).powi(2) + (x[1] - 0.7).powi(2),
            &[0.5, 0.5],
            200,
        );
        assert!(
            (best[0] - 0.3).abs() < 1e-3 && (best[1] - 0.7).abs() < 1e-3,
            "{best:?}"
        );
    }

    #[test]
    fn blocks_end_at_the_origin() {
        assert_eq!(blocks(&[9.0, 1.0, 3.0, 5.0, 7.0], 2), vec![2.0, 6.0]);
    }
}
