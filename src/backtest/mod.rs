//! `augur backtest`: rolling-origin forecast accuracy and a simulation of the stock HPA
//! driven reactively and predictively on the same trace.

use clap::Args;

/// Flags of `augur backtest`.
#[derive(Debug, Clone, Args)]
pub struct BacktestArgs {}

/// Runs `augur backtest`.
pub fn run(_args: &BacktestArgs) -> anyhow::Result<()> {
    anyhow::bail!("augur backtest is not implemented yet")
}
