//! Wire format of the metrics APIs: MetricValueList (custom v1beta1 and v1beta2) and
//! ExternalMetricValueList, with field order and nulls exactly as the Go types marshal.

use std::time::SystemTime;

use serde_json::{Map, Value, json};

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

/// RFC 3339 with second precision in UTC, as `metav1.Time` marshals.
pub fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// A `MetricValueList` for the given version.
pub fn metric_value_list(
    version: CustomVersion,
    items: &[CustomItem],
    selector: &LabelSelector,
) -> Value {
    let selector = selector.to_json();
    let items: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut object = Map::new();
            object.insert("kind".into(), Value::String(item.resource.kind.clone()));
            if let Some(ns) = &item.namespace {
                object.insert("namespace".into(), Value::String(ns.clone()));
            }
            object.insert("name".into(), Value::String(item.name.clone()));
            object.insert(
                "apiVersion".into(),
                Value::String(item.resource.api_version()),
            );
            let timestamp = rfc3339(item.timestamp);
            let value = decimal_milli(item.value);
            match version {
                CustomVersion::V1beta1 => json!({
                    "describedObject": object,
                    "metricName": item.metric,
                    "timestamp": timestamp,
                    "value": value,
                    "selector": selector,
                }),
                CustomVersion::V1beta2 => json!({
                    "describedObject": object,
                    "metric": {"name": item.metric, "selector": selector},
                    "timestamp": timestamp,
                    "value": value,
                }),
            }
        })
        .collect();
    json!({
        "kind": "MetricValueList",
        "apiVersion": format!("custom.metrics.k8s.io/{}", version.as_str()),
        "metadata": {},
        "items": items,
    })
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
        let json = metric_value_list(
            CustomVersion::V1beta1,
            &[pod_item()],
            &LabelSelector::default(),
        );
        assert_eq!(
            json.to_string(),
            r#"{"kind":"MetricValueList","apiVersion":"custom.metrics.k8s.io/v1beta1","metadata":{},"items":[{"describedObject":{"kind":"Pod","namespace":"ns","name":"p-1","apiVersion":"/v1"},"metricName":"http_requests_per_second","timestamp":"2024-01-01T00:00:00Z","value":"16m","selector":null}]}"#
        );
    }

    #[test]
    fn v1beta2_list_carries_the_selector_in_metric() {
        let selector = LabelSelector::parse("verb=GET").unwrap();
        let json = metric_value_list(CustomVersion::V1beta2, &[pod_item()], &selector);
        assert_eq!(
            json.to_string(),
            r#"{"kind":"MetricValueList","apiVersion":"custom.metrics.k8s.io/v1beta2","metadata":{},"items":[{"describedObject":{"kind":"Pod","namespace":"ns","name":"p-1","apiVersion":"/v1"},"metric":{"name":"http_requests_per_second","selector":{"matchLabels":{"verb":"GET"}}},"timestamp":"2024-01-01T00:00:00Z","value":"16m"}]}"#
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
