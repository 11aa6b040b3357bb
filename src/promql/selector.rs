//! Kubernetes label selectors: parsing, and rendering as PromQL label matchers.
