//! The report's sentences for people: the headline, the plan's words and the verdict
//! paragraph, read from the built report (exit-3 reasons included: nothing is
//! compared with a limit here).

use super::schema::*;

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
    let failure = r.gate.failure;
    if failure.any() {
        if failure.too_many_rejects {
            return format!(
                "Run FAILED: {} records rejected, more than --max-rejects {}; {gate}",
                r.records.rejected, r.settings.max_rejects,
            );
        }
        if failure.eval_errors
            && let Some(e) = r.evaluation_errors.first()
        {
            return format!(
                "Run FAILED: rule {} errors ({}) on {} of the {} path's records, more than \
                 --max-eval-error-ratio {}; {gate}",
                e.rule,
                e.reason,
                pct(e.ratio),
                e.path,
                r.settings.max_eval_error_ratio.unwrap_or(0.0)
            );
        }
        if failure.unfaithful
            && let Some(f) = &r.fidelity
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
    let too_many = g.failure.too_many_rejects;
    let mut s = String::new();
    if g.failure.any() {
        let mut why = Vec::new();
        if g.failure.nothing_evaluated {
            why.push("no evaluable record".to_string());
        }
        if !too_many
            && g.failure.eval_errors
            && let (Some(e), Some(max)) =
                (r.evaluation_errors.first(), r.settings.max_eval_error_ratio)
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
            && g.failure.unfaithful
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
                r.settings.max_rejects,
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
    if r.settings.min_requests > 1 && rec.evaluated > 0 {
        s.push_str(&format!(
            " (windows under {} requests do not count)",
            r.settings.min_requests
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
                r.settings.max_rejects
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
