//! `proof`: answers, before a policy change goes live, what breaks if it is enforced,
//! when, and at which rollout level it is safe.
//!
//! Data flows one way: `replay::source` (JSONL, Parquet) → records → the
//! `orchestrator::Engine` (shadow and enforced paths) → `replay::aggregate`
//! (mergeable per-window state) → `report` model → one exporter per format.
//! `policy` owns the IR and its evaluation; `cli` maps flags onto the library.

// No unsafe code in the library. pyo3's macros (`#[pyfunction]`, `#[pymodule]`) expand
// to unsafe blocks, so the Python build denies it instead: the expansions carry
// `#[allow(unsafe_code)]`, which `forbid` would refuse and `deny` lets through, while
// any unsafe written by hand is still an error.
#![cfg_attr(not(feature = "python"), forbid(unsafe_code))]
#![cfg_attr(feature = "python", deny(unsafe_code))]

/// `eprintln!` that cannot panic. std's `eprintln!` panics when standard error is gone
/// (`proof replay … 2>&1 | head` after `head` exits), and a panic exits 101: a gate's
/// exit code 1 or 3, or an error's 2, would reach CI as 101. A message nobody can read
/// is dropped instead; the exit code stays the command's.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), $($arg)*);
    }};
}

pub mod cli;
pub mod config;
pub mod diff;
pub mod engine;
pub mod error;
pub mod files;
pub mod r#gen;
pub mod metrics;
pub mod orchestrator;
pub mod panics;
pub mod policy;
pub mod replay;
pub mod report;
pub mod run;
pub mod serve;
pub mod signals;

pub use error::ProofError;
