//! Forecasting models, a pure library: regular histories, the model interface every
//! forecaster implements, the linear model form shared by the built-in `linear` model and its
//! ONNX export, the guard, rolling evaluation and trace files. It depends on nothing else in
//! augur; serving forecasts as twin metrics is the job of the `twin` module above it.
//!
//! Conventions used by every model, the backtest and the serving engine:
//! - a [`History`] is a regular grid of buckets; `values[i]` is the mean rate of the bucket
//!   starting at `start + i * step`; a missing bucket is `NaN` (never zero);
//! - the *origin* of a forecast is the last bucket of the history (it is complete);
//! - [`Target::Point`]`(h)` is the value of bucket `origin + h` and [`Target::Max`]`(h)` the
//!   maximum over buckets `origin + 1 ..= origin + h`, both in steps;
//! - forecasts are clipped at 0.

pub mod evaluate;
pub mod gaps;
pub mod guard;
pub mod model;
pub mod onnx;
pub mod resolution;
pub mod serve;
pub mod shift;
pub mod trace;
pub mod week;
pub mod window;

use std::fmt;

/// A regular time series: `values[i]` belongs to the bucket starting at `start + i * step`.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// Unix seconds of the first bucket's start.
    pub start: i64,
    /// Bucket length in seconds (> 0).
    pub step: i64,
    /// One value per bucket; `NaN` marks a missing bucket.
    pub values: Vec<f64>,
}

/// Most buckets `augur train` and `augur backtest` read from Prometheus in one run (40 MB of
/// `f64`, 500 range queries; a year at 1 minute is 525,600).
pub const MAX_RANGE_BUCKETS: i64 = 5_000_000;

/// The error for a `--start`..`--end` range of `buckets` steps of `step` seconds beyond
/// [`MAX_RANGE_BUCKETS`]; `None` within it.
pub fn range_too_long(buckets: i64, step: i64) -> Option<String> {
    (buckets > MAX_RANGE_BUCKETS).then(|| {
        format!(
            "--start..--end at --step {step}s is {buckets} buckets, more than {MAX_RANGE_BUCKETS} (a year at 1m is 525600): shorten the range or use a longer step"
        )
    })
}

/// A sample from Prometheus as a bucket value: non-finite samples (a ratio over zero gives
/// `NaN` or `+Inf`) are missing buckets, not values a model could learn from.
pub fn bucket_value(sample: f64) -> f64 {
    if sample.is_finite() { sample } else { f64::NAN }
}

/// A forecast clipped at 0; `NaN` stays `NaN` (`f64::max` would make it 0, a forecast that
/// looks valid), so callers can refuse it.
pub fn clip_at_zero(forecast: f64) -> f64 {
    if forecast.is_nan() {
        forecast
    } else {
        forecast.max(0.0)
    }
}

/// The median of `values` (no `NaN` among them; reordered), the mean of the two middle ones
/// for an even count; `NaN` when there are none.
pub fn median(values: &mut [f64]) -> f64 {
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    let (below, &mut middle, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        middle
    } else {
        let lower = below.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lower + middle) / 2.0
    }
}

impl History {
    /// A history of `values` starting at `start` with buckets of `step` seconds.
    pub fn new(start: i64, step: i64, values: Vec<f64>) -> Self {
        Self {
            start,
            step,
            values,
        }
    }

    /// Number of buckets (missing ones included).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when there is no bucket at all.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Unix seconds of the start of the last bucket (the forecast origin); `None` if empty.
    pub fn origin(&self) -> Option<i64> {
        let last = i64::try_from(self.values.len().checked_sub(1)?).ok()?;
        Some(self.start + last * self.step)
    }

    /// The first `len` buckets (all of them if `len` is larger), as a new history.
    pub fn prefix(&self, len: usize) -> History {
        History::new(
            self.start,
            self.step,
            self.values[..len.min(self.values.len())].to_vec(),
        )
    }

    /// Values with each missing bucket replaced by the previous present value (causal);
    /// leading missing buckets become the first present value, or 0 if there is none.
    pub fn forward_filled(&self) -> Vec<f64> {
        let first = self
            .values
            .iter()
            .copied()
            .find(|v| !v.is_nan())
            .unwrap_or(0.0);
        let mut last = first;
        self.values
            .iter()
            .map(|&v| {
                if !v.is_nan() {
                    last = v;
                }
                last
            })
            .collect()
    }

    /// Phase of the bucket starting at `t` within the UTC day and the week (Monday 00:00
    /// UTC = 0), each in [0, 1).
    pub fn phase(t: i64) -> Phase {
        Phase {
            day: t.rem_euclid(DAY_SECONDS) as f64 / DAY_SECONDS as f64,
            week: seconds_into_week(t) as f64 / WEEK_SECONDS as f64,
        }
    }
}

/// Seconds in a UTC day.
const DAY_SECONDS: i64 = 86_400;

/// Seconds in a week.
pub const WEEK_SECONDS: i64 = 7 * DAY_SECONDS;

/// Seconds from the start of `t`'s week (Monday 00:00 UTC) to `t` (Unix seconds), in
/// [0, [`WEEK_SECONDS`]).
pub fn seconds_into_week(t: i64) -> i64 {
    // 1970-01-01 was a Thursday: Monday 00:00 UTC is 4 days after the epoch.
    (t - 4 * DAY_SECONDS).rem_euclid(WEEK_SECONDS)
}

/// Where a bucket falls in the day and the week, each as a fraction in [0, 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// Fraction of the UTC day.
    pub day: f64,
    /// Fraction of the week starting Monday 00:00 UTC.
    pub week: f64,
}

/// What a forecast predicts, in steps after the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// The value of bucket `origin + h`.
    Point(usize),
    /// The maximum over buckets `origin + 1 ..= origin + h`.
    Max(usize),
}

impl Target {
    /// Steps ahead this target reaches.
    pub fn steps(self) -> usize {
        match self {
            Target::Point(h) | Target::Max(h) => h,
        }
    }

    /// The target's value read from a forecast path (`path[0]` = origin + 1).
    pub fn from_path(self, path: &[f64]) -> Option<f64> {
        match self {
            Target::Point(h) => path.get(h.checked_sub(1)?).copied(),
            Target::Max(h) => {
                let window = path.get(..h)?;
                (h > 0).then(|| window.iter().copied().fold(f64::NEG_INFINITY, f64::max))
            }
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Point(h) => write!(f, "point@{h}"),
            Target::Max(h) => write!(f, "max@{h}"),
        }
    }
}

/// Why a model could not fit or forecast.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// The history is shorter than the model needs.
    #[error("history too short: {have} buckets, the model needs {needed}")]
    TooShort { needed: usize, have: usize },
    /// The history's step does not match the model's.
    #[error("history step is {have}s, the model was made for {expected}s")]
    StepMismatch { expected: i64, have: i64 },
    /// A target the model was not fitted for, or cannot produce.
    #[error("the model cannot forecast {0}")]
    UnsupportedTarget(Target),
    /// Too many of the buckets the model reads are missing (a gap in the data), with why.
    #[error("{0}")]
    Gap(String),
    /// Anything else, with the reason.
    #[error("{0}")]
    Invalid(String),
}

/// A forecasting method. `fit` is the expensive part (done rarely, e.g. daily); the
/// returned [`Fitted`] forecasts cheaply from any newer history without re-estimating.
pub trait Model: Send + Sync {
    /// The model's name as written in config and tables (`seasonal-naive`, `linear`, …).
    fn name(&self) -> &str;

    /// Estimates the model on `history` for the given targets.
    fn fit(&self, history: &History, targets: &[Target]) -> Result<Box<dyn Fitted>, ModelError>;
}

/// A fitted model: forecasts the targets it was fitted for from the newest history.
pub trait Fitted: Send + Sync {
    /// One value per target (same order as at fit), clipped at 0. `history` ends at the
    /// origin and may extend past the data the model was fitted on.
    fn predict(&self, history: &History) -> Result<Vec<f64>, ModelError>;

    /// How many of the newest buckets [`Fitted::predict`] reads (lag 0, the origin, counts:
    /// at least 1) when they are present; `None`: any of the history. A caller may pass
    /// just that tail, extended back to the last present bucket before it, so that a search
    /// backwards for a present value (a forward fill's seed, the last observed value) finds
    /// what it would find in the whole history; the forecast is then the same.
    fn lookback(&self) -> Option<usize> {
        None
    }

    /// [`Fitted::predict`] for many series at once (the ONNX model batches them).
    fn predict_batch(&self, histories: &[&History]) -> Vec<Result<Vec<f64>, ModelError>> {
        histories.iter().map(|h| self.predict(h)).collect()
    }
}

/// How a value is transformed before a linear model reads it (and inverted after).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transform {
    /// Values as they are.
    Identity,
    /// `ln(1 + x / scale)`; inverted with `scale · (exp(y) - 1)`. Relative changes well
    /// above `scale`, absolute ones well below it. The built-in model sets `scale` from the
    /// history's mean, so the model does not depend on the metric's unit (req/s or req/min).
    Log1p {
        /// Positive and finite.
        scale: f64,
    },
}

impl Transform {
    /// `ln(1 + x)`: [`Transform::Log1p`] with a scale of 1.
    pub const LOG1P: Transform = Transform::Log1p { scale: 1.0 };
}

/// Which cycle a calendar feature follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// [`Phase::day`].
    Day,
    /// [`Phase::week`].
    Week,
}

/// One input of a [`LinearSpec`], computed from the transformed, forward-filled lookback
/// window (lag 0 = the origin bucket) and the origin's [`Phase`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Feature {
    /// The value `lag` buckets before the origin.
    Lag(usize),
    /// Maximum over lags `from ..= to` (`from <= to`).
    WindowMax { from: usize, to: usize },
    /// Mean over lags `from ..= to` (`from <= to`).
    WindowMean { from: usize, to: usize },
    /// `sin(2π · harmonic · phase)` of the origin.
    Sin { period: Period, harmonic: u32 },
    /// `cos(2π · harmonic · phase)` of the origin.
    Cos { period: Period, harmonic: u32 },
}

impl Feature {
    /// Whether the feature is a level of the load (a lag or a window of lags): `linear` fits
    /// it relative to the origin value, and a shift of every value shifts it alike.
    pub fn is_level(self) -> bool {
        matches!(
            self,
            Feature::Lag(_) | Feature::WindowMax { .. } | Feature::WindowMean { .. }
        )
    }
}

/// A fitted linear forecaster in a form both the Rust model and the ONNX exporter evaluate.
///
/// For each target `j`:
/// `z_j = u0 + bias[j] + Σ_i weights[j][i] · (f_i − mean[i]) / scale[i]`, where `u0` is the
/// transformed origin value and `f_i` the features; the forecast is
/// `max(0, inverse_transform(z_j))`, raised to the lowest of the last `floor` raw values
/// (the origin's included) when that is higher.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearSpec {
    /// Bucket length the model was fitted for, in seconds.
    pub step_seconds: i64,
    /// Buckets of history the features read (the largest lag + 1).
    pub lookback: usize,
    /// Applied to every value before the features are computed.
    pub transform: Transform,
    /// The inputs, in column order.
    pub features: Vec<Feature>,
    /// Per-feature mean used for standardisation.
    pub mean: Vec<f64>,
    /// Per-feature scale used for standardisation (never 0).
    pub scale: Vec<f64>,
    /// What each output predicts.
    pub targets: Vec<Target>,
    /// `weights[target][feature]`.
    pub weights: Vec<Vec<f64>>,
    /// One intercept per target.
    pub bias: Vec<f64>,
    /// Buckets back from the origin (the origin included) whose lowest value no forecast
    /// goes below; 0: no floor. `linear` sets one day (less on a shorter history).
    pub floor: usize,
}

impl LinearSpec {
    /// Buckets of history a forecast reads: the features' lookback, or the floor's span
    /// when that is longer (the ONNX export's `values` width).
    pub fn window(&self) -> usize {
        self.lookback.max(self.floor)
    }

    /// [`LinearSpec::read_ranges`] with the floor's lags `0 ..= floor - 1` (the ONNX
    /// contract's `augur.reads`).
    pub fn input_ranges(&self) -> Vec<(usize, usize)> {
        let mut lags = self.lags_read();
        lags.extend(0..self.floor);
        ranges(lags)
    }

    /// The lags the features read, with lag 0 (the origin, `u0`) always.
    pub fn lags_read(&self) -> std::collections::BTreeSet<usize> {
        let mut used = std::collections::BTreeSet::from([0]);
        for feature in &self.features {
            match *feature {
                Feature::Lag(lag) => {
                    used.insert(lag);
                }
                Feature::WindowMax { from, to } | Feature::WindowMean { from, to } => {
                    used.extend(from..=to);
                }
                Feature::Sin { .. } | Feature::Cos { .. } => {}
            }
        }
        used
    }

    /// [`LinearSpec::lags_read`] as inclusive ranges `(from, to)` of consecutive lags,
    /// ascending.
    pub fn read_ranges(&self) -> Vec<(usize, usize)> {
        ranges(self.lags_read())
    }
}

/// Ascending lags as inclusive ranges `(from, to)` of consecutive ones.
fn ranges(lags: std::collections::BTreeSet<usize>) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for lag in lags {
        match out.last_mut() {
            Some((_, to)) if *to + 1 == lag => *to = lag,
            _ => out.push((lag, lag)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::History;

    #[test]
    fn the_origin_is_the_last_bucket_and_an_empty_history_has_none() {
        assert_eq!(
            History::new(600, 60, vec![1.0, f64::NAN, 2.0]).origin(),
            Some(720)
        );
        assert_eq!(History::new(600, 60, vec![f64::NAN]).origin(), Some(600));
        // Before: Some(540), a bucket before the history's start.
        assert_eq!(History::new(600, 60, Vec::new()).origin(), None);
    }
}
