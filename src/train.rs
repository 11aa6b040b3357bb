//! `augur train`: fits the `linear` forecaster on a history (a trace CSV or a Prometheus
//! range query) and writes it as an ONNX model following the augur contract.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use crate::forecast::onnx::{OnnxModel, RuntimeArgs, contract, runtime, writer};
use crate::forecast::{History, LinearSpec, Model, ModelError, Target};
use crate::prometheus::{Backend, HttpBackend, PrometheusArgs, range_chunks};
use crate::units::{from_unix, parse_time, positive_duration, rfc3339, unix};

/// Flags of `augur train`.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Trace CSV (`timestamp,value`, bucket starts in Unix seconds) to train on.
    #[arg(long, conflicts_with_all = ["prometheus_url", "query"], required_unless_present = "prometheus_url")]
    pub trace: Option<PathBuf>,
    /// PromQL giving one series, the request rate per bucket (e.g.
    /// `sum(rate(http_requests_total[1m]))` with `--step 1m`); needs --prometheus-url.
    #[arg(long, requires_all = ["prometheus_url", "start", "step"])]
    pub query: Option<String>,
    /// First evaluation time: RFC 3339, Unix seconds, `now` or `now-7d`.
    #[arg(long, requires = "query")]
    pub start: Option<String>,
    /// Last evaluation time (same forms as --start).
    #[arg(long, default_value = "now", requires = "query")]
    pub end: String,
    /// Bucket length: the step of the range query.
    #[arg(long, value_parser = positive_duration, requires = "query")]
    pub step: Option<Duration>,
    /// Backend flags (with --query).
    #[command(flatten)]
    pub prometheus: PrometheusArgs,
    /// What the model forecasts, in steps after the origin: `max@10,point@10`.
    #[arg(long, conflicts_with = "horizon", required_unless_present = "horizon")]
    pub targets: Option<String>,
    /// Forecast horizon as a duration (a multiple of the step); with --reduce.
    #[arg(long, value_parser = positive_duration, requires = "reduce")]
    pub horizon: Option<Duration>,
    /// With --horizon: forecast the maximum over the horizon or the value at its end.
    #[arg(long, value_enum, requires = "horizon")]
    pub reduce: Option<Reduce>,
    /// Where the model is written (`models/NAME.onnx`); replaced atomically.
    #[arg(long)]
    pub out: PathBuf,
    /// Recorded as `augur.trained_on` (default: a description of the data).
    #[arg(long)]
    pub trained_on: Option<String>,
    /// Load the written model with ONNX Runtime (checking the contract) and print its
    /// forecast from the last bucket. ONNX Runtime is loaded before fitting, so a missing
    /// library is reported at once.
    #[arg(long)]
    pub verify: bool,
    /// ONNX Runtime flags (with --verify).
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// How `--horizon` becomes a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Reduce {
    /// `max@STEPS`.
    Max,
    /// `point@STEPS`.
    Point,
}

/// Runs `augur train`.
pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    if args.verify {
        runtime::load(args.runtime.onnxruntime_library.as_deref())?;
    }
    let (history, source) = load_history(args)?;
    let targets = targets(args, history.step)?;
    let spec = fit_linear(&history, &targets)
        .with_context(|| format!("cannot fit the linear model on {source}"))?;
    let trained_on = args.trained_on.clone().unwrap_or_else(|| {
        format!(
            "{source}: {} buckets of {}s from {} to {}",
            history.len(),
            history.step,
            rfc3339(from_unix(history.start)),
            rfc3339(from_unix(history.origin().unwrap_or(history.start))),
        )
    });
    write_model(&spec, &trained_on, &args.out)?;
    println!("{}", describe(&spec, &args.out, &trained_on));
    if args.verify {
        let model = OnnxModel::load(&args.out)?;
        let fitted = model.fit(&history, &targets)?;
        let forecast = fitted.predict(&history)?;
        let values: Vec<String> = targets
            .iter()
            .zip(&forecast)
            .map(|(t, v)| format!("{t}={v:.6}"))
            .collect();
        println!(
            "verified with ONNX Runtime ({}): forecast from {}: {}",
            runtime::loaded_library().map_or_else(String::new, |p| p.display().to_string()),
            rfc3339(from_unix(history.origin().unwrap_or(history.start))),
            values.join(" ")
        );
    }
    Ok(())
}

/// Fits the built-in linear model with its default options.
fn fit_linear(history: &History, targets: &[Target]) -> Result<LinearSpec, ModelError> {
    crate::forecast::model::linear::fit_linear(history, targets, &Default::default())
}

/// One line saying what was written.
fn describe(spec: &LinearSpec, out: &Path, trained_on: &str) -> String {
    format!(
        "wrote {}: linear model, step {}s, lookback {}{}, {} features, transform {}, targets {}; trained on {}",
        out.display(),
        spec.step_seconds,
        spec.window(),
        if spec.floor > 0 {
            format!(" (floor: the last {})", spec.floor)
        } else {
            String::new()
        },
        spec.features.len(),
        writer::transform_name(spec.transform),
        contract::format_targets(&spec.targets),
        trained_on
    )
}

/// Writes the ONNX model of `spec` to `out` through a temporary file in the same
/// directory, so a server watching `out` never reads half a model.
pub fn write_model(spec: &LinearSpec, trained_on: &str, out: &Path) -> anyhow::Result<()> {
    let bytes = writer::linear_model(spec, trained_on)?;
    let dir = match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = out
        .file_name()
        .with_context(|| format!("--out {} is not a file name", out.display()))?;
    let temporary = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written =
        std::fs::write(&temporary, &bytes).and_then(|()| std::fs::rename(&temporary, out));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(e).with_context(|| format!("cannot write {}", out.display()));
    }
    Ok(())
}

/// The targets given by `--targets` or `--horizon`/`--reduce`.
fn targets(args: &TrainArgs, step: i64) -> anyhow::Result<Vec<Target>> {
    if let Some(text) = &args.targets {
        return contract::parse_targets(text).map_err(|why| anyhow::anyhow!("--targets: {why}"));
    }
    let (Some(horizon), Some(reduce)) = (args.horizon, args.reduce) else {
        bail!("give --targets (e.g. max@10,point@10) or --horizon with --reduce");
    };
    let steps = horizon_steps(horizon, step)?;
    Ok(vec![match reduce {
        Reduce::Max => Target::Max(steps),
        Reduce::Point => Target::Point(steps),
    }])
}

/// `horizon` in whole steps of `step` seconds.
fn horizon_steps(horizon: Duration, step: i64) -> anyhow::Result<usize> {
    let seconds = horizon.as_secs();
    let step_u = u64::try_from(step).unwrap_or(0);
    if step_u == 0 || horizon.subsec_nanos() != 0 || seconds == 0 || !seconds.is_multiple_of(step_u)
    {
        bail!(
            "--horizon {} is not a positive multiple of the history's step ({step}s)",
            humantime::format_duration(horizon)
        );
    }
    Ok(usize::try_from(seconds / step_u)?)
}

/// The training history and a description of where it came from.
fn load_history(args: &TrainArgs) -> anyhow::Result<(History, String)> {
    if let Some(trace) = &args.trace {
        let history = crate::forecast::trace::load_csv(trace)?;
        return Ok((history, format!("trace {}", trace.display())));
    }
    let (Some(query), Some(start), Some(step)) = (&args.query, &args.start, args.step) else {
        bail!("give --trace FILE.csv, or --prometheus-url with --query, --start and --step");
    };
    let now = SystemTime::now();
    let start = parse_time(start, now)
        .map_err(anyhow::Error::msg)
        .context("--start")?;
    let end = parse_time(&args.end, now)
        .map_err(anyhow::Error::msg)
        .context("--end")?;
    let options = args.prometheus.backend_options();
    let backend = HttpBackend::new(&options)?;
    let handle = tokio::runtime::Handle::try_current()
        .context("augur train needs an async runtime for --prometheus-url")?;
    let history = tokio::task::block_in_place(|| {
        handle.block_on(history_from_backend(&backend, query, start, end, step))
    })?;
    Ok((history, format!("{} query {query}", options.url)))
}

/// Reads `query` from `start` to `end` every `step` into a history (several range queries
/// when there are more than 10,000 points). The sample evaluated at `t` is the bucket
/// starting at `t - step` (a rate over one step describes the step before it); samples
/// the backend does not return are missing buckets.
pub async fn history_from_backend(
    backend: &dyn Backend,
    query: &str,
    start: SystemTime,
    end: SystemTime,
    step: Duration,
) -> anyhow::Result<History> {
    let step_s = i64::try_from(step.as_secs())?;
    if step_s == 0 || step.subsec_nanos() != 0 {
        bail!("--step must be a whole number of seconds, at least 1s");
    }
    let first = unix(start);
    let last = unix(end);
    if last < first {
        bail!("--end is before --start");
    }
    let count = (last - first) / step_s + 1;
    if let Some(why) = crate::forecast::range_too_long(count, step_s) {
        bail!("{why}");
    }
    let mut values = vec![f64::NAN; usize::try_from(count)?];
    let mut labels = None;
    for (chunk_start, chunk_end) in range_chunks(first, last, step_s) {
        let series = backend
            .query_range(query, from_unix(chunk_start), from_unix(chunk_end), step)
            .await?;
        if series.len() > 1 {
            bail!(
                "query {query} returned {} series; training needs one (aggregate it, e.g. sum(...))",
                series.len()
            );
        }
        for one in series {
            if let Some(previous) = &labels
                && previous != &one.labels
            {
                bail!("query {query} returned different series over time; aggregate it");
            }
            for (t, v) in &one.points {
                let offset = (t - first as f64) / step_s as f64;
                let index = offset.round();
                if (offset - index).abs() < 1e-6 && index >= 0.0 && (index as usize) < values.len()
                {
                    values[index as usize] = crate::forecast::bucket_value(*v);
                }
            }
            labels = Some(one.labels);
        }
    }
    if values.iter().all(|v| v.is_nan()) {
        bail!(
            "query {query} returned no samples between {} and {}",
            rfc3339(from_unix(first)),
            rfc3339(from_unix(last))
        );
    }
    Ok(History::new(first - step_s, step_s, values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::{Feature, Transform};
    use crate::prometheus::RangeSeries;
    use crate::prometheus::fake::{FakeBackend, labels};
    use clap::Parser;
    use std::time::UNIX_EPOCH;

    /// `augur train`'s flags alone.
    #[derive(Debug, Parser)]
    struct Train {
        #[command(flatten)]
        args: TrainArgs,
    }

    fn train_args(flags: &[&str]) -> Result<TrainArgs, String> {
        let argv = ["train"].iter().chain(flags).copied();
        Ok(Train::try_parse_from(argv).map_err(|e| e.to_string())?.args)
    }

    #[test]
    fn targets_from_flags() {
        let args = train_args(&["--trace=t.csv", "--targets=max@10,point@10", "--out=m.onnx"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            targets(&args, 60).map_err(|e| e.to_string()),
            Ok(vec![Target::Max(10), Target::Point(10)])
        );
        let args = train_args(&[
            "--trace=t.csv",
            "--horizon=10m",
            "--reduce=max",
            "--out=m.onnx",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            targets(&args, 60).map_err(|e| e.to_string()),
            Ok(vec![Target::Max(10)])
        );
        assert_eq!(
            targets(&args, 420).map_err(|e| e.to_string()),
            Err("--horizon 10m is not a positive multiple of the history's step (420s)".to_owned())
        );
        let missing = train_args(&["--trace=t.csv", "--out=m.onnx"])
            .err()
            .unwrap_or_default();
        assert!(missing.contains("--targets"), "{missing}");
        let both = train_args(&[
            "--trace=t.csv",
            "--prometheus-url=http://p",
            "--targets=max@1",
            "--out=m.onnx",
        ])
        .err()
        .unwrap_or_default();
        assert!(both.contains("cannot be used with"), "{both}");
    }

    #[tokio::test]
    async fn a_range_query_becomes_a_history_one_step_earlier() {
        let backend = FakeBackend::new().with_range(
            "sum(rate(x[1m]))",
            vec![RangeSeries {
                labels: labels(&[]),
                points: vec![
                    (600.0, 1.0),
                    (660.0, 2.0),
                    (780.0, 4.0),
                    (840.0, f64::INFINITY),
                ],
            }],
        );
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        let history = history_from_backend(
            &backend,
            "sum(rate(x[1m]))",
            at(600),
            at(840),
            Duration::from_secs(60),
        )
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(history.start, 540);
        assert_eq!(history.step, 60);
        // +Inf from Prometheus (a ratio over zero) is a missing bucket, as is one with no
        // sample.
        assert_eq!(history.forward_filled(), vec![1.0, 2.0, 2.0, 4.0, 4.0]);
        assert!(history.values[2].is_nan());
        assert!(history.values[4].is_nan());
    }

    #[tokio::test]
    async fn long_ranges_are_split_and_several_series_are_refused() {
        let backend = FakeBackend::new();
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        // More than 5,000,000 steps: refused before allocating or querying anything.
        let err = history_from_backend(
            &backend,
            "q",
            at(0),
            at(1_796_000_000),
            Duration::from_secs(1),
        )
        .await
        .err()
        .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "--start..--end at --step 1s is 1796000001 buckets, more than 5000000 (a year at 1m is 525600): shorten the range or use a longer step"
            )
        );
        assert!(backend.calls().is_empty());
        let err = history_from_backend(
            &backend,
            "q",
            at(0),
            at(60 * 25_000),
            Duration::from_secs(60),
        )
        .await
        .err()
        .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "query q returned no samples between 1970-01-01T00:00:00Z and 1970-01-18T08:40:00Z"
            )
        );
        let ranges: Vec<(u64, u64)> = backend
            .calls()
            .into_iter()
            .filter_map(|c| match c {
                crate::prometheus::fake::Call::QueryRange { start, end, .. } => Some((
                    start.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
                    end.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
                )),
                _ => None,
            })
            .collect();
        assert_eq!(
            ranges,
            vec![(0, 599_940), (600_000, 1_199_940), (1_200_000, 1_500_000)]
        );
        let two = RangeSeries {
            labels: labels(&[("pod", "a")]),
            points: vec![(0.0, 1.0)],
        };
        backend.set_range("q", vec![two.clone(), two]);
        let err = history_from_backend(&backend, "q", at(0), at(60), Duration::from_secs(60))
            .await
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("query q returned 2 series; training needs one (aggregate it, e.g. sum(...))")
        );
    }

    #[test]
    fn write_model_replaces_the_file_and_describes_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let out = dir.path().join("models/web.onnx");
        let spec = LinearSpec {
            step_seconds: 60,
            lookback: 3,
            transform: Transform::LOG1P,
            features: vec![Feature::Lag(2)],
            mean: vec![1.0],
            scale: vec![2.0],
            targets: vec![Target::Max(10), Target::Point(10)],
            weights: vec![vec![0.1], vec![0.2]],
            bias: vec![0.0, 0.0],
            floor: 0,
        };
        write_model(&spec, "trace t.csv", &out).unwrap_or_else(|e| panic!("{e:#}"));
        write_model(&spec, "trace t.csv", &out).unwrap_or_else(|e| panic!("{e:#}"));
        let written = std::fs::read(&out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            Ok(written),
            writer::linear_model(&spec, "trace t.csv").map_err(|e| e.to_string())
        );
        let entries = std::fs::read_dir(out.parent().unwrap_or(dir.path()))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(entries, 1, "a temporary file was left behind");
        assert_eq!(
            describe(&spec, Path::new("models/web.onnx"), "trace t.csv"),
            "wrote models/web.onnx: linear model, step 60s, lookback 3, 1 features, transform log1p, targets max@10,point@10; trained on trace t.csv"
        );
        // With a floor longer than the features' lookback, the model's `values` spans it.
        let floored = LinearSpec { floor: 5, ..spec };
        assert_eq!(
            describe(&floored, Path::new("models/web.onnx"), "trace t.csv"),
            "wrote models/web.onnx: linear model, step 60s, lookback 5 (floor: the last 5), 1 features, transform log1p, targets max@10,point@10; trained on trace t.csv"
        );
    }
}
