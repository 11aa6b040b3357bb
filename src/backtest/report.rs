//! Presents a backtest [`Report`]: markdown tables in the column layout of the anchors'
//! tables (as benches/README.md, "Backtest", shows them), CSV files of both tables and of the
//! per-sync timeline, and a hand-written SVG plot.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::served::WINDOW_SECONDS;
use super::{BASELINE, Report, target_milli};
use crate::forecast::window::{Spread, Window};

/// Header of `accuracy.csv`.
pub const ACCURACY_HEADER: &str = "trace,model,horizon_s,point_mae,point_rmse,point_smape_pct,point_mape_pct,point_mase,point_mae_vs_persistence,point_n,max_mae,max_rmse,max_smape_pct,max_mape_pct,max_mase,max_mae_vs_persistence,max_n";

/// Header of `hpa.csv`.
pub const HPA_HEADER: &str = "trace,policy,under_provisioned_minutes,under_provisioned_pod_minutes,delta_pod_minutes_vs_reactive_pct,replica_minutes,delta_cost_vs_reactive_pct,scale_events,scale_ups,scale_downs,plain_headroom_under_provisioned_pod_minutes,plain_headroom_target_fraction,delta_pod_minutes_vs_plain_headroom_pct,lead_on_rises_minutes,worst_hour_point_mae_vs_persistence,worst_hour_max_mae_vs_persistence";

/// Header of `windows.csv`.
pub const WINDOWS_HEADER: &str = "trace,model,horizon_s,window_s,served_point_mae_vs_persistence,served_max_mae_vs_persistence,served_point_worst_ratio,served_point_worst_start,served_max_worst_ratio,served_max_worst_start,alone_point_worst_ratio,alone_max_worst_ratio,served_point_windows,served_point_median_ratio,served_point_p90_ratio,served_point_p99_ratio,served_point_share_above_1_1,served_point_share_above_1,served_max_windows,served_max_median_ratio,served_max_p90_ratio,served_max_p99_ratio,served_max_share_above_1_1,served_max_share_above_1";

/// `YYYY-MM-DD HH:MM` (UTC) of a Unix second.
pub fn minute(t: i64) -> String {
    let text = crate::units::rfc3339(crate::units::from_unix(t));
    text.get(..16).unwrap_or(&text).replace('T', " ")
}

/// `5m`, `1h`, or seconds when not whole minutes.
fn horizon_label(buckets: usize, step: i64) -> String {
    let seconds = buckets as i64 * step;
    if seconds % 60 == 0 {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

/// Thousands separators for a non-negative integer.
fn grouped(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// HPA figures as the anchors print them: 0, whole numbers plain, ≥ 1000 rounded with
/// separators, otherwise 4 significant digits.
pub fn figure(x: f64) -> String {
    if x.is_nan() {
        return "–".to_owned();
    }
    if x == 0.0 {
        return "0".to_owned();
    }
    let sign = if x < 0.0 { "-" } else { "" };
    let a = x.abs();
    if a >= 1000.0 || a.fract() == 0.0 {
        return format!("{sign}{}", grouped(a.round() as u64));
    }
    let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
    format!("{sign}{a:.decimals$}")
}

/// MAE/RMSE as the anchors print them: 3 decimals below 1, else 2.
fn error_figure(x: f64) -> String {
    if x.is_nan() {
        "–".to_owned()
    } else if x.abs() < 1.0 {
        format!("{x:.3}")
    } else {
        format!("{x:.2}")
    }
}

fn fixed(x: f64, decimals: usize) -> String {
    if x.is_nan() {
        "–".to_owned()
    } else {
        format!("{x:.decimals$}")
    }
}

/// A share (0–1) as a percentage with one decimal; one too small to show is not printed
/// as 0.
fn share(x: f64) -> String {
    if x == 0.0 {
        "0 %".to_owned()
    } else if x < 0.0005 {
        "< 0.05 %".to_owned()
    } else {
        format!("{:.1} %", 100.0 * x)
    }
}

/// `+13%` / `-45%` relative to `base`; `–` when the base is 0.
fn delta(x: f64, base: f64) -> String {
    if base == 0.0 || base.is_nan() {
        return "–".to_owned();
    }
    // `+ 0.0` turns a rounded −0 (a change under half a percent down) into 0.
    let pct = ((x / base - 1.0) * 100.0).round() + 0.0;
    if pct >= 0.0 {
        format!("+{pct:.0}%")
    } else {
        format!("{pct:.0}%")
    }
}

/// The worst 1-hour windows (point, max) as served of the model a `predictive:` or
/// `reference:` policy serves (`NaN` for other policies).
fn worst_hour(report: &Report, policy: &str) -> [f64; 2] {
    let model = policy
        .strip_prefix("predictive:")
        .or_else(|| policy.strip_prefix("reference:"))
        .map(|m| m.split_once("@headroom=").map_or(m, |(m, _)| m));
    let row = model.and_then(|m| report.windows.iter().find(|w| w.model == m));
    row.map_or([f64::NAN; 2], |w| {
        [0, 1].map(|i| w.served[i].map_or(f64::NAN, |w| w.ratio))
    })
}

fn delta_pct(x: f64, base: f64) -> Option<f64> {
    (base != 0.0 && !base.is_nan()).then(|| (x / base - 1.0) * 100.0)
}

/// The markdown tables printed on stdout.
pub fn tables(report: &Report) -> String {
    let h = &report.history;
    let trace = &report.trace;
    let mut out = String::new();
    let window_start = h.start + report.first_origin as i64 * h.step;
    let end = super::simulate::trace_end(h);
    let origins = h.len() - report.first_origin;
    let hpa = if report.policies.is_empty() {
        "HPA not simulated (see below)".to_owned()
    } else {
        format!(
            "capacity {:.4} req/s/pod, HPA target AverageValue {:.5} req/s ({}m)",
            report.capacity,
            report.target,
            target_milli(report.target),
        )
    };
    let _ = writeln!(
        out,
        "- `{trace}`: step {} s, evaluation window {} UTC → {} UTC, {origins} origins, peak {:.4} req/s → {hpa}",
        h.step,
        minute(window_start),
        minute(end),
        report.peak,
    );
    for (model, why) in &report.failed {
        let _ = writeln!(out, "- model `{model}` could not be evaluated: {why}");
    }
    for note in &report.notes {
        let _ = writeln!(out, "- {note}");
    }
    let mut horizons: Vec<usize> = Vec::new();
    for row in &report.accuracy {
        if !horizons.contains(&row.horizon) {
            horizons.push(row.horizon);
        }
    }
    for &horizon in &horizons {
        let _ = writeln!(
            out,
            "\n### {trace}: forecast accuracy at {}\n",
            horizon_label(horizon, h.step)
        );
        let _ = writeln!(
            out,
            "| trace | model | point MAE | point RMSE | point sMAPE % | point MAE/persist. | max MAE | max RMSE | max sMAPE % | max MAE/persist. | n | point MASE | max MASE |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for row in report.accuracy.iter().filter(|r| r.horizon == horizon) {
            let _ = writeln!(
                out,
                "| {trace} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                row.model,
                error_figure(row.point.mae),
                error_figure(row.point.rmse),
                fixed(row.point.smape, 1),
                fixed(row.point.ratio, 3),
                error_figure(row.max.mae),
                error_figure(row.max.rmse),
                fixed(row.max.smape, 1),
                fixed(row.max.ratio, 3),
                row.point.n,
                fixed(row.point.mase, 3),
                fixed(row.max.mase, 3),
            );
        }
    }
    let _ = writeln!(
        out,
        "\n### {trace}: MAE relative to {BASELINE}, all horizons (point / max target)\n"
    );
    let mut header = "| trace | model |".to_owned();
    let mut rule = "|---|---|".to_owned();
    for &horizon in &horizons {
        let _ = write!(header, " {} point/max |", horizon_label(horizon, h.step));
        rule.push_str("---|");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    let mut models: Vec<&str> = Vec::new();
    for row in &report.accuracy {
        if !models.contains(&row.model.as_str()) {
            models.push(&row.model);
        }
    }
    for model in models {
        let mut line = format!("| {trace} | {model} |");
        for &horizon in &horizons {
            if let Some(row) = report
                .accuracy
                .iter()
                .find(|r| r.model == model && r.horizon == horizon)
            {
                let _ = write!(
                    line,
                    " {} / {} |",
                    fixed(row.point.ratio, 3),
                    fixed(row.max.ratio, 3)
                );
            }
        }
        let _ = writeln!(out, "{line}");
    }
    if !report.windows.is_empty() {
        let _ = writeln!(
            out,
            "\n### {trace}: served by the twin at {} (MAE relative to {BASELINE}; point / max target)\n",
            horizon_label(report.forecast_horizon, h.step)
        );
        let _ = writeln!(
            out,
            "| trace | model | as served | worst 1-hour window as served | worst window starts (UTC) | 1-hour windows above 1.1× as served | worst 1-hour window, model alone |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|");
        let ratio = |w: &Option<Window>| w.map_or_else(|| "–".to_owned(), |w| fixed(w.ratio, 3));
        let start = |w: &Option<Window>| {
            w.map_or_else(
                || "–".to_owned(),
                |w| minute(h.start + w.origin as i64 * h.step),
            )
        };
        // The share of windows above the bar: the worst alone is one draw of thousands.
        let above = |s: &Option<Spread>| s.map_or_else(|| "–".to_owned(), |s| share(s.above_1_1));
        for row in &report.windows {
            let _ = writeln!(
                out,
                "| {trace} | {} | {} / {} | {} / {} | {} / {} | {} / {} | {} / {} |",
                row.model,
                fixed(row.served_ratio[0], 3),
                fixed(row.served_ratio[1], 3),
                ratio(&row.served[0]),
                ratio(&row.served[1]),
                start(&row.served[0]),
                start(&row.served[1]),
                above(&row.spread[0]),
                above(&row.spread[1]),
                ratio(&row.alone[0]),
                ratio(&row.alone[1]),
            );
        }
    }
    recent_table(report, &mut out);
    if report.policies.is_empty() {
        return out;
    }
    let days = (end - report.syncs.first().copied().unwrap_or(end)) as f64 / 86_400.0;
    let _ = writeln!(
        out,
        "\n### {trace}: HPA simulation ({:.0} days, forecast horizon {})\n",
        days,
        horizon_label(report.forecast_horizon, h.step)
    );
    let _ = writeln!(
        out,
        "| trace | policy | under-prov. min | under-prov. pod-min | Δ pod-min vs reactive | replica-min | Δ cost vs reactive | scale events (up/down) | plain headroom at equal cost: pod-min (target) | vs plain headroom | lead on rises, min | worst 1-hour window vs persist. (point / max) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    let reactive = report.policies.first().map(|p| &p.outcome);
    for row in &report.policies {
        let o = &row.outcome;
        let (base_pod, base_cost) = reactive.map_or((f64::NAN, f64::NAN), |r| {
            (r.under_pod_minutes, r.replica_minutes)
        });
        let (headroom, versus) = match row.plain_headroom {
            Some((under, fraction)) => (
                format!("{} ({fraction:.3})", figure(under)),
                delta(o.under_pod_minutes, under),
            ),
            None => ("–".to_owned(), "–".to_owned()),
        };
        let worst = match worst_hour(report, &row.policy) {
            [p, m] if p.is_nan() && m.is_nan() => "–".to_owned(),
            [p, m] => format!("{} / {}", fixed(p, 3), fixed(m, 3)),
        };
        let _ = writeln!(
            out,
            "| {trace} | {} | {} | {} | {} | {} | {} | {} ({}/{}) | {headroom} | {versus} | {} | {worst} |",
            row.policy,
            figure(o.under_minutes),
            figure(o.under_pod_minutes),
            delta(o.under_pod_minutes, base_pod),
            figure(o.replica_minutes),
            delta(o.replica_minutes, base_cost),
            o.scale_ups + o.scale_downs,
            o.scale_ups,
            o.scale_downs,
            row.lead_on_rises
                .map_or_else(|| "–".to_owned(), |m| format!("{m:.2}")),
        );
    }
    out
}

/// Rows of the recent table.
const RECENT_ROWS: i64 = 12;

/// With `--recent`: the twin's max forecast over the forecast horizon at evenly spaced
/// origins of the last `recent` seconds against the maximum that followed, next to
/// persistence's (the live value), and both MAEs over every origin of that span. The twin is
/// the first model other than persistence.
fn recent_table(report: &Report, out: &mut String) {
    let h = &report.history;
    let (Some(span), Some(row)) = (
        report.recent,
        report
            .windows
            .iter()
            .find(|w| w.model != BASELINE && !w.model.starts_with("level-oracle")),
    ) else {
        return;
    };
    let target = crate::forecast::Target::Max(report.forecast_horizon.max(1));
    let origins = h.len().saturating_sub(report.first_origin);
    let count = usize::try_from(span / h.step.max(1))
        .unwrap_or(0)
        .clamp(1, origins.max(1));
    // Origins whose outcome is known, the last `count` of them.
    let known = origins.saturating_sub(target.steps());
    let from = known.saturating_sub(count);
    let label = horizon_label(report.forecast_horizon, h.step);
    let _ = writeln!(
        out,
        "\n### {}: the twin ({}) against what happened, last {} (max over the next {label}, req/s)\n",
        report.trace,
        row.model,
        super::seconds_label(count as i64 * h.step)
    );
    let _ = writeln!(
        out,
        "| origin (UTC) | live | twin serves | actual max | twin error | persistence error |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    let every = (count / RECENT_ROWS as usize).max(1);
    let (mut twin_sum, mut live_sum, mut n, mut forecasting) = (0.0, 0.0, 0usize, 0usize);
    for k in from..known {
        let origin = report.first_origin + k;
        let live = h.values[origin];
        let Some(actual) = crate::forecast::serve::realised(&h.values, origin, target) else {
            continue;
        };
        let served = row.served_forecasts[1].get(k).copied().unwrap_or(f64::NAN);
        // What the HPA is served: the forecast, or the live value where the twin falls back.
        let twin = if served.is_nan() { live } else { served };
        if live.is_nan() {
            continue;
        }
        twin_sum += (twin - actual).abs();
        live_sum += (live - actual).abs();
        n += 1;
        forecasting += usize::from(!served.is_nan());
        if (known - 1 - k).is_multiple_of(every) {
            let shown = if served.is_nan() {
                format!("{} (live)", fixed(live, 3))
            } else {
                fixed(served, 3)
            };
            let _ = writeln!(
                out,
                "| {} | {} | {shown} | {} | {:+.3} | {:+.3} |",
                minute(h.start + origin as i64 * h.step),
                fixed(live, 3),
                fixed(actual, 3),
                twin - actual,
                live - actual,
            );
        }
    }
    if n > 0 {
        let _ = writeln!(
            out,
            "\nOver all {n} origins of the last {}: the twin's MAE {} req/s, persistence's {} ({}); the twin served its forecast at {forecasting} of them, the live value at {} (where it distrusted the forecast).",
            super::seconds_label(count as i64 * h.step),
            fixed(twin_sum / n as f64, 3),
            fixed(live_sum / n as f64, 3),
            if live_sum > 0.0 {
                format!("ratio {}", fixed(twin_sum / live_sum, 3))
            } else {
                "no error to compare".to_owned()
            },
            n - forecasting
        );
    }
}

fn csv_number(x: f64) -> String {
    if x.is_nan() {
        String::new()
    } else {
        format!("{x}")
    }
}

/// `accuracy.csv`: one row per model and horizon.
pub fn accuracy_csv(report: &Report) -> String {
    let mut out = format!("{ACCURACY_HEADER}\n");
    for row in &report.accuracy {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            report.trace,
            row.model,
            row.horizon as i64 * report.history.step,
            csv_number(row.point.mae),
            csv_number(row.point.rmse),
            csv_number(row.point.smape),
            csv_number(row.point.mape),
            csv_number(row.point.mase),
            csv_number(row.point.ratio),
            row.point.n,
            csv_number(row.max.mae),
            csv_number(row.max.rmse),
            csv_number(row.max.smape),
            csv_number(row.max.mape),
            csv_number(row.max.mase),
            csv_number(row.max.ratio),
            row.max.n,
        );
    }
    out
}

/// `hpa.csv`: one row per policy.
pub fn hpa_csv(report: &Report) -> String {
    let mut out = format!("{HPA_HEADER}\n");
    let reactive = report.policies.first().map(|p| &p.outcome);
    for row in &report.policies {
        let o = &row.outcome;
        let (base_pod, base_cost) = reactive.map_or((f64::NAN, f64::NAN), |r| {
            (r.under_pod_minutes, r.replica_minutes)
        });
        let (headroom, fraction) = row.plain_headroom.unwrap_or((f64::NAN, f64::NAN));
        let [worst_point, worst_max] = worst_hour(report, &row.policy);
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            report.trace,
            row.policy,
            o.under_minutes,
            o.under_pod_minutes,
            delta_pct(o.under_pod_minutes, base_pod).map_or(String::new(), |d| format!("{d}")),
            o.replica_minutes,
            delta_pct(o.replica_minutes, base_cost).map_or(String::new(), |d| format!("{d}")),
            o.scale_ups + o.scale_downs,
            o.scale_ups,
            o.scale_downs,
            csv_number(headroom),
            csv_number(fraction),
            delta_pct(o.under_pod_minutes, headroom).map_or(String::new(), |d| format!("{d}")),
            csv_number(row.lead_on_rises.unwrap_or(f64::NAN)),
            csv_number(worst_point),
            csv_number(worst_max),
        );
    }
    out
}

/// `windows.csv`: per model, the worst 1-hour windows at the forecast horizon, and how the
/// windows as served are spread.
pub fn windows_csv(report: &Report) -> String {
    let mut out = format!("{WINDOWS_HEADER}\n");
    let h = &report.history;
    let ratio = |w: &Option<Window>| csv_number(w.map_or(f64::NAN, |w| w.ratio));
    let start = |w: &Option<Window>| {
        w.map_or_else(String::new, |w| {
            (h.start + w.origin as i64 * h.step).to_string()
        })
    };
    let spread = |s: &Option<Spread>| match s {
        Some(s) => format!(
            "{},{},{},{},{},{}",
            s.windows,
            csv_number(s.median),
            csv_number(s.p90),
            csv_number(s.p99),
            csv_number(s.above_1_1),
            csv_number(s.above_1)
        ),
        None => ",,,,,".to_owned(),
    };
    for row in &report.windows {
        let _ = writeln!(
            out,
            "{},{},{},{WINDOW_SECONDS},{},{},{},{},{},{},{},{},{},{}",
            report.trace,
            row.model,
            report.forecast_horizon as i64 * h.step,
            csv_number(row.served_ratio[0]),
            csv_number(row.served_ratio[1]),
            ratio(&row.served[0]),
            start(&row.served[0]),
            ratio(&row.served[1]),
            start(&row.served[1]),
            ratio(&row.alone[0]),
            ratio(&row.alone[1]),
            spread(&row.spread[0]),
            spread(&row.spread[1]),
        );
    }
    out
}

/// Load of the bucket holding `t` (`NaN` in a gap or outside the trace).
fn load_at(report: &Report, t: i64) -> f64 {
    super::simulate::bucket_value(&report.history, t)
}

/// Header of `timeline.csv` for this report.
pub fn timeline_header(report: &Report) -> String {
    let mut header = "time,load".to_owned();
    for (model, _) in &report.served_forecasts {
        let _ = write!(header, ",forecast:{model}");
    }
    for row in &report.policies {
        let _ = write!(header, ",replicas:{}", row.policy);
    }
    header
}

/// `timeline.csv`: per sync, the load, each model's served forecast and each policy's
/// replica count.
pub fn timeline_csv(report: &Report) -> String {
    let mut out = timeline_header(report);
    out.push('\n');
    for (i, &t) in report.syncs.iter().enumerate() {
        let _ = write!(out, "{t},{}", csv_number(load_at(report, t)));
        for (_, forecasts) in &report.served_forecasts {
            let _ = write!(
                out,
                ",{}",
                csv_number(forecasts.get(i).copied().unwrap_or(f64::NAN))
            );
        }
        for row in &report.policies {
            let _ = write!(
                out,
                ",{}",
                row.outcome.replicas.get(i).copied().unwrap_or_default()
            );
        }
        out.push('\n');
    }
    out
}

const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
];

/// A round number ≥ `x` for an axis top (1, 2, 5 × 10^k).
fn axis_top(x: f64) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&top| top >= x)
        .unwrap_or(10.0 * magnitude)
}

struct Panel<'a> {
    title: &'a str,
    unit: &'a str,
    top: f64,
    series: Vec<(String, &'a str, Vec<f64>)>,
}

/// `backtest.svg`: load and forecasts (req/s) above, replicas per policy below, over the
/// simulated time; each pixel column shows the maximum of the syncs it covers.
pub fn svg(report: &Report) -> String {
    const WIDTH: f64 = 1200.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 290.0;
    const PANEL: f64 = 260.0;
    const GAP: f64 = 60.0;
    const TOP: f64 = 40.0;
    let plot_width = WIDTH - LEFT - RIGHT;
    let columns = plot_width as usize;
    // The syncs plotted: all, or those of the last `recent` seconds.
    let end = report.syncs.last().copied().unwrap_or(0);
    let skip = report
        .recent
        .map_or(0, |span| report.syncs.partition_point(|&t| t <= end - span));
    let syncs = &report.syncs[skip.min(report.syncs.len())..];
    let n = syncs.len().max(1);
    let bin = |values: &[f64]| -> Vec<f64> {
        let mut out = vec![f64::NAN; columns];
        for (i, &v) in values.iter().skip(skip).enumerate() {
            if v.is_nan() {
                continue;
            }
            let c = (i * columns / n).min(columns - 1);
            out[c] = if out[c].is_nan() { v } else { out[c].max(v) };
        }
        out
    };
    let loads: Vec<f64> = report.syncs.iter().map(|&t| load_at(report, t)).collect();
    let mut upper = vec![("load".to_owned(), "#000000", bin(&loads))];
    for (i, (model, forecasts)) in report.served_forecasts.iter().enumerate() {
        upper.push((
            format!(
                "{model} max {}",
                horizon_label(report.forecast_horizon, report.history.step)
            ),
            PALETTE[i % PALETTE.len()],
            bin(forecasts),
        ));
    }
    let mut lower = Vec::new();
    for (i, row) in report
        .policies
        .iter()
        .filter(|p| p.policy != "static_peak" && !p.policy.starts_with("reactive@"))
        .enumerate()
    {
        let replicas: Vec<f64> = row.outcome.replicas.iter().map(|&r| f64::from(r)).collect();
        let color = if row.policy == "reactive" {
            "#000000"
        } else if row.policy == "oracle" {
            "#7f7f7f"
        } else if row.policy.starts_with(super::fair::PLAIN_HEADROOM) {
            "#ff7f0e"
        } else {
            PALETTE[(i - 1) % PALETTE.len()]
        };
        lower.push((row.policy.clone(), color, bin(&replicas)));
    }
    let max_of = |series: &[(String, &str, Vec<f64>)]| {
        series
            .iter()
            .flat_map(|(_, _, v)| v.iter().copied())
            .filter(|v| !v.is_nan())
            .fold(0.0, f64::max)
    };
    let panels = [
        Panel {
            title: "load and forecast",
            unit: "req/s",
            top: axis_top(max_of(&upper)),
            series: upper,
        },
        Panel {
            title: "replicas",
            unit: "pods",
            top: axis_top(max_of(&lower)),
            series: lower,
        },
    ];
    let height = TOP + 2.0 * PANEL + GAP + 40.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="{WIDTH}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="20" font-size="14">{} — backtest, HPA target {:.4} req/s per pod, capacity {:.4}</text>"#,
        escape(&report.trace),
        report.target,
        report.capacity
    );
    let first = syncs.first().copied().unwrap_or(0);
    let last = syncs.last().copied().unwrap_or(first) + 1;
    // Day ticks at UTC midnights; over two days or less, hour ticks instead.
    let (tick, label): (i64, fn(i64) -> String) = if last - first > 2 * 86_400 {
        (86_400, |t| {
            minute(t).get(5..10).unwrap_or_default().to_owned()
        })
    } else {
        let hours = ((last - first) / 3600 / 8).max(1);
        (3600 * hours, |t| {
            minute(t).get(11..16).unwrap_or_default().to_owned()
        })
    };
    for (p, panel) in panels.iter().enumerate() {
        let y0 = TOP + p as f64 * (PANEL + GAP);
        let _ = writeln!(
            out,
            r##"<text x="{LEFT}" y="{:.1}">{} ({})</text>"##,
            y0 - 6.0,
            panel.title,
            panel.unit
        );
        let _ = writeln!(
            out,
            r##"<rect x="{LEFT}" y="{y0}" width="{plot_width}" height="{PANEL}" fill="none" stroke="#999"/>"##
        );
        for k in 0..=4 {
            let value = panel.top * f64::from(k) / 4.0;
            let y = y0 + PANEL - PANEL * f64::from(k) / 4.0;
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + plot_width,
                LEFT - 6.0,
                y + 4.0,
                trim_number(value)
            );
        }
        let mut at = (first.div_euclid(tick) + 1) * tick;
        while at < last {
            let x = LEFT + plot_width * (at - first) as f64 / (last - first) as f64;
            let _ = writeln!(
                out,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{y0}" y2="{:.1}" stroke="#e5e5e5"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                y0 + PANEL,
                y0 + PANEL + 16.0,
                label(at)
            );
            at += tick;
        }
        for (s, (label, color, values)) in panel.series.iter().enumerate() {
            let mut points = String::new();
            for (c, &v) in values.iter().enumerate() {
                if v.is_nan() {
                    continue;
                }
                let x = LEFT + c as f64 + 0.5;
                let y = y0 + PANEL - PANEL * (v / panel.top).min(1.0);
                let _ = write!(points, "{x:.1},{y:.1} ");
            }
            let _ = writeln!(
                out,
                r#"<polyline fill="none" stroke="{color}" stroke-width="1" points="{}"/>"#,
                points.trim_end()
            );
            let ly = y0 + 14.0 + 16.0 * s as f64;
            let lx = LEFT + plot_width + 10.0;
            let _ = writeln!(
                out,
                r#"<line x1="{lx:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="2"/><text x="{:.1}" y="{ly:.1}">{}</text>"#,
                lx + 20.0,
                ly - 4.0,
                ly - 4.0,
                lx + 26.0,
                escape(label)
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

fn trim_number(x: f64) -> String {
    let text = format!("{x:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `origins.csv`: per forecast origin, the load and each model's point and max forecasts at
/// the forecast horizon, alone and as the twin serves them (empty: the live value).
pub fn origins_csv(report: &Report) -> String {
    let mut out = "time,load".to_owned();
    for row in &report.windows {
        for kind in ["point", "max"] {
            let _ = write!(out, ",{kind}:{m},served_{kind}:{m}", m = row.model);
        }
    }
    out.push('\n');
    let h = &report.history;
    for k in 0..h.len().saturating_sub(report.first_origin) {
        let origin = report.first_origin + k;
        let _ = write!(
            out,
            "{},{}",
            h.start + origin as i64 * h.step,
            csv_number(h.values[origin])
        );
        for row in &report.windows {
            for i in 0..2 {
                let at = |v: &Vec<f64>| csv_number(v.get(k).copied().unwrap_or(f64::NAN));
                let _ = write!(
                    out,
                    ",{},{}",
                    at(&row.alone_forecasts[i]),
                    at(&row.served_forecasts[i])
                );
            }
        }
        out.push('\n');
    }
    out
}

/// Writes accuracy.csv, hpa.csv, timeline.csv and backtest.svg into `dir` (created).
pub fn write_files(dir: &Path, report: &Report) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let files = [
        ("accuracy.csv", accuracy_csv(report)),
        ("hpa.csv", hpa_csv(report)),
        ("timeline.csv", timeline_csv(report)),
        ("windows.csv", windows_csv(report)),
        ("origins.csv", origins_csv(report)),
        ("backtest.svg", svg(report)),
    ];
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_print_as_in_the_anchors() {
        assert_eq!(figure(0.0), "0");
        assert_eq!(figure(2.0), "2");
        assert_eq!(figure(946.83), "946.8");
        assert_eq!(figure(64.75), "64.75");
        assert_eq!(figure(1128.4), "1,128");
        assert_eq!(figure(93_021.2), "93,021");
        assert_eq!(figure(201_570.0), "201,570");
        assert_eq!(figure(58.1), "58.10");
        assert_eq!(delta(105.0, 100.0), "+5%");
        assert_eq!(delta(55.0, 100.0), "-45%");
        assert_eq!(delta(0.0, 0.0), "–");
        assert_eq!(delta(0.0, 10.0), "-100%");
        // 0.2 % less rounds to −0: it printed "+-0%".
        assert_eq!(delta(5985.0, 6006.0), "+0%");
        assert_eq!(error_figure(0.1714), "0.171");
        assert_eq!(error_figure(7.714), "7.71");
        assert_eq!(axis_top(2.48), 5.0);
        assert_eq!(axis_top(20.0), 20.0);
        assert_eq!(minute(805_392_000), "1995-07-10 16:00");
        assert_eq!(share(0.0), "0 %");
        assert_eq!(share(1.0 / 10_021.0), "< 0.05 %");
        assert_eq!(share(7.0 / 10_021.0), "0.1 %");
        assert_eq!(share(0.021_446), "2.1 %");
    }
}
