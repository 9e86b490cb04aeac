//! The report model of a replay (SPEC §5–6): built once from the aggregate and the
//! settings, then handed to every exporter. Field names marked fixed in the SPEC are
//! the serde names here; everything is derived from integer counts, so the model is
//! identical across runs and thread counts (except `latency`).

use crate::engine::Skip;
use std::collections::BTreeMap;

use serde::Serialize;

use crate::orchestrator::{DriftKind, RolloutPercent, Verdict};
use crate::policy::time::format_rfc3339_ms;
use crate::replay::aggregate::{Aggregate, FileCounts};
use crate::replay::gate::{self, GateResult, PlanResult};
use crate::replay::record::Reason;

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

    fn from(v: [u64; 3]) -> Self {
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
    /// Settings.
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
    /// The gate settings the report was judged with (for figures at levels the
    /// report does not list, such as the what-if curve; not part of report.json).
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
    fn from(p: &PlanResult) -> PlanOut {
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

/// Everything besides the aggregate that the report needs.
pub struct ReportContext<'a> {
    /// Gate settings.
    pub gate: &'a GateSettings,
    /// Inputs section.
    pub inputs: Inputs,
    /// Config section.
    pub config: ConfigOut,
    /// Turns a request id into what the report shows.
    pub show_id: &'a dyn Fn(&str) -> String,
    /// Rule ids of the shadow and the enforced policy, in IR order.
    pub rule_ids: [Vec<String>; 2],
}

impl Report {
    /// Builds the report from the aggregate.
    pub fn build(agg: &Aggregate, ctx: ReportContext<'_>) -> Report {
        let g = ctx.gate;
        let evaluated = agg.evaluated;
        let rejected = agg.rejected_total();
        let records = Records {
            read: agg.read,
            evaluated,
            rejected,
            skipped: agg.skipped,
            rejected_by_reason: Reason::ALL
                .iter()
                .filter(|r| agg.rejected[r.index()] > 0)
                .map(|r| (r.as_str(), agg.rejected[r.index()]))
                .collect(),
            skipped_by_reason: Skip::ALL
                .iter()
                .filter(|k| agg.skipped_by[k.index()] > 0)
                .map(|k| (k.as_str(), agg.skipped_by[k.index()]))
                .collect(),
            bucket_key_missing: agg.bucket_key_missing,
        };
        let events: u64 = agg.by_kind.iter().sum();
        let mut by_cause: Vec<CauseCount> = agg
            .by_cause
            .iter()
            .map(|(c, n)| CauseCount {
                cause: c.clone(),
                events: *n,
            })
            .collect();
        by_cause.sort_by(|a, b| b.events.cmp(&a.events).then_with(|| a.cause.cmp(&b.cause)));
        let drift = Drift {
            events,
            ratio: ratio(events, evaluated),
            by_kind: DriftKind::ALL
                .iter()
                .filter(|k| agg.by_kind[k.index()] > 0)
                .map(|k| (k.as_str(), agg.by_kind[k.index()]))
                .collect(),
            by_cause,
            changed_values: agg.changed,
        };

        let judged: GateResult = gate::judge(agg, g);
        let mut evaluation_errors: Vec<EvalErrorOut> = agg
            .eval_errors
            .iter()
            .map(|(&(path, rule, reason), &n)| EvalErrorOut {
                path: if path == 0 { "shadow" } else { "enforced" },
                rule: ctx.rule_ids[usize::from(path.min(1))]
                    .get(rule as usize)
                    .cloned()
                    .unwrap_or_else(|| format!("#{rule}")),
                reason,
                records: n,
                ratio: ratio(n, evaluated),
            })
            .collect();
        evaluation_errors.sort_by(|a, b| {
            b.records
                .cmp(&a.records)
                .then_with(|| (a.path, &a.rule, a.reason).cmp(&(b.path, &b.rule, b.reason)))
        });
        let warnings = evaluation_errors
            .iter()
            .filter(|e| e.ratio > 0.5)
            .map(|e| {
                let hint = if e.reason == "missing_var" {
                    " — bind its list with --list or check the records' context keys"
                } else {
                    ""
                };
                format!(
                    "rule {}: {} on {} of the {} path's records{hint}",
                    e.rule,
                    e.reason,
                    pct(e.ratio),
                    e.path
                )
            })
            .collect();
        let windows: Vec<Window> = judged
            .windows
            .iter()
            .map(|w| Window {
                start: w.start.rfc3339(),
                end: w.start.end_rfc3339(g.window),
                requests: w.requests,
                drift: w
                    .levels
                    .iter()
                    .zip(&g.levels)
                    .map(|(j, &l)| WindowLevel {
                        rollout_percent: l,
                        events: j.events,
                        ratio: j.ratio,
                        lower: j.bounds.map(|b| b.0),
                        upper: j.bounds.map(|b| b.1),
                        breach: j.breach,
                        rollback: j.rollback,
                        pass: j.pass,
                    })
                    .collect(),
            })
            .collect();
        let plan_levels: BTreeMap<i64, u8> = judged
            .plan
            .as_ref()
            .map(|p| p.first_run_levels.iter().map(|(w, l)| (w.0, *l)).collect())
            .unwrap_or_default();
        let series = agg
            .windows
            .iter()
            .map(|(&start, w)| WindowSeries {
                start_ms: start,
                end_ms: start.saturating_add(g.window.ms()),
                requests: w.requests,
                counted: w.requests >= g.min_requests,
                shadow: VerdictCounts::from(w.shadow),
                enforced_at_gate: VerdictCounts::from(w.enforced_at(g.rollout)),
                drift_by_percent: gate::cumulative(&w.drift_by_pct).to_vec(),
                latency_buckets: w.latency_buckets.to_vec(),
                latency_sum_ns: w.latency_sum_ns,
                plan_rollout_percent: plan_levels.get(&start).copied(),
            })
            .collect();
        let levels = judged
            .levels
            .iter()
            .map(|l| Level {
                rollout_percent: l.level,
                drift_events: l.drift_events,
                drift_ratio: l.drift_ratio,
                max_window_ratio: l.max_window_ratio,
                breached_windows: l.breached_windows,
                rollback_windows: l.rollback_windows,
                passed_windows: l.passed_windows,
            })
            .collect();
        let worst = judged.worst.map(|w| WorstWindow {
            start: w.start.rfc3339(),
            ratio: w.ratio,
            events: w.events,
            requests: w.requests,
        });
        let rollback_at_gate = judged.rollback.iter().map(|w| w.rfc3339()).collect();
        let gate = Gate {
            rollout_percent: g.rollout,
            drift_max: g.drift_max,
            passed: judged.passed,
            breached_windows: judged.breached.iter().map(|w| w.rfc3339()).collect(),
            max_safe_rollout_percent: judged.max_safe,
            confidence: g.confidence.map(|c| c.level()),
            proven_safe_rollout_percent: judged.proven_safe,
            exit_code: judged.exit_code,
        };
        let plan = judged.plan.as_ref().map(PlanOut::from);
        let to_out = |e: &crate::replay::aggregate::Example| ExampleOut {
            ts: format_rfc3339_ms(e.ts_ms),
            request_id: (ctx.show_id)(&e.request_id),
            shadow: e.shadow,
            enforced: e.enforced,
            kind: e.kind.as_str(),
            cause: e.cause.clone(),
            bucket: e.bucket,
            source: format!(
                "{}:{}",
                ctx.inputs
                    .files
                    .get(e.origin.file as usize)
                    .map_or("?", |f| f.path.as_str()),
                e.origin.line
            ),
        };
        let examples = agg.examples.iter().map(to_out).collect();
        let source = |o: &crate::replay::aggregate::Origin| {
            format!(
                "{}:{}",
                ctx.inputs
                    .files
                    .get(o.file as usize)
                    .map_or("?", |f| f.path.as_str()),
                o.line
            )
        };
        let unfaithful_examples = agg
            .unfaithful
            .iter()
            .map(|u| UnfaithfulOut {
                ts: format_rfc3339_ms(u.ts_ms),
                request_id: (ctx.show_id)(&u.request_id),
                recorded: u.recorded.as_str(),
                replayed: u.replayed.as_str(),
                source: source(&u.origin),
            })
            .collect();
        let fidelity = judged.fidelity.map(|f| FidelityOut {
            checked: f.checked,
            faithful: f.faithful,
            unfaithful: f.unfaithful,
            by_kind: DriftKind::ALL
                .iter()
                .filter(|k| f.by_kind[k.index()] > 0)
                .map(|k| (k.as_str(), f.by_kind[k.index()]))
                .collect(),
        });
        let drift_details = agg.drifts.iter().map(|e| (e.ts_ms, to_out(e))).collect();
        let rejections = agg
            .rejection_samples
            .iter()
            .map(|(o, r)| RejectionOut {
                file: ctx
                    .inputs
                    .files
                    .get(o.file as usize)
                    .map_or_else(|| "?".into(), |f| f.path.clone()),
                line: o.line,
                reason: r.as_str(),
            })
            .collect::<Vec<_>>();
        let mut report = Report {
            schema: SCHEMA,
            summary: Summary {
                headline: String::new(),
                verdict: String::new(),
                windows: windows.len(),
                worst_window: worst,
                rollback_windows: rollback_at_gate,
                warnings,
            },
            records,
            verdicts: Verdicts {
                shadow: VerdictCounts::from(agg.shadow),
                enforced: VerdictCounts::from(agg.enforced),
            },
            drift,
            fidelity,
            levels,
            windows,
            gate,
            evaluation_errors,
            plan,
            inputs: ctx.inputs,
            config: ctx.config,
            examples,
            unfaithful_examples,
            rejections,
            latency: LatencyOut::default(),
            series,
            settings: g.clone(),
            plan_result: judged.plan,
            drift_details,
        };
        report.summary.headline = headline(&report);
        report.summary.verdict = verdict_paragraph(&report);
        report
    }
}

/// Formats a ratio as a percentage for people: `0.50 %`, `12.3 %`.
pub fn pct(r: f64) -> String {
    let p = r * 100.0;
    if p == 0.0 {
        "0 %".into()
    } else if p < 10.0 {
        format!("{p:.2} %")
    } else {
        format!("{p:.1} %")
    }
}

fn hhmm(start: &str) -> String {
    // "2026-11-05T10:35:00Z" -> "10:35Z"
    start
        .get(11..16)
        .map_or_else(|| start.to_string(), |t| format!("{t}Z"))
}

/// The gate's result in a few words: "Gate passed at 10 %: safe up to 11 % rollout".
fn gate_words(r: &Report) -> String {
    format!(
        "{} at {} %: safe up to {} % rollout",
        if r.gate.passed { "passed" } else { "FAILED" },
        r.gate.rollout_percent,
        r.gate.max_safe_rollout_percent
    )
}

/// "Gate passed at 10 %: safe up to 11 % rollout" / "Gate FAILED at 25 %: …"; with
/// exit code 3 the run's failure comes first, whatever the gate says, because that is
/// what fails the CI job: "Run FAILED: 3 records rejected, more than --max-rejects 0;
/// gate passed at …" / "Run FAILED: no evaluable record, nothing was checked".
pub fn headline(r: &Report) -> String {
    if r.records.evaluated == 0 {
        return "Run FAILED: no evaluable record, nothing was checked".into();
    }
    let gate = match plan_words(r) {
        Some(p) => format!("{p}; gate {}", gate_words(r)),
        None => format!("gate {}", gate_words(r)),
    };
    if r.gate.exit_code == 3 {
        if r.records.rejected > r.config.max_rejects {
            return format!(
                "Run FAILED: {} records rejected, more than --max-rejects {}; {gate}",
                r.records.rejected, r.config.max_rejects,
            );
        }
        if let (Some(e), Some(max)) = (r.evaluation_errors.first(), r.config.max_eval_error_ratio)
            && e.ratio > max
        {
            return format!(
                "Run FAILED: rule {} errors ({}) on {} of the {} path's records, more than \
                 --max-eval-error-ratio {max}; {gate}",
                e.rule,
                e.reason,
                pct(e.ratio),
                e.path,
            );
        }
        if let Some(f) = &r.fidelity
            && ratio(f.unfaithful, f.checked) > r.settings.max_unfaithful_ratio
        {
            return format!(
                "Run FAILED: the replay reproduced {} of {} production verdicts, {} unfaithful \
                 ({}), more than --max-unfaithful-ratio {}; {gate}",
                f.faithful,
                f.checked,
                f.unfaithful,
                pct(ratio(f.unfaithful, f.checked)),
                r.settings.max_unfaithful_ratio
            );
        }
    }
    let mut chars = gate.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The plan's verdict in a few words, with `--plan`: "plan passed: 17 of 17 runs
/// promoted" / "plan ROLLED BACK in 5 of 17 runs (first at step 3, 08:14Z)".
pub fn plan_words(r: &Report) -> Option<String> {
    let p = r.plan.as_ref()?;
    let s = &p.summary;
    if s.runs == 0 {
        return Some("plan not run: no evaluated record".into());
    }
    if p.passed {
        return Some(format!(
            "plan passed: {} of {} runs promoted, {} incomplete",
            s.promoted, s.runs, s.incomplete
        ));
    }
    let first = p.runs.iter().find(|run| run.outcome == "rolled_back");
    let at = first
        .map(|run| {
            format!(
                " (first at step {}, {})",
                run.step.unwrap_or(0),
                run.at.as_deref().map(hhmm).unwrap_or_default()
            )
        })
        .unwrap_or_default();
    Some(format!(
        "plan ROLLED BACK in {} of {} runs{at}",
        s.rolled_back, s.runs
    ))
}

/// "malformed: 2, bad_ts: 1, first at traffic.jsonl:7": rejections by reason, most
/// frequent first, and where the first one is.
fn rejection_details(r: &Report) -> String {
    let mut reasons: Vec<(&str, u64)> = r
        .records
        .rejected_by_reason
        .iter()
        .map(|(k, v)| (*k, *v))
        .collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let mut s = reasons
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(first) = r.rejections.first() {
        s.push_str(&format!(", first at {}:{}", first.file, first.line));
    }
    s
}

/// The one-paragraph verdict printed on stderr. With exit code 3 it leads with the
/// failure ("run FAILED: …"), then the gate, which still reports its findings.
pub fn verdict_paragraph(r: &Report) -> String {
    let g = &r.gate;
    let rec = &r.records;
    let too_many = rec.rejected > r.config.max_rejects;
    let mut s = String::new();
    if g.exit_code == 3 {
        let mut why = Vec::new();
        if rec.evaluated == 0 {
            why.push("no evaluable record".to_string());
        }
        if !too_many
            && rec.evaluated > 0
            && let (Some(e), Some(max)) =
                (r.evaluation_errors.first(), r.config.max_eval_error_ratio)
            && e.ratio > max
        {
            why.push(format!(
                "rule {} errors ({}) on {} of the {} path's records, more than --max-eval-error-ratio {max}",
                e.rule,
                e.reason,
                pct(e.ratio),
                e.path
            ));
        }
        if let Some(f) = &r.fidelity
            && ratio(f.unfaithful, f.checked) > r.settings.max_unfaithful_ratio
        {
            why.push(format!(
                "the replayed baseline answered {} of {} records otherwise than production ({}), \
                 more than --max-unfaithful-ratio {}: drift would rest on a baseline that does \
                 not reproduce production",
                f.unfaithful,
                f.checked,
                pct(ratio(f.unfaithful, f.checked)),
                r.settings.max_unfaithful_ratio
            ));
        }
        if too_many {
            why.push(format!(
                "{} records rejected, more than --max-rejects {} ({})",
                rec.rejected,
                r.config.max_rejects,
                rejection_details(r)
            ));
        }
        s.push_str(&format!("run FAILED: {}; ", why.join("; ")));
    }
    if let Some(f) = &r.fidelity {
        s.push_str(&format!(
            "replay reproduced {} of {} production verdicts ({}); ",
            f.faithful,
            f.checked,
            pct(ratio(f.faithful, f.checked))
        ));
    }
    if let Some(p) = plan_words(r) {
        s.push_str(&p);
        s.push_str("; ");
    }
    // With confidence on, a window breaches on its lower bound, so say so.
    let above = match g.confidence {
        Some(c) => format!("with a {} lower bound above", pct(c)),
        None => "above".into(),
    };
    if rec.evaluated == 0 {
        s.push_str("the gate checked nothing");
    } else if g.passed {
        s.push_str(&format!(
            "gate passed at {} %: none of {} windows {above} {}",
            g.rollout_percent,
            r.windows.len(),
            pct(g.drift_max)
        ));
    } else {
        s.push_str(&format!(
            "gate FAILED at {} %: {} of {} windows {above} {}",
            g.rollout_percent,
            g.breached_windows.len(),
            r.windows.len(),
            pct(g.drift_max)
        ));
    }
    if let Some(proven) = g.proven_safe_rollout_percent {
        s.push_str(&format!("; proven safe up to {proven} %"));
    }
    if r.config.min_requests > 1 && rec.evaluated > 0 {
        s.push_str(&format!(
            " (windows under {} requests do not count)",
            r.config.min_requests
        ));
    }
    if let Some(w) = &r.summary.worst_window {
        s.push_str(&format!(" (worst {} at {})", pct(w.ratio), hhmm(&w.start)));
    }
    if rec.evaluated > 0 {
        s.push_str(&format!(
            "; max safe rollout {} %",
            g.max_safe_rollout_percent
        ));
        if !r.summary.rollback_windows.is_empty() {
            s.push_str(&format!(
                "; {} window(s) above the rollback line",
                r.summary.rollback_windows.len()
            ));
        }
    }
    s.push_str(&format!(
        "; {} records read, {} evaluated, {} skipped",
        rec.read, rec.evaluated, rec.skipped
    ));
    if rec.rejected > 0 {
        if too_many {
            s.push_str(&format!(", {} rejected", rec.rejected));
        } else {
            s.push_str(&format!(
                "; {} rejected ({}), within --max-rejects {}",
                rec.rejected,
                rejection_details(r),
                r.config.max_rejects
            ));
        }
        // Name the fixed limits behind the two reasons whose cause is not obvious.
        if rec.rejected_by_reason.contains_key("too_long") {
            s.push_str(&format!(
                "; too_long = a line over {} MiB (the fixed SPEC §4 limit)",
                crate::replay::record::MAX_RECORD_BYTES >> 20
            ));
        }
        if rec.rejected_by_reason.contains_key("malformed") {
            s.push_str(&format!(
                "; malformed = not JSON/UTF-8, duplicate record keys or nesting over {} levels",
                crate::error::JSON_MAX_DEPTH
            ));
        }
    }
    for w in &r.summary.warnings {
        s.push_str(&format!("; WARNING: {w}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::view::sample;

    /// The sample report (gate 50 % failed, safe up to 5 %) with `rejected` records
    /// rejected as malformed (2 of them, if any) and bad_ts, and --max-rejects `max`.
    fn with_rejects(rejected: u64, max: u64) -> Report {
        let mut r = sample::report();
        r.records.rejected = rejected;
        r.records.read += rejected;
        r.records.rejected_by_reason.clear();
        if rejected > 0 {
            r.records
                .rejected_by_reason
                .insert("bad_ts", rejected - rejected.min(2));
            r.records
                .rejected_by_reason
                .insert("malformed", rejected.min(2));
            r.records.rejected_by_reason.retain(|_, n| *n > 0);
            r.rejections = vec![RejectionOut {
                file: "traffic.jsonl".into(),
                line: 7,
                reason: "malformed",
            }];
        }
        r.config.max_rejects = max;
        if rejected > max {
            r.gate.exit_code = 3;
        }
        r.summary.headline = headline(&r);
        r.summary.verdict = verdict_paragraph(&r);
        r
    }

    #[test]
    fn exit_code_3_leads_the_verdict_and_the_headline() {
        let r = with_rejects(3, 0);
        assert!(
            r.summary.verdict.starts_with(
                "run FAILED: 3 records rejected, more than --max-rejects 0 \
                 (malformed: 2, bad_ts: 1, first at traffic.jsonl:7); gate FAILED at 50 %: "
            ),
            "{}",
            r.summary.verdict
        );
        assert_eq!(
            r.summary.headline,
            "Run FAILED: 3 records rejected, more than --max-rejects 0; \
             gate FAILED at 50 %: safe up to 5 % rollout"
        );
        // Said once: the record counts at the end do not repeat the reasons.
        assert_eq!(r.summary.verdict.matches("malformed: 2").count(), 1);
    }

    #[test]
    fn rejects_within_the_limit_trail_the_gate() {
        let r = with_rejects(3, 5);
        assert_eq!(r.gate.exit_code, 1);
        assert!(r.summary.verdict.starts_with("gate FAILED at 50 %: "));
        assert!(
            r.summary.verdict.contains(
                "; 3 rejected (malformed: 2, bad_ts: 1, first at traffic.jsonl:7), within --max-rejects 5"
            ),
            "{}",
            r.summary.verdict
        );
        assert_eq!(
            r.summary.headline,
            "Gate FAILED at 50 %: safe up to 5 % rollout"
        );
    }

    #[test]
    fn no_evaluable_record_leads_too() {
        let mut r = with_rejects(0, 0);
        r.records.evaluated = 0;
        r.gate.exit_code = 3;
        r.summary.worst_window = None;
        assert!(
            verdict_paragraph(&r)
                .starts_with("run FAILED: no evaluable record; the gate checked nothing; "),
            "{}",
            verdict_paragraph(&r)
        );
        assert_eq!(
            headline(&r),
            "Run FAILED: no evaluable record, nothing was checked"
        );
    }
}
