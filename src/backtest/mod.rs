//! `augur backtest`: rolling-origin forecast accuracy and a simulation of the stock HPA
//! driven reactively and predictively on the same trace.
//!
//! The method is the anchors' (benches/README.md, "Backtest": reference figures from an
//! independent evaluation of the same traces), so the tables compare side by side with them:
//! the last `--eval-days` of the trace are forecast origins; models are refitted every
//! `--refit` on at most `--train-window` before the refit; the HPA ([`hpa`]) is simulated
//! from the first sync that sees the first evaluation bucket to the trace end ([`simulate`]).

pub mod fair;
pub mod hpa;
pub mod reference;
pub mod report;
pub mod served;
pub mod simulate;
pub mod source;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::forecast::evaluate::{self, Metrics, RollingOptions, RollingRun, rolling_run};
use crate::forecast::{History, Target, model};
use crate::prometheus::PrometheusArgs;
use crate::units::parse_duration;
use hpa::HpaSpec;
use served::WindowRow;
use simulate::{Outcome, Served, Timing};

/// Flags of `augur backtest`.
#[derive(Debug, Clone, Args)]
pub struct BacktestArgs {
    /// Trace CSV (`timestamp,value`, bucket starts in Unix seconds, as
    /// tests/fixtures/traces/); or use --prometheus-url and --query.
    #[arg(long, conflicts_with = "query")]
    pub trace: Option<PathBuf>,
    /// PromQL giving one request-rate series (with --prometheus-url, --start, --end).
    #[arg(long, requires_all = ["start", "end"])]
    pub query: Option<String>,
    /// Range start: RFC 3339, Unix seconds, `now` or `now-7d`.
    #[arg(long)]
    pub start: Option<String>,
    /// Range end (same forms as --start).
    #[arg(long)]
    pub end: Option<String>,
    /// Range step (the bucket length).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub step: Duration,
    /// Backend flags for --query.
    #[command(flatten)]
    pub prometheus: PrometheusArgs,
    /// Name of the trace in the tables (default: the file name without `.csv`, or `query`).
    #[arg(long)]
    pub name: Option<String>,
    /// Models to evaluate, comma-separated (default: every built-in); persistence is always
    /// added as the baseline.
    #[arg(long, value_delimiter = ',')]
    pub models: Vec<String>,
    /// Forecast horizons for the accuracy tables, each a whole number of the trace's
    /// buckets [default: 5m,10m,15m,30m, leaving out those that are not (noted in the
    /// output): 15m,30m on a 900 s trace].
    #[arg(long, value_delimiter = ',', value_parser = parse_duration)]
    pub horizons: Vec<Duration>,
    /// Days at the end of the trace whose buckets are forecast origins.
    #[arg(long, default_value_t = 7.0)]
    pub eval_days: f64,
    /// How often models are refitted, a whole number of buckets [default: 1d, rounded down
    /// to whole buckets].
    #[arg(long, value_parser = parse_duration)]
    pub refit: Option<Duration>,
    /// How much history a fit sees at most, a whole number of buckets [default: 28d,
    /// rounded down to whole buckets].
    #[arg(long, value_parser = parse_duration)]
    pub train_window: Option<Duration>,
    /// Time from a pod's creation until it is ready.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub pod_startup: Duration,
    /// Requests per second one pod serves (default: the evaluated window's peak / 20).
    #[arg(long)]
    pub capacity: Option<f64>,
    /// HPA target AverageValue as a fraction of --capacity.
    #[arg(long, default_value_t = 0.7)]
    pub target_utilisation: f64,
    /// HPA sync period.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub sync: Duration,
    /// How late the HPA sees the metric (scrape and rule delay).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub metric_delay: Duration,
    /// The `rate()` window of the served metric.
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub rate_window: Duration,
    /// How far ahead the predictive policies look (their forecast is the max over it), a
    /// whole number of buckets [default: 10m, rounded up to whole buckets (one 15m bucket
    /// on a 900 s trace, noted in the output)].
    #[arg(long, value_parser = parse_duration)]
    pub forecast_horizon: Option<Duration>,
    /// Headroom of the predictive policies: the HPA is served max(live, forecast · (1 +
    /// headroom)), as augur serves a `forecast:` block with `serve: max`. Comma-separated
    /// values simulate each model once per headroom.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub headroom: Vec<f64>,
    /// Also evaluate and simulate the non-causal `level-oracle±K` reference: the median of
    /// the K buckets either side of each target bucket (reads the future; a bound on what
    /// knowing the traffic level, but not the next bucket's noise, buys).
    #[arg(long, value_name = "K")]
    pub level_oracle: Option<usize>,
    /// The twin's `fallbackWindow`: the live value is served while the forecast's MAE over
    /// this window is above persistence's (`0s` turns the check off).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub fallback_window: Duration,
    /// HPA minReplicas.
    #[arg(long, default_value_t = 1)]
    pub min_replicas: i32,
    /// HPA maxReplicas.
    #[arg(long, default_value_t = 200)]
    pub max_replicas: i32,
    /// Show the last part of the evaluation window (e.g. 6h): the plot covers only it, and a
    /// table compares the twin's forecasts there with what happened [default: plot all, no
    /// table].
    #[arg(long, value_parser = parse_duration)]
    pub recent: Option<Duration>,
    /// Directory for accuracy.csv, hpa.csv, timeline.csv and backtest.svg.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Everything a backtest run needs besides the history, in buckets and seconds.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Models, persistence first.
    pub models: Vec<String>,
    /// Accuracy horizons, in buckets.
    pub horizons: Vec<usize>,
    /// Evaluation origins, in buckets.
    pub eval_buckets: usize,
    /// Buckets between refits.
    pub refit: usize,
    /// Buckets a fit sees at most.
    pub train_window: usize,
    /// Pod start-up, seconds.
    pub pod_startup: i64,
    /// Pod capacity in req/s; `None`: peak of the window / 20.
    pub capacity: Option<f64>,
    /// Target as a fraction of capacity.
    pub target_utilisation: f64,
    /// Sync period, seconds.
    pub sync: i64,
    /// Metric delay, seconds.
    pub metric_delay: i64,
    /// Rate window, seconds.
    pub rate_window: i64,
    /// Predictive horizon, in buckets.
    pub forecast_horizon: usize,
    /// Headrooms of the predictive policies (each ≥ 0).
    pub headroom: Vec<f64>,
    /// Half-width in buckets of the `level-oracle` reference, if wanted.
    pub level_oracle: Option<usize>,
    /// The twin's `fallbackWindow`, in buckets (0: off).
    pub fallback_window: usize,
    /// minReplicas.
    pub min_replicas: i32,
    /// maxReplicas.
    pub max_replicas: i32,
    /// Seconds at the end of the evaluation window the plot and the recent table show
    /// (`None`: all, no table).
    pub recent: Option<i64>,
    /// What the defaults were adapted to the trace's step (printed with the tables).
    pub notes: Vec<String>,
}

/// The baseline every model is compared with; always evaluated.
pub const BASELINE: &str = "persistence";

/// Pods the window's peak needs when capacity is not given (the anchors' method,
/// benches/README.md "Backtest").
pub const PEAK_PODS: f64 = 20.0;

/// Lower HPA targets (fractions of capacity) simulated as reference rows.
pub const REFERENCE_TARGETS: [f64; 2] = [0.6, 0.5];

fn whole_seconds(flag: &str, d: Duration) -> anyhow::Result<i64> {
    if d.subsec_nanos() != 0 || d.as_secs() == 0 {
        anyhow::bail!(
            "--{flag} must be a whole number of seconds ≥ 1s, got {}",
            humantime::format_duration(d)
        );
    }
    Ok(i64::try_from(d.as_secs())?)
}

fn buckets(flag: &str, d: Duration, step: i64) -> anyhow::Result<usize> {
    let seconds = whole_seconds(flag, d)?;
    if seconds % step != 0 {
        anyhow::bail!(
            "--{flag} {} is not a whole number of the trace's {step}s buckets",
            humantime::format_duration(d)
        );
    }
    Ok(usize::try_from(seconds / step)?)
}

impl Settings {
    /// Checks the flags against a history's bucket length.
    pub fn from_args(args: &BacktestArgs, step: i64) -> anyhow::Result<Self> {
        let mut models = vec![BASELINE.to_owned()];
        let wanted: Vec<String> = if args.models.is_empty() {
            model::BUILTIN.iter().map(|s| (*s).to_owned()).collect()
        } else {
            args.models.iter().map(|s| s.trim().to_owned()).collect()
        };
        for name in wanted {
            if name.is_empty() || models.contains(&name) {
                continue;
            }
            model::build(&name).map_err(|e| anyhow::anyhow!("--models: {e}"))?;
            models.push(name);
        }
        let mut notes = Vec::new();
        let horizons = if args.horizons.is_empty() {
            default_horizons(step, &mut notes)?
        } else {
            args.horizons
                .iter()
                .map(|&h| buckets("horizons", h, step))
                .collect::<anyhow::Result<Vec<_>>>()?
        };
        if !(args.eval_days.is_finite() && args.eval_days > 0.0) {
            anyhow::bail!("--eval-days must be > 0, got {}", args.eval_days);
        }
        let eval_buckets = (args.eval_days * 86_400.0 / step as f64).round() as usize;
        if let Some(c) = args.capacity
            && !(c.is_finite() && c > 0.0)
        {
            anyhow::bail!("--capacity must be > 0 req/s per pod, got {c}");
        }
        if !(args.target_utilisation > 0.0 && args.target_utilisation.is_finite()) {
            anyhow::bail!(
                "--target-utilisation must be > 0, got {}",
                args.target_utilisation
            );
        }
        if let Some(h) = args
            .headroom
            .iter()
            .find(|h| !(h.is_finite() && **h >= 0.0))
        {
            anyhow::bail!(
                "--headroom must be a fraction ≥ 0 (0.2 = 20 % above the forecast), got {h}"
            );
        }
        if args.min_replicas < 1 || args.max_replicas < args.min_replicas {
            anyhow::bail!(
                "need 1 ≤ --min-replicas ≤ --max-replicas, got {} and {}",
                args.min_replicas,
                args.max_replicas
            );
        }
        Ok(Self {
            models,
            horizons,
            eval_buckets: eval_buckets.max(1),
            refit: match args.refit {
                Some(d) => buckets("refit", d, step)?.max(1),
                None => whole_buckets_below(DEFAULT_REFIT, step),
            },
            train_window: match args.train_window {
                Some(d) => buckets("train-window", d, step)?,
                None => whole_buckets_below(DEFAULT_TRAIN_WINDOW, step),
            },
            pod_startup: i64::try_from(args.pod_startup.as_secs())?,
            capacity: args.capacity,
            target_utilisation: args.target_utilisation,
            sync: whole_seconds("sync", args.sync)?,
            metric_delay: i64::try_from(args.metric_delay.as_secs())?,
            rate_window: whole_seconds("rate-window", args.rate_window)?,
            forecast_horizon: match args.forecast_horizon {
                Some(d) => buckets("forecast-horizon", d, step)?,
                None => default_forecast_horizon(step, &mut notes),
            },
            headroom: {
                let mut h = args.headroom.clone();
                h.dedup();
                if h.is_empty() {
                    h.push(0.0);
                }
                h
            },
            level_oracle: match args.level_oracle {
                Some(0) => anyhow::bail!("--level-oracle must be ≥ 1 bucket"),
                k => k,
            },
            fallback_window: usize::try_from(args.fallback_window.as_secs() / step.unsigned_abs())
                .unwrap_or(0),
            min_replicas: args.min_replicas,
            max_replicas: args.max_replicas,
            recent: match args.recent {
                Some(d) => Some(whole_seconds("recent", d)?),
                None => None,
            },
            notes,
        })
    }
}

/// Default accuracy horizons, seconds.
pub const DEFAULT_HORIZONS: [i64; 4] = [300, 600, 900, 1800];

/// Default predictive horizon, seconds.
pub const DEFAULT_FORECAST_HORIZON: i64 = 600;

/// Default refit period, seconds.
pub const DEFAULT_REFIT: i64 = 86_400;

/// Default training window, seconds.
pub const DEFAULT_TRAIN_WINDOW: i64 = 28 * 86_400;

/// `5m`, `1h`, `2h30m` (as a flag value takes it).
pub(crate) fn seconds_label(seconds: i64) -> String {
    humantime::format_duration(Duration::from_secs(seconds.unsigned_abs()))
        .to_string()
        .replace(' ', "")
}

/// The default horizons that are a whole number of `step`-second buckets; the others are
/// left out with a note. None left (a step of more than 15 minutes, or one that divides
/// none of them) is an error saying which flags to give.
fn default_horizons(step: i64, notes: &mut Vec<String>) -> anyhow::Result<Vec<usize>> {
    let (fit, skipped): (Vec<i64>, Vec<i64>) =
        DEFAULT_HORIZONS.iter().partition(|&&h| h % step == 0);
    let label = |hs: &[i64]| {
        hs.iter()
            .map(|&h| seconds_label(h))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if fit.is_empty() {
        // The shortest whole number of buckets from 5 minutes up.
        let suggestion = seconds_label((DEFAULT_HORIZONS[0] + step - 1) / step * step);
        anyhow::bail!(
            "none of the default horizons ({}) is a whole number of the trace's {step}s buckets; give --horizons and --forecast-horizon in whole buckets, e.g. --horizons {suggestion} --forecast-horizon {suggestion}",
            label(&DEFAULT_HORIZONS)
        );
    }
    if !skipped.is_empty() {
        notes.push(format!(
            "horizons {} left out: not a whole number of the trace's {step}s buckets (give --horizons to choose)",
            label(&skipped)
        ));
    }
    Ok(fit.iter().map(|&h| (h / step) as usize).collect())
}

/// The default predictive horizon in whole buckets, rounded up (with a note when that
/// changes it).
fn default_forecast_horizon(step: i64, notes: &mut Vec<String>) -> usize {
    let buckets = (DEFAULT_FORECAST_HORIZON + step - 1) / step;
    if buckets * step != DEFAULT_FORECAST_HORIZON {
        notes.push(format!(
            "forecast horizon {} rounded up to {} (whole {step}s buckets; give --forecast-horizon to choose)",
            seconds_label(DEFAULT_FORECAST_HORIZON),
            seconds_label(buckets * step)
        ));
    }
    usize::try_from(buckets).unwrap_or(1).max(1)
}

/// Whole `step`-second buckets in `seconds`, rounded down, at least 1.
fn whole_buckets_below(seconds: i64, step: i64) -> usize {
    usize::try_from(seconds / step.max(1)).unwrap_or(1).max(1)
}

/// One model's accuracy at one horizon.
#[derive(Debug, Clone)]
pub struct AccuracyRow {
    /// Model name.
    pub model: String,
    /// Horizon in buckets.
    pub horizon: usize,
    /// Point target `y[t + h]`.
    pub point: Metrics,
    /// Max target `max(y[t + 1 ..= t + h])`.
    pub max: Metrics,
}

/// One autoscaling policy's simulation.
#[derive(Debug, Clone)]
pub struct PolicyRow {
    /// `reactive`, `predictive:<model>`, `reactive@0.6`, `oracle`, `static_peak`.
    pub policy: String,
    /// Its totals and replica timeline.
    pub outcome: Outcome,
    /// Plain headroom at the same replica-minutes: its under-provisioned pod-minutes and
    /// target (a fraction of capacity), interpolated on [`fair::headroom_grid`]; `None`
    /// beyond the grid.
    pub plain_headroom: Option<(f64, f64)>,
    /// Median minutes by which it reaches the replicas the steepest rises need before the
    /// reactive HPA does ([`fair::lead_on_rises`]).
    pub lead_on_rises: Option<f64>,
}

impl PolicyRow {
    /// A row without the fair comparison (filled by [`fair::compare`]).
    pub fn new(policy: String, outcome: Outcome) -> Self {
        Self {
            policy,
            outcome,
            plain_headroom: None,
            lead_on_rises: None,
        }
    }
}

/// Everything a backtest measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Trace name.
    pub trace: String,
    /// The history the run used.
    pub history: History,
    /// First evaluation origin (bucket index).
    pub first_origin: usize,
    /// Peak load of the evaluated window, req/s.
    pub peak: f64,
    /// Capacity per pod, req/s.
    pub capacity: f64,
    /// HPA target AverageValue, req/s.
    pub target: f64,
    /// Predictive horizon, buckets.
    pub forecast_horizon: usize,
    /// Accuracy, model-major, horizons in flag order.
    pub accuracy: Vec<AccuracyRow>,
    /// Per model, the worst 1-hour window of its forecast-horizon errors against
    /// persistence's.
    pub windows: Vec<WindowRow>,
    /// Models that could not be evaluated, with why.
    pub failed: Vec<(String, String)>,
    /// Defaults adapted to the trace's step, and models some of whose refits failed.
    pub notes: Vec<String>,
    /// Policies in table order.
    pub policies: Vec<PolicyRow>,
    /// Sync times of the simulation.
    pub syncs: Vec<i64>,
    /// Per model, the predictive forecast served at each sync (`NaN`: none).
    pub served_forecasts: Vec<(String, Vec<f64>)>,
    /// Seconds at the end the plot and the recent table show (`None`: all, no table).
    pub recent: Option<i64>,
}

/// The target AverageValue in milli-units, written to the nearest milli-unit (as the
/// anchors' simulation does: 0.0745 req/s → `74m`, 0.08692 → `87m`); the HPA reads the
/// quantity with `MilliValue()`, which is exact for a whole number of milli-units.
pub fn target_milli(target: f64) -> i64 {
    ((target * 1000.0).round() as i64).max(1)
}

/// The policy name of a model served with a headroom: `predictive:<model>`, and
/// `predictive:<model>@headroom=<h>` when the headroom is not 0. The non-causal
/// `--level-oracle` rows are `reference:` instead: no autoscaler can serve them.
pub fn predictive_label(model: &str, headroom: f64) -> String {
    let kind = if model.starts_with("level-oracle") {
        "reference"
    } else {
        "predictive"
    };
    if headroom == 0.0 {
        format!("{kind}:{model}")
    } else {
        format!("{kind}:{model}@headroom={headroom}")
    }
}

/// The model name of the `--level-oracle K` reference rows.
pub fn level_oracle_name(half_width: usize) -> String {
    format!("level-oracle±{half_width}")
}

/// Runs `augur backtest`.
pub async fn run(args: &BacktestArgs) -> anyhow::Result<()> {
    let (name, history) = load(args).await?;
    let settings = Settings::from_args(args, history.step)?;
    let report = tokio::task::block_in_place(|| backtest(&name, &history, &settings))?;
    print!("{}", report::tables(&report));
    if let Some(dir) = &args.out {
        let written = report::write_files(dir, &report)?;
        for path in written {
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}

async fn load(args: &BacktestArgs) -> anyhow::Result<(String, History)> {
    if let Some(path) = &args.trace {
        let history = crate::forecast::trace::load_csv(path)?;
        let name = args.name.clone().unwrap_or_else(|| {
            path.file_stem()
                .map_or_else(|| "trace".to_owned(), |s| s.to_string_lossy().into_owned())
        });
        return Ok((name, history));
    }
    let Some(query) = &args.query else {
        anyhow::bail!("give --trace FILE.csv, or --prometheus-url with --query, --start, --end");
    };
    if args.prometheus.prometheus_url.is_none() {
        anyhow::bail!("--query needs --prometheus-url");
    }
    let (Some(start), Some(end)) = (&args.start, &args.end) else {
        anyhow::bail!("--query needs --start and --end");
    };
    let now = std::time::SystemTime::now();
    let start =
        crate::units::parse_time(start, now).map_err(|e| anyhow::anyhow!("--start: {e}"))?;
    let end = crate::units::parse_time(end, now).map_err(|e| anyhow::anyhow!("--end: {e}"))?;
    let backend = crate::prometheus::HttpBackend::new(&args.prometheus.backend_options())?;
    let history = source::range_history(&backend, query, start, end, args.step).await?;
    Ok((
        args.name.clone().unwrap_or_else(|| "query".to_owned()),
        history,
    ))
}

/// Evaluates the models and simulates every policy on `history`.
pub fn backtest(name: &str, history: &History, settings: &Settings) -> anyhow::Result<Report> {
    let len = history.len();
    if settings.eval_buckets >= len {
        anyhow::bail!(
            "{name}: {len} buckets of {}s, but the evaluation window needs {} plus history before it; lower --eval-days",
            history.step,
            settings.eval_buckets
        );
    }
    let first_origin = len - settings.eval_buckets;
    let peak = history.values[first_origin..]
        .iter()
        .copied()
        .filter(|v| !v.is_nan())
        .fold(0.0, f64::max);
    let capacity = settings.capacity.unwrap_or(peak / PEAK_PODS);
    let target = settings.target_utilisation * capacity;
    let hpa_skipped = hpa_skipped(settings, peak, capacity);

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
    let options = RollingOptions {
        first_origin,
        refit_every: settings.refit,
        train_window: settings.train_window,
    };
    let runs = forecast_all(history, &settings.models, &targets, options);

    let mut failed = Vec::new();
    let mut notes = settings.notes.clone();
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
    let mut accuracy = Vec::new();
    for (model, forecasts) in &good {
        let scores = evaluate::score(history, first_origin, &targets, forecasts);
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

    let timing = Timing {
        sync: settings.sync,
        metric_delay: settings.metric_delay,
        rate_window: settings.rate_window,
        capacity,
        first_origin,
        horizon: settings.forecast_horizon.max(1),
    };
    let spec_at = |fraction: f64| {
        HpaSpec::new(
            target_milli(fraction * capacity),
            settings.min_replicas,
            settings.max_replicas,
            settings.pod_startup,
        )
    };
    // The predictive policies are served what the twin serves (the live value where it
    // distrusts the forecast); the non-causal reference as it is.
    let served: Vec<(String, Vec<f64>)> = windows
        .iter()
        .map(|row| {
            let i = if row.model.starts_with("level-oracle") {
                &row.alone_forecasts[1]
            } else {
                &row.served_forecasts[1]
            };
            (row.model.clone(), i.clone())
        })
        .collect();
    let mut policies = Vec::new();
    if let Some(why) = hpa_skipped {
        notes.push(why);
    } else {
        policies.push(PolicyRow::new(
            "reactive".to_owned(),
            simulate::simulate(
                history,
                &timing,
                &spec_at(settings.target_utilisation),
                Served::Reactive,
            ),
        ));
        for (model, forecasts) in &served {
            for &headroom in &settings.headroom {
                policies.push(PolicyRow::new(
                    predictive_label(model, headroom),
                    simulate::simulate(
                        history,
                        &timing,
                        &spec_at(settings.target_utilisation),
                        Served::Predictive {
                            forecasts,
                            headroom,
                        },
                    ),
                ));
            }
        }
        for fraction in REFERENCE_TARGETS {
            policies.push(PolicyRow::new(
                format!("reactive@{fraction}"),
                simulate::simulate(history, &timing, &spec_at(fraction), Served::Reactive),
            ));
        }
        policies.push(PolicyRow::new(
            "oracle".to_owned(),
            simulate::simulate(
                history,
                &timing,
                &spec_at(settings.target_utilisation),
                Served::Oracle,
            ),
        ));
        // `peak / (peak / 20)` may come out a hair above 20; that is still 20 pods.
        let peak_pods = ((peak / capacity - 1e-9).ceil() as i32).max(1);
        policies.push(PolicyRow::new(
            "static_peak".to_owned(),
            simulate::static_replicas(history, &timing, peak_pods),
        ));
    }

    let syncs = if policies.is_empty() {
        Vec::new()
    } else {
        simulate::sync_times(history, &timing)
    };
    fair::compare(history, &timing, &syncs, &mut policies, spec_at);
    let served_forecasts = served
        .iter()
        .map(|(model, forecasts)| {
            let at_syncs = syncs
                .iter()
                .map(|&s| {
                    simulate::last_complete(history, s - timing.metric_delay)
                        .and_then(|o| o.checked_sub(first_origin))
                        .and_then(|i| forecasts.get(i).copied())
                        .unwrap_or(f64::NAN)
                })
                .collect();
            (model.clone(), at_syncs)
        })
        .collect();
    Ok(Report {
        trace: name.to_owned(),
        history: history.clone(),
        first_origin,
        peak,
        capacity,
        target,
        forecast_horizon: timing.horizon,
        accuracy,
        windows,
        failed,
        notes,
        policies,
        syncs,
        served_forecasts,
        recent: settings.recent,
    })
}

/// Why the HPA cannot be simulated on this trace, if so: no traffic to size pods from, or
/// a target below the 1m resolution of a Kubernetes quantity (an HPA given `0m` would
/// compare metric values truncated to 0m with it, and every policy would sit at
/// minReplicas).
fn hpa_skipped(settings: &Settings, peak: f64, capacity: f64) -> Option<String> {
    if capacity.is_nan() || capacity <= 0.0 {
        return Some(format!(
            "HPA simulation skipped: the evaluation window has no traffic (peak {peak} req/s), so the default capacity (peak / {PEAK_PODS}) is 0; give --capacity"
        ));
    }
    let lowest = REFERENCE_TARGETS
        .iter()
        .copied()
        .fold(settings.target_utilisation, f64::min);
    if (lowest * capacity * 1000.0).round() < 1.0 {
        return Some(format!(
            "HPA simulation skipped: a target AverageValue of {lowest} × {capacity:.3e} req/s per pod is below 1m (0.001), the resolution of a Kubernetes quantity; serve the metric in a smaller unit (requests per minute or hour) or give --capacity ≥ {} req/s per pod",
            0.0005 / lowest
        ));
    }
    None
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
        let result = model::build(name)
            .map(|m| rolling_run(m.as_ref(), history, targets, options))
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn settings(flags: &[&str], step: i64) -> anyhow::Result<Settings> {
        let argv = ["backtest", "--trace=t.csv"].iter().chain(flags).copied();
        Settings::from_args(&Backtest::try_parse_from(argv)?.args, step)
    }

    /// `augur backtest`'s flags alone.
    #[derive(Debug, Parser)]
    struct Backtest {
        #[command(flatten)]
        args: BacktestArgs,
    }

    #[test]
    fn defaults_on_a_minute_trace_are_the_anchors() {
        let s = settings(&[], 60).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.horizons, vec![5, 10, 15, 30]);
        assert_eq!(s.forecast_horizon, 10);
        assert_eq!(
            (s.refit, s.train_window, s.eval_buckets),
            (1440, 40_320, 10_080)
        );
        assert_eq!(s.notes, Vec::<String>::new());
    }

    #[test]
    fn default_horizons_leave_out_what_the_step_does_not_divide() {
        // Before: "--horizons 5m is not a whole number of 120s buckets" with no flag given.
        let s = settings(&[], 120).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.horizons, vec![5, 15]);
        assert_eq!(s.forecast_horizon, 5);
        assert_eq!(
            s.notes,
            vec![
                "horizons 5m, 15m left out: not a whole number of the trace's 120s buckets (give --horizons to choose)"
                    .to_owned()
            ]
        );
        let s = settings(&[], 900).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.horizons, vec![1, 2]);
        assert_eq!(s.forecast_horizon, 1);
        assert_eq!(
            s.notes,
            vec![
                "horizons 5m, 10m left out: not a whole number of the trace's 900s buckets (give --horizons to choose)"
                    .to_owned(),
                "forecast horizon 10m rounded up to 15m (whole 900s buckets; give --forecast-horizon to choose)"
                    .to_owned()
            ]
        );
        // A step that does not divide a day: refits and the training window round down.
        let s = settings(&["--horizons=70s", "--forecast-horizon=70s"], 7)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((s.refit, s.train_window), (12_342, 345_600));
        assert_eq!(
            crate::units::parse_duration("5m1s"),
            Ok(Duration::from_secs(301))
        );
        assert_eq!(
            settings(&[], 7).map(|_| ()).map_err(|e| e.to_string()),
            Err("none of the default horizons (5m, 10m, 15m, 30m) is a whole number of the trace's 7s buckets; give --horizons and --forecast-horizon in whole buckets, e.g. --horizons 5m1s --forecast-horizon 5m1s".to_owned())
        );
    }

    #[test]
    fn an_hourly_trace_needs_horizons_and_given_flags_must_fit_the_step() {
        assert_eq!(
            settings(&[], 3600).map(|_| ()).map_err(|e| e.to_string()),
            Err("none of the default horizons (5m, 10m, 15m, 30m) is a whole number of the trace's 3600s buckets; give --horizons and --forecast-horizon in whole buckets, e.g. --horizons 1h --forecast-horizon 1h".to_owned())
        );
        let s = settings(&["--horizons=1h,3h", "--forecast-horizon=2h"], 3600)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((s.horizons, s.forecast_horizon), (vec![1, 3], 2));
        assert_eq!(s.notes, Vec::<String>::new());
        assert_eq!(
            settings(&["--horizons=5m"], 120)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err("--horizons 5m is not a whole number of the trace's 120s buckets".to_owned())
        );
        assert_eq!(
            settings(
                &["--refit=1h", "--horizons=70s", "--forecast-horizon=70s"],
                7
            )
            .map(|_| ())
            .map_err(|e| e.to_string()),
            Err("--refit 1h is not a whole number of the trace's 7s buckets".to_owned())
        );
    }

    #[test]
    fn a_model_whose_first_refits_fail_is_scored_from_its_first_fit() {
        // Holt-Winters needs 2 days and 5 minutes of history: on 3.5 days with the last 1.5
        // evaluated, the refit at day 2 fails and the one at day 3 works. Before, the first
        // failure dropped the model from the report.
        let day = 1440;
        let values: Vec<f64> = (0..7 * day / 2)
            .map(|i| 5.0 + (i as f64 * std::f64::consts::TAU / day as f64).sin())
            .collect();
        let history = History::new(0, 60, values);
        let s = settings(&["--models=holt-winters", "--eval-days=1.5"], 60)
            .unwrap_or_else(|e| panic!("{e}"));
        let report = backtest("sine", &history, &s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.failed, Vec::<(String, String)>::new());
        assert_eq!(
            report.notes,
            vec![
                "model `holt-winters` has no forecast at 1440 of 2160 origins: 1 of its 2 refits failed, the first at 1970-01-03 00:00 UTC (history too short: 2880 buckets, the model needs 2885); persistence is scored and served there, as augur serves the live value"
                    .to_owned()
            ]
        );
        let ten = report
            .accuracy
            .iter()
            .find(|r| r.model == "holt-winters" && r.horizon == 10)
            .unwrap_or_else(|| panic!("no holt-winters row"));
        // Scored on every origin with a target; its own forecasts on the last day only.
        assert_eq!(ten.point.n, 2150);
        assert!(ten.point.ratio < 1.0, "{}", ten.point.ratio);
        // No refit works (2.5 days, the last evaluated): the model is persistence, and
        // says why (before: "could not be evaluated", no row).
        let short = history.prefix(5 * day / 2);
        let s = settings(&["--models=holt-winters", "--eval-days=1"], 60)
            .unwrap_or_else(|e| panic!("{e}"));
        let report = backtest("sine", &short, &s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            report.notes,
            vec![
                "model `holt-winters` has no forecast at 1440 of 1440 origins: 1 of its 1 refits failed, the first at 1970-01-02 12:00 UTC (history too short: 2160 buckets, the model needs 2885); persistence is scored and served there, as augur serves the live value"
                    .to_owned()
            ]
        );
        let rows: Vec<(f64, f64)> = report
            .accuracy
            .iter()
            .filter(|r| r.model == "holt-winters")
            .map(|r| (r.point.ratio, r.max.ratio))
            .collect();
        assert_eq!(rows, vec![(1.0, 1.0); 4]);
    }

    /// Two identical days at 60 s: 2 req/s with a wiggle of 0–0.3, rising to 8 req/s at
    /// 06:00 for two hours and to 5 req/s at 18:00 for one.
    fn two_days() -> History {
        let day: Vec<f64> = (0..1440)
            .map(|m| {
                let level = match m {
                    360..480 => 8.0,
                    1080..1140 => 5.0,
                    _ => 2.0,
                };
                level + f64::from(m % 7) * 0.05
            })
            .collect();
        History::new(0, 60, [day.clone(), day].concat())
    }

    #[test]
    fn the_fair_comparison_on_a_small_trace() {
        // Seasonal-naive knows day 2 from day 1 exactly: the equal-cost comparison, the
        // worst hour and the lead on rises of a perfect forecast next to persistence's.
        let s = settings(
            &["--models=seasonal-naive", "--eval-days=1", "--capacity=1"],
            60,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let report = backtest("two", &two_days(), &s).unwrap_or_else(|e| panic!("{e}"));
        let policy = |name: &str| {
            report
                .policies
                .iter()
                .find(|p| p.policy == name)
                .unwrap_or_else(|| panic!("no {name}"))
        };
        let names: Vec<&str> = report.policies.iter().map(|p| p.policy.as_str()).collect();
        assert_eq!(
            names,
            [
                "reactive",
                "predictive:persistence",
                "predictive:seasonal-naive",
                "reactive@0.6",
                "reactive@0.5",
                "plain-headroom@0.64",
                "oracle",
                "static_peak"
            ]
        );
        // The rises that need more pods than reactive holds (4 at 0.7 req/s per pod):
        // 2.15 → 8.165 req/s at 06:00 (9 pods) and 2.15 → 5.15 at 18:00 (6).
        let rises = fair::steepest_rises(&report.history, 1440, 10, 1.0, fair::RISES, |_| false);
        let starts: Vec<(i64, i32)> = rises.iter().map(|r| (r.start, r.need)).collect();
        assert_eq!(starts, [(108_000, 9), (151_200, 6)]);
        // The lead, recomputed from the replica timelines: the first sync from 10 minutes
        // before each rise with the pods it needs.
        let reach = |name: &str, start: i64, need: i32| {
            report
                .syncs
                .iter()
                .zip(&policy(name).outcome.replicas)
                .find(|(t, r)| **t >= start - 600 && **r >= need)
                .map_or(i64::MAX, |(t, _)| *t)
        };
        let leads: Vec<f64> = rises
            .iter()
            .map(|r| {
                (reach("reactive", r.start, r.need)
                    - reach("predictive:seasonal-naive", r.start, r.need)) as f64
                    / 60.0
            })
            .collect();
        assert_eq!(leads, [10.0, 10.25]);
        assert_eq!(
            policy("predictive:seasonal-naive").lead_on_rises,
            Some(10.125)
        );
        assert_eq!(policy("oracle").lead_on_rises, Some(10.125));
        assert_eq!(policy("reactive").lead_on_rises, Some(0.0));
        assert_eq!(policy("predictive:persistence").lead_on_rises, Some(0.25));
        // Equal cost: the perfect forecast never under-provisions at 7,131 replica-minutes;
        // plain headroom at that cost (target ≈ 0.644) leaves 11.7 pod-minutes.
        let twin = policy("predictive:seasonal-naive");
        assert_eq!(
            (twin.outcome.under_pod_minutes, twin.outcome.replica_minutes),
            (0.0, 7131.0)
        );
        let (under, fraction) = twin.plain_headroom.unwrap_or_default();
        assert!((under - 11.705_538_821_954_486).abs() < 1e-9, "{under}");
        assert!(
            (fraction - 0.643_601_070_950_468_6).abs() < 1e-9,
            "{fraction}"
        );
        // The plain-headroom row is the reactive HPA at the nearest grid target, 0.64.
        let plain = &policy("plain-headroom@0.64").outcome;
        assert!((plain.under_pod_minutes - 11.575).abs() < 1e-9);
        assert_eq!(plain.replica_minutes, 7198.25);
        // The reactive HPA's own target is on the grid and the best at its cost.
        let reactive = policy("reactive");
        assert_eq!(
            reactive.plain_headroom,
            Some((reactive.outcome.under_pod_minutes, 0.7))
        );
        // Worst hours as served: persistence is itself, the perfect forecast has no error.
        let worst: Vec<(&str, [Option<f64>; 2])> = report
            .windows
            .iter()
            .map(|w| (w.model.as_str(), w.served.map(|w| w.map(|w| w.ratio))))
            .collect();
        assert_eq!(
            worst,
            [
                ("persistence", [Some(1.0), Some(1.0)]),
                ("seasonal-naive", [Some(0.0), Some(0.0)])
            ]
        );
        // All three in the summary table and in hpa.csv.
        let text = report::tables(&report);
        let line = text
            .lines()
            .find(|l| l.starts_with("| two | predictive:seasonal-naive |"))
            .unwrap_or_default();
        assert_eq!(
            line,
            "| two | predictive:seasonal-naive | 0 | 0 | -100% | 7,131 | +10% | 15 (3/12) | 11.71 (0.644) | -100% | 10.12 | 0.000 / 0.000 |",
            "{text}"
        );
        let csv = report::hpa_csv(&report);
        let line = csv
            .lines()
            .find(|l| l.starts_with("two,predictive:seasonal-naive,"))
            .unwrap_or_default();
        assert_eq!(
            line,
            "two,predictive:seasonal-naive,0,0,-100,7131,10.331489575677866,15,3,12,11.705538821954486,0.6436010709504686,-100,10.125,0,0"
        );
    }

    #[test]
    fn rates_too_small_for_a_quantity_or_no_traffic_skip_the_hpa_simulation() {
        // A peak of 6e-4 req/s: capacity 3e-5, target 0.5 × 3e-5 req/s = 0.015m. Before,
        // every policy was simulated with target 1m against metric values truncated to
        // 0m: all sat at one pod, "under-provisioned" the whole week.
        let values: Vec<f64> = (0..2 * 1440)
            .map(|i| if i % 7 == 0 { 6e-4 } else { 3e-4 })
            .collect();
        let history = History::new(0, 60, values);
        let s = settings(&["--models=persistence", "--eval-days=1"], 60)
            .unwrap_or_else(|e| panic!("{e}"));
        let report = backtest("tiny", &history, &s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            report.notes,
            vec![
                "HPA simulation skipped: a target AverageValue of 0.5 × 3.000e-5 req/s per pod is below 1m (0.001), the resolution of a Kubernetes quantity; serve the metric in a smaller unit (requests per minute or hour) or give --capacity ≥ 0.001 req/s per pod"
                    .to_owned()
            ]
        );
        assert!(report.policies.is_empty() && report.syncs.is_empty());
        assert_eq!(report.accuracy.len(), 4);
        // No HPA table, and no target in the header (it said "(1m)").
        let text = report::tables(&report);
        assert!(
            text.starts_with("- `tiny`: step 60 s, evaluation window 1970-01-02 00:00 UTC → 1970-01-03 00:00 UTC, 1440 origins, peak 0.0006 req/s → HPA not simulated (see below)\n"),
            "{text}"
        );
        assert!(!text.contains("HPA simulation ("), "{text}");
        // No traffic at all in the evaluated day: accuracy only (before: an error).
        let mut values = vec![1.0; 1440];
        values.extend(vec![0.0; 1440]);
        let report =
            backtest("off", &History::new(0, 60, values), &s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            report.notes,
            vec![
                "HPA simulation skipped: the evaluation window has no traffic (peak 0 req/s), so the default capacity (peak / 20) is 0; give --capacity"
                    .to_owned()
            ]
        );
        assert!(report.policies.is_empty());
        assert_eq!(report.accuracy[1].point.ratio, 1.0);
    }
}
