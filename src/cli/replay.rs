//! `proof replay`: replays recorded traffic through the shadow and enforced paths,
//! computes drift per window and rollout level, gates CI with exit codes (SPEC §5)
//! and writes the reports (SPEC §6). The flags are one settings layer over a
//! `--scenario` file's (`replay::settings`); the work is `run::job`.

use crate::engine::KeyPath;
use crate::replay::settings::Baseline;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::error::ProofError;
use crate::orchestrator::{RolloutPercent, SelectorKind};
use crate::policy::ListSpec;
use crate::replay::gate::{Confidence, Plan};
use crate::replay::scenario::Scenario;
use crate::replay::settings::{
    Layer, PlanSetting, Settings, parse_levels, parse_rollback_factor, parse_threads,
};
use crate::replay::source::Format;
use crate::replay::window::WindowLen;
use crate::report::model::Report;
use crate::report::writer::OutputLock;
use crate::report::{self, Exporter};
use crate::run::job::{Job, REDACT_KEY_WARNING};

pub use crate::replay::redact::redact;

/// Levels as one clap value (a comma-separated list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Levels(pub Vec<RolloutPercent>);

pub(crate) fn parse_levels_arg(s: &str) -> Result<Levels, String> {
    parse_levels(s).map(Levels)
}

/// The gate flags, shared by `replay` and `merge` (SPEC §5, §8, §9, §10).
#[derive(Debug, Clone, Args, Default)]
pub struct GateArgs {
    /// Gate level, whole percent 0..=100 [default: 100].
    #[arg(long, value_name = "PERCENT", value_parser = super::parse_rollout)]
    pub rollout: Option<RolloutPercent>,
    /// A window breaches above this drift ratio, 0.0..=1.0 [default: 0.005].
    #[arg(long, value_name = "RATIO", value_parser = super::parse_ratio)]
    pub drift_max: Option<f64>,
    /// Rollout levels to report: comma-separated whole percents 0..=100; the gate level is always added [default: 0,1,5,10,25,50,100].
    #[arg(long, value_name = "LIST", value_parser = parse_levels_arg)]
    pub levels: Option<Levels>,
    /// Windows with fewer evaluated records never breach; whole number ≥ 0 [default: 1].
    #[arg(long, value_name = "N")]
    pub min_requests: Option<u64>,
    /// Rollback line: ratio above FACTOR × drift-max; a number ≥ 1 [default: 2].
    #[arg(long, value_name = "FACTOR", value_parser = parse_rollback_factor)]
    pub rollback_factor: Option<f64>,
    /// Exit 3 when more records than this are rejected; whole number ≥ 0 [default: 0].
    #[arg(long, value_name = "N")]
    pub max_rejects: Option<u64>,
    /// Judge one-sided Wilson bounds at this confidence instead of point ratios (SPEC §8):
    /// a decimal 0.5..=0.9999 such as 0.95 [default: off].
    #[arg(long, value_name = "C", value_parser = Confidence::parse)]
    pub confidence: Option<Confidence>,
    /// Simulate a staged rollout over the traffic (SPEC §9): a plan file (YAML/JSON:
    /// steps, failure_limit, start), an Argo Rollouts `kind: Rollout` or a Flagger
    /// `kind: Canary` manifest [default: none].
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Exit 3 when one rule errors (missing_var, type, …) on more than this share of a
    /// path's evaluated records, 0.0..=1.0 [default: off; the bundled scenario sets it].
    #[arg(long, value_name = "RATIO", value_parser = super::parse_ratio)]
    pub max_eval_error_ratio: Option<f64>,
    /// Exit 3 when more than this share of the records carrying a recorded `verdict` is
    /// replayed otherwise by the baseline (SPEC §11), 0.0..=1.0 [default: 0.001].
    #[arg(long, value_name = "RATIO", value_parser = super::parse_ratio)]
    pub max_unfaithful_ratio: Option<f64>,
}

impl GateArgs {
    /// The gate flags as a settings layer (the plan file is read here, so its errors
    /// name it).
    pub fn layer(&self) -> Result<Layer, ProofError> {
        let plan = match &self.plan {
            Some(p) => Some(PlanSetting {
                plan: Plan::load(p)?,
                origin: format!("--plan {}", p.display()),
            }),
            None => None,
        };
        Ok(Layer {
            rollout: self.rollout,
            drift_max: self.drift_max,
            levels: self.levels.clone().map(|l| l.0),
            min_requests: self.min_requests,
            rollback_factor: self.rollback_factor,
            max_rejects: self.max_rejects,
            confidence: self.confidence,
            plan,
            max_eval_error_ratio: self.max_eval_error_ratio,
            max_unfaithful_ratio: self.max_unfaithful_ratio,
            ..Layer::default()
        })
    }
}

/// Flags of `proof replay` (names fixed by SPEC §6).
#[derive(Debug, Clone, Args, Default)]
pub struct ReplayArgs {
    /// Log files or directories (JSONL, .gz, .zst, Parquet; a directory contributes its
    /// *.jsonl, *.ndjson, *.log, *.parquet, *.pq files); '-' reads standard input (plain,
    /// gzip or zstd, told by its first bytes) [default: the --scenario file's logs; one
    /// of the two is required].
    #[arg(value_name = "LOG")]
    pub logs: Vec<PathBuf>,
    /// Baseline (shadow) policy id such as lksg.v1 (no '/', not starting with '.'), looked
    /// up as <policy-dir>/<ID>.ir.json (one of --policy, --ir or the scenario's is required).
    #[arg(long, value_name = "ID", conflicts_with = "ir")]
    pub policy: Option<String>,
    /// Baseline (shadow) IR file: the policy the records were served under (instead of
    /// --policy; one of --policy, --ir or the scenario's is required).
    #[arg(long, value_name = "FILE")]
    pub ir: Option<PathBuf>,
    /// Directory of <ID>.ir.json files [default: policies/, then fixtures/policies/].
    #[arg(long, value_name = "DIR", env = "PROOF_POLICY_DIR")]
    pub policy_dir: Option<PathBuf>,
    /// Candidate (enforced) IR file [default: the baseline].
    #[arg(long, value_name = "FILE", conflicts_with = "candidate_policy")]
    pub candidate_ir: Option<PathBuf>,
    /// Candidate (enforced) policy id such as lksg.v2, looked up like --policy
    /// [default: the baseline].
    #[arg(long, value_name = "ID")]
    pub candidate_policy: Option<String>,
    /// Selector of the candidate path [default: basic].
    #[arg(long, value_enum)]
    pub selector: Option<SelectorKind>,
    /// Weights file (YAML or JSON) of the candidate path; needs --selector weighted
    /// [default: none: every rule at its op's default cost, no budget].
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Selector of the shadow path [default: basic].
    #[arg(long, value_enum)]
    pub shadow_selector: Option<SelectorKind>,
    /// Weights file of the shadow path; needs --shadow-selector weighted [default: none:
    /// every rule at its op's default cost, no budget].
    #[arg(long, value_name = "FILE")]
    pub shadow_weights: Option<PathBuf>,
    /// The shadow verdict is what production answered, as each record's `verdict`
    /// carries it (SPEC §11): `recorded`, or `recorded=ID` to keep only records of policy
    /// ID (and salt with it). No baseline policy is replayed; give the candidate
    /// [default: the baseline policy, replayed].
    #[arg(long, value_name = "MODE", value_parser = parse_baseline)]
    pub baseline: Option<Baseline>,
    /// Sticky rollouts (SPEC §3): hash the context value at this dotted PATH, such as
    /// tenant.id or user (for OPA events input.user), into the rollout bucket instead of the request id; records without it
    /// fall back to their request id and are counted [default: the request id].
    #[arg(long, value_name = "PATH", value_parser = parse_key_path)]
    pub bucket_key: Option<KeyPath>,
    /// Baseline OPA bundle (SPEC §12): a directory or a .tar.gz with .rego files and
    /// data.json/data.yaml, the bundle production ran; the logs are then OPA decision
    /// events [default: none: proof's IR engine].
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<PathBuf>,
    /// Candidate OPA bundle (SPEC §12), a directory or a .tar.gz [default: none].
    #[arg(long, value_name = "FILE")]
    pub candidate_bundle: Option<PathBuf>,
    /// Only OPA events of this decision path, such as http/authz/allow (others are
    /// skipped as other_decision) [default: every event].
    #[arg(long, value_name = "ID")]
    pub decision: Option<String>,
    /// Bind a reference list: NAME=FILE (CSV: first column; else one value a line).
    /// Repeatable; adds to the scenario's lists [default: none].
    #[arg(long = "list", value_name = "NAME=FILE")]
    pub lists: Vec<ListSpec>,
    /// Gate level, limits, confidence and plan.
    #[command(flatten)]
    pub gate: GateArgs,
    /// Window length: a whole number with unit ms, s, m, h or d (30s, 1m, 5m, 15m, 1h), 1ms..=366d [default: 5m].
    #[arg(long, value_name = "SPAN", value_parser = WindowLen::parse)]
    pub window: Option<WindowLen>,
    /// Salt of the rollout hash, any string [default: the baseline policy id].
    #[arg(long, value_name = "S")]
    pub salt: Option<String>,
    /// Input format for every log [default: by extension and content; stdin: jsonl].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Worker threads, 1..=1024 [default: number of CPUs].
    #[arg(long, value_name = "N", value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Scenario file (YAML) with the same settings; flags override it [default: none].
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Output directory for report.json, windows.csv, metrics.om, report.html, report.md,
    /// junit.xml and gate.prom [default: print report.json]. With $GITHUB_STEP_SUMMARY set,
    /// report.md is also appended to that file.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write every drifting record (ts, request id, verdicts, kind, cause, bucket, source)
    /// to FILE, Parquet or JSONL by its extension (.parquet, .jsonl) [default: none].
    #[arg(long, value_name = "FILE")]
    pub drift_details: Option<PathBuf>,
    /// Replace request ids in outputs by a keyed hash (HMAC-SHA256). Key: $PROOF_REDACT_KEY;
    /// without it the salt, which report.json shows, so ids can be guessed (a warning says so).
    #[arg(long)]
    pub redact_ids: bool,
    /// Drifting records kept as examples in report.json; whole number ≥ 0, 0 keeps none [default: 20].
    #[arg(long, value_name = "N")]
    pub examples: Option<usize>,
    /// Stop with an error beyond this many windows (memory bound); whole number ≥ 0 [default: 100000].
    #[arg(long, value_name = "N")]
    pub max_windows: Option<usize>,
    /// Also write the partial aggregate of these inputs to FILE, for `proof merge`
    /// (SPEC §10) [default: none].
    #[arg(long, value_name = "FILE")]
    pub partial_out: Option<PathBuf>,
    /// No progress bar and no verdict paragraph on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

fn parse_baseline(s: &str) -> Result<Baseline, String> {
    s.parse()
}

fn parse_key_path(s: &str) -> Result<KeyPath, String> {
    s.parse()
}

impl ReplayArgs {
    /// The flags as a settings layer.
    pub fn layer(&self) -> Result<Layer, ProofError> {
        Ok(Layer {
            logs: self.logs.clone(),
            policy: self.policy.clone(),
            ir: self.ir.clone(),
            policy_dir: self.policy_dir.clone(),
            candidate_ir: self.candidate_ir.clone(),
            candidate_policy: self.candidate_policy.clone(),
            selector: self.selector,
            weights: self.weights.clone(),
            shadow_selector: self.shadow_selector,
            shadow_weights: self.shadow_weights.clone(),
            lists: self.lists.clone(),
            window: self.window,
            salt: self.salt.clone(),
            format: self.format,
            threads: self.threads,
            out: self.out.clone(),
            examples: self.examples,
            max_windows: self.max_windows,
            drift_details: self.drift_details.clone(),
            redact_ids: self.redact_ids.then_some(true),
            partial_out: self.partial_out.clone(),
            baseline: self.baseline.clone(),
            bucket_key: self.bucket_key.clone(),
            bundle: self.bundle.clone(),
            candidate_bundle: self.candidate_bundle.clone(),
            decision: self.decision.clone(),
            ..self.gate.layer()?
        })
    }

    /// Flags over the scenario over defaults, loaded into a job.
    pub fn job(&self) -> Result<Job, ProofError> {
        let scenario = match &self.scenario {
            Some(p) => Scenario::load(p)?,
            None => Layer::default(),
        };
        let mut job = Job::resolve(self.layer()?.combine(scenario).finish())?;
        job.config.scenario = self.scenario.as_ref().map(|p| p.display().to_string());
        Ok(job)
    }
}

/// Appends report.md to the GitHub Actions job summary file (never truncates it).
pub fn append_step_summary(path: &Path, report: &Report) -> Result<(), ProofError> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| ProofError::io(path, e))?;
    let md = report::markdown::MarkdownExporter.serialize(report)?;
    f.write_all(&md)
        .and_then(|()| f.write_all(b"\n"))
        .map_err(|e| ProofError::io(path, e))
}

/// Writes the report set into `out` (or report.json to stdout), the drift details,
/// the step summary, and the verdict on stderr; shared by `replay` and `merge`.
pub fn emit(
    settings: &Settings,
    report: &Report,
    out: Option<&OutputLock>,
    quiet: bool,
) -> anyhow::Result<()> {
    let exporters = report::exporters();
    let refs: Vec<&dyn Exporter> = exporters.iter().map(|e| e.as_ref()).collect();
    match out {
        Some(lock) => {
            report::write_outputs(lock, report, &refs)?;
        }
        // A closed stdout drops report.json but keeps the gate's exit code.
        None => super::print(&report::json::JsonExporter.serialize(report)?)?,
    }
    if let Some(path) = &settings.drift_details {
        let rows = report::drift_details::write(path, &report.drift_details)?;
        if !quiet {
            crate::say!("proof: {rows} drifting record(s) in {}", path.display());
        }
    }
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()) {
        // A CI nicety: a failure here is reported but never changes the gate's exit code.
        if let Err(e) = append_step_summary(Path::new(&summary), report) {
            crate::say!("proof: warning: {e}");
        }
    }
    if !quiet {
        crate::say!("proof: {}", report.summary.verdict);
        if let Some(lock) = out {
            crate::say!("proof: reports in {}", lock.dir().display());
        }
    }
    Ok(())
}

/// Runs `proof replay`.
pub fn run(args: ReplayArgs) -> anyhow::Result<i32> {
    // Locked (and probed) before anything is read; held until the run ends.
    let scenario = match &args.scenario {
        Some(p) => Scenario::load(p)?,
        None => Layer::default(),
    };
    let lock = args
        .out
        .as_deref()
        .or(scenario.out.as_deref())
        .map(report::writer::OutputDir::lock)
        .transpose()?;
    let settings = args.layer()?.combine(scenario).finish();
    let (mut inputs, outputs) = settings.io_paths();
    inputs.extend(args.scenario.clone());
    report::writer::refuse_clobber(&outputs, &inputs)?;
    let mut job = Job::resolve(settings)?;
    job.config.scenario = args.scenario.as_ref().map(|p| p.display().to_string());
    if job.settings.redact_ids && !job.config.redact_key_set {
        // Not behind --quiet: the ids in the outputs can be recovered by anyone with
        // report.json and a guess at their format.
        crate::say!("proof: warning: {REDACT_KEY_WARNING}");
    }
    let inputs = job.inputs()?;
    let progress = crate::run::job::Progress::default();
    let (_, report) = super::progress::with_bar(&inputs, args.quiet, &progress, || {
        job.run(&inputs, &progress)
    })?;
    if let (Some(p), None) = (&job.settings.partial_out, &lock) {
        // A shard of a split job: its part is the product; the gate is judged by
        // `proof merge` over all the parts, so this run neither prints report.json
        // nor fails on its share of the traffic. Its drifting records are in the part
        // (for `merge --drift-details`) and, when asked for, in their own file too.
        if let Some(path) = &job.settings.drift_details {
            let rows = report::drift_details::write(path, &report.drift_details)?;
            if !args.quiet {
                crate::say!("proof: {rows} drifting record(s) in {}", path.display());
            }
        }
        if !args.quiet {
            crate::say!(
                "proof: partial aggregate of {} records in {} (judge it with proof merge)",
                report.records.read,
                p.display()
            );
        }
        return Ok(0);
    }
    emit(&job.settings, &report, lock.as_ref(), args.quiet)?;
    Ok(report.gate.exit_code)
}
