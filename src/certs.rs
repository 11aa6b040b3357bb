//! `augur certs`: creates a CA and the serving certificate for augur's Service, and prints
//! the `caBundle` for the APIService objects.

use clap::Args;

/// Flags of `augur certs`.
#[derive(Debug, Clone, Args)]
pub struct CertsArgs {}

/// Runs `augur certs`.
pub fn run(_args: &CertsArgs) -> anyhow::Result<()> {
    anyhow::bail!("augur certs is not implemented yet")
}
