//! Accuracy benchmark: rolling-origin backtests of the built-in forecasters on the shared
//! traces with the anchors' method (last 7 days, daily refits on data strictly before the
//! refit, horizons 5/10/15/30 min, point and max targets), printed as Markdown tables.
//!
//! Run: `cargo bench --bench accuracy` (every `*.csv` in `$AUGUR_TRACES`, default
//! `/work/shared/data`; `-- --models 'a;b'` and `-- --traces DIR` to change). Under
//! `cargo test` it runs a small smoke case on the NASA fixture that checks the scores.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use augur::forecast::evaluate::{RollingOptions, Scores, backtest};
use augur::forecast::model::linear::Loss;
use augur::forecast::model::{self, Linear, LinearOptions};
use augur::forecast::trace::load_csv;
use augur::forecast::{History, Target};
use augur::forecast::{Model, Transform};

const MINUTES: [i64; 4] = [5, 10, 15, 30];

/// Point and max targets at 5/10/15/30 minutes, in buckets of `step`.
fn targets(step: i64) -> Vec<Target> {
    let steps: Vec<usize> = MINUTES
        .iter()
        .map(|m| usize::try_from((m * 60 / step).max(1)).unwrap())
        .collect();
    steps
        .iter()
        .map(|&h| Target::Point(h))
        .chain(steps.iter().map(|&h| Target::Max(h)))
        .collect()
}

struct Run {
    model: String,
    scores: Scores,
    seconds: f64,
}

/// A built-in model, or a `linear?key=value&…` variant for tuning (keys: transform=log|id
/// (log: ln(1 + x)), scales=a,b (the candidate log scales, fractions of the mean; maxscales=
/// for max targets only, after scales), loss=l1|l2,
/// lags, days (seasonal_days), halfwidth, weekly=0|1, windows=a,b).
fn build(name: &str) -> Box<dyn Model> {
    let Some(query) = name.strip_prefix("linear?") else {
        return model::build(name).unwrap();
    };
    let mut options = LinearOptions::default();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap();
        match key {
            "transform" => {
                options.transform = Some(if value == "log" {
                    Transform::LOG1P
                } else {
                    Transform::Identity
                })
            }
            "loss" => {
                options.loss = if value == "l2" {
                    Loss::Squared
                } else {
                    Loss::Absolute
                }
            }
            "scales" => {
                let fractions = value.split(',').map(|v| v.parse().unwrap()).collect();
                options.log_scales = model::linear::LogScales::all(fractions)
            }
            "maxscales" => {
                options.log_scales.max = value.split(',').map(|v| v.parse().unwrap()).collect()
            }
            "lags" => options.lags = value.parse().unwrap(),
            "days" => options.seasonal_days = value.parse().unwrap(),
            "halfwidth" => options.seasonal_halfwidth = value.parse().unwrap(),
            "weekly" => options.weekly = value == "1",
            "windows" => {
                options.recent_windows = value.split(',').map(|v| v.parse().unwrap()).collect()
            }
            other => panic!("unknown linear option {other}"),
        }
    }
    Box::new(Linear { options })
}

fn run(name: &str, history: &History, days: usize) -> Run {
    let targets = targets(history.step);
    // One model per target, as the engine makes one per series.
    let built: Vec<Box<dyn Model>> = targets.iter().map(|_| build(name)).collect();
    let models: Vec<&dyn Model> = built.iter().map(AsRef::as_ref).collect();
    let options = RollingOptions::last_days(history, days);
    let started = Instant::now();
    let scores =
        backtest(&models, history, &targets, options).unwrap_or_else(|e| panic!("{name}: {e}"));
    Run {
        model: name.to_string(),
        scores,
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn print_trace(trace: &str, runs: &[Run], step: i64) {
    let horizon = |m: i64| usize::try_from((m * 60 / step).max(1)).unwrap();
    println!("\n#### {trace}\n");
    println!(
        "| model | 5m point/max | 10m point/max | 15m point/max | 30m point/max | 10m point MAE | 10m max MAE | 10m point sMAPE % | 10m max sMAPE % | n (10m) | run s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    if let Some(first) = runs.first() {
        let s = &first.scores;
        let p = s.persistence[s
            .targets
            .iter()
            .position(|&t| t == Target::Point(horizon(10)))
            .unwrap()];
        let m = s.persistence[s
            .targets
            .iter()
            .position(|&t| t == Target::Max(horizon(10)))
            .unwrap()];
        println!(
            "| persistence | 1.000 / 1.000 | 1.000 / 1.000 | 1.000 / 1.000 | 1.000 / 1.000 | {:.4} | {:.4} | {:.1} | {:.1} | {} | – |",
            p.mae, m.mae, p.smape, m.smape, p.n
        );
    }
    for run in runs {
        let s = &run.scores;
        let ratios: Vec<String> = MINUTES
            .iter()
            .map(|&m| {
                let p = s.get(Target::Point(horizon(m))).unwrap().ratio;
                let x = s.get(Target::Max(horizon(m))).unwrap().ratio;
                format!("{p:.3} / {x:.3}")
            })
            .collect();
        let p = s.get(Target::Point(horizon(10))).unwrap();
        let m = s.get(Target::Max(horizon(10))).unwrap();
        println!(
            "| {} | {} | {:.4} | {:.4} | {:.1} | {:.1} | {} | {:.1} |",
            run.model,
            ratios.join(" | "),
            p.mae,
            m.mae,
            p.smape,
            m.smape,
            p.n,
            run.seconds
        );
    }
}

fn traces(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    files
}

fn smoke() {
    // Three days of NASA at 60 s: the last day is evaluated after one refit on two days.
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/traces/nasa_ksc_1995_07_10-13_60s.csv");
    let history = load_csv(&path).unwrap();
    for name in ["persistence", "seasonal-naive", "linear"] {
        let run = run(name, &history, 1);
        let point = run.scores.get(Target::Point(10)).unwrap();
        assert!(point.n > 1000, "{name}: {point:?}");
        assert_eq!(run.scores.fallbacks, vec![0; 8], "{name}");
        if name == "persistence" {
            assert!((point.ratio - 1.0).abs() < 1e-12);
        } else {
            assert!(
                point.ratio.is_finite() && point.ratio > 0.0,
                "{name}: {point:?}"
            );
        }
    }
}

/// Fits the `linear` model (what the default serves) on the NASA trace, then times `predict_batch` over `count`
/// one-week histories (each a different end point of the trace).
fn throughput(dir: &Path, count: usize) {
    let history = load_csv(&dir.join("nasa_ksc_http_1995_07_60s.csv")).unwrap();
    let targets = targets(history.step);
    let fit_at = history.len() - 7 * 1440;
    let started = Instant::now();
    let model = model::build("linear").unwrap();
    let fitted = model.fit(&history.prefix(fit_at), &targets).unwrap();
    let fit_seconds = started.elapsed().as_secs_f64();
    let week = 7 * 1440 + 40;
    let histories: Vec<History> = (0..count)
        .map(|i| {
            let end = fit_at + (i * 7) % (7 * 1440 - 40);
            History::new(
                history.start + (end - week) as i64 * history.step,
                history.step,
                history.values[end - week..end].to_vec(),
            )
        })
        .collect();
    let refs: Vec<&History> = histories.iter().collect();
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let out = fitted.predict_batch(&refs);
        rounds.push(started.elapsed().as_secs_f64());
        assert!(out.iter().all(|r| r.is_ok()));
    }
    rounds.sort_by(f64::total_cmp);
    let median = rounds[2];
    println!(
        "{}: fit {fit_seconds:.1} s; predict_batch of {count} series x {} targets: median {:.1} ms (min {:.1}, max {:.1}) = {:.2} % of one core at one refresh per minute",
        model.name(),
        targets.len(),
        median * 1e3,
        rounds[0] * 1e3,
        rounds[4] * 1e3,
        median / 60.0 * 100.0
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        smoke();
        return;
    }
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let dir = flag("--traces")
        .or_else(|| std::env::var("AUGUR_TRACES").ok())
        .unwrap_or_else(|| "/work/shared/data".to_string());
    let models: Vec<String> = flag("--models")
        .map(|m| m.split(';').map(str::to_string).collect())
        .unwrap_or_else(|| model::BUILTIN.iter().map(|s| s.to_string()).collect());
    let days: usize = flag("--days").map_or(7, |d| d.parse().unwrap());
    if let Some(series) = flag("--throughput") {
        throughput(Path::new(&dir), series.parse().unwrap());
        return;
    }
    println!("MAE relative to persistence (point / max target), last {days} days, daily refits");
    for path in traces(Path::new(&dir)) {
        let history = load_csv(&path).unwrap();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let runs: Vec<Run> = models
            .iter()
            .filter(|m| m.as_str() != "persistence")
            .map(|m| {
                let r = run(m, &history, days);
                eprintln!("{name} {m}: {:.1} s", r.seconds);
                r
            })
            .collect();
        print_trace(&name, &runs, history.step);
    }
}
