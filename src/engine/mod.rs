//! The seam between record sources and policy engines (SPEC §3, §4, §11, §12).
//!
//! A source hands an engine raw bytes (one JSONL line, one element of an OPA upload
//! body) or an Arrow batch; the engine reads them by its own record rules and answers
//! with a [`Read`]: rejected (with a fixed reason), skipped (with a fixed reason), or
//! a [`Decision`] — both verdicts, the rollout key, the drift kind and cause, whether
//! the decision value changed without a verdict change, the recorded verdict for the
//! fidelity check, and the evaluation errors. Everything downstream (windows, buckets,
//! aggregate, gate, partials, reports) reads only that, so the replay machinery knows
//! no engine by name.
//!
//! An engine also describes itself ([`About`]): its name, the identities and digests
//! of both paths for reports and the partial fingerprint (§10), and the names of the
//! rules its evaluation errors point at.
//!
//! Implementations: [`ir`] (proof's own IR, SPEC §1–§3) and [`opa`] (Rego bundles,
//! SPEC §12). Adding one is a module here and one arm of [`Loaded`].

pub mod ir;
pub mod key;
pub mod opa;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;

use crate::error::ProofError;
use crate::orchestrator::{DriftKind, Verdict};

pub use key::{BucketKey, KeyPath};

/// Why a record was rejected (SPEC §4, fixed names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Not valid JSON / UTF-8, not an object, duplicate keys, wrong field types.
    Malformed,
    /// No `ts`.
    MissingTs,
    /// `ts` neither RFC 3339 nor integer epoch milliseconds in years 1..=9999.
    BadTs,
    /// No non-empty string `request_id`.
    MissingRequestId,
    /// No `context` object.
    MissingContext,
    /// Longer than 16 MiB.
    TooLong,
    /// A `verdict` that is not `"ok"`, `"warn"` or `"fail"` (SPEC §11).
    BadVerdict,
    /// An OPA event without a decision `path` (SPEC §12).
    MissingPath,
}

impl Reason {
    /// Every reason, in report order.
    pub const ALL: [Reason; 8] = [
        Reason::Malformed,
        Reason::MissingTs,
        Reason::BadTs,
        Reason::MissingRequestId,
        Reason::MissingContext,
        Reason::TooLong,
        Reason::BadVerdict,
        Reason::MissingPath,
    ];

    /// Fixed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::MissingTs => "missing_ts",
            Reason::BadTs => "bad_ts",
            Reason::MissingRequestId => "missing_request_id",
            Reason::MissingContext => "missing_context",
            Reason::TooLong => "too_long",
            Reason::BadVerdict => "bad_verdict",
            Reason::MissingPath => "missing_path",
        }
    }

    /// Index into `ALL`.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Why a record that passed the checks is not evaluated (SPEC §4, §11, §12; fixed names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// It names another policy than the baseline (or `--baseline recorded=ID`).
    OtherPolicy,
    /// `--baseline recorded`, and the record carries no verdict.
    NoRecordedVerdict,
    /// An OPA event of another decision than `--decision`.
    OtherDecision,
    /// An OPA event whose input or result was erased or masked.
    Redacted,
}

impl Skip {
    /// Every reason, in report order.
    pub const ALL: [Skip; 4] = [
        Skip::OtherPolicy,
        Skip::NoRecordedVerdict,
        Skip::OtherDecision,
        Skip::Redacted,
    ];

    /// Fixed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::OtherPolicy => "other_policy",
            Skip::NoRecordedVerdict => "no_recorded_verdict",
            Skip::OtherDecision => "other_decision",
            Skip::Redacted => "redacted",
        }
    }

    /// Index into `ALL`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The reason of a fixed name.
    pub fn from_name(s: &str) -> Option<Skip> {
        Skip::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// An evaluation error of one path, for `evaluation_errors`: the rule (an index into
/// [`About::rules`] of that path) and a short reason (`missing_var`, `budget`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EvalError {
    /// 0 shadow, 1 enforced.
    pub path: u8,
    /// Index into the path's rule names.
    pub rule: u32,
    /// Fixed reason.
    pub reason: &'static str,
}

/// What an engine says about one evaluated record.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'a> {
    /// Record time, epoch milliseconds (the window is taken from it).
    pub ts_ms: i64,
    /// Request id (examples only; never a label).
    pub request_id: &'a str,
    /// What the rollout bucket hashes (SPEC §3).
    pub key: BucketKey<'a>,
    /// Shadow verdict (with a recorded baseline: the recorded one).
    pub shadow: Verdict,
    /// Enforced verdict, as if enforcement applied.
    pub enforced: Verdict,
    /// The verdict production returned, when the record carries one and the baseline
    /// is replayed (SPEC §11's fidelity check).
    pub recorded: Option<Verdict>,
    /// Drift kind and cause, when the verdicts differ.
    pub drift: Option<(DriftKind, &'a str)>,
    /// The verdicts agree but the decision values differ (SPEC §12).
    pub changed: bool,
    /// Evaluation errors of both paths.
    pub errors: &'a [EvalError],
    /// Time spent evaluating both paths, nanoseconds.
    pub latency_ns: u64,
}

/// One record as an engine read it.
#[derive(Debug, Clone, Copy)]
pub enum Read<'a> {
    /// Broke a record rule.
    Rejected(Reason),
    /// Passed the checks, but is not for this replay.
    Skipped(Skip),
    /// Evaluated on both paths.
    Evaluated(Decision<'a>),
}

/// One path's identity, for reports and the partial fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathAbout {
    /// Policy id (an IR `policy_id`, a bundle revision, or `recorded`).
    pub policy_id: String,
    /// Content hash (an IR's `ir_hash`, a bundle's digest; empty for `recorded`).
    pub hash: String,
    /// Where it was loaded from.
    pub path: String,
    /// Rule names its evaluation errors point at.
    pub rules: Vec<String>,
}

/// What an engine says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct About {
    /// `ir` or `opa`.
    pub engine: &'static str,
    /// Shadow path.
    pub baseline: PathAbout,
    /// Enforced path.
    pub candidate: PathAbout,
    /// The baseline is what production answered (§11), not a replayed policy.
    pub recorded_baseline: bool,
    /// Settings that make two replays comparable besides the hashes (selectors,
    /// weights and lists digests, the decision path): the partial fingerprint (§10).
    pub settings: Vec<(&'static str, String)>,
}

/// `sha256:` and the hex digest of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A policy engine behind replay: per-thread [`Worker`]s that read and evaluate
/// records. Implementations are cheap to share across threads.
pub trait Engine: Send + Sync {
    /// One thread's reader and evaluator, with its scratch state.
    type Worker<'e>: Worker + Send
    where
        Self: 'e;

    /// A new worker.
    fn worker(&self) -> Self::Worker<'_>;

    /// Checks a Parquet file's (or an Arrow batch's) schema for the columns this
    /// engine reads, giving the root columns to read in schema order; errors name the
    /// columns present.
    fn check_schema(&self, schema: &Schema) -> Result<Vec<usize>, String>;
}

/// Reads and evaluates records on one thread.
pub trait Worker {
    /// One JSONL line (without its newline) or one element of a JSON array of events.
    fn line(&mut self, line: &[u8]) -> Read<'_>;

    /// Every row of a batch whose schema passed [`Engine::check_schema`], in order.
    fn batch(&mut self, batch: &RecordBatch, each: &mut dyn FnMut(Read<'_>));
}

/// The engines a replay can run: the one registration point.
#[derive(Debug, Clone)]
pub enum Loaded {
    /// proof's IR (SPEC §1–§3).
    Ir(ir::IrEngine),
    /// OPA bundles (SPEC §12).
    Opa(opa::OpaReplay),
}

impl Loaded {
    /// What the engine says about itself.
    pub fn about(&self) -> &About {
        match self {
            Loaded::Ir(e) => e.about(),
            Loaded::Opa(e) => e.about(),
        }
    }

    /// The rollout salt (SPEC §3, §11, §12).
    pub fn salt(&self) -> &str {
        match self {
            Loaded::Ir(e) => e.salt(),
            Loaded::Opa(e) => e.salt(),
        }
    }

    /// Checks a schema (see [`Engine::check_schema`]).
    pub fn check_schema(&self, schema: &Schema) -> Result<Vec<usize>, String> {
        match self {
            Loaded::Ir(e) => Engine::check_schema(e, schema),
            Loaded::Opa(e) => Engine::check_schema(e, schema),
        }
    }
}

/// Calls `$body` with `$e` bound to the concrete engine of a [`Loaded`], so generic code
/// is compiled once per engine (no dynamic call per record).
#[macro_export]
macro_rules! with_engine {
    ($loaded:expr, $e:ident => $body:expr) => {
        match $loaded {
            $crate::engine::Loaded::Ir($e) => $body,
            $crate::engine::Loaded::Opa($e) => $body,
        }
    };
}

/// A schema error for a Parquet input, naming the file.
pub fn schema_error(path: &std::path::Path, msg: String) -> ProofError {
    ProofError::Schema {
        path: crate::error::Location::file(path),
        msg,
    }
}
