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
    /// Write every drifting record of the parts to FILE, Parquet or JSONL by its
    /// extension; every part must have been written with --drift-details [default: none].
    #[arg(long, value_name = "FILE")]
    pub drift_details: Option<PathBuf>,
    /// Stop with an error beyond this many windows in all parts (memory bound); whole
    /// number ≥ 0 [default: 100000].
    #[arg(long, value_name = "N")]
    pub max_windows: Option<usize>,
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
        max_windows: args.max_windows,
        drift_details: args.drift_details.clone(),
        ..args.gate.layer()?
    }
    .finish();
    let (files, warnings) = partial::expand(&args.partials)?;
    for w in warnings {
        // Not behind --quiet: fewer parts are merged than were named.
        crate::say!("proof: warning: {w}");
    }
    // An output naming a part would overwrite it (issue 24, item 5).
    let mut outputs: Vec<(&str, &std::path::Path)> = Vec::new();
    if let Some(p) = &args.partial_out {
        outputs.push(("--partial-out", p));
    }
    if let Some(p) = &args.drift_details {
        outputs.push(("--drift-details", p));
    }
    crate::report::writer::refuse_clobber(&outputs, &files)?;
    let stdin_uses = files.iter().filter(|p| p.as_os_str() == "-").count();
    if stdin_uses > 1 {
        anyhow::bail!("'-' (standard input) can be given once");
    }
    // One part at a time: read, fold, drop.
    let mut merger = partial::Merger::new(settings.max_windows);
    for f in &files {
        let part = partial::read(f, settings.max_windows)?;
        merger.add(&f.display().to_string(), part)?;
    }
    if let (Some(d), Some(part)) = (&settings.drift_details, merger.without_drift_details()) {
        anyhow::bail!(
            "--drift-details {}: {part} was written without --drift-details, so the drifting \
             records of its traffic are not in it; replay every part with --drift-details",
            d.display()
        );
    }
    let merged = merger.finish()?;
    // Everything is checked before anything is written.
    let report = crate::run::merge::report(&merged, &settings)?;
    if let Some(p) = &args.partial_out {
        crate::report::writer::write_atomic(p, &partial::encode(&merged)?)?;
    }
    emit(&settings, &report, lock.as_ref(), args.quiet)?;
    Ok(report.gate.exit_code)
}
