//! placeholder
use clap::Args;
/// Flags.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {}
/// Runs.
pub fn run(_a: ServeArgs) -> anyhow::Result<i32> {
    anyhow::bail!("not yet")
}
