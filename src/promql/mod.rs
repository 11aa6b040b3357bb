//! PromQL text: rendering rule templates and turning label selectors into matchers.

pub mod selector;
pub mod template;
