//! Shared readers for YAML configuration (weights, scenarios, access maps).
//! serde-saphyr bounds alias expansion, so an alias bomb is an error, not an OOM.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::ProofError;

/// Largest configuration file read, in bytes.
pub const MAX_CONFIG_BYTES: usize = 16 * 1024 * 1024;

/// Reads a configuration file, refusing one over [`MAX_CONFIG_BYTES`] before reading
/// it whole (a wrong path to a multi-gigabyte log must not be slurped).
pub fn read_config(path: &Path) -> Result<Vec<u8>, ProofError> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| ProofError::io(path, e))?;
    let mut bytes = Vec::new();
    f.take(MAX_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ProofError::io(path, e))?;
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(too_big(path, "more than"));
    }
    Ok(bytes)
}

fn too_big(path: &Path, size: &str) -> ProofError {
    ProofError::Limit {
        path: crate::error::Location::file(path),
        msg: format!(
            "config file is {size} {MAX_CONFIG_BYTES} bytes; the limit is 16 MiB \
             (config::MAX_CONFIG_BYTES, fixed at build time: weights and scenarios are \
             kilobytes, so this is most likely the wrong file)"
        ),
    }
}

/// Parses YAML from bytes; errors name `path` and, where known, the line.
pub fn from_yaml<T: DeserializeOwned>(bytes: &[u8], path: &Path) -> Result<T, ProofError> {
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(too_big(path, &bytes.len().to_string()));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ProofError::config(path, 0, format!("not valid UTF-8: {e}")))?;
    serde_saphyr::from_str(text).map_err(|e| {
        let mut msg = e.to_string();
        if msg.contains("budget breached") {
            // serde-saphyr's budgets stop alias bombs and giant documents; say so.
            msg.push_str(
                "\n(the YAML grows past the reader's fixed size budget once its aliases are \
                 expanded — an alias bomb? write the values out instead of aliasing them)",
            );
        }
        ProofError::config(path, 0, msg)
    })
}
