//! `augur train`: fits the `linear` forecaster on a history and writes it as an ONNX model.

use clap::Args;

/// Flags of `augur train`.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {}

/// Runs `augur train`.
pub fn run(_args: &TrainArgs) -> anyhow::Result<()> {
    anyhow::bail!("augur train is not implemented yet")
}
