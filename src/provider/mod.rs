//! Answering metric requests: build the rule's PromQL for a request, run it, map samples to
//! API items. Errors say why, in domain terms; the HTTP layer maps them to status codes.

pub mod custom;
pub mod external;
pub mod objects;
pub mod query;
pub mod resource;
#[cfg(test)]
mod tests;

use crate::prometheus::Error as BackendError;
use crate::resources::ResourceInfo;
use crate::series::Snapshot;

pub use custom::{CustomItem, CustomRequest, ObjectName};
pub use external::{ExternalItem, ExternalRequest};

/// Why a metric request could not be answered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The resource in the path is not one augur knows.
    #[error("resource {resource:?} is not known to augur{hint}")]
    UnknownResource {
        /// As written in the path.
        resource: String,
        /// What to do about it.
        hint: String,
    },
    /// No rule discovered this metric for this resource (or at all).
    #[error("{0}")]
    MetricNotFound(String),
    /// The named object has no series for the metric.
    #[error("{0}")]
    ObjectNotFound(String),
    /// A selector that cannot be turned into PromQL (`gt`/`lt`).
    #[error("{0}")]
    UnsupportedSelector(String),
    /// A request that needs cluster mode (object label selectors).
    #[error("{0}")]
    NeedsCluster(String),
    /// The rule could not produce a query for this request.
    #[error("{0}")]
    QueryBuild(String),
    /// The backend failed.
    #[error("unable to fetch metrics from prometheus: {error} (query: {query})")]
    Backend {
        /// The backend error.
        error: BackendError,
        /// The PromQL that was sent.
        query: String,
    },
    /// The query returned a result type that cannot be served.
    #[error("{0}")]
    BadResult(String),
    /// The objects a request selects could not be read from the cluster cache.
    #[error(transparent)]
    Objects(#[from] objects::ObjectsError),
}

/// The namespaces resource, which every namespaced query needs for its namespace label.
fn namespaces(snapshot: &Snapshot) -> Result<ResourceInfo, ProviderError> {
    snapshot.table.lookup("namespaces").cloned().ok_or_else(|| {
        ProviderError::QueryBuild("the resource table has no namespaces resource".into())
    })
}
