//! The HTTP backend against a real Prometheus and a real VictoriaMetrics.
