//! Plan simulation (SPEC §9): runs of a plan over the report's windows.
//!
//! The simulation reads per-window, per-percent counts the single replay pass already
//! made; nothing is re-evaluated per level or per start. Each distinct step level gets
//! prefix sums over the windows, and a run walks only the segments (consecutive steps
//! at one level) that hold a window ([`Spans::judged`]: segments without one are
//! skipped by a search on their ends, and the walk stops where the traffic ends). A
//! run then costs O(min(level changes, windows) × log): for a plan that only raises
//! its level at most 101 segments, whatever the number of steps.

use std::ops::Range;

use super::{Impact, Plan, PlanResult, Run, RunOutcome, Start, Step, Summary};
use crate::orchestrator::RolloutPercent;
use crate::replay::aggregate::Aggregate;
use crate::replay::gate::{GateSettings, window_cum};
use crate::replay::window::{WindowLen, WindowStart};

/// Prefix sums over the windows at one level.
struct LevelSums {
    requests: Vec<u64>,
    events: Vec<u64>,
    new: Vec<u64>,
    missed: Vec<u64>,
    breaches: Vec<u64>,
    /// Window indices that breach, ascending.
    breach_at: Vec<usize>,
}

impl LevelSums {
    fn new(n: usize) -> LevelSums {
        LevelSums {
            requests: vec![0; n + 1],
            events: vec![0; n + 1],
            new: vec![0; n + 1],
            missed: vec![0; n + 1],
            breaches: vec![0; n + 1],
            breach_at: Vec::new(),
        }
    }

    fn impact(&self, w: Range<usize>) -> Impact {
        let (a, b) = (w.start, w.end);
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

/// Where the steps lie relative to a run's start: step k spans
/// `[t0 + start(k), t0 + end[k])`, in i128 so that no sum of durations overflows
/// (the open-ended last step ends at `i128::MAX`). Consecutive steps at the same level
/// form one *segment*: a run is judged segment by segment (the windows of a segment
/// share its level, so their counts are one prefix-sum difference), which bounds a
/// run's walk by the level changes of the plan (at most 101 for a plan that only
/// raises its level, whatever its number of steps).
struct Spans<'a> {
    steps: &'a [Step],
    end: Vec<i128>,
    /// Sum of the timed durations: the last step's end, or the open-ended step's start.
    total: i128,
    /// End of each segment (the end of its last step).
    seg_end: Vec<i128>,
    /// First step of each segment.
    seg_step: Vec<usize>,
}

impl<'a> Spans<'a> {
    fn new(steps: &'a [Step]) -> Spans<'a> {
        let mut acc: i128 = 0;
        let end = steps
            .iter()
            .map(|s| match s.duration_ms {
                Some(d) => {
                    acc += i128::from(d);
                    acc
                }
                None => i128::MAX,
            })
            .collect::<Vec<i128>>();
        let (mut seg_end, mut seg_step) = (Vec::new(), Vec::<usize>::new());
        for (k, s) in steps.iter().enumerate() {
            match seg_step.last() {
                Some(&f) if steps[f].rollout == s.rollout => {
                    *seg_end.last_mut().expect("a segment per first step") = end[k];
                }
                _ => {
                    seg_step.push(k);
                    seg_end.push(end[k]);
                }
            }
        }
        Spans {
            steps,
            end,
            total: acc,
            seg_end,
            seg_step,
        }
    }

    /// The step of segment `g` that sets its level (its first).
    fn step_of(&self, g: usize) -> &'a Step {
        &self.steps[self.seg_step[g]]
    }

    /// The index of the step holding the window starting at `start` in a run at `t0`.
    fn step_at(&self, t0: i64, start: i64) -> usize {
        let off = i128::from(start) - i128::from(t0);
        self.end.partition_point(|&e| e <= off)
    }

    /// `e_last` of SPEC §9 for a run at `t0` (saturating, as a sum of spans does).
    fn last_end(&self, t0: i64) -> i64 {
        clamp(i128::from(t0) + self.total)
    }

    /// The one step walk: the segments of a run at `t0` that hold a window of `starts`
    /// (ascending), in order, each with the range of window indices in its span.
    /// Segments without a window are skipped, and the walk ends with the windows (or
    /// with the last timed step: later windows fall after the rollout was promoted).
    fn judged(&self, t0: i64, starts: &'a [i64]) -> impl Iterator<Item = (usize, Range<usize>)> {
        let mut i = starts.partition_point(|&s| s < t0);
        let mut k = 0;
        let t0 = i128::from(t0);
        std::iter::from_fn(move || {
            let &first = starts.get(i)?;
            // The step holding window i: the first from k whose end lies past it.
            let off = i128::from(first) - t0;
            k += gallop(&self.seg_end[k..], |&e| e <= off);
            let end = t0.saturating_add(*self.seg_end.get(k)?);
            let b = i + gallop(&starts[i..], |&s| i128::from(s) < end);
            let out = (k, i..b);
            i = b;
            k += 1;
            Some(out)
        })
    }
}

fn clamp(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// `partition_point` for a sorted slice, probing 1, 2, 4 … from the front first: the
/// walk's next step and next window are usually the first few.
fn gallop<T>(s: &[T], pred: impl Fn(&T) -> bool) -> usize {
    let mut hi = 1;
    while hi < s.len() && pred(&s[hi - 1]) {
        hi *= 2;
    }
    let lo = hi / 2;
    lo + s[lo..hi.min(s.len())].partition_point(pred)
}

impl Plan {
    /// Simulates the plan over the aggregate's windows under the gate's breach rule.
    pub fn simulate(&self, agg: &Aggregate, g: &GateSettings) -> PlanResult {
        let starts: Vec<i64> = agg.windows.keys().copied().collect();
        let n = starts.len();
        // One set of prefix sums per distinct step level, found by level in O(1).
        let mut slot = [usize::MAX; 101];
        let mut levels: Vec<RolloutPercent> = Vec::new();
        for s in &self.steps {
            let l = usize::from(s.rollout.get());
            if slot[l] == usize::MAX {
                slot[l] = levels.len();
                levels.push(s.rollout);
            }
        }
        let mut sums: Vec<LevelSums> = levels.iter().map(|_| LevelSums::new(n)).collect();
        for (i, w) in agg.windows.values().enumerate() {
            let (drift, new, missed) = window_cum(w);
            for (s, level) in sums.iter_mut().zip(&levels) {
                let l = usize::from(level.get());
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
        let sums_of = |step: &Step| &sums[slot[usize::from(step.rollout.get())]];
        let w = g.window;
        let spans = Spans::new(&self.steps);
        let traffic_end = starts.last().map(|&s| WindowStart(s).end(w));
        let t0s: Vec<i64> = match (&self.start, n) {
            (_, 0) => Vec::new(),
            (Start::First, _) => vec![starts[0]],
            (Start::Every, _) => starts.clone(),
            (Start::Instant(t, _), _) => vec![w.of(*t).ms()],
        };
        let mut runs = Vec::with_capacity(t0s.len());
        for &t0 in &t0s {
            let mut impact = Impact::default();
            let mut breached = 0u64;
            let mut rolled: Option<(usize, RolloutPercent, i64)> = None;
            for (g, windows) in spans.judged(t0, &starts) {
                let step = spans.step_of(g);
                let ls = sums_of(step);
                let here = ls.breaches[windows.end] - ls.breaches[windows.start];
                if breached + here >= self.failure_limit {
                    let nth =
                        (ls.breaches[windows.start] + (self.failure_limit - breached) - 1) as usize;
                    let wi = ls.breach_at[nth];
                    add(&mut impact, ls.impact(windows.start..wi + 1));
                    breached = self.failure_limit;
                    let k = spans.step_at(t0, starts[wi]);
                    rolled = Some((k + 1, step.rollout, WindowStart(starts[wi]).end(w)));
                    break;
                }
                breached += here;
                add(&mut impact, ls.impact(windows));
            }
            let e_last = spans.last_end(t0);
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
            .map(|r| levels_over(&spans, r, &starts, w))
            .unwrap_or_default();
        PlanResult {
            plan: self.clone(),
            passed: runs.iter().all(|r| r.outcome != RunOutcome::RolledBack),
            runs,
            summary,
            first_run_levels,
        }
    }
}

/// The level of each window from the run's start on: its step's level (100 past
/// every timed step: promoted), 0 after the rollback window.
fn levels_over(
    spans: &Spans<'_>,
    run: &Run,
    starts: &[i64],
    w: WindowLen,
) -> Vec<(WindowStart, u8)> {
    let from = starts.partition_point(|&s| s < run.start.ms());
    let mut level = vec![100u8; starts.len() - from];
    for (g, windows) in spans.judged(run.start.ms(), starts) {
        level[windows.start - from..windows.end - from].fill(spans.step_of(g).rollout.get());
    }
    let rollback_end = match run.outcome {
        RunOutcome::RolledBack => run.at_ms,
        _ => None,
    };
    starts[from..]
        .iter()
        .zip(level)
        .map(|(&st, l)| {
            let rolled_back = rollback_end.is_some_and(|at| WindowStart(st).end(w) > at);
            (WindowStart(st), if rolled_back { 0 } else { l })
        })
        .collect()
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
    fn steps_at_one_level_are_judged_as_one_span_but_named_by_step() {
        // Steps 1 and 2 both at 10 % (one segment), step 3 at 50 % (1 m), then 100 %:
        // windows 0, 1 | 2 | 3 | 4 | 5 … at 10, 10, 10, 50, 100 …, failure limit 2.
        // Breaches (2 of 10 from group 5, counted at 10 % and up) in windows 1 and 2:
        // the second breach is in window 2, in step 2 (not step 1, where the segment
        // starts), so the run rolls back in step 2 at 10 %, at the end of window 2.
        let p = plan(json!({"steps": [
            {"rollout": 10, "duration": "2m"},
            {"rollout": 10, "duration": "1m"},
            {"rollout": 50, "duration": "1m"},
            {"rollout": 100}
        ], "failure_limit": 2}));
        let a = agg(&[(1, 5, true), (1, 5, true), (2, 5, false), (2, 5, false)]);
        let r = p.simulate(&a, &gate());
        let run = &r.runs[0];
        assert_eq!(run.outcome, RunOutcome::RolledBack);
        assert_eq!(run.rolled_back_in.map(|(s, l)| (s, l.get())), Some((2, 10)));
        assert_eq!(run.at_ms, Some(3 * MIN));
        assert_eq!(run.breached_windows, 2);
        assert_eq!(
            run.impact,
            Impact {
                requests: 30,
                events: 4,
                new_denials: 2,
                missed_denials: 2
            }
        );
        assert_eq!(r.summary.rolled_back_by_step, [0, 1, 0, 0]);
        let levels: Vec<u8> = r.first_run_levels.iter().map(|(_, l)| *l).collect();
        assert_eq!(levels, [10, 10, 10, 0, 0, 0, 0, 0, 0, 0]);
        // Without the breaches: 10, 10, 10, 50, then promoted to 100.
        let r = p.simulate(&agg(&[]), &gate());
        assert_eq!(r.runs[0].outcome, RunOutcome::Promoted);
        assert_eq!(r.runs[0].at_ms, Some(4 * MIN));
        let levels: Vec<u8> = r.first_run_levels.iter().map(|(_, l)| *l).collect();
        assert_eq!(levels, [10, 10, 10, 50, 100, 100, 100, 100, 100, 100]);
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
}
