//! Cluster mode: the Kubernetes API client, resource discovery and watch-backed object
//! caches that augur uses when it runs behind kube-apiserver's aggregation layer.

use std::path::PathBuf;

use clap::Args;

/// Flags that connect augur to a Kubernetes cluster (prometheus-adapter's names).
#[derive(Debug, Clone, Default, Args)]
pub struct ClusterArgs {
    /// kubeconfig for listing and watching objects and API discovery; in-cluster config
    /// when running in a pod and this is not set.
    #[arg(long)]
    pub lister_kubeconfig: Option<PathBuf>,
}
