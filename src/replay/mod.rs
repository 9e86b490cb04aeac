//! Replay of recorded traffic (SPEC §4–10): `settings` (flags ⊕ scenario ⊕ defaults)
//! → `source` (JSONL, Parquet) → `record` →
//! `pipeline` (both paths, one `Outcome` per record) → `aggregate` (mergeable,
//! per `window`) → `gate` (breach rule, confidence, plan, exit code). Report formats
//! live in `report`; the run layer (`src/run`) drives a whole run (resolve, read,
//! aggregate, partial, report).

pub mod aggregate;
// The IR engine's record readers live with it (`crate::engine::ir`); their old paths stay.
pub use crate::engine::ir::{extract, parquet, record};
pub mod gate;
pub mod partial;
pub mod pipeline;
pub mod redact;
pub mod scenario;
pub mod settings;
pub mod source;
pub mod window;
