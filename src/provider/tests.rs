//! Provider unit tests: exact PromQL per request shape and every error path, over the
//! in-memory fake backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::{self, UnknownResources};
use crate::prometheus::fake::{FakeBackend, labels, sample};
use crate::prometheus::{Error as BackendError, QueryResult};
use crate::promql::selector::LabelSelector;
use crate::resources::ResourceTable;
use crate::series::{Listing, Snapshot};

use super::custom::custom_metric;
use super::external::external_metric;
use super::{CustomRequest, ExternalRequest, ObjectName, ProviderError};

const CONFIG: &str = r#"
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources:
    overrides:
      namespace: {resource: "namespace"}
      pod: {resource: "pod"}
  name: {matches: "^(.*)_total$", as: "${1}_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
- seriesQuery: '{__name__=~"^node_.*",node!=""}'
  resources: {template: "<<.Resource>>"}
  metricsQuery: 'max(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
- seriesQuery: 'nginx_ingress_controller_requests'
  resources:
    overrides:
      exported_namespace: {resource: "namespace"}
      ingress: {group: "networking.k8s.io", resource: "ingress"}
  name: {as: "ingress_requests"}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
externalRules:
- seriesQuery: 'queue_messages_ready'
  resources:
    overrides:
      namespace: {resource: "namespace"}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (queue)'
- seriesQuery: 'cluster_budget'
  resources: {namespaced: false}
  metricsQuery: 'scalar(sum(<<.Series>>{<<.LabelMatchers>>}))'
"#;

fn snapshot() -> Snapshot {
    let table = Arc::new(ResourceTable::builtin());
    let config =
        Arc::new(config::parse(CONFIG, "test.yaml", &table, UnknownResources::Reject).unwrap());
    let at = UNIX_EPOCH;
    let mut listings = HashMap::new();
    let mut add = |query: &str, sets: Vec<crate::prometheus::LabelSet>| {
        listings.insert(query.to_owned(), Listing::reduce(&sets, at));
    };
    add(
        r#"http_requests_total{namespace!="",pod!=""}"#,
        vec![labels(&[
            ("__name__", "http_requests_total"),
            ("namespace", "default"),
            ("pod", "web-1"),
            ("job", "web"),
        ])],
    );
    add(
        r#"{__name__=~"^node_.*",node!=""}"#,
        vec![labels(&[
            ("__name__", "node_load1"),
            ("node", "node-a"),
            ("instance", "10.0.0.1"),
        ])],
    );
    add(
        "nginx_ingress_controller_requests",
        vec![labels(&[
            ("__name__", "nginx_ingress_controller_requests"),
            ("exported_namespace", "default"),
            ("ingress", "web"),
        ])],
    );
    add(
        "queue_messages_ready",
        vec![labels(&[
            ("__name__", "queue_messages_ready"),
            ("namespace", "default"),
            ("queue", "orders"),
        ])],
    );
    add(
        "cluster_budget",
        vec![labels(&[("__name__", "cluster_budget")])],
    );
    Snapshot::build(config, table, &listings, Some(at))
}

fn request(
    path_resource: &str,
    namespace: Option<&str>,
    name: &str,
    metric: &str,
) -> CustomRequest {
    CustomRequest {
        resource: path_resource.to_owned(),
        namespace: namespace.map(str::to_owned),
        name: if name == "*" {
            ObjectName::All
        } else {
            ObjectName::Named(name.to_owned())
        },
        metric: metric.to_owned(),
        metric_selector: LabelSelector::default(),
        object_selector: LabelSelector::default(),
    }
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

async fn custom(
    backend: &FakeBackend,
    req: &CustomRequest,
) -> Result<Vec<super::CustomItem>, ProviderError> {
    custom_metric(&snapshot(), backend, req, now()).await
}

#[test]
fn discovery_lists_resources_like_the_adapter() {
    let snap = snapshot();
    assert_eq!(
        snap.custom_resources(),
        vec![
            (
                "ingresses.networking.k8s.io/ingress_requests".to_owned(),
                true
            ),
            ("namespaces/http_requests_per_second".to_owned(), false),
            ("namespaces/ingress_requests".to_owned(), false),
            ("nodes/node_load1".to_owned(), false),
            ("pods/http_requests_per_second".to_owned(), true),
        ]
    );
    assert_eq!(
        snap.external_metrics(),
        vec![
            "cluster_budget".to_owned(),
            "queue_messages_ready".to_owned()
        ]
    );
}

#[tokio::test]
async fn named_pod_renders_exact_promql_and_value() {
    let promql = r#"sum(rate(http_requests_total{namespace="default",pod="web-1"}[2m])) by (pod)"#;
    let backend = FakeBackend::new().with_query(
        promql,
        QueryResult::Vector(vec![sample(&[("pod", "web-1")], 1.5)]),
    );
    let items = custom(
        &backend,
        &request("pods", Some("default"), "web-1", "http_requests_per_second"),
    )
    .await
    .unwrap();
    assert_eq!(backend.queries(), vec![promql.to_owned()]);
    assert_eq!(items.len(), 1);
    assert_eq!(
        (
            items[0].name.as_str(),
            items[0].value,
            items[0].resource.kind.as_str()
        ),
        ("web-1", 1.5, "Pod")
    );
    assert_eq!(items[0].timestamp, now());
}

#[tokio::test]
async fn wildcard_selects_every_object_and_metric_selector_comes_first() {
    let promql =
        r#"sum(rate(http_requests_total{verb!="GET",namespace="default",pod=~".+"}[2m])) by (pod)"#;
    let backend = FakeBackend::new().with_query(
        promql,
        QueryResult::Vector(vec![
            sample(&[("pod", "web-2")], 2.0),
            sample(&[("pod", "web-1")], 1.0),
            sample(&[], 9.0),
        ]),
    );
    let mut req = request("pod", Some("default"), "*", "http_requests_per_second");
    req.metric_selector = LabelSelector::parse("verb!=GET").unwrap();
    let items = custom(&backend, &req).await.unwrap();
    let got: Vec<(&str, f64)> = items.iter().map(|i| (i.name.as_str(), i.value)).collect();
    assert_eq!(got, vec![("web-1", 1.0), ("web-2", 2.0)]);
}

#[tokio::test]
async fn namespace_object_and_root_scoped_nodes() {
    let backend = FakeBackend::new()
        .with_query(
            r#"sum(rate(http_requests_total{namespace="default"}[2m])) by (namespace)"#,
            QueryResult::Vector(vec![sample(&[("namespace", "default")], 3.0)]),
        )
        .with_query(
            r#"max(node_load1{node="node-a"}) by (node)"#,
            QueryResult::Vector(vec![sample(&[("node", "node-a")], 0.25)]),
        );
    let items = custom(
        &backend,
        &request("namespaces", None, "default", "http_requests_per_second"),
    )
    .await
    .unwrap();
    assert_eq!(
        (
            items[0].resource.kind.as_str(),
            items[0].namespace.as_deref(),
            items[0].value
        ),
        ("Namespace", None, 3.0)
    );
    let items = custom(&backend, &request("nodes", None, "node-a", "node_load1"))
        .await
        .unwrap();
    assert_eq!(
        (items[0].resource.kind.as_str(), items[0].value),
        ("Node", 0.25)
    );
}

#[tokio::test]
async fn group_qualified_resource_uses_its_override_label() {
    let promql = r#"sum(nginx_ingress_controller_requests{exported_namespace="default",ingress="web"}) by (ingress)"#;
    let backend = FakeBackend::new().with_query(
        promql,
        QueryResult::Vector(vec![sample(&[("ingress", "web")], 12.0)]),
    );
    let items = custom(
        &backend,
        &request(
            "ingresses.networking.k8s.io",
            Some("default"),
            "web",
            "ingress_requests",
        ),
    )
    .await
    .unwrap();
    assert_eq!(items[0].resource.api_version(), "networking.k8s.io/v1");
}

#[tokio::test]
async fn error_paths_say_why() {
    let backend = FakeBackend::new();
    let err = custom(&backend, &request("widgets", Some("default"), "x", "m"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::UnknownResource { .. }),
        "{err}"
    );

    let err = custom(
        &backend,
        &request("pods", Some("default"), "web-1", "http_request_per_second"),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the server could not find the metric http_request_per_second for pods: no rule discovered it; closest metrics for pods: http_requests_per_second"
    );

    let err = custom(
        &backend,
        &request("nodes", Some("default"), "node-a", "node_load1"),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the server could not find the metric node_load1 for nodes: it is discovered as a root-scoped metric of nodes, but the request is namespaced"
    );

    let err = custom(
        &backend,
        &request("services", Some("default"), "web", "node_load1"),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the server could not find the metric node_load1 for services: no rule discovered it; it exists for nodes"
    );

    let empty = Snapshot::empty(
        snapshot().config.clone(),
        Arc::new(ResourceTable::builtin()),
    );
    let err = custom_metric(
        &empty,
        &backend,
        &request("pods", Some("default"), "web-1", "m"),
        now(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the server could not find the metric m for pods: augur has not completed its first series relist yet"
    );

    let promql = r#"sum(rate(http_requests_total{namespace="default",pod="web-9"}[2m])) by (pod)"#;
    backend.set_query(promql, QueryResult::Vector(vec![]));
    let err = custom(
        &backend,
        &request("pods", Some("default"), "web-9", "http_requests_per_second"),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the server could not find the metric http_requests_per_second for pods web-9 in namespace default: the query returned nothing (query: {promql})"
        )
    );

    backend.set_query(
        promql,
        QueryResult::Vector(vec![sample(&[("namespace", "default")], 1.0)]),
    );
    let err = custom(
        &backend,
        &request("pods", Some("default"), "web-9", "http_requests_per_second"),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("the query returned 1 series but none with pod=\"web-9\"; does metricsQuery group by <<.GroupBy>>?"), "{err}");

    let mut req = request("pods", Some("default"), "*", "http_requests_per_second");
    req.metric_selector = LabelSelector::parse("le>3").unwrap();
    let err = custom(&backend, &req).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::UnsupportedSelector(_)),
        "{err}"
    );

    let mut req = request("pods", Some("default"), "*", "http_requests_per_second");
    req.object_selector = LabelSelector::parse("app=web").unwrap();
    let err = custom(&backend, &req).await.unwrap_err();
    assert!(matches!(err, ProviderError::NeedsCluster(_)));
    assert!(err.to_string().contains("needs cluster mode"), "{err}");

    backend.set_query(promql, QueryResult::Scalar(sample(&[], 1.0)));
    let err = custom(
        &backend,
        &request("pods", Some("default"), "web-9", "http_requests_per_second"),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("unable to fetch metrics: the query returned a scalar result"),
        "{err}"
    );

    backend.fail_all(Some(BackendError::Timeout {
        url: "http://p/api/v1/query".into(),
        after: Duration::from_secs(2),
    }));
    let err = custom(
        &backend,
        &request("pods", Some("default"), "web-9", "http_requests_per_second"),
    )
    .await
    .unwrap_err();
    match err {
        ProviderError::Backend { error, query } => {
            assert!(error.is_unavailable());
            assert_eq!(query, promql);
        }
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn external_metrics_namespaced_and_cluster_wide() {
    let snap = snapshot();
    let backend = FakeBackend::new()
        .with_query(
            r#"sum(queue_messages_ready{queue="orders",namespace="prod"}) by (queue)"#,
            QueryResult::Vector(vec![sample(&[("queue", "orders")], 50.0)]),
        )
        .with_query(
            "scalar(sum(cluster_budget{}))",
            QueryResult::Scalar(sample(&[], 7.0)),
        );
    let req = ExternalRequest {
        namespace: "prod".into(),
        metric: "queue_messages_ready".into(),
        selector: LabelSelector::parse("queue=orders").unwrap(),
    };
    let items = external_metric(&snap, &backend, &req, now()).await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0]
            .labels
            .as_ref()
            .and_then(|l| l.get("queue"))
            .map(String::as_str),
        Some("orders")
    );
    assert_eq!(items[0].value, 50.0);
    let req = ExternalRequest {
        namespace: "prod".into(),
        metric: "cluster_budget".into(),
        selector: LabelSelector::default(),
    };
    let items = external_metric(&snap, &backend, &req, now()).await.unwrap();
    assert_eq!((items[0].labels.is_none(), items[0].value), (true, 7.0));
    let req = ExternalRequest {
        namespace: "prod".into(),
        metric: "queue_message_ready".into(),
        selector: LabelSelector::default(),
    };
    let err = external_metric(&snap, &backend, &req, now())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the server could not find the metric queue_message_ready for namespaces: no external rule discovered it; closest: queue_messages_ready"
    );
}

/// An external rule that maps no label to namespaces cannot build a namespaced query:
/// prometheus-adapter answers 500 "unable to fetch metrics", augur the same words, then why.
#[tokio::test]
async fn external_rule_without_a_namespace_label_keeps_the_adapter_wording() {
    let table = Arc::new(ResourceTable::builtin());
    let text = "externalRules:\n- seriesQuery: 'orphan_depth'\n  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>})'\n";
    let config =
        Arc::new(config::parse(text, "orphan.yaml", &table, UnknownResources::Reject).unwrap());
    let mut listings = HashMap::new();
    listings.insert(
        "orphan_depth".to_owned(),
        Listing::reduce(&[labels(&[("__name__", "orphan_depth")])], UNIX_EPOCH),
    );
    let snap = Snapshot::build(config, table, &listings, Some(UNIX_EPOCH));
    let req = ExternalRequest {
        namespace: "default".into(),
        metric: "orphan_depth".into(),
        selector: LabelSelector::default(),
    };
    let err = external_metric(&snap, &FakeBackend::new(), &req, now())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::QueryBuild(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "unable to fetch metrics: the query for external metric orphan_depth cannot be built: externalRules[0] (line 2) maps no series label to namespaces, so it cannot filter by namespace: add `resources.overrides.namespace: {resource: namespace}`, or set `resources.namespaced: false` for a cluster-wide metric"
    );
}
