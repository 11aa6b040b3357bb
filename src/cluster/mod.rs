//! Cluster mode: the Kubernetes API client, resource discovery and watch-backed object
//! caches that augur uses when it runs behind kube-apiserver's aggregation layer.
//!
//! Submodules: [`discovery`] builds the [`ResourceTable`] from the API server's discovery
//! documents and refreshes it; [`cache`] keeps one metadata watch per resource type and
//! answers label selectors from it.

pub mod cache;
pub mod discovery;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use clap::{Args, ValueEnum};

use crate::resources::ResourceTable;

pub use cache::ObjectCache;

/// Timeout for establishing a connection to the Kubernetes API.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound on waiting for response bytes. Watches are closed by the server after at most
/// 290 s and the watcher's own idle timeout (295 s) fires first; this bounds LIST calls.
const READ_TIMEOUT: Duration = Duration::from_secs(300);

/// When augur talks to a Kubernetes API server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ClusterMode {
    /// On when running in a pod (`KUBERNETES_SERVICE_HOST` is set) or a kubeconfig flag is given.
    #[default]
    Auto,
    /// Always: fail at start when the API cannot be reached.
    On,
    /// Never (standalone: built-in resource table, `*` means every object with a sample).
    Off,
}

/// Flags that connect augur to a Kubernetes cluster (prometheus-adapter's names).
#[derive(Debug, Clone, Default, Args)]
pub struct ClusterArgs {
    /// Cluster mode: auto (on in a pod or with a kubeconfig flag), on, off (standalone).
    #[arg(long = "cluster", value_enum, default_value = "auto")]
    pub cluster_mode: ClusterMode,
    /// kubeconfig for listing and watching objects and API discovery; in-cluster config
    /// when running in a pod and this is not set.
    #[arg(long)]
    pub lister_kubeconfig: Option<PathBuf>,
    /// kubeconfig used when --lister-kubeconfig is not given.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// How often API discovery (the resource table) is refreshed.
    #[arg(long, default_value = "10m", value_parser = crate::units::positive_duration)]
    pub discovery_interval: Duration,
    /// Accepted for prometheus-adapter compatibility. augur makes one LIST+WATCH per resource
    /// type and a discovery round per interval, never a call per request, so it does not
    /// throttle client-side.
    #[arg(long, default_value_t = 5.0)]
    pub client_qps: f32,
    /// Accepted for prometheus-adapter compatibility (see --client-qps).
    #[arg(long, default_value_t = 10)]
    pub client_burst: u32,
    /// Timeout of each discovery call to the Kubernetes API.
    #[arg(long, default_value = "10s", value_parser = crate::units::positive_duration)]
    pub kube_api_timeout: Duration,
    /// How long a request waits for a new object cache's first list before answering 503.
    #[arg(long, default_value = "3s", value_parser = crate::units::positive_duration)]
    pub cache_sync_timeout: Duration,
}

impl ClusterArgs {
    /// The kubeconfig to use: `--lister-kubeconfig`, else `--kubeconfig`.
    pub fn kubeconfig_path(&self) -> Option<&Path> {
        self.lister_kubeconfig
            .as_deref()
            .or(self.kubeconfig.as_deref())
    }

    /// Whether cluster mode is on, given whether the process runs in a pod.
    pub fn enabled_with(&self, in_pod: bool) -> bool {
        match self.cluster_mode {
            ClusterMode::On => true,
            ClusterMode::Off => false,
            ClusterMode::Auto => in_pod || self.kubeconfig_path().is_some(),
        }
    }

    /// Whether cluster mode is on (`KUBERNETES_SERVICE_HOST` says "in a pod").
    pub fn enabled(&self) -> bool {
        self.enabled_with(std::env::var_os("KUBERNETES_SERVICE_HOST").is_some())
    }
}

/// Why cluster mode could not start or a cluster call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The kubeconfig could not be read or used.
    #[error("cannot use kubeconfig {path}: {message}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// No kubeconfig and not in a pod.
    #[error(
        "cluster mode needs --lister-kubeconfig (or --kubeconfig) outside a pod: {0}; use --cluster=off to run standalone"
    )]
    InCluster(String),
    /// The client could not be built.
    #[error("cannot build the Kubernetes client: {0}")]
    Client(String),
    /// API discovery failed.
    #[error("Kubernetes API discovery failed: {0}")]
    Discovery(String),
}

/// A Kubernetes client from `path` (a kubeconfig), or from the pod's service account when
/// `None`. Connects within 10 s; reads are bounded (see the constants of this module).
pub async fn connect(path: Option<&Path>) -> Result<kube::Client, ClusterError> {
    let mut config = match path {
        Some(path) => {
            let error = |message: String| ClusterError::Kubeconfig {
                path: path.to_owned(),
                message,
            };
            let kubeconfig =
                kube::config::Kubeconfig::read_from(path).map_err(|e| error(e.to_string()))?;
            kube::Config::from_custom_kubeconfig(
                kubeconfig,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .map_err(|e| error(e.to_string()))?
        }
        None => kube::Config::incluster().map_err(|e| ClusterError::InCluster(e.to_string()))?,
    };
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.write_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(READ_TIMEOUT);
    config.reset_reader_on_write = true;
    kube::Client::try_from(config).map_err(|e| ClusterError::Client(e.to_string()))
}

/// Everything cluster mode runs: the client, the refreshed resource table and the caches.
pub struct Cluster {
    /// The Kubernetes client.
    pub client: kube::Client,
    /// The resource table from discovery, replaced every `--discovery-interval`.
    pub table: Arc<ArcSwap<ResourceTable>>,
    /// Watch caches of object metadata, one per resource type requested.
    pub objects: Arc<ObjectCache>,
    refresher: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("resources", &self.table.load().iter().count())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Starts cluster mode when `args` enable it (None: standalone): connects, runs a first
    /// discovery (an error if it fails) and starts the discovery refresh loop.
    pub async fn start(args: &ClusterArgs) -> Result<Option<Cluster>, ClusterError> {
        if !args.enabled() {
            return Ok(None);
        }
        let client = connect(args.kubeconfig_path()).await?;
        let table = discovery::discover(&client, args.kube_api_timeout).await?;
        tracing::info!(
            kubeconfig = %args.kubeconfig_path().map(|p| p.display().to_string()).unwrap_or_else(|| "in-cluster".into()),
            resources = table.iter().count(),
            "cluster mode: resource table from API discovery"
        );
        let table = Arc::new(ArcSwap::from_pointee(table));
        let refresher = tokio::spawn(discovery::refresh(
            client.clone(),
            table.clone(),
            args.discovery_interval,
            args.kube_api_timeout,
        ));
        let objects = Arc::new(ObjectCache::new(client.clone(), args.cache_sync_timeout));
        Ok(Some(Cluster {
            client,
            table,
            objects,
            refresher,
        }))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.refresher.abort();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        cluster: ClusterArgs,
    }

    fn parse(args: &[&str]) -> ClusterArgs {
        let mut all = vec!["augur"];
        all.extend_from_slice(args);
        Flags::try_parse_from(all).unwrap().cluster
    }

    #[test]
    fn mode_follows_the_pod_and_kubeconfig_flags() {
        let args = parse(&[]);
        assert!(!args.enabled_with(false));
        assert!(args.enabled_with(true));
        assert_eq!(args.discovery_interval, Duration::from_secs(600));
        assert_eq!((args.client_qps, args.client_burst), (5.0, 10));
        let args = parse(&["--kubeconfig=/k"]);
        assert!(args.enabled_with(false));
        assert_eq!(args.kubeconfig_path(), Some(Path::new("/k")));
        let args = parse(&["--kubeconfig=/k", "--lister-kubeconfig=/l"]);
        assert_eq!(args.kubeconfig_path(), Some(Path::new("/l")));
        let args = parse(&["--lister-kubeconfig=/l", "--cluster=off"]);
        assert!(!args.enabled_with(true));
        let args = parse(&["--cluster=on", "--discovery-interval=30s"]);
        assert!(args.enabled_with(false));
        assert_eq!(args.discovery_interval, Duration::from_secs(30));
    }

    #[tokio::test]
    async fn a_missing_kubeconfig_is_a_clear_error() {
        let Err(err) = connect(Some(Path::new("/nonexistent/kubeconfig"))).await else {
            panic!("connected without a kubeconfig");
        };
        assert!(
            err.to_string()
                .starts_with("cannot use kubeconfig /nonexistent/kubeconfig: "),
            "{err}"
        );
    }
}
