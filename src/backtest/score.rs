//! Rolling-origin forecasts of every model on the evaluation window, scored for the
//! accuracy tables and replayed as the twin would serve them.

use super::served::{self, WindowRow};
use super::{AccuracyRow, BASELINE, Settings, level_oracle_name, reference, report};
use crate::forecast::evaluate::{self, RollingOptions, RollingRun, rolling_run};
use crate::forecast::{History, Target, model};

/// What scoring the models found.
#[derive(Debug)]
pub struct Scored {
    /// Accuracy, model-major, horizons in flag order.
    pub accuracy: Vec<AccuracyRow>,
    /// Per model, the served forecasts and the worst 1-hour window ([`served::rows`]).
    pub windows: Vec<WindowRow>,
    /// Models that could not be evaluated, with why.
    pub failed: Vec<(String, String)>,
    /// One note per model some of whose refits failed.
    pub notes: Vec<String>,
}

/// Forecasts every model (and the `--level-oracle` reference) from each origin from
/// `first_origin` on, and scores them; an error when the persistence baseline fails.
pub fn score_models(
    name: &str,
    history: &History,
    settings: &Settings,
    first_origin: usize,
) -> anyhow::Result<Scored> {
    let (targets, point_target, hpa_target) = targets(settings);
    let options = RollingOptions {
        first_origin,
        refit_every: settings.refit,
        train_window: settings.train_window,
    };
    let runs = forecast_all(history, &settings.models, &targets, options);

    let mut failed = Vec::new();
    let mut notes = Vec::new();
    let mut good: Vec<(String, Vec<Vec<f64>>)> = Vec::new();
    for (model, result) in runs {
        match result {
            Ok(run) => {
                if let Some(note) = failed_fits_note(&model, history, &run) {
                    notes.push(note);
                }
                good.push((model, run.forecasts));
            }
            Err(e) => failed.push((model, e)),
        }
    }
    if let Some(k) = settings.level_oracle {
        good.push((
            level_oracle_name(k),
            reference::level_oracle(history, first_origin, &targets, k),
        ));
    }
    if !good.iter().any(|(m, _)| m == BASELINE) {
        anyhow::bail!("{name}: the persistence baseline could not be evaluated: {failed:?}");
    }
    let windows = served::rows(
        history,
        &good,
        &targets,
        [point_target, hpa_target],
        served::Replay {
            first_origin,
            fallback_window: settings.fallback_window,
            train_window: settings.train_window,
        },
    );
    let accuracy = accuracy_rows(history, settings, first_origin, &targets, &good);
    Ok(Scored {
        accuracy,
        windows,
        failed,
        notes,
    })
}

/// The targets every model is forecast for: point and max at each accuracy horizon, then
/// (if not among them) the max and the point at the predictive horizon; with those two,
/// point first.
fn targets(settings: &Settings) -> (Vec<Target>, Target, Target) {
    let mut targets: Vec<Target> = Vec::new();
    for &h in &settings.horizons {
        targets.extend([Target::Point(h), Target::Max(h)]);
    }
    let hpa_target = Target::Max(settings.forecast_horizon.max(1));
    let point_target = Target::Point(settings.forecast_horizon.max(1));
    for t in [hpa_target, point_target] {
        if !targets.contains(&t) {
            targets.push(t);
        }
    }
    (targets, point_target, hpa_target)
}

/// Each model's point and max accuracy at each `--horizons` horizon.
fn accuracy_rows(
    history: &History,
    settings: &Settings,
    first_origin: usize,
    targets: &[Target],
    good: &[(String, Vec<Vec<f64>>)],
) -> Vec<AccuracyRow> {
    let mut accuracy = Vec::new();
    for (model, forecasts) in good {
        let scores = evaluate::score(history, first_origin, targets, forecasts);
        for &h in &settings.horizons {
            let at = |t: Target| scores.get(t).copied().unwrap_or_default();
            accuracy.push(AccuracyRow {
                model: model.clone(),
                horizon: h,
                point: at(Target::Point(h)),
                max: at(Target::Max(h)),
            });
        }
    }
    accuracy
}

/// What a model's failed refits cost, for the report: `None` when every refit worked.
fn failed_fits_note(model: &str, history: &History, run: &RollingRun) -> Option<String> {
    let first = run.failed_fits.first()?;
    let origins: usize = run.failed_fits.iter().map(|f| f.origins).sum();
    let when = report::minute(history.start + first.origin as i64 * history.step);
    Some(format!(
        "model `{model}` has no forecast at {origins} of {} origins: {} of its {} refits failed, the first at {when} UTC ({}); persistence is scored and served there, as augur serves the live value",
        run.forecasts.len(),
        run.failed_fits.len(),
        run.refits,
        first.error
    ))
}

type ModelRun = (String, Result<RollingRun, String>);

/// Rolling forecasts of every model, two models at a time (one per core).
fn forecast_all(
    history: &History,
    models: &[String],
    targets: &[Target],
    options: RollingOptions,
) -> Vec<ModelRun> {
    let run_one = |name: &String| -> ModelRun {
        // One model per target, as the engine makes one per series.
        let result = targets
            .iter()
            .map(|_| model::build(name))
            .collect::<Result<Vec<_>, _>>()
            .map(|built| {
                let models: Vec<&dyn crate::forecast::Model> =
                    built.iter().map(AsRef::as_ref).collect();
                rolling_run(&models, history, targets, options)
            })
            .map_err(|e| e.to_string());
        (name.clone(), result)
    };
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(models.len().max(1));
    let mut out: Vec<Option<ModelRun>> = vec![None; models.len()];
    std::thread::scope(|scope| {
        let chunks: Vec<Vec<(usize, &String)>> = (0..workers)
            .map(|w| {
                models
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % workers == w)
                    .collect()
            })
            .collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|(i, name)| (i, run_one(name)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            match handle.join() {
                Ok(results) => {
                    for (i, run) in results {
                        out[i] = Some(run);
                    }
                }
                Err(_) => tracing::error!("a forecasting thread panicked"),
            }
        }
    });
    models
        .iter()
        .zip(out)
        .map(|(name, run)| {
            run.unwrap_or_else(|| (name.clone(), Err("the model panicked".to_owned())))
        })
        .collect()
}
