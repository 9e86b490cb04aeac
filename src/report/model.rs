//! The report model of a replay (SPEC §5–6): built once from the aggregate and the
//! settings, then handed to every exporter. Field names marked fixed in the SPEC are
//! the serde names here; everything is derived from integer counts, so the model is
//! identical across runs and thread counts (except `latency`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::orchestrator::{DriftKind, RolloutPercent, Verdict};
use crate::policy::time::format_rfc3339_ms;
use crate::replay::aggregate::{Aggregate, FileCounts, WindowAgg};
use crate::replay::record::Reason;

/// Schema tag of report.json.
pub const SCHEMA: &str = "proof.replay/v1";

/// Gate settings (SPEC §5).
#[derive(Debug, Clone, Serialize)]
pub struct GateSettings {
    /// Gate level.
    pub rollout: RolloutPercent,
    /// Drift ratio limit.
    pub drift_max: f64,
    /// Levels reported (ascending, deduplicated, including the gate level).
    pub levels: Vec<RolloutPercent>,
    /// Windows with fewer requests never breach.
    pub min_requests: u64,
    /// Rollback when ratio > factor × drift_max.
    pub rollback_factor: f64,
    /// More rejections than this exit 3.
    pub max_rejects: u64,
    /// Window length, milliseconds.
    pub window_ms: i64,
}

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
    /// 0, 1 or 3 (SPEC §5).
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

/// Per-window series for metrics exporters (not part of report.json).
#[derive(Debug, Clone)]
pub struct WindowSeries {
    /// Window start, epoch ms.
    pub start_ms: i64,
    /// Window end, epoch ms.
    pub end_ms: i64,
    /// Counts.
    pub agg: WindowAgg,
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
    /// Per level.
    pub levels: Vec<Level>,
    /// Per window.
    pub windows: Vec<Window>,
    /// The gate.
    pub gate: Gate,
    /// Inputs.
    pub inputs: Inputs,
    /// Settings.
    pub config: ConfigOut,
    /// Drift examples.
    pub examples: Vec<ExampleOut>,
    /// First rejected records.
    pub rejections: Vec<RejectionOut>,
    /// Latency and timings (not reproducible).
    pub latency: LatencyOut,
    /// Per-window series for metrics.om.
    #[serde(skip)]
    pub series: Vec<WindowSeries>,
    /// Every drifting record (epoch ms, record) in (ts, origin) order, only with
    /// `--drift-details` (not part of report.json; written by `report::drift_details`).
    #[serde(skip)]
    pub drift_details: Vec<(i64, ExampleOut)>,
}

/// Ratio with 0 for an empty denominator.
pub fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

/// How a window fares at one level.
pub fn breaches(events: u64, requests: u64, g: &GateSettings) -> (bool, bool) {
    let r = ratio(events, requests);
    let counts = requests >= g.min_requests;
    let breach = counts && r > g.drift_max;
    let rollback = counts && r > g.rollback_factor * g.drift_max;
    (breach, rollback)
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
        };

        let mut windows = Vec::with_capacity(agg.windows.len());
        let mut series = Vec::with_capacity(agg.windows.len());
        let mut levels: Vec<Level> = g
            .levels
            .iter()
            .map(|&l| Level {
                rollout_percent: l,
                drift_events: 0,
                drift_ratio: 0.0,
                max_window_ratio: 0.0,
                breached_windows: 0,
                rollback_windows: 0,
            })
            .collect();
        // Breaching windows per whole percent 0..=100, for max_safe_rollout_percent.
        let mut breach_at = [false; 101];
        let mut gate_breached = Vec::new();
        let mut rollback_at_gate = Vec::new();
        let mut worst: Option<WorstWindow> = None;
        for (&start, w) in &agg.windows {
            let end = start.saturating_add(g.window_ms);
            let start_s = format_rfc3339_ms(start);
            let mut cumulative = [0u64; 101];
            for p in 0..100 {
                cumulative[p + 1] = cumulative[p] + u64::from(w.drift_by_pct[p]);
            }
            for (l, flag) in breach_at.iter_mut().enumerate() {
                *flag |= breaches(cumulative[l], w.requests, g).0;
            }
            let mut drift = Vec::with_capacity(g.levels.len());
            for (lv, &l) in levels.iter_mut().zip(&g.levels) {
                let ev = cumulative[usize::from(l.get())];
                let r = ratio(ev, w.requests);
                let (b, rb) = breaches(ev, w.requests, g);
                lv.drift_events += ev;
                if r > lv.max_window_ratio {
                    lv.max_window_ratio = r;
                }
                lv.breached_windows += u64::from(b);
                lv.rollback_windows += u64::from(rb);
                drift.push(WindowLevel {
                    rollout_percent: l,
                    events: ev,
                    ratio: r,
                });
                if l == g.rollout {
                    if b {
                        gate_breached.push(start_s.clone());
                    }
                    if rb {
                        rollback_at_gate.push(start_s.clone());
                    }
                    if ev > 0
                        && w.requests >= g.min_requests
                        && worst.as_ref().is_none_or(|x| r > x.ratio)
                    {
                        worst = Some(WorstWindow {
                            start: start_s.clone(),
                            ratio: r,
                            events: ev,
                            requests: w.requests,
                        });
                    }
                }
            }
            windows.push(Window {
                start: start_s,
                end: format_rfc3339_ms(end),
                requests: w.requests,
                drift,
            });
            series.push(WindowSeries {
                start_ms: start,
                end_ms: end,
                agg: w.clone(),
            });
        }
        for lv in &mut levels {
            lv.drift_ratio = ratio(lv.drift_events, evaluated);
        }
        let max_safe = (0..=100u8)
            .rev()
            .find(|&l| !breach_at[usize::from(l)])
            .unwrap_or(0);
        let passed = gate_breached.is_empty();
        let exit_code = if rejected > g.max_rejects || evaluated == 0 {
            3
        } else if !passed {
            1
        } else {
            0
        };
        let gate = Gate {
            rollout_percent: g.rollout,
            drift_max: g.drift_max,
            passed,
            breached_windows: gate_breached,
            max_safe_rollout_percent: max_safe,
            exit_code,
        };
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
            },
            records,
            verdicts: Verdicts {
                shadow: VerdictCounts::from(agg.shadow),
                enforced: VerdictCounts::from(agg.enforced),
            },
            drift,
            levels,
            windows,
            gate,
            inputs: ctx.inputs,
            config: ctx.config,
            examples,
            rejections,
            latency: LatencyOut::default(),
            series,
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
    if r.gate.exit_code == 3 {
        return format!(
            "Run FAILED: {} records rejected, more than --max-rejects {}; gate {}",
            r.records.rejected,
            r.config.max_rejects,
            gate_words(r)
        );
    }
    format!("Gate {}", gate_words(r))
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
    if rec.evaluated == 0 {
        s.push_str("the gate checked nothing");
    } else if g.passed {
        s.push_str(&format!(
            "gate passed at {} %: none of {} windows above {}",
            g.rollout_percent,
            r.windows.len(),
            pct(g.drift_max)
        ));
    } else {
        s.push_str(&format!(
            "gate FAILED at {} %: {} of {} windows above {}",
            g.rollout_percent,
            g.breached_windows.len(),
            r.windows.len(),
            pct(g.drift_max)
        ));
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
