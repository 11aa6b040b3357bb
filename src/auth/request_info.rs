//! What a request asks for, in authorization terms: k8s.io/apiserver's RequestInfoFactory
//! (resource vs non-resource requests, verb, group, version, namespace, resource,
//! subresource, name) and the Forbidden message kube-apiserver writes for a denial.

use http::{Method, Uri};
use percent_encoding::percent_decode_str;

use super::user::UserInfo;

/// The resource part of a resource request under `/apis/<group>/<version>/...`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group (`custom.metrics.k8s.io`).
    pub group: String,
    /// API version (`v1beta2`).
    pub version: String,
    /// Namespace, empty for cluster-scoped requests.
    pub namespace: String,
    /// Resource (`pods`; for external metrics the metric name).
    pub resource: String,
    /// Subresource (for custom metrics the metric name).
    pub subresource: String,
    /// Object name (`*` for every object).
    pub name: String,
}

/// A parsed request: verb, path and, for resource requests, the resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// `get`, `list`, `watch`, ... for resource requests; the lowercase HTTP method otherwise.
    pub verb: String,
    /// The decoded request path.
    pub path: String,
    /// `None` for non-resource requests (`/apis`, `/apis/<group>/<version>`, `/version`, ...).
    pub resource: Option<ResourceInfo>,
}

const API_PREFIXES: [&str; 2] = ["api", "apis"];
const GROUPLESS_PREFIX: &str = "api";
/// Namespace subresources that keep `namespaces` as the resource.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

impl RequestInfo {
    /// Parse `method` and `uri` as k8s.io/apiserver's RequestInfoFactory does.
    pub fn parse(method: &Method, uri: &Uri) -> Self {
        let path = percent_decode_str(uri.path())
            .decode_utf8_lossy()
            .into_owned();
        let non_resource = |path: String| Self {
            verb: method.as_str().to_ascii_lowercase(),
            path,
            resource: None,
        };
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let Some((prefix, mut current)) = parts.split_first() else {
            return non_resource(path);
        };
        if !API_PREFIXES.contains(prefix) {
            return non_resource(path);
        }
        let mut info = ResourceInfo::default();
        if *prefix != GROUPLESS_PREFIX {
            // /apis, /apis/<group>, /apis/<group>/<version> are discovery: non-resource.
            if current.len() < 3 {
                return non_resource(path);
            }
            info.group = current[0].to_owned();
            current = &current[1..];
        } else if current.len() < 2 {
            return non_resource(path);
        }
        info.version = current[0].to_owned();
        current = &current[1..];

        let mut verb = match *method {
            Method::GET | Method::HEAD => "get",
            Method::POST => "create",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE => "delete",
            _ => "",
        }
        .to_owned();
        if current.first() == Some(&"watch") {
            verb = "watch".to_owned();
            current = &current[1..];
        }
        if current.first() == Some(&"namespaces") && current.len() > 1 {
            info.namespace = current[1].to_owned();
            if current.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&current[2]) {
                current = &current[2..];
            }
        }
        if let Some(resource) = current.first() {
            info.resource = (*resource).to_owned();
        }
        if let Some(name) = current.get(1) {
            info.name = (*name).to_owned();
        }
        if let Some(subresource) = current.get(2) {
            info.subresource = (*subresource).to_owned();
        }
        let watch_param = uri.query().is_some_and(|query| {
            form_urlencoded::parse(query.as_bytes())
                .any(|(key, value)| key == "watch" && (value == "true" || value == "1"))
        });
        if watch_param && (verb == "get" || verb == "list") {
            verb = "watch".to_owned();
        }
        if info.name.is_empty() && verb == "get" {
            verb = "list".to_owned();
        }
        if info.name.is_empty() && verb == "delete" {
            verb = "deletecollection".to_owned();
        }
        Self {
            verb,
            path,
            resource: Some(info),
        }
    }

    /// The body of kube-apiserver's Forbidden Status message for `user` (responsewriters.Forbidden
    /// wrapped in apierrors.NewForbidden), with the authorizer's `reason` appended when given.
    pub fn forbidden_message(&self, user: &UserInfo, reason: &str) -> String {
        let mut detail = match &self.resource {
            None => format!(
                "User {:?} cannot {} path {:?}",
                user.name, self.verb, self.path
            ),
            Some(info) => {
                let mut resource = info.resource.clone();
                if !info.subresource.is_empty() {
                    resource = format!("{resource}/{}", info.subresource);
                }
                if info.namespace.is_empty() {
                    format!(
                        "User {:?} cannot {} resource {:?} in API group {:?} at the cluster scope",
                        user.name, self.verb, resource, info.group
                    )
                } else {
                    format!(
                        "User {:?} cannot {} resource {:?} in API group {:?} in the namespace {:?}",
                        user.name, self.verb, resource, info.group, info.namespace
                    )
                }
            }
        };
        if !reason.is_empty() {
            detail = format!("{detail}: {reason}");
        }
        match &self.resource {
            Some(info) if !info.resource.is_empty() => {
                let qualified = if info.group.is_empty() {
                    info.resource.clone()
                } else {
                    format!("{}.{}", info.resource, info.group)
                };
                if info.name.is_empty() {
                    format!("{qualified} is forbidden: {detail}")
                } else {
                    format!("{qualified} {:?} is forbidden: {detail}", info.name)
                }
            }
            _ => format!("forbidden: {detail}"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn get(path: &str) -> RequestInfo {
        RequestInfo::parse(&Method::GET, &path.parse::<Uri>().unwrap())
    }

    /// `[group, version, namespace, resource, subresource, name]`.
    fn resource(verb: &str, path: &str, parts: [&str; 6]) -> RequestInfo {
        let [group, version, namespace, resource, subresource, name] = parts;
        RequestInfo {
            verb: verb.to_owned(),
            path: path.to_owned(),
            resource: Some(ResourceInfo {
                group: group.to_owned(),
                version: version.to_owned(),
                namespace: namespace.to_owned(),
                resource: resource.to_owned(),
                subresource: subresource.to_owned(),
                name: name.to_owned(),
            }),
        }
    }

    #[test]
    fn discovery_and_other_paths_are_non_resource() {
        for path in [
            "/apis",
            "/apis/custom.metrics.k8s.io",
            "/apis/custom.metrics.k8s.io/v1beta2",
            "/apis/custom.metrics.k8s.io/v1beta2/",
            "/openapi/v2",
            "/openapi/v3/apis/custom.metrics.k8s.io/v1beta2",
            "/version",
            "/healthz",
            "/",
            "/api",
            "/api/v1",
        ] {
            assert_eq!(
                get(path),
                RequestInfo {
                    verb: "get".to_owned(),
                    path: path.to_owned(),
                    resource: None
                },
                "{path}"
            );
        }
        let post = RequestInfo::parse(&Method::POST, &"/version".parse::<Uri>().unwrap());
        assert_eq!(post.verb, "post");
    }

    #[test]
    fn custom_metric_paths() {
        let p = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/*/m";
        assert_eq!(
            get(&format!("{p}?labelSelector=app%3Dweb")),
            resource(
                "get",
                p,
                ["custom.metrics.k8s.io", "v1beta2", "ns", "pods", "m", "*"]
            )
        );
        let p = "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ns/deployments.apps/web/m";
        assert_eq!(
            get(p),
            resource(
                "get",
                p,
                [
                    "custom.metrics.k8s.io",
                    "v1beta1",
                    "ns",
                    "deployments.apps",
                    "m",
                    "web"
                ]
            )
        );
        let p = "/apis/custom.metrics.k8s.io/v1beta2/nodes/*/m";
        assert_eq!(
            get(p),
            resource(
                "get",
                p,
                ["custom.metrics.k8s.io", "v1beta2", "", "nodes", "m", "*"]
            )
        );
        // The namespace object's metric: resource "metrics", name = the metric.
        let p = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/metrics/m";
        assert_eq!(
            get(p),
            resource(
                "get",
                p,
                ["custom.metrics.k8s.io", "v1beta2", "ns", "metrics", "", "m"]
            )
        );
        // Percent-encoded `*` is decoded as Go's URL.Path is.
        assert_eq!(
            get("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/%2A/m"),
            resource(
                "get",
                "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/*/m",
                ["custom.metrics.k8s.io", "v1beta2", "ns", "pods", "m", "*"]
            )
        );
    }

    #[test]
    fn collections_are_lists() {
        let p = "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/queue_depth";
        assert_eq!(
            get(p),
            resource(
                "list",
                p,
                [
                    "external.metrics.k8s.io",
                    "v1beta1",
                    "ns",
                    "queue_depth",
                    "",
                    ""
                ]
            )
        );
        let p = "/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods";
        assert_eq!(
            get(p),
            resource(
                "list",
                p,
                ["metrics.k8s.io", "v1beta1", "ns", "pods", "", ""]
            )
        );
        let p = "/apis/metrics.k8s.io/v1beta1/nodes/n1";
        assert_eq!(
            get(p),
            resource(
                "get",
                p,
                ["metrics.k8s.io", "v1beta1", "", "nodes", "", "n1"]
            )
        );
        let watch = get("/apis/metrics.k8s.io/v1beta1/pods?watch=true");
        assert_eq!(watch.verb, "watch");
        let core = get("/api/v1/namespaces/ns/pods/p");
        assert_eq!(
            core.resource
                .map(|r| (r.group, r.version, r.resource, r.name)),
            Some((
                String::new(),
                "v1".to_owned(),
                "pods".to_owned(),
                "p".to_owned()
            ))
        );
    }

    #[test]
    fn forbidden_messages_match_kube_apiserver() {
        let anonymous = UserInfo::anonymous();
        assert_eq!(
            get("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/*/m")
                .forbidden_message(&anonymous, ""),
            r#"pods.custom.metrics.k8s.io "*" is forbidden: User "system:anonymous" cannot get resource "pods/m" in API group "custom.metrics.k8s.io" in the namespace "ns""#
        );
        assert_eq!(
            get("/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/q")
                .forbidden_message(&anonymous, "no RBAC policy matched"),
            r#"q.external.metrics.k8s.io is forbidden: User "system:anonymous" cannot list resource "q" in API group "external.metrics.k8s.io" in the namespace "ns": no RBAC policy matched"#
        );
        assert_eq!(
            get("/apis/custom.metrics.k8s.io/v1beta2/nodes/*/m").forbidden_message(&anonymous, ""),
            r#"nodes.custom.metrics.k8s.io "*" is forbidden: User "system:anonymous" cannot get resource "nodes/m" in API group "custom.metrics.k8s.io" at the cluster scope"#
        );
        assert_eq!(
            get("/apis").forbidden_message(&anonymous, ""),
            r#"forbidden: User "system:anonymous" cannot get path "/apis""#
        );
    }
}
