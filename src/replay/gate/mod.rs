//! The gate (SPEC §5, §8, §9): the one place that turns a finished [`Aggregate`] and the
//! [`GateSettings`] into a typed [`GateResult`] — per window and level the counts, the
//! confidence bounds and whether the window breaches, calls for rollback or passes; per
//! level the totals; `max_safe_rollout_percent`, `proven_safe_rollout_percent`, the plan
//! simulation and the exit code. Exporters read the result and never re-derive a breach.

pub mod confidence;
pub mod plan;
pub mod rule;

use crate::orchestrator::RolloutPercent;
use crate::replay::aggregate::{Aggregate, WindowAgg};
use crate::replay::window::{WindowLen, WindowStart};

pub use confidence::Confidence;
pub use plan::{Plan, PlanResult};
pub use rule::RunFailure;

/// Gate settings (SPEC §5, §8, §9).
#[derive(Debug, Clone)]
pub struct GateSettings {
    /// Gate level.
    pub rollout: RolloutPercent,
    /// Drift ratio limit.
    pub drift_max: f64,
    /// Levels reported (ascending, deduplicated, including the gate level).
    pub levels: Vec<RolloutPercent>,
    /// Windows with fewer requests never breach (nor pass).
    pub min_requests: u64,
    /// Rollback when the judged figure > factor × drift_max.
    pub rollback_factor: f64,
    /// More rejections than this exit 3.
    pub max_rejects: u64,
    /// Window length.
    pub window: WindowLen,
    /// `--confidence`: judge Wilson bounds instead of point ratios.
    pub confidence: Option<Confidence>,
    /// `--plan`: a staged rollout to simulate.
    pub plan: Option<Plan>,
    /// `--max-eval-error-ratio`: exit 3 when a rule errors on more records of a path.
    pub max_eval_error_ratio: Option<f64>,
    /// `--max-unfaithful-ratio` (SPEC §11): exit 3 when more of the checked records
    /// than this disagree with what production answered.
    pub max_unfaithful_ratio: f64,
}

/// Ratio with 0 for an empty denominator.
pub fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

/// How one window fares at one level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judgement {
    /// Drifting records enforced at this level.
    pub events: u64,
    /// events / requests (a point figure, whatever the rule).
    pub ratio: f64,
    /// Wilson bounds, with confidence on.
    pub bounds: Option<(f64, f64)>,
    /// The window breaches (SPEC §5, or §8 with confidence).
    pub breach: bool,
    /// The window calls for rollback.
    pub rollback: bool,
    /// The window passes (§8; never with confidence off).
    pub pass: bool,
}

impl GateSettings {
    /// The breach, rollback and pass rule (`rule`) for `events` drifting out of
    /// `requests`.
    pub fn judge(&self, events: u64, requests: u64) -> Judgement {
        let r = ratio(events, requests);
        let counts = rule::counts(requests, self.min_requests);
        let (max, factor) = (self.drift_max, self.rollback_factor);
        match &self.confidence {
            None => Judgement {
                events,
                ratio: r,
                bounds: None,
                breach: counts && rule::breaches(r, max),
                rollback: counts && rule::rolls_back(r, max, factor),
                pass: false,
            },
            Some(c) => {
                let (lo, hi) = if requests == 0 {
                    (0.0, 1.0)
                } else {
                    c.wilson(events, requests)
                };
                Judgement {
                    events,
                    ratio: r,
                    bounds: (requests > 0).then_some((lo, hi)),
                    breach: counts && rule::breaches(lo, max),
                    rollback: counts && rule::rolls_back(lo, max, factor),
                    pass: counts && rule::passes(hi, max),
                }
            }
        }
    }
}

/// One window's judgements, one per reported level.
#[derive(Debug, Clone)]
pub struct WindowResult {
    /// Window start.
    pub start: WindowStart,
    /// Evaluated records.
    pub requests: u64,
    /// In level order.
    pub levels: Vec<Judgement>,
}

/// One level's totals.
#[derive(Debug, Clone, Copy)]
pub struct LevelResult {
    /// The level.
    pub level: RolloutPercent,
    /// Drifting records enforced at this level.
    pub drift_events: u64,
    /// drift_events / evaluated.
    pub drift_ratio: f64,
    /// Largest window ratio (min-requests does not apply).
    pub max_window_ratio: f64,
    /// Windows breaching.
    pub breached_windows: u64,
    /// Windows calling for rollback.
    pub rollback_windows: u64,
    /// Windows passing (0 with confidence off).
    pub passed_windows: u64,
}

/// The worst counted window at the gate level.
#[derive(Debug, Clone, Copy)]
pub struct Worst {
    /// Start.
    pub start: WindowStart,
    /// Point ratio.
    pub ratio: f64,
    /// Drift events.
    pub events: u64,
    /// Requests.
    pub requests: u64,
}

/// The fidelity check of SPEC §11: records with a recorded verdict, how many the
/// replayed baseline reproduced, and the disagreements by `recorded->replayed` kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fidelity {
    /// Evaluated records carrying a recorded verdict.
    pub checked: u64,
    /// Of those, replayed as production answered.
    pub faithful: u64,
    /// Of those, replayed otherwise.
    pub unfaithful: u64,
    /// Unfaithful records by kind (indexed like `DriftKind::ALL`, recorded first).
    pub by_kind: [u64; 6],
}

impl Fidelity {
    /// The check of an aggregate; `None` when no evaluated record carries a verdict.
    pub fn of(agg: &Aggregate) -> Option<Fidelity> {
        let mut f = Fidelity {
            checked: 0,
            faithful: 0,
            unfaithful: 0,
            by_kind: [0; 6],
        };
        for (r, row) in crate::orchestrator::Verdict::ALL.iter().zip(&agg.fidelity) {
            for (p, &n) in crate::orchestrator::Verdict::ALL.iter().zip(row) {
                f.checked += n;
                match crate::orchestrator::DriftKind::of(*r, *p) {
                    Some(k) => {
                        f.unfaithful += n;
                        f.by_kind[k.index()] += n;
                    }
                    None => f.faithful += n,
                }
            }
        }
        (f.checked > 0).then_some(f)
    }

    /// unfaithful / checked.
    pub fn ratio(&self) -> f64 {
        ratio(self.unfaithful, self.checked)
    }
}

/// Everything the gate decides.
#[derive(Debug, Clone)]
pub struct GateResult {
    /// The fidelity check (SPEC §11), when a record carried a verdict.
    pub fidelity: Option<Fidelity>,
    /// Every window with an evaluated record, ascending.
    pub windows: Vec<WindowResult>,
    /// One entry per reported level.
    pub levels: Vec<LevelResult>,
    /// Windows breaching at the gate level, ascending.
    pub breached: Vec<WindowStart>,
    /// Rollback windows at the gate level, ascending.
    pub rollback: Vec<WindowStart>,
    /// Worst counted window at the gate level, if any drift.
    pub worst: Option<Worst>,
    /// Largest whole percent at which no window breaches.
    pub max_safe: u8,
    /// Largest whole percent proven safe (§8), with confidence on.
    pub proven_safe: Option<u8>,
    /// No window breaches at the gate level.
    pub passed: bool,
    /// The plan simulation, with `--plan`.
    pub plan: Option<PlanResult>,
    /// Exit-3 reasons.
    pub failure: RunFailure,
    /// 0, 1 or 3: the process's exit code.
    pub exit_code: i32,
}

/// Cumulative drift by whole percent: `cum[L]` = drifting records with bucket < L × 100.
pub fn cumulative(by_pct: &[u32; 100]) -> [u64; 101] {
    let mut cum = [0u64; 101];
    for p in 0..100 {
        cum[p + 1] = cum[p] + u64::from(by_pct[p]);
    }
    cum
}

/// Records on which each (path, rule) errored, whatever the reason: (path 0 shadow /
/// 1 enforced, rule index) → records.
pub fn errors_by_rule(agg: &Aggregate) -> std::collections::BTreeMap<(u8, u32), u64> {
    let mut m = std::collections::BTreeMap::new();
    for (&(path, rule, _), &n) in &agg.eval_errors {
        *m.entry((path, rule)).or_default() += n;
    }
    m
}

/// Judges the aggregate.
pub fn judge(agg: &Aggregate, g: &GateSettings) -> GateResult {
    let eval_errors = g.max_eval_error_ratio.is_some_and(|max| {
        errors_by_rule(agg)
            .values()
            .any(|&n| rule::over(ratio(n, agg.evaluated), max))
    });
    let evaluated = agg.evaluated;
    let mut levels: Vec<LevelResult> = g
        .levels
        .iter()
        .map(|&level| LevelResult {
            level,
            drift_events: 0,
            drift_ratio: 0.0,
            max_window_ratio: 0.0,
            breached_windows: 0,
            rollback_windows: 0,
            passed_windows: 0,
        })
        .collect();
    let mut breach_at = [false; 101];
    let mut total_at = [0u64; 101];
    let mut windows = Vec::with_capacity(agg.windows.len());
    let (mut breached, mut rollback, mut worst) = (Vec::new(), Vec::new(), None::<Worst>);
    for (&start, w) in &agg.windows {
        let start = WindowStart(start);
        let cum = cumulative(&w.drift_by_pct);
        for (l, flag) in breach_at.iter_mut().enumerate() {
            total_at[l] += cum[l];
            // A window's breach is monotone in its drift count: skip the bound when
            // the level has no more drift than one already known not to breach.
            if !*flag {
                *flag = g.judge(cum[l], w.requests).breach;
            }
        }
        let mut judged = Vec::with_capacity(levels.len());
        for lv in &mut levels {
            let j = g.judge(cum[usize::from(lv.level.get())], w.requests);
            lv.drift_events += j.events;
            lv.max_window_ratio = lv.max_window_ratio.max(j.ratio);
            lv.breached_windows += u64::from(j.breach);
            lv.rollback_windows += u64::from(j.rollback);
            lv.passed_windows += u64::from(j.pass);
            if lv.level == g.rollout {
                if j.breach {
                    breached.push(start);
                }
                if j.rollback {
                    rollback.push(start);
                }
                if j.events > 0
                    && rule::counts(w.requests, g.min_requests)
                    && worst.as_ref().is_none_or(|x| j.ratio > x.ratio)
                {
                    worst = Some(Worst {
                        start,
                        ratio: j.ratio,
                        events: j.events,
                        requests: w.requests,
                    });
                }
            }
            judged.push(j);
        }
        windows.push(WindowResult {
            start,
            requests: w.requests,
            levels: judged,
        });
    }
    for lv in &mut levels {
        lv.drift_ratio = ratio(lv.drift_events, evaluated);
    }
    let max_safe = (0..=100u8)
        .rev()
        .find(|&l| !breach_at[usize::from(l)])
        .unwrap_or(0);
    let proven_safe = match &g.confidence {
        Some(c) if evaluated > 0 => (0..=100u8).rev().find(|&l| {
            let l = usize::from(l);
            !breach_at[l] && rule::passes(c.wilson(total_at[l], evaluated).1, g.drift_max)
        }),
        _ => None,
    };
    let plan = g.plan.as_ref().map(|p| p.simulate(agg, g));
    let passed = breached.is_empty();
    let fidelity = Fidelity::of(agg);
    let failure = RunFailure {
        too_many_rejects: rule::too_many_rejects(agg.rejected_total(), g.max_rejects),
        nothing_evaluated: evaluated == 0,
        eval_errors,
        unfaithful: fidelity.is_some_and(|f| rule::over(f.ratio(), g.max_unfaithful_ratio)),
    };
    let fails = match &plan {
        Some(p) => !p.passed,
        None => !passed,
    };
    let exit_code = rule::exit_code(failure, fails);
    GateResult {
        fidelity,
        windows,
        levels,
        breached,
        rollback,
        worst,
        max_safe,
        proven_safe,
        passed,
        plan,
        failure,
        exit_code,
    }
}

/// Per-window drift of one kind group, by percent (for plan impact).
pub(crate) fn window_cum(w: &WindowAgg) -> ([u64; 101], [u64; 101], [u64; 101]) {
    (
        cumulative(&w.drift_by_pct),
        cumulative(&w.new_denials_by_pct),
        cumulative(&w.missed_denials_by_pct),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn settings(confidence: Option<f64>) -> GateSettings {
        GateSettings {
            rollout: RolloutPercent::new(100).unwrap(),
            drift_max: 0.05,
            levels: vec![RolloutPercent::new(100).unwrap()],
            min_requests: 1,
            rollback_factor: 2.0,
            max_rejects: 0,
            window: WindowLen::DEFAULT,
            confidence: confidence.map(|c| Confidence::new(c).unwrap()),
            plan: None,
            max_eval_error_ratio: None,
            max_unfaithful_ratio: 0.001,
        }
    }

    #[test]
    fn point_rule_breaches_above_the_limit_only_for_counted_windows() {
        let mut g = settings(None);
        assert!(!g.judge(1, 20).breach); // 0.05 is not above 0.05
        assert!(g.judge(2, 20).breach);
        assert!(!g.judge(2, 20).rollback); // 0.1 is not above 0.1
        assert!(g.judge(3, 20).rollback);
        assert!(!g.judge(3, 20).pass);
        g.min_requests = 21;
        assert!(!g.judge(20, 20).breach);
    }

    #[test]
    fn wilson_rule_judges_the_lower_bound_and_passes_on_the_upper() {
        let g = settings(Some(0.95));
        // 1 of 20 = 5 %: lower ≈ 0.0089, not a breach; upper ≈ 0.2, no pass either.
        let j = g.judge(1, 20);
        assert!(!j.breach && !j.pass);
        // 0 of 100: upper = z²/(n+z²) ≈ 0.02634 ≤ 0.05, passes.
        let j = g.judge(0, 100);
        assert!(j.pass && !j.breach);
        assert_eq!(j.bounds.unwrap().0, 0.0);
        // 20 of 100: lower ≈ 0.1416 > 0.1: breach and rollback.
        let j = g.judge(20, 100);
        assert!(j.breach && j.rollback);
    }
}
