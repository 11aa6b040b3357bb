//! Wire format of the metrics APIs: MetricValueList (custom v1beta1 and v1beta2) and
//! ExternalMetricValueList, with field order and nulls exactly as the Go types marshal.

use std::time::SystemTime;

use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};
use serde_json::{Value, json};

use crate::promql::selector::LabelSelector;
use crate::provider::{CustomItem, ExternalItem};
use crate::quantity::decimal_milli;

/// The custom metrics API versions augur serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomVersion {
    /// `v1beta1`: `metricName`, `selector` on the item.
    V1beta1,
    /// `v1beta2`: `metric: {name, selector}`.
    V1beta2,
}

impl CustomVersion {
    /// Parses the version path segment.
    pub fn parse(version: &str) -> Option<Self> {
        match version {
            "v1beta1" => Some(Self::V1beta1),
            "v1beta2" => Some(Self::V1beta2),
            _ => None,
        }
    }

    /// The version string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1beta1 => "v1beta1",
            Self::V1beta2 => "v1beta2",
        }
    }
}

pub use crate::units::rfc3339;

/// A `MetricValueList` for the given version, serialised straight from the items (no
/// intermediate `serde_json::Value` per item; the same bytes as the Go types marshal).
pub fn metric_value_list<'a>(
    version: CustomVersion,
    items: &'a [CustomItem],
    selector: &LabelSelector,
) -> MetricValueList<'a> {
    MetricValueList {
        version,
        items,
        selector: selector.to_json(),
    }
}

/// A `MetricValueList` ready to serialise (see [`metric_value_list`]).
#[derive(Debug)]
pub struct MetricValueList<'a> {
    version: CustomVersion,
    items: &'a [CustomItem],
    selector: Value,
}

impl Serialize for MetricValueList<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut list = serializer.serialize_struct("MetricValueList", 4)?;
        list.serialize_field("kind", "MetricValueList")?;
        list.serialize_field(
            "apiVersion",
            match self.version {
                CustomVersion::V1beta1 => "custom.metrics.k8s.io/v1beta1",
                CustomVersion::V1beta2 => "custom.metrics.k8s.io/v1beta2",
            },
        )?;
        list.serialize_field("metadata", &Metadata {})?;
        list.serialize_field("items", &Items(self))?;
        list.end()
    }
}

/// The empty `metadata: {}`.
#[derive(Serialize)]
struct Metadata {}

/// The `items` array: one object per item, sharing the parts every item has in common
/// (apiVersion of the resource, timestamp) instead of formatting them per item.
struct Items<'a, 'b>(&'b MetricValueList<'a>);

impl Serialize for Items<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let list = self.0;
        let mut seq = serializer.serialize_seq(Some(list.items.len()))?;
        let mut api_version: Option<(&crate::resources::ResourceInfo, String)> = None;
        let mut timestamp: Option<(SystemTime, String)> = None;
        for item in list.items {
            if api_version
                .as_ref()
                .is_none_or(|(r, _)| *r != &item.resource)
            {
                api_version = Some((&item.resource, item.resource.api_version()));
            }
            if timestamp.as_ref().is_none_or(|(t, _)| *t != item.timestamp) {
                timestamp = Some((item.timestamp, rfc3339(item.timestamp)));
            }
            let described = DescribedObject {
                kind: &item.resource.kind,
                namespace: item.namespace.as_deref(),
                name: &item.name,
                api_version: api_version.as_ref().map_or("", |(_, v)| v.as_str()),
            };
            let timestamp = timestamp.as_ref().map_or("", |(_, t)| t.as_str());
            let value = decimal_milli(item.value);
            match list.version {
                CustomVersion::V1beta1 => seq.serialize_element(&ItemV1beta1 {
                    described_object: described,
                    metric_name: &item.metric,
                    timestamp,
                    value: &value,
                    selector: &list.selector,
                })?,
                CustomVersion::V1beta2 => seq.serialize_element(&ItemV1beta2 {
                    described_object: described,
                    metric: MetricIdentifier {
                        name: &item.metric,
                        selector: &list.selector,
                    },
                    timestamp,
                    value: &value,
                })?,
            }
        }
        seq.end()
    }
}

/// `describedObject` (an `ObjectReference` with only these fields set).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DescribedObject<'a> {
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
    name: &'a str,
    api_version: &'a str,
}

/// A v1beta1 `MetricValue`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ItemV1beta1<'a> {
    described_object: DescribedObject<'a>,
    metric_name: &'a str,
    timestamp: &'a str,
    value: &'a str,
    selector: &'a Value,
}

/// A v1beta2 `MetricValue`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ItemV1beta2<'a> {
    described_object: DescribedObject<'a>,
    metric: MetricIdentifier<'a>,
    timestamp: &'a str,
    value: &'a str,
}

/// v1beta2 `metric: {name, selector}`.
#[derive(Serialize)]
struct MetricIdentifier<'a> {
    name: &'a str,
    selector: &'a Value,
}

/// An `ExternalMetricValueList`.
pub fn external_metric_value_list(items: &[ExternalItem]) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|item| {
            json!({
                "metricName": item.metric,
                "metricLabels": item.labels,
                "timestamp": rfc3339(item.timestamp),
                "value": decimal_milli(item.value),
            })
        })
        .collect();
    json!({
        "kind": "ExternalMetricValueList",
        "apiVersion": "external.metrics.k8s.io/v1beta1",
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::resources::ResourceTable;

    fn pod_item() -> CustomItem {
        CustomItem {
            resource: ResourceTable::builtin().lookup("pods").unwrap().clone(),
            namespace: Some("ns".into()),
            name: "p-1".into(),
            metric: "http_requests_per_second".into(),
            timestamp: UNIX_EPOCH + Duration::from_secs(1_704_067_200),
            value: 0.016,
        }
    }

    #[test]
    fn v1beta1_list_matches_prometheus_adapter_bytes() {
        let items = [pod_item()];
        let json = metric_value_list(CustomVersion::V1beta1, &items, &LabelSelector::default());
        assert_eq!(
            serde_json::to_string(&json).unwrap(),
            r#"{"kind":"MetricValueList","apiVersion":"custom.metrics.k8s.io/v1beta1","metadata":{},"items":[{"describedObject":{"kind":"Pod","namespace":"ns","name":"p-1","apiVersion":"/v1"},"metricName":"http_requests_per_second","timestamp":"2024-01-01T00:00:00Z","value":"16m","selector":null}]}"#
        );
    }

    #[test]
    fn v1beta2_list_carries_the_selector_in_metric() {
        let selector = LabelSelector::parse("verb=GET").unwrap();
        let items = [pod_item()];
        let json = metric_value_list(CustomVersion::V1beta2, &items, &selector);
        assert_eq!(
            serde_json::to_string(&json).unwrap(),
            r#"{"kind":"MetricValueList","apiVersion":"custom.metrics.k8s.io/v1beta2","metadata":{},"items":[{"describedObject":{"kind":"Pod","namespace":"ns","name":"p-1","apiVersion":"/v1"},"metric":{"name":"http_requests_per_second","selector":{"matchLabels":{"verb":"GET"}}},"timestamp":"2024-01-01T00:00:00Z","value":"16m"}]}"#
        );
    }

    #[test]
    fn pretty_list_of_many_items_equals_the_generic_json_form() {
        let selector = LabelSelector::parse("verb=GET").unwrap();
        let mut items: Vec<CustomItem> = (0..3)
            .map(|i| CustomItem {
                name: format!("p-{i}"),
                value: 0.5 + f64::from(i),
                ..pod_item()
            })
            .collect();
        items[2].namespace = None;
        let typed = metric_value_list(CustomVersion::V1beta1, &items, &selector);
        let generic = json!({
            "kind": "MetricValueList",
            "apiVersion": "custom.metrics.k8s.io/v1beta1",
            "metadata": {},
            "items": items.iter().map(|item| {
                let mut object = serde_json::Map::new();
                object.insert("kind".into(), json!("Pod"));
                if let Some(ns) = &item.namespace {
                    object.insert("namespace".into(), json!(ns));
                }
                object.insert("name".into(), json!(item.name));
                object.insert("apiVersion".into(), json!("/v1"));
                json!({
                    "describedObject": object,
                    "metricName": "http_requests_per_second",
                    "timestamp": "2024-01-01T00:00:00Z",
                    "value": decimal_milli(item.value),
                    "selector": {"matchLabels": {"verb": "GET"}},
                })
            }).collect::<Vec<_>>(),
        });
        assert_eq!(
            serde_json::to_string_pretty(&typed).unwrap(),
            serde_json::to_string_pretty(&generic).unwrap()
        );
        assert!(
            serde_json::to_string(&typed)
                .unwrap()
                .contains(r#"{"describedObject":{"kind":"Pod","name":"p-2","apiVersion":"/v1"},"metricName":"http_requests_per_second","timestamp":"2024-01-01T00:00:00Z","value":"2500m","selector":{"matchLabels":{"verb":"GET"}}}"#)
        );
    }

    #[test]
    fn external_list_has_labels_or_null_for_scalars() {
        let at = UNIX_EPOCH + Duration::from_secs(1_704_067_200);
        let labels = [("queue".to_owned(), "a".to_owned())].into_iter().collect();
        let items = [
            ExternalItem {
                metric: "queue_depth".into(),
                labels: Some(labels),
                timestamp: at,
                value: 50.0,
            },
            ExternalItem {
                metric: "queue_depth".into(),
                labels: None,
                timestamp: at,
                value: 1.5,
            },
        ];
        assert_eq!(
            external_metric_value_list(&items).to_string(),
            r#"{"kind":"ExternalMetricValueList","apiVersion":"external.metrics.k8s.io/v1beta1","metadata":{},"items":[{"metricName":"queue_depth","metricLabels":{"queue":"a"},"timestamp":"2024-01-01T00:00:00Z","value":"50"},{"metricName":"queue_depth","metricLabels":null,"timestamp":"2024-01-01T00:00:00Z","value":"1500m"}]}"#
        );
    }
}
