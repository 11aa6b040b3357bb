//! `augur backtest` end to end: the real binary on the shipped NASA trace slice (files,
//! exact headers, figures recomputed here from the trace) and on a range query against a
//! real Prometheus.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::support::{TestPrometheus, fixture_series};

const ACCURACY_HEADER: &str = "trace,model,horizon_s,point_mae,point_rmse,point_smape_pct,point_mape_pct,point_mase,point_mae_vs_persistence,point_n,max_mae,max_rmse,max_smape_pct,max_mape_pct,max_mase,max_mae_vs_persistence,max_n";
const HPA_HEADER: &str = "trace,policy,under_provisioned_minutes,under_provisioned_pod_minutes,delta_pod_minutes_vs_reactive_pct,replica_minutes,delta_cost_vs_reactive_pct,scale_events,scale_ups,scale_downs,plain_headroom_under_provisioned_pod_minutes,plain_headroom_target_fraction,delta_pod_minutes_vs_plain_headroom_pct,lead_on_rises_minutes,worst_hour_point_mae_vs_persistence,worst_hour_max_mae_vs_persistence";
const WINDOWS_HEADER: &str = "trace,model,horizon_s,window_s,served_point_mae_vs_persistence,served_max_mae_vs_persistence,served_point_worst_ratio,served_point_worst_start,served_max_worst_ratio,served_max_worst_start,alone_point_worst_ratio,alone_max_worst_ratio,served_point_windows,served_point_median_ratio,served_point_p90_ratio,served_point_p99_ratio,served_point_share_above_1_1,served_point_share_above_1,served_max_windows,served_max_median_ratio,served_max_p90_ratio,served_max_p99_ratio,served_max_share_above_1_1,served_max_share_above_1";
const TIMELINE_HEADER: &str = "time,load,forecast:persistence,replicas:reactive,replicas:predictive:persistence,replicas:reactive@0.6,replicas:reactive@0.5,replicas:plain-headroom@0.64,replicas:oracle,replicas:static_peak";
const HPA_TABLE_HEADER: &str = "| trace | policy | under-prov. min | under-prov. pod-min | Δ pod-min vs reactive | replica-min | Δ cost vs reactive | scale events (up/down) | plain headroom at equal cost: pod-min (target) | vs plain headroom | lead on rises, min | worst 1-hour window vs persist. (point / max) |";

fn fixture_trace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/traces/nasa_ksc_1995_07_10-13_60s.csv")
}

/// The fixture trace's `(timestamp, value)` rows, read here without augur's loader.
fn fixture_rows() -> Vec<(i64, f64)> {
    std::fs::read_to_string(fixture_trace())
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let (t, v) = l.split_once(',').unwrap();
            (t.parse().unwrap(), v.parse().unwrap())
        })
        .collect()
}

/// Runs `augur backtest` with `args`; returns stdout, panicking with stderr on failure.
fn backtest(args: &[String]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_augur"))
        .arg("backtest")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "augur backtest {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// CSV rows (header included) as string fields.
fn rows(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

fn row<'a>(rows: &'a [Vec<String>], first: usize, key: &[&str]) -> &'a [String] {
    rows.iter()
        .find(|r| {
            r.len() > first + key.len() && key.iter().enumerate().all(|(i, k)| r[first + i] == *k)
        })
        .unwrap_or_else(|| panic!("no row {key:?} in {rows:?}"))
}

fn number(field: &str) -> f64 {
    field.parse().unwrap_or_else(|e| panic!("{field:?}: {e}"))
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        "{what}: expected {expected}, got {actual}"
    );
}

#[test]
fn trace_backtest_writes_tables_timeline_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let stdout = backtest(&[
        format!("--trace={}", fixture_trace().display()),
        "--models=persistence".to_owned(),
        "--eval-days=1".to_owned(),
        format!("--out={}", out.display()),
    ]);
    assert!(stdout.contains(HPA_TABLE_HEADER), "{stdout}");
    assert!(
        stdout.starts_with("- `nasa_ksc_1995_07_10-13_60s`: step 60 s, evaluation window 1995-07-12 16:00 UTC → 1995-07-13 16:00 UTC, 1440 origins, peak 6.7500 req/s → capacity 0.3375 req/s/pod, HPA target AverageValue 0.23625 req/s (236m)"),
        "{stdout}"
    );

    // The trace itself, to recompute figures independently.
    let trace = fixture_rows();
    assert_eq!(trace.len(), 4320);
    let first_origin = 4320 - 1440;

    let accuracy = rows(&out.join("accuracy.csv"));
    assert_eq!(accuracy[0].join(","), ACCURACY_HEADER);
    assert_eq!(accuracy.len(), 1 + 4, "persistence at 5, 10, 15, 30 min");
    let ten = row(&accuracy, 1, &["persistence", "600"]);
    // Persistence at 10 minutes: mean |y[t + 10] − y[t]| over origins with a target.
    let errors: Vec<f64> = (first_origin..4320 - 10)
        .map(|t| (trace[t + 10].1 - trace[t].1).abs())
        .collect();
    assert_eq!(number(&ten[9]), errors.len() as f64);
    assert_close(
        number(&ten[3]),
        errors.iter().sum::<f64>() / errors.len() as f64,
        "point MAE",
    );
    assert_eq!(ten[8], "1", "point MAE / persistence");
    assert_eq!(ten[15], "1", "max MAE / persistence");

    let hpa = rows(&out.join("hpa.csv"));
    assert_eq!(hpa[0].join(","), HPA_HEADER);
    let policies: Vec<&str> = hpa[1..].iter().map(|r| r[1].as_str()).collect();
    assert_eq!(
        policies,
        [
            "reactive",
            "predictive:persistence",
            "reactive@0.6",
            "reactive@0.5",
            "plain-headroom@0.64",
            "oracle",
            "static_peak"
        ]
    );
    // Plain headroom at the cost of reactive, reactive@0.6, @0.5 and the plain-headroom row
    // (at the grid target nearest predictive:persistence's cost) is each of them: their
    // targets are on the grid and the best at their cost.
    for (policy, fraction) in [
        ("reactive", "0.7"),
        ("reactive@0.6", "0.6"),
        ("reactive@0.5", "0.5"),
        ("plain-headroom@0.64", "0.64"),
    ] {
        let r = row(&hpa, 1, &[policy]);
        assert_eq!(
            (r[10].as_str(), r[11].as_str(), r[12].as_str()),
            (r[3].as_str(), fraction, "0"),
            "{policy}"
        );
    }
    assert_eq!(row(&hpa, 1, &["reactive"])[13], "0", "no lead over itself");
    // Persistence's worst hours are persistence's; other policies have none.
    let persistence = row(&hpa, 1, &["predictive:persistence"]);
    assert_eq!(
        (persistence[14].as_str(), persistence[15].as_str()),
        ("1", "1")
    );
    assert_eq!(&row(&hpa, 1, &["oracle"])[14..16], ["", ""]);
    // Plain headroom at predictive:persistence's cost is interpolated between two grid
    // targets around 0.64.
    let fraction = number(&persistence[11]);
    assert!((0.63..0.65).contains(&fraction), "{persistence:?}");
    let windows = rows(&out.join("windows.csv"));
    assert_eq!(windows[0].join(","), WINDOWS_HEADER);
    let persistence = row(&windows, 1, &["persistence"]);
    for i in [4, 5, 6, 8, 10, 11] {
        assert_eq!(
            persistence[i], "1",
            "persistence is persistence: {persistence:?}"
        );
    }
    assert_eq!(
        (persistence[2].as_str(), persistence[3].as_str()),
        ("600", "3600")
    );
    // Every window of persistence is 1: 1440 origins of 60 s, 1381 windows of 60 of them
    // (the last 10 origins, with no outcome yet, in windows still scored over half).
    for (kind, at) in [("point", 12), ("max", 18)] {
        assert_eq!(
            persistence[at..at + 6],
            ["1381", "1", "1", "1", "0", "0"],
            "{kind}: {persistence:?}"
        );
    }
    let oracle = row(&hpa, 1, &["oracle"]);
    assert_eq!(
        (oracle[2].as_str(), oracle[3].as_str()),
        ("0", "0"),
        "oracle never under-provisions"
    );
    // Simulated from the sync 90 s after the first origin starts to the trace end:
    // 1440 minutes − 1.5 = 1438.5 minutes, 20 pods for the static policy.
    let static_peak = row(&hpa, 1, &["static_peak"]);
    assert_eq!(static_peak[5], "28770");
    assert_eq!(&static_peak[7..10], ["0", "0", "0"]);
    let reactive = row(&hpa, 1, &["reactive"]);
    assert_eq!((reactive[4].as_str(), reactive[6].as_str()), ("0", "0"));
    let reactive_cost = number(&reactive[5]);
    // Reactive at a 70 % target costs more than the mean load needs and less than static.
    let window = &trace[first_origin..];
    let mean_pods = window.iter().map(|p| p.1).sum::<f64>() / window.len() as f64 / 0.3375;
    assert!(
        reactive_cost > mean_pods * 1438.5 && reactive_cost < 28770.0,
        "reactive replica-minutes {reactive_cost}"
    );

    let timeline = rows(&out.join("timeline.csv"));
    assert_eq!(timeline[0].join(","), TIMELINE_HEADER);
    assert_eq!(timeline.len(), 1 + 86_310 / 15);
    let first = &timeline[1];
    assert_eq!(first[0], (trace[first_origin].0 + 90).to_string());
    assert_eq!(
        number(&first[1]),
        trace[first_origin + 1].1,
        "load of the bucket holding the sync"
    );
    assert_eq!(
        number(&first[2]),
        trace[first_origin].1,
        "persistence forecast = origin value"
    );
    for r in &timeline[1..] {
        assert_eq!(r[9], "20", "static_peak replicas");
        for replicas in &r[3..9] {
            let n: i32 = replicas.parse().unwrap();
            assert!((1..=200).contains(&n), "{r:?}");
        }
    }

    let svg = std::fs::read_to_string(out.join("backtest.svg")).unwrap();
    assert!(
        svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1200\""),
        "{svg:.200}"
    );
    assert!(svg.ends_with("</svg>\n"));
    // Load, the persistence forecast; reactive, predictive:persistence, plain headroom and
    // oracle replicas.
    assert_eq!(svg.matches("<polyline").count(), 6);
    for label in [
        "load",
        "persistence max 10m",
        "reactive",
        "predictive:persistence",
        "plain-headroom@0.64",
        "oracle",
    ] {
        assert!(svg.contains(&format!(">{label}</text>")), "legend {label}");
    }
}

#[test]
fn range_query_backtest_reads_one_series_from_prometheus() {
    let fixture = fixture_series(SystemTime::now());
    let prometheus = TestPrometheus::start(&fixture.openmetrics());
    let unix = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let (start, end) = (unix(fixture.start) + 120, unix(fixture.end));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let stdout = backtest(&[
        format!("--prometheus-url={}", prometheus.url()),
        "--query=sum(rate(http_requests_total{namespace=\"default\"}[1m]))".to_owned(),
        format!("--start={start}"),
        format!("--end={end}"),
        "--step=15s".to_owned(),
        "--name=web".to_owned(),
        "--models=persistence".to_owned(),
        "--eval-days=0.004".to_owned(),
        "--horizons=1m".to_owned(),
        "--forecast-horizon=1m".to_owned(),
        "--refit=1m".to_owned(),
        "--train-window=5m".to_owned(),
        "--capacity=1".to_owned(),
        format!("--out={}", out.display()),
    ]);
    // 7 req/s all the time (web-1 + web-2 + web-3).
    assert!(stdout.contains("peak 7.0000 req/s → capacity 1.0000 req/s/pod, HPA target AverageValue 0.70000 req/s (700m)"), "{stdout}");
    let accuracy = rows(&out.join("accuracy.csv"));
    let persistence = row(&accuracy, 1, &["persistence", "60"]);
    assert_close(number(&persistence[3]), 0.0, "point MAE");
    assert_eq!(persistence[8], "1");
    let hpa = rows(&out.join("hpa.csv"));
    let timeline = rows(&out.join("timeline.csv"));
    // 0.004 days = 23 buckets of 15 s; the first sync is 45 s after the first origin starts.
    assert_eq!(timeline.len() - 1, (23 * 15 - 45) / 15);
    for policy in ["reactive", "predictive:persistence", "oracle"] {
        let r = row(&hpa, 1, &[policy]);
        assert_eq!(
            (r[2].as_str(), r[3].as_str(), r[7].as_str()),
            ("0", "0", "0"),
            "{policy}"
        );
        // 7 req/s at 0.7 req/s per pod: 10 pods throughout.
        assert_close(number(&r[5]), 10.0 * (23.0 * 15.0 - 45.0) / 60.0, policy);
    }
}

/// `--level-oracle 1`: accuracy rows recomputed here from the trace (the median of the two
/// neighbours of each target bucket), and HPA rows labelled `reference:`.
#[test]
fn level_oracle_rows_read_the_neighbours_of_each_target() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let stdout = backtest(&[
        format!("--trace={}", fixture_trace().display()),
        "--models=persistence".to_owned(),
        "--eval-days=1".to_owned(),
        "--horizons=5m".to_owned(),
        "--forecast-horizon=5m".to_owned(),
        "--level-oracle=1".to_owned(),
        "--headroom=0,0.5".to_owned(),
        format!("--out={}", out.display()),
    ]);
    let y: Vec<f64> = fixture_rows().into_iter().map(|(_, v)| v).collect();
    let (len, first_origin) = (y.len(), y.len() - 1440);
    // The neighbours' median: their mean when both exist (the trace has no gaps), the
    // earlier one at the trace's last bucket.
    let level = |t: usize| {
        if t + 1 < len {
            (y[t - 1] + y[t + 1]) / 2.0
        } else {
            y[t - 1]
        }
    };
    let (mut point, mut max, mut persistence) = (Vec::new(), Vec::new(), Vec::new());
    for o in first_origin..len - 5 {
        point.push((level(o + 5) - y[o + 5]).abs());
        let actual = y[o + 1..=o + 5].iter().copied().fold(f64::MIN, f64::max);
        let forecast = (o + 1..=o + 5).map(level).fold(f64::MIN, f64::max);
        max.push((forecast - actual).abs());
        persistence.push((y[o + 5] - y[o]).abs());
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let accuracy = rows(&out.join("accuracy.csv"));
    let five = row(&accuracy, 1, &["level-oracle±1", "300"]);
    assert_eq!(number(&five[9]), point.len() as f64);
    assert_close(number(&five[3]), mean(&point), "point MAE");
    assert_close(number(&five[10]), mean(&max), "max MAE");
    assert_close(
        number(&five[8]),
        mean(&point) / mean(&persistence),
        "point MAE / persistence",
    );
    let hpa = rows(&out.join("hpa.csv"));
    for policy in [
        "reference:level-oracle±1",
        "reference:level-oracle±1@headroom=0.5",
    ] {
        row(&hpa, 1, &[policy]);
        assert!(
            stdout.contains(&format!("| {policy} |")),
            "{policy}: {stdout}"
        );
    }
    assert!(!stdout.contains("predictive:level-oracle"), "{stdout}");
}
