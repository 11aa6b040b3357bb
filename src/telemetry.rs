//! Logging setup and augur's own metrics (requests, relists, backend calls), all declared here.
//! (placeholder until the serving branch lands)

/// augur's own metrics.
#[derive(Debug, Default)]
pub struct Metrics;

impl Metrics {
    /// Records one relist round.
    /// Records a config reload.
    pub fn observe_config_reload(&self, _ok: bool) {}
    /// Records one relist round.
    pub fn observe_relist(
        &self,
        _seconds: f64,
        _series: i64,
        _metrics: i64,
        _errors: u64,
        _success: bool,
    ) {
    }
}
