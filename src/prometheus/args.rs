//! The backend's flags (`--prometheus-url`, `--prometheus-ca-file`, …), shared by `serve`,
//! `check`, `train` and `backtest`, and the [`BackendOptions`] they describe.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::{BackendOptions, Verb};
use crate::units::positive_duration;

/// prometheus-adapter's default `--prometheus-url`.
pub const DEFAULT_PROMETHEUS_URL: &str = "https://localhost";

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
    /// File holding a bearer token for the backend (read at start and every minute).
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
    #[arg(long, default_value = "10s", value_parser = positive_duration)]
    pub prometheus_timeout: Duration,
    /// Most backend calls (and connections) at once; more wait for a free one, within
    /// --prometheus-timeout.
    #[arg(long, default_value_t = super::client::DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub prometheus_max_connections: usize,
    /// Kubernetes-style credentials for the backend.
    #[command(flatten)]
    pub auth: super::auth::AuthConfigArgs,
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
            auth: self.auth.clone(),
            max_connections: self.prometheus_max_connections,
        }
    }
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
