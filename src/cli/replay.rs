//! placeholder
use clap::Args;
/// Flags.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {}
/// Runs.
pub fn run(_a: ReplayArgs) -> anyhow::Result<i32> {
    anyhow::bail!("not yet")
}
