//! Histories: incremental fetches, points placed by timestamp, gaps, outages and late
//! buckets.

use super::*;

#[tokio::test]
async fn history_is_extended_incrementally() {
    let (snap, fake, _, engine) = steady_pods(false).await;
    // The first fetch covers the whole history: 60 buckets ending now.
    assert_eq!(range_calls(&fake), vec![(NOW - 59 * 60, NOW)]);

    let mut extended = vec![9.0; 60];
    extended.push(12.0);
    fake.set_range(sum_pods("default"), vec![range(&[], NOW + 60, &extended)]);
    engine.round(t(NOW + 30)).await; // nothing due yet
    engine.round(t(NOW + 60)).await;
    engine.round(t(NOW + 90)).await; // nothing due
    extended.extend([13.0, 14.0]);
    fake.set_range(sum_pods("default"), vec![range(&[], NOW + 180, &extended)]);
    engine.round(t(NOW + 185)).await; // one step missed: both buckets at once
    assert_eq!(
        range_calls(&fake),
        vec![
            (NOW - 59 * 60, NOW),
            // Each refresh asks again for the newest bucket it has (REFETCH_STEPS).
            (NOW, NOW + 60),
            (NOW + 60, NOW + 180)
        ]
    );
    // Persistence now forecasts the newest bucket: 14 × 1.5 = 21 → 7 per pod.
    assert_eq!(
        serve_pods(&engine, &snap, "default", NOW + 185).await[0].1,
        7.0
    );
    let key = engine.targets()[0].key().clone();
    let frame = engine.target(&key).unwrap().frame().unwrap();
    assert_eq!(frame.origin, NOW + 180);
    assert_eq!(frame.series.get("sum"), Some(&Ok(14.0)));
}

#[tokio::test]
async fn an_infinite_sample_in_the_history_is_a_missing_bucket() {
    let config = CONFIG.replace(
        "forecast: {model: persistence, horizon: 5m, history: 1h}",
        "forecast: {model: linear, horizon: 10m, history: 3d}",
    );
    let snap = snapshot(&config, "t.yaml");
    let fake = fake();
    fake.set_query(
        QUEUES_LIVE,
        QueryResult::Vector(vec![sample(&[("queue", "a")], 1.0)]),
    );
    // Three days of a daily cycle, with one ratio over zero (+Inf from Prometheus) a day
    // and a half ago, inside the fit's window.
    let n = 3 * 1440;
    let mut values: Vec<f64> = (0..n)
        .map(|i| 10.0 + 5.0 * (std::f64::consts::TAU * i as f64 / 1440.0).sin())
        .collect();
    values[n / 2] = f64::INFINITY;
    fake.set_range(QUEUES_LIVE, vec![range(&[("queue", "a")], NOW, &values)]);
    let metrics = Arc::new(Metrics::new());
    // A three-day linear fit takes ~10 s in the dev profile on a loaded 2-core machine: wait
    // for it, so the test checks the fit and not the machine's speed.
    let options = EngineOptions {
        first_wait: Duration::from_secs(120),
        ..options()
    };
    let engine = Engine::new(fake.clone(), metrics.clone(), options);
    // The forecast of the next 10 minutes' max, as without the infinity (about 10.2); with
    // it, the fit would be NaN and the twin would serve its live 1 (model_error).
    let served = serve_queues(&engine, &snap, NOW).await;
    assert_eq!(served.len(), 1);
    assert!((served[0].1 - 10.2).abs() < 0.1, "{served:?}");
    let external_served = r#"augur_forecast_served_total{rule="externalRules[0]",metric="queue_messages_ready_forecast",source="forecast",reason=""} "#;
    assert_eq!(metric(&metrics, external_served), Some(1.0));
}

#[tokio::test]
async fn points_out_of_range_order_or_grid_are_placed_by_their_timestamp() {
    // 60 points ending NOW, the newest 20, given newest first, with millisecond jitter,
    // duplicates, points before the history and after the range, and points off the grid.
    let mut points: Vec<(f64, f64)> = points(NOW, &[10.0; 60]);
    points[59].1 = 20.0;
    points.reverse();
    for p in &mut points {
        p.0 += 0.001;
    }
    points.extend([
        ((NOW - 60) as f64, 10.0),
        ((NOW - 7200) as f64, 999.0),
        ((NOW + 60) as f64, 999.0),
        ((NOW + 30) as f64, 999.0),
        ((NOW - 30) as f64, 999.0),
        (NOW as f64 - 0.4, 20.0),
    ]);
    let (served, _) = serve_queue_points(points).await;
    assert_eq!(served, vec![(r#"{queue="a"}"#.to_owned(), 20.0)]);
}

#[tokio::test]
async fn absurd_timestamps_are_ignored_without_a_panic() {
    let mut points = points(NOW, &[10.0; 60]);
    points.extend([
        (-1e300, 999.0),
        (f64::MIN, 999.0),
        (1e300, 999.0),
        (f64::MAX, 999.0),
        (-0.0, 999.0),
    ]);
    let (served, metrics) = serve_queue_points(points).await;
    assert_eq!(served, vec![(r#"{queue="a"}"#.to_owned(), 10.0)]);
    let external_served = r#"augur_forecast_served_total{rule="externalRules[0]",metric="queue_messages_ready_forecast",source="forecast",reason=""} "#;
    assert_eq!(metric(&metrics, external_served), Some(1.0));
}

#[tokio::test]
async fn after_an_outage_longer_than_the_history_only_the_history_is_fetched() {
    let (snap, fake, _, engine) = steady_pods(true).await;
    // Prometheus is down for a day; every refresh fails, and requests are answered live.
    let day = 86_400;
    for at in (NOW + 180..NOW + day).step_by(300) {
        fake.fail_all(Some(BackendError::Api {
            error_type: "unavailable".into(),
            message: "down".into(),
        }));
        engine.round(t(at)).await;
        fake.fail_all(None);
        assert_eq!(serve_pods(&engine, &snap, "default", at).await, live());
    }
    // Back: the catch-up query asks for the history the target holds (one hour), not the
    // whole day missed, which a backend could refuse (or time out on) round after round.
    let back = NOW + day;
    fake.set_range(sum_pods("default"), vec![range(&[], back, &[12.0; 1500])]);
    engine.round(t(back)).await;
    assert_eq!(range_calls(&fake).last(), Some(&(back - 59 * 60, back)));
    assert_eq!(serve_pods(&engine, &snap, "default", back).await[0].1, 6.0);
    // The history buffers did not grow past the history and its trim slack.
    let target = engine.targets()[0].clone();
    let data = target.lock();
    let history = &data.series[0].history;
    assert_eq!(history.len(), 60);
    assert!(
        history.capacity() <= 60 + TRIM_SLACK,
        "{}",
        history.capacity()
    );
    assert_eq!(history.origin(), Some(back - 60));
}

#[tokio::test]
async fn a_target_whose_first_fetch_was_empty_gets_the_whole_history_once_there_is_data() {
    let snap = snapshot(CONFIG, "t.yaml");
    let fake = fake();
    fake.clip_ranges(true);
    // Thanos Query before it has discovered its stores answers every query empty (with a
    // warning): the first fetch holds no series, and requests are answered live.
    let (metrics, engine) = engine_over(&fake);
    assert_eq!(serve_pods(&engine, &snap, "default", NOW).await, live());
    assert_eq!(
        metric(&metrics, &served_line("live", "no_history")),
        Some(3.0)
    );
    // A step later the stores are there, with the last hour: the twin forecasts from it
    // rather than from the one point asked of an incremental refresh.
    fake.set_range(sum_pods("default"), vec![range(&[], NOW + 60, &[9.0; 60])]);
    engine.round(t(NOW + 60)).await;
    assert_eq!(
        range_calls(&fake).last(),
        Some(&(NOW + 60 - 59 * 60, NOW + 60))
    );
    assert_eq!(
        serve_pods(&engine, &snap, "default", NOW + 60).await[0].1,
        4.5
    );
    // Then incremental again.
    fake.set_range(sum_pods("default"), vec![range(&[], NOW + 120, &[9.0; 61])]);
    engine.round(t(NOW + 120)).await;
    assert_eq!(range_calls(&fake).last(), Some(&(NOW + 60, NOW + 120)));
}

#[tokio::test]
async fn a_bucket_that_lands_late_is_read_on_the_next_refresh() {
    let (snap, fake, metrics, engine) = steady_pods(true).await;
    // At NOW+60 the backend has nothing for the new bucket yet (remote-write lag).
    engine.round(t(NOW + 60)).await;
    // By NOW+120 both buckets are in; the refresh asks again for NOW+60 (the newest bucket
    // it had asked for), so it is filled and the last h+1 buckets have no gap.
    let mut later = vec![9.0; 60];
    later.extend([12.0, 14.0]);
    fake.set_range(sum_pods("default"), vec![range(&[], NOW + 120, &later)]);
    engine.round(t(NOW + 120)).await;
    assert_eq!(range_calls(&fake).last(), Some(&(NOW + 60, NOW + 120)));
    // Persistence: 14 × 1.5 = 21 → 7 per pod, not live (history_gap).
    assert_eq!(
        serve_pods(&engine, &snap, "default", NOW + 120).await[0].1,
        7.0
    );
    assert_eq!(metric(&metrics, &served_line("live", "history_gap")), None);
}
