//! The OPA engine core (SPEC §12, issue 23): Rego bundles as the baseline and
//! candidate policies, decision-log events as the records. Self-contained: it reads a
//! bundle, parses one event, and evaluates one event on both paths; the replay
//! pipeline, aggregation and the CLI drive it and know nothing of Rego.
//!
//! - [`bundle`]: loading, checking and compiling a bundle (directory or `.tar.gz`).
//! - [`event`]: one decision event → event, rejection or skip; bucket keys.
//! - [`eval`]: [`OpaEngine`] (shared) and [`Worker`] (per thread): verdicts, changed
//!   values, causes, evaluation errors, the per-query budget.
//! - [`nd`]: non-deterministic built-ins replayed from `nd_builtin_cache`.
//! - [`refs`]: what each rule names, read from regorus's AST at load time.
//! - [`verdict`]: §12's verdict of a value and value comparison.

pub mod bundle;
pub mod eval;
pub mod event;
pub mod nd;
pub mod parquet;
pub mod refs;
pub mod replay;
pub mod verdict;

pub use bundle::Bundle;
pub use eval::{OpaEngine, OpaEval, Worker, recorded_verdict};
pub use event::{DecisionPath, Event, Read, Reject, Skip, event_key, parse_event};
pub use regorus::Value;
pub use replay::{OpaOptions, OpaReplay};
