//! `proof adapt`: one context through the shadow and enforced paths (SPEC §7, the
//! Week-6 B1 enforcer CLI), with replay's candidate flags (`CandidateArgs`) so a live
//! decision can be the one a replay planned. Prints the plan, both verdicts and drift as JSON and can
//! write the enforcer's Prometheus metrics for node_exporter's textfile collector.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use serde_json::Value;

use super::PolicyArgs;
use crate::engine::opa::replay::DECISION_RULE;
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
    /// context object; with --bundle, one OPA decision event.
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
    /// Baseline OPA bundle (SPEC §12): a directory or a .tar.gz, the bundle production
    /// ran; with --candidate-bundle, --context is one OPA decision event and the IR flags
    /// (--policy, --ir, --candidate-*, --selector, --weights, --shadow-*, --list) are
    /// refused [default: none: proof's IR engine].
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<PathBuf>,
    /// Candidate OPA bundle (SPEC §12), a directory or a .tar.gz; needs --bundle
    /// [default: none].
    #[arg(long, value_name = "FILE")]
    pub candidate_bundle: Option<PathBuf>,
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
    if args.bundle.is_some() || args.candidate_bundle.is_some() {
        return run_opa(args);
    }
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
        let (base, cand) = (&engine.shadow.policy, &engine.enforced.policy);
        write_metrics(
            mpath,
            [
                (base.policy_id.as_str(), base.ir_hash.as_str()),
                (cand.policy_id.as_str(), cand.ir_hash.as_str()),
            ],
            &Observation {
                options,
                shadow_policy: &base.policy_id,
                enforced_policy: &cand.policy_id,
                shadow: out.shadow.verdict,
                enforced: out.enforced.verdict,
                applied: out.enforced_applied,
                drift: out.drift,
                latency_seconds: latency,
            },
            input.ts_ms,
        )?;
    }

    let mut json = serde_json::to_vec_pretty(&out)?;
    json.push(b'\n');
    match &args.output {
        Some(p) => write_atomic(p, &json)?,
        None => super::print(&json)?,
    }
    Ok(0)
}

/// Writes the enforcer metrics of one decision (`--metrics-out`): both paths' identities
/// ([shadow, enforced] as (policy id, hash)), the observation and the 5 m drift gauge.
fn write_metrics(
    path: &std::path::Path,
    ids: [(&str, &str); 2],
    obs: &Observation<'_>,
    ts_ms: i64,
) -> anyhow::Result<()> {
    let metrics =
        AdaptMetrics::register(prometheus::default_registry()).context("registering metrics")?;
    metrics.set_policy("shadow", ids[0].0, ids[0].1);
    metrics.set_policy("enforced", ids[1].0, ids[1].1);
    metrics.observe(obs);
    let mut window = SlidingWindow::new(300_000, 1000);
    window.record(ts_ms, obs.drift, true);
    metrics
        .drift_ratio
        .with_label_values(&["5m"])
        .set(window.drift_ratio(ts_ms));
    write_atomic(path, metrics.render().as_bytes())?;
    Ok(())
}

/// One path of an OPA decision (SPEC §7's `shadow`/`enforced`, §12's value).
#[derive(Debug, Serialize)]
struct OpaPathOut {
    /// The bundle's policy id (its revision).
    policy_id: String,
    verdict: crate::orchestrator::Verdict,
    /// `["(decision)"]` when the verdict is fail: a bundle has no per-rule steps.
    failed_rules: Vec<&'static str>,
    /// `{"(decision)": reason}` for an evaluation error (`eval`, `budget`,
    /// `nondeterministic`, `verdict_type`).
    errors: BTreeMap<&'static str, &'static str>,
    /// The decision value; absent when undefined or on an evaluation error.
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<Value>,
}

/// What production answered: the event's `result` (SPEC §11).
#[derive(Debug, Serialize)]
struct RecordedOut {
    verdict: crate::orchestrator::Verdict,
    /// The recorded value; absent when the event has no `result` (undefined).
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<Value>,
    /// The baseline bundle's verdict equals it.
    faithful: bool,
}

/// `proof adapt --bundle --candidate-bundle`'s answer: §7's keys where they apply
/// (`plan` null), and §12's values, `changed` and cause.
#[derive(Debug, Serialize)]
struct OpaDecisionOut {
    engine: &'static str,
    /// Candidate bundle's policy id, as the IR answer names the candidate.
    policy_id: String,
    /// Candidate bundle's digest.
    ir_hash: String,
    request_id: String,
    decision: String,
    options: EnforceOptions,
    plan: Option<()>,
    shadow: OpaPathOut,
    enforced: OpaPathOut,
    enforced_applied: bool,
    drift: bool,
    bucket: u16,
    /// The `--bucket-key` value hashed; null when the request id is.
    bucket_key: Option<String>,
    /// `bucket < rollout × 100`, whatever --enforce and --dry-run say.
    in_rollout: bool,
    drift_kind: Option<&'static str>,
    drift_cause: Option<String>,
    changed: bool,
    recorded: RecordedOut,
    dry_run: bool,
    ts: String,
}

/// `proof adapt` with two bundles: one decision event explained as replay would.
fn run_opa(args: AdaptArgs) -> anyhow::Result<i32> {
    use crate::engine::opa::{
        Bundle, OpaEngine, OpaOptions, OpaReplay, Read, event_key, parse_event, recorded_verdict,
    };
    let c = &args.candidate;
    let ir_flags = [
        ("--policy", args.policy.policy.is_some()),
        ("--ir", args.policy.ir.is_some()),
        ("--candidate-policy", c.candidate_policy.is_some()),
        ("--candidate-ir", c.candidate_ir.is_some()),
        ("--weights", args.weights.is_some()),
        ("--shadow-weights", c.shadow_weights.is_some()),
        ("--list", !args.lists.is_empty()),
        (
            "--selector",
            args.selector != SelectorKind::Basic || c.shadow_selector != SelectorKind::Basic,
        ),
    ];
    if let Some((flag, _)) = ir_flags.iter().find(|(_, set)| *set) {
        return Err(ProofError::Usage(format!(
            "{flag} belongs to proof's IR engine and cannot be mixed with --bundle or \
             --candidate-bundle (SPEC §12)"
        ))
        .into());
    }
    let (Some(base), Some(cand)) = (&args.bundle, &args.candidate_bundle) else {
        return Err(ProofError::Usage(
            "adapt compares two bundles on one event: give both --bundle (the bundle \
             production ran) and --candidate-bundle (SPEC §12)"
                .into(),
        )
        .into());
    };
    let replay = OpaReplay::new(
        OpaEngine::new(Some(Bundle::load(base)?), Bundle::load(cand)?),
        OpaOptions {
            decision: None,
            bucket_key: c.bucket_key.clone(),
            recorded: None,
            salt: c.salt.clone(),
        },
    );
    let mut worker = replay.engine().worker()?;

    let path = &args.context;
    let bytes = crate::files::read_limited(path, CONTEXT_LIMIT)?;
    let event = match parse_event(&bytes, None) {
        Read::Event(e) => e,
        Read::Rejected(why) => {
            let at = match serde_json::from_slice::<Value>(&bytes) {
                Err(e) => crate::error::Location::at(path, e.line() as u64, e.column() as u64),
                Ok(_) => crate::error::Location::file(path),
            };
            return Err(ProofError::Config {
                path: at,
                msg: format!(
                    "not a decision event replay evaluates: it is rejected as {} (SPEC §12: \
                     an object with decision_id, an RFC 3339 timestamp and a path)",
                    why.as_str()
                ),
            }
            .into());
        }
        Read::Skipped(why) => {
            return Err(ProofError::Config {
                path: crate::error::Location::file(path),
                msg: format!(
                    "replay skips this event as {}: its erased or masked list names the \
                     input or the result, so what production saw is not in the log",
                    why.as_str()
                ),
            }
            .into());
        }
    };

    let t0 = std::time::Instant::now();
    let out = worker.evaluate(&event);
    let latency = t0.elapsed().as_secs_f64();
    let request_id = args
        .request_id
        .clone()
        .unwrap_or_else(|| event.decision_id.clone());
    let key = c
        .bucket_key
        .as_ref()
        .and_then(|p| event_key(&event, p.as_str()));
    let bucket =
        crate::orchestrator::enforcer::bucket(replay.salt(), key.as_deref().unwrap_or(&request_id));
    let options = args.options();
    let applied = !args.dry_run && options.applies(bucket);
    let kind = crate::orchestrator::DriftKind::of(out.shadow, out.enforced);
    let about = replay.about();
    let to_json = |v: &Option<crate::engine::opa::Value>| -> anyhow::Result<Option<Value>> {
        v.as_ref()
            .map(|v| serde_json::to_value(v).context("encoding a decision value"))
            .transpose()
    };
    let path_out = |id: &str,
                    verdict: crate::orchestrator::Verdict,
                    errors: &[&'static str],
                    value: Option<Value>| OpaPathOut {
        policy_id: id.to_string(),
        verdict,
        failed_rules: match verdict {
            crate::orchestrator::Verdict::Fail => vec![DECISION_RULE],
            _ => Vec::new(),
        },
        errors: errors.iter().map(|e| (DECISION_RULE, *e)).collect(),
        value,
    };
    let recorded = recorded_verdict(&event);
    let result = OpaDecisionOut {
        engine: "opa",
        policy_id: about.candidate.policy_id.clone(),
        ir_hash: about.candidate.hash.clone(),
        request_id,
        decision: event.path.to_string(),
        options,
        plan: None,
        shadow: path_out(
            &about.baseline.policy_id,
            out.shadow,
            &out.errors[0],
            to_json(&out.shadow_value)?,
        ),
        enforced: path_out(
            &about.candidate.policy_id,
            out.enforced,
            &out.errors[1],
            to_json(&out.enforced_value)?,
        ),
        enforced_applied: applied,
        drift: applied && kind.is_some(),
        bucket,
        bucket_key: key,
        in_rollout: options.rollout_percent.covers(bucket),
        drift_kind: kind.map(|k| k.as_str()),
        drift_cause: out.cause.clone(),
        changed: out.changed,
        recorded: RecordedOut {
            verdict: recorded,
            value: event.result.clone(),
            faithful: recorded == out.shadow,
        },
        dry_run: args.dry_run,
        ts: event
            .raw
            .get("timestamp")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    };

    if let Some(mpath) = &args.metrics_out {
        write_metrics(
            mpath,
            [
                (&about.baseline.policy_id, &about.baseline.hash),
                (&about.candidate.policy_id, &about.candidate.hash),
            ],
            &Observation {
                options,
                shadow_policy: &about.baseline.policy_id,
                enforced_policy: &about.candidate.policy_id,
                shadow: out.shadow,
                enforced: out.enforced,
                applied,
                drift: result.drift,
                latency_seconds: latency,
            },
            event.ts_ms,
        )?;
    }
    let mut json = serde_json::to_vec_pretty(&result)?;
    json.push(b'\n');
    match &args.output {
        Some(p) => write_atomic(p, &json)?,
        None => super::print(&json)?,
    }
    Ok(0)
}
