//! `proof adapt`: one context through the shadow and enforced paths (SPEC §7, the
//! Week-6 B1 enforcer CLI). Prints the plan, both verdicts and drift as JSON and can
//! write the enforcer's Prometheus metrics for node_exporter's textfile collector.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use serde_json::Value;

use super::PolicyArgs;
use crate::error::ProofError;
use crate::orchestrator::metrics::{AdaptMetrics, Observation, SlidingWindow};
use crate::orchestrator::{
    EnforceOptions, Engine, PathResult, PathSpec, Planner, RolloutPercent, RuleState, Scratch,
    SelectorKind, Verdict, Weights,
};
use crate::policy::expr::Env;
use crate::policy::hash::{jcs, sha256_hex};
use crate::policy::{ListSpec, Policy, RuleOutcome};
use crate::replay::record;
use crate::report::writer::write_atomic;

/// Flags of `proof adapt`.
#[derive(Debug, Clone, Args)]
pub struct AdaptArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub policy: PolicyArgs,
    /// Context file (required): a log record ({ts, request_id, context, …}) or a bare
    /// context object.
    #[arg(long, value_name = "FILE")]
    pub context: PathBuf,
    /// Let the candidate path decide for sampled requests [default: off = shadow only].
    #[arg(long)]
    pub enforce: bool,
    /// Share of requests enforced, whole percent 0..=100.
    #[arg(long, value_name = "PERCENT", default_value = "0", value_parser = super::parse_rollout)]
    pub rollout: RolloutPercent,
    /// Drift ratio limit, 0.0..=1.0 (0.005 = 0.5 %).
    #[arg(long, value_name = "RATIO", default_value = "0.005", value_parser = super::parse_ratio)]
    pub drift_max: f64,
    /// Selector of the enforced path (shadow always uses basic).
    #[arg(long, value_enum, default_value_t = SelectorKind::Basic)]
    pub selector: SelectorKind,
    /// Weights file (YAML or JSON) for --selector weighted: per-rule costs, optional budget
    /// [default: none: every rule at its op's default cost, no budget].
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Compute everything but never apply enforcement.
    #[arg(long)]
    pub dry_run: bool,
    /// Write the JSON result to FILE (atomically) instead of stdout [default: stdout].
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Bind a reference list: NAME=FILE (CSV: first column; else one value a line).
    /// Repeatable [default: none].
    #[arg(long = "list", value_name = "NAME=FILE")]
    pub lists: Vec<ListSpec>,
    /// Request id for sampling, any string [default: the record's, else sha256 of the
    /// context's JCS form].
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,
    /// Write this run's metrics in Prometheus text format to FILE (atomically), e.g. for
    /// node_exporter's textfile collector. Each run is its own process, so the counters
    /// count this one request and restart at 1 every run: never rate() or increase()
    /// them. The gauges and adapt_policy_info are the useful part; for rates, scrape
    /// `proof serve` [default: none].
    #[arg(long, value_name = "FILE")]
    pub metrics_out: Option<PathBuf>,
}

impl AdaptArgs {
    /// The enforcement switches these flags ask for.
    pub fn options(&self) -> EnforceOptions {
        EnforceOptions {
            enforce: self.enforce,
            rollout_percent: self.rollout,
            drift_max_ratio: self.drift_max,
        }
    }
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

/// Output of `proof adapt` (SPEC §7 fixed keys, plus bucket and drift detail).
#[derive(Debug, Serialize)]
pub struct AdaptOutput {
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

/// A context file read as a record: timestamp, request id and context.
pub struct ContextInput {
    /// `now()` for the expressions.
    pub ts_ms: i64,
    /// Request id from the record, if any.
    pub request_id: Option<String>,
    /// The context object.
    pub context: serde_json::Map<String, Value>,
}

/// Reads `--context`: a log record (an object with a `context` object) or a bare context.
pub fn read_context(path: &std::path::Path) -> Result<ContextInput, ProofError> {
    let bytes = std::fs::read(path).map_err(|e| ProofError::io(path, e))?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| ProofError::json(path, &e))?;
    let Value::Object(mut m) = v else {
        return Err(ProofError::config(
            path,
            0,
            "the context must be a JSON object".into(),
        ));
    };
    if !matches!(m.get("context"), Some(Value::Object(_))) {
        return Ok(ContextInput {
            ts_ms: crate::policy::time::now_ms(),
            request_id: None,
            context: m,
        });
    }
    let ts_ms = match m.get("ts") {
        None => crate::policy::time::now_ms(),
        ts => record::parse_ts(ts).map_err(|_| {
            ProofError::config(
                path,
                0,
                "field 'ts': expected an RFC 3339 date-time or integer epoch milliseconds".into(),
            )
        })?,
    };
    let request_id = match m.remove("request_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        Some(_) => {
            return Err(ProofError::config(
                path,
                0,
                "field 'request_id': expected a non-empty string".into(),
            ));
        }
    };
    let Some(Value::Object(context)) = m.remove("context") else {
        unreachable!("checked above");
    };
    Ok(ContextInput {
        ts_ms,
        request_id,
        context,
    })
}

/// Builds the engine of `adapt`/`serve`: shadow = IR under basic, enforced = the same
/// IR under the chosen selector.
pub fn build_engine(
    policy: Arc<Policy>,
    selector: SelectorKind,
    weights: Option<(&Weights, &std::path::Path)>,
) -> Result<Engine, ProofError> {
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

/// Evaluates one context and builds the output (shared with `serve`).
pub fn decide(
    engine: &Engine,
    options: EnforceOptions,
    dry_run: bool,
    ts_ms: i64,
    request_id: &str,
    context: &serde_json::Map<String, Value>,
    scratch: &mut Scratch,
) -> (AdaptOutput, f64) {
    let env = Env {
        ctx: context,
        now_ms: ts_ms,
    };
    let t0 = Instant::now();
    let ev = engine.evaluate(&env, scratch);
    let latency = t0.elapsed().as_secs_f64();
    let bucket = engine.bucket(request_id);
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
    let out = AdaptOutput {
        policy_id: ep.policy_id.clone(),
        ir_hash: ep.ir_hash.clone(),
        request_id: request_id.to_string(),
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
        ts: crate::policy::time::format_rfc3339_ms(ts_ms),
    };
    (out, latency)
}

/// Runs `proof adapt`.
pub fn run(args: AdaptArgs) -> anyhow::Result<i32> {
    let path = args
        .policy
        .path()?
        .ok_or_else(|| ProofError::Usage("one of --policy ID or --ir FILE is required".into()))?;
    if args.weights.is_some() && args.selector != SelectorKind::Weighted {
        return Err(
            ProofError::Usage("--weights only applies with --selector weighted".into()).into(),
        );
    }
    let lists = super::load_lists(&args.lists)?;
    let policy = Arc::new(super::load_policy(&path, &lists)?);
    let weights = match &args.weights {
        Some(p) => Some((Weights::load(p)?, p.clone())),
        None => None,
    };
    let engine = build_engine(
        policy.clone(),
        args.selector,
        weights.as_ref().map(|(w, p)| (w, p.as_path())),
    )?;
    let input = read_context(&args.context)?;
    let request_id = match (&args.request_id, &input.request_id) {
        (Some(id), _) => id.clone(),
        (None, Some(id)) => id.clone(),
        (None, None) => {
            let canon =
                jcs(&Value::Object(input.context.clone())).context("canonicalising the context")?;
            format!("sha256:{}", sha256_hex(canon.as_bytes()))
        }
    };
    let options = args.options();
    let mut scratch = Scratch::default();
    let (out, latency) = decide(
        &engine,
        options,
        args.dry_run,
        input.ts_ms,
        &request_id,
        &input.context,
        &mut scratch,
    );

    if let Some(mpath) = &args.metrics_out {
        let metrics = AdaptMetrics::register(prometheus::default_registry())
            .context("registering metrics")?;
        metrics.set_policy("shadow", &policy.policy_id, &policy.ir_hash);
        metrics.set_policy("enforced", &policy.policy_id, &policy.ir_hash);
        metrics.observe(&Observation {
            options,
            shadow_policy: &policy.policy_id,
            enforced_policy: &policy.policy_id,
            shadow: out.shadow.verdict,
            enforced: out.enforced.verdict,
            applied: out.enforced_applied,
            drift: out.drift,
            latency_seconds: latency,
        });
        let mut window = SlidingWindow::new(300_000, 1000);
        window.record(input.ts_ms, out.drift, true);
        metrics
            .drift_ratio
            .with_label_values(&["5m"])
            .set(window.drift_ratio(input.ts_ms));
        write_atomic(mpath, metrics.render().as_bytes())?;
    }

    let mut json = serde_json::to_vec_pretty(&out)?;
    json.push(b'\n');
    match &args.output {
        Some(p) => write_atomic(p, &json)?,
        None => super::print(&json)?,
    }
    Ok(0)
}
