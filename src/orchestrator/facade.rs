//! The engine facade for single requests (SPEC §7): building the engine `adapt` and
//! `serve` share (one IR on both paths), and deciding one request into the output
//! JSON both print. `replay` evaluates records through the same [`Engine`].
//!
//! This module owns "what one request's answer is"; reading the request (a context
//! file, a POST body) is `replay::record`'s, printing or sending it the caller's.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{
    EnforceOptions, Engine, PathResult, PathSpec, Planner, RuleState, Scratch, SelectorKind,
    Verdict, Weights,
};
use crate::error::ProofError;
use crate::policy::expr::Env;
use crate::policy::{Policy, RuleOutcome};

/// What the engine of `adapt` and `serve` is built from.
#[derive(Debug, Clone)]
pub struct EngineOptions<'a> {
    /// The IR, on both paths.
    pub policy: Arc<Policy>,
    /// Selector of the enforced path (shadow always uses `basic`).
    pub selector: SelectorKind,
    /// Weights for the enforced path and the file they came from (named in errors).
    pub weights: Option<(&'a Weights, &'a Path)>,
}

/// Builds the engine of `adapt`/`serve`: shadow = the IR under basic, enforced = the
/// same IR under the chosen selector. Weights naming a rule the IR lacks are an error.
pub fn build_engine(opts: EngineOptions<'_>) -> Result<Engine, ProofError> {
    let EngineOptions {
        policy,
        selector,
        weights,
    } = opts;
    if let Some((w, p)) = weights {
        w.check_against(&policy, p)?;
    }
    let shadow = PathSpec {
        planner: Planner::new(&policy, SelectorKind::Basic, None),
        policy: policy.clone(),
    };
    let enforced = PathSpec {
        planner: Planner::new(&policy, selector, weights.map(|w| w.0)),
        policy: policy.clone(),
    };
    Ok(Engine {
        salt: policy.policy_id.clone(),
        shadow,
        enforced,
    })
}

/// How one request is decided.
#[derive(Debug, Clone, Copy)]
pub struct DecideOptions {
    /// Enforcement switches (`--enforce`, `--rollout`, `--drift-max`).
    pub enforce: EnforceOptions,
    /// Compute everything but never apply enforcement (`adapt --dry-run`).
    pub dry_run: bool,
}

/// One request to decide.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `now()` for the expressions, epoch milliseconds.
    pub ts_ms: i64,
    /// Request id for sampling.
    pub request_id: &'a str,
    /// The context object.
    pub context: &'a Map<String, Value>,
}

/// One step of the enforced plan.
#[derive(Debug, Serialize)]
pub struct StepOut {
    /// 0-based position.
    pub step_index: usize,
    /// Rule id.
    pub rule_id: String,
    /// Op name.
    pub op: &'static str,
    /// Cost under the selector.
    pub cost: u64,
}

/// The enforced path's plan.
#[derive(Debug, Serialize)]
pub struct PlanOut {
    /// Executed steps in order.
    pub steps: Vec<StepOut>,
    /// Sum of the steps' costs.
    pub total_cost: u64,
    /// Active rules the budget left out, in plan order.
    pub skipped: Vec<String>,
}

/// One path's decision.
#[derive(Debug, Serialize)]
pub struct PathOut {
    /// ok, warn or fail.
    pub verdict: Verdict,
    /// Rules that failed or errored, in plan order.
    pub failed_rules: Vec<String>,
    /// Error reason per errored rule.
    pub errors: BTreeMap<String, &'static str>,
}

/// The decision on one request: the output of `proof adapt` and the body of `serve`'s
/// `/v1/adapt` answer (SPEC §7 fixed keys, plus bucket and drift detail).
#[derive(Debug, Serialize)]
pub struct Decision {
    /// Candidate policy id.
    pub policy_id: String,
    /// Candidate policy hash.
    pub ir_hash: String,
    /// Request id used for sampling.
    pub request_id: String,
    /// Enforcement switches.
    pub options: EnforceOptions,
    /// The enforced path's plan.
    pub plan: PlanOut,
    /// Shadow decision.
    pub shadow: PathOut,
    /// Enforced decision (computed whether or not it applies).
    pub enforced: PathOut,
    /// Whether enforcement applied to this request.
    pub enforced_applied: bool,
    /// Applied and the verdicts differ.
    pub drift: bool,
    /// Sampling bucket, 0..=9999.
    pub bucket: u16,
    /// Drift kind (e.g. `ok->fail`) when the verdicts differ, applied or not.
    pub drift_kind: Option<&'static str>,
    /// First rule that explains the difference.
    pub drift_cause: Option<String>,
    /// Whether --dry-run was given.
    pub dry_run: bool,
    /// Timestamp `now()` used, RFC 3339.
    pub ts: String,
}

fn path_out(policy: &Policy, r: &PathResult) -> PathOut {
    let mut failed_rules = Vec::new();
    let mut errors = BTreeMap::new();
    for &(i, _) in &r.taken {
        match r.states[i] {
            RuleState::Ran(RuleOutcome::Fail) => failed_rules.push(policy.rules[i].id.clone()),
            RuleState::Ran(RuleOutcome::Error(e)) => {
                failed_rules.push(policy.rules[i].id.clone());
                errors.insert(policy.rules[i].id.clone(), e.as_str());
            }
            _ => {}
        }
    }
    PathOut {
        verdict: r.verdict,
        failed_rules,
        errors,
    }
}

/// Evaluates one request and builds its decision; also returns the evaluation's
/// latency in seconds (for the enforcer metrics).
pub fn decide(
    engine: &Engine,
    opts: DecideOptions,
    req: Request<'_>,
    scratch: &mut Scratch,
) -> (Decision, f64) {
    let DecideOptions {
        enforce: options,
        dry_run,
    } = opts;
    let env = Env {
        ctx: req.context,
        now_ms: req.ts_ms,
    };
    let t0 = Instant::now();
    let ev = engine.evaluate(&env, scratch);
    let latency = t0.elapsed().as_secs_f64();
    let bucket = engine.bucket(req.request_id);
    let applied = !dry_run && options.applies(bucket);
    let drift = engine.drift(&ev);
    let ep = &engine.enforced.policy;
    let plan = PlanOut {
        steps: ev
            .enforced
            .taken
            .iter()
            .enumerate()
            .map(|(k, &(i, cost))| StepOut {
                step_index: k,
                rule_id: ep.rules[i].id.clone(),
                op: ep.rules[i].op.name(),
                cost,
            })
            .collect(),
        total_cost: ev.enforced.total_cost(),
        skipped: ev
            .enforced
            .skipped
            .iter()
            .map(|&i| ep.rules[i].id.clone())
            .collect(),
    };
    let out = Decision {
        policy_id: ep.policy_id.clone(),
        ir_hash: ep.ir_hash.clone(),
        request_id: req.request_id.to_string(),
        options,
        plan,
        shadow: path_out(&engine.shadow.policy, &ev.shadow),
        enforced: path_out(ep, &ev.enforced),
        enforced_applied: applied,
        drift: applied && drift.is_some(),
        bucket,
        drift_kind: drift.map(|d| d.0.as_str()),
        drift_cause: drift.map(|d| d.1.to_string()),
        dry_run,
        ts: crate::policy::time::format_rfc3339_ms(req.ts_ms),
    };
    (out, latency)
}
