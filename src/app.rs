//! Wiring for `augur serve`: its flags; load the config, build the backend, start the relist and
//! config-reload loops, serve HTTPS until SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use tokio::sync::watch;

use crate::api::{self, AppState, health::Health};
use crate::config::{self, ConfigError, UnknownResources};
use crate::prometheus::coalesce::Coalescing;
use crate::prometheus::instrumented::Instrumented;
use crate::prometheus::{Backend, HttpBackend, PrometheusArgs};
use crate::reload::{ConfigSource, Reloader};
use crate::resources::ResourceTable;
use crate::series::{Registry, RelistOptions, Relister, Snapshot};
use crate::telemetry::Metrics;
use crate::tls::TlsOptions;
use crate::units::positive_duration;

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
    pub forecast: crate::twin::ForecastArgs,
    /// How often series are relisted.
    #[arg(long, default_value = "1m", value_parser = positive_duration)]
    pub metrics_relist_interval: Duration,
    /// Series seen within this window are discovered (default: the relist interval).
    #[arg(long, value_parser = positive_duration)]
    pub metrics_max_age: Option<Duration>,
    /// How many series queries run at once during a relist.
    #[arg(long, default_value_t = 4, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub relist_concurrency: usize,
    /// How often the config file is checked for changes (SIGHUP reloads at once).
    #[arg(long, default_value = "10s", value_parser = positive_duration)]
    pub config_check_interval: Duration,
    /// Port for HTTPS.
    #[arg(long, default_value_t = 6443, value_parser = clap::value_parser!(u16).range(1..))]
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
    /// Cipher suites, minimum TLS version, port sharing.
    #[command(flatten)]
    pub serving: crate::tls::policy::ServingArgs,
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

/// Why `serve` stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file is invalid (exit code 64).
    #[error("invalid config:\n{0}")]
    Config(#[from] ConfigError),
    /// A flag value is invalid (exit code 64).
    #[error("{0}")]
    Usage(String),
    /// The backend client could not be built.
    #[error(transparent)]
    Backend(#[from] crate::prometheus::Error),
    /// TLS material could not be loaded or created.
    #[error(transparent)]
    Tls(#[from] crate::tls::Error),
    /// Delegated authentication could not be set up.
    #[error(transparent)]
    Auth(#[from] crate::auth::Error),
    /// Cluster mode could not start (kubeconfig, connection, API discovery).
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    /// The port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

impl Error {
    /// The process exit code: 64 (EX_USAGE) for bad config or flags, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Usage(_) => 64,
            _ => 1,
        }
    }
}

/// Runs the server until a shutdown signal.
pub async fn serve(args: ServeArgs) -> Result<(), Error> {
    crate::tls::install_crypto_provider();
    let max_age = args.max_age().map_err(Error::Usage)?;
    let tls_policy = args.serving.tls_policy().map_err(Error::Usage)?;
    for warning in &tls_policy.warnings {
        tracing::warn!("{warning}");
    }
    // Cluster mode: resources from API discovery (unknown override resources are errors);
    // standalone: the built-in table, unknown resources guessed.
    let cluster = crate::cluster::Cluster::start(&args.cluster).await?;
    let (table, unknown) = match &cluster {
        Some(cluster) => (cluster.table.load_full(), UnknownResources::Reject),
        None => (Arc::new(ResourceTable::builtin()), UnknownResources::Guess),
    };
    let text = std::fs::read_to_string(&args.config).map_err(|e| {
        Error::Usage(format!(
            "cannot read --config {}: {e}",
            args.config.display()
        ))
    })?;
    let config = Arc::new(config::parse(
        &text,
        &args.config.display().to_string(),
        &table,
        unknown,
    )?);
    tracing::info!(
        config = %args.config.display(),
        rules = config.rules.len(),
        external_rules = config.external_rules.len(),
        resource_rules = config.resource_rules.is_some(),
        "config loaded"
    );
    crate::twin::sizing::log_estimate(&config, args.forecast.forecast_max_series);

    let metrics = Arc::new(Metrics::new());
    let (in_flight, queued) = metrics.prometheus_load();
    let http: Arc<dyn Backend> = Arc::new(
        HttpBackend::new(&args.prometheus.backend_options())?.with_load_gauges(in_flight, queued),
    );
    let instrumented: Arc<dyn Backend> = Arc::new(Instrumented::new(http, metrics.clone()));
    let backend: Arc<dyn Backend> = Arc::new(Coalescing::new(
        instrumented,
        metrics.prometheus_coalesced(),
    ));
    let registry = Arc::new(Registry::new(Snapshot::empty(
        config.clone(),
        table.clone(),
    )));
    let health = Health::new();

    let (config_tx, config_rx) = watch::channel(config);
    let relister = Relister::new(
        backend.clone(),
        registry.clone(),
        table.clone(),
        RelistOptions {
            interval: args.metrics_relist_interval,
            max_age,
            concurrency: args.relist_concurrency,
        },
        metrics.clone(),
    );
    let relister = match &cluster {
        Some(cluster) => relister.with_shared_table(cluster.table.clone()),
        None => relister,
    };
    let ready = health.clone();
    tokio::spawn(relister.run(
        config_rx,
        move |report: &crate::series::relist::RelistReport| {
            if report.backend_answered() {
                ready.set_ready();
            }
        },
    ));
    let reloader = Reloader::new(
        ConfigSource {
            path: args.config.clone(),
            table,
            unknown,
        },
        &text,
        config_tx,
        metrics.clone(),
    )
    .with_forecast_sizing(args.forecast.forecast_max_series);
    let reloader = match &cluster {
        Some(cluster) => reloader.with_shared_table(cluster.table.clone()),
        None => reloader,
    };
    tokio::spawn(reloader.run(args.config_check_interval));

    let auth = crate::auth::setup(&args.auth, args.cluster.lister_kubeconfig.as_deref()).await?;
    let tls = TlsOptions {
        cert_file: args.tls_cert_file.clone(),
        key_file: args.tls_private_key_file.clone(),
        cert_dir: args.cert_dir.clone(),
        disable_http2: args.disable_http2,
    }
    .load_with(tls_policy.provider)?;
    let addr = SocketAddr::new(args.bind_address, args.secure_port);
    let listener = args
        .serving
        .bind(addr)
        .map_err(|source| Error::Listen { addr, source })?;
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(address = %local, "serving HTTPS");
    crate::forecast::onnx::runtime::choose_library(args.forecast.onnx.onnxruntime_library.clone());
    let forecast = crate::twin::engine::Engine::new(
        backend.clone(),
        metrics.clone(),
        crate::twin::engine::EngineOptions::from(&args.forecast),
    );
    let mut state = AppState::new(registry, backend, metrics, health).with_forecast(forecast);
    if let Some(cluster) = &cluster {
        state = state.with_objects(cluster.objects.clone());
    }
    let (tls, router) = match &auth {
        Some(auth) => (
            auth.tls(tls)?,
            api::router_behind(state, |routes| auth.protect(routes)),
        ),
        None => (tls, api::router(state)),
    };
    crate::tls::serve_with(
        listener,
        tls,
        router,
        shutdown_signal(),
        args.serving.limits(),
    )
    .await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown signal received, draining connections");
}
