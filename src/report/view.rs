//! Figures derived from the report model for the human-facing exporters (HTML,
//! Markdown, JUnit), so that the three agree: the gate level's column, how a window
//! fares, the worst windows and the what-if curve over every whole percent. Where
//! `--min-requests` matters, the figures the gate uses (windows that count) are kept
//! apart from report.json's figures over all windows.

use super::model::{PlanRunOut, Report, Window, WindowLevel, pct, ratio};
use crate::replay::gate::Judgement;

/// How one window fares at one level (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowStatus {
    /// At or below drift-max.
    Ok,
    /// Above drift-max.
    Breach,
    /// Above rollback_factor × drift-max.
    Rollback,
    /// Fewer requests than --min-requests: never breaches.
    TooFew,
}

impl WindowStatus {
    /// Word for tables and CSS classes.
    pub fn as_str(self) -> &'static str {
        match self {
            WindowStatus::Ok => "ok",
            WindowStatus::Breach => "breach",
            WindowStatus::Rollback => "rollback",
            WindowStatus::TooFew => "too-few",
        }
    }
}

/// Status of `events` drifting records out of `requests`, by the gate's own rule
/// (`GateSettings::judge`: point ratios, or Wilson bounds with confidence on).
pub fn status(r: &Report, events: u64, requests: u64) -> WindowStatus {
    let j = r.settings.judge(events, requests);
    if requests < r.settings.min_requests {
        WindowStatus::TooFew
    } else if j.rollback {
        WindowStatus::Rollback
    } else if j.breach {
        WindowStatus::Breach
    } else {
        WindowStatus::Ok
    }
}

/// The rollback line: rollback_factor × drift_max.
pub fn rollback_line(r: &Report) -> f64 {
    r.settings.rollback_factor * r.settings.drift_max
}

/// Index of the gate level in `levels` and in every window's `drift`.
pub fn gate_pos(r: &Report) -> Option<usize> {
    r.levels
        .iter()
        .position(|l| l.rollout_percent == r.gate.rollout_percent)
}

/// A window's figures at the gate level.
pub fn at_gate<'a>(r: &Report, w: &'a Window) -> Option<&'a WindowLevel> {
    gate_pos(r).and_then(|i| w.drift.get(i))
}

/// Whether a window has enough requests to count for the gate (`--min-requests`).
pub fn counts(r: &Report, w: &Window) -> bool {
    w.requests >= r.settings.min_requests
}

/// Windows with drift at the gate level, worst ratio first, then by start: up to `n`
/// windows that count for the gate, then up to `too_few` windows with fewer than
/// `--min-requests` requests (which never breach, however high their ratio).
pub fn worst_windows(r: &Report, n: usize, too_few: usize) -> WorstWindows<'_> {
    let mut v: Vec<(&Window, &WindowLevel)> = r
        .windows
        .iter()
        .filter_map(|w| at_gate(r, w).map(|d| (w, d)))
        .filter(|(_, d)| d.events > 0)
        .collect();
    v.sort_by(|a, b| {
        b.1.ratio
            .total_cmp(&a.1.ratio)
            .then_with(|| a.0.start.cmp(&b.0.start))
    });
    let (mut counted, mut few): (Vec<_>, Vec<_>) = v.into_iter().partition(|(w, _)| counts(r, w));
    counted.truncate(n);
    few.truncate(too_few);
    WorstWindows {
        counted,
        too_few: few,
    }
}

/// The worst windows at the gate level, split by whether they count for the gate.
#[derive(Debug)]
pub struct WorstWindows<'a> {
    /// Windows with at least `--min-requests` requests, worst first.
    pub counted: Vec<(&'a Window, &'a WindowLevel)>,
    /// Windows with fewer requests, worst first (empty when min-requests is 1).
    pub too_few: Vec<(&'a Window, &'a WindowLevel)>,
}

/// Largest window ratio at the level with index `li`, over the windows that count
/// for the gate; `None` when no window has `--min-requests` requests. Unlike
/// `levels[].max_window_ratio` (all windows, SPEC §5) this is the figure the gate
/// compares with drift max.
pub fn max_counted_ratio(r: &Report, li: usize) -> Option<f64> {
    r.windows
        .iter()
        .filter(|w| counts(r, w))
        .filter_map(|w| w.drift.get(li).map(|d| d.ratio))
        .reduce(f64::max)
}

/// Smallest whole rollout percent that enforces a record of this bucket.
pub fn enforced_from(bucket: u16) -> u16 {
    bucket / 100 + 1
}

/// Which windows a what-if curve takes its maximum over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Windows {
    /// Windows with at least `--min-requests` requests: the gate's view, so the curve
    /// is above drift max exactly right of the max safe rollout.
    Counted,
    /// Every window, as `levels[].max_window_ratio`.
    All,
}

/// Largest window ratio at every whole percent 0..=100 (index = percent), from the
/// per-window bucket counts, over the windows `which` selects. With `Windows::All`
/// it equals `levels[].max_window_ratio` at the reported levels.
pub fn whatif_curve(r: &Report, which: Windows) -> Vec<f64> {
    let mut worst = vec![0.0f64; 101];
    for s in &r.series {
        if which == Windows::Counted && !s.counted {
            continue;
        }
        for (w, &cum) in worst.iter_mut().zip(&s.drift_by_percent).skip(1) {
            let x = ratio(cum, s.requests);
            if x > *w {
                *w = x;
            }
        }
    }
    worst
}

/// One window of the plan's first run, as the simulation judged it.
#[derive(Debug, Clone, Copy)]
pub struct PlanWindow {
    /// Index into `series` (and `windows`).
    pub index: usize,
    /// The run's level in this window.
    pub level: u8,
    /// The gate's judgement of the window at that level (point or Wilson rule).
    pub judgement: Judgement,
}

/// The windows the plan's first run judged (SPEC §9): every window from its start at
/// its step's level, up to and including the one that rolled it back. Empty without
/// a plan or without a run.
pub fn plan_windows(r: &Report) -> Vec<PlanWindow> {
    let Some(run) = r.plan.as_ref().and_then(|p| p.runs.first()) else {
        return Vec::new();
    };
    let rolled_back_at = r
        .plan_result
        .as_ref()
        .and_then(|p| p.runs.first())
        .filter(|_| run.outcome == "rolled_back")
        .and_then(|x| x.at_ms);
    r.series
        .iter()
        .enumerate()
        .filter(|(_, s)| rolled_back_at.is_none_or(|at| s.end_ms <= at))
        .filter_map(|(index, s)| {
            let level = s.plan_rollout_percent?;
            let drift = s.drift_by_percent.get(usize::from(level)).copied()?;
            Some(PlanWindow {
                index,
                level,
                judgement: r.settings.judge(drift, s.requests),
            })
        })
        .collect()
}

/// The run that would have hurt most: the most drift events, then the most new
/// denials, then the earliest start.
pub fn worst_run(r: &Report) -> Option<&PlanRunOut> {
    r.plan.as_ref()?.runs.iter().reduce(|best, x| {
        let key = |x: &PlanRunOut| (x.impact.events, x.impact.new_denials);
        if key(x) > key(best) { x } else { best }
    })
}

/// With `--confidence`: the fewest requests a window needs to pass at drift max
/// (`requests_to_pass`), how many windows have that many, and the largest window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassNeeds {
    /// Requests a window needs to show drift ≤ drift max (None: no count can).
    pub requests: Option<u64>,
    /// Windows with at least that many requests (and at least --min-requests).
    pub windows_large_enough: usize,
    /// The largest window's requests.
    pub largest_window: u64,
}

/// The "requests to pass" figure, with confidence on.
pub fn pass_needs(r: &Report) -> Option<PassNeeds> {
    let c = r.settings.confidence?;
    let need = c.requests_to_pass(r.settings.drift_max);
    let largest = r.windows.iter().map(|w| w.requests).max().unwrap_or(0);
    let enough = r
        .windows
        .iter()
        .filter(|w| counts(r, w) && need.is_some_and(|n| w.requests >= n))
        .count();
    Some(PassNeeds {
        requests: need,
        windows_large_enough: enough,
        largest_window: largest,
    })
}

/// The plain sentence about window size under `--confidence`: "windows need ≥ N
/// requests to show drift ≤ X at C", and whether any window here has that many.
pub fn pass_sentence(r: &Report) -> Option<String> {
    let n = pass_needs(r)?;
    let c = r.gate.confidence.unwrap_or(0.0);
    let dm = pct(r.settings.drift_max);
    Some(match n.requests {
        None => format!(
            "No window can pass: a drift max of {dm} cannot be shown at confidence {c} with any number of requests."
        ),
        Some(need) if n.windows_large_enough == 0 => format!(
            "Windows need ≥ {need} requests to show drift ≤ {dm} at confidence {c}; the largest window here has {}, so no window can pass and no rollout level can be proven safe. Use longer windows (--window) or a lower --confidence.",
            n.largest_window
        ),
        Some(need) => format!(
            "Windows need ≥ {need} requests to show drift ≤ {dm} at confidence {c}; {} of {} windows have that many.",
            n.windows_large_enough,
            r.windows.len()
        ),
    })
}

/// A path as people read it: `.` dropped and `dir/..` folded, lexically (no file
/// system access), so `scenarios/../logs/a.jsonl` shows as `logs/a.jsonl`. A `..`
/// that climbs above the start of a relative path is kept.
pub fn shown_path(p: &str) -> String {
    use std::path::{Component, Path, PathBuf};
    let mut out = PathBuf::new();
    let mut depth = 0usize;
    for c in Path::new(p).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if depth > 0 => {
                out.pop();
                depth -= 1;
            }
            Component::ParentDir => {
                if !out.has_root() {
                    out.push("..");
                }
            }
            Component::Normal(x) => {
                out.push(x);
                depth += 1;
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        return ".".into();
    }
    out.to_string_lossy().into_owned()
}

/// `file:line` with the file shown normalised.
pub fn shown_source(source: &str) -> String {
    match source.rsplit_once(':') {
        Some((file, line)) if line.chars().all(|c| c.is_ascii_digit()) => {
            format!("{}:{line}", shown_path(file))
        }
        _ => shown_path(source),
    }
}

/// A small hand-checked report for the exporters' unit tests.
#[cfg(test)]
pub(crate) mod sample {
    use crate::engine::{BucketKey, Decision};
    use crate::orchestrator::{DriftKind, RolloutPercent, Verdict};
    use crate::replay::aggregate::{Aggregate, Bounds, Origin};
    use crate::replay::window::{WindowLen, WindowStart};
    use crate::report::model::{ConfigOut, GateSettings, Inputs, PolicyRef, Report, ReportContext};

    /// Gate 50 %, drift-max 0.1 (rollback 0.2), min-requests 2, 1-minute windows:
    /// - window 0: 4 requests, drift at buckets 500 and 7000 (enforced from 6 % / 71 %);
    /// - window 1: 1 request, drift at bucket 9000 (from 91 %; too few to breach);
    /// - window 2: 10 requests, drift at buckets 250 and 3000 (from 3 % / 31 %).
    pub fn report() -> Report {
        let pct = |p| RolloutPercent::new(p).unwrap();
        let g = GateSettings {
            rollout: pct(50),
            drift_max: 0.1,
            levels: vec![pct(0), pct(10), pct(50), pct(100)],
            min_requests: 2,
            rollback_factor: 2.0,
            max_rejects: 0,
            window: WindowLen::from_ms(60_000).unwrap(),
            confidence: None,
            plan: None,
            max_eval_error_ratio: None,
            max_unfaithful_ratio: 0.001,
        };
        let b = Bounds {
            examples: 10,
            rejections: 10,
            drift_details: false,
        };
        let mut agg = Aggregate::new(b);
        let mut line = 0;
        let windows: [(i64, usize, &[u16]); 3] = [
            (0, 4, &[500, 7000]),
            (60_000, 1, &[9000]),
            (120_000, 10, &[250, 3000]),
        ];
        for (w, n, drifting) in windows {
            for k in 0..n {
                line += 1;
                let bucket = drifting.get(k).copied().unwrap_or(100 * k as u16 + 1);
                let drift = k < drifting.len();
                let enforced = if drift { Verdict::Fail } else { Verdict::Ok };
                let origin = Origin { file: 0, line };
                let id = format!("r{line}");
                agg.add(
                    origin,
                    WindowStart(w),
                    bucket,
                    &Decision {
                        ts_ms: w + k as i64,
                        request_id: &id,
                        key: BucketKey::RequestId,
                        shadow: Verdict::Ok,
                        enforced,
                        recorded: None,
                        drift: drift.then_some((DriftKind::OkToFail, "rule<a>")),
                        changed: false,
                        errors: &[],
                        latency_ns: 1000,
                    },
                );
            }
        }
        agg.finish();
        let policy = PolicyRef {
            policy_id: "p|<x>".into(),
            ir_hash: "sha3-256:00".into(),
            path: "p.ir.json".into(),
            selector: "basic",
            weights: None,
            budget: None,
        };
        let config = ConfigOut {
            window: "1m".into(),
            rollout: g.rollout,
            drift_max: g.drift_max,
            levels: g.levels.clone(),
            min_requests: g.min_requests,
            rollback_factor: g.rollback_factor,
            max_rejects: g.max_rejects,
            salt: "s".into(),
            redact_ids: false,
            redact_key_set: false,
            scenario: None,
            max_eval_error_ratio: None,
        };
        Report::build(
            &agg,
            ReportContext {
                gate: &g,
                inputs: Inputs {
                    files: vec![],
                    baseline: policy.clone(),
                    candidate: policy,
                    lists: vec![],
                },
                config,
                show_id: &|id: &str| id.to_string(),
                warnings: Vec::new(),
                rule_ids: Default::default(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_sentence_says_when_no_window_is_large_enough() {
        // At 0.95 (z² ≈ 2.7055) 0 drifting of n passes drift max 0.1 from n = 25 on
        // (2.7055 / 27.7055 ≈ 0.0977; n = 24 gives 0.1013): the sample's windows of
        // 4, 1 and 10 requests are all too small.
        let mut r = sample::report();
        assert_eq!(pass_sentence(&r), None, "confidence off: no sentence");
        r.settings.confidence = crate::replay::gate::Confidence::new(0.95);
        r.gate.confidence = Some(0.95);
        let n = pass_needs(&r).unwrap();
        assert_eq!(n.requests, Some(25));
        assert_eq!((n.windows_large_enough, n.largest_window), (0, 10));
        assert!(
            pass_sentence(&r).unwrap().starts_with(
                "Windows need ≥ 25 requests to show drift ≤ 10.0 % at confidence 0.95; the largest window \
                 here has 10, so no window can pass"
            ),
            "{:?}",
            pass_sentence(&r)
        );
    }

    #[test]
    fn paths_are_shown_normalised() {
        assert_eq!(shown_path("scenarios/../logs/a.jsonl"), "logs/a.jsonl");
        assert_eq!(shown_path("./a/./b/../c"), "a/c");
        assert_eq!(shown_path("../x/../../y"), "../../y");
        assert_eq!(shown_path("/a/../../b"), "/b");
        assert_eq!(shown_path("a/.."), ".");
        assert_eq!(shown_source("s/../t.jsonl:41"), "t.jsonl:41");
    }

    #[test]
    fn whatif_curve_steps_where_buckets_enter() {
        let r = sample::report();
        let c = whatif_curve(&r, Windows::All);
        assert_eq!(c.len(), 101);
        let want = |p: usize| match p {
            0..=2 => 0.0,
            3..=5 => 0.1,
            6..=70 => 0.25,
            71..=90 => 0.5,
            _ => 1.0,
        };
        for (p, v) in c.iter().enumerate() {
            assert_eq!(*v, want(p), "at {p} %");
        }
        for l in &r.levels {
            assert_eq!(c[usize::from(l.rollout_percent.get())], l.max_window_ratio);
        }
        assert_eq!(r.gate.max_safe_rollout_percent, 5);
    }

    #[test]
    fn counted_curve_agrees_with_the_gate() {
        // Window 1 (1 request, drift from 91 %) is too small to count: the counted
        // curve stays at window 0's 2 of 4 from 71 % on, where the all-windows curve
        // jumps to 1 of 1.
        let r = sample::report();
        let c = whatif_curve(&r, Windows::Counted);
        assert_eq!((c[70], c[71], c[91], c[100]), (0.25, 0.5, 0.5, 0.5));
        // Above drift max exactly right of the max safe rollout, as the gate sees it.
        let safe = usize::from(r.gate.max_safe_rollout_percent);
        for (p, v) in c.iter().enumerate() {
            assert_eq!(*v > r.settings.drift_max, p > safe, "at {p} %");
        }
        for (li, l) in r.levels.iter().enumerate() {
            let m = max_counted_ratio(&r, li).unwrap();
            assert_eq!(c[usize::from(l.rollout_percent.get())], m);
            assert_eq!(m > r.settings.drift_max, l.breached_windows > 0);
            assert!(m <= l.max_window_ratio);
        }
        // At 100 %: 1.0 over all windows, 0.5 over the counted ones.
        assert_eq!(
            (r.levels[3].max_window_ratio, max_counted_ratio(&r, 3)),
            (1.0, Some(0.5))
        );
    }

    #[test]
    fn window_status_and_worst_windows_at_the_gate() {
        let r = sample::report();
        let st: Vec<WindowStatus> = r
            .windows
            .iter()
            .map(|w| {
                let d = at_gate(&r, w).unwrap();
                status(&r, d.events, w.requests)
            })
            .collect();
        // 1/4 > 0.2 rollback; 1 request < min 2; 2/10 = 0.2 is not above 2 × 0.1.
        assert_eq!(
            st,
            [
                WindowStatus::Rollback,
                WindowStatus::TooFew,
                WindowStatus::Breach
            ]
        );
        let starts = |v: &[(&Window, &WindowLevel)]| -> Vec<(String, f64)> {
            v.iter().map(|(w, d)| (w.start.clone(), d.ratio)).collect()
        };
        let worst = worst_windows(&r, 10, 10);
        assert_eq!(
            starts(&worst.counted),
            [
                ("1970-01-01T00:00:00Z".to_string(), 0.25),
                ("1970-01-01T00:02:00Z".to_string(), 0.2)
            ]
        );
        // Window 1 has no drift at 50 % (its drifting record enters at 91 %).
        assert!(worst.too_few.is_empty());
        assert_eq!(worst_windows(&r, 1, 0).counted.len(), 1);
        assert_eq!(enforced_from(0), 1);
        assert_eq!(enforced_from(2394), 24);
        assert_eq!(enforced_from(9999), 100);
    }

    #[test]
    fn windows_that_count_rank_before_windows_with_too_few_requests() {
        // At 100 %, window 1 (1 of 1 request) has the highest ratio but cannot breach.
        let mut r = sample::report();
        r.gate.rollout_percent = r.levels[3].rollout_percent;
        let worst = worst_windows(&r, 10, 10);
        let got: Vec<(&str, u64)> = worst
            .counted
            .iter()
            .map(|(w, d)| (w.start.as_str(), d.events))
            .collect();
        assert_eq!(
            got,
            [("1970-01-01T00:00:00Z", 2), ("1970-01-01T00:02:00Z", 2)]
        );
        let few: Vec<&str> = worst
            .too_few
            .iter()
            .map(|(w, _)| w.start.as_str())
            .collect();
        assert_eq!(few, ["1970-01-01T00:01:00Z"]);
        assert!(worst_windows(&r, 10, 0).too_few.is_empty());
    }
}
