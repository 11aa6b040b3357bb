//! Delegated authentication and authorization for requests that reach augur through
//! kube-apiserver's aggregation layer.

use clap::Args;

/// Flags for delegated authentication and authorization (k8s.io/apiserver's names).
#[derive(Debug, Clone, Default, Args)]
pub struct AuthArgs {}
