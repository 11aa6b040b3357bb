//! `augur backtest`: rolling-origin forecast accuracy and a simulation of the stock HPA
//! driven reactively and predictively on the same trace.
//!
//! The method is forecast-anchors.md's, so the tables compare side by side with its figures:
//! the last `--eval-days` of the trace are forecast origins; models are refitted every
//! `--refit` on at most `--train-window` before the refit; the HPA ([`hpa`]) is simulated
//! from the first sync that sees the first evaluation bucket to the trace end ([`simulate`]).

pub mod hpa;
pub mod reference;
pub mod report;
pub mod simulate;
pub mod source;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::cli::{PrometheusArgs, parse_duration};
use crate::forecast::evaluate::{self, Metrics, RollingOptions, rolling_forecasts};
use crate::forecast::{History, Target, model};
use hpa::HpaSpec;
use simulate::{Outcome, Served, Timing};

/// Flags of `augur backtest`.
#[derive(Debug, Clone, Args)]
pub struct BacktestArgs {
    /// Trace CSV (`timestamp,value`, as /work/shared/data); or use --prometheus-url and --query.
    #[arg(long, conflicts_with = "query")]
    pub trace: Option<PathBuf>,
    /// PromQL giving one request-rate series (with --prometheus-url, --start, --end).
    #[arg(long, requires_all = ["start", "end"])]
    pub query: Option<String>,
    /// Range start: RFC 3339 or Unix seconds.
    #[arg(long)]
    pub start: Option<String>,
    /// Range end: RFC 3339 or Unix seconds.
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
    /// Forecast horizons for the accuracy tables.
    #[arg(long, value_delimiter = ',', default_value = "5m,10m,15m,30m", value_parser = parse_duration)]
    pub horizons: Vec<Duration>,
    /// Days at the end of the trace whose buckets are forecast origins.
    #[arg(long, default_value_t = 7.0)]
    pub eval_days: f64,
    /// How often models are refitted.
    #[arg(long, default_value = "1d", value_parser = parse_duration)]
    pub refit: Duration,
    /// How much history a fit sees at most.
    #[arg(long, default_value = "28d", value_parser = parse_duration)]
    pub train_window: Duration,
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
    /// How far ahead the predictive policies look (their forecast is the max over it).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub forecast_horizon: Duration,
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
    /// HPA minReplicas.
    #[arg(long, default_value_t = 1)]
    pub min_replicas: i32,
    /// HPA maxReplicas.
    #[arg(long, default_value_t = 200)]
    pub max_replicas: i32,
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
    /// minReplicas.
    pub min_replicas: i32,
    /// maxReplicas.
    pub max_replicas: i32,
}

/// The baseline every model is compared with; always evaluated.
pub const BASELINE: &str = "persistence";

/// Pods the window's peak needs when capacity is not given (forecast-anchors.md).
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
            "--{flag} {} is not a whole number of {step}s buckets",
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
        let horizons = args
            .horizons
            .iter()
            .map(|&h| buckets("horizons", h, step))
            .collect::<anyhow::Result<Vec<_>>>()?;
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
            refit: buckets("refit", args.refit, step)?.max(1),
            train_window: buckets("train-window", args.train_window, step)?,
            pod_startup: i64::try_from(args.pod_startup.as_secs())?,
            capacity: args.capacity,
            target_utilisation: args.target_utilisation,
            sync: whole_seconds("sync", args.sync)?,
            metric_delay: i64::try_from(args.metric_delay.as_secs())?,
            rate_window: whole_seconds("rate-window", args.rate_window)?,
            forecast_horizon: buckets("forecast-horizon", args.forecast_horizon, step)?,
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
            min_replicas: args.min_replicas,
            max_replicas: args.max_replicas,
        })
    }
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
    /// Models that could not be evaluated, with why.
    pub failed: Vec<(String, String)>,
    /// Policies in table order.
    pub policies: Vec<PolicyRow>,
    /// Sync times of the simulation.
    pub syncs: Vec<i64>,
    /// Per model, the predictive forecast served at each sync (`NaN`: none).
    pub served_forecasts: Vec<(String, Vec<f64>)>,
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
    let start = source::parse_time(start).map_err(|e| anyhow::anyhow!("--start: {e}"))?;
    let end = source::parse_time(end).map_err(|e| anyhow::anyhow!("--end: {e}"))?;
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
    let capacity = match settings.capacity {
        Some(c) => c,
        None if peak > 0.0 => peak / PEAK_PODS,
        None => anyhow::bail!("{name}: the evaluation window has no traffic; give --capacity"),
    };
    let target = settings.target_utilisation * capacity;

    let mut targets: Vec<Target> = Vec::new();
    for &h in &settings.horizons {
        targets.extend([Target::Point(h), Target::Max(h)]);
    }
    let hpa_target = Target::Max(settings.forecast_horizon.max(1));
    if !targets.contains(&hpa_target) {
        targets.push(hpa_target);
    }
    let options = RollingOptions {
        first_origin,
        refit_every: settings.refit,
        train_window: settings.train_window,
    };
    let runs = forecast_all(history, &settings.models, &targets, options);

    let column = |forecasts: &[Vec<f64>], j: usize| -> Vec<f64> {
        forecasts
            .iter()
            .map(|f| f.get(j).copied().unwrap_or(f64::NAN))
            .collect()
    };
    let mut failed = Vec::new();
    let mut good: Vec<(String, Vec<Vec<f64>>)> = Vec::new();
    for (model, result) in runs {
        match result {
            Ok(f) => good.push((model, f)),
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
    let hpa_index = targets.iter().position(|&t| t == hpa_target).unwrap_or(0);
    let served: Vec<(String, Vec<f64>)> = good
        .iter()
        .map(|(m, f)| (m.clone(), column(f, hpa_index)))
        .collect();
    let mut policies = vec![PolicyRow {
        policy: "reactive".to_owned(),
        outcome: simulate::simulate(
            history,
            &timing,
            &spec_at(settings.target_utilisation),
            Served::Reactive,
        ),
    }];
    for (model, forecasts) in &served {
        for &headroom in &settings.headroom {
            policies.push(PolicyRow {
                policy: predictive_label(model, headroom),
                outcome: simulate::simulate(
                    history,
                    &timing,
                    &spec_at(settings.target_utilisation),
                    Served::Predictive {
                        forecasts,
                        headroom,
                    },
                ),
            });
        }
    }
    for fraction in REFERENCE_TARGETS {
        policies.push(PolicyRow {
            policy: format!("reactive@{fraction}"),
            outcome: simulate::simulate(history, &timing, &spec_at(fraction), Served::Reactive),
        });
    }
    policies.push(PolicyRow {
        policy: "oracle".to_owned(),
        outcome: simulate::simulate(
            history,
            &timing,
            &spec_at(settings.target_utilisation),
            Served::Oracle,
        ),
    });
    // `peak / (peak / 20)` may come out a hair above 20; that is still 20 pods.
    let peak_pods = ((peak / capacity - 1e-9).ceil() as i32).max(1);
    policies.push(PolicyRow {
        policy: "static_peak".to_owned(),
        outcome: simulate::static_replicas(history, &timing, peak_pods),
    });

    let syncs = simulate::sync_times(history, &timing);
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
        failed,
        policies,
        syncs,
        served_forecasts,
    })
}

type ModelRun = (String, Result<Vec<Vec<f64>>, String>);

/// Rolling forecasts of every model, two models at a time (one per core).
fn forecast_all(
    history: &History,
    models: &[String],
    targets: &[Target],
    options: RollingOptions,
) -> Vec<ModelRun> {
    let run_one = |name: &String| -> ModelRun {
        let result = model::build(name)
            .and_then(|m| rolling_forecasts(m.as_ref(), history, targets, options))
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
