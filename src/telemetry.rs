//! Logging setup and augur's own metrics (requests, relists, backend calls), all declared here.
