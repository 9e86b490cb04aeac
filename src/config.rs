//! Shared readers for YAML configuration (weights, scenarios, access maps).
//! serde-saphyr bounds alias expansion, so an alias bomb is an error, not an OOM.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::ProofError;

/// Largest configuration file read, in bytes.
pub const MAX_CONFIG_BYTES: usize = 16 * 1024 * 1024;

/// Parses YAML from bytes; errors name `path` and, where known, the line.
pub fn from_yaml<T: DeserializeOwned>(bytes: &[u8], path: &Path) -> Result<T, ProofError> {
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(ProofError::Limit {
            path: crate::error::Location::file(path),
            msg: format!("config file larger than {MAX_CONFIG_BYTES} bytes"),
        });
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ProofError::config(path, 0, format!("not valid UTF-8: {e}")))?;
    serde_saphyr::from_str(text).map_err(|e| ProofError::config(path, 0, e.to_string()))
}
