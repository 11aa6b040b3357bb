//! The built-in forecasting models and how a model name from config becomes a [`Model`].

mod persistence;

pub use persistence::Persistence;

use super::{Model, ModelError};

/// Names of the built-in models, as written in config.
pub const BUILTIN: &[&str] = &["persistence"];

/// The built-in model called `name`.
pub fn build(name: &str) -> Result<Box<dyn Model>, ModelError> {
    match name {
        "persistence" => Ok(Box::new(Persistence)),
        other => Err(ModelError::Invalid(format!(
            "unknown model {other:?}; built-in models are {}",
            BUILTIN.join(", ")
        ))),
    }
}
