//! Evaluating a [`LinearSpec`]: value transforms, feature values and the forecast formula,
//! exactly as the ONNX export computes them.

use crate::forecast::{Feature, LinearSpec, Period, Phase, Transform, clip_at_zero};

/// Applies `transform` to a raw value.
pub fn transform_value(transform: Transform, x: f64) -> f64 {
    match transform {
        Transform::Identity => x,
        Transform::Log1p { scale } => (x / scale).ln_1p(),
    }
}

/// Inverts [`transform_value`].
pub fn inverse_transform(transform: Transform, z: f64) -> f64 {
    match transform {
        Transform::Identity => z,
        Transform::Log1p { scale } => scale * z.exp_m1(),
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

/// Evaluates `spec` on `window` (forward-filled raw values, oldest first, the last one the
/// origin; at least `spec.lookback` long, [`LinearSpec::window`] for the whole floor) at the
/// origin's `phase`: one forecast per target, clipped at 0. A window shorter than the
/// lookback gives `NaN` for every target.
///
/// Exactly: `u(l) = transform(window[len - 1 - l])`, `f_i` = [`feature_value`],
/// `z_j = u(0) + bias[j] + Σ_i weights[j][i] · (f_i − mean[i]) / scale[i]` summed in feature
/// order, forecast `max(0, inverse_transform(z_j), lowest)`, `lowest` the least of the last
/// `spec.floor` values of `window` (of all of it when shorter; no floor when `floor` is 0).
pub fn evaluate_spec(spec: &LinearSpec, window: &[f64], phase: Phase) -> Vec<f64> {
    let len = window.len();
    if len < spec.lookback || len == 0 {
        return vec![f64::NAN; spec.targets.len()];
    }
    // `f64::min` passes over a NaN. An empty span (`floor` 0) or one of nothing but NaN
    // (never forward-filled input) leaves the fold at infinity: no floor.
    let lowest = window[len - spec.floor.min(len)..]
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min);
    let lowest = if lowest.is_finite() {
        lowest
    } else {
        f64::NEG_INFINITY
    };
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
            let forecast = clip_at_zero(inverse_transform(spec.transform, z));
            // Not `f64::max`: a NaN forecast (a poisoned fit) stays NaN, to be refused.
            if forecast < lowest { lowest } else { forecast }
        })
        .collect()
}
