//! OpenAPI v2 and v3 documents for the metrics API groups, enough for kubectl.
