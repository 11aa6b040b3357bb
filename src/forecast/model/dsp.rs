//! `dsp` / `dsp-max`: period detection by FFT in the spirit of Crane's `pkg/prediction/dsp`,
//! then each bucket is forecast from the same bucket in the last 3 periods (mean or max);
//! with no period found the model forecasts persistence.
//!
//! Detection at fit, on the newest 15 days: data before a gap longer than an hour is dropped,
//! gaps are filled, values outside [P0.1, P99.9] are replaced by the previous value; the
//! signal is cut to whole weeks (≥ 2 weeks) or whole days; periodogram bins above the 99th
//! percentile of the maximum power of 100 random permutations give candidate periods N/k;
//! candidates within 2 % of one day or one week that are a local peak of the ACF are
//! accepted, and the one with the highest ACF wins.

use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

use super::{DAY, buckets_in, check_step, filled_tail, last_present, max_steps, targets_from_path};
use crate::forecast::{Fitted, History, Model, ModelError, Target};

/// How the last periods are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Estimator {
    /// Mean of the values one, two and three periods earlier.
    Mean,
    /// Their maximum (Crane's `maxValue`, margin 0).
    Max,
}

/// The DSP forecaster.
#[derive(Debug, Clone)]
pub struct Dsp {
    /// How periods are combined.
    pub estimator: Estimator,
    /// Periods combined.
    pub periods: usize,
    /// Seconds of history period detection reads.
    pub window_seconds: i64,
}

impl Dsp {
    /// Crane's defaults with the given estimator.
    pub fn new(estimator: Estimator) -> Self {
        Self {
            estimator,
            periods: 3,
            window_seconds: 15 * DAY,
        }
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let low = pos.floor() as usize;
    let high = pos.ceil() as usize;
    sorted[low] + (sorted[high] - sorted[low]) * (pos - low as f64)
}

/// Power spectrum (bins 1..N/2) of the mean-removed signal.
fn periodogram(signal: &[f64], planner: &mut FftPlanner<f64>) -> Vec<f64> {
    let n = signal.len();
    let mean = signal.iter().sum::<f64>() / n as f64;
    let mut buffer: Vec<Complex<f64>> = signal
        .iter()
        .map(|&v| Complex::new(v - mean, 0.0))
        .collect();
    planner.plan_fft_forward(n).process(&mut buffer);
    buffer[1..n / 2]
        .iter()
        .map(|c| c.norm_sqr() / n as f64)
        .collect()
}

/// Autocorrelation at `lag`.
fn acf(signal: &[f64], lag: usize) -> f64 {
    let n = signal.len();
    if lag >= n {
        return 0.0;
    }
    let mean = signal.iter().sum::<f64>() / n as f64;
    let var: f64 = signal.iter().map(|v| (v - mean).powi(2)).sum();
    if var <= 0.0 {
        return 0.0;
    }
    let cov: f64 = (0..n - lag)
        .map(|i| (signal[i] - mean) * (signal[i + lag] - mean))
        .sum();
    cov / var
}

/// The detected period in buckets (one day or one week), if any. `signal` is gap-free.
pub fn detect_period(signal: &[f64], step: i64) -> Option<usize> {
    let day = buckets_in(DAY, step)?;
    let week = 7 * day;
    let usable = if signal.len() >= 2 * week {
        signal.len() / week * week
    } else {
        signal.len() / day * day
    };
    if usable < 2 * day {
        return None;
    }
    let signal = &signal[signal.len() - usable..];
    let mut planner = FftPlanner::new();
    let power = periodogram(signal, &mut planner);
    // Seeded: the same history always gives the same threshold.
    let mut rng = fastrand::Rng::with_seed(0x9E37_79B9_7F4A_7C15);
    let mut shuffled = signal.to_vec();
    let mut maxima: Vec<f64> = (0..100)
        .map(|_| {
            rng.shuffle(&mut shuffled);
            periodogram(&shuffled, &mut planner)
                .into_iter()
                .fold(0.0, f64::max)
        })
        .collect();
    maxima.sort_by(f64::total_cmp);
    let threshold = quantile(&maxima, 0.99);
    let mut best: Option<(usize, f64)> = None;
    for (i, &p) in power.iter().enumerate() {
        if p <= threshold {
            continue;
        }
        let k = i + 1;
        let candidate = usable as f64 / k as f64;
        for period in [day, week] {
            if (candidate - period as f64).abs() > 0.02 * period as f64 || 2 * period > usable {
                continue;
            }
            let here = acf(signal, period);
            let spread = (period / 20).max(1);
            let peak = here >= acf(signal, period - spread) && here >= acf(signal, period + spread);
            if peak && here > 0.0 && best.is_none_or(|(_, a)| here > a) {
                best = Some((period, here));
            }
        }
    }
    best.map(|(period, _)| period)
}

/// The gap-filled, clipped newest part of `history` Crane would analyse, and the clip bounds.
fn prepare(history: &History, window: usize) -> Option<(Vec<f64>, f64, f64)> {
    let hour = buckets_in(3600, history.step).unwrap_or(1).max(1);
    let len = history.len().min(window);
    let start = history.len() - len;
    // Drop everything before the last gap longer than an hour.
    let mut run = 0;
    let mut cut = start;
    for (i, v) in history.values.iter().enumerate().skip(start) {
        if v.is_nan() {
            run += 1;
            if run > hour {
                cut = i + 1;
            }
        } else {
            run = 0;
        }
    }
    let mut values = filled_tail(history, history.len() - cut)?;
    if values.len() < 2 {
        return None;
    }
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    let (low, high) = (quantile(&sorted, 0.001), quantile(&sorted, 0.999));
    for i in 1..values.len() {
        if values[i] < low || values[i] > high {
            values[i] = values[i - 1];
        }
    }
    Some((values, low, high))
}

impl Model for Dsp {
    fn name(&self) -> &str {
        match self.estimator {
            Estimator::Mean => "dsp",
            Estimator::Max => "dsp-max",
        }
    }

    fn fit(&self, history: &History, targets: &[Target]) -> Result<Box<dyn Fitted>, ModelError> {
        let window = buckets_in(self.window_seconds, history.step).unwrap_or(history.len());
        let prepared = prepare(history, window);
        let period = prepared
            .as_ref()
            .and_then(|(signal, _, _)| detect_period(signal, history.step))
            .filter(|&p| p >= max_steps(targets));
        let (low, high) = prepared.map_or((f64::MIN, f64::MAX), |(_, l, h)| (l, h));
        Ok(Box::new(FittedDsp {
            step: history.step,
            period,
            periods: self.periods.max(1),
            estimator: self.estimator,
            low,
            high,
            targets: targets.to_vec(),
        }))
    }
}

/// A fitted DSP model: the detected period (buckets) or none.
#[derive(Debug, Clone)]
pub struct FittedDsp {
    step: i64,
    /// The detected period in buckets; `None` forecasts persistence.
    pub period: Option<usize>,
    periods: usize,
    estimator: Estimator,
    low: f64,
    high: f64,
    targets: Vec<Target>,
}

impl Fitted for FittedDsp {
    fn predict(&self, history: &History) -> Result<Vec<f64>, ModelError> {
        check_step(self.step, history)?;
        let persistence = || {
            let last = last_present(history).ok_or(ModelError::TooShort { needed: 1, have: 0 })?;
            Ok(vec![last.max(0.0); self.targets.len()])
        };
        let Some(period) = self.period else {
            return persistence();
        };
        let needed = self.periods * period;
        let Some(tail) = filled_tail(history, needed) else {
            return persistence();
        };
        let horizon = max_steps(&self.targets);
        // tail[needed - 1] is the origin; bucket origin + i, k periods earlier, is
        // tail[needed - 1 + i - k·period].
        let path: Vec<f64> = (1..=horizon)
            .map(|i| {
                let seen = (1..=self.periods)
                    .map(|k| tail[needed - 1 + i - k * period].clamp(self.low, self.high));
                match self.estimator {
                    Estimator::Mean => seen.sum::<f64>() / self.periods as f64,
                    Estimator::Max => seen.fold(f64::MIN, f64::max),
                }
            })
            .collect();
        targets_from_path(&self.targets, &path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic noise in [-1, 1).
    fn noise(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..n).map(|_| rng.f64() * 2.0 - 1.0).collect()
    }

    #[test]
    fn a_daily_cycle_is_detected_and_noise_is_rejected() {
        // 15-minute buckets: 96 per day, 10 days.
        let n = 960;
        let jitter = noise(n, 7);
        let daily: Vec<f64> = (0..n)
            .map(|i| 10.0 + 4.0 * (std::f64::consts::TAU * i as f64 / 96.0).sin() + jitter[i])
            .collect();
        assert_eq!(detect_period(&daily, 900), Some(96));
        let flat: Vec<f64> = noise(n, 11).into_iter().map(|v| 10.0 + v).collect();
        assert_eq!(detect_period(&flat, 900), None);
    }

    #[test]
    fn forecasts_the_mean_of_the_last_three_days_or_persistence() {
        let n = 960;
        let daily: Vec<f64> = (0..n)
            .map(|i| 10.0 + 4.0 * (std::f64::consts::TAU * i as f64 / 96.0).sin())
            .collect();
        let history = History::new(0, 900, daily.clone());
        let fitted = Dsp::new(Estimator::Mean)
            .fit(&history, &[Target::Point(4)])
            .unwrap_or_else(|e| panic!("{e}"));
        let forecast = fitted.predict(&history).unwrap_or_else(|e| panic!("{e}"));
        let expected = (daily[n + 3 - 96] + daily[n + 3 - 192] + daily[n + 3 - 288]) / 3.0;
        assert!((forecast[0] - expected).abs() < 1e-9, "{forecast:?}");

        let flat = History::new(0, 900, vec![3.0; n]);
        let fitted = Dsp::new(Estimator::Max)
            .fit(&flat, &[Target::Point(4)])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fitted.predict(&flat), Ok(vec![3.0]));
    }
}
