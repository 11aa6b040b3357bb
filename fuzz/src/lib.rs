//! augur's fuzz targets (cargo-fuzz): the harnesses live in [`harness`], shared with the
//! stable corpus replay of the normal test suite.

pub mod harness;
