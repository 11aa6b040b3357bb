//! The `forecast:` block of a rule (augur's extension): its compiled form ([`ForecastSpec`])
//! and its validation, which is pure: an ONNX model's path is joined to the config file's
//! directory here, and whether the file exists is checked at load ([`check_model_files`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Problem;
use super::compile::{Fields, Walker, join};
use super::yaml::Node;

const FORECAST_KEYS: &[&str] = &[
    "name",
    "model",
    "horizon",
    "step",
    "history",
    "reduce",
    "headroom",
    "serve",
    "fallbackWindow",
];

/// Most buckets a forecast's `history` or `fallbackWindow` may span per series (4 bytes per
/// history bucket, 12 per tracked origin; 200,000 is 139 days at 1 minute).
const MAX_WINDOW_BUCKETS: u64 = 200_000;

/// The model used when a `forecast` block names none.
pub const DEFAULT_FORECAST_MODEL: &str = crate::forecast::model::DEFAULT;

/// Which model a `forecast` block names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ModelRef {
    /// A built-in model by name (one of `forecast::model::BUILTIN`).
    Builtin(String),
    /// An ONNX model file (path resolved against the config file's directory).
    Onnx(std::path::PathBuf),
}

impl std::fmt::Display for ModelRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelRef::Builtin(name) => f.write_str(name),
            ModelRef::Onnx(path) => write!(f, "{}", path.display()),
        }
    }
}

/// `forecast.reduce`: which value of the forecast path is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reduce {
    /// The maximum over (now, now + horizon] (default): capacity for the whole horizon.
    Max,
    /// The value at now + horizon.
    Point,
}

/// `forecast.serve`: what the twin metric reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServeMode {
    /// max(live, forecast): never below what a reactive HPA would see (default).
    Max,
    /// The forecast alone.
    Forecast,
}

/// A compiled `forecast` block of a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastSpec {
    /// Line of the block in the file.
    pub line: usize,
    /// `name`: the twin metric's name; `${metric}` stands for the live metric's name
    /// (default `${metric}_forecast`).
    pub name: String,
    /// `model`.
    pub model: ModelRef,
    /// `horizon` (default 10m).
    pub horizon: Duration,
    /// `step` (default 1m): history resolution and refresh period.
    pub step: Duration,
    /// `history` (default 7d): how much history models see.
    pub history: Duration,
    /// `reduce` (default max).
    pub reduce: Reduce,
    /// `headroom` (default 0): the forecast is multiplied by `1 + headroom`.
    pub headroom: f64,
    /// `serve` (default max).
    pub serve: ServeMode,
    /// `fallbackWindow` (default 1h): serve live while the forecast's tracked error over
    /// this window is worse than persistence's; 0 disables the check.
    pub fallback_window: Duration,
}

impl ForecastSpec {
    /// The twin metric name for a live metric name.
    pub fn twin_name(&self, live: &str) -> String {
        self.name.replace("${metric}", live)
    }

    /// Steps in the horizon (≥ 1).
    pub fn horizon_steps(&self) -> usize {
        (self.horizon.as_secs() / self.step.as_secs().max(1)) as usize
    }

    /// Buckets of history kept.
    pub fn history_buckets(&self) -> usize {
        (self.history.as_secs() / self.step.as_secs().max(1)) as usize
    }
}

/// An ONNX model file a `forecast.model` names, to be checked at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ModelFile {
    /// The path, joined to the config file's directory when relative.
    pub(crate) path: PathBuf,
    /// Line of the `model` field.
    pub(crate) line: usize,
    /// Field path, `rules[i].forecast.model`.
    pub(crate) field: String,
    /// How many problems were found before it: where its problem goes, so problems come in
    /// the order of the file's fields.
    pub(crate) position: usize,
}

/// The load step after the pure compile: a problem for every ONNX model file that does not
/// exist, placed among `problems` as if validation had found it.
pub(crate) fn check_model_files(files: &[ModelFile], file: &str, problems: &mut Vec<Problem>) {
    for model in files.iter().rev() {
        if model.path.is_file() {
            continue;
        }
        let problem = Problem {
            file: file.to_owned(),
            line: model.line,
            path: model.field.clone(),
            message: format!(
                "ONNX model file {} not found (relative paths start at the config file's directory)",
                model.path.display()
            ),
        };
        problems.insert(model.position.min(problems.len()), problem);
    }
}

impl Walker<'_> {
    /// `forecast:` of a rule, validated.
    pub(super) fn forecast(&mut self, node: &Node, path: &str) -> Option<ForecastSpec> {
        let fields = self.fields(node, path, FORECAST_KEYS)?;
        let before = self.problems.len();
        let name = self.twin_name(&fields, path);
        let model = match fields.get("model").filter(|n| !n.is_null()) {
            None => Some(ModelRef::Builtin(DEFAULT_FORECAST_MODEL.to_owned())),
            Some(n) => {
                let p = join(path, "model");
                let text = self.string(n, &p)?;
                self.model_ref(text.trim(), n.line, &p)
            }
        };
        let minute = Duration::from_secs(60);
        let horizon = self.duration_field(&fields, path, "horizon", 10 * minute);
        let step = self.duration_field(&fields, path, "step", minute);
        let history = self.duration_field(&fields, path, "history", 7 * 24 * 60 * minute);
        let fallback_window = self.duration_field(&fields, path, "fallbackWindow", 60 * minute);
        let reduce = self
            .choice(&fields, path, "reduce", &["max", "point"])
            .map(|i| [Reduce::Max, Reduce::Point][i]);
        let serve = self
            .choice(&fields, path, "serve", &["max", "forecast"])
            .map(|i| [ServeMode::Max, ServeMode::Forecast][i]);
        let headroom = match fields.get("headroom").filter(|n| !n.is_null()) {
            None => Some(0.0),
            Some(n) => {
                let p = join(path, "headroom");
                let text = self.string(n, &p)?;
                self.headroom(&text, n.line, &p)
            }
        };
        if let Some((step, line)) = step {
            self.windows(path, (step, line), horizon, history, fallback_window);
        }
        if self.problems.len() > before {
            return None;
        }
        Some(ForecastSpec {
            line: fields.line,
            name: name?,
            model: model?,
            horizon: horizon?.0,
            step: step?.0,
            history: history?.0,
            reduce: reduce?,
            headroom: headroom?,
            serve: serve?,
            fallback_window: fallback_window?.0,
        })
    }

    /// `forecast.name`: the twin's name, with `${metric}` for the live metric's.
    fn twin_name(&mut self, fields: &Fields<'_>, path: &str) -> Option<String> {
        let p = join(path, "name");
        let (name, line) = match fields.get("name").filter(|n| !n.is_null()) {
            None => ("${metric}_forecast".to_owned(), fields.line),
            Some(n) => (self.string(n, &p)?, n.line),
        };
        let rest = name.replace("${metric}", "");
        let why = if name.trim().is_empty() {
            Some("must not be empty".to_owned())
        } else if name.contains('/') {
            Some(format!(
                "{name:?} contains `/`, which cannot appear in a metric path"
            ))
        } else if rest.contains('$') {
            Some(format!(
                "{name:?}: the only variable is `${{metric}}` (the live metric's name)"
            ))
        } else if rest.trim().is_empty() {
            Some(format!(
                "{name:?} is the live metric's own name, which the live metric keeps, so the twin would never be served; use e.g. \"${{metric}}_forecast\""
            ))
        } else {
            None
        };
        if let Some(why) = why {
            self.problem(line, &p, why);
        }
        Some(name)
    }

    /// `forecast.model`: a built-in model's name, or an ONNX file (recorded in
    /// `model_files` for the load step to check).
    fn model_ref(&mut self, text: &str, line: usize, p: &str) -> Option<ModelRef> {
        if text.ends_with(".onnx") {
            let relative = Path::new(text);
            let path = match Path::new(self.file).parent() {
                Some(dir) if relative.is_relative() => dir.join(relative),
                _ => relative.to_owned(),
            };
            self.model_files.push(ModelFile {
                path: path.clone(),
                line,
                field: p.to_owned(),
                position: self.problems.len(),
            });
            Some(ModelRef::Onnx(path))
        } else if crate::forecast::model::BUILTIN.contains(&text) {
            Some(ModelRef::Builtin(text.to_owned()))
        } else {
            self.problem(
                line,
                p,
                format!(
                    "unknown model {text:?}; built-in models are {}, or give a path ending in .onnx",
                    crate::forecast::model::BUILTIN.join(", ")
                ),
            );
            None
        }
    }

    /// `forecast.headroom`: a fraction ≥ 0.
    fn headroom(&mut self, text: &str, line: usize, p: &str) -> Option<f64> {
        match text.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Some(v),
            _ => {
                self.problem(
                    line,
                    p,
                    format!("invalid headroom {text:?}: expected a fraction ≥ 0, e.g. 0.2 for 20 % above the forecast"),
                );
                None
            }
        }
    }

    /// How `step`, `horizon`, `history` and `fallbackWindow` fit together: whole seconds, a
    /// horizon of whole steps shorter than the history, and bounded buckets per series.
    fn windows(
        &mut self,
        path: &str,
        (step, line): (Duration, usize),
        horizon: Option<(Duration, usize)>,
        history: Option<(Duration, usize)>,
        fallback_window: Option<(Duration, usize)>,
    ) {
        if step < Duration::from_secs(1) || step.subsec_nanos() != 0 {
            self.problem(
                line,
                &join(path, "step"),
                format!(
                    "step {} must be a whole number of seconds, at least 1s",
                    humantime::format_duration(step)
                ),
            );
            return;
        }
        if let Some((horizon, hline)) = horizon {
            if horizon.is_zero() || horizon.as_millis() % step.as_millis() != 0 {
                self.problem(
                    hline,
                    &join(path, "horizon"),
                    format!(
                        "horizon {} must be a positive multiple of step {}",
                        humantime::format_duration(horizon),
                        humantime::format_duration(step)
                    ),
                );
            } else if let Some((history, line)) = history
                && history <= horizon
            {
                self.problem(
                    line,
                    &join(path, "history"),
                    format!(
                        "history {} must be longer than horizon {}",
                        humantime::format_duration(history),
                        humantime::format_duration(horizon)
                    ),
                );
            }
        }
        // Each series holds its history and error window in memory, and its first refresh
        // downloads the whole history: bound both per series.
        let costs = [
            (
                "history",
                history,
                "4 bytes each in memory, all downloaded by the first refresh",
            ),
            ("fallbackWindow", fallback_window, "12 bytes each in memory"),
        ];
        for (field, window, cost) in costs {
            let Some((window, line)) = window else {
                continue;
            };
            let buckets = window.as_secs() / step.as_secs();
            if buckets > MAX_WINDOW_BUCKETS {
                self.problem(
                    line,
                    &join(path, field),
                    format!(
                        "{field} {} at step {} is {buckets} buckets per series ({cost}), more than {MAX_WINDOW_BUCKETS} (7 days at 1m is 10080): shorten it or use a longer step",
                        day_duration(window),
                        day_duration(step)
                    ),
                );
            }
        }
    }
}

/// A duration in whole days, hours, minutes and seconds (`139d`, `1d12h`, `15s`), the units
/// a window is written in (humantime shows 139 days as months).
fn day_duration(d: Duration) -> String {
    let mut left = d.as_secs();
    let mut out = String::new();
    for (unit, seconds) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if left >= seconds {
            out.push_str(&format!("{}{unit}", left / seconds));
            left %= seconds;
        }
    }
    if out.is_empty() { "0s".to_owned() } else { out }
}
