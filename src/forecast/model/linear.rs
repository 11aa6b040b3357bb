//! `linear`: a direct linear forecaster (one weight row per target) fitted by ridge or
//! L1 (median) regression on lag, seasonal-lag, window and calendar features, expressed
//! as a [`LinearSpec`] and evaluated by [`evaluate_spec`] (the same formula the ONNX export
//! reproduces).
//!
//! Fitting, for each target `j`:
//! - values are forward-filled and transformed (`Identity` or `Log1p`, chosen on the
//!   validation day unless fixed); the regression target is the change from the origin,
//!   `u[T] - u0` (point) or `max(u[t+1..=T]) - u0` (max);
//! - level features (lags, windows) enter as differences from the origin value, so a level
//!   shift does not move the forecast (in log space: a multiplicative change); calendar
//!   features (sin/cos of the origin's time of day/week) enter as they are;
//! - features: the recent lags, recent window means/maxima, and one day (and one week, when
//!   the history holds more than two weeks) before the target: the 5 buckets around
//!   `T - period`, the bucket at `t - period`, and the max and mean of `(t - period, T - period]`;
//! - rows whose target or recent lags touch a missing bucket are dropped (older buckets,
//!   read by seasonal and window features, are forward-filled as at predict time);
//! - the penalty is chosen per target on the last day before the fit (`validation`) by the
//!   MAE of the forecasts, then the model is refitted on every row.
//!
//! The fitted model is rewritten into the raw-feature form of [`LinearSpec`]:
//! `z_j = u0 + bias[j] + Σ_i weights[j][i] · (f_i − mean[i]) / scale[i]`.

// Dense linear algebra reads clearer with explicit indices.
#![allow(clippy::needless_range_loop)]

use super::{DAY, buckets_in, check_step, filled_tail};
use crate::forecast::{
    Feature, Fitted, History, LinearSpec, Model, ModelError, Period, Phase, Target, Transform,
    clip_at_zero,
};

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

/// Pinball loss of forecast `f` for actual `a` at quantile `tau` (`None`: absolute error).
fn pinball(tau: Option<f64>, f: f64, a: f64) -> f64 {
    match tau {
        Some(t) if a > f => t * (a - f),
        Some(t) => (1.0 - t) * (f - a),
        None => (f - a).abs(),
    }
}

/// How [`fit_linear`] builds and fits the model.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearOptions {
    /// Value transform; `None` picks the better of `Identity` and `Log1p` on the validation day.
    pub transform: Option<Transform>,
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
    /// (`None`: one day).
    pub validation: Option<usize>,
}

impl Default for LinearOptions {
    fn default() -> Self {
        Self {
            transform: None,
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
        let seasonal = seasonal_ranges(&spec);
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

/// The runs of ≥ 3 consecutive lags beyond [`RECENT_BUCKETS`] a spec reads: its one-day and
/// one-week seasonal lags.
fn seasonal_ranges(spec: &LinearSpec) -> Vec<(usize, usize)> {
    spec.read_ranges()
        .into_iter()
        .filter(|&(from, to)| from >= RECENT_BUCKETS && to - from >= 2)
        .collect()
}

/// Refuses a forecast when a run of seasonal lags the model reads (a day or a week before
/// the target) is mostly missing: forward-filled, it would be a copy of the value before an
/// outage a day ago, not yesterday's traffic.
fn check_seasonal_gap(history: &History, seasonal: &[(usize, usize)]) -> Result<(), ModelError> {
    let values = &history.values;
    for &(from, to) in seasonal {
        let Some(oldest) = values.len().checked_sub(to + 1) else {
            continue;
        };
        let newest = values.len() - 1 - from;
        let missing = values[oldest..=newest]
            .iter()
            .filter(|v| v.is_nan())
            .count();
        let read = to - from + 1;
        if 2 * missing > read {
            return Err(ModelError::Gap(format!(
                "{missing} of the {read} buckets {from}–{to} steps back that the model reads as seasonal lags are missing (a gap a period ago)"
            )));
        }
    }
    Ok(())
}

/// Ridge penalty of the variant without seasonal features.
const RECENT_ONLY_PENALTY: f64 = 1e-2;

/// Training rows of the variant without seasonal features, at most.
const RECENT_ONLY_ROWS: usize = 4_000;

/// Recent buckets checked for missing data before a forecast.
pub const RECENT_BUCKETS: usize = 60;

/// Most missing buckets (as a fraction of [`RECENT_BUCKETS`]) a forecast is made with.
pub const RECENT_MISSING_FRACTION: f64 = 0.1;

/// Refuses a forecast when more than [`RECENT_MISSING_FRACTION`] of the last
/// [`RECENT_BUCKETS`] buckets are missing: the lags and windows would be forward-filled from
/// before the gap (after an outage, from hours or days ago), while a few missing buckets (a
/// lost scrape) are harmless.
pub fn check_recent_gap(history: &History) -> Result<(), ModelError> {
    let window = RECENT_BUCKETS.min(history.len());
    let missing = history.values[history.len() - window..]
        .iter()
        .filter(|v| v.is_nan())
        .count();
    if window > 0 && missing as f64 > RECENT_MISSING_FRACTION * window as f64 {
        return Err(ModelError::Gap(format!(
            "{missing} of the last {window} buckets are missing; forecasting again once the recent data is back"
        )));
    }
    Ok(())
}

impl Fitted for FittedLinear {
    fn predict(&self, history: &History) -> Result<Vec<f64>, ModelError> {
        check_step(self.spec.step_seconds, history)?;
        check_recent_gap(history)?;
        // Seasonal lags inside a gap (an outage a day ago): forecast from the recent lags
        // alone rather than from a forward-filled copy of the day before the outage.
        let spec = match check_seasonal_gap(history, &self.seasonal) {
            Ok(()) => &self.spec,
            Err(gap) => self.recent_only.as_ref().ok_or(gap)?,
        };
        let window = filled_tail(history, spec.lookback).ok_or(ModelError::TooShort {
            needed: spec.lookback,
            have: history.len(),
        })?;
        let origin = history.origin().ok_or(ModelError::TooShort {
            needed: spec.lookback,
            have: 0,
        })?;
        Ok(evaluate_spec(spec, &window, History::phase(origin)))
    }

    /// The spec's (or its variant's) lookback, and the recent buckets checked for gaps.
    fn lookback(&self) -> Option<usize> {
        let variant = self.recent_only.as_ref().map_or(0, |s| s.lookback);
        Some(self.spec.lookback.max(variant).max(RECENT_BUCKETS))
    }
}

/// Applies `transform` to a raw value.
pub fn transform_value(transform: Transform, x: f64) -> f64 {
    match transform {
        Transform::Identity => x,
        Transform::Log1p => x.ln_1p(),
    }
}

/// Inverts [`transform_value`].
pub fn inverse_transform(transform: Transform, z: f64) -> f64 {
    match transform {
        Transform::Identity => z,
        Transform::Log1p => z.exp_m1(),
    }
}

/// One feature's value; `lag(l)` is the transformed value `l` buckets before the origin.
/// Windows sum from the older end (`to`) towards the newer one (`from`).
pub fn feature_value(feature: Feature, lag: impl Fn(usize) -> f64, phase: Phase) -> f64 {
    let cycle = |period: Period, harmonic: u32| {
        let p = match period {
            Period::Day => phase.day,
            Period::Week => phase.week,
        };
        std::f64::consts::TAU * f64::from(harmonic) * p
    };
    match feature {
        Feature::Lag(l) => lag(l),
        Feature::WindowMax { from, to } => (from..=to).rev().map(&lag).fold(f64::MIN, f64::max),
        Feature::WindowMean { from, to } => {
            (from..=to).rev().map(&lag).sum::<f64>() / (to - from + 1) as f64
        }
        Feature::Sin { period, harmonic } => cycle(period, harmonic).sin(),
        Feature::Cos { period, harmonic } => cycle(period, harmonic).cos(),
    }
}

/// Largest lag a feature reads (0 for calendar features).
fn feature_reach(feature: Feature) -> usize {
    match feature {
        Feature::Lag(l) => l,
        Feature::WindowMax { to, .. } | Feature::WindowMean { to, .. } => to,
        Feature::Sin { .. } | Feature::Cos { .. } => 0,
    }
}

/// Whether a feature is a level (compared with the origin value when fitting).
fn is_level(feature: Feature) -> bool {
    matches!(
        feature,
        Feature::Lag(_) | Feature::WindowMax { .. } | Feature::WindowMean { .. }
    )
}

/// Evaluates `spec` on `window` (forward-filled raw values, oldest first, the last one the
/// origin; at least `spec.lookback` long) at the origin's `phase`: one forecast per target,
/// clipped at 0. A window shorter than the lookback gives `NaN` for every target.
///
/// Exactly: `u(l) = transform(window[len - 1 - l])`, `f_i` = [`feature_value`],
/// `z_j = u(0) + bias[j] + Σ_i weights[j][i] · (f_i − mean[i]) / scale[i]` summed in feature
/// order, forecast `max(0, inverse_transform(z_j))`.
pub fn evaluate_spec(spec: &LinearSpec, window: &[f64], phase: Phase) -> Vec<f64> {
    let len = window.len();
    if len < spec.lookback || len == 0 {
        return vec![f64::NAN; spec.targets.len()];
    }
    let lag = |l: usize| transform_value(spec.transform, window[len - 1 - l]);
    let standardised: Vec<f64> = spec
        .features
        .iter()
        .zip(spec.mean.iter().zip(&spec.scale))
        .map(|(&feature, (&mean, &scale))| (feature_value(feature, lag, phase) - mean) / scale)
        .collect();
    let u0 = lag(0);
    spec.weights
        .iter()
        .zip(&spec.bias)
        .map(|(row, &bias)| {
            let mut z = u0 + bias;
            for (w, x) in row.iter().zip(&standardised) {
                z += w * x;
            }
            clip_at_zero(inverse_transform(spec.transform, z))
        })
        .collect()
}

/// The features and, per target, which of them it uses.
struct Design {
    features: Vec<Feature>,
    /// Per target, indices into `features` (level features other than `Lag(0)` and
    /// calendar ones).
    used: Vec<Vec<usize>>,
    lookback: usize,
    /// Lags below this are the recent ones (rows touching a gap there are dropped).
    recent: usize,
}

fn add_feature(features: &mut Vec<Feature>, feature: Feature) -> usize {
    if let Some(i) = features.iter().position(|&f| f == feature) {
        return i;
    }
    features.push(feature);
    features.len() - 1
}

fn design(
    len: usize,
    step: i64,
    targets: &[Target],
    options: &LinearOptions,
) -> Result<Design, ModelError> {
    let horizon = super::max_steps(targets);
    if horizon == 0 {
        return Err(ModelError::Invalid("no target to fit".to_string()));
    }
    let lags = options.lags.max(1);
    let day = buckets_in(DAY, step).filter(|&d| d > horizon + 2);
    // Rows with a valid seasonal lag must cover at least the period again (plus the
    // validation day), as in the anchors' ridge.
    let room = |period: usize| len >= 2 * period + horizon + 3 + day.unwrap_or(0);
    let day = day.filter(|&d| options.daily && room(d));
    let week = day
        .map(|d| 7 * d)
        .filter(|&w| options.weekly && len >= w * 2 + horizon + 3 + day.unwrap_or(0));
    // Lag(0) always comes first: it carries the origin value in the spec.
    let mut features = vec![Feature::Lag(0)];
    let mut used = Vec::with_capacity(targets.len());
    for target in targets {
        let h = target.steps();
        let mut mine = Vec::new();
        for l in 1..lags {
            mine.push(add_feature(&mut features, Feature::Lag(l)));
        }
        for &w in &options.recent_windows {
            if w > 1 && w <= len / 4 {
                mine.push(add_feature(
                    &mut features,
                    Feature::WindowMean { from: 0, to: w - 1 },
                ));
                mine.push(add_feature(
                    &mut features,
                    Feature::WindowMax { from: 0, to: w - 1 },
                ));
            }
        }
        for period in [day, week].into_iter().flatten() {
            // Target time one period earlier is lag period - h.
            let at = period - h;
            for l in at.saturating_sub(2)..=at + 2 {
                mine.push(add_feature(&mut features, Feature::Lag(l)));
            }
            mine.push(add_feature(&mut features, Feature::Lag(period)));
            mine.push(add_feature(
                &mut features,
                Feature::WindowMax {
                    from: at,
                    to: period - 1,
                },
            ));
            mine.push(add_feature(
                &mut features,
                Feature::WindowMean {
                    from: at,
                    to: period - 1,
                },
            ));
        }
        if let Some(d) = day.filter(|_| options.weekly || options.daily) {
            let w = options.seasonal_halfwidth;
            for k in 1..=options.seasonal_days {
                let centre = k * d - h;
                if centre < w || len < k * d + w + horizon + 3 + 3 * d {
                    break;
                }
                mine.push(add_feature(
                    &mut features,
                    Feature::WindowMean {
                        from: centre - w,
                        to: centre + w,
                    },
                ));
            }
        }
        if day.is_some() {
            for harmonic in [1, 2] {
                mine.push(add_feature(
                    &mut features,
                    Feature::Sin {
                        period: Period::Day,
                        harmonic,
                    },
                ));
                mine.push(add_feature(
                    &mut features,
                    Feature::Cos {
                        period: Period::Day,
                        harmonic,
                    },
                ));
            }
        }
        if week.is_some() {
            mine.push(add_feature(
                &mut features,
                Feature::Sin {
                    period: Period::Week,
                    harmonic: 1,
                },
            ));
            mine.push(add_feature(
                &mut features,
                Feature::Cos {
                    period: Period::Week,
                    harmonic: 1,
                },
            ));
        }
        mine.sort_unstable();
        mine.dedup();
        mine.retain(|&i| i != 0);
        used.push(mine);
    }
    let lookback = features
        .iter()
        .map(|&f| feature_reach(f))
        .max()
        .unwrap_or(0)
        + 1;
    Ok(Design {
        features,
        used,
        lookback,
        recent: lags,
    })
}

/// Training rows: standardised relative features, targets in transformed change, and what
/// is needed to score forecasts in raw space.
struct Rows {
    /// Origin index of each row.
    origin: Vec<usize>,
    /// Row-major `rows × features` raw (relative) feature values.
    x: Vec<f64>,
    /// Row-major `rows × targets` changes from the origin (transformed).
    y: Vec<f64>,
    /// Transformed origin value per row.
    u0: Vec<f64>,
    /// Raw realised target per row and target.
    actual: Vec<f64>,
    /// Raw origin value per row.
    raw0: Vec<f64>,
}

fn build_rows(
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
    let horizon = super::max_steps(targets);
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
            rows.x.push(if is_level(f) { v - u0 } else { v });
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

/// Solves the symmetric positive definite system `a x = b` (row-major `n × n`) in place by
/// Cholesky; adds a small ridge to the diagonal if the matrix is not positive definite.
fn solve_spd(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let trace = (0..n).map(|i| a[i * n + i].abs()).sum::<f64>() / n.max(1) as f64;
    let mut jitter = 0.0;
    for _ in 0..8 {
        let mut l = a.to_vec();
        for i in 0..n {
            l[i * n + i] += jitter;
        }
        let mut ok = true;
        'outer: for j in 0..n {
            let mut d = l[j * n + j];
            for k in 0..j {
                d -= l[j * n + k] * l[j * n + k];
            }
            if d <= 1e-12 * trace.max(1e-300) || !d.is_finite() {
                ok = false;
                break 'outer;
            }
            let d = d.sqrt();
            l[j * n + j] = d;
            for i in j + 1..n {
                let mut s = l[i * n + j];
                for k in 0..j {
                    s -= l[i * n + k] * l[j * n + k];
                }
                l[i * n + j] = s / d;
            }
        }
        if ok {
            let mut x = b.to_vec();
            for i in 0..n {
                let mut s = x[i];
                for k in 0..i {
                    s -= l[i * n + k] * x[k];
                }
                x[i] = s / l[i * n + i];
            }
            for i in (0..n).rev() {
                let mut s = x[i];
                for k in i + 1..n {
                    s -= l[k * n + i] * x[k];
                }
                x[i] = s / l[i * n + i];
            }
            return x;
        }
        jitter = if jitter == 0.0 {
            1e-10 * trace.max(1e-12)
        } else {
            jitter * 100.0
        };
    }
    vec![0.0; n]
}

/// Standardised design for one target: column 0 is the intercept, then the target's
/// features; row-major.
struct Columns {
    a: Vec<f64>,
    width: usize,
}

fn columns(
    rows: &Rows,
    p: usize,
    used: &[usize],
    mean: &[f64],
    scale: &[f64],
    pick: &[usize],
) -> Columns {
    let width = used.len() + 1;
    let mut a = Vec::with_capacity(pick.len() * width);
    for &r in pick {
        a.push(1.0);
        for &i in used {
            a.push((rows.x[r * p + i] - mean[i]) / scale[i]);
        }
    }
    Columns { a, width }
}

/// Weighted ridge fit: minimises `Σ c_r (y_r − a_r·w)² + penalty · n · |w[1..]|²`.
fn weighted_ridge(cols: &Columns, y: &[f64], weights: Option<&[f64]>, penalty: f64) -> Vec<f64> {
    let k = cols.width;
    let n = y.len();
    let mut gram = vec![0.0; k * k];
    let mut rhs = vec![0.0; k];
    for (r, &yr) in y.iter().enumerate() {
        let row = &cols.a[r * k..(r + 1) * k];
        let c = weights.map_or(1.0, |w| w[r]);
        for i in 0..k {
            let ci = c * row[i];
            rhs[i] += ci * yr;
            let g = &mut gram[i * k..(i + 1) * k];
            for j in i..k {
                g[j] += ci * row[j];
            }
        }
    }
    for i in 0..k {
        for j in 0..i {
            gram[i * k + j] = gram[j * k + i];
        }
        if i > 0 {
            gram[i * k + i] += penalty * n as f64;
        }
    }
    solve_spd(&gram, &rhs, k)
}

fn predict_rows(cols: &Columns, w: &[f64]) -> Vec<f64> {
    cols.a
        .chunks_exact(cols.width)
        .map(|row| row.iter().zip(w).map(|(a, b)| a * b).sum())
        .collect()
}

/// Fits one target with the options' loss.
fn fit_target(cols: &Columns, y: &[f64], penalty: f64, loss: Loss, tau: Option<f64>) -> Vec<f64> {
    let mut w = weighted_ridge(cols, y, None, penalty);
    if loss != Loss::Squared && !y.is_empty() {
        let spread = y.iter().map(|v| v.abs()).sum::<f64>() / y.len() as f64;
        let floor = (spread * 0.02).max(1e-9);
        for _ in 0..8 {
            let fitted = predict_rows(cols, &w);
            let mut c: Vec<f64> = y
                .iter()
                .zip(&fitted)
                .map(|(a, b)| {
                    // Pinball loss as weighted squares: residuals above the fit weigh τ,
                    // below 1 − τ (both ½ for the median).
                    let side = tau.map_or(0.5, |t| if a > b { t } else { 1.0 - t });
                    side / (a - b).abs().max(floor)
                })
                .collect();
            let mean_c = c.iter().sum::<f64>() / c.len() as f64;
            c.iter_mut().for_each(|v| *v /= mean_c);
            w = weighted_ridge(cols, y, Some(&c), penalty);
        }
    }
    w
}

/// A spec fitted with one transform, and its validation score (sum over targets of the
/// validation MAE relative to persistence; lower is better).
fn fit_with(
    history: &History,
    targets: &[Target],
    options: &LinearOptions,
    design: &Design,
    transform: Transform,
) -> Result<(LinearSpec, f64), ModelError> {
    let rows = build_rows(history, targets, design, transform, options.max_rows);
    let p = design.features.len();
    let m = targets.len();
    let count = rows.origin.len();
    if count < 2 * p.max(10) {
        let needed = design.lookback + 2 * p.max(10) + super::max_steps(targets);
        if history.len() < needed {
            return Err(ModelError::TooShort {
                needed,
                have: history.len(),
            });
        }
        let missing = history.values.iter().filter(|v| v.is_nan()).count();
        return Err(ModelError::Gap(format!(
            "{missing} of {} buckets are missing: {count} training rows do not touch a gap, the model needs {}",
            history.len(),
            2 * p.max(10)
        )));
    }
    // Standardisation over every row.
    let mut mean = vec![0.0; p];
    let mut scale = vec![0.0; p];
    for r in 0..count {
        for i in 0..p {
            mean[i] += rows.x[r * p + i];
        }
    }
    mean.iter_mut().for_each(|v| *v /= count as f64);
    for r in 0..count {
        for i in 0..p {
            let d = rows.x[r * p + i] - mean[i];
            scale[i] += d * d;
        }
    }
    for s in &mut scale {
        *s = (*s / count as f64).sqrt();
        if *s < 1e-12 || !s.is_finite() {
            *s = 1.0;
        }
    }
    let horizon = super::max_steps(targets);
    let validation = options
        .validation
        .or_else(|| buckets_in(DAY, history.step))
        .unwrap_or(0);
    let val_start = history.len().saturating_sub(validation);
    let train: Vec<usize> = (0..count)
        .filter(|&r| rows.origin[r] + horizon < val_start)
        .collect();
    let val: Vec<usize> = (0..count)
        .filter(|&r| rows.origin[r] >= val_start)
        .collect();
    let all: Vec<usize> = (0..count).collect();
    let can_validate = train.len() >= 2 * p.max(10) && val.len() >= 10;
    let mut score = 0.0;
    let mut weights = vec![vec![0.0; p]; m];
    let mut bias = vec![0.0; m];
    for j in 0..m {
        let used = &design.used[j];
        let target_of =
            |pick: &[usize]| -> Vec<f64> { pick.iter().map(|&r| rows.y[r * m + j]).collect() };
        let tau = options.loss.quantile(targets[j]);
        let mut penalty = options.penalties.first().copied().unwrap_or(1e-3);
        if can_validate {
            let cols = columns(&rows, p, used, &mean, &scale, &train);
            let y = target_of(&train);
            let vcols = columns(&rows, p, used, &mean, &scale, &val);
            let persistence_mae = val
                .iter()
                .map(|&r| pinball(tau, rows.raw0[r], rows.actual[r * m + j]))
                .sum::<f64>()
                .max(1e-12);
            let mut best = f64::INFINITY;
            for &candidate in &options.penalties {
                let w = fit_target(&cols, &y, candidate, options.loss, tau);
                let z = predict_rows(&vcols, &w);
                let mae: f64 = val
                    .iter()
                    .zip(&z)
                    .map(|(&r, &dz)| {
                        let f = inverse_transform(transform, rows.u0[r] + dz).max(0.0);
                        pinball(tau, f, rows.actual[r * m + j])
                    })
                    .sum();
                if mae < best {
                    best = mae;
                    penalty = candidate;
                }
            }
            score += best / persistence_mae;
        }
        let cols = columns(&rows, p, used, &mean, &scale, &all);
        let w = fit_target(&cols, &target_of(&all), penalty, options.loss, tau);
        bias[j] = w[0];
        for (k, &i) in used.iter().enumerate() {
            weights[j][i] = w[k + 1];
        }
    }
    // Rewrite into the raw-feature form. Relative form (g_i = f_i − u0 for levels, f_0 = u0):
    //   z − u0 = b + Σ_{i≥1} w_i (g_i − μ_i)/σ_i
    //          = [b − Σ w_i μ_i/σ_i] + Σ_{i≥1} (w_i/σ_i) f_i − (Σ_{levels} w_i/σ_i) f_0,
    // i.e. coefficients a_i on the raw features; the spec then standardises the raw features
    // with their own means M_i and scales S_i: weight a_i S_i, bias c + Σ a_i M_i.
    let raw_feature = |r: usize, i: usize| {
        rows.x[r * p + i]
            + if is_level(design.features[i]) {
                rows.u0[r]
            } else {
                0.0
            }
    };
    let mut raw_mean = vec![0.0; p];
    for r in 0..count {
        for (i, m) in raw_mean.iter_mut().enumerate() {
            *m += raw_feature(r, i);
        }
    }
    raw_mean.iter_mut().for_each(|v| *v /= count as f64);
    let mut raw_scale = vec![0.0; p];
    for r in 0..count {
        for (i, s) in raw_scale.iter_mut().enumerate() {
            *s += (raw_feature(r, i) - raw_mean[i]).powi(2);
        }
    }
    for s in &mut raw_scale {
        *s = (*s / count as f64).sqrt();
        if *s < 1e-12 || !s.is_finite() {
            *s = 1.0;
        }
    }
    let mut spec_weights = vec![vec![0.0; p]; m];
    let mut spec_bias = vec![0.0; m];
    for j in 0..m {
        let mut coefficient = vec![0.0; p];
        let mut constant = bias[j];
        for i in 1..p {
            coefficient[i] = weights[j][i] / scale[i];
            constant -= weights[j][i] * mean[i] / scale[i];
            if is_level(design.features[i]) {
                coefficient[0] -= coefficient[i];
            }
        }
        for i in 0..p {
            spec_weights[j][i] = coefficient[i] * raw_scale[i];
            constant += coefficient[i] * raw_mean[i];
        }
        spec_bias[j] = constant;
    }
    Ok((
        LinearSpec {
            step_seconds: history.step,
            lookback: design.lookback,
            transform,
            features: design.features.clone(),
            mean: raw_mean,
            scale: raw_scale,
            targets: targets.to_vec(),
            weights: spec_weights,
            bias: spec_bias,
        },
        score,
    ))
}

/// Fits the `linear` model on `history` for `targets` (see the module docs).
pub fn fit_linear(
    history: &History,
    targets: &[Target],
    options: &LinearOptions,
) -> Result<LinearSpec, ModelError> {
    if history.step <= 0 {
        return Err(ModelError::Invalid(format!(
            "history step is {}s",
            history.step
        )));
    }
    let design = design(history.len(), history.step, targets, options)?;
    match options.transform {
        Some(transform) => Ok(fit_with(history, targets, options, &design, transform)?.0),
        None => {
            let identity = fit_with(history, targets, options, &design, Transform::Identity)?;
            let log = fit_with(history, targets, options, &design, Transform::Log1p)?;
            Ok(if log.1 <= identity.1 {
                log.0
            } else {
                identity.0
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic noise in [-1, 1).
    fn noise(n: usize) -> Vec<f64> {
        let mut rng = fastrand::Rng::with_seed(0x2545_F491_4F6C_DD1D);
        (0..n).map(|_| rng.f64() * 2.0 - 1.0).collect()
    }

    /// Raw-feature coefficients of target `j`: z − u0 = constant + Σ a_i f_i.
    fn coefficients(spec: &LinearSpec, j: usize) -> (f64, Vec<f64>) {
        let a: Vec<f64> = spec.weights[j]
            .iter()
            .zip(&spec.scale)
            .map(|(w, s)| w / s)
            .collect();
        let constant = spec.bias[j] - a.iter().zip(&spec.mean).map(|(a, m)| a * m).sum::<f64>();
        (constant, a)
    }

    fn options(loss: Loss) -> LinearOptions {
        LinearOptions {
            transform: Some(Transform::Identity),
            lags: 3,
            recent_windows: vec![],
            daily: false,
            weekly: false,
            seasonal_days: 0,
            seasonal_halfwidth: 0,
            penalties: vec![1e-9],
            loss,
            max_rows: 30_000,
            validation: Some(200),
        }
    }

    /// x[t+1] = x[t] + 0.5 (x[t] − x[t−1]) + 2 + noise: the change is 0.5 of the last change
    /// plus 2.
    fn momentum(n: usize, outliers: bool) -> Vec<f64> {
        let e = noise(n);
        let mut x = vec![100.0, 100.0];
        for t in 1..n - 1 {
            let mut shock = e[t];
            if outliers && t % 10 == 0 {
                shock += 40.0;
            }
            x.push(x[t] + 0.5 * (x[t] - x[t - 1]) + 2.0 + shock);
        }
        x
    }

    #[test]
    fn a_gap_in_the_recent_buckets_refuses_the_forecast() {
        let with_missing = |missing: &[usize]| {
            let mut values = vec![1.0; 100];
            for &i in missing {
                values[i] = f64::NAN;
            }
            History::new(0, 60, values)
        };
        // 6 of the last 60 missing (10 %) is still forecast; 7 is not.
        assert!(check_recent_gap(&with_missing(&[40, 50, 60, 70, 80, 99])).is_ok());
        let refused = check_recent_gap(&with_missing(&[40, 50, 60, 70, 80, 90, 99]));
        assert!(
            matches!(&refused, Err(ModelError::Gap(why)) if why == "7 of the last 60 buckets are missing; forecasting again once the recent data is back"),
            "{refused:?}"
        );
        // Buckets older than the last 60 do not count; a short history checks all it has.
        assert!(check_recent_gap(&with_missing(&(0..40).collect::<Vec<_>>())).is_ok());
        assert!(matches!(
            check_recent_gap(&History::new(0, 60, vec![1.0, f64::NAN, 1.0])),
            Err(ModelError::Gap(why)) if why.starts_with("1 of the last 3 buckets")
        ));

        // A fitted model refuses through the same rule (and the engine serves live with
        // reason history_gap).
        let history = History::new(0, 60, momentum(2_000, false));
        let fitted = Linear {
            options: options(Loss::Absolute),
        }
        .fit(&history, &[Target::Point(1)])
        .unwrap_or_else(|e| panic!("{e}"));
        let mut recent = history.values.clone();
        recent[1_990..].iter_mut().for_each(|v| *v = f64::NAN);
        assert!(matches!(
            fitted.predict(&History::new(0, 60, recent)),
            Err(ModelError::Gap(_))
        ));
    }

    #[test]
    fn seasonal_lags_in_a_gap_forecast_from_the_recent_lags_alone() {
        let (step, day) = (300, 288);
        let n = 10 * day;
        let e = noise(n);
        let values: Vec<f64> = (0..n)
            .map(|i| 10.0 + 5.0 * (std::f64::consts::TAU * i as f64 / day as f64).sin() + e[i])
            .collect();
        let history = History::new(0, step, values.clone());
        let with_daily = LinearOptions {
            daily: true,
            ..options(Loss::Absolute)
        };
        let targets = [Target::Point(2)];
        let full = fit_linear(&history, &targets, &with_daily).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            full.features.contains(&Feature::Lag(day)),
            "{:?}",
            full.features
        );
        let fitted = Linear {
            options: with_daily.clone(),
        }
        .fit(&history, &targets)
        .unwrap_or_else(|e| panic!("{e}"));
        let origin = history.origin().unwrap_or_default();
        // With the day-ago buckets present: the full model.
        let window = filled_tail(&history, full.lookback).unwrap_or_default();
        assert_eq!(
            fitted.predict(&history).unwrap_or_else(|e| panic!("{e}")),
            evaluate_spec(&full, &window, History::phase(origin))
        );

        // An outage a day before the origin: forecast by the same model without seasonal
        // features, fitted on the same history.
        let mut gapped = values;
        gapped[n - day - 20..n - day + 20]
            .iter_mut()
            .for_each(|v| *v = f64::NAN);
        let gapped = History::new(0, step, gapped);
        let without = fit_linear(
            &history,
            &targets,
            &LinearOptions {
                daily: false,
                transform: Some(full.transform),
                penalties: vec![RECENT_ONLY_PENALTY],
                max_rows: RECENT_ONLY_ROWS,
                ..with_daily.clone()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(without.lookback, 3);
        let window = filled_tail(&gapped, without.lookback).unwrap_or_default();
        let want = evaluate_spec(&without, &window, History::phase(origin));
        assert_eq!(
            fitted.predict(&gapped).unwrap_or_else(|e| panic!("{e}")),
            want
        );
        // The full model on the forward-filled gap would have said something else.
        let filled = filled_tail(&gapped, full.lookback).unwrap_or_default();
        assert_ne!(evaluate_spec(&full, &filled, History::phase(origin)), want);
    }

    #[test]
    fn a_history_full_of_gaps_is_a_gap_error_not_too_short() {
        let mut values = momentum(2_000, false);
        for v in values.iter_mut().step_by(2) {
            *v = f64::NAN;
        }
        let refused = fit_linear(
            &History::new(0, 60, values),
            &[Target::Point(1)],
            &options(Loss::Absolute),
        );
        assert!(
            matches!(&refused, Err(ModelError::Gap(why)) if why == "1000 of 2000 buckets are missing: 0 training rows do not touch a gap, the model needs 20"),
            "{refused:?}"
        );
    }

    #[test]
    fn least_squares_recovers_known_coefficients() {
        let history = History::new(0, 60, momentum(20_000, false));
        let spec = fit_linear(&history, &[Target::Point(1)], &options(Loss::Squared))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            spec.features,
            vec![Feature::Lag(0), Feature::Lag(1), Feature::Lag(2)]
        );
        assert_eq!(spec.lookback, 3);
        let (constant, a) = coefficients(&spec, 0);
        // z − u0 = 2 + 0.5 u0 − 0.5 u1.
        assert!((a[0] - 0.5).abs() < 0.03, "{a:?}");
        assert!((a[1] + 0.5).abs() < 0.03, "{a:?}");
        assert!(a[2].abs() < 0.03, "{a:?}");
        assert!((constant - 2.0).abs() < 0.1, "{constant}");
    }

    #[test]
    fn max_quantile_loss_fits_max_targets_for_the_upper_quantile() {
        // The shock is uniform on [-1, 1): its median is 0, its 90th percentile 0.8. The
        // max over one bucket is the next value, so both targets see the same rows; only the
        // max target moves to the upper quantile.
        let history = History::new(0, 60, momentum(20_000, false));
        let spec = fit_linear(
            &history,
            &[Target::Point(1), Target::Max(1)],
            &options(Loss::MaxQuantile(90)),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let (median, a) = coefficients(&spec, 0);
        let (upper, b) = coefficients(&spec, 1);
        assert!((median - 2.0).abs() < 0.1, "{median}");
        assert!((upper - 2.8).abs() < 0.1, "{upper}");
        for coefficients in [&a, &b] {
            assert!((coefficients[0] - 0.5).abs() < 0.05, "{coefficients:?}");
            assert!((coefficients[1] + 0.5).abs() < 0.05, "{coefficients:?}");
        }
        let model = super::super::build("linear-q90").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(model.name(), "linear-q90");
    }

    #[test]
    fn absolute_loss_ignores_outliers_that_bias_least_squares() {
        // One shock in ten is +40: the mean change moves by ~4, the median barely.
        let history = History::new(0, 60, momentum(4000, true));
        let fit = |loss| {
            let spec = fit_linear(&history, &[Target::Point(1)], &options(loss))
                .unwrap_or_else(|e| panic!("{e}"));
            coefficients(&spec, 0)
        };
        let (median, a) = fit(Loss::Absolute);
        assert!(
            (a[0] - 0.5).abs() < 0.05 && (a[1] + 0.5).abs() < 0.05,
            "{a:?}"
        );
        assert!((median - 2.0).abs() < 0.5, "{median}");
        let (mean, _) = fit(Loss::Squared);
        assert!(mean > 4.0, "{mean}");
    }

    #[test]
    fn predict_is_evaluate_spec_on_the_filled_window() {
        let mut values = momentum(3000, false);
        values[2998] = f64::NAN;
        let history = History::new(1_704_110_400, 60, values);
        let targets = [Target::Point(2), Target::Max(3)];
        let fitted = Linear {
            options: LinearOptions {
                transform: Some(Transform::Log1p),
                ..options(Loss::Squared)
            },
        }
        .fit(&history, &targets)
        .unwrap_or_else(|e| panic!("{e}"));
        let forecast = fitted.predict(&history).unwrap_or_else(|e| panic!("{e}"));
        let n = history.len();
        let window = [
            history.values[n - 3],
            history.values[n - 3],
            history.values[n - 1],
        ];
        let spec = fit_linear(
            &history,
            &targets,
            &LinearOptions {
                transform: Some(Transform::Log1p),
                ..options(Loss::Squared)
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let origin = history.origin().unwrap_or_default();
        assert_eq!(
            forecast,
            evaluate_spec(&spec, &window, History::phase(origin))
        );
        // The formula by hand.
        let u: Vec<f64> = window.iter().rev().map(|v| v.ln_1p()).collect();
        for j in 0..2 {
            let mut z = u[0] + spec.bias[j];
            for i in 0..3 {
                z += spec.weights[j][i] * (u[i] - spec.mean[i]) / spec.scale[i];
            }
            // The same formula summed in another order: equal to the last few bits.
            let by_hand = z.exp_m1().max(0.0);
            assert!(
                (forecast[j] - by_hand).abs() <= 1e-12 * by_hand.abs(),
                "{} vs {by_hand}",
                forecast[j]
            );
        }
        assert!(evaluate_spec(&spec, &window[1..], History::phase(origin))[0].is_nan());
    }

    #[test]
    fn daily_features_appear_when_the_history_allows() {
        // Hourly buckets, 30 days.
        let history = History::new(0, 3600, vec![1.0; 720]);
        let design = design(
            history.len(),
            3600,
            &[Target::Point(2)],
            &LinearOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        for feature in [
            Feature::Lag(20),
            Feature::Lag(24),
            Feature::WindowMax { from: 22, to: 23 },
            Feature::Lag(7 * 24 - 2),
            Feature::Sin {
                period: Period::Week,
                harmonic: 1,
            },
        ] {
            assert!(design.features.contains(&feature), "{feature:?}");
        }
        assert_eq!(design.lookback, 7 * 24 + 1);
    }

    #[test]
    fn an_infinite_sample_is_a_gap_not_a_forecast_of_zero() {
        // Three days of a daily cycle at 1 minute; one +Inf sample (a ratio over zero) in
        // the middle of the fit's window.
        let n = 3 * 1440;
        let values: Vec<f64> = (0..n)
            .map(|i| 10.0 + 5.0 * (std::f64::consts::TAU * i as f64 / 1440.0).sin())
            .collect();
        let forecast = |values: Vec<f64>| {
            let history = History::new(0, 60, values);
            Linear::default()
                .fit(&history, &[Target::Max(10)])
                .and_then(|fitted| fitted.predict(&history))
                .unwrap_or_else(|e| panic!("{e}"))[0]
        };
        let clean = forecast(values.clone());
        assert!((clean - 10.23).abs() < 0.05, "{clean}");
        // Raw, the infinity poisons the fit: the forecast is NaN, which the engine refuses
        // (model_error), not 0 (`f64::max(NaN, 0)`), which it would serve.
        let mut raw = values.clone();
        raw[n / 2] = f64::INFINITY;
        assert!(forecast(raw.clone()).is_nan());
        // As the engine, `augur train` and `augur backtest` store it: a missing bucket.
        let stored: Vec<f64> = raw.into_iter().map(crate::forecast::bucket_value).collect();
        let gap = forecast(stored);
        assert!((gap - clean).abs() < 1e-3, "{gap} vs {clean}");
    }
}
