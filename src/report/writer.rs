//! The one place outputs touch the disk: every file is written to a temporary file in
//! the target directory, flushed, and renamed over the target, so a reader (or a
//! killed run) sees the old file or the new one, never half of one.

use std::io::Write;
use std::path::Path;

use crate::error::ProofError;

/// Writes `bytes` to `path` atomically (temp file in the same directory + rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ProofError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".proof-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| ProofError::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| ProofError::io(path, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| ProofError::io(path, e))?;
    tmp.persist(path)
        .map_err(|e| ProofError::io(path, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_file_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r.json");
        write_atomic(&p, b"old").unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        assert!(write_atomic(Path::new("/nonexistent-dir/x"), b"x").is_err());
    }
}
