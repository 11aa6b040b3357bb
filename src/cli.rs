//! Command line: `augur serve`, `check`, `certs`, `train` and `backtest`, with prometheus-adapter's flag names for serving.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::prometheus::{BackendOptions, Verb};

/// prometheus-adapter's default `--prometheus-url`.
pub const DEFAULT_PROMETHEUS_URL: &str = "https://localhost";

/// augur: a prometheus-adapter compatible Kubernetes metrics API server.
#[derive(Debug, Parser)]
#[command(name = "augur", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log level (error, warn, info, debug, trace) or a tracing filter.
    #[arg(long, global = true, default_value = "info", env = "AUGUR_LOG")]
    pub log_level: String,
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
    Serve(ServeArgs),
    /// Validate a config; with --prometheus-url also show what each rule discovers.
    Check(CheckArgs),
    /// Create a CA and serving certificate for the APIService objects.
    Certs(crate::certs::CertsArgs),
    /// Fit the linear forecaster and write it as an ONNX model.
    Train(crate::train::TrainArgs),
    /// Evaluate forecasters and simulate the HPA on a trace.
    Backtest(crate::backtest::BacktestArgs),
}

/// How query calls are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerbArg {
    /// GET (POST automatically for long queries).
    #[value(name = "GET", alias = "get")]
    Get,
    /// Always POST.
    #[value(name = "POST", alias = "post")]
    Post,
}

/// Flags for the Prometheus-compatible backend.
#[derive(Debug, Clone, Args)]
pub struct PrometheusArgs {
    /// URL of the Prometheus API; a path prefix is kept (`http://thanos:9090/prefix`).
    /// Default for `serve`: https://localhost (as prometheus-adapter); `check` queries nothing
    /// without it.
    #[arg(long)]
    pub prometheus_url: Option<String>,
    /// File holding a bearer token for the backend (read at start).
    #[arg(long)]
    pub prometheus_token_file: Option<PathBuf>,
    /// CA bundle that signs the backend's serving certificate.
    #[arg(long)]
    pub prometheus_ca_file: Option<PathBuf>,
    /// Client certificate for the backend.
    #[arg(long, requires = "prometheus_client_tls_key_file")]
    pub prometheus_client_tls_cert_file: Option<PathBuf>,
    /// Client key for the backend.
    #[arg(long, requires = "prometheus_client_tls_cert_file")]
    pub prometheus_client_tls_key_file: Option<PathBuf>,
    /// Extra header `Name=value` sent to the backend (repeatable), e.g. `X-Scope-OrgID=team-a`.
    #[arg(long = "prometheus-header", value_parser = parse_header)]
    pub prometheus_headers: Vec<(String, String)>,
    /// HTTP verb for queries.
    #[arg(long, value_enum, default_value = "GET")]
    pub prometheus_verb: VerbArg,
    /// Timeout of every backend call.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub prometheus_timeout: Duration,
    /// Most backend calls (and connections) at once; more wait for a free one, within
    /// --prometheus-timeout.
    #[arg(long, default_value_t = crate::prometheus::client::DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub prometheus_max_connections: usize,
}

impl PrometheusArgs {
    /// The backend options these flags describe.
    pub fn backend_options(&self) -> BackendOptions {
        BackendOptions {
            url: self
                .prometheus_url
                .clone()
                .unwrap_or_else(|| DEFAULT_PROMETHEUS_URL.to_owned()),
            timeout: self.prometheus_timeout,
            token_file: self.prometheus_token_file.clone(),
            ca_file: self.prometheus_ca_file.clone(),
            client_cert: self
                .prometheus_client_tls_cert_file
                .clone()
                .zip(self.prometheus_client_tls_key_file.clone()),
            headers: self.prometheus_headers.clone(),
            verb: match self.prometheus_verb {
                VerbArg::Get => Verb::Get,
                VerbArg::Post => Verb::Post,
            },
            max_connections: self.prometheus_max_connections,
        }
    }
}

/// `augur serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// prometheus-adapter discovery config (rules, externalRules, resourceRules).
    #[arg(long)]
    pub config: PathBuf,
    /// Backend flags.
    #[command(flatten)]
    pub prometheus: PrometheusArgs,
    /// Cluster connection flags (cluster mode).
    #[command(flatten)]
    pub cluster: crate::cluster::ClusterArgs,
    /// Delegated authentication and authorization flags.
    #[command(flatten)]
    pub auth: crate::auth::AuthArgs,
    /// Forecast engine flags.
    #[command(flatten)]
    pub forecast: crate::forecast::ForecastArgs,
    /// How often series are relisted.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub metrics_relist_interval: Duration,
    /// Series seen within this window are discovered (default: the relist interval).
    #[arg(long, value_parser = parse_duration)]
    pub metrics_max_age: Option<Duration>,
    /// How many series queries run at once during a relist.
    #[arg(long, default_value_t = 4)]
    pub relist_concurrency: usize,
    /// How often the config file is checked for changes (SIGHUP reloads at once).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub config_check_interval: Duration,
    /// Port for HTTPS.
    #[arg(long, default_value_t = 6443)]
    pub secure_port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: std::net::IpAddr,
    /// Where a self-signed certificate is written when no --tls-cert-file is given.
    #[arg(long, default_value = "apiserver.local.config/certificates")]
    pub cert_dir: PathBuf,
    /// Serving certificate (PEM); reloaded when it changes.
    #[arg(long, requires = "tls_private_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// Serving key (PEM).
    #[arg(long, requires = "tls_cert_file")]
    pub tls_private_key_file: Option<PathBuf>,
    /// Serve HTTP/1.1 only (CVE-2023-44487 mitigation).
    #[arg(long)]
    pub disable_http2: bool,
}

impl ServeArgs {
    /// `--metrics-max-age`, defaulting to the relist interval; it may not be shorter.
    pub fn max_age(&self) -> Result<Duration, String> {
        let max_age = self.metrics_max_age.unwrap_or(self.metrics_relist_interval);
        if max_age < self.metrics_relist_interval {
            return Err(format!(
                "--metrics-max-age ({}) must be at least --metrics-relist-interval ({}), or series would drop out between relists",
                humantime::format_duration(max_age),
                humantime::format_duration(self.metrics_relist_interval)
            ));
        }
        Ok(max_age)
    }
}

/// `augur check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Config file to check.
    #[arg(long)]
    pub config: PathBuf,
    /// Backend flags; without an explicit --prometheus-url nothing is queried.
    #[command(flatten)]
    pub prometheus: PrometheusArgs,
    /// How far back series count as present.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub metrics_max_age: Duration,
}

/// Parses `Name=value` (split on the first `=`).
fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected Name=value, got {text:?}")),
    }
}

/// Parses Go/Prometheus-style durations: `30s`, `1m`, `1h30m`, `500ms`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("invalid duration {text:?}: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
