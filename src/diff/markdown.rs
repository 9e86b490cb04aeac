//! `proof diff --format markdown`: a pull-request comment (and the job summary): the
//! headline, the limits that tripped, the gate figures (and replay fidelity, SPEC §11)
//! and levels before → after with
//! arrows, the causes that moved, drift kinds, verdict mix, inputs, and links to both
//! HTML reports. Text from the reports (ids, paths, URLs) is escaped.

use std::fmt::Write;

use super::model::{CauseDiff, Diff, FidelitySide, GateSide, Pair, PlanSide, level_words};
use crate::report::markdown::{code, text};
use crate::report::model::pct;

/// Causes listed under "Causes that moved".
const TOP_CAUSES: usize = 5;

/// `b` if equal, else `b → n ↑` / `b → n ↓` (the arrow follows `nb`/`nn`).
fn moved(b: String, n: String, nb: f64, nn: f64) -> String {
    if nb == nn && b == n {
        b
    } else if nn > nb {
        format!("{b} → {n} ↑")
    } else if nn < nb {
        format!("{b} → {n} ↓")
    } else {
        format!("{b} → {n}")
    }
}

/// " ↑" / " ↓" after NEW's value when it differs from BASE's.
fn arrow(b: f64, n: f64) -> &'static str {
    if n > b {
        " ↑"
    } else if n < b {
        " ↓"
    } else {
        ""
    }
}

fn count(b: u64, n: u64) -> String {
    moved(b.to_string(), n.to_string(), b as f64, n as f64)
}

fn ratio(b: f64, n: f64) -> String {
    moved(pct(b), pct(n), b, n)
}

fn gate_words(g: &GateSide) -> String {
    format!(
        "{} at {} %",
        if g.passed { "passed" } else { "FAILED" },
        g.rollout_percent
    )
}

fn plan_words(p: Option<PlanSide>) -> String {
    match p {
        None => "–".into(),
        Some(p) => format!(
            "{}: {} of {} runs promoted, {} rolled back, {} incomplete",
            if p.passed { "passed" } else { "FAILED" },
            p.promoted,
            p.runs,
            p.rolled_back,
            p.incomplete
        ),
    }
}

/// A URL as a Markdown link destination: characters that could end the link or add
/// markup are percent-encoded.
fn link(label: &str, url: &str) -> String {
    let mut dest = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            '(' | ')' | '<' | '>' | ' ' | '"' | '\'' | '\\' | '`' | '|' | '[' | ']' => {
                let _ = write!(dest, "%{:02X}", c as u32);
            }
            c if c.is_control() => {}
            c => dest.push(c),
        }
    }
    format!("[{label}]({dest})")
}

fn policy_cell(p: &Option<super::input::PolicyRef>) -> String {
    match p {
        Some(p) if p.selector.is_empty() => code(&p.policy_id),
        Some(p) => format!("{} · {}", code(&p.policy_id), text(&p.selector)),
        None => "–".into(),
    }
}

fn cause_row(o: &mut String, c: &CauseDiff) {
    let side = |events: u64, share: f64| {
        if events == 0 {
            "0".to_string()
        } else {
            format!("{events} ({})", pct(share))
        }
    };
    let noise = if c.significant {
        "significant"
    } else {
        "within noise"
    };
    let _ = writeln!(
        o,
        "| {} | {} | {} | {} ({noise}) | {} |",
        code(&c.cause),
        side(c.base_events, c.base_share),
        side(c.new_events, c.new_share),
        c.status.as_str(),
        c.z.map_or_else(|| "–".to_string(), |z| format!("{z:.2}"))
    );
}

/// The Markdown text.
pub fn render(d: &Diff) -> String {
    let mut o = String::new();
    let mark = if d.exit_code == 3 {
        "⚠️"
    } else if d.regression {
        "❌"
    } else {
        "✅"
    };
    let _ = writeln!(o, "## {mark} proof diff: {}\n", text(&d.headline));
    for t in &d.tripped {
        let _ = writeln!(o, "- **{}**: {}", text(&t.limit), text(&t.message));
    }
    if !d.tripped.is_empty() {
        o.push('\n');
    }
    if d.exit_code == 3 {
        let _ = writeln!(
            o,
            "> **Exit code 3:** NEW's replay failed on its records (see its report); the diff \
             fails whatever the limits say.\n"
        );
    }

    let g = &d.gate.sides;
    let _ = writeln!(o, "| | BASE | NEW |\n|---|---|---|");
    let _ = writeln!(
        o,
        "| Candidate (enforced) | {} | {} |",
        policy_cell(&d.base.candidate),
        policy_cell(&d.new.candidate)
    );
    let _ = writeln!(
        o,
        "| Baseline (shadow) | {} | {} |",
        policy_cell(&d.base.baseline),
        policy_cell(&d.new.baseline)
    );
    let _ = writeln!(
        o,
        "| Gate | {} | {} |",
        gate_words(&g.base),
        gate_words(&g.new)
    );
    let (bs, ns) = (
        g.base.max_safe_rollout_percent,
        g.new.max_safe_rollout_percent,
    );
    let _ = writeln!(
        o,
        "| Max safe rollout | {bs} % | {ns} %{} |",
        arrow(bs.into(), ns.into())
    );
    if g.base.confidence.is_some()
        || g.new.confidence.is_some()
        || g.base.proven_safe_rollout_percent.is_some()
        || g.new.proven_safe_rollout_percent.is_some()
    {
        let conf = |c: Option<f64>| c.map_or_else(|| "off".to_string(), |c| c.to_string());
        let _ = writeln!(
            o,
            "| Proven safe rollout (confidence) | {} ({}) | {} ({}) |",
            level_words(g.base.proven_safe_rollout_percent),
            conf(g.base.confidence),
            level_words(g.new.proven_safe_rollout_percent),
            conf(g.new.confidence)
        );
    }
    if let Some(p) = &d.plan {
        let _ = writeln!(
            o,
            "| Plan | {} | {} |",
            plan_words(p.base),
            plan_words(p.new)
        );
    }
    if let Some(f) = &d.fidelity {
        let (b, n) = (&f.sides.base, &f.sides.new);
        let share = |s: &Option<FidelitySide>| s.as_ref().map(|f| 1.0 - f.unfaithful_ratio);
        let reproduced = |s: &Option<FidelitySide>| match s {
            None => "not checked".to_string(),
            Some(f) => format!(
                "{} of {} ({})",
                f.faithful,
                f.checked,
                pct(1.0 - f.unfaithful_ratio)
            ),
        };
        let unfaithful = |s: &Option<FidelitySide>| match s {
            None => "–".to_string(),
            Some(f) if f.by_kind.is_empty() => f.unfaithful.to_string(),
            Some(f) => format!(
                "{} ({}): {}",
                f.unfaithful,
                pct(f.unfaithful_ratio),
                f.by_kind
                    .iter()
                    .map(|(k, n)| format!("{} {n}", code(k)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let up = match (share(b), share(n)) {
            (Some(x), Some(y)) => arrow(x, y),
            _ => "",
        };
        let _ = writeln!(
            o,
            "| Replay reproduced production | {} | {}{up} |",
            reproduced(b),
            reproduced(n)
        );
        let up = match (b, n) {
            (Some(x), Some(y)) => arrow(x.unfaithful_ratio, y.unfaithful_ratio),
            _ => "",
        };
        let _ = writeln!(
            o,
            "| Unfaithful (recorded → replayed) | {} | {}{up} |",
            unfaithful(b),
            unfaithful(n)
        );
    }
    let _ = writeln!(
        o,
        "| Replay exit code | {} | {} |",
        g.base.exit_code, g.new.exit_code
    );
    if d.base.url.is_some() || d.new.url.is_some() {
        let cell = |u: &Option<String>| {
            u.as_deref()
                .map_or_else(|| "–".to_string(), |u| link("report.html", u))
        };
        let _ = writeln!(
            o,
            "| Report | {} | {} |",
            cell(&d.base.url),
            cell(&d.new.url)
        );
    }
    o.push('\n');

    // Levels, before → after.
    let passed = d
        .levels
        .iter()
        .any(|l| l.sides.base.passed_windows.is_some() && l.sides.new.passed_windows.is_some());
    let _ = write!(
        o,
        "### Levels\n\n| Level | Drift events | Drift ratio | Worst window | Breached windows | \
         Rollback windows |"
    );
    if passed {
        o.push_str(" Passed windows |");
    }
    o.push_str("\n|--:|--:|--:|--:|--:|--:|");
    if passed {
        o.push_str("--:|");
    }
    o.push('\n');
    for l in &d.levels {
        let (b, n) = (&l.sides.base, &l.sides.new);
        let level = if l.gate {
            format!("**{} %** (gate)", l.rollout_percent)
        } else {
            format!("{} %", l.rollout_percent)
        };
        let _ = write!(
            o,
            "| {level} | {} | {} | {} | {} | {} |",
            count(b.drift_events, n.drift_events),
            ratio(b.drift_ratio, n.drift_ratio),
            ratio(b.max_window_ratio, n.max_window_ratio),
            count(b.breached_windows, n.breached_windows),
            count(b.rollback_windows, n.rollback_windows),
        );
        if passed {
            let _ = write!(
                o,
                " {} |",
                count(b.passed_windows.unwrap_or(0), n.passed_windows.unwrap_or(0))
            );
        }
        o.push('\n');
    }
    o.push('\n');

    // Causes.
    let _ = writeln!(
        o,
        "### Causes that moved\n\nAs at 100 %; a change counts when a {} at α = {} says so \
         (|z| ≥ {:.2}); causes that appear or disappear are listed whatever the test says.\n",
        d.cause_test.method, d.cause_test.alpha, d.cause_test.z_critical
    );
    let moved_causes: Vec<&CauseDiff> = d
        .drift_by_cause
        .iter()
        .filter(|c| c.status.moved())
        .collect();
    if moved_causes.is_empty() {
        let _ = writeln!(o, "No cause moved beyond the noise of its counts.\n");
    } else {
        let _ = writeln!(
            o,
            "| Cause | BASE | NEW | Change | z |\n|---|--:|--:|---|--:|"
        );
        for c in moved_causes.iter().take(TOP_CAUSES) {
            cause_row(&mut o, c);
        }
        if moved_causes.len() > TOP_CAUSES {
            let _ = writeln!(
                o,
                "\n{} more in `proof diff --format json`.",
                moved_causes.len() - TOP_CAUSES
            );
        }
        o.push('\n');
    }

    // Kinds and verdict mix.
    let kinds: Vec<_> = d
        .drift_by_kind
        .iter()
        .filter(|k| k.base > 0 || k.new > 0)
        .collect();
    if !kinds.is_empty() {
        let _ = writeln!(
            o,
            "### Drift kinds (as at 100 %)\n\n| Kind | Events |\n|---|--:|"
        );
        for k in kinds {
            let _ = writeln!(o, "| {} | {} |", code(k.kind), count(k.base, k.new));
        }
        o.push('\n');
    }
    let mix = |p: &Pair<super::input::VerdictCounts>| {
        let f = |v: &super::input::VerdictCounts| format!("{} / {} / {}", v.ok, v.warn, v.fail);
        if p.differs() {
            format!("{} → {}", f(&p.base), f(&p.new))
        } else {
            f(&p.base)
        }
    };
    let _ = writeln!(
        o,
        "### Verdict mix (ok / warn / fail)\n\n| Path | Verdicts |\n|---|--:|\n| Shadow | {} |\n| \
         Enforced (as at 100 %) | {} |\n",
        mix(&d.verdicts.shadow),
        mix(&d.verdicts.enforced)
    );

    // Inputs and settings.
    let i = &d.inputs;
    let _ = writeln!(o, "### Inputs\n");
    let rec = |r: &super::input::Records| {
        format!(
            "{} read, {} evaluated, {} rejected, {} skipped",
            r.read, r.evaluated, r.rejected, r.skipped
        )
    };
    let span = |s: &Option<super::model::Span>| {
        s.as_ref().map_or_else(
            || "no window".to_string(),
            |s| format!("{} – {}", text(&s.start), text(&s.end)),
        )
    };
    let files = |f: &Option<Vec<super::input::InputFile>>| match f {
        None => "not listed".to_string(),
        Some(f) => f
            .iter()
            .map(|f| match f.bytes {
                Some(b) => format!("{} ({b} bytes)", code(&f.path)),
                None => code(&f.path),
            })
            .collect::<Vec<_>>()
            .join(", "),
    };
    if i.differ {
        let _ = writeln!(
            o,
            "The inputs differ, so some of the change may come from the traffic, not the \
             policy.\n\n| | BASE | NEW |\n|---|---|---|"
        );
        let _ = writeln!(
            o,
            "| Records | {} | {} |",
            rec(&i.records.base),
            rec(&i.records.new)
        );
        let _ = writeln!(
            o,
            "| Time span | {} | {} |",
            span(&i.span.base),
            span(&i.span.new)
        );
        let _ = writeln!(
            o,
            "| Files | {} | {} |",
            files(&i.files.base),
            files(&i.files.new)
        );
        o.push('\n');
    } else {
        let _ = writeln!(
            o,
            "Same on both sides: {}; {}; {}.\n",
            rec(&i.records.new),
            span(&i.span.new),
            files(&i.files.new)
        );
    }
    let _ = writeln!(o, "Files are compared by {}.\n", i.files_compared_by);
    if !d.settings.is_empty() {
        let _ = writeln!(
            o,
            "### Settings that differ\n\n| Setting | BASE | NEW |\n|---|---|---|"
        );
        for s in &d.settings {
            let _ = writeln!(
                o,
                "| {} | {} | {} |",
                code(&s.field),
                text(&s.base.to_string()),
                text(&s.new.to_string())
            );
        }
        o.push('\n');
    }
    // One trailing newline, however the last section ended.
    let end = o.trim_end_matches('\n').len();
    o.truncate(end);
    o.push('\n');
    o
}
