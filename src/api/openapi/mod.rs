//! OpenAPI v2 and v3 documents for the metrics API groups: paths from augur's routes,
//! definitions generated from types (see `definitions`).
//!
//! Built once at start from the enabled group-versions ([`OpenApiDocs::build`]) and served
//! as bytes. kube-aggregator downloads `/openapi/v2` and `/openapi/v3` and merges them into
//! the cluster's documents (the apimachinery definitions are k8s-openapi's, so they match
//! the cluster's own); `kubectl explain` and client-side validation read the result.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::{Map, Value, json};

use self::definitions::definitions;
use super::discovery::ApiGroup;

mod definitions;

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.";

/// Where schema references point: `#/definitions/` (v2) or `#/components/schemas/` (v3).
#[derive(Clone, Copy)]
struct Refs(&'static str);

impl Refs {
    fn to(self, name: &str) -> Value {
        json!({"$ref": format!("{}{}", self.0, name)})
    }
}

fn meta(name: &str) -> String {
    format!("{META}{name}")
}

/// Definition name prefix of a group-version's types.
fn type_prefix(group: &str, version: &str) -> Option<String> {
    let package = match group {
        "custom.metrics.k8s.io" => "custom_metrics",
        "external.metrics.k8s.io" => "external_metrics",
        "metrics.k8s.io" => "metrics",
        _ => return None,
    };
    Some(format!("io.k8s.metrics.pkg.apis.{package}.{version}."))
}

/// One GET route of a group-version.
struct Operation {
    path: String,
    id: String,
    description: &'static str,
    path_params: &'static [&'static str],
    query_params: &'static [(&'static str, &'static str)],
    response: String,
    kind: &'static str,
}

const SELECTORS: &[(&str, &str)] = &[
    (
        "labelSelector",
        "selects the described objects (or, for external metrics, the series) by label",
    ),
    ("pretty", "pretty-print the output"),
];
const CUSTOM_SELECTORS: &[(&str, &str)] = &[
    (
        "labelSelector",
        "selects the described objects by label when name is *",
    ),
    ("metricLabelSelector", "selects the metric series by label"),
    ("fieldSelector", "only metadata.name=<name> is supported"),
    ("pretty", "pretty-print the output"),
];

fn camel(s: &str) -> String {
    s.split(['.', '-', '_'])
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

fn operations(group: &str, version: &str) -> Vec<Operation> {
    let Some(p) = type_prefix(group, version) else {
        return Vec::new();
    };
    let base = format!("/apis/{group}/{version}");
    let gv = format!("{}{}", camel(group), camel(version));
    let mut ops = vec![Operation {
        path: format!("{base}/"),
        id: format!("get{gv}APIResources"),
        description: "get available resources",
        path_params: &[],
        query_params: &[],
        response: meta("APIResourceList"),
        kind: "APIResourceList",
    }];
    let op = |suffix: &str, id: &str, description, path_params, query_params, item: &str, kind| {
        Operation {
            path: format!("{base}{suffix}"),
            id: format!("{id}{gv}"),
            description,
            path_params,
            query_params,
            response: format!("{p}{item}"),
            kind,
        }
    };
    match group {
        "custom.metrics.k8s.io" => ops.extend([
            op(
                "/namespaces/{namespace}/{resource}/{name}/{metric}",
                "readNamespacedMetricValue",
                "the metric for a namespaced object, or for every object matching labelSelector when name is *",
                &["namespace", "resource", "name", "metric"],
                CUSTOM_SELECTORS,
                "MetricValueList",
                "MetricValueList",
            ),
            op(
                "/namespaces/{namespace}/metrics/{metric}",
                "readNamespaceMetricValue",
                "the metric describing the namespace itself",
                &["namespace", "metric"],
                CUSTOM_SELECTORS,
                "MetricValueList",
                "MetricValueList",
            ),
            op(
                "/{resource}/{name}/{metric}",
                "readRootScopedMetricValue",
                "the metric for a cluster-scoped object (nodes, persistentvolumes, ...)",
                &["resource", "name", "metric"],
                CUSTOM_SELECTORS,
                "MetricValueList",
                "MetricValueList",
            ),
        ]),
        "external.metrics.k8s.io" => ops.push(op(
            "/namespaces/{namespace}/{metric}",
            "listNamespacedExternalMetricValue",
            "the values of an external metric, one item per series",
            &["namespace", "metric"],
            SELECTORS,
            "ExternalMetricValueList",
            "ExternalMetricValueList",
        )),
        _ => ops.extend([
            op("/nodes", "listNodeMetrics", "resource usage of every node", &[], SELECTORS, "NodeMetricsList", "NodeMetricsList"),
            op("/nodes/{name}", "readNodeMetrics", "resource usage of one node", &["name"], &[("pretty", "pretty-print the output")], "NodeMetrics", "NodeMetrics"),
            op("/pods", "listPodMetricsForAllNamespaces", "resource usage of every pod", &[], SELECTORS, "PodMetricsList", "PodMetricsList"),
            op("/namespaces/{namespace}/pods", "listNamespacedPodMetrics", "resource usage of the pods of a namespace", &["namespace"], SELECTORS, "PodMetricsList", "PodMetricsList"),
            op("/namespaces/{namespace}/pods/{name}", "readNamespacedPodMetrics", "resource usage of one pod", &["namespace", "name"], &[("pretty", "pretty-print the output")], "PodMetrics", "PodMetrics"),
        ]),
    }
    ops
}

fn operation_json(op: &Operation, group: &str, version: &str, v3: bool) -> Value {
    let r = if v3 {
        Refs("#/components/schemas/")
    } else {
        Refs("#/definitions/")
    };
    let param = |name: &str, location: &str, required: bool, description: &str| {
        if v3 {
            json!({"name": name, "in": location, "required": required, "description": description, "schema": {"type": "string", "uniqueItems": true}})
        } else {
            json!({"name": name, "in": location, "required": required, "description": description, "type": "string", "uniqueItems": true})
        }
    };
    let mut parameters: Vec<Value> = op
        .path_params
        .iter()
        .map(|name| param(name, "path", true, name))
        .collect();
    parameters.extend(
        op.query_params
            .iter()
            .map(|(name, description)| param(name, "query", false, description)),
    );
    let ok = if v3 {
        json!({"description": "OK", "content": {"application/json": {"schema": r.to(&op.response)}}})
    } else {
        json!({"description": "OK", "schema": r.to(&op.response)})
    };
    let status = if v3 {
        json!({"description": "Not Found", "content": {"application/json": {"schema": r.to(&meta("Status"))}}})
    } else {
        json!({"description": "Not Found", "schema": r.to(&meta("Status"))})
    };
    let (gvk_group, gvk_version) = if op.kind == "APIResourceList" {
        ("", "v1")
    } else {
        (group, version)
    };
    let mut get = json!({
        "description": op.description,
        "operationId": op.id,
        "tags": [format!("{}_{}", group.split('.').next().unwrap_or(group), version)],
        "parameters": parameters,
        "responses": {"200": ok, "401": {"description": "Unauthorized"}, "404": status},
        "x-kubernetes-action": if op.kind.ends_with("List") { "list" } else { "get" },
        "x-kubernetes-group-version-kind": {"group": gvk_group, "version": gvk_version, "kind": op.kind},
    });
    if !v3 && let Value::Object(get) = &mut get {
        get.insert("produces".into(), json!(["application/json"]));
        get.insert("schemes".into(), json!(["https"]));
    }
    json!({"get": get})
}

fn enabled(groups: &[ApiGroup]) -> Vec<(&'static str, &'static str)> {
    groups
        .iter()
        .flat_map(|g| g.versions.iter().map(move |v| (g.name, *v)))
        .filter(|(g, v)| type_prefix(g, v).is_some())
        .collect()
}

/// `/openapi/v2`: a Swagger 2.0 document of every enabled group-version.
pub fn openapi_v2(groups: &[ApiGroup]) -> Value {
    let gvs = enabled(groups);
    let mut paths = Map::new();
    for (group, version) in &gvs {
        for op in operations(group, version) {
            paths.insert(op.path.clone(), operation_json(&op, group, version, false));
        }
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "augur", "version": concat!("v", env!("CARGO_PKG_VERSION"))},
        "paths": paths,
        "definitions": definitions("/definitions", &gvs),
    })
}

/// `/openapi/v3/apis/<group>/<version>`: an OpenAPI 3.0 document, or None when the
/// group-version is unknown.
pub fn openapi_v3(group: &str, version: &str) -> Option<Value> {
    type_prefix(group, version)?;
    if !matches!(
        (group, version),
        ("custom.metrics.k8s.io", "v1beta1" | "v1beta2")
            | ("external.metrics.k8s.io" | "metrics.k8s.io", "v1beta1")
    ) {
        return None;
    }
    let mut paths = Map::new();
    for op in operations(group, version) {
        paths.insert(op.path.clone(), operation_json(&op, group, version, true));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "augur", "version": concat!("v", env!("CARGO_PKG_VERSION"))},
        "paths": paths,
        "components": {"schemas": definitions("/components/schemas", &[(group, version)])},
    }))
}

/// FNV-1a 64 of the document, as the `hash` query parameter clients use for caching.
fn hash(bytes: &[u8]) -> String {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{h:016X}")
}

/// All OpenAPI documents, serialized once.
#[derive(Debug, Clone)]
pub struct OpenApiDocs {
    v2: Bytes,
    v3_index: Bytes,
    v3: BTreeMap<String, Bytes>,
}

impl OpenApiDocs {
    /// Build every document for the enabled groups.
    pub fn build(groups: &[ApiGroup]) -> Self {
        let v2 = Bytes::from(openapi_v2(groups).to_string());
        let mut v3 = BTreeMap::new();
        let mut index = Map::new();
        for (group, version) in enabled(groups) {
            let Some(doc) = openapi_v3(group, version) else {
                continue;
            };
            let doc = doc.to_string();
            let key = format!("apis/{group}/{version}");
            index.insert(
                key.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={}", hash(doc.as_bytes()))}),
            );
            v3.insert(key, Bytes::from(doc));
        }
        let v3_index = Bytes::from(json!({"paths": index}).to_string());
        Self { v2, v3_index, v3 }
    }

    /// The Swagger 2.0 document.
    pub fn v2(&self) -> Bytes {
        self.v2.clone()
    }

    /// The `/openapi/v3` index.
    pub fn v3_index(&self) -> Bytes {
        self.v3_index.clone()
    }

    /// The OpenAPI 3 document of a group-version (`/openapi/v3/apis/<group>/<version>`).
    pub fn v3(&self, group: &str, version: &str) -> Option<Bytes> {
        self.v3.get(&format!("apis/{group}/{version}")).cloned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::api::discovery::{CUSTOM_METRICS, EXTERNAL_METRICS, RESOURCE_METRICS};

    /// Every `$ref` in `value` resolves to a key of `defs`.
    fn assert_refs_resolve(value: &Value, prefix: &str, defs: &Map<String, Value>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    let name = target
                        .strip_prefix(prefix)
                        .unwrap_or_else(|| panic!("bad ref {target}"));
                    assert!(defs.contains_key(name), "dangling ref {target}");
                }
                map.values()
                    .for_each(|v| assert_refs_resolve(v, prefix, defs));
            }
            Value::Array(items) => items
                .iter()
                .for_each(|v| assert_refs_resolve(v, prefix, defs)),
            _ => {}
        }
    }

    #[test]
    fn v2_has_paths_and_definitions() {
        let docs = OpenApiDocs::build(&[CUSTOM_METRICS, EXTERNAL_METRICS]);
        let doc: Value = serde_json::from_slice(&docs.v2()).unwrap();
        assert_eq!(doc["swagger"], "2.0");
        let paths = doc["paths"].as_object().unwrap();
        for path in [
            "/apis/custom.metrics.k8s.io/v1beta1/",
            "/apis/custom.metrics.k8s.io/v1beta1/namespaces/{namespace}/{resource}/{name}/{metric}",
            "/apis/custom.metrics.k8s.io/v1beta1/{resource}/{name}/{metric}",
            "/apis/custom.metrics.k8s.io/v1beta1/namespaces/{namespace}/metrics/{metric}",
            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/{namespace}/{resource}/{name}/{metric}",
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}",
        ] {
            assert!(paths.contains_key(path), "missing {path}");
        }
        assert!(!paths.keys().any(|p| p.starts_with("/apis/metrics.k8s.io")));
        assert_eq!(paths.len(), 4 + 4 + 2);
        let op = &paths["/apis/custom.metrics.k8s.io/v1beta2/namespaces/{namespace}/{resource}/{name}/{metric}"]
            ["get"];
        assert_eq!(
            op["operationId"],
            "readNamespacedMetricValueCustomMetricsK8sIoV1beta2"
        );
        assert_eq!(
            op["responses"]["200"]["schema"]["$ref"],
            "#/definitions/io.k8s.metrics.pkg.apis.custom_metrics.v1beta2.MetricValueList"
        );
        assert_eq!(
            op["x-kubernetes-group-version-kind"],
            json!({"group": "custom.metrics.k8s.io", "version": "v1beta2", "kind": "MetricValueList"})
        );
        let params: Vec<&str> = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            params,
            [
                "namespace",
                "resource",
                "name",
                "metric",
                "labelSelector",
                "metricLabelSelector",
                "fieldSelector",
                "pretty"
            ]
        );

        let defs = doc["definitions"].as_object().unwrap();
        for name in [
            "io.k8s.metrics.pkg.apis.custom_metrics.v1beta1.MetricValueList",
            "io.k8s.metrics.pkg.apis.custom_metrics.v1beta1.MetricValue",
            "io.k8s.metrics.pkg.apis.custom_metrics.v1beta2.MetricValueList",
            "io.k8s.metrics.pkg.apis.custom_metrics.v1beta2.MetricValue",
            "io.k8s.metrics.pkg.apis.external_metrics.v1beta1.ExternalMetricValueList",
            "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
            "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList",
        ] {
            assert!(defs.contains_key(name), "missing definition {name}");
        }
        assert_eq!(
            defs["io.k8s.metrics.pkg.apis.external_metrics.v1beta1.ExternalMetricValueList"]["x-kubernetes-group-version-kind"],
            json!([{"group": "external.metrics.k8s.io", "version": "v1beta1", "kind": "ExternalMetricValueList"}])
        );
        assert_eq!(
            defs["io.k8s.apimachinery.pkg.apis.meta.v1.Status"]["x-kubernetes-group-version-kind"],
            json!([{"group": "", "version": "v1", "kind": "Status"}])
        );
        assert_refs_resolve(&doc, "#/definitions/", defs);
    }

    #[test]
    fn v3_index_and_documents() {
        let docs = OpenApiDocs::build(&[CUSTOM_METRICS, EXTERNAL_METRICS, RESOURCE_METRICS]);
        let index: Value = serde_json::from_slice(&docs.v3_index()).unwrap();
        let paths = index["paths"].as_object().unwrap();
        let keys: Vec<&String> = paths.keys().collect();
        assert_eq!(
            keys,
            [
                "apis/custom.metrics.k8s.io/v1beta1",
                "apis/custom.metrics.k8s.io/v1beta2",
                "apis/external.metrics.k8s.io/v1beta1",
                "apis/metrics.k8s.io/v1beta1",
            ]
        );
        for (key, entry) in paths {
            let url = entry["serverRelativeURL"].as_str().unwrap();
            let (path, hash_param) = url.split_once("?hash=").unwrap();
            assert_eq!(path, format!("/openapi/v3/{key}"));
            let (_, group, version) = {
                let mut parts = key.split('/');
                (parts.next(), parts.next().unwrap(), parts.next().unwrap())
            };
            let body = docs.v3(group, version).unwrap();
            assert_eq!(hash_param, hash(&body));
            let doc: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(doc["openapi"], "3.0.0");
            let schemas = doc["components"]["schemas"].as_object().unwrap();
            assert_refs_resolve(&doc, "#/components/schemas/", schemas);
            assert!(
                doc["paths"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .all(|p| p.starts_with(&format!("/apis/{group}/{version}/")))
            );
        }
        let external: Value =
            serde_json::from_slice(&docs.v3("external.metrics.k8s.io", "v1beta1").unwrap())
                .unwrap();
        assert_eq!(
            external["paths"]["/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}"]
                ["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/io.k8s.metrics.pkg.apis.external_metrics.v1beta1.ExternalMetricValueList"
        );
        let pods: Value =
            serde_json::from_slice(&docs.v3("metrics.k8s.io", "v1beta1").unwrap()).unwrap();
        assert!(
            pods["paths"]["/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods"].is_object()
        );
        assert!(docs.v3("custom.metrics.k8s.io", "v1").is_none());
        assert!(openapi_v3("apps", "v1").is_none());
    }

    #[test]
    fn documents_are_deterministic() {
        let a = OpenApiDocs::build(&[CUSTOM_METRICS, EXTERNAL_METRICS]);
        let b = OpenApiDocs::build(&[CUSTOM_METRICS, EXTERNAL_METRICS]);
        assert_eq!(a.v2(), b.v2());
        assert_eq!(a.v3_index(), b.v3_index());
    }
}
