//! Fallbacks: every reason a twin serves the live value, on its gauge and in /metrics.

use super::*;

#[tokio::test]
async fn every_fallback_serves_live_with_its_reason_in_metrics() {
    let snap = snapshot(CONFIG, "t.yaml");
    let fake = fake();
    let full = [9.0; 60];
    fake.set_range(sum_pods("short"), vec![range(&[], NOW, &[9.0; 3])]);
    let mut gappy = full;
    gappy[57] = f64::NAN;
    fake.set_range(sum_pods("gap"), vec![range(&[], NOW, &gappy)]);
    fake.fail_on(
        sum_pods("failing"),
        BackendError::Api {
            error_type: "execution".into(),
            message: "boom".into(),
        },
    );
    fake.set_range(sum_pods("stale"), vec![range(&[], NOW, &full)]);
    let (metrics, engine) = engine_over(&fake);

    assert_eq!(serve_pods(&engine, &snap, "short", NOW).await, live());
    assert_eq!(
        metric(&metrics, &fallback_line("short", "sum", "history_short")),
        Some(1.0)
    );
    assert_eq!(
        metric(&metrics, &served_line("live", "history_short")),
        Some(3.0)
    );

    assert_eq!(serve_pods(&engine, &snap, "gap", NOW).await, live());
    assert_eq!(
        metric(&metrics, &fallback_line("gap", "sum", "history_gap")),
        Some(1.0)
    );

    assert_eq!(serve_pods(&engine, &snap, "failing", NOW).await, live());
    assert_eq!(
        metric(&metrics, &served_line("live", "query_failed")),
        Some(3.0)
    );

    // Fresh at NOW, stale three steps later without a refresh.
    let fresh = serve_pods(&engine, &snap, "stale", NOW).await;
    assert_eq!(fresh[0].1, 4.5);
    assert_eq!(serve_pods(&engine, &snap, "stale", NOW + 180).await, live());
    assert_eq!(metric(&metrics, &served_line("live", "stale")), Some(3.0));

    // A series the history does not have: a second service answered live.
    let svc_live =
        r#"sum(rate(http_requests_total{namespace="default",service=~".+"}[2m])) by (service)"#;
    fake.set_query(
        svc_live,
        QueryResult::Vector(vec![
            sample(&[("service", "api")], 2.0),
            sample(&[("service", "web")], 6.0),
        ]),
    );
    fake.set_range(svc_live, vec![range(&[("service", "web")], NOW, &full)]);
    let request = CustomRequest {
        resource: "services".into(),
        ..pods_request("default")
    };
    assert_eq!(
        serve_custom(&engine, &snap, &request, NOW).await,
        vec![("api".to_owned(), 2.0), ("web".to_owned(), 13.5)]
    );
    assert_eq!(
        metric(&metrics, &served_line("live", "no_history")),
        Some(1.0)
    );

    // Recovery: the short history fills up, the fallback gauge goes away.
    fake.set_range(sum_pods("short"), vec![range(&[], NOW + 60, &[9.0; 61])]);
    engine.round(t(NOW + 60)).await;
    assert_eq!(
        serve_pods(&engine, &snap, "short", NOW + 60).await[0].1,
        4.5
    );
    assert_eq!(
        metric(&metrics, &fallback_line("short", "sum", "history_short")),
        None
    );
}

#[tokio::test]
async fn a_stale_forecast_is_on_the_fallback_gauge_until_refreshes_succeed_again() {
    let snap = snapshot(CONFIG, "t.yaml");
    let fake = fake();
    fake.set_range(sum_pods("stale"), vec![range(&[], NOW, &[9.0; 60])]);
    let (metrics, engine) = engine_over(&fake);
    let stale = fallback_line("stale", "sum", "stale");
    assert_eq!(serve_pods(&engine, &snap, "stale", NOW).await[0].1, 4.5);

    // Refreshes fail (requests are answered between rounds, when the live query works);
    // the forecast made at NOW is still served two steps later.
    let failing_round = |at: i64| {
        let (engine, fake) = (engine.clone(), fake.clone());
        async move {
            fake.fail_all(Some(BackendError::Api {
                error_type: "execution".into(),
                message: "boom".into(),
            }));
            engine.round(t(at)).await;
            fake.fail_all(None);
        }
    };
    for at in [NOW + 60, NOW + 120] {
        failing_round(at).await;
        assert_eq!(metric(&metrics, &stale), None, "at NOW + {}", at - NOW);
    }
    assert_eq!(
        serve_pods(&engine, &snap, "stale", NOW + 120).await[0].1,
        4.5
    );
    // Three steps on it is stale: served live, and the gauge says why.
    failing_round(NOW + 180).await;
    assert_eq!(serve_pods(&engine, &snap, "stale", NOW + 180).await, live());
    assert_eq!(metric(&metrics, &served_line("live", "stale")), Some(3.0));
    assert_eq!(metric(&metrics, &stale), Some(1.0));

    // Prometheus answers again: the forecast is served and the gauge goes away.
    fake.set_range(sum_pods("stale"), vec![range(&[], NOW + 240, &[9.0; 60])]);
    engine.round(t(NOW + 240)).await;
    assert_eq!(
        serve_pods(&engine, &snap, "stale", NOW + 240).await[0].1,
        4.5
    );
    assert_eq!(metric(&metrics, &stale), None);
}

#[tokio::test]
async fn model_errors_and_bad_accuracy_serve_live() {
    let fake = fake();
    fake.set_range(sum_pods("default"), vec![range(&[], NOW, &[9.0; 60])]);
    let (snap, factory) = with_model(CONFIG, Arc::new(Broken));
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::with_models(fake.clone(), metrics.clone(), options(), factory);
    assert_eq!(serve_pods(&engine, &snap, "default", NOW).await, live());
    assert_eq!(
        metric(&metrics, &fallback_line("default", "sum", "model_error")),
        Some(1.0)
    );

    // A model that always says 0 on a constant 9: the warm start over the 5-minute window
    // already shows it worse than persistence (MAE 9 vs 0).
    let config = CONFIG.replace("fallbackWindow: 0", "fallbackWindow: 5m");
    let (snap, factory) = with_model(&config, Arc::new(Zero));
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::with_models(fake.clone(), metrics.clone(), options(), factory);
    assert_eq!(serve_pods(&engine, &snap, "default", NOW).await, live());
    assert_eq!(
        metric(
            &metrics,
            &fallback_line("default", "sum", "worse_than_persistence")
        ),
        Some(1.0)
    );
    let labels = r#"{rule="rules[0]",metric="http_requests_per_second_forecast",namespace="default",object="sum"} "#;
    assert_eq!(
        metric(&metrics, &format!("augur_forecast_mae{labels}")),
        Some(9.0)
    );
    assert_eq!(
        metric(&metrics, &format!("augur_forecast_persistence_mae{labels}")),
        Some(0.0)
    );
    assert_eq!(
        metric(&metrics, &format!("augur_forecast_value{labels}")),
        Some(0.0)
    );
}

#[tokio::test]
async fn first_wait_and_max_targets_serve_live() {
    let snap = snapshot(CONFIG, "t.yaml");
    let fake = fake();
    fake.set_range(sum_pods("default"), vec![range(&[], NOW, &[9.0; 60])]);
    fake.set_range(sum_pods("other"), vec![range(&[], NOW, &[9.0; 60])]);
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::new(
        fake.clone(),
        metrics.clone(),
        EngineOptions {
            first_wait: Duration::from_millis(20),
            max_targets: 1,
            ..options()
        },
    );
    fake.set_delay(Duration::from_millis(300));
    assert_eq!(serve_pods(&engine, &snap, "default", NOW).await, live());
    assert_eq!(
        metric(&metrics, &served_line("live", "warming_up")),
        Some(3.0)
    );
    // The first refresh finishes in the background; the next request has the forecast.
    tokio::time::sleep(Duration::from_millis(400)).await;
    fake.set_delay(Duration::ZERO);
    assert_eq!(serve_pods(&engine, &snap, "default", NOW).await[0].1, 4.5);

    assert_eq!(serve_pods(&engine, &snap, "other", NOW).await, live());
    assert_eq!(
        metric(&metrics, &served_line("live", "max_targets")),
        Some(3.0)
    );
    assert_eq!(
        metric(&metrics, "augur_forecast_refused_targets_total "),
        Some(1.0)
    );
    assert_eq!(engine.target_count(), 1);
}

#[tokio::test]
async fn a_panic_while_computing_serves_live_at_once_with_a_reason() {
    let fake = fake();
    fake.set_range(sum_pods("default"), vec![range(&[], NOW, &[9.0; 60])]);
    let (snap, factory) = with_model(CONFIG, Arc::new(Panicking));
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::with_models(
        fake.clone(),
        metrics.clone(),
        EngineOptions {
            first_wait: Duration::from_secs(30),
            ..options()
        },
        factory,
    );
    // Not after waiting out --forecast-first-wait as warming_up, on every request.
    let started = std::time::Instant::now();
    assert_eq!(serve_pods(&engine, &snap, "default", NOW).await, live());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        metric(&metrics, &served_line("live", "model_error")),
        Some(3.0)
    );
    // And the target is refreshed again next step.
    fake.clear_calls();
    engine.round(t(NOW + 60)).await;
    assert_eq!(range_calls(&fake), vec![(NOW, NOW + 60)]);
}
