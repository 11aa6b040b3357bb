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
    let (snap, factory) = with_model(&config, Arc::new(Fixed("zero", ZeroFitted)));
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

/// Extrapolates the last three minutes' trend over the horizon and forecasts its maximum:
/// informative on a slow swing, wrong on noise; above 60 it breaks and says 0.
#[derive(Clone)]
struct TrendFitted;
impl Fitted for TrendFitted {
    fn predict(&self, history: &History) -> Result<Vec<f64>, ModelError> {
        let v = &history.values;
        let [.., before, _, _, last] = v[..] else {
            return Err(ModelError::TooShort {
                needed: 4,
                have: v.len(),
            });
        };
        if last > 60.0 {
            return Ok(vec![0.0]);
        }
        Ok(vec![last.max(last + (last - before) / 3.0 * 5.0).max(0.0)])
    }
}

/// Forecasts the mean of the last 20 minutes.
#[derive(Clone)]
struct MeanFitted;
impl Fitted for MeanFitted {
    fn predict(&self, history: &History) -> Result<Vec<f64>, ModelError> {
        let v = &history.values;
        let recent = &v[v.len().saturating_sub(20)..];
        Ok(vec![
            recent.iter().sum::<f64>() / recent.len().max(1) as f64,
        ])
    }
}

/// What the engine served at each origin of `values` from `first` on (the last 91 minutes
/// fetched minute by minute; `NaN`: live), with `model` fitted, a 5-minute max target and a
/// 10-minute check, and what `forecast::serve::replay`, what `augur backtest` runs, gives for
/// the same origins; with the model's forecasts there.
async fn engine_and_replay(
    values: Vec<f64>,
    first: usize,
    model: Arc<dyn Model>,
    fitted: &dyn Fitted,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    use crate::forecast::serve;
    let n = values.len();
    // Sample i (at its bucket's end) is at NOW − (first − i)·60: the first round sees 60.
    let sample_end = |i: usize| NOW + (i as i64 - first as i64) * 60;
    let config = CONFIG.replace(
        "{model: persistence, horizon: 5m, step: 1m, history: 1h, headroom: 0.5, fallbackWindow: 0}",
        "{model: persistence, horizon: 5m, step: 1m, history: 3d, serve: forecast, fallbackWindow: 10m}",
    );
    let (snap, factory) = with_model(&config, model);
    let fake = fake();
    fake.clip_ranges(true);
    fake.set_range(
        sum_pods("default"),
        vec![range(&[], sample_end(n - 1), &values)],
    );
    let engine = Engine::with_models(fake.clone(), Arc::new(Metrics::new()), options(), factory);
    let mut engine_served = Vec::new();
    for origin in first..n {
        let now = sample_end(origin);
        if origin > first {
            engine.round(t(now)).await;
        }
        let pods = serve_pods(&engine, &snap, "default", now).await;
        engine_served.push(if pods == live() {
            f64::NAN
        } else {
            pods.iter().map(|(_, v)| v).sum()
        });
    }

    let history = History::new(sample_end(0) - 60, 60, values);
    let target = Target::Max(5);
    let forecasts: Vec<f64> = (first..n)
        .map(|o| fitted.predict(&history.prefix(o + 1)).unwrap()[0])
        .collect();
    let warm = serve::warm_start(fitted, history.prefix(first + 1), target, 0, 10);
    let replayed = serve::replay(&history, first, target, &forecasts, 10, &warm);
    assert_eq!(engine_served.len(), replayed.len());
    for (k, (e, r)) in engine_served.iter().zip(&replayed).enumerate() {
        assert!(
            (e.is_nan() && r.is_nan()) || (e - r).abs() < 1e-9,
            "origin {}: engine {e}, backtest {r}",
            first + k
        );
    }
    (engine_served, replayed, forecasts)
}

#[tokio::test]
async fn the_engine_serves_what_the_backtest_replays() {
    // Two days and a half hours of a slow swing with noise and a jump 100 minutes into the
    // last 150 (a shift of level; after it the model says 0), whole numbers (exact in the
    // engine's f32 history). The engine serves the trend model's 5-minute max, shrunk toward
    // the origin's value by the check, or live after the shift; the backtest's replay gives
    // the same value at every origin.
    let n = 2 * 1440 + 150;
    let jump = 2 * 1440 + 100;
    let values: Vec<f64> = (0..n)
        .map(|i| {
            let noise = ((i * 7919) % 13) as f64 - 6.0;
            let step = if i >= jump { 60.0 } else { 0.0 };
            (30.0 + 12.0 * (i as f64 / 9.0).sin() + noise + step).round()
        })
        .collect();
    let first = 2 * 1440 + 59;
    let (_, replayed, forecasts) = engine_and_replay(
        values,
        first,
        Arc::new(Fixed("trend", TrendFitted)),
        &TrendFitted,
    )
    .await;
    // The shift showed on the jump's third bucket: live from there until 5 forecasts made
    // since came due (5 minutes each), then live for the weight (the model's 0s).
    assert!(replayed[jump + 1 - first].is_finite());
    assert!(replayed[jump + 2 - first..].iter().all(|v| v.is_nan()));
    // The check did something: some forecasts served shrunk, some switched to live.
    let shrunk = (replayed.iter().zip(&forecasts))
        .filter(|(r, f)| r.is_finite() && (*r - *f).abs() > 1e-9)
        .count();
    let live_served = replayed.iter().filter(|r| r.is_nan()).count();
    assert!(
        shrunk > 10 && live_served > 0,
        "shrunk {shrunk}, live {live_served}"
    );
}

#[tokio::test]
async fn the_engine_serves_0_where_the_backtest_does_on_a_series_mostly_at_0() {
    // A cron job: 0 req/s but for a 2-minute run of 4 every 20 minutes, for two days and a
    // half. The model forecasts the mean of the last 20 minutes: 0.4 (a tenth of a run) from
    // a run to the next, below half the series' smallest value above 0 (4).
    let n = 2 * 1440 + 150;
    let values: Vec<f64> = (0..n).map(|i| if i % 20 < 2 { 4.0 } else { 0.0 }).collect();
    let first = 2 * 1440 + 59;
    let (engine_served, replayed, forecasts) = engine_and_replay(
        values.clone(),
        first,
        Arc::new(Fixed("mean", MeanFitted)),
        &MeanFitted,
    )
    .await;
    // Where the live value is 0 and the twin serves its forecast (not live for a weight of
    // 0), it serves 0, not the forecast of 0.4 above it.
    let at_zero: Vec<usize> = (first..n)
        .filter(|&o| values[o] == 0.0 && replayed[o - first].is_finite())
        .collect();
    assert!(at_zero.len() > 70, "{}", at_zero.len());
    for &o in &at_zero {
        assert_eq!(forecasts[o - first], 0.4, "origin {o}");
        assert_eq!(engine_served[o - first], 0.0, "origin {o}");
    }
    // During a run the forecast is served as the check weighs it (nothing is rounded).
    assert!(
        (first..n)
            .filter(|&o| values[o] > 0.0)
            .all(|o| replayed[o - first].is_nan() || replayed[o - first] > 0.0)
    );
}
