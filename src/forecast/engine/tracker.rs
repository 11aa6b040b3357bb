//! Rolling forecast accuracy of one series: MAE, MAPE and persistence's MAE over a window.
//!
//! A stand-in for `forecast::guard::ErrorTracker` (same methods) until that lands.

use std::collections::VecDeque;

/// The last `window` (forecast, persistence, actual) comparisons of a series.
#[derive(Debug, Clone)]
pub struct ErrorTracker {
    window: usize,
    entries: VecDeque<Entry>,
    abs_error: f64,
    persistence_abs_error: f64,
    pct_error: f64,
    pct_count: usize,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    abs_error: f64,
    persistence_abs_error: f64,
    pct_error: Option<f64>,
}

impl ErrorTracker {
    /// A tracker over the last `window` comparisons (at least 1).
    pub fn new(window: usize) -> Self {
        Self {
            window: window.max(1),
            entries: VecDeque::new(),
            abs_error: 0.0,
            persistence_abs_error: 0.0,
            pct_error: 0.0,
            pct_count: 0,
        }
    }

    /// Records one comparison; non-finite inputs are ignored.
    pub fn record(&mut self, forecast: f64, persistence: f64, actual: f64) {
        if !(forecast.is_finite() && persistence.is_finite() && actual.is_finite()) {
            return;
        }
        let entry = Entry {
            abs_error: (forecast - actual).abs(),
            persistence_abs_error: (persistence - actual).abs(),
            pct_error: (actual != 0.0).then(|| ((forecast - actual) / actual).abs() * 100.0),
        };
        self.add(entry, 1.0);
        self.entries.push_back(entry);
        while self.entries.len() > self.window {
            if let Some(old) = self.entries.pop_front() {
                self.add(old, -1.0);
            }
        }
        if self.entries.len() == self.window && self.entries.len().is_multiple_of(1024) {
            self.resum();
        }
    }

    fn add(&mut self, entry: Entry, sign: f64) {
        self.abs_error += sign * entry.abs_error;
        self.persistence_abs_error += sign * entry.persistence_abs_error;
        if let Some(p) = entry.pct_error {
            self.pct_error += sign * p;
            if sign > 0.0 {
                self.pct_count += 1;
            } else {
                self.pct_count -= 1;
            }
        }
    }

    /// Recomputes the running sums (bounds floating-point drift).
    fn resum(&mut self) {
        let entries: Vec<Entry> = self.entries.iter().copied().collect();
        self.abs_error = 0.0;
        self.persistence_abs_error = 0.0;
        self.pct_error = 0.0;
        self.pct_count = 0;
        for e in entries {
            self.add(e, 1.0);
        }
    }

    /// Comparisons held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True before the first comparison.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Mean absolute error of the forecasts.
    pub fn mae(&self) -> Option<f64> {
        let n = self.entries.len();
        (n > 0).then(|| (self.abs_error / n as f64).max(0.0))
    }

    /// Mean absolute error persistence would have had.
    pub fn persistence_mae(&self) -> Option<f64> {
        let n = self.entries.len();
        (n > 0).then(|| (self.persistence_abs_error / n as f64).max(0.0))
    }

    /// Mean absolute percentage error in percent, over comparisons with a non-zero actual.
    pub fn mape(&self) -> Option<f64> {
        (self.pct_count > 0).then(|| (self.pct_error / self.pct_count as f64).max(0.0))
    }

    /// True when the window is full and the forecasts' MAE is above persistence's.
    pub fn worse_than_persistence(&self) -> bool {
        match (self.mae(), self.persistence_mae()) {
            (Some(model), Some(persistence)) => {
                self.entries.len() >= self.window && model > persistence + 1e-12
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_window_and_verdict() {
        let mut t = ErrorTracker::new(2);
        assert_eq!((t.mae(), t.mape()), (None, None));
        t.record(12.0, 10.0, 10.0);
        assert!(!t.worse_than_persistence(), "window not full yet");
        t.record(8.0, 10.0, 0.0);
        assert_eq!(t.mae(), Some(5.0));
        assert_eq!(t.persistence_mae(), Some(5.0));
        assert_eq!(t.mape(), Some(20.0));
        assert!(!t.worse_than_persistence());
        t.record(4.0, 3.0, 2.0);
        // window now holds (8 vs 0) and (4 vs 2)
        assert_eq!(t.mae(), Some(5.0));
        assert_eq!(t.persistence_mae(), Some(5.5));
        assert_eq!(t.mape(), Some(100.0));
        t.record(f64::NAN, 1.0, 1.0);
        assert_eq!(t.len(), 2);
        t.record(9.0, 3.0, 3.0);
        assert_eq!(t.mae(), Some(4.0));
        assert_eq!(t.persistence_mae(), Some(0.5));
        assert!(t.worse_than_persistence());
    }
}
