//! Unit tests of the `linear` model: known coefficients, losses, gaps, the design and
//! predict against the spec's formula.

// Dense linear algebra reads clearer with explicit indices.
#![allow(clippy::needless_range_loop)]

use super::design::design;
use super::*;
use crate::forecast::gaps::{RECENT_BUCKETS, check_recent_gap};
use crate::forecast::{Feature, Period};

/// Deterministic noise in [-1, 1).
fn noise(n: usize) -> Vec<f64> {
    let mut rng = fastrand::Rng::with_seed(0x2545_F491_4F6C_DD1D);
    (0..n).map(|_| rng.f64() * 2.0 - 1.0).collect()
}

/// `n` buckets of 10 ± 5 over a day of `day` buckets, plus [`noise`].
fn daily_wave(n: usize, day: usize) -> Vec<f64> {
    let e = noise(n);
    (0..n)
        .map(|i| 10.0 + 5.0 * (std::f64::consts::TAU * i as f64 / day as f64).sin() + e[i])
        .collect()
}

/// Raw-feature coefficients of target `j`: z − u0 = constant + Σ a_i f_i.
fn coefficients(spec: &LinearSpec, j: usize) -> (f64, Vec<f64>) {
    let a: Vec<f64> = spec.weights[j]
        .iter()
        .zip(&spec.scale)
        .map(|(w, s)| w / s)
        .collect();
    let constant = spec.bias[j] - a.iter().zip(&spec.mean).map(|(a, m)| a * m).sum::<f64>();
    (constant, a)
}

fn options(loss: Loss) -> LinearOptions {
    LinearOptions {
        transform: Some(Transform::Identity),
        log_scales: LogScales::all(vec![]),
        lags: 3,
        recent_windows: vec![],
        daily: false,
        weekly: false,
        seasonal_days: 0,
        seasonal_halfwidth: 0,
        penalties: vec![1e-9],
        loss,
        max_rows: 30_000,
        validation: Some(200),
    }
}

/// x[t+1] = x[t] + 0.5 (x[t] − x[t−1]) + 2 + noise: the change is 0.5 of the last change
/// plus 2.
fn momentum(n: usize, outliers: bool) -> Vec<f64> {
    let e = noise(n);
    let mut x = vec![100.0, 100.0];
    for t in 1..n - 1 {
        let mut shock = e[t];
        if outliers && t % 10 == 0 {
            shock += 40.0;
        }
        x.push(x[t] + 0.5 * (x[t] - x[t - 1]) + 2.0 + shock);
    }
    x
}

#[test]
fn a_gap_in_the_recent_buckets_refuses_the_forecast() {
    let with_missing = |missing: &[usize]| {
        let mut values = vec![1.0; 100];
        for &i in missing {
            values[i] = f64::NAN;
        }
        History::new(0, 60, values)
    };
    // 6 of the last 60 missing (10 %) is still forecast; 7 is not.
    assert!(check_recent_gap(&with_missing(&[40, 50, 60, 70, 80, 99]), RECENT_BUCKETS).is_ok());
    let refused = check_recent_gap(&with_missing(&[40, 50, 60, 70, 80, 90, 99]), RECENT_BUCKETS);
    assert!(
        matches!(&refused, Err(ModelError::Gap(why)) if why == "7 of the last 60 buckets are missing; forecasting again once the recent data is back"),
        "{refused:?}"
    );
    // Buckets older than the last 60 do not count; a short history checks all it has.
    assert!(check_recent_gap(&with_missing(&(0..40).collect::<Vec<_>>()), RECENT_BUCKETS).is_ok());
    assert!(matches!(
        check_recent_gap(&History::new(0, 60, vec![1.0, f64::NAN, 1.0]), RECENT_BUCKETS),
        Err(ModelError::Gap(why)) if why.starts_with("1 of the last 3 buckets")
    ));

    // A fitted model refuses through the same rule (and the engine serves live with
    // reason history_gap).
    let history = History::new(0, 60, momentum(2_000, false));
    let fitted = Linear {
        options: options(Loss::Absolute),
    }
    .fit(&history, &[Target::Point(1)])
    .unwrap_or_else(|e| panic!("{e}"));
    let mut recent = history.values.clone();
    recent[1_990..].iter_mut().for_each(|v| *v = f64::NAN);
    assert!(matches!(
        fitted.predict(&History::new(0, 60, recent)),
        Err(ModelError::Gap(_))
    ));
}

#[test]
fn seasonal_lags_in_a_gap_forecast_from_the_recent_lags_alone() {
    let (step, day) = (300, 288);
    let n = 10 * day;
    let values = daily_wave(n, day);
    let history = History::new(0, step, values.clone());
    let with_daily = LinearOptions {
        daily: true,
        ..options(Loss::Absolute)
    };
    let targets = [Target::Point(2)];
    let full = fit_linear(&history, &targets, &with_daily).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        full.features.contains(&Feature::Lag(day)),
        "{:?}",
        full.features
    );
    let fitted = Linear {
        options: with_daily.clone(),
    }
    .fit(&history, &targets)
    .unwrap_or_else(|e| panic!("{e}"));
    let origin = history.origin().unwrap_or_default();
    // With the day-ago buckets present: the full model.
    let window = filled_tail(&history, full.window()).unwrap_or_default();
    assert_eq!(
        fitted.predict(&history).unwrap_or_else(|e| panic!("{e}")),
        evaluate_spec(&full, &window, History::phase(origin))
    );

    // An outage a day before the origin: forecast by the same model without seasonal
    // features, fitted on the same history.
    let mut gapped = values;
    gapped[n - day - 20..n - day + 20]
        .iter_mut()
        .for_each(|v| *v = f64::NAN);
    let gapped = History::new(0, step, gapped);
    let without = fit_linear(
        &history,
        &targets,
        &LinearOptions {
            daily: false,
            transform: Some(full.transform),
            penalties: vec![RECENT_ONLY_PENALTY],
            max_rows: RECENT_ONLY_ROWS,
            ..with_daily.clone()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(without.lookback, 3);
    assert_eq!(without.floor, day);
    let window = filled_tail(&gapped, without.window()).unwrap_or_default();
    let want = evaluate_spec(&without, &window, History::phase(origin));
    assert_eq!(
        fitted.predict(&gapped).unwrap_or_else(|e| panic!("{e}")),
        want
    );
    // The full model on the forward-filled gap would have said something else.
    let filled = filled_tail(&gapped, full.window()).unwrap_or_default();
    assert_ne!(evaluate_spec(&full, &filled, History::phase(origin)), want);
}

#[test]
fn a_history_full_of_gaps_is_a_gap_error_not_too_short() {
    let mut values = momentum(2_000, false);
    for v in values.iter_mut().step_by(2) {
        *v = f64::NAN;
    }
    let refused = fit_linear(
        &History::new(0, 60, values),
        &[Target::Point(1)],
        &options(Loss::Absolute),
    );
    assert!(
        matches!(&refused, Err(ModelError::Gap(why)) if why == "1000 of 2000 buckets are missing: 0 training rows do not touch a gap, the model needs 20"),
        "{refused:?}"
    );
}

#[test]
fn least_squares_recovers_known_coefficients() {
    let history = History::new(0, 60, momentum(20_000, false));
    let spec = fit_linear(&history, &[Target::Point(1)], &options(Loss::Squared))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        spec.features,
        vec![Feature::Lag(0), Feature::Lag(1), Feature::Lag(2)]
    );
    assert_eq!(spec.lookback, 3);
    let (constant, a) = coefficients(&spec, 0);
    // z − u0 = 2 + 0.5 u0 − 0.5 u1.
    assert!((a[0] - 0.5).abs() < 0.03, "{a:?}");
    assert!((a[1] + 0.5).abs() < 0.03, "{a:?}");
    assert!(a[2].abs() < 0.03, "{a:?}");
    assert!((constant - 2.0).abs() < 0.1, "{constant}");
}

#[test]
fn max_quantile_loss_fits_max_targets_for_the_upper_quantile() {
    // The shock is uniform on [-1, 1): its median is 0, its 90th percentile 0.8. The
    // max over one bucket is the next value, so both targets see the same rows; only the
    // max target moves to the upper quantile.
    let history = History::new(0, 60, momentum(20_000, false));
    let spec = fit_linear(
        &history,
        &[Target::Point(1), Target::Max(1)],
        &options(Loss::MaxQuantile(90)),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (median, a) = coefficients(&spec, 0);
    let (upper, b) = coefficients(&spec, 1);
    assert!((median - 2.0).abs() < 0.1, "{median}");
    assert!((upper - 2.8).abs() < 0.1, "{upper}");
    for coefficients in [&a, &b] {
        assert!((coefficients[0] - 0.5).abs() < 0.05, "{coefficients:?}");
        assert!((coefficients[1] + 0.5).abs() < 0.05, "{coefficients:?}");
    }
    let model = super::super::build("linear-q90").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(model.name(), "linear-q90");
}

#[test]
fn absolute_loss_ignores_outliers_that_bias_least_squares() {
    // One shock in ten is +40: the mean change moves by ~4, the median barely.
    let history = History::new(0, 60, momentum(4000, true));
    let fit = |loss| {
        let spec = fit_linear(&history, &[Target::Point(1)], &options(loss))
            .unwrap_or_else(|e| panic!("{e}"));
        coefficients(&spec, 0)
    };
    let (median, a) = fit(Loss::Absolute);
    assert!(
        (a[0] - 0.5).abs() < 0.05 && (a[1] + 0.5).abs() < 0.05,
        "{a:?}"
    );
    assert!((median - 2.0).abs() < 0.5, "{median}");
    let (mean, _) = fit(Loss::Squared);
    assert!(mean > 4.0, "{mean}");
}

#[test]
fn predict_is_evaluate_spec_on_the_filled_window() {
    let mut values = momentum(3000, false);
    values[2998] = f64::NAN;
    let history = History::new(1_704_110_400, 60, values);
    let targets = [Target::Point(2), Target::Max(3)];
    let fitted = Linear {
        options: LinearOptions {
            transform: Some(Transform::LOG1P),
            ..options(Loss::Squared)
        },
    }
    .fit(&history, &targets)
    .unwrap_or_else(|e| panic!("{e}"));
    let forecast = fitted.predict(&history).unwrap_or_else(|e| panic!("{e}"));
    let n = history.len();
    let window = [
        history.values[n - 3],
        history.values[n - 3],
        history.values[n - 1],
    ];
    let spec = fit_linear(
        &history,
        &targets,
        &LinearOptions {
            transform: Some(Transform::LOG1P),
            ..options(Loss::Squared)
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let origin = history.origin().unwrap_or_default();
    assert_eq!(
        forecast,
        evaluate_spec(&spec, &window, History::phase(origin))
    );
    // The formula by hand.
    let u: Vec<f64> = window.iter().rev().map(|v| v.ln_1p()).collect();
    for j in 0..2 {
        let mut z = u[0] + spec.bias[j];
        for i in 0..3 {
            z += spec.weights[j][i] * (u[i] - spec.mean[i]) / spec.scale[i];
        }
        // The same formula summed in another order: equal to the last few bits.
        let by_hand = z.exp_m1().max(0.0);
        assert!(
            (forecast[j] - by_hand).abs() <= 1e-12 * by_hand.abs(),
            "{} vs {by_hand}",
            forecast[j]
        );
    }
    assert!(evaluate_spec(&spec, &window[1..], History::phase(origin))[0].is_nan());
}

#[test]
fn daily_features_appear_when_the_history_allows() {
    // Hourly buckets, 30 days.
    let history = History::new(0, 3600, vec![1.0; 720]);
    let design = design(
        history.len(),
        3600,
        &[Target::Point(2)],
        &LinearOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for feature in [
        Feature::Lag(20),
        Feature::Lag(24),
        Feature::WindowMax { from: 22, to: 23 },
        Feature::Lag(7 * 24 - 2),
        Feature::Sin {
            period: Period::Week,
            harmonic: 1,
        },
    ] {
        assert!(design.features.contains(&feature), "{feature:?}");
    }
    assert_eq!(design.lookback, 7 * 24 + 1);
}

#[test]
fn an_infinite_sample_is_a_gap_not_a_forecast_of_zero() {
    // Three days of a daily cycle at 1 minute; one +Inf sample (a ratio over zero) in
    // the middle of the fit's window.
    let n = 3 * 1440;
    let values: Vec<f64> = (0..n)
        .map(|i| 10.0 + 5.0 * (std::f64::consts::TAU * i as f64 / 1440.0).sin())
        .collect();
    let forecast = |values: Vec<f64>| {
        let history = History::new(0, 60, values);
        Linear::default()
            .fit(&history, &[Target::Max(10)])
            .and_then(|fitted| fitted.predict(&history))
            .unwrap_or_else(|e| panic!("{e}"))[0]
    };
    let clean = forecast(values.clone());
    assert!((clean - 10.23).abs() < 0.05, "{clean}");
    // Raw, the infinity poisons the fit: the forecast is NaN, which the engine refuses
    // (model_error), not 0 (`f64::max(NaN, 0)`), which it would serve.
    let mut raw = values.clone();
    raw[n / 2] = f64::INFINITY;
    assert!(forecast(raw.clone()).is_nan());
    // As the engine, `augur train` and `augur backtest` store it: a missing bucket.
    let stored: Vec<f64> = raw.into_iter().map(crate::forecast::bucket_value).collect();
    let gap = forecast(stored);
    assert!((gap - clean).abs() < 1e-3, "{gap} vs {clean}");
}

#[test]
fn a_forecast_does_not_fall_below_the_lowest_value_of_the_last_day() {
    // Fitted where changes persist: a fall is extrapolated.
    let history = History::new(1_704_110_400, 60, momentum(3000, false));
    let targets = [Target::Point(2), Target::Max(3)];
    let fitted = Linear {
        options: options(Loss::Squared),
    }
    .fit(&history, &targets)
    .unwrap_or_else(|e| panic!("{e}"));
    let spec =
        fit_linear(&history, &targets, &options(Loss::Squared)).unwrap_or_else(|e| panic!("{e}"));
    // A day at 100 or more, then a steep fall to 40: the model forecasts it going on.
    let falling = |earlier_low: Option<f64>| {
        let mut values = vec![100.0; 2000];
        values.extend([100.0, 80.0, 60.0, 40.0]);
        if let Some(low) = earlier_low {
            values[2000 - 600] = low;
        }
        History::new(0, 60, values)
    };
    // The spec carries the floor: a day, at most the history fitted on.
    assert_eq!(spec.floor, 1440);
    let unfloored = LinearSpec {
        floor: 0,
        ..spec.clone()
    };
    let window = [80.0, 60.0, 40.0];
    let unfloored = evaluate_spec(&unfloored, &window, History::phase(2003 * 60));
    assert_eq!(
        evaluate_spec(&spec, &window, History::phase(2003 * 60))[0],
        40.0
    );
    assert!(unfloored[0] < 35.0, "{unfloored:?}");
    let floored = fitted
        .predict(&falling(None))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(floored[0], 40.0, "{floored:?}");
    assert!(floored[1] >= 40.0, "{floored:?}");
    // A lower value 10 hours ago lowers the floor to it; one more than a day ago does not.
    let lower = fitted
        .predict(&falling(Some(35.0)))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(lower[0], 35.0f64.max(unfloored[0]), "{lower:?}");
    let mut old = falling(None);
    old.values[100] = 1.0;
    let old = fitted.predict(&old).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(old[0], 40.0, "{old:?}");
    // The engine predicts from the last `lookback()` buckets alone: they hold the day.
    let lookback = fitted.lookback().unwrap_or(0);
    assert_eq!(lookback, 1440);
    let full = falling(Some(35.0));
    let cut = full.len() - lookback;
    let tail = History::new(
        full.start + cut as i64 * 60,
        60,
        full.values[cut..].to_vec(),
    );
    assert_eq!(fitted.predict(&tail), Ok(lower));
}

#[test]
fn the_forecast_does_not_depend_on_the_metric_unit() {
    // The same traffic in req/s, req/ms and req/h: every forecast is the same, in that
    // unit. The log transform's scale follows the history's mean (a fixed `ln(1 + x)` is
    // nearly linear on a load of 0.01 and nearly a log on a load of 10,000), and the
    // transform chosen on the validation days is the same for all three.
    let (step, day) = (300, 288);
    let n = 4 * day;
    let e = noise(n);
    let values: Vec<f64> = (0..n)
        .map(|i| {
            // Daily swings of e^±1.5 and noise in proportion (multiplicative traffic).
            let daily = 1.5 * (std::f64::consts::TAU * i as f64 / day as f64).sin();
            (2.0 + daily + 0.2 * e[i]).exp()
        })
        .collect();
    let targets = [Target::Point(2), Target::Max(2)];
    let forecast = |unit: f64| {
        let history = History::new(0, step, values.iter().map(|v| v * unit).collect());
        let spec = fit_linear(&history, &targets, &LinearOptions::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let fitted = Linear::default()
            .fit(&history, &targets)
            .unwrap_or_else(|e| panic!("{e}"));
        let forecast = fitted.predict(&history).unwrap_or_else(|e| panic!("{e}"));
        (
            spec.transform,
            forecast.iter().map(|f| f / unit).collect::<Vec<_>>(),
        )
    };
    let (transform, want) = forecast(1.0);
    let Transform::Log1p { scale } = transform else {
        panic!("{transform:?}: this multiplicative series should be fitted in logs");
    };
    // 5 % of the history's mean.
    let mean = values.iter().sum::<f64>() / n as f64;
    assert!(
        (scale - 0.05 * mean).abs() < 1e-9 * mean,
        "{scale} against {mean}"
    );
    for unit in [1e-3, 3_600.0, 1e-200, 1e200] {
        let (other, got) = forecast(unit);
        assert!(
            matches!(other, Transform::Log1p { scale: s } if (s / unit - scale).abs() < 1e-9 * scale),
            "unit {unit}: {other:?}"
        );
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g - w).abs() < 1e-6 * w.abs(),
                "unit {unit}: {got:?} against {want:?}"
            );
        }
    }
}

#[test]
fn loads_near_the_limits_of_f64_fit_or_fail_cleanly() {
    // The identity fit of one series in units from 1e-310 to 1e300: never a panic or a
    // NaN. (A log scale that leaves the normal range is skipped; fit.rs.)
    let (step, day) = (300, 288);
    let n = 3 * day;
    let shape = daily_wave(n, day);
    let targets = [Target::Point(2)];
    let forecast = |unit: f64| {
        let history = History::new(0, step, shape.iter().map(|v| v * unit).collect());
        // The identity, as a history the log does not suit would choose; every threshold of
        // the fit then sees the values in their unit.
        let fitted = Linear {
            options: LinearOptions {
                transform: Some(Transform::Identity),
                ..LinearOptions::default()
            },
        }
        .fit(&history, &targets)
        .unwrap_or_else(|e| panic!("unit {unit}: {e}"));
        let forecast = fitted
            .predict(&history)
            .unwrap_or_else(|e| panic!("unit {unit}: {e}"));
        forecast[0] / unit
    };
    let want = forecast(1.0);
    assert!((3.0..=17.0).contains(&want), "{want}");
    // The same forecast while squares of the values stay within f64 (no threshold of the
    // fit is absolute)...
    for unit in [1e-100, 1e100] {
        let got = forecast(unit);
        assert!(
            (got - want).abs() < 1e-6 * want,
            "unit {unit}: {got} in units of the shape, {want} at unit 1"
        );
    }
    // ... and beyond that (variances underflow or overflow) still a finite forecast of the
    // shape's size.
    for unit in [1e-300, 1e-310, 1e300] {
        let got = forecast(unit);
        assert!((3.0..=17.0).contains(&got), "unit {unit}: {got}");
    }
}

#[test]
fn each_kind_of_target_gets_its_own_log_scales() {
    let shipped = LogScales::shipped();
    assert_eq!(shipped.for_targets(&[Target::Point(10)]), vec![0.05]);
    assert_eq!(shipped.for_targets(&[Target::Max(10)]), vec![1.0]);
    // A joint fit (augur train's max@10,point@10) tries both, ascending.
    assert_eq!(
        shipped.for_targets(&[Target::Max(10), Target::Point(10)]),
        vec![0.05, 1.0]
    );
    assert_eq!(
        LogScales::all(vec![0.3, 0.1]).for_targets(&[Target::Max(1), Target::Point(1)]),
        vec![0.1, 0.3]
    );
    assert!(
        LogScales::all(vec![])
            .for_targets(&[Target::Point(1)])
            .is_empty()
    );
    // A max target alone is fitted on the mean's scale when the log wins.
    let (step, day) = (300, 288);
    let n = 4 * day;
    let e = noise(n);
    let values: Vec<f64> = (0..n)
        .map(|i| {
            (2.0 + 1.5 * (std::f64::consts::TAU * i as f64 / day as f64).sin() + 0.2 * e[i]).exp()
        })
        .collect();
    let mean = values.iter().sum::<f64>() / n as f64;
    let history = History::new(0, step, values);
    let spec = fit_linear(&history, &[Target::Max(2)], &LinearOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(spec.transform, Transform::Log1p { scale } if (scale - mean).abs() < 1e-9 * mean),
        "{:?} against a mean of {mean}",
        spec.transform
    );
}
