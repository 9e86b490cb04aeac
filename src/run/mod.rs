//! The run layer, above replay and report: resolve the settings into a job (policies,
//! lists, engine), read and evaluate the inputs, aggregate, write a partial, build the
//! report (`job`); or judge merged partials (`merge`). The CLI, `proof merge`, the
//! Python package and the Spark job all go through here, so they agree to the digit;
//! `replay` (reading, evaluation, aggregation, the gate, the partial format) and
//! `report` (the model and its exporters) import neither this nor each other's callers.

pub mod job;
pub mod merge;

pub use job::Job;
