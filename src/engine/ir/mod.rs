//! proof's IR behind the engine seam (SPEC §1–§4, §11): log records read into context
//! slots (`replay::record`, `replay::extract`), both paths evaluated by the
//! orchestrator's [`Engine`](crate::orchestrator::Engine) (shared rules, the max/min
//! memo), the rollout key taken from the request id or `--bucket-key`, and with
//! `--baseline recorded` the record's own verdict standing in for the shadow path.
//!
//! This module owns "what a native log record decides"; windows, buckets and counts
//! are the pipeline's.

use std::sync::LazyLock;
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use serde_json::{Map, Value};
use smallvec::SmallVec;

use super::key::{BucketKey, KeyPath, bucket_key};
use super::{About, Decision, EvalError, PathAbout, Read, Skip};
use crate::orchestrator::Planner;
use crate::orchestrator::{DriftKind, Engine as Paths, Evaluation, RuleState, Scratch, Verdict};
use crate::policy::expr::{Env, Memo, Resolved};
use crate::policy::{Lists, Policy, RuleOutcome};
pub mod extract;
pub mod parquet;
pub mod record;
pub(crate) mod scan;

use extract::PathTable;
use parquet::{ParquetColumns, for_each_row_ref};
use record::{Ctx, RecordBuf, RecordRef};

/// The cause of a drift against a recorded baseline when the candidate does not fail
/// (SPEC §11).
pub const RECORDED: &str = "(recorded)";

/// How records are matched and keyed.
#[derive(Debug, Clone, Default)]
pub struct IrOptions {
    /// Records naming another policy are skipped (`other_policy`); `None`: none is.
    pub policy_filter: Option<String>,
    /// `--bucket-key`.
    pub bucket_key: Option<KeyPath>,
    /// `--baseline recorded`: the record's verdict is the shadow verdict.
    pub recorded_baseline: bool,
    /// Digest of the bound lists (names and values), for the partial fingerprint.
    pub lists_digest: String,
}

/// The IR engine: both paths, the table records are read under, and the options.
#[derive(Debug, Clone)]
pub struct IrEngine {
    /// Shadow and enforced paths and the salt.
    pub paths: Paths,
    table: PathTable,
    opts: IrOptions,
    about: About,
}

impl IrEngine {
    /// Wraps built paths. `baseline_path` and `candidate_path` are where the IRs were
    /// loaded from (for reports).
    pub fn new(paths: Paths, opts: IrOptions, files: [String; 2]) -> IrEngine {
        let table = PathTable::for_vars_and_key(
            [
                paths.shadow.policy.vars.names(),
                paths.enforced.policy.vars.names(),
            ],
            opts.bucket_key.as_ref(),
        );
        let [bf, cf] = files;
        let about_of = |spec: &crate::orchestrator::PathSpec, file: String| PathAbout {
            policy_id: spec.policy.policy_id.clone(),
            hash: spec.policy.ir_hash.clone(),
            path: file,
            rules: spec.policy.rules.iter().map(|r| r.id.clone()).collect(),
        };
        let mut baseline = about_of(&paths.shadow, bf);
        if opts.recorded_baseline {
            baseline = PathAbout {
                policy_id: "recorded".into(),
                hash: String::new(),
                path: String::new(),
                rules: Vec::new(),
            };
        }
        let (sp, ep) = (&paths.shadow, &paths.enforced);
        let about = About {
            engine: "ir",
            candidate: about_of(&paths.enforced, cf),
            baseline,
            recorded_baseline: opts.recorded_baseline,
            settings: vec![
                ("shadow_selector", sp.planner.kind.as_str().into()),
                ("candidate_selector", ep.planner.kind.as_str().into()),
                ("shadow_weights", weights_digest(&sp.policy, &sp.planner)),
                ("candidate_weights", weights_digest(&ep.policy, &ep.planner)),
                ("lists", opts.lists_digest.clone()),
            ],
        };
        IrEngine {
            paths,
            table,
            opts,
            about,
        }
    }

    /// What the engine says about itself.
    pub fn about(&self) -> &About {
        &self.about
    }

    /// The rollout salt.
    pub fn salt(&self) -> &str {
        &self.paths.salt
    }

    /// The table records are read under (context slots and the bucket key).
    pub fn table(&self) -> &PathTable {
        &self.table
    }
}

impl super::Engine for IrEngine {
    type Worker<'e> = IrWorker<'e>;

    fn worker(&self) -> IrWorker<'_> {
        IrWorker {
            engine: self,
            buf: RecordBuf::default(),
            state: State::default(),
        }
    }

    fn check_schema(&self, schema: &Schema) -> Result<Vec<usize>, String> {
        ParquetColumns::from_schema(schema, std::path::Path::new(""))
            .map(|(_, roots)| roots)
            .map_err(|e| match e {
                crate::ProofError::Schema { msg, .. } => msg,
                other => other.to_string(),
            })
    }
}

/// Per-thread scratch of the evaluation (everything but the record buffer).
#[derive(Debug, Default)]
struct State {
    scratch: Scratch,
    key: String,
    errors: Vec<EvalError>,
}

/// One thread's reader and evaluator.
#[derive(Debug)]
pub struct IrWorker<'e> {
    engine: &'e IrEngine,
    buf: RecordBuf,
    state: State,
}

impl super::Worker for IrWorker<'_> {
    fn line(&mut self, line: &[u8]) -> Read<'_> {
        match self.buf.read(line, &self.engine.table) {
            Ok(rec) => decide(self.engine, rec, &mut self.state),
            Err(reason) => Read::Rejected(reason),
        }
    }

    fn batch(&mut self, batch: &RecordBatch, each: &mut dyn FnMut(Read<'_>)) {
        let engine = self.engine;
        let state = &mut self.state;
        let cols = match ParquetColumns::from_schema(&batch.schema(), std::path::Path::new("")) {
            Ok((cols, _)) => cols,
            Err(_) => {
                // The schema was checked when the input was opened; a batch from
                // Python or Spark that lacks the columns has no readable row.
                for _ in 0..batch.num_rows() {
                    each(Read::Rejected(super::Reason::Malformed));
                }
                return;
            }
        };
        for_each_row_ref(batch, &cols, &engine.table, |rec| match rec {
            Ok(rec) => each(decide(engine, rec, state)),
            Err(reason) => each(Read::Rejected(reason)),
        });
    }
}

/// Decides one record that passed the record checks.
fn decide<'a>(e: &'a IrEngine, rec: RecordRef<'a>, st: &'a mut State) -> Read<'a> {
    if let Some(id) = &e.opts.policy_filter
        && rec.policy_id.is_some_and(|p| p != id)
    {
        return Read::Skipped(Skip::OtherPolicy);
    }
    let recorded = match (e.opts.recorded_baseline, rec.verdict) {
        (true, None) => return Read::Skipped(Skip::NoRecordedVerdict),
        (true, Some(v)) => Some(v),
        (false, _) => None,
    };
    let t0 = Instant::now();
    let ev = evaluate_ref(&e.paths, &rec, &mut st.scratch);
    let latency_ns = t0.elapsed().as_nanos() as u64;
    st.errors.clear();
    for (path, result) in [(0u8, &ev.shadow), (1, &ev.enforced)] {
        if path == 0 && recorded.is_some() {
            continue; // no baseline policy was evaluated
        }
        for (rule, s) in result.states.iter().enumerate() {
            if let RuleState::Ran(RuleOutcome::Error(err)) = s {
                st.errors.push(EvalError {
                    path,
                    rule: rule as u32,
                    reason: err.as_str(),
                });
            }
        }
    }
    let (shadow, drift) = match recorded {
        Some(v) => (
            v,
            DriftKind::of(v, ev.enforced.verdict).map(|k| (k, recorded_cause(e, ev))),
        ),
        None => (
            ev.shadow.verdict,
            e.paths.drift_cause(ev).map(|(k, c)| (k, c.as_str())),
        ),
    };
    let key = match &e.opts.bucket_key {
        None => BucketKey::RequestId,
        Some(path) => {
            let v = match rec.context {
                Ctx::Map(m) => path.walk(m),
                Ctx::Slots(slots, layout) => layout.key(slots),
            };
            bucket_key(v, &mut st.key)
        }
    };
    Read::Evaluated(Decision {
        ts_ms: rec.ts_ms,
        request_id: rec.request_id,
        key,
        shadow,
        enforced: ev.enforced.verdict,
        recorded: if recorded.is_some() {
            None
        } else {
            rec.verdict
        },
        drift,
        changed: false,
        errors: &st.errors,
        latency_ns,
    })
}

/// Digest of a path's effective rule order, costs and budget.
fn weights_digest(p: &Policy, planner: &Planner) -> String {
    let order: Vec<(&str, u64)> = planner
        .order
        .iter()
        .map(|&(i, c)| (p.rules[i].id.as_str(), c))
        .collect();
    let v = serde_json::json!({"order": order, "budget": planner.budget});
    super::digest(v.to_string().as_bytes())
}

/// Digest of bound lists (names and sorted distinct values).
pub fn lists_digest(lists: &Lists) -> String {
    let mut m = std::collections::BTreeMap::new();
    for (name, _, _) in lists.summary() {
        if let Some(d) = lists.get(&name) {
            let mut vals = d.values.clone();
            vals.sort();
            vals.dedup();
            m.insert(name, vals);
        }
    }
    super::digest(serde_json::to_string(&m).unwrap_or_default().as_bytes())
}

/// SPEC §11: against a recorded baseline, the cause is the candidate's first bad rule
/// in §3's order (taken steps, then skipped rules) when the candidate fails, else
/// `(recorded)`.
fn recorded_cause<'a>(e: &'a IrEngine, ev: &Evaluation) -> &'a str {
    if ev.enforced.verdict == Verdict::Fail {
        let rules = &e.paths.enforced.policy.rules;
        let order = ev
            .enforced
            .taken
            .iter()
            .map(|(i, _)| *i)
            .chain(ev.enforced.skipped.iter().copied());
        for i in order {
            if ev.enforced.states[i].is_bad() {
                return &rules[i].id;
            }
        }
    }
    RECORDED
}

/// Evaluates both paths on a borrowed record. A context read into slots
/// (`Ctx::Slots`) must come from a table made for these paths: its vars are resolved
/// once per path and evaluated by index.
/// The result lives in `scratch` until the next call.
pub fn evaluate_ref<'s>(
    paths: &Paths,
    rec: &RecordRef<'_>,
    scratch: &'s mut Scratch,
) -> &'s Evaluation {
    match rec.context {
        Ctx::Map(ctx) => {
            let env = Env {
                ctx,
                now_ms: rec.ts_ms,
                vars: None,
            };
            paths.evaluate_in(&env, &env, scratch)
        }
        Ctx::Slots(slots, layout) => {
            static EMPTY: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);
            let (mut s, mut e) = (SmallVec::new(), SmallVec::new());
            layout.resolve(0, slots, &mut s);
            layout.resolve(1, slots, &mut e);
            let memo = Memo::default();
            let (s, e) = (
                Resolved {
                    values: &s,
                    memo: &memo,
                },
                Resolved {
                    values: &e,
                    memo: &memo,
                },
            );
            let env = |vars| Env {
                ctx: &EMPTY,
                now_ms: rec.ts_ms,
                vars: Some(vars),
            };
            paths.evaluate_in(&env(&s), &env(&e), scratch)
        }
    }
}
