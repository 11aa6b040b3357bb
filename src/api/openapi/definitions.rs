//! OpenAPI definitions generated from types: the k8s.io/metrics wire types declared here
//! with their Go documentation, the apimachinery types (Status, APIResourceList, ObjectMeta,
//! LabelSelector, Quantity, ...) from k8s-openapi, turned into schemas by schemars.
//!
//! This is how prometheus-adapter and metrics-server get theirs: openapi-gen turns the Go
//! types of k8s.io/metrics into definitions. The structs below mirror those Go types field
//! by field and exist for the schemas only: the responses are written by `api::types` and
//! `api::metrics`, whose output the tests check against these schemas.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    APIResourceList, LabelSelector, ListMeta, ObjectMeta, Status, Time,
};
use schemars::generate::SchemaSettings;
use schemars::transform::{AddNullable, transform_subschemas};
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value, json};

/// `custom.metrics.k8s.io/v1beta1`.
#[allow(
    dead_code,
    reason = "schema-only types: their fields are described, never read"
)]
mod custom_v1beta1 {
    use super::*;

    /// MetricValueList is a list of values for a given metric for some set of objects.
    #[derive(JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(
        rename = "io.k8s.metrics.pkg.apis.custom_metrics.v1beta1.MetricValueList",
        extend("x-kubernetes-group-version-kind" = [{"group": "custom.metrics.k8s.io", "version": "v1beta1", "kind": "MetricValueList"}])
    )]
    pub(super) struct MetricValueList {
        /// Kind is a string value representing the REST resource this object represents.
        kind: Option<String>,
        /// APIVersion defines the versioned schema of this representation of an object.
        api_version: Option<String>,
        /// Standard list metadata.
        metadata: Option<ListMeta>,
        /// The list of metric values.
        items: Vec<MetricValue>,
    }

    /// MetricValue is a metric value for some object.
    #[derive(JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(rename = "io.k8s.metrics.pkg.apis.custom_metrics.v1beta1.MetricValue")]
    struct MetricValue {
        /// Kind is a string value representing the REST resource this object represents.
        kind: Option<String>,
        /// APIVersion defines the versioned schema of this representation of an object.
        api_version: Option<String>,
        /// A reference to the described object.
        described_object: ObjectReference,
        /// The name of the metric.
        metric_name: String,
        /// Indicates the time at which the metrics were produced.
        timestamp: Time,
        /// Indicates the window ([Timestamp-Window, Timestamp]) from which these metrics
        /// were calculated, when returning rate metrics calculated from cumulative metrics
        /// (or zero for non-calculated instantaneous metrics).
        window: Option<i64>,
        /// The value of the metric for this object.
        value: Quantity,
        /// Selector represents the label selector that could be used to select this metric,
        /// and will generally just be the selector passed in to the query used to fetch this
        /// metric. When left blank, only the metric's Name will be used to gather metrics.
        selector: Option<LabelSelector>,
    }
}

/// `custom.metrics.k8s.io/v1beta2`.
#[allow(
    dead_code,
    reason = "schema-only types: their fields are described, never read"
)]
mod custom_v1beta2 {
    use super::*;

    /// MetricValueList is a list of values for a given metric for some set of objects.
    #[derive(JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(
        rename = "io.k8s.metrics.pkg.apis.custom_metrics.v1beta2.MetricValueList",
        extend("x-kubernetes-group-version-kind" = [{"group": "custom.metrics.k8s.io", "version": "v1beta2", "kind": "MetricValueList"}])
    )]
    pub(super) struct MetricValueList {
        /// Kind is a string value representing the REST resource this object represents.
        kind: Option<String>,
        /// APIVersion defines the versioned schema of this representation of an object.
        api_version: Option<String>,
        /// Standard list metadata.
        metadata: Option<ListMeta>,
        /// The list of metric values.
        items: Vec<MetricValue>,
    }

    /// MetricValue is the metric value for some object.
    #[derive(JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(rename = "io.k8s.metrics.pkg.apis.custom_metrics.v1beta2.MetricValue")]
    struct MetricValue {
        /// Kind is a string value representing the REST resource this object represents.
        kind: Option<String>,
        /// APIVersion defines the versioned schema of this representation of an object.
        api_version: Option<String>,
        /// A reference to the described object.
        described_object: ObjectReference,
        /// The metric, by name and selector.
        metric: MetricIdentifier,
        /// Indicates the time at which the metrics were produced.
        timestamp: Time,
        /// Indicates the window ([Timestamp-Window, Timestamp]) from which these metrics
        /// were calculated, when returning rate metrics calculated from cumulative metrics
        /// (or zero for non-calculated instantaneous metrics).
        window_seconds: Option<i64>,
        /// The value of the metric for this object.
        value: Quantity,
    }

    /// MetricIdentifier identifies a metric by name and, optionally, selector.
    #[derive(JsonSchema)]
    #[schemars(rename = "io.k8s.metrics.pkg.apis.custom_metrics.v1beta2.MetricIdentifier")]
    struct MetricIdentifier {
        /// Name is the name of the given metric.
        name: String,
        /// Selector represents the label selector that could be used to select this metric,
        /// and will generally just be the selector passed in to the query used to fetch this
        /// metric. When left blank, only the metric's Name will be used to gather metrics.
        selector: Option<LabelSelector>,
    }
}

/// `external.metrics.k8s.io/v1beta1`.
#[allow(
    dead_code,
    reason = "schema-only types: their fields are described, never read"
)]
mod external_v1beta1 {
    use super::*;

    /// ExternalMetricValueList is a list of values for a given metric for some set labels.
    #[derive(JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(
        rename = "io.k8s.metrics.pkg.apis.external_metrics.v1beta1.ExternalMetricValueList",
        extend("x-kubernetes-group-version-kind" = [{"group": "external.metrics.k8s.io", "version": "v1beta1", "kind": "ExternalMetricValueList"}])
    )]
    pub(super) struct ExternalMetricValueList {
        /// Kind is a string value representing the REST resource this object represents.
        kind: Option<String>,
        /// APIVersion defines the versioned schema of this representation of an object.
        api_version: Option<String>,
        /// Standard list metadata.
        metadata: Option<ListMeta>,
        /// Value of the metric matching a given set of labels.
        items: Vec<ExternalMetricValue>,
    }

    /// ExternalMetricValue is a metric value for external metric. A single metric value is
    /// identified by metric name and a set of string labels. For one metric there can be
    /// multiple values with different sets of labels.
    #[derive(JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(rename = "io.k8s.metrics.pkg.apis.external_metrics.v1beta1.ExternalMetricValue")]
    struct ExternalMetricValue {
        /// Kind is a string value representing the REST resource this object represents.
        kind: Option<String>,
        /// APIVersion defines the versioned schema of this representation of an object.
        api_version: Option<String>,
        /// The name of the metric.
        metric_name: String,
        /// A set of labels that identify a single time series for the metric.
        metric_labels: BTreeMap<String, String>,
        /// Indicates the time at which the metrics were produced.
        timestamp: Time,
        /// Indicates the window ([Timestamp-Window, Timestamp]) from which these metrics
        /// were calculated, when returning rate metrics calculated from cumulative metrics
        /// (or zero for non-calculated instantaneous metrics).
        window: Option<i64>,
        /// The value of the metric.
        value: Quantity,
    }
}

/// `metrics.k8s.io/v1beta1`.
#[allow(
    dead_code,
    reason = "schema-only types: their fields are described, never read"
)]
mod resource_v1beta1 {
    use super::*;

    /// PodMetricsList is a list of PodMetrics.
    #[derive(JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(
        rename = "io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetricsList",
        extend("x-kubernetes-group-version-kind" = [{"group": "metrics.k8s.io", "version": "v1beta1", "kind": "PodMetricsList"}])
    )]
    pub(super) struct PodMetricsList {
        /// Kind is a string value representing the REST resource this object represents.
        kind: Option<String>,
        /// APIVersion defines the versioned schema of this representation of an object.
        api_version: Option<String>,
        /// Standard list metadata.
        metadata: Option<ListMeta>,
        /// List of pod metrics.
        items: Vec<PodMetrics>,
    }

    /// PodMetrics sets resource usage metrics of a pod.
    #[derive(JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(
        rename = "io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetrics",
        extend("x-kubernetes-group-version-kind" = [{"group": "metrics.k8s.io", "version": "v1beta1", "kind": "PodMetrics"}])
    )]
    pub(super) struct PodMetrics {
        /// Kind is a string value representing the REST resource this object represents.
        kind: Option<String>,
        /// APIVersion defines the versioned schema of this representation of an object.
        api_version: Option<String>,
        /// Standard object's metadata.
        metadata: Option<ObjectMeta>,
        /// The end of the interval [Timestamp-Window, Timestamp] the metrics were collected in.
        timestamp: Time,
        /// The length of that interval, as a Go duration (`5m0s`).
        window: String,
        /// Metrics for all containers are collected within the same time window.
        containers: Vec<ContainerMetrics>,
    }

    /// ContainerMetrics sets resource usage metrics of a container.
    #[derive(JsonSchema)]
    #[schemars(rename = "io.k8s.metrics.pkg.apis.metrics.v1beta1.ContainerMetrics")]
    struct ContainerMetrics {
        /// Container name corresponding to the one from pod.spec.containers.
        name: String,
        /// The resource usage: cpu and memory.
        usage: BTreeMap<String, Quantity>,
    }

    /// NodeMetricsList is a list of NodeMetrics.
    #[derive(JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(
        rename = "io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetricsList",
        extend("x-kubernetes-group-version-kind" = [{"group": "metrics.k8s.io", "version": "v1beta1", "kind": "NodeMetricsList"}])
    )]
    pub(super) struct NodeMetricsList {
        /// Kind is a string value representing the REST resource this object represents.
        kind: Option<String>,
        /// APIVersion defines the versioned schema of this representation of an object.
        api_version: Option<String>,
        /// Standard list metadata.
        metadata: Option<ListMeta>,
        /// List of node metrics.
        items: Vec<NodeMetrics>,
    }

    /// NodeMetrics sets resource usage metrics of a node.
    #[derive(JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(
        rename = "io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics",
        extend("x-kubernetes-group-version-kind" = [{"group": "metrics.k8s.io", "version": "v1beta1", "kind": "NodeMetrics"}])
    )]
    pub(super) struct NodeMetrics {
        /// Kind is a string value representing the REST resource this object represents.
        kind: Option<String>,
        /// APIVersion defines the versioned schema of this representation of an object.
        api_version: Option<String>,
        /// Standard object's metadata.
        metadata: Option<ObjectMeta>,
        /// The end of the interval [Timestamp-Window, Timestamp] the metrics were collected in.
        timestamp: Time,
        /// The length of that interval, as a Go duration (`5m0s`).
        window: String,
        /// The memory usage is the memory working set.
        usage: BTreeMap<String, Quantity>,
    }
}

/// Optional fields as Kubernetes' OpenAPI writes them: left out of `required`, never
/// nullable (Swagger 2.0 has no null, and kube-openapi emits none).
fn not_nullable(schema: &mut Schema) {
    transform_subschemas(&mut not_nullable, schema);
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            object.insert("type".into(), only);
        }
    }
    let non_null = match object.get("anyOf") {
        Some(Value::Array(any)) => {
            let kept: Vec<&Value> = any
                .iter()
                .filter(|s| s.get("type") != Some(&json!("null")))
                .collect();
            match kept.as_slice() {
                [only] if kept.len() < any.len() => Some((*only).clone()),
                _ => None,
            }
        }
        _ => None,
    };
    if let Some(Value::Object(inner)) = non_null {
        object.remove("anyOf");
        for (key, value) in inner {
            object.entry(key).or_insert(value);
        }
    }
}

/// The apimachinery kinds the documents reference, with their group-version-kind.
const META_KINDS: [(&str, &str); 2] = [
    ("io.k8s.apimachinery.pkg.apis.meta.v1.Status", "Status"),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList",
        "APIResourceList",
    ),
];

/// Every definition the group-versions `gvs` need, with `$ref`s under `definitions_path`
/// (`/definitions` for Swagger 2.0, `/components/schemas` for OpenAPI 3).
pub(super) fn definitions(definitions_path: &str, gvs: &[(&str, &str)]) -> Map<String, Value> {
    let settings = SchemaSettings::openapi3().with(|s| {
        s.definitions_path = definitions_path.to_owned().into();
        s.transforms.retain(|t| !t.is::<AddNullable>());
        // First, so that `$ref`s it unwraps get the same treatment as the others.
        s.transforms.insert(0, Box::new(not_nullable));
    });
    let mut generator = settings.into_generator();
    generator.subschema_for::<Status>();
    generator.subschema_for::<APIResourceList>();
    for gv in gvs {
        match *gv {
            ("custom.metrics.k8s.io", "v1beta1") => {
                generator.subschema_for::<custom_v1beta1::MetricValueList>();
            }
            ("custom.metrics.k8s.io", "v1beta2") => {
                generator.subschema_for::<custom_v1beta2::MetricValueList>();
            }
            ("external.metrics.k8s.io", "v1beta1") => {
                generator.subschema_for::<external_v1beta1::ExternalMetricValueList>();
            }
            ("metrics.k8s.io", "v1beta1") => {
                generator.subschema_for::<resource_v1beta1::PodMetricsList>();
                generator.subschema_for::<resource_v1beta1::PodMetrics>();
                generator.subschema_for::<resource_v1beta1::NodeMetricsList>();
                generator.subschema_for::<resource_v1beta1::NodeMetrics>();
            }
            _ => {}
        }
    }
    let mut definitions = generator.take_definitions(true);
    for (name, kind) in META_KINDS {
        if let Some(Value::Object(schema)) = definitions.get_mut(name) {
            schema.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": "", "version": "v1", "kind": kind}]),
            );
        }
    }
    definitions
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::api::metrics::{node_json, pod_json};
    use crate::api::types::{CustomVersion, external_metric_value_list, metric_value_list};
    use crate::promql::selector::LabelSelector as Selector;
    use crate::provider::resource::{ContainerUsage, NodeUsage, PodUsage};
    use crate::provider::{CustomItem, ExternalItem};
    use crate::resources::ResourceTable;

    const PATH: &str = "/definitions";

    /// Checks `value` against `schema` the way a Go client decodes it: every property must
    /// be declared with the right type, required ones present; `null` is accepted anywhere
    /// (encoding/json decodes it to the zero value). Returns the first mismatch.
    fn conforms(
        value: &Value,
        schema: &Value,
        defs: &Map<String, Value>,
        at: &str,
    ) -> Result<(), String> {
        if let Some(Value::String(target)) = schema.get("$ref") {
            let name = target.trim_start_matches("#/definitions/");
            let def = defs
                .get(name)
                .ok_or_else(|| format!("{at}: dangling {target}"))?;
            conforms(value, def, defs, at)?;
        }
        for part in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            conforms(value, part, defs, at)?;
        }
        if value.is_null() || !(schema.get("type").is_some() || schema.get("properties").is_some())
        {
            return Ok(());
        }
        let fits = match schema.get("type").and_then(Value::as_str) {
            None => true,
            Some("object") => value.is_object(),
            Some("array") => value.is_array(),
            Some("string") => value.is_string(),
            Some("integer") => value.is_i64() || value.is_u64(),
            Some("number") => value.is_number(),
            Some("boolean") => value.is_boolean(),
            Some(other) => return Err(format!("{at}: unknown type {other}")),
        };
        if !fits {
            return Err(format!("{at}: {value} is not of type {}", schema["type"]));
        }
        if let Some(items) = schema.get("items") {
            for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                conforms(item, items, defs, &format!("{at}[{i}]"))?;
            }
        }
        let Some(object) = value.as_object() else {
            return Ok(());
        };
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = required.as_str().unwrap_or_default();
            if !object.contains_key(key) {
                return Err(format!("{at}: required {key} missing"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (key, field) in object {
            let declared = properties
                .and_then(|p| p.get(key))
                .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()))
                .ok_or_else(|| format!("{at}: {key} is not declared"))?;
            conforms(field, declared, defs, &format!("{at}.{key}"))?;
        }
        Ok(())
    }

    fn check(value: &Value, kind: &str, gvs: &[(&str, &str)]) {
        let defs = definitions(PATH, gvs);
        let schema = defs
            .get(kind)
            .unwrap_or_else(|| panic!("no definition {kind}"));
        conforms(value, schema, &defs, kind).unwrap_or_else(|e| panic!("{e}\n{value}"));
    }

    fn at() -> std::time::SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_704_067_200)
    }

    fn pod_items() -> Vec<CustomItem> {
        let pod = ResourceTable::builtin().lookup("pods").unwrap().clone();
        vec![CustomItem {
            resource: pod,
            namespace: Some("ns".into()),
            name: "p-1".into(),
            metric: "http_requests_per_second".into(),
            timestamp: at(),
            value: 0.016,
        }]
    }

    #[test]
    fn custom_metric_lists_conform_to_their_schemas() {
        let items = pod_items();
        for selector in [
            Selector::default(),
            Selector::parse("verb in (GET,PUT),!debug").unwrap(),
        ] {
            for (version, name) in [
                (CustomVersion::V1beta1, "v1beta1"),
                (CustomVersion::V1beta2, "v1beta2"),
            ] {
                let list =
                    serde_json::to_value(metric_value_list(version, &items, &selector)).unwrap();
                check(
                    &list,
                    &format!("io.k8s.metrics.pkg.apis.custom_metrics.{name}.MetricValueList"),
                    &[("custom.metrics.k8s.io", name)],
                );
            }
        }
    }

    #[test]
    fn external_and_resource_metrics_conform_to_their_schemas() {
        let labels = [("queue".to_owned(), "a".to_owned())].into_iter().collect();
        let items = [
            ExternalItem {
                metric: "queue_depth".into(),
                labels: Some(labels),
                timestamp: at(),
                value: 50.0,
            },
            ExternalItem {
                metric: "queue_depth".into(),
                labels: None,
                timestamp: at(),
                value: 1.5,
            },
        ];
        check(
            &external_metric_value_list(&items),
            "io.k8s.metrics.pkg.apis.external_metrics.v1beta1.ExternalMetricValueList",
            &[("external.metrics.k8s.io", "v1beta1")],
        );

        let gv = [("metrics.k8s.io", "v1beta1")];
        let labels = Arc::new([("app".to_owned(), "web".to_owned())].into_iter().collect());
        let pod = PodUsage {
            namespace: "default".into(),
            name: "web-1".into(),
            labels: Some(labels),
            timestamp: at(),
            containers: vec![ContainerUsage {
                name: "app".into(),
                cpu_milli: 120,
                memory_milli: 1000,
            }],
        };
        let node = NodeUsage {
            name: "node-a".into(),
            labels: None,
            timestamp: at(),
            cpu_milli: 1500,
            memory_milli: 1000,
        };
        let window = Duration::from_secs(300);
        check(
            &pod_json(&pod, window, at(), true),
            "io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetrics",
            &gv,
        );
        check(
            &node_json(&node, window, at(), true),
            "io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics",
            &gv,
        );
        let list = json!({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": [pod_json(&pod, window, at(), false)]});
        check(
            &list,
            "io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetricsList",
            &gv,
        );
    }

    #[test]
    fn the_checker_rejects_undeclared_missing_and_mistyped_fields() {
        let gv = [("external.metrics.k8s.io", "v1beta1")];
        let defs = definitions(PATH, &gv);
        let name = "io.k8s.metrics.pkg.apis.external_metrics.v1beta1.ExternalMetricValue";
        let good = json!({"metricName": "m", "metricLabels": {"a": "b"}, "timestamp": "2024-01-01T00:00:00Z", "value": "1"});
        conforms(&good, &defs[name], &defs, name).unwrap();
        let mut undeclared = good.clone();
        undeclared["windowSeconds"] = json!(60);
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove("value");
        let mut mistyped = good.clone();
        mistyped["metricLabels"]["a"] = json!(1);
        for (bad, error) in [
            (undeclared, "windowSeconds is not declared"),
            (missing, "required value missing"),
            (mistyped, "1 is not of type \"string\""),
        ] {
            let err = conforms(&bad, &defs[name], &defs, name).unwrap_err();
            assert!(err.ends_with(error), "{err}");
        }
    }

    #[test]
    fn optional_fields_are_not_nullable_and_kinds_carry_their_gvk() {
        let defs = definitions(
            "/components/schemas",
            &[("custom.metrics.k8s.io", "v1beta2")],
        );
        let text = Value::Object(defs.clone()).to_string();
        assert!(
            !text.contains("\"null\"") && !text.contains("nullable"),
            "{text}"
        );
        assert!(!text.contains("#/definitions/"), "{text}");
        let identifier = &defs["io.k8s.metrics.pkg.apis.custom_metrics.v1beta2.MetricIdentifier"];
        assert_eq!(identifier["required"], json!(["name"]));
        assert_eq!(
            identifier["properties"]["selector"]["allOf"],
            json!([{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"}])
        );
        assert_eq!(
            defs["io.k8s.apimachinery.pkg.apis.meta.v1.Status"]["x-kubernetes-group-version-kind"],
            json!([{"group": "", "version": "v1", "kind": "Status"}])
        );
        assert_eq!(
            defs["io.k8s.metrics.pkg.apis.custom_metrics.v1beta2.MetricValueList"]["x-kubernetes-group-version-kind"],
            json!([{"group": "custom.metrics.k8s.io", "version": "v1beta2", "kind": "MetricValueList"}])
        );
    }
}
