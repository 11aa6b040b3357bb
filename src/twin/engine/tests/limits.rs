//! Limits: idle eviction, first refreshes a few at a time, bounded first waits, and the
//! series budget.

use super::*;

#[tokio::test]
async fn idle_targets_are_evicted_with_their_metrics() {
    let snap = snapshot(CONFIG, "t.yaml");
    let fake = fake();
    fake.set_range(sum_pods("a"), vec![range(&[], NOW, &[9.0; 60])]);
    fake.set_range(sum_pods("b"), vec![range(&[], NOW, &[9.0; 60])]);
    let (metrics, engine) = engine_over(&fake);
    serve_pods(&engine, &snap, "a", NOW).await;
    serve_pods(&engine, &snap, "b", NOW).await;
    let value_a = r#"augur_forecast_value{rule="rules[0]",metric="http_requests_per_second_forecast",namespace="a",object="sum"} "#;
    assert_eq!(metric(&metrics, value_a), Some(13.5));
    // b is requested again later; a is not. Idle window: 10 steps = 600 s.
    serve_pods(&engine, &snap, "b", NOW + 300).await;
    engine.evict_idle(t(NOW + 600));
    assert_eq!(engine.target_count(), 2);
    engine.evict_idle(t(NOW + 601));
    assert_eq!(engine.target_count(), 1);
    assert_eq!(engine.targets()[0].key().namespace, "b");
    assert_eq!(metric(&metrics, value_a), None);
    assert_eq!(metric(&metrics, "augur_forecast_targets "), Some(1.0));
    // A new request for a makes a new target.
    serve_pods(&engine, &snap, "a", NOW + 602).await;
    assert_eq!(engine.target_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_created_together_fit_a_few_at_a_time() {
    let fake = fake();
    let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let model: Arc<dyn Model> = Arc::new(SlowFit {
        in_flight: Arc::default(),
        most: most.clone(),
    });
    let factory: Arc<ModelFactory> = Arc::new(move |_: &ModelRef| Ok(model.clone()));
    let engine = Engine::with_models(fake.clone(), Arc::new(Metrics::new()), options(), factory);
    let spec = Arc::new(spec(ServeMode::Forecast, 0.0));
    let lookups = (0..6).map(|i| {
        let promql = sum_pods(&format!("ns-{i}"));
        fake.set_range(promql.clone(), vec![range(&[], NOW, &[i as f64 + 1.0; 60])]);
        let key = TargetKey {
            rule: "rules[0]".into(),
            metric: METRIC.into(),
            namespace: format!("ns-{i}"),
            promql,
            spec: fingerprint(&spec),
        };
        engine.lookup(key, spec.clone(), SeriesKind::PodSum, t(NOW))
    });
    let forecasts: Vec<Option<f64>> = futures::future::join_all(lookups)
        .await
        .into_iter()
        .map(|lookup| match lookup {
            Lookup::Frame(frame) => frame.series.get("sum").and_then(|r| r.ok()),
            Lookup::Fallback(_) => None,
        })
        .collect();
    // Every target got its first forecast (persistence: its last value)...
    assert_eq!(
        forecasts,
        vec![
            Some(1.0),
            Some(2.0),
            Some(3.0),
            Some(4.0),
            Some(5.0),
            Some(6.0)
        ]
    );
    // ...with at most one first fit per core (and at most --forecast-concurrency) at once.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let allowed = cores.clamp(1, options().concurrency);
    let most = most.load(std::sync::atomic::Ordering::SeqCst);
    assert!((1..=allowed).contains(&most), "{most} fits at once");
}

/// Lookups of `count` targets (`ns-0`.., or one target `ns-0` asked `count` times with
/// `same`), started together: each one's first forecast (persistence: 1), or None when it
/// served live, and why.
async fn first_lookups(
    engine: &Engine,
    fake: &FakeBackend,
    count: usize,
    same: bool,
) -> Vec<Result<f64, Reason>> {
    let spec = Arc::new(spec(ServeMode::Forecast, 0.0));
    let lookups = (0..count).map(|i| {
        let ns = format!("ns-{}", if same { 0 } else { i });
        let promql = sum_pods(&ns);
        fake.set_range(promql.clone(), vec![range(&[], NOW, &[1.0; 60])]);
        let key = TargetKey {
            rule: "rules[0]".into(),
            metric: METRIC.into(),
            namespace: ns,
            promql,
            spec: fingerprint(&spec),
        };
        engine.lookup(key, spec.clone(), SeriesKind::PodSum, t(NOW))
    });
    futures::future::join_all(lookups)
        .await
        .into_iter()
        .map(|lookup| match lookup {
            Lookup::Frame(frame) => Ok(frame.series["sum"].unwrap()),
            Lookup::Fallback(reason) => Err(reason),
        })
        .collect()
}

#[tokio::test]
async fn many_new_targets_at_once_serve_live_without_waiting() {
    let fake = fake();
    let model: Arc<dyn Model> = Arc::new(SlowFit {
        in_flight: Arc::default(),
        most: Arc::default(),
    });
    let factory: Arc<ModelFactory> = Arc::new(move |_: &ModelRef| Ok(model.clone()));
    // One first fit at a time: past 8 first refreshes pending, a request does not wait
    // (a 30 s first wait: a request that waited would get its forecast).
    let one_at_a_time = EngineOptions {
        first_wait: Duration::from_secs(30),
        concurrency: 1,
        ..options()
    };
    let engine = Engine::with_models(
        fake.clone(),
        Arc::new(Metrics::new()),
        one_at_a_time,
        factory,
    );
    let got = first_lookups(&engine, &fake, 12, false).await;
    let mut want = vec![Ok(1.0); 8];
    want.extend([Err(Reason::WarmingUp); 4]);
    assert_eq!(got, want);
    // The four that did not wait are still fitted in the background.
    for _ in 0..100 {
        if engine.targets().iter().all(|t| t.frame().is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(engine.targets().iter().all(|t| t.frame().is_some()));
    assert_eq!(engine.target_count(), 12);

    // At most 64 requests wait at once, here for the first forecast of one new target.
    let fake_one = super::fake();
    let patient = EngineOptions {
        first_wait: Duration::from_secs(30),
        ..options()
    };
    let engine = Engine::new(fake_one.clone(), Arc::new(Metrics::new()), patient);
    let got = first_lookups(&engine, &fake_one, 70, true).await;
    let mut want = vec![Ok(1.0); 64];
    want.extend([Err(Reason::WarmingUp); 6]);
    assert_eq!(got, want);
}

#[tokio::test]
async fn series_beyond_the_budget_serve_live_until_evictions_make_room() {
    let snap = snapshot(CONFIG, "t.yaml");
    let fake = fake();
    fake.set_query(
        QUEUES_LIVE,
        QueryResult::Vector(vec![
            sample(&[("queue", "a")], 1.0),
            sample(&[("queue", "b")], 2.0),
            sample(&[("queue", "c")], 3.0),
        ]),
    );
    let history = |end: i64| {
        ["a", "b", "c"]
            .iter()
            .map(|q| range(&[("queue", q)], end, &[10.0; 60]))
            .collect::<Vec<_>>()
    };
    fake.set_range(QUEUES_LIVE, history(NOW));
    fake.set_range(sum_pods("default"), vec![range(&[], NOW, &[9.0; 60])]);
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::new(
        fake.clone(),
        metrics.clone(),
        EngineOptions {
            max_series: 2,
            ..options()
        },
    );
    // Two series take the budget and serve their forecast (10); the third its live 3.
    assert_eq!(
        serve_queues(&engine, &snap, NOW).await,
        vec![
            (r#"{queue="a"}"#.to_owned(), 10.0),
            (r#"{queue="b"}"#.to_owned(), 10.0),
            (r#"{queue="c"}"#.to_owned(), 3.0)
        ]
    );
    let external_served = |source: &str, reason: &str| {
        format!(
            r#"augur_forecast_served_total{{rule="externalRules[0]",metric="queue_messages_ready_forecast",source="{source}",reason="{reason}"}} "#
        )
    };
    assert_eq!(
        metric(&metrics, &external_served("live", "max_series")),
        Some(1.0)
    );
    assert_eq!(
        metric(&metrics, &external_served("forecast", "")),
        Some(2.0)
    );
    assert_eq!(metric(&metrics, "augur_forecast_series "), Some(2.0));
    assert_eq!(engine.series_count(), 2);

    // A Pods twin is a series too: no room, so it serves live (the sum has no history).
    assert_eq!(serve_pods(&engine, &snap, "default", NOW).await, live());
    assert_eq!(
        metric(&metrics, &served_line("live", "max_series")),
        Some(3.0)
    );
    assert_eq!(engine.target_count(), 2);

    // While there is no room, refreshes fetch only what is new.
    engine.round(t(NOW + 60)).await;
    assert_eq!(range_calls(&fake).last(), Some(&(NOW, NOW + 60)));
    assert_eq!(engine.series_count(), 2);

    // The external target goes idle and is evicted: its two series are given back, and the
    // pods target's next refresh asks for its whole hour again, so the sum joins with all
    // of it and is forecast at once.
    serve_pods(&engine, &snap, "default", NOW + 300).await;
    engine.evict_idle(t(NOW + 601));
    assert_eq!(engine.target_count(), 1);
    assert_eq!(engine.series_count(), 0);
    assert_eq!(metric(&metrics, "augur_forecast_series "), Some(0.0));
    let mut hour = vec![9.0; 50];
    hour.extend([12.0; 10]);
    fake.set_range(sum_pods("default"), vec![range(&[], NOW + 600, &hour)]);
    engine.round(t(NOW + 610)).await;
    assert_eq!(
        range_calls(&fake).last(),
        Some(&(NOW + 600 - 59 * 60, NOW + 600))
    );
    assert_eq!(engine.series_count(), 1);
    assert_eq!(metric(&metrics, "augur_forecast_series "), Some(1.0));
    // Persistence: 12 × 1.5 = 18 → 6 per pod.
    assert_eq!(
        serve_pods(&engine, &snap, "default", NOW + 610).await,
        vec![
            ("web-1".to_owned(), 6.0),
            ("web-2".to_owned(), 6.0),
            ("web-3".to_owned(), 6.0)
        ]
    );
    // The next refresh is incremental again.
    engine.round(t(NOW + 660)).await;
    assert_eq!(range_calls(&fake).last(), Some(&(NOW + 600, NOW + 660)));
}

#[tokio::test]
async fn a_series_gone_for_the_whole_history_gives_back_its_budget_and_gauges() {
    let (snap, fake, metrics, engine) = queue_a(vec![
        range(&[("queue", "a")], NOW, &[10.0; 60]),
        range(&[("queue", "b")], NOW, &[10.0; 60]),
    ]);
    serve_queues(&engine, &snap, NOW).await;
    assert_eq!(engine.series_count(), 2);
    // Two hours later only queue a answers: b has no value left in its 1-hour history.
    fake.set_range(
        QUEUES_LIVE,
        vec![range(&[("queue", "a")], NOW + 7200, &[10.0; 120])],
    );
    serve_queues(&engine, &snap, NOW + 7200).await;
    let gauge = |queue: &str| {
        format!(
            r#"augur_forecast_value{{rule="externalRules[0]",metric="queue_messages_ready_forecast",namespace="default",object="queue={queue}"}} "#
        )
    };
    assert_eq!(metric(&metrics, &gauge("b")), Some(10.0));
    engine.round(t(NOW + 7200)).await;
    assert_eq!(engine.series_count(), 1);
    assert_eq!(metric(&metrics, "augur_forecast_series "), Some(1.0));
    // Its gauges go with it; a's stay.
    assert_eq!(metric(&metrics, &gauge("b")), None);
    assert_eq!(metric(&metrics, &gauge("a")), Some(10.0));
}
