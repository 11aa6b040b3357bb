//! Health endpoints: /healthz, /livez and /readyz.
