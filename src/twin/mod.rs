//! Forecast twins: serving `<metric>_forecast` for rules with a `forecast:` block, beside
//! [`crate::provider`] (whose live queries it forecasts): the [`engine`] (targets, history
//! refresh, serving with fallback), its per-series history store ([`buckets`]), its memory
//! [`sizing`], and its flags. The models themselves are [`crate::forecast`]'s.

pub mod buckets;
pub mod engine;
pub mod sizing;

use std::time::Duration;

use clap::Args;

/// Flags of the forecast engine behind `forecast:` rule blocks.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct ForecastArgs {
    /// How long a request for a new forecast target waits for its first forecast before it
    /// is answered with the live value.
    #[arg(long, default_value = "2s", value_parser = crate::units::parse_duration)]
    pub forecast_first_wait: Duration,
    /// Most forecast targets (rule × metric × namespace × objects/selector) held at once;
    /// requests for more are answered with the live value. A target of the default model
    /// with 7 days of 1-minute history holds about 100 KiB, so the default fits the shipped
    /// 512Mi memory limit with 128 MiB for the rest (see the startup log's estimate).
    #[arg(long, default_value_t = 3_500)]
    pub forecast_max_targets: usize,
    /// Most series held by all forecast targets together (memory grows with series: a Pods
    /// or Object twin is one series, an External twin one per label set its query returns);
    /// series beyond it are answered with their live value (reason `max_series`).
    #[arg(long, default_value_t = 3_500)]
    pub forecast_max_series: usize,
    /// Drop a target not requested for this long (default: 10 × the rule's step).
    #[arg(long, value_parser = crate::units::positive_duration)]
    pub forecast_idle_eviction: Option<Duration>,
    /// How often each series' model is refitted (predictions run every step). Daily, the
    /// cadence the accuracy figures in benches/README.md were measured with; fitting the
    /// default `guarded-linear` on 7 days hourly would cost several cores for 10,000 targets.
    #[arg(long, default_value = "24h", value_parser = crate::units::positive_duration)]
    pub forecast_refit_interval: Duration,
    /// Range queries in flight at once while refreshing forecast histories.
    #[arg(long, default_value_t = 8, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub forecast_concurrency: usize,
    /// Where the ONNX Runtime library is (only loaded when a rule uses an ONNX model).
    #[command(flatten)]
    pub onnx: crate::forecast::onnx::RuntimeArgs,
}

/// The flags' defaults, for tests and benches that build an engine without parsing flags;
/// a unit test checks that they are what clap parses from no flags.
impl Default for ForecastArgs {
    fn default() -> Self {
        Self {
            forecast_first_wait: Duration::from_secs(2),
            forecast_max_targets: 3_500,
            forecast_max_series: 3_500,
            forecast_idle_eviction: None,
            forecast_refit_interval: Duration::from_secs(86_400),
            forecast_concurrency: 8,
            onnx: crate::forecast::onnx::RuntimeArgs::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::forecast::onnx::RuntimeArgs;

    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        forecast: ForecastArgs,
    }

    #[test]
    fn the_default_is_what_clap_parses_from_no_flags() {
        let parsed = Flags::try_parse_from(["augur"]).map(|flags| ForecastArgs {
            // ORT_DYLIB_PATH, if set, fills the library path: not a default of augur's.
            onnx: RuntimeArgs::default(),
            ..flags.forecast
        });
        assert_eq!(
            parsed.map_err(|e| e.to_string()),
            Ok(ForecastArgs::default())
        );
    }
}
