//! Fitting: the design, the rows, a penalty per target, the final fit on every row and the
//! rewrite into a spec, once per transform; the transform that validates better is kept.

use super::LinearOptions;
use super::design::{Design, design};
use super::raw_form::{self, RelativeFit};
use super::rows::{TargetRows, build_rows, moments};
use super::solve::fit_target;
use super::validation::Split;
use crate::forecast::model::max_steps;
use crate::forecast::{History, LinearSpec, ModelError, Target, Transform};

/// A spec fitted with one transform, and its validation score (sum over targets of the
/// validation loss relative to persistence; lower is better).
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
        let needed = design.lookback + 2 * p.max(10) + max_steps(targets);
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
    let (mean, scale) = moments(count, p, |r, i| rows.x[r * p + i]);
    let split = Split::new(history, &rows, targets, options, p);
    let mut score = 0.0;
    let mut weights = vec![vec![0.0; p]; m];
    let mut bias = vec![0.0; m];
    for j in 0..m {
        let used = &design.used[j];
        let target = TargetRows {
            rows: &rows,
            j,
            m,
            p,
            used,
            mean: &mean,
            scale: &scale,
        };
        let tau = options.loss.quantile(targets[j]);
        let mut penalty = options.penalties.first().copied().unwrap_or(1e-3);
        if split.can_validate {
            let (chosen, relative) = split.choose_penalty(
                &target,
                tau,
                (&options.penalties, options.loss),
                transform,
                penalty,
            );
            penalty = chosen;
            score += relative;
        }
        let cols = target.columns(&split.all);
        let w = fit_target(
            &cols,
            &target.values(&split.all),
            penalty,
            options.loss,
            tau,
        );
        bias[j] = w[0];
        for (k, &i) in used.iter().enumerate() {
            weights[j][i] = w[k + 1];
        }
    }
    let fit = RelativeFit {
        weights: &weights,
        bias: &bias,
        mean: &mean,
        scale: &scale,
    };
    let floor = super::floor_span(history.step).min(history.len());
    let spec = raw_form::spec(
        &fit,
        &rows,
        design,
        (targets, transform, history.step, floor),
    );
    Ok((spec, score))
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
            let mut best = fit_with(history, targets, options, &design, Transform::Identity)?;
            let mean = mean_level(history);
            for fraction in options.log_scales.for_targets(targets) {
                let scale = fraction * mean;
                // On a history of values near f64's limits the scale itself can leave the
                // normal range; the identity then stands alone.
                if !(scale.is_normal() && scale > 0.0) {
                    continue;
                }
                let transform = Transform::Log1p { scale };
                let log = fit_with(history, targets, options, &design, transform)?;
                if log.1 <= best.1 {
                    best = log;
                }
            }
            Ok(best.0)
        }
    }
}

/// The mean of the history's present values, the unit the log transforms' scales are
/// fractions of; 1 when it is not positive (a history of zeros: any scale fits it).
fn mean_level(history: &History) -> f64 {
    let (sum, count) = history
        .values
        .iter()
        .filter(|v| v.is_finite())
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    let mean = sum / count.max(1) as f64;
    if mean.is_finite() && mean > 0.0 {
        mean
    } else {
        1.0
    }
}
