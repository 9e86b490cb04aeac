//! `proof merge`: combines partial aggregates (`replay --partial-out`, the Python
//! package, the Spark job) into the report of one run over all their records
//! (SPEC §10), under the gate flags of `replay`.

use std::path::PathBuf;

use clap::Args;

use super::replay::{GateArgs, emit};
use crate::replay::partial;
use crate::replay::settings::Layer;

/// Flags of `proof merge`.
#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// Partial files (`replay --partial-out`), directories of them (every file inside,
    /// in name order) or '-' for standard input (one partial).
    #[arg(value_name = "PARTIAL", required = true)]
    pub partials: Vec<PathBuf>,
    /// Output directory for the same files `proof replay --out` writes [default: print
    /// report.json].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Gate level, limits, confidence and plan (as for `proof replay`).
    #[command(flatten)]
    pub gate: GateArgs,
    /// Drifting records kept as examples in report.json; whole number ≥ 0, at most what
    /// the parts kept [default: 20].
    #[arg(long, value_name = "N")]
    pub examples: Option<usize>,
    /// Also write the merged partial to FILE (merge in stages) [default: none].
    #[arg(long, value_name = "FILE")]
    pub partial_out: Option<PathBuf>,
    /// Replace request ids in outputs by a keyed hash (HMAC-SHA256, key
    /// $PROOF_REDACT_KEY, else the salt).
    #[arg(long)]
    pub redact_ids: bool,
    /// No verdict paragraph on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs `proof merge`.
pub fn run(args: MergeArgs) -> anyhow::Result<i32> {
    // Locked (and probed) before any part is read.
    let lock = args
        .out
        .as_deref()
        .map(crate::report::writer::OutputDir::lock)
        .transpose()?;
    let settings = Layer {
        examples: args.examples,
        redact_ids: args.redact_ids.then_some(true),
        ..args.gate.layer()?
    }
    .finish();
    let files = partial::expand(&args.partials)?;
    let stdin_uses = files.iter().filter(|p| p.as_os_str() == "-").count();
    if stdin_uses > 1 {
        anyhow::bail!("'-' (standard input) can be given once");
    }
    let mut parts = Vec::with_capacity(files.len());
    for f in &files {
        parts.push((f.display().to_string(), partial::read(f)?));
    }
    let merged = partial::merge(parts)?;
    // Everything is checked before anything is written.
    let report = partial::report(&merged, &settings)?;
    if let Some(p) = &args.partial_out {
        crate::report::writer::write_atomic(p, &partial::encode(&merged)?)?;
    }
    emit(&settings, &report, lock.as_ref(), args.quiet)?;
    Ok(report.gate.exit_code)
}
