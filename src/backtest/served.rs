//! What the twin would have served at each origin of a backtest ([`crate::forecast::serve`],
//! the server's decision, with its warm start), and each model's worst 1-hour window at the
//! forecast horizon, as served and alone, and how the windows as served are spread.

use crate::forecast::evaluate;
use crate::forecast::window::{self, Spread, Window};
use crate::forecast::{History, Target, model, serve};

/// One model's forecasts at the forecast horizon (point and max target) as the twin serves
/// them, and its worst 1-hour windows.
#[derive(Debug, Clone)]
pub struct WindowRow {
    /// Model name.
    pub model: String,
    /// Point and max: MAE over persistence's as served (the live value where the twin
    /// distrusts the forecast), over the whole evaluation.
    pub served_ratio: [f64; 2],
    /// Point and max: the worst 1-hour window as served.
    pub served: [Option<Window>; 2],
    /// Point and max: how every 1-hour window as served is spread.
    pub spread: [Option<Spread>; 2],
    /// Point and max: the worst 1-hour window of the model's forecasts alone.
    pub alone: [Option<Window>; 2],
    /// Per origin from the first, the point and max forecasts as served (`NaN`: live).
    pub served_forecasts: [Vec<f64>; 2],
    /// Per origin from the first, the point and max forecasts of the model alone.
    pub alone_forecasts: [Vec<f64>; 2],
}

/// Where the replay starts and the twin's settings.
#[derive(Debug, Clone, Copy)]
pub struct Replay {
    /// First evaluation origin (bucket index).
    pub first_origin: usize,
    /// The twin's `fallbackWindow`, in buckets.
    pub fallback_window: usize,
    /// Buckets the warm start's fit sees at most (as the rolling fits).
    pub train_window: usize,
}

/// Seconds in the worst-window's window.
pub const WINDOW_SECONDS: i64 = 3600;

/// For each model of `runs` (name, forecasts per origin for every target of `targets`), its
/// forecasts of `pair` (the point and max target at the forecast horizon) as the twin serves
/// them and the worst windows. The non-causal `level-oracle` reference is served as it is.
pub fn rows(
    history: &History,
    runs: &[(String, Vec<Vec<f64>>)],
    targets: &[Target],
    pair: [Target; 2],
    replay: Replay,
) -> Vec<WindowRow> {
    let hour = usize::try_from(WINDOW_SECONDS / history.step.max(1))
        .unwrap_or(1)
        .max(1);
    let first = replay.first_origin;
    runs.iter()
        .map(|(name, forecasts)| {
            let reference = name.starts_with("level-oracle");
            let warm = if reference {
                [Vec::new(), Vec::new()]
            } else {
                warm_start(history, name, pair, replay)
            };
            let mut row = WindowRow {
                model: name.clone(),
                served_ratio: [f64::NAN; 2],
                served: [None; 2],
                spread: [None; 2],
                alone: [None; 2],
                served_forecasts: [Vec::new(), Vec::new()],
                alone_forecasts: [Vec::new(), Vec::new()],
            };
            for (i, target) in pair.into_iter().enumerate() {
                let j = targets.iter().position(|&t| t == target).unwrap_or(0);
                let alone: Vec<f64> = forecasts
                    .iter()
                    .map(|f| f.get(j).copied().unwrap_or(f64::NAN))
                    .collect();
                let served = if reference {
                    alone.clone()
                } else {
                    serve::replay(
                        history,
                        first,
                        target,
                        &alone,
                        replay.fallback_window,
                        &warm[i],
                    )
                };
                let scores = evaluate::score(
                    history,
                    first,
                    &[target],
                    &served.iter().map(|&v| vec![v]).collect::<Vec<_>>(),
                );
                row.served_ratio[i] = scores.model.first().map_or(f64::NAN, |m| m.ratio);
                row.alone[i] = window::worst_window(history, first, target, &alone, hour);
                let all = window::windows(history, first, target, &served, hour);
                row.served[i] = window::worst(&all);
                row.spread[i] = Spread::of(&all);
                row.served_forecasts[i] = served;
                row.alone_forecasts[i] = alone;
            }
            row
        })
        .collect()
}

/// The engine's warm start for each target of `pair` ([`serve::warm_start`]): the model
/// fitted as at the first origin, replayed over the last `fallbackWindow` of origins whose
/// outcome is known at the first origin, its bucket included, as the engine's history holds
/// it (empty when the fit fails).
fn warm_start(
    history: &History,
    name: &str,
    pair: [Target; 2],
    replay: Replay,
) -> [Vec<(f64, f64, f64)>; 2] {
    let first = replay.first_origin.min(history.len());
    let start = first.saturating_sub(replay.train_window);
    let train = History::new(
        history.start + start as i64 * history.step,
        history.step,
        history.values[start..first].to_vec(),
    );
    // Each target fitted on its own, as the engine fits each twin.
    let at = |target: Target| {
        model::build(name)
            .ok()
            .and_then(|m| m.fit(&train, &[target]).ok())
            .map_or_else(Vec::new, |fitted| {
                serve::warm_start(
                    fitted.as_ref(),
                    history.prefix(first + 1),
                    target,
                    0,
                    replay.fallback_window,
                )
            })
    };
    [at(pair[0]), at(pair[1])]
}
