//! Command-line interface: one module per subcommand, each with its own argument
//! struct and a `run()` that returns the process exit code. Parsing of values that
//! have a range (rollout, drift ratio, windows) happens here, at the edge.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::error::ProofError;

pub mod adapt;
pub mod diff;
pub mod generate;
pub mod hash;
pub mod merge;
pub mod progress;
/// The Python front door (`proof_replay._native`): the replay flags as keyword
/// arguments, built by maturin with the `python` feature.
#[cfg(feature = "python")]
pub mod python;
pub mod replay;
pub mod serve;
pub mod tools;

/// Top-level command line.
#[derive(Debug, Parser)]
#[command(
    name = "proof",
    version,
    about = "If we enforce this policy, what breaks, when, and at which rollout level is it safe?",
    long_about = "proof evaluates requests under a baseline (shadow) and a candidate (enforced) \
policy, measures drift between the two, and tells at which rollout level enforcing the \
candidate is safe. See docs/runbook_rollout.md for the staged procedure.",
    propagate_version = true
)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one context through the shadow and enforced paths: plan, verdicts, drift.
    Adapt(adapt::AdaptArgs),
    /// Replay recorded traffic through both paths: drift per window and rollout level, CI gate.
    Replay(Box<replay::ReplayArgs>),
    /// Merge partial aggregates (replay --partial-out) into one report (SPEC §10).
    Merge(Box<merge::MergeArgs>),
    /// Generate deterministic, realistic LkSG traffic (JSONL or Parquet).
    Gen(generate::GenArgs),
    /// Serve the engine over HTTP with /metrics, /readyz and hot reload.
    Serve(Box<serve::ServeArgs>),
    /// Compare two replays (BASE: main, NEW: the change): a CI regression gate and a PR comment.
    Diff(Box<diff::DiffArgs>),
    /// Print (or write into the file) the SPEC ir_hash of an IR file.
    Hash(hash::HashArgs),
    /// Print shell completions.
    Completions(tools::CompletionsArgs),
    /// Print the man pages (roff): proof(1), then one page per subcommand.
    Man(tools::ManArgs),
}

impl Cli {
    /// Runs the chosen subcommand; the result is the exit code.
    pub fn run(self) -> anyhow::Result<i32> {
        match self.command {
            Command::Adapt(a) => adapt::run(a),
            Command::Replay(a) => replay::run(*a),
            Command::Merge(a) => merge::run(*a),
            Command::Gen(a) => generate::run(a),
            Command::Serve(a) => serve::run(*a),
            Command::Diff(a) => diff::run(*a),
            Command::Hash(a) => hash::run(a),
            Command::Completions(a) => tools::completions(a),
            Command::Man(a) => tools::man(a),
        }
    }
}

pub use crate::policy::locate::{DEFAULT_POLICY_DIRS, resolve_policy};

/// Where the policy comes from: an id looked up in a directory, or a file.
#[derive(Debug, Clone, Args, Default)]
pub struct PolicyArgs {
    /// Baseline policy id such as lksg.v1 (no '/', not starting with '.'), looked up
    /// as <policy-dir>/<ID>.ir.json: the shadow path, and the enforced path too unless
    /// a candidate is given (one of --policy or --ir is required).
    #[arg(long, value_name = "ID", conflicts_with = "ir")]
    pub policy: Option<String>,
    /// Baseline policy IR file (instead of --policy; one of the two is required).
    #[arg(long, value_name = "FILE")]
    pub ir: Option<PathBuf>,
    /// Directory of <ID>.ir.json files [default: policies/, then fixtures/policies/].
    #[arg(long, value_name = "DIR", env = "PROOF_POLICY_DIR")]
    pub policy_dir: Option<PathBuf>,
}

impl PolicyArgs {
    /// The IR file these arguments name, if any.
    pub fn path(&self) -> Result<Option<PathBuf>, ProofError> {
        if let Some(ir) = &self.ir {
            return Ok(Some(ir.clone()));
        }
        match &self.policy {
            Some(id) => resolve_policy(id, self.policy_dir.as_deref()).map(Some),
            None => Ok(None),
        }
    }
}

/// Writes `bytes` to standard output and flushes. A reader that went away
/// (`proof gen | head`) is not an error: the rest of the output is dropped and the
/// command carries on to its own exit code, as ripgrep does.
pub fn print(bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}

/// Whether `e` is standard output's reader going away: a quiet end, not an error.
/// Only a bare `io::Error` counts; a broken pipe on a named file is a `ProofError`.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// clap value parser for rollout levels.
pub fn parse_rollout(s: &str) -> Result<crate::orchestrator::RolloutPercent, String> {
    s.parse()
}

/// clap value parser for drift ratios.
pub fn parse_ratio(s: &str) -> Result<f64, String> {
    crate::orchestrator::enforcer::parse_ratio(s)
}
