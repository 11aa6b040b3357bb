//! Memory sizing of the forecast engine: the bytes one series holds for its rule's history
//! and step, the estimate at `--forecast-max-series` logged at startup, and the container
//! memory limit (cgroup v2 `memory.max`, or v1 `memory.limit_in_bytes`) it is checked
//! against.

use std::time::Duration;

use crate::config::{Config, ForecastSpec, ModelRef, Rule};
use crate::forecast::week::{self, WeekWeight};

use super::engine::TRIM_SLACK;

/// Bytes per history bucket (the engine stores `f32`).
pub const BYTES_PER_BUCKET: u64 = 4;

/// Bytes per origin in an accuracy tracker's window (three `f32` errors): the engine's
/// over `fallbackWindow`, and a `guarded-*` model's over one day.
pub const BYTES_PER_TRACKED_ORIGIN: u64 = 12;

/// Per series besides its buckets and error windows, measured with the default model after a
/// day of serving (benches/README.md, "Forecast serving": 99.0 KiB per target, of which
/// 57.2 KiB buckets and error windows): the fitted weights, pending forecasts, labels,
/// gauges, the target's key and frame, and what the allocator keeps around them after the
/// fits. Models without fitted weights need less (persistence: about 10 KiB).
pub const SERIES_OVERHEAD_BYTES: u64 = 42 * 1024;

/// Bytes of the weight per hour of the week a series' check keeps ([`WeekWeight`]: two `f64`
/// sums per hour) when `fallbackWindow` is on and the step at most 5 minutes.
pub const WEEK_WEIGHT_BYTES: u64 = week::PARTS as u64 * 16;

/// What augur holds without forecasts (series registry of 100,000 series after a relist:
/// 43 MiB, peak 95 MiB; benches/README.md), as the Deployment's memory request.
pub const BASE_BYTES: u64 = 128 * 1024 * 1024;

/// The cgroup v2 file holding the container's memory limit.
pub const CGROUP_MEMORY_MAX: &str = "/sys/fs/cgroup/memory.max";

/// The cgroup v1 file holding it (nodes still on cgroup v1).
pub const CGROUP_V1_LIMIT: &str = "/sys/fs/cgroup/memory/memory.limit_in_bytes";

/// cgroup v1 writes "no limit" as the largest page-aligned `i64` (9,223,372,036,854,771,712);
/// anything from 2^62 bytes on is read as no limit.
const NO_LIMIT_FROM: u64 = 1 << 62;

const DAY_SECONDS: u64 = 86_400;

/// Origins a `guarded-*` model compares errors over: one day of steps (288 when the step
/// does not divide a day), as [`crate::forecast::guard::Guarded`] does.
fn guard_window(step_seconds: u64) -> u64 {
    if step_seconds > 0 && DAY_SECONDS.is_multiple_of(step_seconds) {
        DAY_SECONDS / step_seconds
    } else {
        288
    }
}

/// Estimated bytes one series of a target of `spec` holds (a Pods or Object twin is one
/// series; an External twin holds one per label set its query returns):
/// `4 × (history/step + 64) + 12 × fallbackWindow/step + 12 × day/step (guarded-*) + 42 KiB`,
/// plus 2,688 bytes of weights per hour of the week with `fallbackWindow` on at a step of at
/// most 5 minutes.
pub fn series_bytes(spec: &ForecastSpec) -> u64 {
    let step = spec.step.as_secs().max(1);
    let buckets = spec.history_buckets() as u64 + TRIM_SLACK as u64;
    let tracker = spec.fallback_window.as_secs() / step;
    let guard = match &spec.model {
        ModelRef::Builtin(name) if name.starts_with("guarded-") => guard_window(step),
        _ => 0,
    };
    let week = if WeekWeight::applies(i64::try_from(step).unwrap_or(i64::MAX), tracker) {
        WEEK_WEIGHT_BYTES
    } else {
        0
    };
    BYTES_PER_BUCKET * buckets
        + BYTES_PER_TRACKED_ORIGIN * (tracker + guard)
        + week
        + SERIES_OVERHEAD_BYTES
}

/// The memory the forecast engine may hold: `series` series of the rule that costs most.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// `rules[i]` / `externalRules[i]` of that rule.
    pub rule: String,
    /// Its model, history and step.
    pub model: String,
    pub history: Duration,
    pub step: Duration,
    /// [`series_bytes`] of that rule.
    pub per_series: u64,
    /// `--forecast-max-series`.
    pub series: usize,
    /// `per_series × series`.
    pub total: u64,
}

/// The estimate for `config` at `max_series` series; `None` without forecast rules.
pub fn estimate(config: &Config, max_series: usize) -> Option<Estimate> {
    let (rule, spec) = config
        .rules
        .iter()
        .chain(&config.external_rules)
        .filter_map(|r| r.forecast.as_ref().map(|s| (r, s)))
        // The first of the most expensive rules.
        .fold(None::<(&Rule, &ForecastSpec)>, |best, (r, s)| match best {
            Some((_, b)) if series_bytes(b) >= series_bytes(s) => best,
            _ => Some((r, s)),
        })?;
    let per_series = series_bytes(spec);
    Some(Estimate {
        rule: rule.label(),
        model: spec.model.to_string(),
        history: spec.history,
        step: spec.step,
        per_series,
        series: max_series,
        total: per_series.saturating_mul(max_series as u64),
    })
}

/// The limit in a cgroup v2 `memory.max` or v1 `memory.limit_in_bytes` file: bytes, or
/// `None` for no limit (`max`, v1's near-`i64::MAX`) and anything unreadable.
pub fn parse_memory_max(text: &str) -> Option<u64> {
    let text = text.trim();
    if text == "max" {
        return None;
    }
    text.parse().ok().filter(|&bytes| bytes < NO_LIMIT_FROM)
}

/// This container's memory limit and the file it came from, if cgroup v2 (or else v1)
/// gives one.
pub fn memory_limit() -> Option<(u64, &'static str)> {
    [CGROUP_MEMORY_MAX, CGROUP_V1_LIMIT]
        .into_iter()
        .find_map(|file| {
            let text = std::fs::read_to_string(file).ok()?;
            Some((parse_memory_max(&text)?, file))
        })
}

fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(1024 * 1024)
}

/// The startup line: what the estimate is and how it was made.
pub fn describe(estimate: &Estimate) -> String {
    format!(
        "forecast series may hold up to {} MiB: --forecast-max-series {} × {} KiB per series ({}: model {}, history {}, step {}; sizing in docs/forecasting.md), plus about {} MiB for the rest of augur",
        mib(estimate.total),
        estimate.series,
        estimate.per_series.div_ceil(1024),
        estimate.rule,
        estimate.model,
        humantime::format_duration(estimate.history),
        humantime::format_duration(estimate.step),
        mib(BASE_BYTES),
    )
}

/// The warning when the estimate plus the rest of augur exceeds `limit` (bytes, read from
/// `file`), with the number of series that would fit; `None` when it fits or there is no
/// limit.
pub fn over_limit(estimate: &Estimate, limit: Option<(u64, &str)>) -> Option<String> {
    let (limit, file) = limit?;
    let needed = estimate.total.saturating_add(BASE_BYTES);
    if needed <= limit {
        return None;
    }
    let fits = limit.saturating_sub(BASE_BYTES) / estimate.per_series.max(1);
    Some(format!(
        "forecast series may need {} MiB (with the rest of augur), above the container's memory limit of {} MiB ({file}): augur would be OOM-killed before --forecast-max-series {} is reached; set --forecast-max-series to at most {fits} or raise the limit to at least {} MiB",
        mib(needed),
        limit / (1024 * 1024),
        estimate.series,
        mib(needed),
    ))
}

/// Logs the estimate for `config` (nothing without forecast rules), and warns when it
/// exceeds the container's memory limit.
pub fn log_estimate(config: &Config, max_series: usize) {
    let Some(estimate) = estimate(config, max_series) else {
        return;
    };
    tracing::info!(
        bytes = estimate.total,
        per_series = estimate.per_series,
        "{}",
        describe(&estimate)
    );
    if let Some(warning) = over_limit(&estimate, memory_limit()) {
        tracing::warn!("{warning}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Reduce, ServeMode, UnknownResources};
    use crate::resources::ResourceTable;

    fn spec(model: &str, history: u64, step: u64, fallback: u64) -> ForecastSpec {
        ForecastSpec {
            line: 1,
            name: "${metric}_forecast".into(),
            model: ModelRef::Builtin(model.into()),
            horizon: Duration::from_secs(600),
            step: Duration::from_secs(step),
            history: Duration::from_secs(history),
            reduce: Reduce::Max,
            headroom: 0.0,
            serve: ServeMode::Max,
            fallback_window: Duration::from_secs(fallback),
        }
    }

    #[test]
    fn bytes_per_series_follow_history_step_and_model() {
        // The default: guarded-linear, 7 days at 1 minute, fallbackWindow 1h:
        // 4 × (10,080 + 64) + 12 × (60 + 1,440) + 2,688 + 43,008 (101.8 KiB; measured before the
        // week's weights: 99.0 KiB).
        let default = spec("guarded-linear", 7 * 86_400, 60, 3600);
        assert_eq!(series_bytes(&default), 40_576 + 18_000 + 2_688 + 43_008);
        assert_eq!(series_bytes(&default), 104_272);
        // Unguarded: no day-long error window.
        assert_eq!(
            series_bytes(&spec("persistence", 7 * 86_400, 60, 3600)),
            40_576 + 720 + 2_688 + 43_008
        );
        // One day at 30 s; the guard's window is a day of 30 s steps.
        assert_eq!(
            series_bytes(&spec("guarded-linear", 86_400, 30, 0)),
            4 * (2_880 + 64) + 12 * 2_880 + 43_008
        );
        // A step that does not divide a day: the guard keeps 288 origins.
        assert_eq!(
            series_bytes(&spec("guarded-linear", 86_400, 7, 0)),
            4 * (12_342 + 64) + 12 * 288 + 43_008
        );
        // ONNX models keep no guard.
        let onnx = ForecastSpec {
            model: ModelRef::Onnx("m.onnx".into()),
            ..spec("x", 86_400, 60, 0)
        };
        assert_eq!(series_bytes(&onnx), 4 * (1_440 + 64) + 43_008);
    }

    const CONFIG: &str = r#"
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {matches: "^(.*)_total$", as: "${1}_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
  forecast: {model: persistence, history: 1d}
- seriesQuery: 'http_errors_total{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {matches: "^(.*)_total$", as: "${1}_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
externalRules:
- seriesQuery: 'queue_depth{queue!=""}'
  resources: {namespaced: false}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (queue)'
  forecast: {}
"#;

    fn config(text: &str) -> Config {
        crate::config::parse(
            text,
            "c.yaml",
            &ResourceTable::builtin(),
            UnknownResources::Reject,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_estimate_takes_the_costliest_rule_at_max_series() {
        let c = config(CONFIG);
        let estimate = estimate(&c, 3_500).unwrap_or_else(|| panic!("no estimate"));
        assert_eq!(
            estimate,
            Estimate {
                rule: "externalRules[0]".into(),
                model: "guarded-linear".into(),
                history: Duration::from_secs(7 * 86_400),
                step: Duration::from_secs(60),
                per_series: 104_272,
                series: 3_500,
                total: 364_952_000,
            }
        );
        // 364,952,000 B = 348.05 MiB, 104,272 B = 101.8 KiB, both rounded up.
        assert_eq!(
            describe(&estimate),
            "forecast series may hold up to 349 MiB: --forecast-max-series 3500 × 102 KiB per series (externalRules[0]: model guarded-linear, history 7days, step 1m; sizing in docs/forecasting.md), plus about 128 MiB for the rest of augur"
        );
        // No forecast rule: nothing to estimate.
        let without = config(
            &CONFIG
                .replace("forecast: {}", "")
                .replace("forecast: {model: persistence, history: 1d}", ""),
        );
        assert_eq!(super::estimate(&without, 3_500), None);
    }

    #[test]
    fn cgroup_memory_max_is_bytes_or_no_limit() {
        assert_eq!(parse_memory_max("536870912\n"), Some(536_870_912));
        assert_eq!(parse_memory_max("max\n"), None);
        // cgroup v1's "no limit".
        assert_eq!(parse_memory_max("9223372036854771712\n"), None);
        assert_eq!(
            parse_memory_max("4611686018427387903"),
            Some(4_611_686_018_427_387_903)
        );
        assert_eq!(parse_memory_max(""), None);
        assert_eq!(parse_memory_max("lots"), None);
    }

    #[test]
    fn a_warning_only_above_the_limit_with_the_series_that_fit() {
        let c = config(CONFIG);
        let at = |series| estimate(&c, series).unwrap_or_else(|| panic!("no estimate"));
        let limit = Some((512 * 1024 * 1024, CGROUP_MEMORY_MAX));
        // The default, 3,500 × 104,272 B + 128 MiB = 476.1 MiB: fits in 512 MiB.
        assert_eq!(over_limit(&at(3_500), limit), None);
        assert_eq!(over_limit(&at(10_000), None), None);
        // 10,000 × 104,272 B + 128 MiB = 1,122.4 MiB; (512 − 128) MiB / 104,272 B = 3,861.6.
        assert_eq!(
            over_limit(&at(10_000), limit).as_deref(),
            Some(
                "forecast series may need 1123 MiB (with the rest of augur), above the container's memory limit of 512 MiB (/sys/fs/cgroup/memory.max): augur would be OOM-killed before --forecast-max-series 10000 is reached; set --forecast-max-series to at most 3861 or raise the limit to at least 1123 MiB"
            )
        );
        // The boundary: 3,862 × 104,272 B = 402,698,464 B, above the 402,653,184 B left.
        assert!(over_limit(&at(3_862), limit).is_some());
        assert_eq!(over_limit(&at(3_861), limit), None);
        // A cgroup v1 limit names its file.
        let v1 = Some((512 * 1024 * 1024, CGROUP_V1_LIMIT));
        assert!(
            over_limit(&at(10_000), v1)
                .is_some_and(|w| w.contains("(/sys/fs/cgroup/memory/memory.limit_in_bytes)"))
        );
    }
}
