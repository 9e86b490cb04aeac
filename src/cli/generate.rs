//! placeholder
use clap::Args;
/// Flags.
#[derive(Debug, Clone, Args)]
pub struct GenArgs {}
/// Runs.
pub fn run(_a: GenArgs) -> anyhow::Result<i32> {
    anyhow::bail!("not yet")
}
