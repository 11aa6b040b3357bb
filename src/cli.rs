//! Command line: `augur serve`, `check`, `certs`, `train` and `backtest`, with prometheus-adapter's flag names for serving.
//!
//! Only the command tree lives here: each subcommand's flags live in the module that runs
//! it, and nothing imports from this module.

use clap::{Parser, Subcommand};

pub mod compat;
pub mod gotypes;

/// augur: a prometheus-adapter compatible Kubernetes metrics API server.
#[derive(Debug, Parser)]
#[command(name = "augur", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log level (off, error, warn, info, debug, trace) or a filter such as
    /// `info,augur=debug` [default: info, or from klog's --v]
    #[arg(long, global = true, env = "AUGUR_LOG", value_parser = crate::telemetry::parse_log_level)]
    pub log_level: Option<String>,
    /// Log as JSON lines.
    #[arg(long, global = true)]
    pub log_json: bool,
}

/// Subcommands.
// Parsed once per process: the size of the `serve` flags does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the metrics APIs.
    Serve(crate::app::ServeArgs),
    /// Validate a config; with --prometheus-url also show what each rule discovers.
    Check(crate::check::CheckArgs),
    /// Create a CA and serving certificate for the APIService objects.
    Certs(crate::certs::CertsArgs),
    /// Fit the linear forecaster and write it as an ONNX model.
    Train(crate::train::TrainArgs),
    /// Evaluate forecasters and simulate the HPA on a trace.
    Backtest(crate::backtest::BacktestArgs),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::prometheus::Verb;
    use std::time::Duration;

    #[test]
    fn adapter_flag_names_parse() {
        let cli = Cli::try_parse_from([
            "augur",
            "serve",
            "--config=c.yaml",
            "--prometheus-url=http://127.0.0.1:9090/prom",
            "--prometheus-header=X-Scope-OrgID=team=a",
            "--prometheus-verb=POST",
            "--metrics-relist-interval=30s",
            "--metrics-max-age=2m",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        let opts = args.prometheus.backend_options();
        assert_eq!(
            opts.headers,
            vec![("X-Scope-OrgID".to_owned(), "team=a".to_owned())]
        );
        assert_eq!(opts.verb, Verb::Post);
        assert_eq!(args.max_age().unwrap(), Duration::from_secs(120));
        assert_eq!(opts.timeout, Duration::from_secs(10));
    }

    #[test]
    fn max_age_below_relist_interval_is_rejected() {
        let cli =
            Cli::try_parse_from(["augur", "serve", "--config=c", "--metrics-max-age=10s"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        let err = args.max_age().unwrap_err();
        assert!(
            err.starts_with(
                "--metrics-max-age (10s) must be at least --metrics-relist-interval (1m)"
            ),
            "{err}"
        );
    }
}
