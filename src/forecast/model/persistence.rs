//! `persistence`: the last observed value is the forecast for every step ahead; the
//! baseline every other model is measured against.

use crate::forecast::{Fitted, History, Model, ModelError, Target};

/// The persistence forecaster.
#[derive(Debug, Clone, Copy, Default)]
pub struct Persistence;

impl Model for Persistence {
    fn name(&self) -> &str {
        "persistence"
    }

    fn fit(&self, _history: &History, targets: &[Target]) -> Result<Box<dyn Fitted>, ModelError> {
        Ok(Box::new(FittedPersistence {
            targets: targets.len(),
        }))
    }
}

struct FittedPersistence {
    targets: usize,
}

impl Fitted for FittedPersistence {
    fn predict(&self, history: &History) -> Result<Vec<f64>, ModelError> {
        let last = history
            .values
            .iter()
            .rev()
            .copied()
            .find(|v| !v.is_nan())
            .ok_or(ModelError::TooShort { needed: 1, have: 0 })?;
        Ok(vec![last.max(0.0); self.targets])
    }

    /// The origin (a missing one: back to the last present bucket).
    fn lookback(&self) -> Option<usize> {
        Some(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_present_value_for_every_target() {
        let history = History::new(0, 60, vec![1.0, 3.0, f64::NAN]);
        let fitted = Persistence
            .fit(&history, &[Target::Point(1), Target::Max(5)])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fitted.predict(&history), Ok(vec![3.0, 3.0]));
        assert!(
            fitted
                .predict(&History::new(0, 60, vec![f64::NAN]))
                .is_err()
        );
    }
}
