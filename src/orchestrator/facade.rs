//! The engine facade (SPEC §3, §7): building the engine all three front doors use
//! ([`build_engine`]: baseline and candidate IR, each path's selector and weights, the
//! salt), loading it from files for `adapt` and `serve` ([`EngineFiles`]), and deciding
//! one request into the output JSON both print. `replay` builds its engine with the
//! same [`build_engine`], so a record gets the same verdicts, bucket and drift cause.
//!
//! This module owns "what one request's answer is"; reading the request (a context
//! file, a POST body) is `replay::record`'s, printing or sending it the caller's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{
    EnforceOptions, Engine, PathResult, PathSpec, Planner, RuleState, Scratch, SelectorKind,
    Verdict, Weights,
};
use crate::error::ProofError;
use crate::files::FileSet;
use crate::policy::expr::Env;
use crate::policy::{ListSpec, Lists, Policy, RuleOutcome};

/// One path's selector and weights (with the file they came from, named in errors).
#[derive(Debug, Clone, Copy)]
pub struct PathChoice<'a> {
    /// `basic` or `weighted`.
    pub selector: SelectorKind,
    /// Weights for `weighted`, and their file.
    pub weights: Option<(&'a Weights, &'a Path)>,
}

impl PathChoice<'_> {
    /// The `basic` selector without weights: the shadow path's default (SPEC §3).
    pub const BASIC: PathChoice<'static> = PathChoice {
        selector: SelectorKind::Basic,
        weights: None,
    };
}

/// What an engine is built from: the same for `adapt`, `serve` and `replay`.
#[derive(Debug, Clone)]
pub struct EngineOptions<'a> {
    /// The baseline IR, evaluated on the shadow path.
    pub baseline: Arc<Policy>,
    /// The candidate IR, evaluated on the enforced path (SPEC §3 default: the baseline).
    pub candidate: Arc<Policy>,
    /// Selector and weights of the shadow path (default: basic).
    pub shadow: PathChoice<'a>,
    /// Selector and weights of the enforced path (`--selector`, `--weights`).
    pub enforced: PathChoice<'a>,
    /// Salt of the rollout hash; `None` = the baseline policy id (SPEC §3).
    pub salt: Option<String>,
}

/// Builds the engine every front door uses (SPEC §3): shadow = the baseline under its
/// selector, enforced = the candidate under its selector, salted with `salt` or the
/// baseline's id. Weights naming a rule their path's IR lacks are an error (the
/// enforced path's are checked first).
pub fn build_engine(opts: EngineOptions<'_>) -> Result<Engine, ProofError> {
    let EngineOptions {
        baseline,
        candidate,
        shadow,
        enforced,
        salt,
    } = opts;
    if let Some((w, p)) = enforced.weights {
        w.check_against(&candidate, p)?;
    }
    if let Some((w, p)) = shadow.weights {
        w.check_against(&baseline, p)?;
    }
    let salt = salt.unwrap_or_else(|| baseline.policy_id.clone());
    Ok(Engine::new(
        PathSpec {
            planner: Planner::new(&baseline, shadow.selector, shadow.weights.map(|w| w.0)),
            policy: baseline,
        },
        PathSpec {
            planner: Planner::new(&candidate, enforced.selector, enforced.weights.map(|w| w.0)),
            policy: candidate,
        },
        salt,
    ))
}

/// The files an engine of `adapt` or `serve` is loaded from (their candidate flags are
/// replay's, with the same defaults).
#[derive(Debug, Clone)]
pub struct EngineFiles {
    /// Baseline IR file (`--policy`/`--ir`).
    pub baseline: PathBuf,
    /// Candidate IR file (`--candidate-ir`/`--candidate-policy`); `None` = the baseline.
    pub candidate: Option<PathBuf>,
    /// Enforced path's selector (`--selector`).
    pub selector: SelectorKind,
    /// Enforced path's weights file (`--weights`).
    pub weights: Option<PathBuf>,
    /// Shadow path's selector (`--shadow-selector`).
    pub shadow_selector: SelectorKind,
    /// Shadow path's weights file (`--shadow-weights`).
    pub shadow_weights: Option<PathBuf>,
    /// `--salt`; `None` = the baseline policy id.
    pub salt: Option<String>,
    /// `--list` bindings.
    pub lists: Vec<ListSpec>,
}

impl EngineFiles {
    /// Every file the engine is read from, in load order (what hot reload watches).
    pub fn paths(&self) -> Vec<&Path> {
        let mut v = vec![self.baseline.as_path()];
        v.extend(self.candidate.as_deref());
        v.extend(self.weights.as_deref());
        v.extend(self.shadow_weights.as_deref());
        v.extend(self.lists.iter().map(|l| l.path.as_path()));
        v
    }

    /// Loads lists, both IRs and both weights files (in replay's order) and builds
    /// the engine with [`build_engine`].
    pub fn load(&self) -> Result<Engine, ProofError> {
        self.load_from(&FileSet::new())
    }

    /// [`EngineFiles::load`] reading each file once through `files` (serve fingerprints
    /// the bytes it loaded, and a pipe has no second read).
    pub fn load_from(&self, files: &FileSet) -> Result<Engine, ProofError> {
        let lists = Lists::load_from(&self.lists, files)?;
        let baseline = Arc::new(Policy::load_from(&self.baseline, &lists, files)?);
        let candidate = match &self.candidate {
            Some(p) => Arc::new(Policy::load_from(p, &lists, files)?),
            None => baseline.clone(),
        };
        fn load<'p>(
            p: Option<&'p Path>,
            files: &FileSet,
        ) -> Result<Option<(Weights, &'p Path)>, ProofError> {
            let read = |p| Weights::parse(&files.read(p, crate::config::LIMIT)?, p);
            p.map(|p| read(p).map(|w| (w, p))).transpose()
        }
        let weights = load(self.weights.as_deref(), files)?;
        let shadow_weights = load(self.shadow_weights.as_deref(), files)?;
        build_engine(EngineOptions {
            baseline,
            candidate,
            shadow: PathChoice {
                selector: self.shadow_selector,
                weights: shadow_weights.as_ref().map(|(w, p)| (w, *p)),
            },
            enforced: PathChoice {
                selector: self.selector,
                weights: weights.as_ref().map(|(w, p)| (w, *p)),
            },
            salt: self.salt.clone(),
        })
    }
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
    /// Request id.
    pub request_id: &'a str,
    /// What the rollout bucket hashes when it is not the request id (`--bucket-key`'s
    /// value, SPEC §3).
    pub bucket_key: Option<&'a str>,
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
        vars: None,
    };
    let t0 = Instant::now();
    // Borrowed from the scratch: no copy of the result per request.
    let ev = engine.evaluate_in(&env, &env, scratch);
    let latency = t0.elapsed().as_secs_f64();
    let bucket = engine.bucket(req.bucket_key.unwrap_or(req.request_id));
    let applied = !dry_run && options.applies(bucket);
    let drift = engine.drift(ev);
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
