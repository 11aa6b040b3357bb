//! Series discovery: the relist loop and the immutable registry snapshot it publishes.

pub mod registry;
pub mod relist;

pub use crate::prometheus::SeriesShape;
pub use registry::{CustomKey, Registry, SeriesRef, Snapshot, TwinRef};
pub use relist::{Listing, RelistOptions, Relister};
