//! Config reload without restart: on file change (polled, so ConfigMap symlink swaps are
//! seen) or SIGHUP, load and validate the file, then publish it; a bad file is rejected with
//! its problems logged and the previous config keeps serving.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::{self, Config, UnknownResources};
use crate::resources::ResourceTable;
use crate::telemetry::{Metrics, ReloadResult};

/// Where the config comes from and how to compile it.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    /// The file.
    pub path: PathBuf,
    /// Resource names overrides are resolved against.
    pub table: Arc<ResourceTable>,
    /// Standalone or cluster semantics for unknown override resources.
    pub unknown: UnknownResources,
}

/// What one reload attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The file is byte-identical to the last one seen.
    Unchanged,
    /// A new config was published.
    Applied,
    /// The new file was rejected; the message lists every problem.
    Rejected(String),
}

/// Tracks the last file content seen and publishes valid new configs.
#[derive(Debug)]
pub struct Reloader {
    source: ConfigSource,
    last_hash: Option<u64>,
    sender: watch::Sender<Arc<Config>>,
    metrics: Arc<Metrics>,
    shared_table: Option<Arc<arc_swap::ArcSwap<ResourceTable>>>,
    /// `--forecast-max-series`, to log the memory estimate of each applied config.
    forecast_max_series: Option<usize>,
}

impl Reloader {
    /// A reloader whose current config (already published in `sender`) came from `text`.
    pub fn new(
        source: ConfigSource,
        initial_text: &str,
        sender: watch::Sender<Arc<Config>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            source,
            last_hash: Some(hash(initial_text)),
            sender,
            metrics,
            shared_table: None,
            forecast_max_series: None,
        }
    }

    /// Logs the forecast memory estimate (and a warning above the container's limit) for
    /// each applied config, as at startup: a reload can add forecast rules or longer
    /// histories.
    pub fn with_forecast_sizing(mut self, max_series: usize) -> Self {
        self.forecast_max_series = Some(max_series);
        self
    }

    /// Compiles reloaded files against `table` (cluster mode: refreshed by API discovery)
    /// instead of the source's fixed table.
    pub fn with_shared_table(mut self, table: Arc<arc_swap::ArcSwap<ResourceTable>>) -> Self {
        self.shared_table = Some(table);
        self
    }

    /// Reads the file; if it changed (or `force`), validates and publishes it.
    pub fn reload(&mut self, force: bool) -> ReloadOutcome {
        let text = match std::fs::read_to_string(&self.source.path) {
            Ok(text) => text,
            Err(e) => {
                let message = format!("cannot read {}: {e}", self.source.path.display());
                return self.reject(None, message);
            }
        };
        let digest = hash(&text);
        if !force && self.last_hash == Some(digest) {
            return ReloadOutcome::Unchanged;
        }
        let file = self.source.path.display().to_string();
        let table = match &self.shared_table {
            Some(shared) => shared.load_full(),
            None => self.source.table.clone(),
        };
        match config::parse(&text, &file, &table, self.source.unknown) {
            Ok(config) if serves_nothing(&config) && !serves_nothing(&self.sender.borrow()) => {
                let running = describe(&self.sender.borrow());
                self.reject(
                    Some(digest),
                    format!(
                        "the new config has no rules, externalRules or resourceRules while the running one has {running}: an emptied file is refused (a truncated write?); restart augur to serve nothing"
                    ),
                )
            }
            Ok(config) => {
                self.last_hash = Some(digest);
                if let Some(max_series) = self.forecast_max_series {
                    crate::twin::sizing::log_estimate(&config, max_series);
                }
                self.sender.send_replace(Arc::new(config));
                self.metrics.config_reloaded(ReloadResult::Success);
                tracing::info!(config = %file, "config reloaded");
                ReloadOutcome::Applied
            }
            Err(e) => self.reject(Some(digest), e.to_string()),
        }
    }

    fn reject(&mut self, digest: Option<u64>, message: String) -> ReloadOutcome {
        // Remember a bad file so it is reported once, not on every poll.
        if digest.is_some() {
            self.last_hash = digest;
        }
        self.metrics.config_reloaded(ReloadResult::Failure);
        tracing::error!(config = %self.source.path.display(), problems = %message, "config reload rejected, the previous config keeps serving");
        ReloadOutcome::Rejected(message)
    }

    /// Polls every `interval` and reloads at once on SIGHUP, until the receiver side closes.
    pub async fn run(mut self, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        #[cfg(unix)]
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            Ok(signal) => Some(signal),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; config changes are still picked up by polling");
                None
            }
        };
        loop {
            #[cfg(unix)]
            let force = tokio::select! {
                _ = ticker.tick() => false,
                Some(()) = async { match hangup.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => true,
            };
            #[cfg(not(unix))]
            let force = {
                ticker.tick().await;
                false
            };
            if self.sender.is_closed() {
                return;
            }
            self.reload(force);
        }
    }
}

/// Whether a config has no rule of any kind (an empty or truncated file).
fn serves_nothing(config: &Config) -> bool {
    config.rules.is_empty() && config.external_rules.is_empty() && config.resource_rules.is_none()
}

/// `5 rules and 2 externalRules`, `resourceRules`: what a config serves, for messages.
fn describe(config: &Config) -> String {
    let mut parts = Vec::new();
    if !config.rules.is_empty() {
        parts.push(format!("{} rules", config.rules.len()));
    }
    if !config.external_rules.is_empty() {
        parts.push(format!("{} externalRules", config.external_rules.len()));
    }
    if config.resource_rules.is_some() {
        parts.push("resourceRules".to_owned());
    }
    match parts.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => "nothing".to_owned(),
    }
}

fn hash(text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}
