//! Minute gauges in namespace `demo` for forecast tests: their OpenMetrics text, an external
//! rule over one of them, and the external metrics path they are served under.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// The external metrics API path of namespace `demo`.
pub(crate) const EXTERNAL: &str = "/apis/external.metrics.k8s.io/v1beta1/namespaces/demo";

/// Now, aligned down to the minute (Unix seconds).
pub(crate) fn now_aligned() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    now - now % 60
}

/// One gauge family with a sample every minute where `value(t)` is Some.
pub(crate) fn gauge(
    out: &mut String,
    name: &str,
    from: i64,
    to: i64,
    value: impl Fn(i64) -> Option<f64>,
) {
    writeln!(out, "# TYPE {name} gauge").unwrap();
    let mut t = from;
    while t <= to {
        if let Some(v) = value(t) {
            writeln!(out, "{name}{{namespace=\"demo\"}} {v} {t}").unwrap();
        }
        t += 60;
    }
}

/// A namespaced external rule over one gauge with a forecast block.
pub(crate) fn gauge_rule(name: &str, forecast: &str) -> String {
    format!(
        "- seriesQuery: '{name}'\n  resources: {{overrides: {{namespace: {{resource: namespace}}}}}}\n  metricsQuery: 'sum(<<.Series>>{{<<.LabelMatchers>>}})'\n  forecast: {forecast}\n"
    )
}
