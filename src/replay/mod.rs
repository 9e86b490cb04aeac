//! Replay of recorded traffic (SPEC §4–10): `settings` (flags ⊕ scenario ⊕ defaults)
//! → `job` (policies, lists, engine) → `source` (JSONL, Parquet) → `record` →
//! `pipeline` (both paths, one `Outcome` per record) → `aggregate` (mergeable,
//! per `window`) → `gate` (breach rule, confidence, plan, exit code). Report formats
//! live in `report`.

pub mod aggregate;
pub mod extract;
pub mod gate;
pub mod job;
pub mod parquet;
pub mod partial;
pub mod pipeline;
pub mod record;
pub mod scenario;
pub mod settings;
pub mod source;
pub mod window;
