//! The raw-feature form: the fit works on features relative to the origin value and
//! standardised over the rows; the [`LinearSpec`] the model serves and exports reads raw
//! features, standardised by their own means and scales.
//!
//! Relative form (`g_i = f_i − u0` for levels, `f_0 = u0`):
//! `z − u0 = b + Σ_{i≥1} w_i (g_i − μ_i)/σ_i
//!         = [b − Σ w_i μ_i/σ_i] + Σ_{i≥1} (w_i/σ_i) f_i − (Σ_{levels} w_i/σ_i) f_0`,
//! i.e. coefficients `a_i` on the raw features; the spec then standardises the raw features
//! with their own means `M_i` and scales `S_i`: weight `a_i S_i`, bias `c + Σ a_i M_i`.

use super::design::Design;
use super::rows::{Rows, moments};
use crate::forecast::{LinearSpec, Target, Transform};

/// A fit in relative form: per target, the weights on the standardised relative features
/// (`weights[j][i]`, 0 where unused) and the intercept, with the standardisation.
pub(super) struct RelativeFit<'a> {
    pub(super) weights: &'a [Vec<f64>],
    pub(super) bias: &'a [f64],
    pub(super) mean: &'a [f64],
    pub(super) scale: &'a [f64],
}

/// The [`LinearSpec`] of `fit`, made on `rows` of `design` with `transform`, for histories of
/// `step` seconds, with a `floor` of that many buckets.
pub(super) fn spec(
    fit: &RelativeFit<'_>,
    rows: &Rows,
    design: &Design,
    (targets, transform, step, floor): (&[Target], Transform, i64, usize),
) -> LinearSpec {
    let p = design.features.len();
    let m = targets.len();
    let count = rows.origin.len();
    let raw_feature = |r: usize, i: usize| {
        rows.x[r * p + i]
            + if design.features[i].is_level() {
                rows.u0[r]
            } else {
                0.0
            }
    };
    let (raw_mean, raw_scale) = moments(count, p, raw_feature);
    let mut spec_weights = vec![vec![0.0; p]; m];
    let mut spec_bias = vec![0.0; m];
    for j in 0..m {
        let mut coefficient = vec![0.0; p];
        let mut constant = fit.bias[j];
        for i in 1..p {
            coefficient[i] = fit.weights[j][i] / fit.scale[i];
            constant -= fit.weights[j][i] * fit.mean[i] / fit.scale[i];
            if design.features[i].is_level() {
                coefficient[0] -= coefficient[i];
            }
        }
        for i in 0..p {
            spec_weights[j][i] = coefficient[i] * raw_scale[i];
            constant += coefficient[i] * raw_mean[i];
        }
        spec_bias[j] = constant;
    }
    LinearSpec {
        step_seconds: step,
        lookback: design.lookback,
        transform,
        features: design.features.clone(),
        mean: raw_mean,
        scale: raw_scale,
        targets: targets.to_vec(),
        weights: spec_weights,
        bias: spec_bias,
        floor,
    }
}
