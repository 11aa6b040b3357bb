//! The HTTP layer: routes, discovery and error rendering; no PromQL or registry logic.

pub mod discovery;
pub mod error;
pub mod health;
pub mod openapi;
