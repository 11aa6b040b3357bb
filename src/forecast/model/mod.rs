//! The built-in forecasting models and how a model name from config becomes a [`Model`].
//!
//! | name | what |
//! |---|---|
//! | `persistence` | last observed value |
//! | `seasonal-naive` | the value one day before each target bucket |
//! | `seasonal-naive-weekly` | the value one week before each target bucket |
//! | `holt-winters` | additive daily seasonal, damped trend, on 5-minute means |
//! | `dsp` | FFT-detected daily/weekly period, mean of the last 3 periods (Crane-style) |
//! | `dsp-max` | the same with the max of the last 3 periods |
//! | `linear` | direct ridge/L1 regression, see [`linear`] |
//! | `<a>+<b>…` | mean of the named models' forecasts, e.g. `linear+holt-winters` |
//! | `guarded-<name>` | `<name>`, replaced by persistence while it has been worse (see [`crate::forecast::guard`]) |

pub mod dsp;
pub mod ensemble;
pub mod holt_winters;
pub mod linear;
mod persistence;
pub mod seasonal_naive;

pub use dsp::{Dsp, Estimator};
pub use ensemble::Ensemble;
pub use holt_winters::HoltWinters;
pub use linear::{Linear, LinearOptions, evaluate_spec, fit_linear};
pub use persistence::Persistence;
pub use seasonal_naive::SeasonalNaive;

use super::guard::Guarded;
use super::{History, Model, ModelError, Target};

/// Names of the built-in models, as written in config.
pub const BUILTIN: &[&str] = &[
    "persistence",
    "seasonal-naive",
    "seasonal-naive-weekly",
    "holt-winters",
    "dsp",
    "dsp-max",
    "linear",
    "guarded-linear",
    "linear-q90",
    "guarded-holt-winters",
    "linear+holt-winters",
    "guarded-linear+holt-winters",
];

/// The model served when a rule names none: the `linear` model behind the regime-shift guard.
pub const DEFAULT: &str = "guarded-linear";

/// Seconds in a day.
pub(crate) const DAY: i64 = 86_400;

/// The built-in model called `name`; `guarded-<name>` wraps any built-in model in the guard.
pub fn build(name: &str) -> Result<Box<dyn Model>, ModelError> {
    if let Some(inner) = name.strip_prefix("guarded-") {
        return Ok(Box::new(Guarded::new(build(inner)?, None)));
    }
    if name.contains('+') {
        let members = name.split('+').map(build).collect::<Result<Vec<_>, _>>()?;
        return Ok(Box::new(Ensemble::new(name.to_string(), members)));
    }
    match name {
        "persistence" => Ok(Box::new(Persistence)),
        "seasonal-naive" => Ok(Box::new(SeasonalNaive::daily())),
        "seasonal-naive-weekly" => Ok(Box::new(SeasonalNaive::weekly())),
        "holt-winters" => Ok(Box::new(HoltWinters::default())),
        "dsp" => Ok(Box::new(Dsp::new(Estimator::Mean))),
        "dsp-max" => Ok(Box::new(Dsp::new(Estimator::Max))),
        "linear" => Ok(Box::new(Linear::default())),
        other if linear::QUANTILE_VARIANTS.iter().any(|(n, _)| *n == other) => {
            let q = linear::QUANTILE_VARIANTS
                .iter()
                .find(|(n, _)| *n == other)
                .map_or(90, |(_, q)| *q);
            Ok(Box::new(Linear {
                options: linear::LinearOptions {
                    loss: linear::Loss::MaxQuantile(q),
                    ..linear::LinearOptions::default()
                },
            }))
        }
        other => Err(ModelError::Invalid(format!(
            "unknown model {other:?}; built-in models are {}",
            BUILTIN.join(", ")
        ))),
    }
}

/// Buckets in `seconds` at `step`, if `step` divides it.
pub(crate) fn buckets_in(seconds: i64, step: i64) -> Option<usize> {
    (step > 0 && seconds % step == 0)
        .then(|| usize::try_from(seconds / step).ok())
        .flatten()
}

/// The last present value of `history` (`None` when every bucket is missing).
pub(crate) fn last_present(history: &History) -> Option<f64> {
    history.values.iter().rev().copied().find(|v| !v.is_nan())
}

/// The last `len` buckets of `history`, forward-filled (a leading gap takes the last value
/// before the tail, or the first value inside it). `None` if the history is shorter than
/// `len` or has no present value at all.
pub(crate) fn filled_tail(history: &History, len: usize) -> Option<Vec<f64>> {
    let values = &history.values;
    let start = values.len().checked_sub(len)?;
    let seed = values[..start]
        .iter()
        .rev()
        .chain(values[start..].iter())
        .copied()
        .find(|v| !v.is_nan())?;
    let mut last = seed;
    Some(
        values[start..]
            .iter()
            .map(|&v| {
                if !v.is_nan() {
                    last = v;
                }
                last
            })
            .collect(),
    )
}

/// The targets read from a forecast path (`path[0]` = origin + 1), clipped at 0.
pub(crate) fn targets_from_path(targets: &[Target], path: &[f64]) -> Result<Vec<f64>, ModelError> {
    targets
        .iter()
        .map(|&target| {
            target
                .from_path(path)
                .map(crate::forecast::clip_at_zero)
                .ok_or(ModelError::UnsupportedTarget(target))
        })
        .collect()
}

/// The longest horizon among `targets` (0 if none).
pub(crate) fn max_steps(targets: &[Target]) -> usize {
    targets.iter().map(|t| t.steps()).max().unwrap_or(0)
}

/// Fails unless `history` has the step the model was fitted for.
pub(crate) fn check_step(expected: i64, history: &History) -> Result<(), ModelError> {
    if history.step == expected {
        Ok(())
    } else {
        Err(ModelError::StepMismatch {
            expected,
            have: history.step,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_name_builds_and_reports_its_name() {
        for name in BUILTIN {
            let model = build(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(model.name(), *name);
        }
        assert!(build(DEFAULT).is_ok());
        assert_eq!(
            build("prophet").map(|m| m.name().to_string()),
            Err(ModelError::Invalid(format!(
                "unknown model \"prophet\"; built-in models are {}",
                BUILTIN.join(", ")
            )))
        );
    }

    #[test]
    fn filled_tail_seeds_from_before_the_tail() {
        let history = History::new(0, 60, vec![1.0, 2.0, f64::NAN, f64::NAN, 5.0]);
        assert_eq!(filled_tail(&history, 3), Some(vec![2.0, 2.0, 5.0]));
        assert_eq!(filled_tail(&history, 6), None);
        let leading = History::new(0, 60, vec![f64::NAN, 3.0]);
        assert_eq!(filled_tail(&leading, 2), Some(vec![3.0, 3.0]));
    }
}
