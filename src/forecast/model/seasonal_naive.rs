//! `seasonal-naive` and `seasonal-naive-weekly`: each target bucket is forecast by the
//! (forward-filled) value one period earlier, the period being one day or one week.

use super::{DAY, buckets_in, check_step, filled_tail, max_steps, targets_from_path};
use crate::forecast::{Fitted, History, Model, ModelError, Target};

/// The seasonal-naive forecaster with a fixed period in seconds.
#[derive(Debug, Clone)]
pub struct SeasonalNaive {
    name: &'static str,
    period_seconds: i64,
}

impl SeasonalNaive {
    /// Period of one day (`seasonal-naive`).
    pub fn daily() -> Self {
        Self {
            name: "seasonal-naive",
            period_seconds: DAY,
        }
    }

    /// Period of one week (`seasonal-naive-weekly`).
    pub fn weekly() -> Self {
        Self {
            name: "seasonal-naive-weekly",
            period_seconds: 7 * DAY,
        }
    }
}

impl Model for SeasonalNaive {
    fn name(&self) -> &str {
        self.name
    }

    fn fit(&self, history: &History, targets: &[Target]) -> Result<Box<dyn Fitted>, ModelError> {
        let period = buckets_in(self.period_seconds, history.step).ok_or_else(|| {
            ModelError::Invalid(format!(
                "a step of {}s does not divide the period of {}s",
                history.step, self.period_seconds
            ))
        })?;
        let horizon = max_steps(targets);
        if horizon == 0 || horizon > period {
            return Err(ModelError::Invalid(format!(
                "horizons must be between 1 and the period ({period} buckets)"
            )));
        }
        Ok(Box::new(FittedSeasonalNaive {
            step: history.step,
            period,
            targets: targets.to_vec(),
        }))
    }
}

struct FittedSeasonalNaive {
    step: i64,
    period: usize,
    targets: Vec<Target>,
}

impl Fitted for FittedSeasonalNaive {
    fn predict(&self, history: &History) -> Result<Vec<f64>, ModelError> {
        check_step(self.step, history)?;
        let tail = filled_tail(history, self.period).ok_or(ModelError::TooShort {
            needed: self.period,
            have: history.len(),
        })?;
        // tail[period - 1] is the origin; bucket origin + i one period earlier is tail[i - 1].
        let horizon = max_steps(&self.targets);
        targets_from_path(&self.targets, &tail[..horizon])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daily_sine_is_forecast_exactly() {
        // Hourly buckets: 24 per day.
        let sine = |i: usize| 10.0 + 5.0 * (std::f64::consts::TAU * i as f64 / 24.0).sin();
        let history = History::new(0, 3600, (0..72).map(sine).collect());
        let targets = [Target::Point(1), Target::Point(6), Target::Max(6)];
        let fitted = SeasonalNaive::daily()
            .fit(&history, &targets)
            .unwrap_or_else(|e| panic!("{e}"));
        let forecast = fitted.predict(&history).unwrap_or_else(|e| panic!("{e}"));
        let expected_max = (72..=77).map(sine).fold(f64::MIN, f64::max);
        assert!((forecast[0] - sine(72)).abs() < 1e-9);
        assert!((forecast[1] - sine(77)).abs() < 1e-9);
        assert!((forecast[2] - expected_max).abs() < 1e-9);
    }

    #[test]
    fn weekly_needs_a_week_of_history() {
        let history = History::new(0, 3600, vec![1.0; 100]);
        let fitted = SeasonalNaive::weekly()
            .fit(&history, &[Target::Point(1)])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            fitted.predict(&history),
            Err(ModelError::TooShort {
                needed: 168,
                have: 100
            })
        );
    }
}
