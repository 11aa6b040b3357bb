//! `a+b+…`: the mean of several built-in models' forecasts (members that fail are left out;
//! the ensemble fails only when every member does).

use crate::forecast::{Fitted, History, Model, ModelError, Target};

/// An equal-weight ensemble.
pub struct Ensemble {
    name: String,
    members: Vec<Box<dyn Model>>,
}

impl Ensemble {
    /// The mean of `members`, named `name`.
    pub fn new(name: String, members: Vec<Box<dyn Model>>) -> Self {
        Self { name, members }
    }
}

impl Model for Ensemble {
    fn name(&self) -> &str {
        &self.name
    }

    fn fit(&self, history: &History, targets: &[Target]) -> Result<Box<dyn Fitted>, ModelError> {
        let mut fitted = Vec::with_capacity(self.members.len());
        let mut last_error = ModelError::Invalid("an ensemble needs members".to_string());
        for member in &self.members {
            match member.fit(history, targets) {
                Ok(f) => fitted.push(f),
                Err(e) => last_error = e,
            }
        }
        if fitted.is_empty() {
            return Err(last_error);
        }
        Ok(Box::new(FittedEnsemble { members: fitted }))
    }
}

struct FittedEnsemble {
    members: Vec<Box<dyn Fitted>>,
}

impl Fitted for FittedEnsemble {
    fn predict(&self, history: &History) -> Result<Vec<f64>, ModelError> {
        let mut sum: Vec<f64> = Vec::new();
        let mut count = 0usize;
        let mut last_error = ModelError::Invalid("no member forecast".to_string());
        for member in &self.members {
            match member.predict(history) {
                Ok(forecast) => {
                    if sum.is_empty() {
                        sum = vec![0.0; forecast.len()];
                    }
                    sum.iter_mut().zip(&forecast).for_each(|(s, f)| *s += f);
                    count += 1;
                }
                Err(e) => last_error = e,
            }
        }
        if count == 0 {
            return Err(last_error);
        }
        Ok(sum.into_iter().map(|s| s / count as f64).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::model::{Persistence, SeasonalNaive};

    #[test]
    fn mean_of_members_and_failing_members_are_left_out() {
        // Hourly: yesterday at the target hour was 10, the last value is 4.
        let mut values = vec![10.0; 24];
        values[23] = 4.0;
        let history = History::new(0, 3600, values);
        let both = Ensemble::new(
            "persistence+seasonal-naive".to_string(),
            vec![Box::new(Persistence), Box::new(SeasonalNaive::daily())],
        );
        let fitted = both
            .fit(&history, &[Target::Point(1)])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fitted.predict(&history), Ok(vec![7.0]));
        let short = History::new(0, 3600, vec![4.0; 3]);
        assert_eq!(fitted.predict(&short), Ok(vec![4.0]));
    }
}
