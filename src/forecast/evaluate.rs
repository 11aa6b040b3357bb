//! Rolling-origin evaluation: refit a model periodically and forecast from every origin of
//! an evaluation window, as forecast-anchors.md describes (daily refits, no look-ahead).

use super::{History, Model, ModelError, Target};

/// How a rolling-origin run refits and which origins it forecasts from.
#[derive(Debug, Clone, Copy)]
pub struct RollingOptions {
    /// Index of the first origin (bucket) forecast from.
    pub first_origin: usize,
    /// Buckets between refits (1 day = 1440 at 60 s).
    pub refit_every: usize,
    /// Buckets of history a fit sees at most (the newest ones before the refit point).
    pub train_window: usize,
}

/// For each origin `first_origin ..= len - 1`, one value per target (`NaN` where the model
/// failed). A refit at bucket `R` sees only buckets `< R`; forecasts from origin `t` see
/// buckets `..= t`.
pub fn rolling_forecasts(
    model: &dyn Model,
    history: &History,
    targets: &[Target],
    options: RollingOptions,
) -> Result<Vec<Vec<f64>>, ModelError> {
    let len = history.len();
    let first = options.first_origin.min(len);
    let refit_every = options.refit_every.max(1);
    let mut out = Vec::with_capacity(len - first);
    let mut fitted = None;
    for origin in first..len {
        if (origin - first).is_multiple_of(refit_every) {
            let train_start = origin.saturating_sub(options.train_window);
            let train = History::new(
                history.start + train_start as i64 * history.step,
                history.step,
                history.values[train_start..origin].to_vec(),
            );
            fitted = Some(model.fit(&train, targets)?);
        }
        let Some(model) = fitted.as_ref() else {
            continue;
        };
        let seen = history.prefix(origin + 1);
        out.push(
            model
                .predict(&seen)
                .unwrap_or_else(|_| vec![f64::NAN; targets.len()]),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::model::Persistence;

    #[test]
    fn persistence_forecasts_the_origin_value() {
        let history = History::new(0, 60, vec![1.0, 2.0, 3.0, 4.0]);
        let forecasts = rolling_forecasts(
            &Persistence,
            &history,
            &[Target::Point(1)],
            RollingOptions {
                first_origin: 2,
                refit_every: 1,
                train_window: 10,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(forecasts, vec![vec![3.0], vec![4.0]]);
    }
}
