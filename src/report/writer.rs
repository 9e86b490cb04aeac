//! The one place outputs touch the disk: every file is written to a temporary file in
//! the target directory, flushed, and renamed over the target, so a reader (or a
//! killed run) sees the old file or the new one, never half of one.

use std::cell::Cell;
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use crate::error::ProofError;

/// Held while outputs are written; the signal thread takes it before exiting, so an
/// interrupt waits for the file (or set of files) being written instead of leaving a
/// `.proof-*.tmp` behind or a mix of old and new outputs.
static WRITING: Mutex<()> = Mutex::new(());

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Restores the nesting depth even if the guarded code panics.
struct Depth;

impl Drop for Depth {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Runs `f` with interrupts deferred (see [`install_signal_guard`]); nests freely.
pub fn uninterrupted<T>(f: impl FnOnce() -> T) -> T {
    let outer = DEPTH.with(|d| {
        let n = d.get();
        d.set(n + 1);
        n == 0
    });
    let _depth = Depth;
    let _guard = outer.then(|| WRITING.lock().unwrap_or_else(PoisonError::into_inner));
    f()
}

/// Makes SIGINT, SIGTERM and SIGHUP end the process with 128 + signal, but never in the
/// middle of [`uninterrupted`] writes: the previous outputs stay as they were, or the
/// new set is complete. Nothing else needs cleaning up, because temp files exist only
/// inside `write_atomic`. (SIGKILL cannot be caught; a `.proof-*.tmp` may then remain.)
pub fn install_signal_guard() -> Result<(), ProofError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(|e| ProofError::Usage(format!("cannot install signal handlers: {e}")))?;
    std::thread::Builder::new()
        .name("proof-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let _held = WRITING.lock().unwrap_or_else(PoisonError::into_inner);
                eprintln!(
                    "proof: interrupted by signal {sig}; no output file was left half-written"
                );
                std::process::exit(128 + sig);
            }
        })
        .map_err(|e| ProofError::Usage(format!("cannot start the signal thread: {e}")))?;
    Ok(())
}

/// Writes `bytes` to `path` atomically (temp file in the same directory + rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ProofError> {
    uninterrupted(|| write_atomic_now(path, bytes))
}

fn write_atomic_now(path: &Path, bytes: &[u8]) -> Result<(), ProofError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".proof-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| ProofError::io(dir, e))?;
    set_readable(tmp.as_file());
    tmp.write_all(bytes).map_err(|e| ProofError::io(path, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| ProofError::io(path, e))?;
    tmp.persist(path)
        .map_err(|e| ProofError::io(path, e.error))?;
    Ok(())
}

/// Temp files are created 0600; outputs are for sharing, so give them the usual 0644.
pub fn set_readable(f: &std::fs::File) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = f.set_permissions(std::fs::Permissions::from_mode(0o644));
    }
    #[cfg(not(unix))]
    let _ = f;
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
