//! The `proof` binary: parses flags, runs the library, maps errors to exit codes.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = proof::cli::Cli::parse();
    // Ctrl-C or a CI timeout's SIGTERM never leaves `replay --out` or `merge --out`
    // half-written. Only there: `serve` shuts down gracefully on its own signals.
    if matches!(
        cli.command,
        proof::cli::Command::Replay(_) | proof::cli::Command::Merge(_)
    ) && let Err(e) = proof::signals::install()
    {
        proof::say!("proof: error: {e}");
        return ExitCode::from(2);
    }
    match cli.run() {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        // `proof gen | head`: the reader has what it wanted; end quietly.
        Err(e) if proof::cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Library errors already name the file, line and field; print the chain.
            proof::say!("proof: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
