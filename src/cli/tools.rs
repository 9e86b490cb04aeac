//! `proof completions` and `proof man`: generated from the same clap definitions as
//! the parser, so they cannot drift from the flags.

use clap::{Args, CommandFactory};

use super::Cli;

/// Flags of `proof completions`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// Shell to generate completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Flags of `proof man`.
#[derive(Debug, Clone, Args)]
pub struct ManArgs {}

/// Prints completions for a shell.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<i32> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "proof", &mut std::io::stdout());
    Ok(0)
}

/// Prints the man page.
pub fn man(_args: ManArgs) -> anyhow::Result<i32> {
    let cmd = Cli::command();
    clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?;
    Ok(0)
}
