//! Rolling-origin evaluation: refit a model periodically, forecast from every origin of an
//! evaluation window and score the forecasts, as the anchors' method does (benches/README.md,
//! "Backtest" and "Forecast accuracy"): daily refits, no look-ahead, gaps never scored, forecasts
//! clipped at 0, MAE relative to persistence on the same points.

use super::{History, Model, ModelError, Target};

/// Seconds in a day.
const DAY: i64 = 86_400;

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

impl RollingOptions {
    /// The anchors' setup: origins are the last `days` days of `history`, refits daily,
    /// each fit sees at most the 28 days before it.
    pub fn last_days(history: &History, days: usize) -> Self {
        let per_day = usize::try_from(DAY / history.step.max(1))
            .unwrap_or(1)
            .max(1);
        Self {
            first_origin: history.len().saturating_sub(days * per_day),
            refit_every: per_day,
            train_window: 28 * per_day,
        }
    }
}

/// For each origin `first_origin ..= len - 1`, one value per target (`NaN` where the model
/// failed), `models[j]` forecasting `targets[j]` (one model per target, as the engine makes
/// one per series: a guarded model keeps its error tracking in the model). A refit at
/// bucket `R` sees only buckets `< R`; forecasts from origin `t` see buckets `..= t`. A
/// refit that fails (too short a history so far, a gap) leaves the origins until the next
/// refit without a forecast, as the serving engine serves the live value then; only a model
/// no refit could fit is an error (the first refit's).
pub fn rolling_forecasts(
    models: &[&dyn Model],
    history: &History,
    targets: &[Target],
    options: RollingOptions,
) -> Result<Vec<Vec<f64>>, ModelError> {
    let run = rolling_run(models, history, targets, options);
    match run.failed_fits.first() {
        Some(failed) if run.failed_fits.len() == run.refits => Err(failed.error.clone()),
        _ => Ok(run.forecasts),
    }
}

/// A refit that failed in a rolling run, and the origins left without a forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedFit {
    /// Origin (bucket index) of the refit.
    pub origin: usize,
    /// Origins until the next refit (the run's end).
    pub origins: usize,
    /// Why.
    pub error: ModelError,
}

/// What [`rolling_run`] produced.
#[derive(Debug, Clone, PartialEq)]
pub struct RollingRun {
    /// One row per origin from `first_origin`, as [`rolling_forecasts`] returns them.
    pub forecasts: Vec<Vec<f64>>,
    /// Refits that failed, oldest first.
    pub failed_fits: Vec<FailedFit>,
    /// Refits attempted.
    pub refits: usize,
}

/// [`rolling_forecasts`], also saying which refits failed; when all of them did, every
/// origin is left without a forecast (`NaN`).
pub fn rolling_run(
    models: &[&dyn Model],
    history: &History,
    targets: &[Target],
    options: RollingOptions,
) -> RollingRun {
    let len = history.len();
    let first = options.first_origin.min(len);
    let refit_every = options.refit_every.max(1);
    let mut out = Vec::with_capacity(len - first);
    let mut failed_fits: Vec<FailedFit> = Vec::new();
    // One fit per target, as the serving engine fits each twin for its own target (a
    // model fitted for several chooses some things, such as `linear`'s transform, for all
    // of them at once).
    let mut fitted: Vec<Option<Box<dyn super::Fitted>>> = Vec::new();
    let mut refits = 0;
    for origin in first..len {
        if (origin - first).is_multiple_of(refit_every) {
            let train_start = origin.saturating_sub(options.train_window);
            let train = History::new(
                history.start + train_start as i64 * history.step,
                history.step,
                history.values[train_start..origin].to_vec(),
            );
            refits += 1;
            let mut failed = None;
            fitted = targets
                .iter()
                .zip(models)
                .map(|(&target, model)| match model.fit(&train, &[target]) {
                    Ok(f) => Some(f),
                    Err(error) => {
                        failed.get_or_insert(error);
                        None
                    }
                })
                .collect();
            if let Some(error) = failed {
                failed_fits.push(FailedFit {
                    origin,
                    origins: refit_every.min(len - origin),
                    error,
                });
            }
        }
        if fitted.iter().all(Option::is_none) {
            out.push(vec![f64::NAN; targets.len()]);
            continue;
        }
        let seen = history.prefix(origin + 1);
        let mut row: Vec<f64> = fitted
            .iter()
            .map(|f| {
                f.as_ref()
                    .and_then(|f| f.predict(&seen).ok())
                    .and_then(|v| v.first().copied())
                    .unwrap_or(f64::NAN)
            })
            .collect();
        // A target without a model of its own has no forecast.
        row.resize(targets.len(), f64::NAN);
        out.push(row);
    }
    RollingRun {
        forecasts: out,
        failed_fits,
        refits,
    }
}

/// Accuracy of one model on one target.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Metrics {
    /// Points scored (origins whose target buckets all exist).
    pub n: usize,
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Mean absolute percentage error in % (points with actual 0 left out; `NaN` if none).
    pub mape: f64,
    /// Symmetric MAPE in %: mean of 200·|ŷ−y|/(|ŷ|+|y|), 0 when both are 0.
    pub smape: f64,
    /// MAE over the in-sample MAE of the one-step naive forecast (buckets before the first
    /// origin), Hyndman's MASE.
    pub mase: f64,
    /// MAE over persistence's MAE on the same points.
    pub ratio: f64,
}

/// Scores of one model on each target, with persistence's on the same points.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    /// The targets, in the order the forecasts gave them.
    pub targets: Vec<Target>,
    /// The model's metrics per target.
    pub model: Vec<Metrics>,
    /// Persistence's metrics per target, on the same points.
    pub persistence: Vec<Metrics>,
    /// Scored points where the model gave no forecast (`NaN`) and persistence was scored
    /// in its place, per target.
    pub fallbacks: Vec<usize>,
}

impl Scores {
    /// The model's metrics for `target`, if scored.
    pub fn get(&self, target: Target) -> Option<&Metrics> {
        let i = self.targets.iter().position(|&t| t == target)?;
        self.model.get(i)
    }
}

/// The realised value of `target` at `origin` (index): `None` if any bucket it needs is
/// missing or past the end.
pub fn actual(history: &History, origin: usize, target: Target) -> Option<f64> {
    let h = target.steps();
    if h == 0 {
        return None;
    }
    let window = match target {
        Target::Point(_) => history.values.get(origin + h..=origin + h)?,
        Target::Max(_) => history.values.get(origin + 1..=origin + h)?,
    };
    window
        .iter()
        .try_fold(f64::MIN, |m, &v| (!v.is_nan()).then(|| m.max(v)))
}

/// Accumulates absolute, squared and percentage errors.
#[derive(Default)]
struct Sums {
    n: usize,
    abs: f64,
    sq: f64,
    pct: f64,
    pct_n: usize,
    smape: f64,
}

impl Sums {
    fn add(&mut self, forecast: f64, actual: f64) {
        let error = (forecast - actual).abs();
        self.n += 1;
        self.abs += error;
        self.sq += error * error;
        if actual != 0.0 {
            self.pct += error / actual.abs();
            self.pct_n += 1;
        }
        let denominator = forecast.abs() + actual.abs();
        if denominator > 0.0 {
            self.smape += 200.0 * error / denominator;
        }
    }

    fn metrics(&self, naive_scale: f64, persistence_mae: f64) -> Metrics {
        let n = self.n.max(1) as f64;
        let mae = self.abs / n;
        Metrics {
            n: self.n,
            mae,
            rmse: (self.sq / n).sqrt(),
            mape: if self.pct_n > 0 {
                100.0 * self.pct / self.pct_n as f64
            } else {
                f64::NAN
            },
            smape: self.smape / n,
            mase: mae / naive_scale,
            // Both exact (a flat series): as good as persistence, not undefined.
            ratio: if self.n > 0 && mae == 0.0 && persistence_mae == 0.0 {
                1.0
            } else {
                mae / persistence_mae
            },
        }
    }
}

/// Scores `forecasts` (one row per origin from `first_origin`, one value per target, as
/// [`rolling_forecasts`] returns them) against `history`: only origins whose target buckets
/// all exist are scored; forecasts are clipped at 0; persistence (the last present value at
/// the origin) is scored on the same points, and stands in where the model gave `NaN`.
pub fn score(
    history: &History,
    first_origin: usize,
    targets: &[Target],
    forecasts: &[Vec<f64>],
) -> Scores {
    let filled = history.forward_filled();
    let naive_scale = {
        let end = first_origin.min(history.len());
        let (sum, count) = history.values[..end]
            .windows(2)
            .filter(|w| !w[0].is_nan() && !w[1].is_nan())
            .fold((0.0, 0usize), |(s, c), w| (s + (w[1] - w[0]).abs(), c + 1));
        if count > 0 && sum > 0.0 {
            sum / count as f64
        } else {
            f64::NAN
        }
    };
    let mut model = Vec::with_capacity(targets.len());
    let mut persistence = Vec::with_capacity(targets.len());
    let mut fallbacks = Vec::with_capacity(targets.len());
    for (j, &target) in targets.iter().enumerate() {
        let mut ours = Sums::default();
        let mut theirs = Sums::default();
        let mut fell_back = 0;
        for (k, row) in forecasts.iter().enumerate() {
            let origin = first_origin + k;
            let Some(actual) = actual(history, origin, target) else {
                continue;
            };
            let Some(&last) = filled.get(origin) else {
                continue;
            };
            let baseline = last.max(0.0);
            let forecast = match row.get(j) {
                Some(v) if v.is_finite() => v.max(0.0),
                _ => {
                    fell_back += 1;
                    baseline
                }
            };
            ours.add(forecast, actual);
            theirs.add(baseline, actual);
        }
        let persistence_mae = theirs.abs / theirs.n.max(1) as f64;
        model.push(ours.metrics(naive_scale, persistence_mae));
        persistence.push(theirs.metrics(naive_scale, persistence_mae));
        fallbacks.push(fell_back);
    }
    Scores {
        targets: targets.to_vec(),
        model,
        persistence,
        fallbacks,
    }
}

/// Rolling forecasts and their scores in one call (`models[j]` forecasts `targets[j]`).
pub fn backtest(
    models: &[&dyn Model],
    history: &History,
    targets: &[Target],
    options: RollingOptions,
) -> Result<Scores, ModelError> {
    let forecasts = rolling_forecasts(models, history, targets, options)?;
    Ok(score(history, options.first_origin, targets, &forecasts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::model::Persistence;
    use std::sync::Arc;

    #[test]
    fn persistence_forecasts_the_origin_value() {
        let history = History::new(0, 60, vec![1.0, 2.0, 3.0, 4.0]);
        let forecasts = rolling_forecasts(
            &[&Persistence],
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

    #[test]
    fn scores_skip_gaps_and_compare_with_persistence() {
        // Origins 2, 3, 4; bucket 4 is missing.
        let history = History::new(0, 60, vec![0.0, 1.0, 2.0, 4.0, f64::NAN, 8.0]);
        let targets = [Target::Point(1), Target::Max(2)];
        let forecasts = vec![vec![3.0, 5.0], vec![f64::NAN, 6.0], vec![-1.0, 1.0]];
        let scores = score(&history, 2, &targets, &forecasts);
        // Point(1): origin 2 -> 4 (forecast 3, persistence 2); origin 3 -> missing;
        // origin 4 -> 8 (forecast clipped 0, persistence 4).
        let point = scores.model[0];
        assert_eq!(point.n, 2);
        assert!((point.mae - 4.5).abs() < 1e-12);
        assert!((scores.persistence[0].mae - 3.0).abs() < 1e-12);
        assert!((point.ratio - 1.5).abs() < 1e-12);
        assert!((point.rmse - (65.0f64 / 2.0).sqrt()).abs() < 1e-12);
        assert!((point.mape - 100.0 * (0.25 + 1.0) / 2.0).abs() < 1e-12);
        assert!((point.smape - (200.0 / 7.0 + 200.0) / 2.0).abs() < 1e-12);
        // In-sample one-step naive MAE over buckets 0, 1: 1.
        assert!((point.mase - 4.5).abs() < 1e-12);
        // Max(2): only origin 4 lacks bucket 6 and origin 2, 3 touch the gap: nothing scored.
        assert_eq!(scores.model[1].n, 0);
        assert_eq!(scores.fallbacks, vec![0, 0]);
        assert_eq!(actual(&history, 1, Target::Max(2)), Some(4.0));
        assert_eq!(actual(&history, 2, Target::Max(2)), None);
    }

    /// Persistence that refuses to fit on fewer than `0` buckets.
    struct NeedsBuckets(usize);

    impl Model for NeedsBuckets {
        fn name(&self) -> &str {
            "needs-buckets"
        }
        fn fit(
            &self,
            history: &History,
            targets: &[Target],
        ) -> Result<Box<dyn crate::forecast::Fitted>, ModelError> {
            if history.len() < self.0 {
                return Err(ModelError::TooShort {
                    needed: self.0,
                    have: history.len(),
                });
            }
            Persistence.fit(history, targets)
        }
    }

    #[test]
    fn failed_refits_leave_their_origins_without_a_forecast() {
        let history = History::new(0, 60, (0..10).map(f64::from).collect());
        let options = RollingOptions {
            first_origin: 4,
            refit_every: 2,
            train_window: 100,
        };
        // Refits at origins 4 (4 buckets), 6 (6) and 8 (8): the first fails.
        let run = rolling_run(&[&NeedsBuckets(5)], &history, &[Target::Point(1)], options);
        assert_eq!(run.refits, 3);
        assert_eq!(
            run.failed_fits,
            vec![FailedFit {
                origin: 4,
                origins: 2,
                error: ModelError::TooShort { needed: 5, have: 4 },
            }]
        );
        let values: Vec<f64> = run.forecasts.iter().map(|row| row[0]).collect();
        assert!(values[0].is_nan() && values[1].is_nan(), "{values:?}");
        assert_eq!(values[2..], [6.0, 7.0, 8.0, 9.0]);
        // No refit works: the first refit's error.
        assert_eq!(
            rolling_forecasts(&[&NeedsBuckets(9)], &history, &[Target::Point(1)], options),
            Err(ModelError::TooShort { needed: 9, have: 4 })
        );
    }

    /// Every fit so far: the tag of the model fitted and the targets it was fitted for.
    type Fits = Arc<std::sync::Mutex<Vec<(u8, Vec<Target>)>>>;

    /// Records every fit in [`Fits`] under its tag.
    struct Recording(u8, Fits);

    impl Model for Recording {
        fn name(&self) -> &str {
            "recording"
        }
        fn fit(
            &self,
            history: &History,
            targets: &[Target],
        ) -> Result<Box<dyn crate::forecast::Fitted>, ModelError> {
            self.1
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((self.0, targets.to_vec()));
            Persistence.fit(history, targets)
        }
    }

    #[test]
    fn each_target_is_fitted_alone_by_its_own_model_as_the_engine_fits_a_twin() {
        let history = History::new(0, 60, (0..8).map(f64::from).collect());
        let fits = Arc::default();
        let (point, max) = (
            Recording(1, Arc::clone(&fits)),
            Recording(2, Arc::clone(&fits)),
        );
        let targets = [Target::Point(1), Target::Max(2)];
        let options = RollingOptions {
            first_origin: 4,
            refit_every: 2,
            train_window: 100,
        };
        let run = rolling_run(&[&point, &max], &history, &targets, options);
        let one = |tag, target| (tag, vec![target]);
        assert_eq!(
            *fits
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            vec![
                one(1, Target::Point(1)),
                one(2, Target::Max(2)),
                one(1, Target::Point(1)),
                one(2, Target::Max(2)),
            ]
        );
        assert_eq!(
            run.forecasts,
            vec![
                vec![4.0, 4.0],
                vec![5.0, 5.0],
                vec![6.0, 6.0],
                vec![7.0, 7.0]
            ]
        );
    }

    #[test]
    fn a_missing_forecast_is_scored_as_persistence() {
        let history = History::new(0, 60, vec![1.0, 2.0, 3.0, 4.0]);
        let scores = score(
            &history,
            1,
            &[Target::Point(1)],
            &[vec![f64::NAN], vec![4.0]],
        );
        assert_eq!(scores.fallbacks, vec![1]);
        assert_eq!(scores.model[0].n, 2);
        assert!((scores.model[0].mae - 0.5).abs() < 1e-12);
        assert!((scores.persistence[0].mae - 1.0).abs() < 1e-12);
        assert_eq!(scores.get(Target::Point(1)).map(|m| m.n), Some(2));
    }
}
