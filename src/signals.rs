//! Process-wide handling of SIGINT, SIGTERM and SIGHUP for commands that write
//! outputs. The binary installs it once ([`install`]) for the commands that need it;
//! library code never installs handlers, it only marks stretches that must not be cut
//! ([`uninterrupted`]) and files to remove if a signal ends the run
//! ([`remove_on_interrupt`]). `serve` keeps its own graceful shutdown and does not
//! install this.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use crate::error::ProofError;

/// Held while outputs are written; the signal thread takes it before exiting, so an
/// interrupt waits for the set of files being written instead of leaving a mix of old
/// and new outputs or a temporary behind.
static WRITING: Mutex<()> = Mutex::new(());

/// Files the signal thread removes before it exits (lock files of the run).
static CLEANUP: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

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

/// Runs `f` with interrupts deferred until it returns; nests freely. Without
/// [`install`] it simply runs `f`.
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

/// Asks the signal thread to remove `path` if a signal ends the run.
pub fn remove_on_interrupt(path: &Path) {
    let mut v = CLEANUP.lock().unwrap_or_else(PoisonError::into_inner);
    v.push(path.to_path_buf());
}

/// Takes `path` off the list of [`remove_on_interrupt`] (the run removed it itself).
pub fn forget_on_interrupt(path: &Path) {
    let mut v = CLEANUP.lock().unwrap_or_else(PoisonError::into_inner);
    v.retain(|p| p != path);
}

/// Makes SIGINT, SIGTERM and SIGHUP end the process with 128 + signal, but never in the
/// middle of [`uninterrupted`] code: the previous outputs stay as they were, or the new
/// set is complete. (SIGKILL cannot be caught; `report::writer` clears what a killed
/// run leaves on the next run.)
pub fn install() -> Result<(), ProofError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(|e| ProofError::Internal(format!("cannot install signal handlers: {e}")))?;
    std::thread::Builder::new()
        .name("proof-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let _held = WRITING.lock().unwrap_or_else(PoisonError::into_inner);
                for p in CLEANUP
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .iter()
                {
                    let _ = std::fs::remove_file(p);
                }
                crate::say!(
                    "proof: interrupted by signal {sig}; no output file was left half-written"
                );
                std::process::exit(128 + sig);
            }
        })
        .map_err(|e| ProofError::Internal(format!("cannot start the signal thread: {e}")))?;
    Ok(())
}
