//! The serialised schema of report.json (SPEC §6): the fixed field names are the serde
//! names here, plus the typed parts exporters read that report.json leaves out.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::orchestrator::{RolloutPercent, Verdict};
use crate::policy::time::format_rfc3339_ms;
use crate::replay::aggregate::FileCounts;
use crate::replay::gate::{PlanResult, RunFailure};

/// Schema tag of report.json.
pub const SCHEMA: &str = "proof.replay/v1";

pub use crate::replay::gate::GateSettings;

/// `records` (fixed).
#[derive(Debug, Clone, Serialize)]
pub struct Records {
    /// read = evaluated + rejected + skipped.
    pub read: u64,
    /// Evaluated on both paths.
    pub evaluated: u64,
    /// Rejected.
    pub rejected: u64,
    /// Skipped (another policy).
    pub skipped: u64,
    /// Non-zero reasons only.
    pub rejected_by_reason: BTreeMap<&'static str, u64>,
    /// Skips by reason, non-zero reasons only (SPEC §12).
    pub skipped_by_reason: BTreeMap<&'static str, u64>,
    /// Evaluated records whose `--bucket-key` value was missing (SPEC §3; 0 without
    /// the flag).
    pub bucket_key_missing: u64,
}

/// Verdict counts of one path.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct VerdictCounts {
    /// ok.
    pub ok: u64,
    /// warn.
    pub warn: u64,
    /// fail.
    pub fail: u64,
}

impl VerdictCounts {
    /// The count of one verdict.
    pub fn of(&self, v: Verdict) -> u64 {
        match v {
            Verdict::Ok => self.ok,
            Verdict::Warn => self.warn,
            Verdict::Fail => self.fail,
        }
    }

    pub(super) fn from(v: [u64; 3]) -> Self {
        VerdictCounts {
            ok: v[Verdict::Ok.index()],
            warn: v[Verdict::Warn.index()],
            fail: v[Verdict::Fail.index()],
        }
    }
}

/// `verdicts` (fixed; enforced as at 100 %).
#[derive(Debug, Clone, Serialize)]
pub struct Verdicts {
    /// Shadow path.
    pub shadow: VerdictCounts,
    /// Enforced path at 100 %.
    pub enforced: VerdictCounts,
}

/// One cause and its count.
#[derive(Debug, Clone, Serialize)]
pub struct CauseCount {
    /// Rule id, `budget_skip` or `no_active_rules`.
    pub cause: String,
    /// Drift events.
    pub events: u64,
}

/// `drift` (fixed; as at 100 %).
#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    /// Drifting records.
    pub events: u64,
    /// events / evaluated.
    pub ratio: f64,
    /// Non-zero kinds only.
    pub by_kind: BTreeMap<&'static str, u64>,
    /// By events descending, then cause.
    pub by_cause: Vec<CauseCount>,
    /// Records whose verdicts agree but whose decision values differ (SPEC §12; 0 for
    /// the IR, whose decision is its verdict).
    pub changed_values: u64,
}

/// `fidelity` (fixed, SPEC §11): how much of production the replayed baseline reproduced.
#[derive(Debug, Clone, Serialize)]
pub struct FidelityOut {
    /// Evaluated records carrying a recorded verdict.
    pub checked: u64,
    /// Replayed as production answered.
    pub faithful: u64,
    /// Replayed otherwise.
    pub unfaithful: u64,
    /// Unfaithful records by `recorded->replayed`, non-zero kinds only.
    pub by_kind: BTreeMap<&'static str, u64>,
}

/// A record the replayed baseline did not reproduce (free form).
#[derive(Debug, Clone, Serialize)]
pub struct UnfaithfulOut {
    /// RFC 3339 UTC.
    pub ts: String,
    /// Request id (redacted with `--redact-ids`).
    pub request_id: String,
    /// What production answered.
    pub recorded: &'static str,
    /// What the replayed baseline answered.
    pub replayed: &'static str,
    /// Where it was read: input path and line.
    pub source: String,
}

/// One entry of `levels` (fixed).
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    /// Rollout level.
    pub rollout_percent: RolloutPercent,
    /// Drifting records enforced at this level.
    pub drift_events: u64,
    /// drift_events / evaluated.
    pub drift_ratio: f64,
    /// Largest window ratio at this level.
    pub max_window_ratio: f64,
    /// Windows that breach at this level.
    pub breached_windows: u64,
    /// Windows that call for rollback at this level.
    pub rollback_windows: u64,
    /// Windows that pass at this level (SPEC §8; 0 when confidence is off).
    pub passed_windows: u64,
}

/// Drift of one window at one level.
#[derive(Debug, Clone, Serialize)]
pub struct WindowLevel {
    /// Rollout level.
    pub rollout_percent: RolloutPercent,
    /// Drifting records.
    pub events: u64,
    /// events / requests.
    pub ratio: f64,
    /// Wilson lower bound (SPEC §8; only with confidence on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lower: Option<f64>,
    /// Wilson upper bound (only with confidence on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upper: Option<f64>,
    /// The window breaches at this level (the gate's judgement, not in report.json).
    #[serde(skip)]
    pub breach: bool,
    /// The window calls for rollback at this level.
    #[serde(skip)]
    pub rollback: bool,
    /// The window passes at this level (confidence on).
    #[serde(skip)]
    pub pass: bool,
}

/// One entry of `windows` (fixed).
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// RFC 3339 UTC start.
    pub start: String,
    /// RFC 3339 UTC end.
    pub end: String,
    /// Evaluated records.
    pub requests: u64,
    /// One entry per level, in level order.
    pub drift: Vec<WindowLevel>,
}

/// `gate` (fixed).
#[derive(Debug, Clone, Serialize)]
pub struct Gate {
    /// Gate level.
    pub rollout_percent: RolloutPercent,
    /// Drift ratio limit.
    pub drift_max: f64,
    /// No window breaches at the gate level.
    pub passed: bool,
    /// Starts of breaching windows, ascending.
    pub breached_windows: Vec<String>,
    /// Largest whole percent at which no window breaches.
    pub max_safe_rollout_percent: u8,
    /// `--confidence`, or null (SPEC §8).
    pub confidence: Option<f64>,
    /// Largest whole percent proven safe at that confidence, or null (SPEC §8).
    pub proven_safe_rollout_percent: Option<u8>,
    /// 0, 1 or 3 (SPEC §5): the code the process exits with.
    pub exit_code: i32,
    /// Why the run exits 3, as the gate decided it (not part of report.json: the
    /// exporters read it instead of comparing counts with limits again).
    #[serde(skip)]
    pub failure: RunFailure,
}

/// A drifting record shown as an example (no context values).
#[derive(Debug, Clone, Serialize)]
pub struct ExampleOut {
    /// Record time.
    pub ts: String,
    /// Request id, or its keyed hash with --redact-ids.
    pub request_id: String,
    /// Shadow verdict.
    pub shadow: Verdict,
    /// Enforced verdict.
    pub enforced: Verdict,
    /// Drift kind.
    pub kind: &'static str,
    /// Cause.
    pub cause: String,
    /// Sampling bucket.
    pub bucket: u16,
    /// `file:line`.
    pub source: String,
}

/// A rejected record's place and reason.
#[derive(Debug, Clone, Serialize)]
pub struct RejectionOut {
    /// Input path.
    pub file: String,
    /// 1-based line or row.
    pub line: u64,
    /// Reason.
    pub reason: &'static str,
}

/// One input file and its counts.
#[derive(Debug, Clone, Serialize)]
pub struct InputFile {
    /// Path as given.
    pub path: String,
    /// jsonl or parquet.
    pub format: String,
    /// none, gzip or zstd.
    pub compression: String,
    /// Size on disk.
    pub bytes: Option<u64>,
    /// Counts.
    #[serde(flatten)]
    pub counts: FileCounts,
}

/// A policy path's identity.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyRef {
    /// Policy id.
    pub policy_id: String,
    /// IR hash.
    pub ir_hash: String,
    /// IR file.
    pub path: String,
    /// Selector.
    pub selector: &'static str,
    /// Weights file, if any.
    pub weights: Option<String>,
    /// Budget, if any.
    pub budget: Option<u64>,
}

/// A bound list.
#[derive(Debug, Clone, Serialize)]
pub struct ListRef {
    /// Variable name.
    pub name: String,
    /// File.
    pub path: String,
    /// Number of values.
    pub values: usize,
}

/// `inputs` (free form).
#[derive(Debug, Clone, Serialize)]
pub struct Inputs {
    /// Log files in read order.
    pub files: Vec<InputFile>,
    /// Shadow path.
    pub baseline: PolicyRef,
    /// Enforced path.
    pub candidate: PolicyRef,
    /// Bound lists.
    pub lists: Vec<ListRef>,
}

/// `config` (free form): the effective settings.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigOut {
    /// Window length, e.g. `5m`.
    pub window: String,
    /// Gate level.
    pub rollout: RolloutPercent,
    /// Drift ratio limit.
    pub drift_max: f64,
    /// Levels reported.
    pub levels: Vec<RolloutPercent>,
    /// Minimum requests for a window to breach.
    pub min_requests: u64,
    /// Rollback factor.
    pub rollback_factor: f64,
    /// Rejections tolerated.
    pub max_rejects: u64,
    /// Sampling salt.
    pub salt: String,
    /// Whether request ids are redacted.
    pub redact_ids: bool,
    /// With `redact_ids`: whether `PROOF_REDACT_KEY` keyed the hashes (never the key
    /// itself). False means the salt above did, so the ids can be guessed.
    pub redact_key_set: bool,
    /// Scenario file, if any.
    pub scenario: Option<String>,
    /// `--max-eval-error-ratio`, if set.
    pub max_eval_error_ratio: Option<f64>,
}

/// `latency` (free form, not reproducible): selection latency and run timings.
#[derive(Debug, Clone, Serialize, Default)]
pub struct LatencyOut {
    /// Median selection latency, microseconds.
    pub selection_p50_us: f64,
    /// 95th percentile, microseconds.
    pub selection_p95_us: f64,
    /// 99th percentile, microseconds.
    pub selection_p99_us: f64,
    /// Maximum, microseconds.
    pub selection_max_us: f64,
    /// Worker threads.
    pub threads: usize,
    /// Wall-clock seconds of the replay.
    pub wall_seconds: f64,
    /// Records read per wall-clock second.
    pub records_per_second: f64,
}

/// Quick answers for people (free form).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// One line: safe up to N % / gate failed at N %.
    pub headline: String,
    /// The stderr paragraph.
    pub verdict: String,
    /// Windows with at least one evaluated record.
    pub windows: usize,
    /// Window with the highest ratio at the gate level among windows with at least
    /// min-requests requests, if any drift.
    pub worst_window: Option<WorstWindow>,
    /// Starts of rollback windows at the gate level.
    pub rollback_windows: Vec<String>,
    /// Problems a person must see (a rule that errors on most records of a path).
    pub warnings: Vec<String>,
}

/// The worst window at the gate level.
#[derive(Debug, Clone, Serialize)]
pub struct WorstWindow {
    /// Start, RFC 3339.
    pub start: String,
    /// Ratio.
    pub ratio: f64,
    /// Drift events.
    pub events: u64,
    /// Requests.
    pub requests: u64,
}

/// Per-window figures for the exporters that draw or export time series (metrics.om,
/// the HTML charts, the what-if curve); not part of report.json. Plain numbers, so no
/// exporter aggregates again.
#[derive(Debug, Clone)]
pub struct WindowSeries {
    /// Window start, epoch ms.
    pub start_ms: i64,
    /// Window end, epoch ms.
    pub end_ms: i64,
    /// Evaluated records.
    pub requests: u64,
    /// The window has at least `--min-requests` requests: the gate judges it.
    pub counted: bool,
    /// Shadow verdicts.
    pub shadow: VerdictCounts,
    /// Enforced verdicts of the records enforced at the gate level.
    pub enforced_at_gate: VerdictCounts,
    /// Cumulative drift by whole percent: `drift_by_percent[L]` = drifting records
    /// with bucket < L × 100, for L in 0..=100 (101 entries).
    pub drift_by_percent: Vec<u64>,
    /// Selection latency histogram, `LATENCY_BUCKETS` plus +Inf (not cumulative).
    pub latency_buckets: Vec<u64>,
    /// Sum of selection latencies, nanoseconds.
    pub latency_sum_ns: u64,
    /// The plan's first run's level in this window (0 once rolled back); `None`
    /// without `--plan` or before that run starts.
    pub plan_rollout_percent: Option<u8>,
}

impl WindowSeries {
    /// Drifting records enforced at `level`.
    pub fn drift_at(&self, level: RolloutPercent) -> u64 {
        self.drift_by_percent
            .get(usize::from(level.get()))
            .copied()
            .unwrap_or(0)
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `proof.replay/v1`.
    pub schema: &'static str,
    /// Summary for people.
    pub summary: Summary,
    /// Accounting.
    pub records: Records,
    /// Verdict mix.
    pub verdicts: Verdicts,
    /// Drift as at 100 %.
    pub drift: Drift,
    /// The fidelity check (SPEC §11); null when no evaluated record carried a verdict.
    pub fidelity: Option<FidelityOut>,
    /// Per level.
    pub levels: Vec<Level>,
    /// Per window.
    pub windows: Vec<Window>,
    /// The gate.
    pub gate: Gate,
    /// Records on which a rule errored, by path, rule and reason (most first).
    pub evaluation_errors: Vec<EvalErrorOut>,
    /// The simulated rollout plan (SPEC §9), with `--plan`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanOut>,
    /// Inputs.
    pub inputs: Inputs,
    /// Settings as report.json shows them: an echo of `settings` plus the run's salt,
    /// redaction and scenario, for readers of the JSON; exporters read `settings`.
    pub config: ConfigOut,
    /// Drift examples.
    pub examples: Vec<ExampleOut>,
    /// Records the replayed baseline did not reproduce (SPEC §11), the earliest.
    pub unfaithful_examples: Vec<UnfaithfulOut>,
    /// First rejected records.
    pub rejections: Vec<RejectionOut>,
    /// Latency and timings (not reproducible).
    pub latency: LatencyOut,
    /// Per-window series for metrics.om.
    #[serde(skip)]
    pub series: Vec<WindowSeries>,
    /// The gate settings the report was judged with: the one copy exporters read
    /// (report.json's `config` and `gate` echo them, written once by the build; not
    /// part of report.json).
    #[serde(skip)]
    pub settings: GateSettings,
    /// The plan simulation in typed form (the staircase, JUnit cases, metrics).
    #[serde(skip)]
    pub plan_result: Option<PlanResult>,
    /// Every drifting record (epoch ms, record) in (ts, origin) order, only with
    /// `--drift-details` (not part of report.json; written by `report::drift_details`).
    #[serde(skip)]
    pub drift_details: Vec<(i64, ExampleOut)>,
}

pub use crate::replay::gate::ratio;

/// Records on which one rule errored on one path, for one reason.
#[derive(Debug, Clone, Serialize)]
pub struct EvalErrorOut {
    /// `shadow` or `enforced`.
    pub path: &'static str,
    /// Rule id.
    pub rule: String,
    /// `missing_var`, `type`, `empty`, …
    pub reason: &'static str,
    /// Records.
    pub records: u64,
    /// records / evaluated.
    pub ratio: f64,
}

/// One plan step (SPEC §9, fixed).
#[derive(Debug, Clone, Serialize)]
pub struct PlanStepOut {
    /// Level of the step.
    pub rollout_percent: u8,
    /// Length in seconds; null for the open-ended last step.
    pub duration_seconds: Option<serde_json::Number>,
}

/// A run's impact (SPEC §9, fixed).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ImpactOut {
    /// Evaluated records in the judged windows.
    pub requests: u64,
    /// Drifting records at their step's level.
    pub events: u64,
    /// Of those, ok->fail and warn->fail.
    pub new_denials: u64,
    /// Of those, fail->ok and fail->warn.
    pub missed_denials: u64,
}

/// One simulated run (SPEC §9, fixed).
#[derive(Debug, Clone, Serialize)]
pub struct PlanRunOut {
    /// T0, RFC 3339.
    pub start: String,
    /// promoted, rolled_back or incomplete.
    pub outcome: &'static str,
    /// 1-based step of the rollback.
    pub step: Option<usize>,
    /// Level of that step.
    pub rollout_percent: Option<u8>,
    /// When: the rollback window's end, or the last step's end.
    pub at: Option<String>,
    /// Judged windows that breached.
    pub breached_windows: u64,
    /// What it would have hurt.
    pub impact: ImpactOut,
}

/// Outcome counts (SPEC §9, fixed).
#[derive(Debug, Clone, Serialize)]
pub struct PlanSummaryOut {
    /// Runs.
    pub runs: u64,
    /// Promoted.
    pub promoted: u64,
    /// Rolled back.
    pub rolled_back: u64,
    /// Incomplete.
    pub incomplete: u64,
    /// Rolled back, per step.
    pub rolled_back_by_step: Vec<u64>,
    /// Largest impact.events.
    pub impact_events_max: u64,
    /// Lower median of impact.events.
    pub impact_events_median: u64,
}

/// `plan` (SPEC §9, fixed).
#[derive(Debug, Clone, Serialize)]
pub struct PlanOut {
    /// The steps simulated (an Argo or Flagger file's, converted).
    pub steps: Vec<PlanStepOut>,
    /// Breached windows before rollback.
    pub failure_limit: u64,
    /// first, every or the instant as given.
    pub start: String,
    /// No run rolled back.
    pub passed: bool,
    /// Runs in start order.
    pub runs: Vec<PlanRunOut>,
    /// Outcome counts.
    pub summary: PlanSummaryOut,
}

fn seconds(ms: i64) -> serde_json::Number {
    if ms % 1000 == 0 {
        serde_json::Number::from(ms / 1000)
    } else {
        serde_json::Number::from_f64(ms as f64 / 1000.0).unwrap_or_else(|| 0.into())
    }
}

impl PlanOut {
    pub(super) fn from(p: &PlanResult) -> PlanOut {
        PlanOut {
            steps: p
                .plan
                .steps
                .iter()
                .map(|s| PlanStepOut {
                    rollout_percent: s.rollout.get(),
                    duration_seconds: s.duration_ms.map(seconds),
                })
                .collect(),
            failure_limit: p.plan.failure_limit,
            start: p.plan.start.as_text().to_string(),
            passed: p.passed,
            runs: p
                .runs
                .iter()
                .map(|r| PlanRunOut {
                    start: r.start.rfc3339(),
                    outcome: r.outcome.as_str(),
                    step: r.rolled_back_in.map(|(s, _)| s),
                    rollout_percent: r.rolled_back_in.map(|(_, l)| l.get()),
                    at: r.at_ms.map(format_rfc3339_ms),
                    breached_windows: r.breached_windows,
                    impact: ImpactOut {
                        requests: r.impact.requests,
                        events: r.impact.events,
                        new_denials: r.impact.new_denials,
                        missed_denials: r.impact.missed_denials,
                    },
                })
                .collect(),
            summary: PlanSummaryOut {
                runs: p.summary.runs,
                promoted: p.summary.promoted,
                rolled_back: p.summary.rolled_back,
                incomplete: p.summary.incomplete,
                rolled_back_by_step: p.summary.rolled_back_by_step.clone(),
                impact_events_max: p.summary.impact_events_max,
                impact_events_median: p.summary.impact_events_median,
            },
        }
    }
}
