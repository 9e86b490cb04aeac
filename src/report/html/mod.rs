//! `report.html`: one self-contained page for analysts and reviewers (no scripts, no
//! network, no external fonts; opens from a CI artifact and prints). Headline and
//! the numbers behind it first, then four inline-SVG charts (drift per window over
//! time, the what-if curve over rollout levels, the verdict mix, drift by kind and
//! cause) and the tables (levels, worst windows, drifting examples, rejections,
//! inputs, settings). Markup comes from `maud`, which escapes every spliced text, so
//! ids and paths from inputs cannot inject HTML. Key numbers carry stable `id`s and
//! `data-*` attributes (report.json's own number formatting) for tests and scrapers.

mod charts;
mod tables;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::Exporter;
use super::model::{Report, pct};
use super::view;
use charts::{bars, chart_time, chart_verdicts, chart_whatif};
use tables::{figure, window_table};

/// Writes report.html.
pub struct HtmlExporter;

impl Exporter for HtmlExporter {
    fn file_name(&self) -> &'static str {
        "report.html"
    }

    fn serialize(&self, report: &Report) -> Result<Vec<u8>, crate::error::ProofError> {
        Ok(render(report).into_string().into_bytes())
    }
}

/// Rows of the worst-windows table; bars of the cause chart.
const TOP_WINDOWS: usize = 20;
const TOP_CAUSES: usize = 12;
/// Rows of the list of high-ratio windows with too few requests to count.
const TOO_FEW_WINDOWS: usize = 5;

/// The page's stylesheet (no imports, no fonts, no urls: the page stays self-contained).
const CSS: &str = include_str!("style.css");

/// A float exactly as report.json prints it (for `data-*` attributes).
pub(crate) fn num(x: f64) -> String {
    serde_json::to_string(&x).unwrap_or_else(|_| x.to_string())
}

/// The HTML document.
pub fn render(r: &Report) -> Markup {
    let g = &r.gate;
    let rec = &r.records;
    let b = &r.inputs.baseline;
    let cand = &r.inputs.candidate;
    // Exit code 3 (too many rejects, or nothing evaluated) fails a CI job whatever the gate says.
    let banner = if g.exit_code == 3 {
        "none"
    } else if g.passed {
        "pass"
    } else {
        "fail"
    };
    let gate_level = view::gate_pos(r).and_then(|i| r.levels.get(i));
    let worst = view::worst_windows(r, TOP_WINDOWS, TOO_FEW_WINDOWS);
    let min = r.config.min_requests;
    let kinds: Vec<(String, u64)> = r
        .drift
        .by_kind
        .iter()
        .map(|(k, n)| ((*k).to_string(), *n))
        .collect();
    let causes: Vec<(String, u64)> = r
        .drift
        .by_cause
        .iter()
        .take(TOP_CAUSES)
        .map(|c| (c.cause.clone(), c.events))
        .collect();
    let rollback = view::rollback_line(r);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="generator" content=(format!("proof {} ({})", env!("CARGO_PKG_VERSION"), r.schema));
                title { "proof replay: " (r.summary.headline) }
                style { (PreEscaped(CSS)) }
            }
            body {
                main {
                    header.banner.(banner) {
                        p.kicker {
                            "proof replay · baseline " code { (b.policy_id) } " (" (b.selector) ") → candidate "
                            code { (cand.policy_id) } " (" (cand.selector) ") · " (r.config.window) " windows, UTC"
                        }
                        h1 #headline data-passed=(g.passed) data-exit-code=(g.exit_code) { (r.summary.headline) }
                        p #verdict { (r.summary.verdict) }
                        @if g.exit_code == 3 {
                            p #exit-warning {
                                strong { "Exit code 3: " }
                                "the run fails a CI job whatever the gate says. "
                                @if rec.evaluated == 0 { "Check the log files, the policy id and the rejected records." }
                                @else { "See Rejected records below." }
                            }
                        }
                    }
                    dl.figures {
                        (figure("Gate level", "gate-level", format!("{} %", g.rollout_percent), None, "", g.rollout_percent.to_string()))
                        (figure("Max safe rollout", "max-safe", format!("{} %", g.max_safe_rollout_percent),
                            Some("largest whole percent with no breaching window".into()),
                            if g.max_safe_rollout_percent >= g.rollout_percent.get() { "good" } else { "bad" },
                            g.max_safe_rollout_percent.to_string()))
                        (figure(&format!("Windows breached at {} %", g.rollout_percent), "breached-windows",
                            format!("{} of {}", g.breached_windows.len(), r.windows.len()),
                            Some(format!("{} above the rollback line", r.summary.rollback_windows.len())),
                            if g.breached_windows.is_empty() { "good" } else { "bad" },
                            g.breached_windows.len().to_string()))
                        @if let Some(w) = &r.summary.worst_window {
                            (figure(&format!("Worst {}window at {} %", if min > 1 { "counted " } else { "" }, g.rollout_percent),
                                "worst-window", pct(w.ratio),
                                Some(format!("{} of {} requests, from {}{}", w.events, w.requests, w.start,
                                    if min > 1 { format!("; windows with ≥ {min} requests") } else { String::new() })),
                                "", num(w.ratio)))
                        }
                        (figure("Drift max", "drift-max", pct(g.drift_max),
                            Some(format!("rollback line {} ({} ×)", pct(rollback), r.config.rollback_factor)),
                            "", num(g.drift_max)))
                        @if let Some(l) = gate_level {
                            (figure(&format!("Drift events at {} %", g.rollout_percent), "gate-drift-events",
                                l.drift_events.to_string(), Some(format!("{} of evaluated records", pct(l.drift_ratio))),
                                "", l.drift_events.to_string()))
                        }
                        (figure("Records evaluated", "records-evaluated", rec.evaluated.to_string(),
                            Some(format!("of {} read; {} rejected, {} skipped", rec.read, rec.rejected, rec.skipped)),
                            "", rec.evaluated.to_string()))
                        (figure("Exit code", "exit-code", g.exit_code.to_string(), None,
                            if g.exit_code == 0 { "good" } else { "bad" }, g.exit_code.to_string()))
                    }

                    h2 { "Drift per window over time" }
                    figure {
                        (chart_time(r))
                        figcaption {
                            "Share of each window's requests whose verdict would change, if the candidate were enforced at each rollout level. "
                            "Shaded: windows that breach at the gate level (" (g.rollout_percent) " %)."
                            @if r.config.min_requests > 1 {
                                " Grey: windows with fewer than " (r.config.min_requests) " requests, which never breach "
                                "however high their ratio (--min-requests)."
                            }
                        }
                    }

                    h2 { "What if: rollout level against worst window" }
                    figure {
                        (chart_whatif(r))
                        figcaption {
                            "Worst window drift ratio if the candidate were enforced for a given share of requests "
                            "(requests are sampled by bucket, so a higher level adds requests to the lower ones)"
                            @if min > 1 {
                                ", over the windows with at least " (min) " requests, the ones the gate counts"
                            }
                            ". The curve crosses drift max where the max safe rollout ends: safe up to "
                            strong { (g.max_safe_rollout_percent) " %" } "."
                        }
                    }

                    h2 { "Verdict mix" }
                    figure {
                        (chart_verdicts(r))
                        figcaption { "Verdicts of all " (rec.evaluated) " evaluated records on each path; enforced as if at 100 %." }
                    }

                    h2 { "Drift by kind and by cause (as at 100 %)" }
                    div.two {
                        figure {
                            (bars("chart-drift-kind", "Drift by kind", &kinds, r.drift.events, "#3e6fb0"))
                            figcaption { "Kind: shadow verdict → enforced verdict. " (r.drift.events) " drifting records in all." }
                        }
                        figure {
                            (bars("chart-drift-cause", "Drift by cause", &causes, r.drift.events, "#c2761d"))
                            figcaption {
                                "Cause: the first rule whose outcome differs between the paths."
                                @if r.drift.by_cause.len() > TOP_CAUSES {
                                    " Top " (TOP_CAUSES) " of " (r.drift.by_cause.len()) "; all in report.json."
                                }
                            }
                        }
                    }

                    h2 { "Rollout levels" }
                    table #levels {
                        thead { tr {
                            th.n { "Rollout" } th.n { "Drift events" } th.n { "Drift ratio" }
                            @if min > 1 { th.n { "Worst window (all)" } th.n { "Worst counted window" } }
                            @else { th.n { "Worst window" } }
                            th.n { "Breached windows" } th.n { "Rollback windows" } th { "Safe" }
                        } }
                        tbody {
                            @for (li, l) in r.levels.iter().enumerate() {
                                @let counted = view::max_counted_ratio(r, li);
                                tr.gate[l.rollout_percent == g.rollout_percent]
                                    data-rollout=(l.rollout_percent.get()) data-drift-events=(l.drift_events)
                                    data-drift-ratio=(num(l.drift_ratio)) data-max-window-ratio=(num(l.max_window_ratio))
                                    data-max-counted-window-ratio=[counted.map(num)]
                                    data-breached-windows=(l.breached_windows) data-rollback-windows=(l.rollback_windows) {
                                    td.n { (l.rollout_percent) " %" @if l.rollout_percent == g.rollout_percent { " (gate)" } }
                                    td.n { (l.drift_events) }
                                    td.n { (pct(l.drift_ratio)) }
                                    td.n { (pct(l.max_window_ratio)) }
                                    @if min > 1 { td.n { (counted.map_or_else(|| "–".to_string(), pct)) } }
                                    td.n { (l.breached_windows) }
                                    td.n { (l.rollback_windows) }
                                    @if l.breached_windows == 0 { td.status-ok { "yes" } } @else { td.status-breach { "no" } }
                                }
                            }
                        }
                    }
                    @if min > 1 {
                        p.note {
                            "Worst window (all): the highest drift ratio of any window at that level "
                            "(report.json's levels[].max_window_ratio). Worst counted window: the highest among windows "
                            "with at least " (min) " requests, the only ones that can breach; the gate, the breached windows "
                            "and the what-if curve use this one. – : no window has " (min) " requests."
                        }
                    }

                    h2 { "Worst windows at " (g.rollout_percent) " %" }
                    @if worst.counted.is_empty() && worst.too_few.is_empty() {
                        p.note #worst-windows { "No drift at the gate level." }
                    } @else if worst.counted.is_empty() {
                        p.note #worst-windows { "No window with at least " (min) " requests has drift at the gate level." }
                    } @else {
                        @if min > 1 {
                            p.note { "Windows with at least " (min) " requests (the ones that count for the gate), worst first." }
                        }
                        (window_table("worst-windows", r, &worst.counted))
                    }
                    @if !worst.too_few.is_empty() {
                        h3 { "Windows with fewer than " (min) " requests (never breach)" }
                        p.note { "The highest drift ratios among windows too small to count for the gate"
                            @if worst.too_few.len() == TOO_FEW_WINDOWS { " (top " (TOO_FEW_WINDOWS) ")" } "." }
                        (window_table("worst-windows-too-few", r, &worst.too_few))
                    }

                    h2 { "Drifting examples" }
                    @if r.examples.is_empty() {
                        p.note #examples { "No drifting record." }
                    } @else {
                        p.note { "The earliest " (r.examples.len()) " of " (r.drift.events)
                            " drifting records (--examples; all of them with --drift-details). No context values are shown." }
                        table #examples {
                            thead { tr { th { "Time (UTC)" } th { "Request" } th { "Shadow → enforced" } th { "Cause" }
                                th.n { "Bucket" } th.n { "Enforced from" } th { "Source" } } }
                            tbody {
                                @for e in &r.examples {
                                    tr data-kind=(e.kind) data-cause=(e.cause) data-bucket=(e.bucket) {
                                        td.mono { (e.ts) } td.mono { (e.request_id) }
                                        td { (e.shadow.as_str()) " → " (e.enforced.as_str()) }
                                        td.mono { (e.cause) } td.n { (e.bucket) }
                                        td.n { (view::enforced_from(e.bucket)) " %" }
                                        td.mono { (e.source) }
                                    }
                                }
                            }
                        }
                    }

                    h2 { "Rejected records" }
                    @if rec.rejected == 0 {
                        p.note #rejections { "No record was rejected." }
                    } @else {
                        p.note { (rec.rejected) " rejected (--max-rejects " (r.config.max_rejects) ")"
                            @if rec.rejected > r.config.max_rejects { ": more than allowed, exit code 3" } "." }
                        table #rejections {
                            thead { tr { th { "Reason" } th.n { "Records" } th { "First at" } } }
                            tbody {
                                @for (reason, n) in &rec.rejected_by_reason {
                                    tr data-reason=(reason) data-count=(n) {
                                        td.mono { (reason) } td.n { (n) }
                                        td.mono {
                                            @for (i, x) in r.rejections.iter().filter(|x| x.reason == *reason).take(5).enumerate() {
                                                @if i > 0 { ", " } (x.file) ":" (x.line)
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }

                    h2 { "Inputs" }
                    h3 { "Policies" }
                    table #policies {
                        thead { tr { th { "Path" } th { "Policy id" } th { "IR hash" } th { "File" } th { "Selector" } } }
                        tbody {
                            @for (role, p) in [("shadow (baseline)", b), ("enforced (candidate)", cand)] {
                                tr data-policy-id=(p.policy_id) data-ir-hash=(p.ir_hash) {
                                    td { (role) } td.mono { (p.policy_id) } td.mono { (p.ir_hash) } td.mono { (p.path) }
                                    td { (p.selector)
                                        @if let Some(w) = &p.weights { ", weights " span.mono { (w) } }
                                        @if let Some(bu) = p.budget { ", budget " (bu) } }
                                }
                            }
                        }
                    }
                    h3 { "Log files" }
                    table #input-files {
                        thead { tr { th { "File" } th { "Format" } th.n { "Bytes" } th.n { "Read" } th.n { "Evaluated" } th.n { "Rejected" } th.n { "Skipped" } } }
                        tbody {
                            @for fl in &r.inputs.files {
                                tr data-path=(fl.path) {
                                    td.mono { (fl.path) }
                                    td { (fl.format) @if fl.compression != "none" { ", " (fl.compression) } }
                                    td.n { @if let Some(by) = fl.bytes { (by) } }
                                    td.n { (fl.counts.read) } td.n { (fl.counts.evaluated) }
                                    td.n { (fl.counts.rejected) } td.n { (fl.counts.skipped) }
                                }
                            }
                        }
                    }
                    @if !r.inputs.lists.is_empty() {
                        h3 { "Lists" }
                        table #lists {
                            thead { tr { th { "Name" } th { "File" } th.n { "Values" } } }
                            tbody {
                                @for l in &r.inputs.lists {
                                    tr { td.mono { (l.name) } td.mono { (l.path) } td.n { (l.values) } }
                                }
                            }
                        }
                    }
                    h3 { "Settings" }
                    table #config {
                        tbody {
                            tr { th { "Window" } td { (r.config.window) } }
                            tr { th { "Levels" } td { (r.config.levels.iter().map(|l| format!("{l} %")).collect::<Vec<_>>().join(", ")) } }
                            tr { th { "Gate level" } td { (r.config.rollout) " %" } }
                            tr { th { "Drift max" } td { (num(r.config.drift_max)) " (" (pct(r.config.drift_max)) ")" } }
                            tr { th { "Rollback factor" } td { (r.config.rollback_factor) " (line at " (pct(rollback)) ")" } }
                            tr { th { "Min requests per window" } td { (r.config.min_requests) } }
                            tr { th { "Max rejects" } td { (r.config.max_rejects) } }
                            tr { th { "Sampling salt" } td.mono { (r.config.salt) } }
                            tr { th { "Request ids redacted" } td { (match (r.config.redact_ids, r.config.redact_key_set) {
                                (false, _) => "no",
                                (true, true) => "yes, keyed by PROOF_REDACT_KEY",
                                (true, false) => "yes, keyed by the salt (guessable; set PROOF_REDACT_KEY)",
                            }) } }
                            @if let Some(s) = &r.config.scenario { tr { th { "Scenario" } td.mono { (s) } } }
                        }
                    }
                    footer { "proof " (env!("CARGO_PKG_VERSION")) " · " (r.schema) " · all figures also in report.json; times are UTC." }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_input_text_and_marks_breached_windows() {
        let r = view::sample::report();
        let page = render(&r).into_string();
        assert!(!page.contains("<x>") && !page.contains("rule<a>"));
        assert!(page.contains("p|&lt;x&gt;") && page.contains("rule&lt;a&gt;"));
        assert_eq!(
            page.matches("<tr class=\"gate\" data-rollout=\"50\"")
                .count(),
            1
        );
        assert_eq!(page.matches(" data-rollout=").count(), 3 * 4); // table, time lines, what-if points
        // Windows 0 (rollback) and 2 (breach) are shaded; window 1 has too few requests.
        assert_eq!(page.matches("<rect class=\"breach\"").count(), 2);
        assert!(page.contains("data-start=\"1970-01-01T00:00:00Z\""));
        assert!(page.contains("id=\"max-safe\" class=\"bad\" data-value=\"5\""));
    }
}
