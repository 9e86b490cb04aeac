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
    // Into memory first: clap_complete panics when its writer fails (a closed pipe).
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "proof", &mut out);
    super::print(&out)?;
    Ok(0)
}

/// Prints the man pages: proof(1), then one page per subcommand (proof-adapt(1), …),
/// so every flag of every subcommand is in the output.
pub fn man(_args: ManArgs) -> anyhow::Result<i32> {
    let mut cmd = Cli::command();
    // Building names the subcommands "proof-adapt" (title) and "proof adapt" (synopsis).
    cmd.build();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        clap_mangen::Man::new(sub.clone()).render(&mut out)?;
    }
    super::print(&out)?;
    Ok(0)
}
