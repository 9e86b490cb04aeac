//! `proof diff --format text`: the diff for a terminal. Colour (red for a regression,
//! green otherwise) only when the caller says so: on a TTY and without `NO_COLOR`.

use std::fmt::Write;

use super::model::{Diff, GateSide};
use crate::report::model::pct;

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

fn pair<T: PartialEq + ToString>(b: T, n: T) -> String {
    if b == n {
        b.to_string()
    } else {
        format!("{} → {}", b.to_string(), n.to_string())
    }
}

fn ratio(b: f64, n: f64) -> String {
    pair(pct(b), pct(n))
}

fn side(name: &str, report: &str, policy: Option<(&str, &str)>, g: &GateSide) -> String {
    let policies = policy.map_or_else(String::new, |(b, c)| format!("{b} → {c}, "));
    format!(
        "{name}  {report}  ({policies}gate {} at {} %, max safe {} %, exit {})",
        if g.passed { "passed" } else { "FAILED" },
        g.rollout_percent,
        g.max_safe_rollout_percent,
        g.exit_code
    )
}

/// The text, coloured when `color` is true.
pub fn render(d: &Diff, color: bool) -> String {
    let paint = |code: &str, s: &str| {
        if color {
            format!("{code}{s}{RESET}")
        } else {
            s.to_string()
        }
    };
    let mut o = String::new();
    let head = format!("proof diff: {}", d.headline);
    let head = if d.regression || d.exit_code == 3 {
        paint(RED, &head)
    } else {
        paint(GREEN, &head)
    };
    let _ = writeln!(o, "{}", if color { format!("{BOLD}{head}") } else { head });
    for t in &d.tripped {
        let _ = writeln!(
            o,
            "  {}",
            paint(RED, &format!("{}: {}", t.limit, t.message))
        );
    }
    let policy = |s: &super::model::SideInfo| match (&s.baseline, &s.candidate) {
        (Some(b), Some(c)) => Some((b.policy_id.clone(), c.policy_id.clone())),
        _ => None,
    };
    let (pb, pn) = (policy(&d.base), policy(&d.new));
    let g = &d.gate.sides;
    let _ = writeln!(
        o,
        "{}",
        side(
            "BASE",
            &d.base.report,
            pb.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
            &g.base
        )
    );
    let _ = writeln!(
        o,
        "{}",
        side(
            "NEW ",
            &d.new.report,
            pn.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
            &g.new
        )
    );
    if g.base.proven_safe_rollout_percent.is_some() || g.new.proven_safe_rollout_percent.is_some() {
        let _ = writeln!(
            o,
            "proven safe rollout: {}",
            pair(
                super::model::level_words(g.base.proven_safe_rollout_percent),
                super::model::level_words(g.new.proven_safe_rollout_percent)
            )
        );
    }
    if let Some(p) = &d.plan {
        let w = |p: Option<super::model::PlanSide>| match p {
            None => "none".to_string(),
            Some(p) => format!(
                "{} ({} of {} runs rolled back)",
                if p.passed { "passed" } else { "FAILED" },
                p.rolled_back,
                p.runs
            ),
        };
        let _ = writeln!(o, "plan: {}", pair(w(p.base), w(p.new)));
    }
    if let Some(f) = &d.fidelity {
        let w = |s: &Option<super::model::FidelitySide>| match s {
            None => "not checked".to_string(),
            Some(f) => format!(
                "{} of {} reproduced, {} unfaithful ({})",
                f.faithful,
                f.checked,
                f.unfaithful,
                pct(f.unfaithful_ratio)
            ),
        };
        let _ = writeln!(o, "fidelity: {}", pair(w(&f.sides.base), w(&f.sides.new)));
        let mut kinds: Vec<&String> = Vec::new();
        for s in [&f.sides.base, &f.sides.new].into_iter().flatten() {
            kinds.extend(s.by_kind.keys());
        }
        kinds.sort();
        kinds.dedup();
        let n = |s: &Option<super::model::FidelitySide>, k: &str| {
            s.as_ref()
                .map_or(0, |s| s.by_kind.get(k).copied().unwrap_or(0))
        };
        let kinds: Vec<String> = kinds
            .iter()
            .map(|k| format!("{k} {}", pair(n(&f.sides.base, k), n(&f.sides.new, k))))
            .collect();
        if !kinds.is_empty() {
            let _ = writeln!(o, "unfaithful (recorded->replayed): {}", kinds.join(", "));
        }
    }
    let _ = writeln!(
        o,
        "\n{:>7}  {:<14}  {:<18}  {:<18}  {:<10}  rollback",
        "level", "drift events", "drift ratio", "worst window", "breached"
    );
    for l in &d.levels {
        let (b, n) = (&l.sides.base, &l.sides.new);
        let level = format!("{} %{}", l.rollout_percent, if l.gate { "*" } else { " " });
        let _ = writeln!(
            o,
            "{:>7}  {:<14}  {:<18}  {:<18}  {:<10}  {}",
            level,
            pair(b.drift_events, n.drift_events),
            ratio(b.drift_ratio, n.drift_ratio),
            ratio(b.max_window_ratio, n.max_window_ratio),
            pair(b.breached_windows, n.breached_windows),
            pair(b.rollback_windows, n.rollback_windows)
        );
    }
    let _ = writeln!(o, "(* gate level)");
    let moved: Vec<_> = d
        .drift_by_cause
        .iter()
        .filter(|c| c.status.moved())
        .collect();
    let _ = writeln!(
        o,
        "\ncauses that moved (as at 100 %; {}, α = {}):",
        d.cause_test.method, d.cause_test.alpha
    );
    if moved.is_empty() {
        let _ = writeln!(o, "  none beyond the noise of their counts");
    }
    for c in moved {
        let _ = writeln!(
            o,
            "  {}: {} ({}, z = {}, {})",
            c.cause,
            pair(c.base_events, c.new_events),
            c.status.as_str(),
            c.z.map_or_else(|| "n/a".to_string(), |z| format!("{z:.2}")),
            if c.significant {
                "significant"
            } else {
                "within noise"
            }
        );
    }
    let kinds: Vec<String> = d
        .drift_by_kind
        .iter()
        .filter(|k| k.base > 0 || k.new > 0)
        .map(|k| format!("{} {}", k.kind, pair(k.base, k.new)))
        .collect();
    if !kinds.is_empty() {
        let _ = writeln!(o, "drift kinds: {}", kinds.join(", "));
    }
    let v = |c: &super::input::VerdictCounts| format!("{}/{}/{}", c.ok, c.warn, c.fail);
    let _ = writeln!(
        o,
        "verdicts ok/warn/fail: shadow {}; enforced {}",
        pair(v(&d.verdicts.shadow.base), v(&d.verdicts.shadow.new)),
        pair(v(&d.verdicts.enforced.base), v(&d.verdicts.enforced.new))
    );
    let r = &d.inputs.records;
    let _ = writeln!(
        o,
        "inputs: {}; records read {}, evaluated {}, rejected {}, skipped {}",
        if d.inputs.differ { "DIFFER" } else { "same" },
        pair(r.base.read, r.new.read),
        pair(r.base.evaluated, r.new.evaluated),
        pair(r.base.rejected, r.new.rejected),
        pair(r.base.skipped, r.new.skipped)
    );
    for s in &d.settings {
        let _ = writeln!(o, "setting {}: {} → {}", s.field, s.base, s.new);
    }
    o
}
