//! Where `--policy ID` finds its IR file: `<dir>/<ID>.ir.json`, in `--policy-dir` or
//! the default directories.

use std::path::{Path, PathBuf};

use crate::error::ProofError;

/// Default places `--policy ID` looks in, in order, when neither `--policy-dir` nor
/// `PROOF_POLICY_DIR` is set.
pub const DEFAULT_POLICY_DIRS: [&str; 2] = ["policies", "fixtures/policies"];

/// Finds `<dir>/<id>.ir.json`.
pub fn resolve_policy(id: &str, dir: Option<&Path>) -> Result<PathBuf, ProofError> {
    if id.is_empty() || id.contains('/') || id.contains('\\') || id.starts_with('.') {
        return Err(ProofError::Usage(format!(
            "--policy takes a policy id such as lksg.v1, not a path ('{id}'); use --ir FILE for a file"
        )));
    }
    let file = format!("{id}.ir.json");
    let dirs: Vec<PathBuf> = match dir {
        Some(d) => vec![d.to_path_buf()],
        None => DEFAULT_POLICY_DIRS.iter().map(PathBuf::from).collect(),
    };
    for d in &dirs {
        let p = d.join(&file);
        if p.is_file() {
            return Ok(p);
        }
    }
    let looked: Vec<String> = dirs
        .iter()
        .map(|d| d.join(&file).display().to_string())
        .collect();
    Err(ProofError::Usage(format!(
        "policy '{id}' not found (looked for {}); set --policy-dir or PROOF_POLICY_DIR",
        looked.join(", ")
    )))
}
