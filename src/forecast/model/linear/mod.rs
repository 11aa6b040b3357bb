//! `linear`: a direct linear forecaster (one weight row per target) fitted by ridge or
//! L1 (median) regression on lag, seasonal-lag, window and calendar features, expressed
//! as a [`LinearSpec`] and evaluated by [`evaluate_spec`] (the same formula the ONNX export
//! reproduces).
//!
//! Fitting, for each target `j`:
//! - values are forward-filled and transformed (`Identity` or `Log1p`, chosen on the
//!   validation days unless fixed); the regression target is the change from the origin,
//!   `u[T] - u0` (point) or `max(u[t+1..=T]) - u0` (max);
//! - level features (lags, windows) enter as differences from the origin value, so a level
//!   shift does not move the forecast (in log space: a multiplicative change); calendar
//!   features (sin/cos of the origin's time of day/week) enter as they are;
//! - features: the recent lags, recent window means/maxima, and one day (and one week, when
//!   the history holds more than two weeks) before the target: the 5 buckets around
//!   `T - period`, the bucket at `t - period`, and the max and mean of `(t - period, T - period]`;
//! - rows whose target or recent lags touch a missing bucket are dropped (older buckets,
//!   read by seasonal and window features, are forward-filled as at predict time);
//! - the penalty is chosen per target on the last two days before the fit (`validation`;
//!   one on a short history) by the MAE of the forecasts, then the model is refitted on
//!   every row.
//!
//! The fitted model is rewritten into the raw-feature form of [`LinearSpec`]:
//! `z_j = u0 + bias[j] + Σ_i weights[j][i] · (f_i − mean[i]) / scale[i]`, with a floor: no
//! forecast below the lowest value of the last day ([`LinearSpec::floor`]).
//!
//! Files, one step each: [`design`] (which features, per target), [`rows`] (training rows
//! from a history), [`solve`] (weighted ridge by Cholesky, IRLS for the L1 and pinball
//! losses), [`validation`] (the penalty chosen on the validation days), [`raw_form`] (the
//! rewrite into a [`LinearSpec`]), [`fit`] (the steps together, and the transform chosen),
//! [`spec`] (evaluating a spec); this file holds the options and the [`Model`] and [`Fitted`]
//! implementations. When a forecast is refused for missing data is [`crate::forecast::gaps`].

mod design;
mod fit;
mod raw_form;
mod rows;
mod solve;
mod spec;
#[cfg(test)]
mod tests;
mod validation;

pub use fit::fit_linear;
pub use spec::{evaluate_spec, feature_value, inverse_transform, transform_value};

use super::{DAY, check_step, filled_tail};
use crate::forecast::gaps::{
    RECENT_BUCKETS, check_recent_gap, check_seasonal_gap, seasonal_ranges,
};
use crate::forecast::{Fitted, History, LinearSpec, Model, ModelError, Target, Transform};

/// Which loss the regression minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Least squares (ridge).
    Squared,
    /// Least absolute deviations (the conditional median; fitted by IRLS), ridge-penalised.
    Absolute,
    /// Point targets as [`Loss::Absolute`]; max targets by the pinball loss at this
    /// percentile (the conditional upper quantile; IRLS with asymmetric weights), so the
    /// max-over-horizon forecast an autoscaler reads covers most bursts. The penalty and
    /// transform are chosen by the same pinball loss.
    MaxQuantile(u8),
}

impl Loss {
    /// The quantile (0..1) target `target` is fitted for; `None`: the median (L1) or the
    /// mean (squared).
    fn quantile(self, target: Target) -> Option<f64> {
        match (self, target) {
            (Loss::MaxQuantile(q), Target::Max(_)) => Some(f64::from(q.min(99)) / 100.0),
            _ => None,
        }
    }
}

/// Names of the built-in `linear` variants whose max targets are fitted for an upper
/// quantile, with that percentile.
pub const QUANTILE_VARIANTS: &[(&str, u8)] =
    &[("linear-q75", 75), ("linear-q90", 90), ("linear-q95", 95)];

/// Candidate scales of the log transform, as fractions of the history's mean, per kind of
/// target (benches/README.md, "A log transform that does not depend on the unit").
#[derive(Debug, Clone, PartialEq)]
pub struct LogScales {
    /// For point targets.
    pub point: Vec<f64>,
    /// For max-over-the-horizon targets.
    pub max: Vec<f64>,
}

impl LogScales {
    /// Point targets: `ln(1 + x / (0.05 · mean))`, relative changes above a twentieth of the
    /// mean level (0.03–0.1 are within 0.002 on the shared traces; larger scales lose
    /// WorldCup's growth, and two candidates chosen on the validation days did worse than
    /// one). Max targets: `ln(1 + x / mean)`, nearer the identity: the burst above the level
    /// that the max adds is not in proportion to the level, and this scale is better than
    /// 0.05 on every shared trace, in accuracy and in the worst hour.
    pub fn shipped() -> LogScales {
        LogScales {
            point: vec![0.05],
            max: vec![1.0],
        }
    }

    /// The same candidates for every kind of target.
    pub fn all(fractions: Vec<f64>) -> LogScales {
        LogScales {
            point: fractions.clone(),
            max: fractions,
        }
    }

    /// The candidates for a fit of `targets` (both kinds' when they are mixed), ascending.
    pub fn for_targets(&self, targets: &[Target]) -> Vec<f64> {
        let mut out: Vec<f64> = Vec::new();
        if targets.iter().any(|t| matches!(t, Target::Point(_))) {
            out.extend(&self.point);
        }
        if targets.iter().any(|t| matches!(t, Target::Max(_))) {
            out.extend(&self.max);
        }
        out.sort_by(f64::total_cmp);
        out.dedup();
        out
    }
}

/// How [`fit_linear`] builds and fits the model.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearOptions {
    /// Value transform; `None` picks the best on the validation days of `Identity` and
    /// `Log1p` at each of `log_scales`' candidates for the targets fitted.
    pub transform: Option<Transform>,
    /// Scales of the candidate `Log1p` transforms, as fractions of the history's mean (so
    /// the choice does not depend on the metric's unit).
    pub log_scales: LogScales,
    /// Recent lags used (lag 0 = the origin).
    pub lags: usize,
    /// Recent windows (in buckets, from the origin back) whose mean and max are features.
    pub recent_windows: Vec<usize>,
    /// Whether the one-day-earlier features are used (when the history allows).
    pub daily: bool,
    /// Whether the one-week-earlier features are used (when the history holds more than
    /// two weeks).
    pub weekly: bool,
    /// Days back (1 ..= this) whose smoothed value around the target time is a feature:
    /// the mean over `T − k·day ± seasonal_halfwidth` (when the history allows; 0 = none).
    pub seasonal_days: usize,
    /// Half-width in buckets of those seasonal means.
    pub seasonal_halfwidth: usize,
    /// Candidate ridge penalties (multiplied by the row count on standardised features).
    pub penalties: Vec<f64>,
    /// The loss minimised.
    pub loss: Loss,
    /// Rows used at most (the training rows are thinned evenly beyond this).
    pub max_rows: usize,
    /// Buckets at the end of the history held out to choose the penalty and transform
    /// (`None`: two days, or one when the history leaves too few training rows before them).
    pub validation: Option<usize>,
}

impl Default for LinearOptions {
    fn default() -> Self {
        Self {
            transform: None,
            log_scales: LogScales::shipped(),
            lags: 30,
            recent_windows: vec![60, 240],
            daily: true,
            weekly: true,
            seasonal_days: 0,
            seasonal_halfwidth: 15,
            penalties: vec![1e-4, 1e-3, 1e-2, 1e-1, 1.0],
            loss: Loss::Absolute,
            max_rows: 12_000,
            validation: None,
        }
    }
}

/// The `linear` model: [`fit_linear`] at fit, [`evaluate_spec`] at predict.
#[derive(Debug, Clone, Default)]
pub struct Linear {
    /// How it fits.
    pub options: LinearOptions,
}

impl Model for Linear {
    fn name(&self) -> &str {
        match self.options.loss {
            Loss::MaxQuantile(q) => QUANTILE_VARIANTS
                .iter()
                .find(|(_, p)| *p == q)
                .map_or("linear-q", |(name, _)| name),
            Loss::Absolute | Loss::Squared => "linear",
        }
    }

    fn fit(&self, history: &History, targets: &[Target]) -> Result<Box<dyn Fitted>, ModelError> {
        let spec = fit_linear(history, targets, &self.options)?;
        let seasonal = seasonal_ranges(&spec.read_ranges());
        // The variant for when those lags fall in a gap, fitted now on the same history
        // (not when the gap comes, when every target of a cluster-wide outage would fit at
        // once).
        let recent_only = if seasonal.is_empty() {
            None
        } else {
            // Cheap: the full model's transform, one penalty, a third of the rows (about
            // 5 % of the full fit's work; it only bridges the day after an outage).
            let options = LinearOptions {
                daily: false,
                weekly: false,
                seasonal_days: 0,
                transform: Some(spec.transform),
                penalties: vec![RECENT_ONLY_PENALTY],
                max_rows: self.options.max_rows.min(RECENT_ONLY_ROWS),
                ..self.options.clone()
            };
            fit_linear(history, targets, &options).ok()
        };
        Ok(Box::new(FittedLinear {
            spec,
            seasonal,
            recent_only,
        }))
    }
}

/// A fitted `linear` model: its spec.
#[derive(Debug, Clone)]
pub struct FittedLinear {
    /// The fitted spec.
    pub spec: LinearSpec,
    /// The spec's seasonal read ranges ([`seasonal_ranges`]).
    seasonal: Vec<(usize, usize)>,
    /// The same model without seasonal features, used while the seasonal lags fall in a
    /// gap (`None`: the spec reads none, or that fit failed).
    recent_only: Option<LinearSpec>,
}

/// The span of a fitted spec's floor ([`LinearSpec::floor`]), in buckets back from the
/// origin: one day at `step` seconds (at least 1), cut to the history fitted on.
///
/// The model extrapolates the recent slope, so at the foot of a steep fall it forecasts the
/// fall going on through the floor the load has stayed above all day (on the `ramps` odd
/// trace, 0 where the load settles at 5). A load below everything of the last day is a
/// change no feature of the model has seen, so the forecast does not go there first; it
/// follows once the load does.
fn floor_span(step: i64) -> usize {
    usize::try_from(DAY / step.max(1)).unwrap_or(1).max(1)
}

/// Ridge penalty of the variant without seasonal features.
const RECENT_ONLY_PENALTY: f64 = 1e-2;

/// Training rows of the variant without seasonal features, at most.
const RECENT_ONLY_ROWS: usize = 4_000;

impl Fitted for FittedLinear {
    fn predict(&self, history: &History) -> Result<Vec<f64>, ModelError> {
        check_step(self.spec.step_seconds, history)?;
        check_recent_gap(history, RECENT_BUCKETS)?;
        // Seasonal lags inside a gap (an outage a day ago): forecast from the recent lags
        // alone rather than from a forward-filled copy of the day before the outage.
        let spec = match check_seasonal_gap(history, &self.seasonal) {
            Ok(()) => &self.spec,
            Err(gap) => self.recent_only.as_ref().ok_or(gap)?,
        };
        let window = filled_tail(history, spec.window()).ok_or(ModelError::TooShort {
            needed: spec.window(),
            have: history.len(),
        })?;
        let origin = history.origin().ok_or(ModelError::TooShort {
            needed: spec.window(),
            have: 0,
        })?;
        Ok(evaluate_spec(spec, &window, History::phase(origin)))
    }

    /// The buckets the spec (or its variant) reads, its floor's day included, and the
    /// recent buckets checked for gaps.
    fn lookback(&self) -> Option<usize> {
        let variant = self.recent_only.as_ref().map_or(0, LinearSpec::window);
        Some(self.spec.window().max(variant).max(RECENT_BUCKETS))
    }
}
