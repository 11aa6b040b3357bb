//! Discovery documents: APIGroupList, APIGroup, APIResourceList and /version.

use axum::http::{HeaderMap, header};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    APIGroup, APIGroupList, APIResource, APIResourceList, GroupVersionForDiscovery,
};
use serde_json::{Value, json};

/// An API group served by augur, with its versions in priority order (first = preferred).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiGroup {
    /// Group name, e.g. `custom.metrics.k8s.io`.
    pub name: &'static str,
    /// Served versions, preferred first.
    pub versions: &'static [&'static str],
}

impl ApiGroup {
    /// The preferred version (the first one).
    pub fn preferred_version(&self) -> &'static str {
        self.versions.first().copied().unwrap_or_default()
    }

    /// Whether `version` is served.
    pub fn serves(&self, version: &str) -> bool {
        self.versions.contains(&version)
    }
}

/// `custom.metrics.k8s.io`, v1beta1 preferred over v1beta2.
///
/// k8s.io/metrics installs the group with `SetVersionPriority(v1beta1, v1beta2)`, so the
/// adapter library's own APIGroup prefers v1beta1, and we do the same. This document is
/// rarely what clients see: kube-aggregator answers `/apis` and `/apis/<group>` itself from
/// the APIService objects (whose `versionPriority` decides the preferred version the HPA
/// uses), so augur only has to serve both versions; listing v1beta2 here as well lets a
/// client talking to augur directly discover it.
pub const CUSTOM_METRICS: ApiGroup = ApiGroup {
    name: "custom.metrics.k8s.io",
    versions: &["v1beta1", "v1beta2"],
};

/// `external.metrics.k8s.io`, v1beta1 only.
pub const EXTERNAL_METRICS: ApiGroup = ApiGroup {
    name: "external.metrics.k8s.io",
    versions: &["v1beta1"],
};

/// `metrics.k8s.io` (resource metrics), v1beta1 only.
pub const RESOURCE_METRICS: ApiGroup = ApiGroup {
    name: "metrics.k8s.io",
    versions: &["v1beta1"],
};

fn group_version(group: &ApiGroup, version: &str) -> GroupVersionForDiscovery {
    GroupVersionForDiscovery {
        group_version: format!("{}/{version}", group.name),
        version: version.to_owned(),
    }
}

/// `/apis/<group>`: the APIGroup document.
pub fn api_group(group: &ApiGroup) -> APIGroup {
    APIGroup {
        name: group.name.to_owned(),
        versions: group
            .versions
            .iter()
            .map(|v| group_version(group, v))
            .collect(),
        preferred_version: Some(group_version(group, group.preferred_version())),
        server_address_by_client_cidrs: None,
    }
}

/// `/apis`: the APIGroupList of the enabled groups, in the order given.
pub fn api_group_list(groups: &[ApiGroup]) -> APIGroupList {
    APIGroupList {
        groups: groups.iter().map(api_group).collect(),
    }
}

/// One entry of an APIResourceList: a metric (`pods/http_requests`, the `GroupResource`
/// string, then the metric), an external metric name, or a metrics.k8s.io resource. The
/// singular name is empty, as in prometheus-adapter and metrics-server.
pub fn api_resource(name: String, namespaced: bool, kind: &str, verbs: &[&str]) -> APIResource {
    APIResource {
        name,
        namespaced,
        kind: kind.to_owned(),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..APIResource::default()
    }
}

/// `/apis/<group>/<version>`: the resources sorted by name (then scope) for stable output.
pub fn api_resource_list(
    group: &str,
    version: &str,
    mut resources: Vec<APIResource>,
) -> APIResourceList {
    resources.sort_by(|a, b| (&a.name, a.namespaced).cmp(&(&b.name, b.namespaced)));
    APIResourceList {
        group_version: format!("{group}/{version}"),
        resources,
    }
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// `/version`: a `version.Info` document describing augur.
pub fn version_info() -> Value {
    json!({
        "major": env!("CARGO_PKG_VERSION_MAJOR"),
        "minor": env!("CARGO_PKG_VERSION_MINOR"),
        "gitVersion": concat!("v", env!("CARGO_PKG_VERSION")),
        "gitCommit": option_env!("AUGUR_GIT_COMMIT").unwrap_or(""),
        "gitTreeState": "clean",
        "buildDate": option_env!("AUGUR_BUILD_DATE").unwrap_or(""),
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    })
}

/// Whether the client accepts only the aggregated discovery format
/// (`application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`, or v2beta1),
/// so a plain APIGroupList would not be acceptable and `/apis` should answer
/// 406 Not Acceptable. kube-aggregator sends exactly such a header every minute and falls
/// back to the per-version APIResourceList on 406; kubectl also lists `application/json`,
/// which gets the plain APIGroupList.
pub fn wants_aggregated_discovery(headers: &HeaderMap) -> bool {
    let mut aggregated = false;
    let mut plain = false;
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let mut group = None;
            let mut as_kind = None;
            let mut rejected = false;
            for param in parts {
                let Some((k, v)) = param.split_once('=') else {
                    continue;
                };
                let v = v.trim().trim_matches('"');
                match k.trim().to_ascii_lowercase().as_str() {
                    "g" => group = Some(v.to_owned()),
                    "as" => as_kind = Some(v.to_owned()),
                    "q" => rejected = v.parse::<f32>().is_ok_and(|q| q <= 0.0),
                    _ => {}
                }
            }
            if rejected {
                continue;
            }
            if group.as_deref() == Some("apidiscovery.k8s.io")
                && as_kind.as_deref() == Some("APIGroupDiscoveryList")
            {
                aggregated = true;
            } else if group.is_none()
                && as_kind.is_none()
                && matches!(media.as_str(), "application/json" | "application/*" | "*/*")
            {
                plain = true;
            }
        }
    }
    aggregated && !plain
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn group_list() {
        let value = api_group_list(&[CUSTOM_METRICS, EXTERNAL_METRICS]);
        assert_eq!(
            serde_json::to_string(&value).unwrap(),
            concat!(
                r#"{"apiVersion":"v1","kind":"APIGroupList","groups":["#,
                r#"{"apiVersion":"v1","kind":"APIGroup","name":"custom.metrics.k8s.io","#,
                r#""preferredVersion":{"groupVersion":"custom.metrics.k8s.io/v1beta1","version":"v1beta1"},"#,
                r#""versions":[{"groupVersion":"custom.metrics.k8s.io/v1beta1","version":"v1beta1"},"#,
                r#"{"groupVersion":"custom.metrics.k8s.io/v1beta2","version":"v1beta2"}]},"#,
                r#"{"apiVersion":"v1","kind":"APIGroup","name":"external.metrics.k8s.io","#,
                r#""preferredVersion":{"groupVersion":"external.metrics.k8s.io/v1beta1","version":"v1beta1"},"#,
                r#""versions":[{"groupVersion":"external.metrics.k8s.io/v1beta1","version":"v1beta1"}]}"#,
                r#"]}"#
            )
        );
    }

    #[test]
    fn group() {
        let value = serde_json::to_value(api_group(&EXTERNAL_METRICS)).unwrap();
        assert_eq!(
            value,
            json!({
                "kind": "APIGroup",
                "apiVersion": "v1",
                "name": "external.metrics.k8s.io",
                "versions": [{"groupVersion": "external.metrics.k8s.io/v1beta1", "version": "v1beta1"}],
                "preferredVersion": {"groupVersion": "external.metrics.k8s.io/v1beta1", "version": "v1beta1"},
            })
        );
        assert!(CUSTOM_METRICS.serves("v1beta2"));
        assert!(!CUSTOM_METRICS.serves("v1"));
    }

    #[test]
    fn resource_list_is_sorted_and_exact() {
        let resources = vec![
            api_resource(
                "pods/http_requests".into(),
                true,
                "MetricValueList",
                &["get"],
            ),
            api_resource(
                "namespaces/http_requests".into(),
                false,
                "MetricValueList",
                &["get"],
            ),
        ];
        let list = api_resource_list("custom.metrics.k8s.io", "v1beta1", resources);
        assert_eq!(list.resources.len(), 2);
        assert_eq!(
            serde_json::to_string(&list).unwrap(),
            concat!(
                r#"{"apiVersion":"v1","kind":"APIResourceList","groupVersion":"custom.metrics.k8s.io/v1beta1","resources":["#,
                r#"{"kind":"MetricValueList","name":"namespaces/http_requests","namespaced":false,"singularName":"","verbs":["get"]},"#,
                r#"{"kind":"MetricValueList","name":"pods/http_requests","namespaced":true,"singularName":"","verbs":["get"]}]}"#
            )
        );
    }

    #[test]
    fn empty_resource_list() {
        let list = api_resource_list("external.metrics.k8s.io", "v1beta1", Vec::new());
        assert!(list.resources.is_empty());
        assert_eq!(
            serde_json::to_string(&list).unwrap(),
            r#"{"apiVersion":"v1","kind":"APIResourceList","groupVersion":"external.metrics.k8s.io/v1beta1","resources":[]}"#
        );
    }

    #[test]
    fn version_document() {
        let value = version_info();
        assert_eq!(value["major"], "0");
        assert_eq!(value["minor"], "1");
        assert_eq!(value["gitVersion"], "v0.1.0");
        assert_eq!(value["compiler"], "rustc");
        assert_eq!(value["gitTreeState"], "clean");
        let platform = value["platform"].as_str().unwrap();
        assert!(platform.starts_with("linux/"), "{platform}");
    }

    fn accept(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn aggregated_discovery_negotiation() {
        // kube-aggregator: only aggregated types -> 406.
        assert!(wants_aggregated_discovery(&accept(&[
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
        ])));
        // kubectl: aggregated first, plain JSON fallback -> serve APIGroupList.
        assert!(!wants_aggregated_discovery(&accept(&[
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;q=0.9"
        ])));
        assert!(!wants_aggregated_discovery(&accept(&[
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
            "*/*"
        ])));
        // A fallback with q=0 is no fallback.
        assert!(wants_aggregated_discovery(&accept(&[
            "application/json; g=apidiscovery.k8s.io; v=v2; as=APIGroupDiscoveryList, application/json;q=0"
        ])));
        assert!(!wants_aggregated_discovery(&accept(&["application/json"])));
        assert!(!wants_aggregated_discovery(&HeaderMap::new()));
    }
}
