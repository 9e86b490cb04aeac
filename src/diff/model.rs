//! The typed comparison of two replays ([`Diff`]), built once by [`compare`] and handed
//! to every renderer. Its serde names are the fixed keys of `proof diff --format json`
//! (docs/reports.md); everything is derived from the two reports' counts, so the same
//! two reports always give the same bytes.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::input::{InputFile, PolicyRef, Records, Side, VerdictCounts};
use super::stats;
use crate::error::ProofError;
use crate::orchestrator::DriftKind;
use crate::policy::time::format_span;
use crate::report::model::pct;

/// Schema tag of `proof diff --format json`.
pub const SCHEMA: &str = "proof.diff/v1";

/// The regression limits (`--max-drift-increase`, `--max-safe-decrease`,
/// `--fail-on-new-cause`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Limits {
    /// Largest allowed rise of the drift ratio at the gate level (a ratio, 0.0..=1.0).
    pub max_drift_increase: f64,
    /// Largest allowed fall of the max (and proven) safe rollout, in points.
    pub max_safe_decrease: u8,
    /// Whether a cause that BASE does not have is a regression.
    pub fail_on_new_cause: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_drift_increase: 0.0,
            max_safe_decrease: 0,
            fail_on_new_cause: false,
        }
    }
}

/// The same figure on both sides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pair<T> {
    /// BASE's value.
    pub base: T,
    /// NEW's value.
    pub new: T,
}

impl<T: PartialEq> Pair<T> {
    /// Whether the two sides differ.
    pub fn differs(&self) -> bool {
        self.base != self.new
    }
}

/// A limit that tripped.
#[derive(Debug, Clone, Serialize)]
pub struct Trip {
    /// The flag and its value, e.g. `--max-safe-decrease 0`.
    pub limit: String,
    /// What moved, with both values.
    pub message: String,
}

/// What the diff says about one side.
#[derive(Debug, Clone, Serialize)]
pub struct SideInfo {
    /// The report.json read.
    pub report: String,
    /// Link to its HTML report (`--base-url` / `--new-url`).
    pub url: Option<String>,
    /// Baseline (shadow) policy, from the free-form `inputs`.
    pub baseline: Option<PolicyRef>,
    /// Candidate (enforced) policy.
    pub candidate: Option<PolicyRef>,
}

/// The gate figures of one side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateSide {
    /// Gate level.
    pub rollout_percent: u8,
    /// Drift ratio limit.
    pub drift_max: f64,
    /// Whether the gate passed.
    pub passed: bool,
    /// Windows breaching at the gate level.
    pub breached_windows: usize,
    /// Largest level at which no window breaches.
    pub max_safe_rollout_percent: u8,
    /// SPEC §8; null when absent, off or none.
    pub proven_safe_rollout_percent: Option<u8>,
    /// SPEC §8; null when absent or off.
    pub confidence: Option<f64>,
    /// The replay's exit code.
    pub exit_code: i32,
}

/// `gate` of the diff.
#[derive(Debug, Clone, Serialize)]
pub struct GateDiff {
    /// BASE and NEW.
    #[serde(flatten)]
    pub sides: Pair<GateSide>,
    /// NEW − BASE max safe rollout, in points.
    pub max_safe_change: i32,
    /// NEW − BASE proven safe rollout, when both have one.
    pub proven_safe_change: Option<i32>,
}

/// Plan verdict of one side (SPEC §9).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PlanSide {
    /// No run rolled back.
    pub passed: bool,
    /// Simulated runs.
    pub runs: u64,
    /// Runs promoted.
    pub promoted: u64,
    /// Runs rolled back.
    pub rolled_back: u64,
    /// Runs that ran out of traffic.
    pub incomplete: u64,
}

/// The fidelity check of one side (SPEC §11).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FidelitySide {
    /// Evaluated records carrying production's verdict.
    pub checked: u64,
    /// Replayed as production answered.
    pub faithful: u64,
    /// Replayed otherwise.
    pub unfaithful: u64,
    /// unfaithful / checked.
    pub unfaithful_ratio: f64,
    /// Unfaithful records by `recorded->replayed`, non-zero kinds only.
    pub by_kind: BTreeMap<String, u64>,
}

/// `fidelity` of the diff: each side's check (null where its records carried no
/// verdict) and how the unfaithful share moved when both have one.
#[derive(Debug, Clone, Serialize)]
pub struct FidelityDiff {
    /// BASE and NEW.
    #[serde(flatten)]
    pub sides: Pair<Option<FidelitySide>>,
    /// NEW − BASE unfaithful ratio, when both checked fidelity.
    pub unfaithful_ratio_change: Option<f64>,
}

/// The worst window of one level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorstWindow {
    /// Window start (RFC 3339).
    pub start: String,
    /// Drifting records at this level.
    pub events: u64,
    /// Requests of the window.
    pub requests: u64,
    /// events / requests.
    pub ratio: f64,
}

/// One level on one side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LevelSide {
    /// Drifting records enforced at this level.
    pub drift_events: u64,
    /// drift_events / evaluated.
    pub drift_ratio: f64,
    /// Largest window ratio.
    pub max_window_ratio: f64,
    /// The window with that ratio (earliest on ties); null without drift.
    pub worst_window: Option<WorstWindow>,
    /// Breaching windows.
    pub breached_windows: u64,
    /// Rollback windows.
    pub rollback_windows: u64,
    /// Passing windows (SPEC §8), null when the report lacks them.
    pub passed_windows: Option<u64>,
}

/// One level of the diff.
#[derive(Debug, Clone, Serialize)]
pub struct LevelDiff {
    /// Rollout level.
    pub rollout_percent: u8,
    /// Whether this is NEW's gate level.
    pub gate: bool,
    /// BASE and NEW.
    #[serde(flatten)]
    pub sides: Pair<LevelSide>,
    /// NEW − BASE drift ratio.
    pub drift_ratio_change: f64,
}

/// Verdict mix of both paths.
#[derive(Debug, Clone, Serialize)]
pub struct VerdictsDiff {
    /// Shadow path.
    pub shadow: Pair<VerdictCounts>,
    /// Enforced path as at 100 %.
    pub enforced: Pair<VerdictCounts>,
}

/// Drift events of one kind (as at 100 %).
#[derive(Debug, Clone, Serialize)]
pub struct KindDiff {
    /// SPEC §3 kind name.
    pub kind: &'static str,
    /// BASE's events.
    pub base: u64,
    /// NEW's events.
    pub new: u64,
    /// new − base.
    pub change: i64,
}

/// How a cause moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CauseStatus {
    /// Absent in BASE, present in NEW.
    New,
    /// Present in BASE, absent in NEW.
    Gone,
    /// Share rose significantly.
    Up,
    /// Share fell significantly.
    Down,
    /// Share changed within the noise of the counts.
    WithinNoise,
    /// Same share.
    Unchanged,
}

impl CauseStatus {
    /// The status as a word (the JSON value).
    pub fn as_str(self) -> &'static str {
        match self {
            CauseStatus::New => "new",
            CauseStatus::Gone => "gone",
            CauseStatus::Up => "up",
            CauseStatus::Down => "down",
            CauseStatus::WithinNoise => "within_noise",
            CauseStatus::Unchanged => "unchanged",
        }
    }

    /// Whether the cause counts as moved (listed under "causes that moved").
    pub fn moved(self) -> bool {
        !matches!(self, CauseStatus::WithinNoise | CauseStatus::Unchanged)
    }
}

/// One drift cause on both sides (as at 100 %).
#[derive(Debug, Clone, Serialize)]
pub struct CauseDiff {
    /// Rule id, `budget_skip` or `no_active_rules`.
    pub cause: String,
    /// How it moved.
    pub status: CauseStatus,
    /// BASE's events.
    pub base_events: u64,
    /// NEW's events.
    pub new_events: u64,
    /// BASE's events / evaluated.
    pub base_share: f64,
    /// NEW's events / evaluated.
    pub new_share: f64,
    /// Two-proportion z (positive: NEW's share is larger); null when a side has no record.
    pub z: Option<f64>,
    /// |z| ≥ z_critical.
    pub significant: bool,
}

/// The test behind `drift_by_cause[].significant`.
#[derive(Debug, Clone, Serialize)]
pub struct CauseTest {
    /// Its name.
    pub method: &'static str,
    /// Two-sided significance level.
    pub alpha: f64,
    /// |z| at or above this is significant.
    pub z_critical: f64,
}

/// A time span.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Span {
    /// First window start.
    pub start: String,
    /// Last window end.
    pub end: String,
}

/// How the inputs of the two replays compare.
#[derive(Debug, Clone, Serialize)]
pub struct InputsDiff {
    /// Whether anything below differs.
    pub differ: bool,
    /// Record counts.
    pub records: Pair<Records>,
    /// First window start to last window end; null without windows.
    pub span: Pair<Option<Span>>,
    /// Input files by path and size; null when the report lists none.
    pub files: Pair<Option<Vec<InputFile>>>,
    /// Whether the file lists (path and size) are equal.
    pub files_match: bool,
    /// How files are compared (report.json carries no content digest).
    pub files_compared_by: &'static str,
}

/// A setting that differs between the two replays.
#[derive(Debug, Clone, Serialize)]
pub struct SettingDiff {
    /// Its name in report.json (`gate.drift_max`, `config.salt`, …).
    pub field: String,
    /// BASE's value.
    pub base: Value,
    /// NEW's value.
    pub new: Value,
}

/// The comparison of two replays.
#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    /// `proof.diff/v1`.
    pub schema: &'static str,
    /// One line: "max safe rollout 17 % → 12 %: regression (…)".
    pub headline: String,
    /// Whether a limit tripped.
    pub regression: bool,
    /// 0, 1 or 3 (3: NEW's replay exited 3).
    pub exit_code: i32,
    /// The limits that tripped.
    pub tripped: Vec<Trip>,
    /// The limits applied.
    pub limits: Limits,
    /// BASE.
    pub base: SideInfo,
    /// NEW.
    pub new: SideInfo,
    /// Window length both replays used (`5m`), when known.
    pub window: Option<String>,
    /// Gate figures.
    pub gate: GateDiff,
    /// Plan verdicts (SPEC §9); null when neither report has a plan.
    pub plan: Option<Pair<Option<PlanSide>>>,
    /// Replay fidelity (SPEC §11); null when neither report checked it.
    pub fidelity: Option<FidelityDiff>,
    /// Level by level.
    pub levels: Vec<LevelDiff>,
    /// Verdict mix per path.
    pub verdicts: VerdictsDiff,
    /// Every SPEC §3 drift kind.
    pub drift_by_kind: Vec<KindDiff>,
    /// Every cause of either side, largest change of share first.
    pub drift_by_cause: Vec<CauseDiff>,
    /// The test behind `drift_by_cause[].significant`.
    pub cause_test: CauseTest,
    /// Inputs.
    pub inputs: InputsDiff,
    /// Settings that differ.
    pub settings: Vec<SettingDiff>,
}

/// Links to the HTML reports of both sides.
#[derive(Debug, Clone, Default)]
pub struct Links {
    /// `--base-url`.
    pub base: Option<String>,
    /// `--new-url`.
    pub new: Option<String>,
}

fn levels_list(s: &Side) -> String {
    let l: Vec<String> = s
        .report
        .levels
        .iter()
        .map(|l| l.rollout_percent.to_string())
        .collect();
    l.join(",")
}

/// Refuses reports that cannot be compared level by level: different window lengths or
/// levels. The message names both values and both files.
fn check_compatible(base: &Side, new: &Side) -> Result<(), ProofError> {
    if let (Some(b), Some(n)) = (base.window_ms, new.window_ms)
        && b != n
    {
        return Err(ProofError::Usage(format!(
            "incompatible reports: window length {} in BASE {} but {} in NEW {}; replay both \
             with the same --window",
            format_span(b),
            base.path.display(),
            format_span(n),
            new.path.display()
        )));
    }
    let (b, n) = (levels_list(base), levels_list(new));
    if b != n {
        return Err(ProofError::Usage(format!(
            "incompatible reports: levels {b} in BASE {} but {n} in NEW {}; replay both with \
             the same --levels and --rollout",
            base.path.display(),
            new.path.display()
        )));
    }
    Ok(())
}

fn worst_window(s: &Side, level: u8) -> Option<WorstWindow> {
    let mut best: Option<WorstWindow> = None;
    for w in &s.report.windows {
        let Some(d) = w.drift.iter().find(|d| d.rollout_percent == level) else {
            continue;
        };
        if d.ratio > best.as_ref().map_or(0.0, |b| b.ratio) {
            best = Some(WorstWindow {
                start: w.start.clone(),
                events: d.events,
                requests: w.requests,
                ratio: d.ratio,
            });
        }
    }
    best
}

fn gate_side(s: &Side) -> GateSide {
    let g = &s.report.gate;
    GateSide {
        rollout_percent: g.rollout_percent,
        drift_max: g.drift_max,
        passed: g.passed,
        breached_windows: g.breached_windows.len(),
        max_safe_rollout_percent: g.max_safe_rollout_percent,
        proven_safe_rollout_percent: g.proven_safe_rollout_percent,
        confidence: g.confidence,
        exit_code: g.exit_code,
    }
}

fn span(s: &Side) -> Option<Span> {
    Some(Span {
        start: s.report.windows.first()?.start.clone(),
        end: s.report.windows.last()?.end.clone(),
    })
}

fn share(k: u64, n: u64) -> f64 {
    if n == 0 { 0.0 } else { k as f64 / n as f64 }
}

fn causes(base: &Side, new: &Side) -> Vec<CauseDiff> {
    let mut counts: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for c in &base.report.drift.by_cause {
        counts.entry(&c.cause).or_default().0 += c.events;
    }
    for c in &new.report.drift.by_cause {
        counts.entry(&c.cause).or_default().1 += c.events;
    }
    let (n1, n2) = (base.report.records.evaluated, new.report.records.evaluated);
    let mut out: Vec<CauseDiff> = counts
        .into_iter()
        .filter(|(_, (b, n))| *b > 0 || *n > 0)
        .map(|(cause, (b, n))| {
            let z = stats::two_proportion_z(b, n1, n, n2);
            let significant = stats::significant(z);
            let (bs, ns) = (share(b, n1), share(n, n2));
            let status = if b == 0 {
                CauseStatus::New
            } else if n == 0 {
                CauseStatus::Gone
            } else if bs == ns {
                CauseStatus::Unchanged
            } else if !significant {
                CauseStatus::WithinNoise
            } else if ns > bs {
                CauseStatus::Up
            } else {
                CauseStatus::Down
            };
            CauseDiff {
                cause: cause.to_string(),
                status,
                base_events: b,
                new_events: n,
                base_share: bs,
                new_share: ns,
                z,
                significant,
            }
        })
        .collect();
    // Largest change of share first; the cause name breaks ties, so the order is fixed.
    out.sort_by(|a, b| {
        let da = (a.new_share - a.base_share).abs();
        let db = (b.new_share - b.base_share).abs();
        db.total_cmp(&da).then_with(|| a.cause.cmp(&b.cause))
    });
    out
}

fn settings(base: &Side, new: &Side) -> Vec<SettingDiff> {
    let (bg, ng) = (&base.report.gate, &new.report.gate);
    let mut out = Vec::new();
    let mut push = |field: &str, b: Value, n: Value| {
        if b != n {
            out.push(SettingDiff {
                field: field.to_string(),
                base: b,
                new: n,
            });
        }
    };
    push(
        "gate.rollout_percent",
        bg.rollout_percent.into(),
        ng.rollout_percent.into(),
    );
    push("gate.drift_max", bg.drift_max.into(), ng.drift_max.into());
    push(
        "gate.confidence",
        bg.confidence.into(),
        ng.confidence.into(),
    );
    for k in super::input::COMPARED_SETTINGS {
        push(
            &format!("config.{k}"),
            base.free.settings.get(k).cloned().unwrap_or(Value::Null),
            new.free.settings.get(k).cloned().unwrap_or(Value::Null),
        );
    }
    out
}

/// "17 %" or "none" for a level that may be absent.
pub fn level_words(l: Option<u8>) -> String {
    l.map_or_else(|| "none".to_string(), |l| format!("{l} %"))
}

fn trips(d: &Diff, new: &Side, limits: &Limits) -> Vec<Trip> {
    let mut out = Vec::new();
    let g = &d.gate.sides;
    let safe_limit = format!("--max-safe-decrease {}", limits.max_safe_decrease);
    let fell =
        i32::from(g.base.max_safe_rollout_percent) - i32::from(g.new.max_safe_rollout_percent);
    if fell > i32::from(limits.max_safe_decrease) {
        out.push(Trip {
            limit: safe_limit.clone(),
            message: format!(
                "max safe rollout fell by {fell} points ({} % → {} %)",
                g.base.max_safe_rollout_percent, g.new.max_safe_rollout_percent
            ),
        });
    }
    // A proven level that NEW no longer proves counts as falling below 0.
    if let Some(b) = g.base.proven_safe_rollout_percent {
        let n = g.new.proven_safe_rollout_percent.map_or(-1, i32::from);
        let fell = i32::from(b) - n;
        if fell > i32::from(limits.max_safe_decrease) {
            out.push(Trip {
                limit: safe_limit,
                message: format!(
                    "proven safe rollout fell from {b} % to {}",
                    level_words(g.new.proven_safe_rollout_percent)
                ),
            });
        }
    }
    let gate_level = new.report.gate.rollout_percent;
    if let Some(l) = d.levels.iter().find(|l| l.rollout_percent == gate_level) {
        let rise = l.drift_ratio_change;
        if rise > limits.max_drift_increase {
            out.push(Trip {
                limit: format!("--max-drift-increase {}", limits.max_drift_increase),
                message: format!(
                    "drift ratio at the gate level ({gate_level} %) rose by {:.2} points ({} → {})",
                    rise * 100.0,
                    pct(l.sides.base.drift_ratio),
                    pct(l.sides.new.drift_ratio)
                ),
            });
        }
    }
    if limits.fail_on_new_cause {
        let fresh: Vec<String> = d
            .drift_by_cause
            .iter()
            .filter(|c| c.status == CauseStatus::New)
            .map(|c| {
                format!(
                    "{} ({} event{})",
                    c.cause,
                    c.new_events,
                    if c.new_events == 1 { "" } else { "s" }
                )
            })
            .collect();
        if !fresh.is_empty() {
            out.push(Trip {
                limit: "--fail-on-new-cause".into(),
                message: format!(
                    "drift cause{} that BASE does not have: {}",
                    if fresh.len() == 1 { "" } else { "s" },
                    fresh.join(", ")
                ),
            });
        }
    }
    out
}

fn headline(d: &Diff) -> String {
    let g = &d.gate.sides;
    let safe = if g.differs_safe() {
        format!(
            "max safe rollout {} % → {} %",
            g.base.max_safe_rollout_percent, g.new.max_safe_rollout_percent
        )
    } else {
        format!(
            "max safe rollout unchanged at {} %",
            g.new.max_safe_rollout_percent
        )
    };
    let verdict = if d.tripped.is_empty() {
        "no regression".to_string()
    } else {
        let mut names: Vec<&str> = d.tripped.iter().map(|t| t.limit.as_str()).collect();
        names.dedup();
        format!("regression ({})", names.join(", "))
    };
    if d.exit_code == 3 {
        format!(
            "NEW run FAILED (its replay exited 3: rejected records or no evaluable record); \
             {safe}: {verdict}"
        )
    } else {
        format!("{safe}: {verdict}")
    }
}

impl Pair<GateSide> {
    fn differs_safe(&self) -> bool {
        self.base.max_safe_rollout_percent != self.new.max_safe_rollout_percent
    }
}

/// Compares BASE with NEW under `limits`. Fails (exit 2) when the reports have
/// different window lengths or levels.
pub fn compare(base: &Side, new: &Side, limits: Limits, links: Links) -> Result<Diff, ProofError> {
    check_compatible(base, new)?;
    let gate_level = new.report.gate.rollout_percent;
    let levels = base
        .report
        .levels
        .iter()
        .zip(&new.report.levels)
        .map(|(b, n)| {
            let side = |s: &Side, l: &super::input::Level| LevelSide {
                drift_events: l.drift_events,
                drift_ratio: l.drift_ratio,
                max_window_ratio: l.max_window_ratio,
                worst_window: worst_window(s, l.rollout_percent),
                breached_windows: l.breached_windows,
                rollback_windows: l.rollback_windows,
                passed_windows: l.passed_windows,
            };
            LevelDiff {
                rollout_percent: n.rollout_percent,
                gate: n.rollout_percent == gate_level,
                drift_ratio_change: n.drift_ratio - b.drift_ratio,
                sides: Pair {
                    base: side(base, b),
                    new: side(new, n),
                },
            }
        })
        .collect();
    let gate = Pair {
        base: gate_side(base),
        new: gate_side(new),
    };
    let plan_side = |s: &Side| {
        s.report.plan.map(|p| PlanSide {
            passed: p.passed,
            runs: p.summary.runs,
            promoted: p.summary.promoted,
            rolled_back: p.summary.rolled_back,
            incomplete: p.summary.incomplete,
        })
    };
    let plan = Pair {
        base: plan_side(base),
        new: plan_side(new),
    };
    let fidelity_side = |s: &Side| {
        s.report.fidelity.as_ref().map(|f| FidelitySide {
            checked: f.checked,
            faithful: f.faithful,
            unfaithful: f.unfaithful,
            unfaithful_ratio: share(f.unfaithful, f.checked),
            by_kind: f
                .by_kind
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| (k.clone(), *n))
                .collect(),
        })
    };
    let fidelity = Pair {
        base: fidelity_side(base),
        new: fidelity_side(new),
    };
    let kinds = DriftKind::ALL
        .iter()
        .map(|k| {
            let name = k.as_str();
            let b = base.report.drift.by_kind.get(name).copied().unwrap_or(0);
            let n = new.report.drift.by_kind.get(name).copied().unwrap_or(0);
            KindDiff {
                kind: name,
                base: b,
                new: n,
                change: n as i64 - b as i64,
            }
        })
        .collect();
    let records = Pair {
        base: base.report.records,
        new: new.report.records,
    };
    let spans = Pair {
        base: span(base),
        new: span(new),
    };
    let files = Pair {
        base: base.free.files.clone(),
        new: new.free.files.clone(),
    };
    let files_match = !files.differs();
    let info = |s: &Side, url: Option<String>| SideInfo {
        report: s.path.display().to_string(),
        url,
        baseline: s.free.baseline.clone(),
        candidate: s.free.candidate.clone(),
    };
    let mut d = Diff {
        schema: SCHEMA,
        headline: String::new(),
        regression: false,
        exit_code: 0,
        tripped: Vec::new(),
        limits,
        base: info(base, links.base),
        new: info(new, links.new),
        window: new.window_ms.or(base.window_ms).map(format_span),
        gate: GateDiff {
            max_safe_change: i32::from(gate.new.max_safe_rollout_percent)
                - i32::from(gate.base.max_safe_rollout_percent),
            proven_safe_change: match (
                gate.base.proven_safe_rollout_percent,
                gate.new.proven_safe_rollout_percent,
            ) {
                (Some(b), Some(n)) => Some(i32::from(n) - i32::from(b)),
                _ => None,
            },
            sides: gate,
        },
        plan: (plan.base.is_some() || plan.new.is_some()).then_some(plan),
        fidelity: (fidelity.base.is_some() || fidelity.new.is_some()).then_some(FidelityDiff {
            unfaithful_ratio_change: match (&fidelity.base, &fidelity.new) {
                (Some(b), Some(n)) => Some(n.unfaithful_ratio - b.unfaithful_ratio),
                _ => None,
            },
            sides: fidelity,
        }),
        levels,
        verdicts: VerdictsDiff {
            shadow: Pair {
                base: base.report.verdicts.shadow,
                new: new.report.verdicts.shadow,
            },
            enforced: Pair {
                base: base.report.verdicts.enforced,
                new: new.report.verdicts.enforced,
            },
        },
        drift_by_kind: kinds,
        drift_by_cause: causes(base, new),
        cause_test: CauseTest {
            method: "two-proportion z-test (pooled, two-sided)",
            alpha: stats::ALPHA,
            z_critical: stats::Z_CRITICAL,
        },
        inputs: InputsDiff {
            differ: records.differs() || spans.differs() || !files_match,
            records,
            span: spans,
            files,
            files_match,
            files_compared_by: "path and size in bytes (report.json carries no content digest)",
        },
        settings: settings(base, new),
    };
    d.tripped = trips(&d, new, &limits);
    d.regression = !d.tripped.is_empty();
    d.exit_code = if new.report.gate.exit_code == 3 {
        3
    } else if d.regression {
        1
    } else {
        0
    };
    d.headline = headline(&d);
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::input::parse;
    use std::path::Path;

    /// A report with `n` evaluated records and the given causes, one 10-minute window.
    fn side(n: u64, causes: &[(&str, u64)], window: &str, max_safe: u8) -> Side {
        let events: u64 = causes.iter().map(|c| c.1).sum();
        let by_cause: Vec<Value> = causes
            .iter()
            .map(|(c, e)| serde_json::json!({"cause": c, "events": e}))
            .collect();
        let r = serde_json::json!({
            "schema": "proof.replay/v1",
            "records": {"read": n, "evaluated": n, "rejected": 0, "skipped": 0},
            "verdicts": {"shadow": {"ok": n, "warn": 0, "fail": 0},
                         "enforced": {"ok": n - events, "warn": 0, "fail": events}},
            "drift": {"events": events, "ratio": 0.0, "by_kind": {"ok->fail": events},
                      "by_cause": by_cause},
            "levels": [{"rollout_percent": 100, "drift_events": events,
                        "drift_ratio": events as f64 / n as f64, "max_window_ratio": 0.0,
                        "breached_windows": 0, "rollback_windows": 0}],
            "windows": [],
            "gate": {"rollout_percent": 100, "drift_max": 0.5, "passed": true,
                     "breached_windows": [], "max_safe_rollout_percent": max_safe,
                     "exit_code": 0},
            "config": {"window": window}
        });
        let p = Path::new("r.json");
        parse(p, p, &serde_json::to_vec(&r).unwrap()).unwrap()
    }

    #[test]
    fn causes_move_only_beyond_the_noise_and_new_causes_trip_the_flag() {
        let base = side(1000, &[("x", 10), ("y", 20), ("gone", 3)], "5m", 40);
        let new = side(1000, &[("x", 30), ("y", 22), ("fresh", 1)], "300s", 40);
        let limits = Limits {
            max_drift_increase: 1.0,
            fail_on_new_cause: true,
            ..Limits::default()
        };
        let d = compare(&base, &new, limits, Links::default()).unwrap();
        let status = |c: &str| {
            d.drift_by_cause
                .iter()
                .find(|x| x.cause == c)
                .map(|x| (x.status, x.significant))
                .unwrap()
        };
        // 10 → 30 of 1000: z = 3.19; 20 → 22: z = 0.31.
        assert_eq!(status("x"), (CauseStatus::Up, true));
        assert_eq!(status("y"), (CauseStatus::WithinNoise, false));
        assert_eq!(status("gone"), (CauseStatus::Gone, false));
        assert_eq!(status("fresh"), (CauseStatus::New, false));
        // Largest change of share first.
        assert_eq!(d.drift_by_cause[0].cause, "x");
        assert_eq!(d.tripped.len(), 1);
        assert_eq!(d.tripped[0].limit, "--fail-on-new-cause");
        assert_eq!(d.exit_code, 1);
        // 5m and 300s are the same window length.
        assert_eq!(d.window.as_deref(), Some("5m"));
    }

    #[test]
    fn the_drift_limit_is_a_rise_of_the_ratio_at_the_gate_level() {
        let base = side(1000, &[("x", 10)], "5m", 40);
        let new = side(1000, &[("x", 15)], "5m", 40);
        let at = |x: f64| {
            let limits = Limits {
                max_drift_increase: x,
                ..Limits::default()
            };
            compare(&base, &new, limits, Links::default())
                .unwrap()
                .exit_code
        };
        // 0.010 → 0.015: a rise of 0.005 (within float rounding of the subtraction).
        assert_eq!(at(0.004), 1);
        assert_eq!(at(0.0051), 0);
        let d = compare(&new, &base, Limits::default(), Links::default()).unwrap();
        assert_eq!(d.exit_code, 0, "a fall is no regression");
        assert_eq!(
            d.headline,
            "max safe rollout unchanged at 40 %: no regression"
        );
    }

    #[test]
    fn different_windows_are_refused_naming_both() {
        let e = compare(
            &side(10, &[], "5m", 40),
            &side(10, &[], "1h", 40),
            Limits::default(),
            Links::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("window length 5m in BASE r.json but 1h in NEW r.json"),
            "{e}"
        );
    }

    /// `side` with a `fidelity` section (SPEC §11).
    fn with_fidelity(checked: u64, kinds: &[(&str, u64)]) -> Side {
        let mut s = side(1000, &[("x", 10)], "5m", 40);
        let unfaithful: u64 = kinds.iter().map(|k| k.1).sum();
        s.report.fidelity = Some(crate::diff::input::Fidelity {
            checked,
            faithful: checked - unfaithful,
            unfaithful,
            by_kind: kinds.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
        });
        s
    }

    #[test]
    fn a_fidelity_change_is_shown_in_every_format() {
        let base = with_fidelity(39, &[("fail->ok", 1), ("ok->fail", 1)]);
        let new = with_fidelity(39, &[("ok->fail", 4)]);
        let d = compare(&base, &new, Limits::default(), Links::default()).unwrap();
        let f = d.fidelity.as_ref().unwrap();
        let (b, n) = (
            f.sides.base.as_ref().unwrap(),
            f.sides.new.as_ref().unwrap(),
        );
        assert_eq!(
            (b.faithful, b.unfaithful, n.faithful, n.unfaithful),
            (37, 2, 35, 4)
        );
        assert_eq!(f.unfaithful_ratio_change, Some(4.0 / 39.0 - 2.0 / 39.0));
        let text = crate::diff::text::render(&d, false);
        assert!(
            text.contains(
                "fidelity: 37 of 39 reproduced, 2 unfaithful (5.13 %) → 35 of 39 reproduced, \
                 4 unfaithful (10.3 %)\nunfaithful (recorded->replayed): fail->ok 1 → 0, ok->fail 1 → 4\n"
            ),
            "{text}"
        );
        let md = crate::diff::markdown::render(&d);
        assert!(
            md.contains(
                "| Replay reproduced production | 37 of 39 (94.9 %) | 35 of 39 (89.7 %) ↓ |\n"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "| Unfaithful (recorded → replayed) | 2 (5.13 %): `fail->ok` 1, `ok->fail` 1 | \
                 4 (10.3 %): `ok->fail` 4 ↑ |\n"
            ),
            "{md}"
        );
        let json: Value = serde_json::from_slice(&crate::diff::json::render(&d)).unwrap();
        assert_eq!(json["fidelity"]["base"]["unfaithful"], 2);
        assert_eq!(
            json["fidelity"]["new"]["by_kind"],
            serde_json::json!({"ok->fail": 4})
        );
        assert_eq!(json["fidelity"]["new"]["unfaithful_ratio"], 4.0 / 39.0);

        // Only NEW checked: BASE is "not checked", no change figure; neither: null.
        let plain = side(1000, &[("x", 10)], "5m", 40);
        let d = compare(&plain, &new, Limits::default(), Links::default()).unwrap();
        assert_eq!(d.fidelity.as_ref().unwrap().unfaithful_ratio_change, None);
        let text = crate::diff::text::render(&d, false);
        assert!(
            text.contains("fidelity: not checked → 35 of 39 reproduced, 4 unfaithful (10.3 %)\n"),
            "{text}"
        );
        assert!(
            crate::diff::markdown::render(&d)
                .contains("| Replay reproduced production | not checked | 35 of 39 (89.7 %) |\n")
        );
        let d = compare(&plain, &plain, Limits::default(), Links::default()).unwrap();
        assert!(d.fidelity.is_none());
        let json: Value = serde_json::from_slice(&crate::diff::json::render(&d)).unwrap();
        assert_eq!(json["fidelity"], Value::Null);
        assert!(!crate::diff::text::render(&d, false).contains("fidelity"));
    }
}
