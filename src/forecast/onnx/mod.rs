//! ONNX forecasters: the augur model contract, an exporter for linear models written by
//! hand in the protobuf wire format, the ONNX Runtime loader and [`OnnxModel`], which
//! serves any model that follows the contract (docs/onnx.md).

pub mod contract;
pub mod model;
mod proto;
pub mod runtime;
pub mod writer;

pub use contract::Contract;
pub use model::OnnxModel;
pub use runtime::{RuntimeArgs, RuntimeError};

#[cfg(test)]
mod mutants;
#[cfg(test)]
mod robust;
#[cfg(test)]
mod tests;
