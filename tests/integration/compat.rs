//! Compatibility: every real prometheus-adapter config in tests/fixtures/compat loads.
