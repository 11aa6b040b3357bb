//! The resource table from API discovery: `/api`, `/api/v1`, `/apis` and each group's
//! preferred version (CRDs included), refreshed every `--discovery-interval`.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList;

use crate::resources::{GroupResource, ResourceInfo, ResourceTable};

use super::ClusterError;

/// Groups augur serves itself: behind the aggregation layer they route back to augur, so
/// they are never discovered (they hold no objects either).
const OWN_GROUPS: &[&str] = &[
    "custom.metrics.k8s.io",
    "external.metrics.k8s.io",
    "metrics.k8s.io",
];

/// How many group versions are fetched at once.
const CONCURRENCY: usize = 8;

/// The resources of one group version's APIResourceList, subresources left out. The singular
/// name falls back to the lower-case kind, as the RESTMapper does when the server leaves
/// `singularName` empty.
pub fn resource_infos(group: &str, version: &str, list: &APIResourceList) -> Vec<ResourceInfo> {
    list.resources
        .iter()
        .filter(|r| !r.name.contains('/'))
        .map(|r| ResourceInfo {
            group_resource: GroupResource::new(group, &r.name),
            singular: if r.singular_name.is_empty() {
                r.kind.to_ascii_lowercase()
            } else {
                r.singular_name.clone()
            },
            version: version.to_owned(),
            kind: r.kind.clone(),
            namespaced: r.namespaced,
        })
        .collect()
}

async fn timed<T>(
    timeout: Duration,
    what: &str,
    call: impl Future<Output = kube::Result<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within {timeout:?}")),
    }
}

/// Runs discovery once. The core group and the group list must succeed; a group version that
/// fails is left out with a warning (as client-go's partial discovery does), so one broken
/// aggregated API does not stop augur.
pub async fn discover(
    client: &kube::Client,
    timeout: Duration,
) -> Result<ResourceTable, ClusterError> {
    let core_versions = timed(timeout, "GET /api", client.list_core_api_versions())
        .await
        .map_err(ClusterError::Discovery)?;
    let core_version = core_versions
        .versions
        .first()
        .cloned()
        .unwrap_or_else(|| "v1".to_owned());
    let core = timed(
        timeout,
        &format!("GET /api/{core_version}"),
        client.list_core_api_resources(&core_version),
    )
    .await
    .map_err(ClusterError::Discovery)?;
    let mut infos = resource_infos("", &core_version, &core);

    let groups = timed(timeout, "GET /apis", client.list_api_groups())
        .await
        .map_err(ClusterError::Discovery)?;
    let wanted: Vec<(String, String, String)> = groups
        .groups
        .iter()
        .filter(|g| !OWN_GROUPS.contains(&g.name.as_str()))
        .filter_map(|g| {
            let preferred = g
                .preferred_version
                .as_ref()
                .or_else(|| g.versions.first())?;
            Some((
                g.name.clone(),
                preferred.version.clone(),
                preferred.group_version.clone(),
            ))
        })
        .collect();
    let lists: Vec<_> = futures::stream::iter(wanted.into_iter().map(
        |(group, version, group_version)| async move {
            let what = format!("GET /apis/{group_version}");
            let list = timed(
                timeout,
                &what,
                client.list_api_group_resources(&group_version),
            )
            .await;
            (group, version, list)
        },
    ))
    .buffered(CONCURRENCY)
    .collect()
    .await;
    for (group, version, list) in lists {
        match list {
            Ok(list) => infos.extend(resource_infos(&group, &version, &list)),
            Err(e) => {
                tracing::warn!(group = %group, error = %e, "API discovery: group left out of the resource table")
            }
        }
    }
    Ok(ResourceTable::from_infos(infos))
}

/// Re-runs discovery every `interval` and publishes the new table; a failed round keeps the
/// previous table.
pub async fn refresh(
    client: kube::Client,
    table: Arc<ArcSwap<ResourceTable>>,
    interval: Duration,
    timeout: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        match discover(&client, timeout).await {
            Ok(next) => {
                let count = next.iter().count();
                table.store(Arc::new(next));
                tracing::debug!(resources = count, "API discovery refreshed");
            }
            Err(e) => {
                tracing::warn!(error = %e, "API discovery refresh failed; keeping the previous resource table")
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn resource_lists_become_table_rows() {
        let list: APIResourceList = serde_json::from_value(serde_json::json!({
            "groupVersion": "example.com/v1alpha1",
            "resources": [
                {"name": "widgets", "singularName": "widget", "namespaced": true, "kind": "Widget", "verbs": ["get", "list", "watch"]},
                {"name": "widgets/status", "singularName": "", "namespaced": true, "kind": "Widget", "verbs": ["get"]},
                {"name": "gadgets", "singularName": "", "namespaced": false, "kind": "Gadget", "verbs": ["list"]}
            ]
        }))
        .unwrap();
        let infos = resource_infos("example.com", "v1alpha1", &list);
        assert_eq!(infos.len(), 2);
        let table = ResourceTable::from_infos(infos);
        let widget = table.lookup("widget.example.com").unwrap();
        assert_eq!(widget.group_resource.to_string(), "widgets.example.com");
        assert_eq!(widget.api_version(), "example.com/v1alpha1");
        assert_eq!(widget.kind, "Widget");
        let gadget = table.lookup_group("example.com", "gadget").unwrap();
        assert!(!gadget.namespaced);
        assert_eq!(gadget.singular, "gadget");
    }
}
