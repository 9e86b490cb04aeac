//! `proof hash`: prints the SPEC ir_hash of IR files, or writes it into them.

use std::path::PathBuf;

use clap::Args;
use serde_json::Value;

use crate::error::ProofError;
use crate::policy::hash::ir_hash;
use crate::report::writer::write_atomic;

/// Flags of `proof hash`.
#[derive(Debug, Clone, Args)]
pub struct HashArgs {
    /// IR files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Set the file's ir_hash key to the computed value (rewrites the file, pretty-printed).
    #[arg(long)]
    pub write: bool,
}

/// Runs `proof hash`.
pub fn run(args: HashArgs) -> anyhow::Result<i32> {
    for path in &args.files {
        let bytes = crate::files::read_limited(path, crate::policy::ir::IR_LIMIT)?;
        let mut v = crate::config::from_json_strict(&bytes, path)?;
        let h = ir_hash(&v)?;
        if args.write {
            let Value::Object(m) = &mut v else {
                return Err(ProofError::ir(path, "the IR must be a JSON object".into()).into());
            };
            m.insert("ir_hash".into(), Value::String(h.clone()));
            let mut out = serde_json::to_vec_pretty(&v)?;
            out.push(b'\n');
            // Write through a symlink to its target: replacing the link with a regular
            // file would cut it loose from the file it pointed at.
            let target = std::fs::canonicalize(path).map_err(|e| ProofError::io(path, e))?;
            write_atomic(&target, &out)?;
        }
        // A closed stdout does not stop --write from updating the remaining files.
        super::print(format!("{h}  {}\n", path.display()).as_bytes())?;
    }
    Ok(0)
}
