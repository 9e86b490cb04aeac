//! `proof adapt`: one context through the shadow and enforced paths (SPEC §7, the
//! Week-6 B1 enforcer CLI), with replay's candidate flags (`CandidateArgs`) so a live
//! decision can be the one a replay planned. Prints the plan, both verdicts and drift as JSON and can
//! write the enforcer's Prometheus metrics for node_exporter's textfile collector.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde_json::Value;

use super::PolicyArgs;
use crate::error::ProofError;
use crate::orchestrator::facade::EngineFiles;
use crate::orchestrator::metrics::{AdaptMetrics, Observation, SlidingWindow};
use crate::orchestrator::{
    DecideOptions, EnforceOptions, Request, RolloutPercent, Scratch, SelectorKind, decide,
};
use crate::policy::ListSpec;
use crate::policy::hash::{jcs, sha256_hex};
use crate::policy::locate::resolve_policy;
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
    /// Selector of the enforced path (the candidate IR; shadow: --shadow-selector).
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
    #[command(flatten)]
    #[allow(missing_docs)]
    pub candidate: CandidateArgs,
}

/// Replay's candidate flags, shared by `adapt` and `serve` (SPEC §3): with none of them
/// both paths evaluate the one IR, shadow under basic, and the salt is its policy id.
#[derive(Debug, Clone, Args)]
pub struct CandidateArgs {
    /// Candidate (enforced) IR file, as in replay [default: the --policy/--ir IR].
    #[arg(long, value_name = "FILE", conflicts_with = "candidate_policy")]
    pub candidate_ir: Option<PathBuf>,
    /// Candidate (enforced) policy id such as lksg.v2, looked up like --policy
    /// [default: the --policy/--ir IR].
    #[arg(long, value_name = "ID")]
    pub candidate_policy: Option<String>,
    /// Selector of the shadow path (the baseline IR).
    #[arg(long, value_enum, default_value_t = SelectorKind::Basic)]
    pub shadow_selector: SelectorKind,
    /// Weights file of the shadow path; needs --shadow-selector weighted [default: none:
    /// every rule at its op's default cost, no budget].
    #[arg(long, value_name = "FILE")]
    pub shadow_weights: Option<PathBuf>,
    /// Salt of the rollout hash, any string; give replay's to sample the same requests
    /// [default: the baseline policy id].
    #[arg(long, value_name = "S")]
    pub salt: Option<String>,
    /// Sticky rollouts (SPEC §3): hash the context value at this dotted PATH, such as
    /// tenant.id, into the rollout bucket instead of the request id, as replay
    /// --bucket-key does; a request without it falls back to its request id [default:
    /// the request id].
    #[arg(long, value_name = "PATH", value_parser = parse_key_path)]
    pub bucket_key: Option<crate::engine::KeyPath>,
}

fn parse_key_path(s: &str) -> Result<crate::engine::KeyPath, String> {
    s.parse()
}

/// The engine files `--policy/--ir`, `--selector/--weights`, `--list` and the
/// candidate flags name; selector/weights mismatches are usage errors.
pub fn engine_files(
    policy: &PolicyArgs,
    selector: SelectorKind,
    weights: Option<&PathBuf>,
    lists: &[ListSpec],
    candidate: &CandidateArgs,
) -> Result<EngineFiles, ProofError> {
    let baseline = policy
        .path()?
        .ok_or_else(|| ProofError::Usage("one of --policy ID or --ir FILE is required".into()))?;
    if weights.is_some() && selector != SelectorKind::Weighted {
        return Err(ProofError::Usage(
            "--weights only applies with --selector weighted".into(),
        ));
    }
    if candidate.shadow_weights.is_some() && candidate.shadow_selector != SelectorKind::Weighted {
        return Err(ProofError::Usage(
            "--shadow-weights only applies with --shadow-selector weighted".into(),
        ));
    }
    let candidate_path = match (&candidate.candidate_ir, &candidate.candidate_policy) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(id)) => Some(resolve_policy(id, policy.policy_dir.as_deref())?),
        (None, None) => None,
    };
    Ok(EngineFiles {
        baseline,
        candidate: candidate_path,
        selector,
        weights: weights.cloned(),
        shadow_selector: candidate.shadow_selector,
        shadow_weights: candidate.shadow_weights.clone(),
        salt: candidate.salt.clone(),
        lists: lists.to_vec(),
    })
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

/// `--context` holds one record: SPEC §4's record limit.
pub const CONTEXT_LIMIT: crate::files::Limit = crate::files::Limit {
    bytes: record::MAX_RECORD_BYTES as u64,
    what: "context file",
    why: "replay::record::MAX_RECORD_BYTES, the SPEC §4 record limit",
};

/// A context file read as a record: timestamp, request id and context.
pub struct ContextInput {
    /// `now()` for the expressions.
    pub ts_ms: i64,
    /// Request id from the record, if any.
    pub request_id: Option<String>,
    /// The context object.
    pub context: serde_json::Map<String, Value>,
}

/// Reads `--context`: a log record (an object with a `context` key) or a bare context,
/// with the record reader `replay` and `serve` use (`record::read_document`), so the
/// same bytes get the same answer. A rejection is a config error naming the file.
pub fn read_context(path: &std::path::Path) -> Result<ContextInput, ProofError> {
    let bytes = crate::files::read_limited(path, CONTEXT_LIMIT)?;
    let doc = record::read_document(&bytes, crate::policy::time::now_ms(), true).map_err(|r| {
        let r = record::explain(&bytes, r);
        let (line, column) = r.at.unwrap_or((0, 0));
        ProofError::Config {
            path: crate::error::Location::at(path, line, column),
            msg: format!("{} ({})", r.message, r.reason.as_str()),
        }
    })?;
    Ok(ContextInput {
        ts_ms: doc.ts_ms,
        request_id: doc.request_id,
        context: doc.context,
    })
}

/// Runs `proof adapt`.
pub fn run(args: AdaptArgs) -> anyhow::Result<i32> {
    let engine = engine_files(
        &args.policy,
        args.selector,
        args.weights.as_ref(),
        &args.lists,
        &args.candidate,
    )?
    .load()?;
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
    let mut key_buf = String::new();
    let (out, latency) =
        decide(
            &engine,
            DecideOptions {
                enforce: options,
                dry_run: args.dry_run,
            },
            Request {
                ts_ms: input.ts_ms,
                request_id: &request_id,
                bucket_key: args.candidate.bucket_key.as_ref().and_then(|k| {
                    crate::engine::key::key_text(k.walk(&input.context)?, &mut key_buf)
                }),
                context: &input.context,
            },
            &mut scratch,
        );

    if let Some(mpath) = &args.metrics_out {
        let metrics = AdaptMetrics::register(prometheus::default_registry())
            .context("registering metrics")?;
        let (base, cand) = (&engine.shadow.policy, &engine.enforced.policy);
        metrics.set_policy("shadow", &base.policy_id, &base.ir_hash);
        metrics.set_policy("enforced", &cand.policy_id, &cand.ir_hash);
        metrics.observe(&Observation {
            options,
            shadow_policy: &base.policy_id,
            enforced_policy: &cand.policy_id,
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
