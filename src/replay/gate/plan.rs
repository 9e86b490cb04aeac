//! Rollout plans (SPEC §9): a staged rollout read from a plan file (proof's own shape,
//! an Argo Rollouts `kind: Rollout` or a Flagger `kind: Canary`), checked against the
//! window length, and simulated over the report's windows: "had we started this
//! rollout at T0, would it have been rolled back, when, and whom would it have hurt?"
//!
//! The simulation reads per-window, per-percent counts the single replay pass already
//! made; nothing is re-evaluated per level or per start. Each distinct step level gets
//! prefix sums over the windows, so one run costs O(steps × log windows) and
//! `start: every` over a week of 5-minute windows costs a few milliseconds.

use std::path::Path;

use serde_json::Value;

use super::{GateSettings, window_cum};
use crate::error::ProofError;
use crate::orchestrator::RolloutPercent;
use crate::policy::time::{format_span, parse_rfc3339_ms, parse_span_ms};
use crate::replay::aggregate::Aggregate;
use crate::replay::window::{WindowLen, WindowStart};

/// One step: a level held for a duration (the last may be open-ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Rollout level.
    pub rollout: RolloutPercent,
    /// How long, milliseconds; `None` for the open-ended last step.
    pub duration_ms: Option<i64>,
}

/// Where runs start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// At the first window's start.
    First,
    /// At every window start.
    Every,
    /// At `floor(instant / W) × W`; the text as given is kept for the report.
    Instant(i64, String),
}

impl Start {
    /// `"first"`, `"every"` or the instant as given.
    pub fn as_text(&self) -> &str {
        match self {
            Start::First => "first",
            Start::Every => "every",
            Start::Instant(_, s) => s,
        }
    }
}

/// A rollout plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Steps in order, at least one.
    pub steps: Vec<Step>,
    /// Breached windows before rollback, ≥ 1.
    pub failure_limit: u64,
    /// Where runs start.
    pub start: Start,
    /// What the file was: `proof`, `argo` or `flagger`.
    pub source: &'static str,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// Reached the end of its last step.
    Promoted,
    /// Breached windows reached the failure limit.
    RolledBack,
    /// The traffic ended first.
    Incomplete,
}

impl RunOutcome {
    /// Fixed name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Promoted => "promoted",
            RunOutcome::RolledBack => "rolled_back",
            RunOutcome::Incomplete => "incomplete",
        }
    }
}

/// What the judged windows of a run add up to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Impact {
    /// Evaluated records.
    pub requests: u64,
    /// Drifting records at the level of their window's step.
    pub events: u64,
    /// Of those, `ok->fail` and `warn->fail`.
    pub new_denials: u64,
    /// Of those, `fail->ok` and `fail->warn`.
    pub missed_denials: u64,
}

/// One simulated run.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// T0.
    pub start: WindowStart,
    /// How it ended.
    pub outcome: RunOutcome,
    /// Rolled back: the 1-based step and its level.
    pub rolled_back_in: Option<(usize, RolloutPercent)>,
    /// Rolled back: the breaching window's end; promoted: the last step's end.
    pub at_ms: Option<i64>,
    /// Judged windows that breached.
    pub breached_windows: u64,
    /// What it would have hurt.
    pub impact: Impact,
}

/// Outcome counts over all runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    /// Runs.
    pub runs: u64,
    /// Promoted runs.
    pub promoted: u64,
    /// Rolled-back runs.
    pub rolled_back: u64,
    /// Incomplete runs.
    pub incomplete: u64,
    /// Rolled-back runs per step (one entry per step).
    pub rolled_back_by_step: Vec<u64>,
    /// Largest impact.events.
    pub impact_events_max: u64,
    /// Lower median of impact.events.
    pub impact_events_median: u64,
}

/// The simulation's result.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanResult {
    /// The plan simulated.
    pub plan: Plan,
    /// No run rolled back.
    pub passed: bool,
    /// Runs in start order.
    pub runs: Vec<Run>,
    /// Outcome counts.
    pub summary: Summary,
    /// The first run's level per report window (0 once rolled back), for the
    /// "Rollout %" panel and the HTML staircase; windows before its start are absent.
    pub first_run_levels: Vec<(WindowStart, u8)>,
}

/// Prefix sums over the windows at one level.
struct LevelSums {
    level: RolloutPercent,
    requests: Vec<u64>,
    events: Vec<u64>,
    new: Vec<u64>,
    missed: Vec<u64>,
    breaches: Vec<u64>,
    /// Window indices that breach, ascending.
    breach_at: Vec<usize>,
}

impl LevelSums {
    fn impact(&self, a: usize, b: usize) -> Impact {
        Impact {
            requests: self.requests[b] - self.requests[a],
            events: self.events[b] - self.events[a],
            new_denials: self.new[b] - self.new[a],
            missed_denials: self.missed[b] - self.missed[a],
        }
    }
}

fn add(a: &mut Impact, b: Impact) {
    a.requests += b.requests;
    a.events += b.events;
    a.new_denials += b.new_denials;
    a.missed_denials += b.missed_denials;
}

impl Plan {
    /// Simulates the plan over the aggregate's windows under the gate's breach rule.
    pub fn simulate(&self, agg: &Aggregate, g: &GateSettings) -> PlanResult {
        let starts: Vec<i64> = agg.windows.keys().copied().collect();
        let n = starts.len();
        let mut levels: Vec<RolloutPercent> = self.steps.iter().map(|s| s.rollout).collect();
        levels.sort();
        levels.dedup();
        let mut sums: Vec<LevelSums> = levels
            .iter()
            .map(|&level| LevelSums {
                level,
                requests: vec![0; n + 1],
                events: vec![0; n + 1],
                new: vec![0; n + 1],
                missed: vec![0; n + 1],
                breaches: vec![0; n + 1],
                breach_at: Vec::new(),
            })
            .collect();
        for (i, w) in agg.windows.values().enumerate() {
            let (drift, new, missed) = window_cum(w);
            for s in &mut sums {
                let l = usize::from(s.level.get());
                let breach = g.judge(drift[l], w.requests).breach;
                s.requests[i + 1] = s.requests[i] + w.requests;
                s.events[i + 1] = s.events[i] + drift[l];
                s.new[i + 1] = s.new[i] + new[l];
                s.missed[i + 1] = s.missed[i] + missed[l];
                s.breaches[i + 1] = s.breaches[i] + u64::from(breach);
                if breach {
                    s.breach_at.push(i);
                }
            }
        }
        let sums_of = |l: RolloutPercent| {
            sums.iter()
                .find(|s| s.level == l)
                .expect("every step level has sums")
        };
        let w = g.window;
        let traffic_end = starts.last().map(|&s| WindowStart(s).end(w));
        let t0s: Vec<i64> = match (&self.start, n) {
            (_, 0) => Vec::new(),
            (Start::First, _) => vec![starts[0]],
            (Start::Every, _) => starts.clone(),
            (Start::Instant(t, _), _) => vec![w.of(*t).ms()],
        };
        let index_of = |t: i64| starts.partition_point(|&s| s < t);
        let mut runs = Vec::with_capacity(t0s.len());
        for &t0 in &t0s {
            let mut s = t0;
            let mut impact = Impact::default();
            let mut breached = 0u64;
            let mut rolled: Option<(usize, RolloutPercent, i64)> = None;
            for (k, step) in self.steps.iter().enumerate() {
                let e = step.duration_ms.map(|d| s.saturating_add(d));
                let a = index_of(s);
                let b = e.map_or(n, index_of);
                let ls = sums_of(step.rollout);
                let here = ls.breaches[b] - ls.breaches[a];
                if breached + here >= self.failure_limit {
                    let nth = (ls.breaches[a] + (self.failure_limit - breached) - 1) as usize;
                    let wi = ls.breach_at[nth];
                    add(&mut impact, ls.impact(a, wi + 1));
                    breached = self.failure_limit;
                    rolled = Some((k + 1, step.rollout, WindowStart(starts[wi]).end(w)));
                    break;
                }
                breached += here;
                add(&mut impact, ls.impact(a, b));
                match e {
                    Some(e) => s = e,
                    None => break,
                }
            }
            let e_last = s; // the last step's end, or its start when open-ended
            let (outcome, rolled_back_in, at_ms) = match rolled {
                Some((step, level, at)) => (RunOutcome::RolledBack, Some((step, level)), Some(at)),
                None if traffic_end.is_some_and(|end| end >= e_last) => {
                    (RunOutcome::Promoted, None, Some(e_last))
                }
                None => (RunOutcome::Incomplete, None, None),
            };
            runs.push(Run {
                start: WindowStart(t0),
                outcome,
                rolled_back_in,
                at_ms,
                breached_windows: breached,
                impact,
            });
        }
        let mut summary = Summary {
            runs: runs.len() as u64,
            rolled_back_by_step: vec![0; self.steps.len()],
            ..Summary::default()
        };
        for r in &runs {
            match r.outcome {
                RunOutcome::Promoted => summary.promoted += 1,
                RunOutcome::RolledBack => summary.rolled_back += 1,
                RunOutcome::Incomplete => summary.incomplete += 1,
            }
            if let Some((step, _)) = r.rolled_back_in {
                summary.rolled_back_by_step[step - 1] += 1;
            }
        }
        let mut events: Vec<u64> = runs.iter().map(|r| r.impact.events).collect();
        events.sort_unstable();
        summary.impact_events_max = events.last().copied().unwrap_or(0);
        summary.impact_events_median = if events.is_empty() {
            0
        } else {
            events[(events.len() - 1) / 2]
        };
        let first_run_levels = runs
            .first()
            .map(|r| self.levels_over(r, &starts, w))
            .unwrap_or_default();
        PlanResult {
            plan: self.clone(),
            passed: runs.iter().all(|r| r.outcome != RunOutcome::RolledBack),
            runs,
            summary,
            first_run_levels,
        }
    }

    /// The level of each window from the run's start on: its step's level, 0 after
    /// the rollback window.
    fn levels_over(&self, run: &Run, starts: &[i64], w: WindowLen) -> Vec<(WindowStart, u8)> {
        let mut out = Vec::new();
        let rollback_end = match run.outcome {
            RunOutcome::RolledBack => run.at_ms,
            _ => None,
        };
        for &st in starts.iter().filter(|&&st| st >= run.start.ms()) {
            // The step whose span holds the window; past every timed step the rollout
            // has been promoted to 100.
            let mut s = run.start.ms();
            let mut level = 100;
            for step in &self.steps {
                let end = step.duration_ms.map(|d| s.saturating_add(d));
                if end.is_none_or(|e| st < e) {
                    level = step.rollout.get();
                    break;
                }
                s = end.unwrap_or(s);
            }
            if rollback_end.is_some_and(|at| WindowStart(st).end(w) > at) {
                level = 0;
            }
            out.push((WindowStart(st), level));
        }
        out
    }

    /// Checks every duration against the window length (SPEC §9: a whole multiple).
    pub fn check_window(&self, w: WindowLen, origin: &str) -> Result<(), ProofError> {
        for (i, s) in self.steps.iter().enumerate() {
            if let Some(d) = s.duration_ms
                && !w.divides(d)
            {
                return Err(ProofError::Usage(format!(
                    "{origin}: step {} (index {i}): duration {} is not a whole multiple of the window {w}; \
                     use a multiple of {w} or change --window",
                    i + 1,
                    format_span(d)
                )));
            }
        }
        Ok(())
    }

    /// Reads a plan file (YAML or JSON): proof's shape, Argo Rollouts or Flagger.
    pub fn load(path: &Path) -> Result<Plan, ProofError> {
        let bytes = crate::config::read_config(path)?;
        let v: Value = crate::config::from_yaml(&bytes, path)?;
        Plan::from_value(&v).map_err(|msg| ProofError::config(path, 0, msg))
    }

    /// A plan from a parsed document; the error names the step (index and key) and
    /// the allowed range, to be prefixed with the file or scenario key.
    pub fn from_value(v: &Value) -> Result<Plan, String> {
        let obj = v
            .as_object()
            .ok_or("a plan is a mapping with `steps` (or an Argo Rollout / Flagger Canary)")?;
        match obj.get("kind").and_then(Value::as_str) {
            Some("Rollout") => return argo(v),
            Some("Canary") => return flagger(v),
            Some(k) => {
                return Err(format!(
                    "kind `{k}`: expected `Rollout` (Argo Rollouts) or `Canary` (Flagger), or no kind"
                ));
            }
            None => {}
        }
        for k in obj.keys() {
            if !matches!(
                k.as_str(),
                "steps" | "failure_limit" | "start" | "description"
            ) {
                return Err(format!(
                    "unknown key `{k}`: a plan has `steps`, `failure_limit` and `start`"
                ));
            }
        }
        let steps_v = obj
            .get("steps")
            .and_then(Value::as_array)
            .ok_or("`steps`: a list of at least one {rollout, duration} is required")?;
        if steps_v.is_empty() {
            return Err("`steps`: a plan needs at least one step".into());
        }
        let mut steps = Vec::with_capacity(steps_v.len());
        for (i, s) in steps_v.iter().enumerate() {
            let at = |key: &str, msg: String| format!("step {} (index {i}), `{key}`: {msg}", i + 1);
            let m = s
                .as_object()
                .ok_or_else(|| at("steps", "a step is a mapping {rollout, duration}".into()))?;
            for k in m.keys() {
                if k != "rollout" && k != "duration" {
                    return Err(at(
                        k,
                        "unknown key; a step has `rollout` and `duration`".into(),
                    ));
                }
            }
            let rollout = m
                .get("rollout")
                .ok_or_else(|| at("rollout", "missing; an integer 0..=100".into()))
                .and_then(|r| percent(r).map_err(|e| at("rollout", e)))?;
            let duration_ms = match m.get("duration") {
                None | Some(Value::Null) => None,
                Some(Value::String(d)) => Some(span(d).map_err(|e| at("duration", e))?),
                Some(other) => {
                    return Err(at(
                        "duration",
                        format!(
                            "{other}: expected a span such as 30m or 1h (units ms, s, m, h, d)"
                        ),
                    ));
                }
            };
            if duration_ms.is_none() && i + 1 != steps_v.len() {
                return Err(at(
                    "duration",
                    "missing; only the last step may omit its duration".into(),
                ));
            }
            steps.push(Step {
                rollout,
                duration_ms,
            });
        }
        let failure_limit = match obj.get("failure_limit") {
            None | Some(Value::Null) => 1,
            Some(v) => v.as_u64().filter(|&n| n >= 1).ok_or_else(|| {
                format!("`failure_limit`: {v}: an integer ≥ 1 (breached windows before rollback)")
            })?,
        };
        let start = match obj.get("start") {
            None | Some(Value::Null) => Start::First,
            Some(Value::String(s)) => match s.as_str() {
                "first" => Start::First,
                "every" => Start::Every,
                t => Start::Instant(
                    parse_rfc3339_ms(t).ok_or_else(|| {
                        format!("`start`: '{t}': expected first, every or an RFC 3339 instant such as 2026-11-05T08:00:00Z")
                    })?,
                    t.to_string(),
                ),
            },
            Some(v) => {
                return Err(format!(
                    "`start`: {v}: expected first, every or an RFC 3339 instant"
                ));
            }
        };
        Ok(Plan {
            steps,
            failure_limit,
            start,
            source: "proof",
        })
    }
}

fn percent(v: &Value) -> Result<RolloutPercent, String> {
    v.as_u64()
        .and_then(|n| u8::try_from(n).ok())
        .and_then(RolloutPercent::new)
        .ok_or_else(|| format!("{v}: an integer 0..=100"))
}

fn span(s: &str) -> Result<i64, String> {
    parse_span_ms(s).ok_or_else(|| {
        format!("'{s}': expected a span such as 30m or 1h (a whole number > 0 with unit ms, s, m, h or d)")
    })
}

/// Argo Rollouts (SPEC §9): `spec.strategy.canary.steps`.
fn argo(v: &Value) -> Result<Plan, String> {
    let steps_v = v
        .pointer("/spec/strategy/canary/steps")
        .and_then(Value::as_array)
        .ok_or("kind Rollout: `spec.strategy.canary.steps` (a list) is required")?;
    let mut steps: Vec<(RolloutPercent, i64)> = Vec::new();
    let mut open: Option<(RolloutPercent, i64)> = None;
    for (i, s) in steps_v.iter().enumerate() {
        let at = |key: &str, msg: String| {
            format!(
                "spec.strategy.canary.steps[{i}] (step {}), `{key}`: {msg}",
                i + 1
            )
        };
        if let Some(w) = s.get("setWeight") {
            let w = percent(w).map_err(|e| at("setWeight", e))?;
            if let Some((lw, d)) = open.take()
                && d > 0
            {
                steps.push((lw, d));
            }
            open = Some((w, 0));
        } else if let Some(p) = s.get("pause") {
            let d = match p.get("duration") {
                Some(Value::Number(n)) => n
                    .as_u64()
                    .and_then(|s| i64::try_from(s).ok())
                    .and_then(|s| s.checked_mul(1000))
                    .filter(|&ms| ms > 0)
                    .ok_or_else(|| {
                        at(
                            "pause.duration",
                            format!("{n}: a whole number of seconds > 0"),
                        )
                    })?,
                Some(Value::String(d)) => match d.parse::<u64>() {
                    Ok(secs) if secs > 0 => secs as i64 * 1000,
                    _ => span(d).map_err(|e| at("pause.duration", e))?,
                },
                _ => {
                    return Err(at(
                        "pause.duration",
                        "missing: a pause without a duration waits for a person, which a replay cannot simulate; give a span such as 30m or seconds".into(),
                    ));
                }
            };
            if let Some((_, acc)) = &mut open {
                *acc = acc.saturating_add(d);
            }
            // A pause before the first setWeight is ignored.
        }
        // Other step kinds (analysis, experiment, setCanaryScale, …) are ignored.
    }
    if let Some((lw, d)) = open
        && d > 0
    {
        steps.push((lw, d));
    }
    let mut steps: Vec<Step> = steps
        .into_iter()
        .map(|(rollout, d)| Step {
            rollout,
            duration_ms: Some(d),
        })
        .collect();
    steps.push(Step {
        rollout: RolloutPercent::new(100).expect("100 is a level"),
        duration_ms: None,
    });
    Ok(Plan {
        steps,
        failure_limit: 1,
        start: Start::First,
        source: "argo",
    })
}

/// Flagger (SPEC is silent; docs/design.md): `spec.analysis` with `interval`,
/// `threshold`, `stepWeight` + `maxWeight` or `stepWeights`. One step per weight, each
/// lasting `interval`, `threshold` as failure_limit, promotion to 100 afterwards.
fn flagger(v: &Value) -> Result<Plan, String> {
    let a = v
        .pointer("/spec/analysis")
        .and_then(Value::as_object)
        .ok_or("kind Canary: `spec.analysis` (a mapping) is required")?;
    let at = |key: &str, msg: String| format!("spec.analysis.{key}: {msg}");
    let interval = match a.get("interval") {
        Some(Value::String(s)) => span(s).map_err(|e| at("interval", e))?,
        None => 60_000, // Flagger's default
        Some(o) => return Err(at("interval", format!("{o}: a span such as 1m"))),
    };
    let failure_limit = match a.get("threshold") {
        None => 1,
        Some(t) => t
            .as_u64()
            .filter(|&n| n >= 1)
            .ok_or_else(|| at("threshold", format!("{t}: an integer ≥ 1")))?,
    };
    let weights: Vec<RolloutPercent> = if let Some(ws) = a.get("stepWeights") {
        let ws = ws
            .as_array()
            .filter(|w| !w.is_empty())
            .ok_or_else(|| at("stepWeights", "a non-empty list of integers 0..=100".into()))?;
        ws.iter()
            .enumerate()
            .map(|(i, w)| percent(w).map_err(|e| at(&format!("stepWeights[{i}]"), e)))
            .collect::<Result<_, _>>()?
    } else {
        let step = a
            .get("stepWeight")
            .ok_or_else(|| {
                at(
                    "stepWeight",
                    "missing: give stepWeight (with maxWeight) or stepWeights".into(),
                )
            })
            .and_then(|s| percent(s).map_err(|e| at("stepWeight", e)))?;
        if step.get() == 0 {
            return Err(at("stepWeight", "0: an integer 1..=100".into()));
        }
        let max = match a.get("maxWeight") {
            None => 100,
            Some(m) => percent(m).map_err(|e| at("maxWeight", e))?.get(),
        };
        let mut out = Vec::new();
        let mut w = step.get();
        loop {
            let cur = w.min(max);
            out.push(RolloutPercent::new(cur).expect("capped at 100"));
            if cur >= max {
                break;
            }
            w = w.saturating_add(step.get());
        }
        out
    };
    let mut steps: Vec<Step> = weights
        .into_iter()
        .map(|rollout| Step {
            rollout,
            duration_ms: Some(interval),
        })
        .collect();
    steps.push(Step {
        rollout: RolloutPercent::new(100).expect("100 is a level"),
        duration_ms: None,
    });
    Ok(Plan {
        steps,
        failure_limit,
        start: Start::First,
        source: "flagger",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::aggregate::WindowAgg;
    use crate::replay::gate::tests::settings;
    use serde_json::json;

    const MIN: i64 = 60_000;

    /// Ten 1-minute windows of 10 requests each; `drift` lists (window, percent group,
    /// new denial?) for one drifting record each: it counts at every level above its
    /// percent group.
    fn agg(drift: &[(i64, usize, bool)]) -> Aggregate {
        let mut a = Aggregate::default();
        for w in 0..10 {
            let win = WindowAgg {
                requests: 10,
                ..WindowAgg::default()
            };
            a.windows.insert(w * MIN, win);
        }
        for &(w, pct, new) in drift {
            let win = a.windows.get_mut(&(w * MIN)).unwrap();
            win.drift_by_pct[pct] += 1;
            if new {
                win.new_denials_by_pct[pct] += 1;
            } else {
                win.missed_denials_by_pct[pct] += 1;
            }
        }
        a.evaluated = 100;
        a.read = 100;
        a
    }

    fn gate() -> GateSettings {
        let mut g = settings(None);
        g.drift_max = 0.1; // 2 of 10 breach
        g.window = WindowLen::from_ms(MIN).unwrap();
        g
    }

    fn plan(v: serde_json::Value) -> Plan {
        let p = Plan::from_value(&v).unwrap();
        p.check_window(gate().window, "test").unwrap();
        p
    }

    fn three_steps(extra: serde_json::Value) -> Plan {
        let mut v = json!({"steps": [
            {"rollout": 10, "duration": "2m"},
            {"rollout": 50, "duration": "3m"},
            {"rollout": 100}
        ]});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        plan(v)
    }

    #[test]
    fn rolled_back_in_the_first_step() {
        // Two new denials in window 1 from bucket group 5: counted at 10 %, 2/10 > 0.1.
        let a = agg(&[(1, 5, true), (1, 5, true)]);
        let r = three_steps(json!({})).simulate(&a, &gate());
        assert!(!r.passed);
        let run = &r.runs[0];
        assert_eq!(run.outcome, RunOutcome::RolledBack);
        assert_eq!(run.rolled_back_in.map(|(s, l)| (s, l.get())), Some((1, 10)));
        assert_eq!(run.at_ms, Some(2 * MIN)); // the end of window 1
        assert_eq!(run.breached_windows, 1);
        assert_eq!(
            run.impact,
            Impact {
                requests: 20,
                events: 2,
                new_denials: 2,
                missed_denials: 0
            }
        );
        assert_eq!(r.summary.rolled_back_by_step, [1, 0, 0]);
        // The staircase: 10 % for windows 0-1, then rolled back to 0.
        let levels: Vec<u8> = r.first_run_levels.iter().map(|(_, l)| *l).collect();
        assert_eq!(levels, [10, 10, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn rolled_back_in_the_last_step_only_where_its_level_counts() {
        // Group 80 counts only at 100 %: windows 1 and 3 (steps 1, 2) do not breach.
        let a = agg(&[
            (1, 80, true),
            (1, 80, true),
            (3, 80, false),
            (3, 80, false),
            (7, 80, false),
            (7, 80, true),
        ]);
        let r = three_steps(json!({})).simulate(&a, &gate());
        let run = &r.runs[0];
        assert_eq!(
            run.rolled_back_in.map(|(s, l)| (s, l.get())),
            Some((3, 100))
        );
        assert_eq!(run.at_ms, Some(8 * MIN));
        // Judged: windows 0..=7, 80 requests; only window 7 counts its drift (at 100 %).
        assert_eq!(
            run.impact,
            Impact {
                requests: 80,
                events: 2,
                new_denials: 1,
                missed_denials: 1
            }
        );
        let levels: Vec<u8> = r.first_run_levels.iter().map(|(_, l)| *l).collect();
        assert_eq!(levels, [10, 10, 50, 50, 50, 100, 100, 100, 0, 0]);
    }

    #[test]
    fn promoted_and_incomplete() {
        // A breach after the last timed step's end is never judged.
        let a = agg(&[(7, 0, true), (7, 0, true)]);
        let p = plan(json!({"steps": [
            {"rollout": 10, "duration": "2m"}, {"rollout": 100, "duration": "3m"}]}));
        let r = p.simulate(&a, &gate());
        assert!(r.passed);
        assert_eq!(r.runs[0].outcome, RunOutcome::Promoted);
        assert_eq!(r.runs[0].at_ms, Some(5 * MIN));
        assert_eq!(r.runs[0].impact.requests, 50);
        let p = plan(json!({"steps": [
            {"rollout": 10, "duration": "2m"}, {"rollout": 50, "duration": "20m"}]}));
        let r = p.simulate(&agg(&[]), &gate());
        assert_eq!(r.runs[0].outcome, RunOutcome::Incomplete);
        assert_eq!(r.runs[0].at_ms, None);
        assert!(r.passed);
        // Open-ended last step: promoted once the traffic reaches it, at its start.
        let r = three_steps(json!({})).simulate(&agg(&[]), &gate());
        assert_eq!(r.runs[0].outcome, RunOutcome::Promoted);
        assert_eq!(r.runs[0].at_ms, Some(5 * MIN));
    }

    #[test]
    fn failure_limit_counts_breached_windows() {
        // Group 0 counts at every level above 0: windows 1, 3 and 6 breach.
        let d = [(1, 0, true), (1, 0, true), (3, 0, true), (3, 0, true)];
        let d: Vec<_> = d
            .iter()
            .copied()
            .chain([(6, 0, true), (6, 0, true)])
            .collect();
        let a = agg(&d);
        let r = three_steps(json!({"failure_limit": 1})).simulate(&a, &gate());
        assert_eq!(r.runs[0].at_ms, Some(2 * MIN));
        let r = three_steps(json!({"failure_limit": 3})).simulate(&a, &gate());
        let run = &r.runs[0];
        assert_eq!(run.rolled_back_in.map(|(s, _)| s), Some(3));
        assert_eq!(run.at_ms, Some(7 * MIN));
        assert_eq!(run.breached_windows, 3);
        assert_eq!(run.impact.events, 6);
        let r = three_steps(json!({"failure_limit": 4})).simulate(&a, &gate());
        assert_eq!(r.runs[0].outcome, RunOutcome::Promoted);
        assert_eq!(r.runs[0].breached_windows, 3);
    }

    #[test]
    fn an_instant_start_floors_to_its_window() {
        let a = agg(&[(1, 0, true), (1, 0, true), (3, 0, true), (3, 0, true)]);
        let p = three_steps(json!({"start": "1970-01-01T00:03:30Z"}));
        assert_eq!(p.start.as_text(), "1970-01-01T00:03:30Z");
        let r = p.simulate(&a, &gate());
        assert_eq!(r.runs.len(), 1);
        assert_eq!(r.runs[0].start, WindowStart(3 * MIN));
        assert_eq!(r.runs[0].at_ms, Some(4 * MIN));
        assert_eq!(r.runs[0].impact.requests, 10);
    }

    #[test]
    fn every_start_agrees_with_one_instant_run_per_start() {
        let a = agg(&[
            (1, 5, true),
            (1, 30, true),
            (4, 60, false),
            (4, 60, false),
            (8, 0, true),
            (8, 0, false),
        ]);
        for limit in [1, 2] {
            let every = three_steps(json!({"start": "every", "failure_limit": limit}))
                .simulate(&a, &gate());
            assert_eq!(every.runs.len(), 10);
            for run in &every.runs {
                let at = crate::policy::time::format_rfc3339_ms(run.start.ms() + 1234);
                let one =
                    three_steps(json!({"start": at, "failure_limit": limit})).simulate(&a, &gate());
                assert_eq!(&one.runs[0], run);
            }
            let s = &every.summary;
            assert_eq!(s.runs, s.promoted + s.rolled_back + s.incomplete);
        }
        let every = three_steps(json!({"start": "every"})).simulate(&a, &gate());
        let mut events: Vec<u64> = every.runs.iter().map(|r| r.impact.events).collect();
        events.sort();
        assert_eq!(every.summary.impact_events_max, *events.last().unwrap());
        assert_eq!(every.summary.impact_events_median, events[4]);
    }

    #[test]
    fn no_window_no_run() {
        let r = three_steps(json!({"start": "every"})).simulate(&Aggregate::default(), &gate());
        assert!(r.runs.is_empty() && r.passed);
        assert_eq!(r.summary.runs, 0);
        assert_eq!(r.summary.rolled_back_by_step, [0, 0, 0]);
    }

    #[test]
    fn argo_rollout_steps() {
        let v: Value = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "spec": {"strategy": {"canary": {"steps": [
                {"pause": {"duration": "1h"}},
                {"setWeight": 10},
                {"pause": {"duration": "2m"}},
                {"setWeight": 20},
                {"setWeight": 50},
                {"analysis": {"templates": [{"templateName": "success-rate"}]}},
                {"pause": {"duration": 180}},
                {"pause": {"duration": "60"}},
                {"setWeight": 80}
            ]}}}
        }))
        .unwrap();
        let p = Plan::from_value(&v).unwrap();
        let steps: Vec<(u8, Option<i64>)> = p
            .steps
            .iter()
            .map(|s| (s.rollout.get(), s.duration_ms))
            .collect();
        // 20 (no pause) and 80 (last, no pause) are dropped; 50 lasts 180 s + 60 s;
        // the promotion to 100 is appended.
        assert_eq!(
            steps,
            [(10, Some(2 * MIN)), (50, Some(4 * MIN)), (100, None)]
        );
        assert_eq!((p.failure_limit, p.source), (1, "argo"));
        let bad = json!({"kind": "Rollout", "spec": {"strategy": {"canary": {"steps": [
            {"setWeight": 10}, {"pause": {}}]}}}});
        let e = Plan::from_value(&bad).unwrap_err();
        assert!(
            e.contains("steps[1]") && e.contains("pause.duration"),
            "{e}"
        );
    }

    #[test]
    fn flagger_canary_steps() {
        let v = json!({"kind": "Canary", "spec": {"analysis": {
            "interval": "1m", "threshold": 2, "stepWeight": 20, "maxWeight": 50}}});
        let p = Plan::from_value(&v).unwrap();
        let steps: Vec<(u8, Option<i64>)> = p
            .steps
            .iter()
            .map(|s| (s.rollout.get(), s.duration_ms))
            .collect();
        assert_eq!(
            steps,
            [
                (20, Some(MIN)),
                (40, Some(MIN)),
                (50, Some(MIN)),
                (100, None)
            ]
        );
        assert_eq!(p.failure_limit, 2);
        let v = json!({"kind": "Canary", "spec": {"analysis": {"stepWeights": [1, 5, 25]}}});
        let p = Plan::from_value(&v).unwrap();
        assert_eq!(p.steps.len(), 4);
    }

    #[test]
    fn bad_plans_name_the_step_key_and_range() {
        let cases = [
            (json!({"steps": []}), "at least one step"),
            (json!({}), "`steps`"),
            (
                json!({"steps": [{"rollout": 101, "duration": "1m"}]}),
                "step 1 (index 0), `rollout`: 101: an integer 0..=100",
            ),
            (
                json!({"steps": [{"rollout": 5}, {"rollout": 10}]}),
                "step 1 (index 0), `duration`: missing; only the last step",
            ),
            (
                json!({"steps": [{"rollout": 5, "duration": "1m", "weight": 3}]}),
                "`weight`: unknown key",
            ),
            (
                json!({"steps": [{"rollout": 5}], "failure_limit": 0}),
                "integer ≥ 1",
            ),
            (
                json!({"steps": [{"rollout": 5}], "start": "soon"}),
                "RFC 3339",
            ),
            (
                json!({"steps": [{"rollout": 5}], "stepz": 1}),
                "unknown key `stepz`",
            ),
        ];
        for (v, want) in cases {
            let e = Plan::from_value(&v).unwrap_err();
            assert!(e.contains(want), "{v}: {e}");
        }
        let p = Plan::from_value(
            &json!({"steps": [{"rollout": 5, "duration": "90s"}, {"rollout": 100}]}),
        )
        .unwrap();
        let e = p
            .check_window(WindowLen::from_ms(MIN).unwrap(), "plan.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("plan.yaml: step 1 (index 0)")
                && e.contains("not a whole multiple of the window 1m"),
            "{e}"
        );
    }
}
