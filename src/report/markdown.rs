//! `report.md`: a GitHub-flavoured Markdown summary for pull requests and CI job
//! summaries (`$GITHUB_STEP_SUMMARY`): the headline (the plan's verdict first, with
//! `--plan`), warnings, the rollout plan, the gate's figures, the levels
//! table, the top causes, drift kinds, the worst windows and rejections. Every text
//! that comes from inputs (ids, paths) is escaped; no wall-clock figures, so the
//! file is identical across runs.

use std::fmt::Write;

use super::Exporter;
use super::model::{self, Report, Window, WindowLevel, pct, ratio};
use super::view::{self, WindowStatus};

/// Writes report.md.
pub struct MarkdownExporter;

/// Rows in the causes and worst-windows tables.
const TOP: usize = 10;
/// Rows in the list of windows with too few requests to count.
const TOO_FEW: usize = 3;

/// Escapes text for a Markdown table cell: HTML specials as entities, Markdown
/// punctuation with a backslash, line breaks as spaces.
pub fn text(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' | '!' | '(' | ')' => {
                o.push('\\');
                o.push(c);
            }
            '\n' | '\r' | '\t' => o.push(' '),
            c if c.is_control() => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

/// An identifier as a code span (pipes escaped for tables); text with backticks,
/// line breaks or controls falls back to escaped text.
pub fn code(s: &str) -> String {
    if s.is_empty() || s.chars().any(|c| c == '`' || c.is_control()) {
        return text(s);
    }
    format!("`{}`", s.replace('|', "\\|"))
}

fn status_cell(s: WindowStatus) -> &'static str {
    match s {
        WindowStatus::Ok => "✅ ok",
        WindowStatus::Breach => "❌ breach",
        WindowStatus::Rollback => "❌ rollback",
        WindowStatus::TooFew => "➖ too few requests",
    }
}

impl Exporter for MarkdownExporter {
    fn file_name(&self) -> &'static str {
        "report.md"
    }

    fn serialize(&self, r: &Report) -> Result<Vec<u8>, crate::error::ProofError> {
        Ok(render(r).into_bytes())
    }
}

/// Windows at the gate level with their figures and status.
fn window_table(o: &mut String, r: &Report, rows: &[(&Window, &WindowLevel)]) {
    let _ = writeln!(
        o,
        "| Window (UTC) | Requests | Drift events | Drift ratio | |\n|---|--:|--:|--:|---|"
    );
    for (w, dl) in rows {
        let _ = writeln!(
            o,
            "| {} – {} | {} | {} | {} | {} |",
            text(&w.start),
            text(&w.end),
            w.requests,
            dl.events,
            pct(dl.ratio),
            status_cell(view::status(r, dl.events, w.requests))
        );
    }
    o.push('\n');
}

/// "### Rollout plan": the verdict, the steps with their rollbacks, the outcome
/// counts and the worst start (SPEC §9). Nothing without `--plan`.
fn plan_section(o: &mut String, r: &Report) {
    let Some(p) = &r.plan else { return };
    let s = &p.summary;
    let _ = writeln!(
        o,
        "### Rollout plan\n\n**{}**\n",
        text(&model::plan_words(r).unwrap_or_default())
    );
    let _ = writeln!(
        o,
        "Failure limit {} breached window(s); start {}.\n\n| Step | Rollout | Duration | Runs rolled back here |\n|--:|--:|---|--:|",
        p.failure_limit,
        code(&p.start)
    );
    for (i, st) in p.steps.iter().enumerate() {
        let dur = st
            .duration_seconds
            .as_ref()
            .and_then(serde_json::Number::as_f64)
            .map_or_else(
                || "until the end of the traffic".to_string(),
                |sec| crate::policy::time::format_span((sec * 1000.0).round() as i64),
            );
        let _ = writeln!(
            o,
            "| {} | {} % | {dur} | {} |",
            i + 1,
            st.rollout_percent,
            s.rolled_back_by_step.get(i).copied().unwrap_or(0)
        );
    }
    let _ = writeln!(
        o,
        "\n| Runs | Promoted | Rolled back | Incomplete | Drift events per run (median / max) |\n|--:|--:|--:|--:|--:|\n| {} | {} | {} | {} | {} / {} |\n",
        s.runs,
        s.promoted,
        s.rolled_back,
        s.incomplete,
        s.impact_events_median,
        s.impact_events_max
    );
    if let Some(w) = view::worst_run(r).filter(|w| w.impact.events > 0) {
        let how = match (w.outcome, w.step, w.rollout_percent, w.at.as_deref()) {
            ("rolled_back", Some(st), Some(l), Some(at)) => {
                format!("rolled back at step {st} ({l} %) at {}", text(at))
            }
            ("promoted", _, _, Some(at)) => format!("promoted at {}", text(at)),
            _ => "still running when the traffic ended".into(),
        };
        let _ = writeln!(
            o,
            "Worst start: {} — {how}, after {} drifting decisions of {} requests ({} new denials, {} missed denials).\n",
            text(&w.start),
            w.impact.events,
            w.impact.requests,
            w.impact.new_denials,
            w.impact.missed_denials
        );
    }
}

/// "### Fidelity" (SPEC §11): how much of production the replayed baseline reproduced,
/// first, because every drift figure rests on it.
fn fidelity_section(o: &mut String, r: &Report) {
    let Some(f) = &r.fidelity else { return };
    let share = ratio(f.faithful, f.checked);
    let _ = writeln!(
        o,
        "### Fidelity

The replayed baseline reproduced **{} of {}** production verdicts ({}).
",
        f.faithful,
        f.checked,
        pct(share)
    );
    if f.unfaithful > 0 {
        let _ = writeln!(o, "| Recorded → replayed | Records |\n|---|--:|");
        for (k, n) in &f.by_kind {
            let _ = writeln!(o, "| {} | {n} |", text(k));
        }
        let _ = writeln!(o);
        for u in r.unfaithful_examples.iter().take(5) {
            let _ = writeln!(
                o,
                "- `{}` at {}: production {}, replay {} ({})",
                text(&u.request_id),
                u.ts,
                u.recorded,
                u.replayed,
                text(&u.source)
            );
        }
        let _ = writeln!(o);
    }
}

/// The Markdown text.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let g = &r.gate;
    let min = r.settings.min_requests;
    // With a plan the plan decides the exit code (SPEC §9): the mark follows it.
    let mark = match g.exit_code {
        3 => "⚠️",
        0 if !r.summary.warnings.is_empty() => "⚠️",
        0 => "✅",
        _ => "❌",
    };
    let _ = writeln!(o, "## {mark} proof replay: {}\n", text(&r.summary.headline));
    if g.failure.any() {
        if g.failure.nothing_evaluated {
            let _ = writeln!(
                o,
                "> **Exit code 3:** the run fails whatever the gate says. Check the log files, \
                 the policy id and the rejected records.\n"
            );
        } else if g.failure.too_many_rejects {
            let _ = writeln!(
                o,
                "> **Exit code 3:** the run fails whatever the gate says; see Rejected records below.\n"
            );
        } else if g.failure.unfaithful {
            let _ = writeln!(
                o,
                "> **Exit code 3:** the run fails whatever the gate says; the replay does not reproduce production, see Fidelity below.\n"
            );
        } else {
            let _ = writeln!(
                o,
                "> **Exit code 3:** the run fails whatever the gate says; see the warnings and Evaluation errors below.\n"
            );
        }
    }
    for w in &r.summary.warnings {
        let _ = writeln!(o, "> ⚠️ **Warning:** {}\n", text(w));
    }
    fidelity_section(&mut o, r);
    plan_section(&mut o, r);

    // The numbers behind the headline.
    let gate_level = view::gate_pos(r).and_then(|i| r.levels.get(i));
    let _ = writeln!(o, "| Gate | |\n|---|---|");
    let _ = writeln!(o, "| Rollout level | {} % |", g.rollout_percent);
    let _ = writeln!(
        o,
        "| Drift max | {} (rollback line {} = {} × drift max) |",
        pct(g.drift_max),
        pct(view::rollback_line(r)),
        r.settings.rollback_factor
    );
    let _ = writeln!(
        o,
        "| Windows breached at {} % | {} of {} ({} windows, at least {} request(s) to breach) |",
        g.rollout_percent,
        g.breached_windows.len(),
        r.windows.len(),
        text(&r.settings.window.to_string()),
        r.settings.min_requests
    );
    if let Some(w) = &r.summary.worst_window {
        let _ = writeln!(
            o,
            "| Worst {}window at {} % | {} ({} of {} requests) from {}{} |",
            if min > 1 { "counted " } else { "" },
            g.rollout_percent,
            pct(w.ratio),
            w.events,
            w.requests,
            text(&w.start),
            if min > 1 {
                format!("; windows with at least {min} requests")
            } else {
                String::new()
            }
        );
    }
    if let Some(l) = gate_level {
        let _ = writeln!(
            o,
            "| Drift events at {} % | {} ({} of evaluated records) |",
            g.rollout_percent,
            l.drift_events,
            pct(l.drift_ratio)
        );
    }
    let _ = writeln!(
        o,
        "| Max safe rollout | **{} %** |",
        g.max_safe_rollout_percent
    );
    let rec = &r.records;
    let _ = writeln!(
        o,
        "| Records | {} read: {} evaluated, {} rejected (max {}), {} skipped |",
        rec.read, rec.evaluated, rec.rejected, r.settings.max_rejects, rec.skipped
    );
    for (role, p) in [
        ("Baseline (shadow)", &r.inputs.baseline),
        ("Candidate (enforced)", &r.inputs.candidate),
    ] {
        let _ = writeln!(
            o,
            "| {role} | {} · {} · {} |",
            code(&p.policy_id),
            p.selector,
            code(&p.ir_hash)
        );
    }
    if let Some(c) = g.confidence {
        let _ = writeln!(
            o,
            "| Proven safe at confidence {c} | {} |",
            g.proven_safe_rollout_percent
                .map_or_else(|| "none".to_string(), |p| format!("**{p} %**"))
        );
    }
    let _ = writeln!(o, "| Exit code | {} |\n", g.exit_code);
    if let Some(sentence) = view::pass_sentence(r) {
        let _ = writeln!(o, "{}\n", text(&sentence));
    }

    let _ = writeln!(o, "### Rollout levels\n");
    if min > 1 {
        let _ = writeln!(
            o,
            "| Rollout | Drift events | Drift ratio | Worst window (all) | Worst counted window | Breached windows | Rollback windows | |\n\
             |--:|--:|--:|--:|--:|--:|--:|---|"
        );
    } else {
        let _ = writeln!(
            o,
            "| Rollout | Drift events | Drift ratio | Worst window | Breached windows | Rollback windows | |\n\
             |--:|--:|--:|--:|--:|--:|---|"
        );
    }
    for (li, l) in r.levels.iter().enumerate() {
        let name = if l.rollout_percent == g.rollout_percent {
            format!("**{} %** (gate)", l.rollout_percent)
        } else {
            format!("{} %", l.rollout_percent)
        };
        let verdict = if l.breached_windows == 0 {
            "✅ safe"
        } else {
            "❌ breached"
        };
        let counted = if min > 1 {
            let c = view::max_counted_ratio(r, li).map_or_else(|| "–".to_string(), pct);
            format!(" {c} |")
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "| {name} | {} | {} | {} |{counted} {} | {} | {verdict} |",
            l.drift_events,
            pct(l.drift_ratio),
            pct(l.max_window_ratio),
            l.breached_windows,
            l.rollback_windows
        );
    }
    o.push('\n');
    if min > 1 {
        let _ = writeln!(
            o,
            "Worst window (all): any window, as `levels[].max_window_ratio` in report.json. \
             Worst counted window: windows with at least {min} requests, the only ones that can breach.\n"
        );
    }

    let d = &r.drift;
    let _ = writeln!(
        o,
        "### Top causes (as at 100 %)\n\n{} drifting of {} evaluated records ({}).\n",
        d.events,
        rec.evaluated,
        pct(d.ratio)
    );
    if d.by_cause.is_empty() {
        let _ = writeln!(o, "No drift.\n");
    } else {
        let _ = writeln!(
            o,
            "| Cause | Drift events | Share of drift |\n|---|--:|--:|"
        );
        for c in d.by_cause.iter().take(TOP) {
            let _ = writeln!(
                o,
                "| {} | {} | {} |",
                code(&c.cause),
                c.events,
                pct(ratio(c.events, d.events))
            );
        }
        if d.by_cause.len() > TOP {
            let _ = writeln!(
                o,
                "\n{} more causes in report.json.",
                d.by_cause.len() - TOP
            );
        }
        let _ = writeln!(o, "\n| Kind | Drift events |\n|---|--:|");
        for (k, n) in &d.by_kind {
            let _ = writeln!(o, "| {} | {n} |", code(k));
        }
        o.push('\n');
    }

    let worst = view::worst_windows(r, TOP, TOO_FEW);
    let _ = writeln!(o, "### Worst windows at {} %\n", g.rollout_percent);
    if worst.counted.is_empty() && worst.too_few.is_empty() {
        let _ = writeln!(o, "No drift at the gate level.\n");
    } else if worst.counted.is_empty() {
        let _ = writeln!(
            o,
            "No window with at least {min} requests has drift at the gate level.\n"
        );
    } else {
        if min > 1 {
            let _ = writeln!(
                o,
                "Windows with at least {min} requests (the ones that count for the gate), worst first.\n"
            );
        }
        window_table(&mut o, r, &worst.counted);
    }
    if !worst.too_few.is_empty() {
        let _ = writeln!(
            o,
            "Windows with fewer than {min} requests never breach; the highest ratios among them:\n"
        );
        window_table(&mut o, r, &worst.too_few);
    }

    if !r.evaluation_errors.is_empty() {
        let _ = writeln!(
            o,
            "### Evaluation errors\n\n| Path | Rule | Reason | Records | Share of evaluated |\n|---|---|---|--:|--:|"
        );
        for e in &r.evaluation_errors {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                e.path,
                code(&e.rule),
                code(e.reason),
                e.records,
                pct(e.ratio)
            );
        }
        o.push('\n');
    }

    if rec.rejected > 0 {
        let _ = writeln!(
            o,
            "### Rejected records\n\n| Reason | Records | First at |\n|---|--:|---|"
        );
        for (reason, n) in &rec.rejected_by_reason {
            let first = r
                .rejections
                .iter()
                .find(|x| x.reason == *reason)
                .map_or_else(String::new, |x| {
                    text(&format!("{}:{}", view::shown_path(&x.file), x.line))
                });
            let _ = writeln!(o, "| {} | {n} | {first} |", code(reason));
        }
        o.push('\n');
    }
    let _ = writeln!(
        o,
        "<sub>proof replay · {} · full figures in report.json, charts in report.html</sub>",
        r.schema
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markdown_and_html() {
        assert_eq!(text("a|b<i>*x*_y_"), "a\\|b&lt;i&gt;\\*x\\*\\_y\\_");
        assert_eq!(text("l1\nl2 [x](y)"), "l1 l2 \\[x\\]\\(y\\)");
        assert_eq!(code("audit_score"), "`audit_score`");
        assert_eq!(code("a|b"), "`a\\|b`");
        assert_eq!(code("a`b"), "a\\`b");
        assert_eq!(code(""), "");
    }
}
