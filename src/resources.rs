//! Kubernetes group-resources: the built-in table of core resources and name normalisation.
//!
//! Standalone mode has no API discovery, so label→resource mapping and `describedObject`
//! kinds come from this table of the resources rules commonly name. Cluster mode replaces it
//! with a table built from discovery (same type, more rows).

use std::collections::HashMap;
use std::fmt;

/// A group-qualified resource, plural and lower case (`pods`, `deployments.apps`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    /// API group, empty for the core group.
    pub group: String,
    /// Plural resource name.
    pub resource: String,
}

impl GroupResource {
    /// Builds a group-resource from its parts.
    pub fn new(group: &str, resource: &str) -> Self {
        Self {
            group: group.to_owned(),
            resource: resource.to_owned(),
        }
    }
}

impl fmt::Display for GroupResource {
    /// `resource` for the core group, `resource.group` otherwise (Go's `GroupResource.String`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

/// Everything augur needs to know about one resource type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    /// Group and plural name.
    pub group_resource: GroupResource,
    /// Singular name (`pod`).
    pub singular: String,
    /// Preferred version of the group (`v1`).
    pub version: String,
    /// Kind (`Pod`).
    pub kind: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
}

impl ResourceInfo {
    /// `describedObject.apiVersion` as prometheus-adapter writes it: `"/v1"` for the core group.
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group_resource.group, self.version)
    }
}

/// Resolves resource names (singular, plural, group-qualified) to [`ResourceInfo`].
#[derive(Debug, Clone)]
pub struct ResourceTable {
    infos: Vec<ResourceInfo>,
    /// `name` and `name.group` (singular and plural) → index into `infos`.
    by_name: HashMap<String, usize>,
}

/// (group, version, plural, singular, kind, namespaced) of the built-in table.
const BUILTIN: &[(&str, &str, &str, &str, &str, bool)] = &[
    ("", "v1", "pods", "pod", "Pod", true),
    ("", "v1", "namespaces", "namespace", "Namespace", false),
    ("", "v1", "nodes", "node", "Node", false),
    ("", "v1", "services", "service", "Service", true),
    ("", "v1", "endpoints", "endpoints", "Endpoints", true),
    (
        "",
        "v1",
        "persistentvolumes",
        "persistentvolume",
        "PersistentVolume",
        false,
    ),
    (
        "",
        "v1",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        true,
    ),
    (
        "",
        "v1",
        "replicationcontrollers",
        "replicationcontroller",
        "ReplicationController",
        true,
    ),
    ("", "v1", "configmaps", "configmap", "ConfigMap", true),
    ("", "v1", "secrets", "secret", "Secret", true),
    (
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
    ),
    (
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        true,
    ),
    (
        "apps",
        "v1",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
    ),
    ("apps", "v1", "daemonsets", "daemonset", "DaemonSet", true),
    (
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
    ),
    ("batch", "v1", "jobs", "job", "Job", true),
    ("batch", "v1", "cronjobs", "cronjob", "CronJob", true),
    (
        "networking.k8s.io",
        "v1",
        "ingresses",
        "ingress",
        "Ingress",
        true,
    ),
    (
        "extensions",
        "v1beta1",
        "ingresses",
        "ingress",
        "Ingress",
        true,
    ),
    (
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        true,
    ),
    (
        "policy",
        "v1",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        true,
    ),
];

impl ResourceTable {
    /// The built-in table of core Kubernetes resources used in standalone mode.
    pub fn builtin() -> Self {
        Self::from_infos(
            BUILTIN
                .iter()
                .map(
                    |&(group, version, plural, singular, kind, namespaced)| ResourceInfo {
                        group_resource: GroupResource::new(group, plural),
                        singular: singular.to_owned(),
                        version: version.to_owned(),
                        kind: kind.to_owned(),
                        namespaced,
                    },
                )
                .collect(),
        )
    }

    /// Builds a table from resource descriptions; on name clashes the first one wins for the
    /// unqualified name (as a RESTMapper prefers the first group), every one keeps its
    /// group-qualified names.
    pub fn from_infos(infos: Vec<ResourceInfo>) -> Self {
        let mut by_name = HashMap::new();
        for (i, info) in infos.iter().enumerate() {
            let gr = &info.group_resource;
            for name in [&gr.resource, &info.singular] {
                by_name.entry(name.clone()).or_insert(i);
                if !gr.group.is_empty() {
                    by_name.entry(format!("{name}.{}", gr.group)).or_insert(i);
                }
            }
        }
        Self { infos, by_name }
    }

    /// Resolves `pods`, `pod`, `deployments.apps`, `deployment.apps`; case-insensitive.
    pub fn lookup(&self, name: &str) -> Option<&ResourceInfo> {
        let lower = name.to_ascii_lowercase();
        self.by_name.get(&lower).map(|&i| &self.infos[i])
    }

    /// Resolves a (group, resource) pair as written in a rule override, where the resource may
    /// be singular or plural and the group may be empty (core).
    pub fn lookup_group(&self, group: &str, resource: &str) -> Option<&ResourceInfo> {
        let resource = resource.to_ascii_lowercase();
        self.infos.iter().find(|info| {
            info.group_resource.group == group
                && (info.group_resource.resource == resource || info.singular == resource)
        })
    }

    /// Information for an exact group-resource.
    pub fn get(&self, gr: &GroupResource) -> Option<&ResourceInfo> {
        self.infos.iter().find(|info| &info.group_resource == gr)
    }

    /// Every resource in the table.
    pub fn iter(&self) -> impl Iterator<Item = &ResourceInfo> {
        self.infos.iter()
    }
}

/// Resources that are never namespaced-object targets of a namespaced request: a series'
/// entry for these is registered as root-scoped (prometheus-adapter's `namespaced` rule).
pub fn is_root_scoped_special(gr: &GroupResource) -> bool {
    gr.group.is_empty()
        && matches!(
            gr.resource.as_str(),
            "namespaces" | "nodes" | "persistentvolumes"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_accepts_singular_plural_and_group_qualified_names() {
        let table = ResourceTable::builtin();
        let pod = table.lookup("pod").map(|i| i.group_resource.clone());
        assert_eq!(pod, Some(GroupResource::new("", "pods")));
        assert_eq!(table.lookup("Pods").map(|i| i.kind.as_str()), Some("Pod"));
        let dep = table
            .lookup("deployments.apps")
            .map(|i| i.group_resource.to_string());
        assert_eq!(dep.as_deref(), Some("deployments.apps"));
        assert_eq!(
            table
                .lookup("deployment")
                .map(|i| i.api_version())
                .as_deref(),
            Some("apps/v1")
        );
        assert_eq!(
            table.lookup("pod").map(|i| i.api_version()).as_deref(),
            Some("/v1")
        );
        assert!(table.lookup("widgets").is_none());
        // Unqualified "ingresses" resolves to the first group listed (networking.k8s.io).
        let ing = table
            .lookup("ingress")
            .map(|i| i.group_resource.to_string());
        assert_eq!(ing.as_deref(), Some("ingresses.networking.k8s.io"));
        let ext = table
            .lookup("ingresses.extensions")
            .map(|i| i.api_version());
        assert_eq!(ext.as_deref(), Some("extensions/v1beta1"));
    }

    #[test]
    fn lookup_group_normalises_override_resources() {
        let table = ResourceTable::builtin();
        let ns = table
            .lookup_group("", "namespace")
            .map(|i| i.group_resource.to_string());
        assert_eq!(ns.as_deref(), Some("namespaces"));
        assert!(table.lookup_group("apps", "pod").is_none());
    }
}
