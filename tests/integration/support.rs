//! Test support: starting real Prometheus and VictoriaMetrics on loopback ports with fixture data.
