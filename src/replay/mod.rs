//! Replay of recorded traffic (SPEC §4–6): sources → records → both paths →
//! mergeable per-window aggregates → gate. Report formats live in `report`.

pub mod aggregate;
pub mod parquet;
pub mod pipeline;
pub mod record;
pub mod scenario;
pub mod source;
