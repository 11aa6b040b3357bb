//! Choosing the ridge penalty: each candidate is fitted on the rows before the validation
//! window ([`VALIDATION_DAYS`], one day when the history is too short for them, unless set)
//! and scored on the rows in it by the loss the model is fitted for, relative to
//! persistence's.

use super::rows::{Rows, TargetRows};
use super::solve::{fit_target, predict_rows};
use super::spec::inverse_transform;
use super::{LinearOptions, Loss};
use crate::forecast::model::{DAY, buckets_in, max_steps};
use crate::forecast::{History, Target, Transform};

/// Pinball loss of forecast `f` for actual `a` at quantile `tau` (`None`: absolute error).
fn pinball(tau: Option<f64>, f: f64, a: f64) -> f64 {
    match tau {
        Some(t) if a > f => t * (a - f),
        Some(t) => (1.0 - t) * (f - a),
        None => (f - a).abs(),
    }
}

/// Days held out to choose the penalty and the transform, when the history leaves enough
/// training rows before them (else one day). One day's choice follows that day's noise: two
/// gave the default better 10-minute accuracy on all three shared traces under the anchors'
/// method (28-day fits) and on WorldCup and NAB with the engine's 7-day history, NASA within
/// 0.003; three hurt WorldCup on 7 days (benches/README.md, "Two validation days").
pub(super) const VALIDATION_DAYS: i64 = 2;

/// The rows split at the validation window.
pub(super) struct Split {
    /// Rows whose whole target lies before the window.
    train: Vec<usize>,
    /// Rows whose origin lies in it.
    val: Vec<usize>,
    /// Every row.
    pub(super) all: Vec<usize>,
    /// Whether there are enough rows on both sides to choose a penalty (else the first
    /// candidate is used).
    pub(super) can_validate: bool,
}

impl Split {
    /// Splits `rows` of `history` for `targets`; `p` features need `2 · max(p, 10)`
    /// training rows.
    pub(super) fn new(
        history: &History,
        rows: &Rows,
        targets: &[Target],
        options: &LinearOptions,
        p: usize,
    ) -> Self {
        let horizon = max_steps(targets);
        let at = |validation: usize| Self::at(history, rows, horizon, validation, p);
        match options.validation {
            Some(validation) => at(validation),
            None => {
                let days = |n: i64| buckets_in(n * DAY, history.step).unwrap_or(0);
                let longer = at(days(VALIDATION_DAYS));
                if longer.can_validate {
                    longer
                } else {
                    at(days(1))
                }
            }
        }
    }

    /// The split with the last `validation` buckets of `history` held out.
    fn at(history: &History, rows: &Rows, horizon: usize, validation: usize, p: usize) -> Self {
        let count = rows.origin.len();
        let val_start = history.len().saturating_sub(validation);
        let train: Vec<usize> = (0..count)
            .filter(|&r| rows.origin[r] + horizon < val_start)
            .collect();
        let val: Vec<usize> = (0..count)
            .filter(|&r| rows.origin[r] >= val_start)
            .collect();
        let all: Vec<usize> = (0..count).collect();
        let can_validate = train.len() >= 2 * p.max(10) && val.len() >= 10;
        Self {
            train,
            val,
            all,
            can_validate,
        }
    }

    /// The candidate penalty whose forecasts of the validation rows have the lowest loss
    /// (`default` if none is finite), and that loss relative to persistence's.
    pub(super) fn choose_penalty(
        &self,
        target: &TargetRows<'_>,
        tau: Option<f64>,
        (penalties, loss): (&[f64], Loss),
        transform: Transform,
        default: f64,
    ) -> (f64, f64) {
        let (rows, m, j) = (target.rows, target.m, target.j);
        let mut penalty = default;
        let cols = target.columns(&self.train);
        let y = target.values(&self.train);
        let vcols = target.columns(&self.val);
        let persistence_mae = self
            .val
            .iter()
            .map(|&r| pinball(tau, rows.raw0[r], rows.actual[r * m + j]))
            .sum::<f64>();
        // A constant validation stretch (persistence exact): the plain MAE decides.
        let persistence_mae = Some(persistence_mae)
            .filter(|m| m.is_normal())
            .unwrap_or(1.0);
        let mut best = f64::INFINITY;
        for &candidate in penalties {
            let w = fit_target(&cols, &y, candidate, loss, tau);
            let z = predict_rows(&vcols, &w);
            let mae: f64 = self
                .val
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
        (penalty, best / persistence_mae)
    }
}
