//! Serving: values per metric type, the Pods sum spread over the pods, batched prediction
//! with a shared model, errors that name the twin, and the dashboard's metrics.

use super::*;

#[test]
fn pods_get_the_combined_sum_divided_by_their_count() {
    let s = spec(ServeMode::Max, 0.5);
    // forecast 5 → 7.5 > live 6: every pod gets 7.5 / 3, so the HPA average × 3 = 7.5.
    assert_eq!(pod_values(&s, &[1.0, 2.0, 3.0], Some(5.0)), vec![2.5; 3]);
    // forecast 3 → 4.5 < live 6: the live sum, spread evenly.
    assert_eq!(pod_values(&s, &[1.0, 2.0, 3.0], Some(3.0)), vec![2.0; 3]);
    let f = spec(ServeMode::Forecast, 0.5);
    assert_eq!(pod_values(&f, &[1.0, 2.0, 3.0], Some(3.0)), vec![1.5; 3]);
    // No forecast: live values untouched; no pods: nothing.
    assert_eq!(pod_values(&s, &[1.0, 4.0], None), vec![1.0, 4.0]);
    assert!(pod_values(&s, &[], Some(9.0)).is_empty());
    // HPA: ceil(sum of served / target) = ceil(forecast·(1+h) / target).
    let served: f64 = pod_values(&s, &[0.4, 0.4, 0.4, 0.4], Some(10.0))
        .iter()
        .sum();
    assert_close(served, 15.0);
    assert_close(served_value(&s, 7.0, 2.0), 7.0);
    assert_close(served_value(&f, 7.0, 2.0), 3.0);
}

#[tokio::test]
async fn twins_are_discovered_and_served_for_pods_objects_and_external() {
    let snap = snapshot(CONFIG, "t.yaml");
    let custom = snap.custom_resources();
    for entry in [
        ("pods/http_requests_per_second", true),
        ("pods/http_requests_per_second_forecast", true),
        ("services/http_requests_per_second_forecast", true),
        ("namespaces/http_requests_per_second_forecast", false),
    ] {
        assert!(
            custom.contains(&(entry.0.to_owned(), entry.1)),
            "{entry:?} not in {custom:?}"
        );
    }
    assert_eq!(
        snap.external_metrics(),
        vec!["queue_messages_ready", "queue_messages_ready_forecast"]
    );

    let fake = fake();
    let svc_live =
        r#"sum(rate(http_requests_total{namespace="default",service="web"}[2m])) by (service)"#;
    fake.set_range(sum_pods("default"), vec![range(&[], NOW, &[9.0; 60])]);
    fake.set_query(
        svc_live,
        QueryResult::Vector(vec![sample(&[("service", "web")], 6.0)]),
    );
    fake.set_range(
        svc_live,
        vec![range(&[("service", "web")], NOW, &[8.0; 60])],
    );
    fake.set_query(
        QUEUES_LIVE,
        QueryResult::Vector(vec![
            sample(&[("queue", "orders")], 50.0),
            sample(&[("queue", "payments")], 7.0),
        ]),
    );
    let ramp: Vec<f64> = (1..=60).map(f64::from).collect();
    fake.set_range(
        QUEUES_LIVE,
        vec![
            range(&[("queue", "orders")], NOW, &ramp),
            range(&[("queue", "payments")], NOW, &[10.0; 60]),
        ],
    );
    let (metrics, engine) = engine_over(&fake);

    // Pods: persistence forecasts the sum 9; 9 × 1.5 = 13.5 > live 6 → 4.5 per pod.
    let served = serve_pods(&engine, &snap, "default", NOW).await;
    assert_eq!(
        served,
        vec![
            ("web-1".to_owned(), 4.5),
            ("web-2".to_owned(), 4.5),
            ("web-3".to_owned(), 4.5)
        ]
    );
    // Object: live 6, forecast 8 × 1.5 = 12.
    let request = CustomRequest {
        resource: "services".into(),
        name: ObjectName::Named("web".into()),
        ..pods_request("default")
    };
    assert_eq!(
        serve_custom(&engine, &snap, &request, NOW).await,
        vec![("web".to_owned(), 12.0)]
    );
    // External: orders max(50, 60) = 60; payments max(7, 10) = 10 (no headroom).
    assert_eq!(
        serve_queues(&engine, &snap, NOW).await,
        vec![
            (r#"{queue="orders"}"#.to_owned(), 60.0),
            (r#"{queue="payments"}"#.to_owned(), 10.0)
        ]
    );

    // The twin's own queries: sum() for pods, the rule's query otherwise.
    let ranges: Vec<String> = fake
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::QueryRange { promql, .. } => Some(promql),
            _ => None,
        })
        .collect();
    assert_eq!(
        ranges,
        vec![
            sum_pods("default"),
            svc_live.to_owned(),
            QUEUES_LIVE.to_owned()
        ]
    );

    // /metrics: forecast, live, realised and accuracy per series.
    let pods = r#"{rule="rules[0]",metric="http_requests_per_second_forecast",namespace="default",object="sum"} "#;
    assert_eq!(
        metric(&metrics, &format!("augur_forecast_value{pods}")),
        Some(13.5)
    );
    assert_eq!(
        metric(&metrics, &format!("augur_forecast_origin_value{pods}")),
        Some(9.0)
    );
    assert_eq!(
        metric(&metrics, &format!("augur_forecast_realised_value{pods}")),
        Some(9.0)
    );
    assert_eq!(metric(&metrics, &served_line("forecast", "")), Some(4.0));
    // Orders: persistence on a ramp of +1 per step misses the 5-step max by 5 every time,
    // exactly as persistence does; the warm start replays the 55 origins in the history.
    let orders = r#"{rule="externalRules[0]",metric="queue_messages_ready_forecast",namespace="default",object="queue=orders"} "#;
    assert_eq!(
        metric(&metrics, &format!("augur_forecast_mae{orders}")),
        Some(5.0)
    );
    assert_eq!(
        metric(&metrics, &format!("augur_forecast_persistence_mae{orders}")),
        Some(5.0)
    );
    // The tracker keeps each relative error as f32 (7 significant digits).
    let mape: f64 = (0..55)
        .map(|o| f64::from((5.0 / f64::from(o + 6)) as f32) * 100.0)
        .sum::<f64>()
        / 55.0;
    assert_close(
        metric(&metrics, &format!("augur_forecast_mape{orders}")).unwrap(),
        mape,
    );
    assert_eq!(
        metric(&metrics, &format!("augur_forecast_realised_value{orders}")),
        Some(60.0)
    );
    assert_eq!(metric(&metrics, "augur_forecast_targets "), Some(3.0));
}

#[tokio::test]
async fn a_shared_pretrained_model_predicts_all_series_in_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.onnx"), b"weights").unwrap();
    let config = CONFIG.replace(
        "model: persistence, horizon: 5m, step",
        "model: m.onnx, horizon: 5m, step",
    );
    let batches = Arc::new(Mutex::new(Vec::new()));
    let model: Arc<dyn Model> = Arc::new(Counting(batches.clone()));
    let factory: Arc<ModelFactory> = Arc::new(move |m: &ModelRef| {
        assert!(matches!(m, ModelRef::Onnx(_)), "{m:?}");
        Ok(model.clone())
    });
    let snap = snapshot(
        &config,
        &dir.path().join("rules.yaml").display().to_string(),
    );
    let fake = fake();
    for ns in ["a", "b", "c"] {
        fake.set_range(sum_pods(ns), vec![range(&[], NOW + 60, &[9.0; 61])]);
    }
    let engine = Engine::with_models(fake.clone(), Arc::new(Metrics::new()), options(), factory);
    for ns in ["a", "b", "c"] {
        assert_eq!(serve_pods(&engine, &snap, ns, NOW).await[0].1, 4.5);
    }
    assert_eq!(*batches.lock().unwrap(), vec![1, 1, 1]);
    engine.round(t(NOW + 60)).await;
    assert_eq!(*batches.lock().unwrap(), vec![1, 1, 1, 3]);
}

#[tokio::test]
async fn a_twin_request_the_live_metric_cannot_answer_names_the_twin() {
    let snap = snapshot(CONFIG, "t.yaml");
    let empty =
        Arc::new(FakeBackend::new().with_query_fn(|_, _| Ok(QueryResult::Vector(Vec::new()))));
    let engine = Engine::new(empty, Arc::new(Metrics::new()), options());
    let (_, twin) = snap.custom_twin("pods", true, METRIC).unwrap();
    let request = CustomRequest {
        name: ObjectName::Named("web-9".into()),
        ..pods_request("default")
    };
    let error = engine
        .custom_metric(&snap, &request, twin, None, t(NOW))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ProviderError::ObjectNotFound(_)),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        r#"the server could not find the metric http_requests_per_second for pods web-9 in namespace default: the query returned nothing (query: sum(rate(http_requests_total{namespace="default",pod="web-9"}[2m])) by (pod)) (the live metric of the forecast twin http_requests_per_second_forecast)"#
    );
}

#[test]
fn the_grafana_dashboard_queries_only_metrics_that_exist() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/grafana-forecast.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let families: Vec<String> = Metrics::new()
        .encode()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            exprs.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    assert!(exprs.len() >= 10, "{exprs:?}");
    let mut seen = Vec::new();
    for expr in &exprs {
        for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("augur_") {
                let known = families.iter().any(|f| {
                    word == f
                        || word.strip_prefix(f.as_str()).is_some_and(|rest| {
                            ["_total", "_bucket", "_count", "_sum"].contains(&rest)
                        })
                });
                assert!(
                    known,
                    "{word} in {expr:?} is not one of augur's metrics: {families:?}"
                );
                seen.push(word.to_owned());
            } else if word.starts_with("kube_") {
                assert!(
                    [
                        "kube_horizontalpodautoscaler_status_current_replicas",
                        "kube_horizontalpodautoscaler_status_desired_replicas"
                    ]
                    .contains(&word),
                    "{word}"
                );
            }
        }
    }
    for wanted in [
        "augur_forecast_value",
        "augur_forecast_origin_value",
        "augur_forecast_realised_value",
        "augur_forecast_mae",
        "augur_forecast_persistence_mae",
        "augur_forecast_mape",
        "augur_forecast_fallback",
    ] {
        assert!(seen.iter().any(|s| s == wanted), "{wanted} not charted");
    }
}
