//! `report.html`: one self-contained page for analysts and reviewers (no scripts, no
//! network, no external fonts; opens from a CI artifact and prints). Headline and
//! the numbers behind it first (led, when records carried production's verdict, by how
//! much of it the replay reproduced), then four inline-SVG charts (drift per window over
//! time, the what-if curve over rollout levels, the verdict mix, drift by kind and
//! cause) and the tables (levels, worst windows, drifting examples, rejections,
//! inputs, settings). Markup comes from `maud`, which escapes every spliced text, so
//! ids and paths from inputs cannot inject HTML. Key numbers carry stable `id`s and
//! `data-*` attributes (report.json's own number formatting) for tests and scrapers.

mod charts;
mod tables;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::Exporter;
use super::model::{self, FidelityOut, PlanOut, Report, pct};
use super::view;
use charts::{bars, chart_plan, chart_time, chart_verdicts, chart_whatif};
use tables::{figure, plan_runs, plan_steps, window_table};

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

/// The "Rollout plan" section (SPEC §9): the verdict, the steps, the first run's
/// staircase over the drift it judged, the outcome of every run and the worst start.
fn plan_section(r: &Report, p: &PlanOut) -> Markup {
    let s = &p.summary;
    let worst = view::worst_run(r);
    let source = r.plan_result.as_ref().map_or("proof", |x| x.plan.source);
    let steps = p
        .steps
        .iter()
        .map(|st| {
            match st
                .duration_seconds
                .as_ref()
                .and_then(serde_json::Number::as_f64)
            {
                Some(sec) => format!(
                    "{} % for {}",
                    st.rollout_percent,
                    crate::policy::time::format_span((sec * 1000.0).round() as i64)
                ),
                None => format!("{} % to the end", st.rollout_percent),
            }
        })
        .collect::<Vec<_>>()
        .join(" → ");
    let start = match p.start.as_str() {
        "first" => "one run from the first window".to_string(),
        "every" => format!("one run from every window start ({} runs)", s.runs),
        t => format!("one run from {t}"),
    };
    html! {
        h2 #plan { "Rollout plan" }
        p #plan-verdict class=(if p.passed { "good" } else { "bad" }) data-passed=(p.passed) {
            strong { (model::plan_words(r).unwrap_or_default()) }
        }
        p.note {
            "Had this rollout started on the recorded traffic: " span.mono { (steps) } "; "
            "rolled back at " (p.failure_limit) " breached window(s); " (start) "."
            @if source != "proof" { " Read from " (if source == "argo" { "an Argo Rollouts Rollout" } else { "a Flagger Canary" }) "." }
            " Each window is judged at its step's level by the gate's rule"
            @if r.gate.confidence.is_some() { " (its Wilson lower bound against drift max)" } "."
        }
        @if s.runs > 0 {
            dl.figures #plan-summary {
                (figure("Runs", "plan-runs-total", s.runs.to_string(), None, "", s.runs.to_string()))
                (figure("Promoted", "plan-promoted", s.promoted.to_string(), None, "", s.promoted.to_string()))
                (figure("Rolled back", "plan-rolled-back", s.rolled_back.to_string(), None,
                    if s.rolled_back > 0 { "bad" } else { "good" }, s.rolled_back.to_string()))
                (figure("Incomplete", "plan-incomplete", s.incomplete.to_string(),
                    Some("the traffic ended before the last step did".into()), "", s.incomplete.to_string()))
                (figure("Drift events per run", "plan-impact", format!("{} median", s.impact_events_median),
                    Some(format!("at most {}", s.impact_events_max)), "", s.impact_events_max.to_string()))
            }
            @if let Some(w) = worst.filter(|w| w.impact.events > 0) {
                p #plan-worst data-start=(w.start) {
                    strong { "Worst start: " } span.mono { (w.start) } " — "
                    @match w.outcome {
                        "rolled_back" => { "rolled back at step " (w.step.unwrap_or(0)) " (" (w.rollout_percent.unwrap_or(0)) " %) at " (w.at.as_deref().unwrap_or("?")) }
                        "promoted" => { "promoted at " (w.at.as_deref().unwrap_or("?")) }
                        _ => { "still running when the traffic ended" }
                    }
                    ", after " (w.impact.events) " drifting decisions of " (w.impact.requests) " requests ("
                    (w.impact.new_denials) " new denials, " (w.impact.missed_denials) " missed denials)."
                }
            }
            figure {
                (chart_plan(r))
                figcaption {
                    "The first run (from " (p.runs[0].start) "): its rollout level as a staircase, and the drift of each window it judged at that level. "
                    "Later windows are not judged once it rolls back."
                }
            }
            h3 { "Steps" }
            (plan_steps(p))
            h3 { "Runs" }
            (plan_runs(p, worst))
        } @else {
            p.note { "No evaluated record: the plan had no window to run on." }
        }
    }
}

/// The fidelity banner (SPEC §11), under the headline when records carried production's
/// verdict: how much of production the replayed baseline reproduced, against
/// `--max-unfaithful-ratio`, the unfaithful records by kind and the earliest of them
/// (request ids as report.json shows them, redacted with `--redact-ids`).
fn fidelity_section(r: &Report, f: &FidelityOut) -> Markup {
    let limit = r.settings.max_unfaithful_ratio;
    let share = model::ratio(f.unfaithful, f.checked);
    let within = !r.gate.failure.unfaithful;
    html! {
        section #fidelity class=(if within { "good" } else { "bad" })
            data-checked=(f.checked) data-faithful=(f.faithful) data-unfaithful=(f.unfaithful)
            data-unfaithful-ratio=(num(share)) data-limit=(num(limit)) data-passed=(within) {
            p #fidelity-headline {
                strong { "The replay reproduced " (f.faithful) " of " (f.checked) " production verdicts ("
                    (pct(model::ratio(f.faithful, f.checked))) ")." }
            }
            p.note {
                (f.unfaithful) " unfaithful (" (pct(share)) "), "
                @if within { "within" } @else { "above" }
                " --max-unfaithful-ratio " (num(limit)) " (" (pct(limit)) ")"
                @if within {
                    ": the baseline replays as production answered, so drift below is the candidate's."
                } @else {
                    ": the run exits 3, because every drift figure below rests on a baseline that does "
                    "not reproduce production (a list changed since, a field not logged, another policy version)."
                }
            }
            @if f.unfaithful > 0 {
                div.two {
                    table #fidelity-kinds {
                        thead { tr { th { "Production → replay" } th.n { "Records" } } }
                        tbody {
                            @for (k, n) in &f.by_kind {
                                tr data-kind=(k) data-count=(n) { td.mono { (k.replace("->", " → ")) } td.n { (n) } }
                            }
                        }
                    }
                    p.note { "The earliest " (r.unfaithful_examples.len()) " of " (f.unfaithful)
                        " unfaithful records are listed below (all counts in report.json's fidelity). "
                        "No context values are shown." }
                }
                table #unfaithful-examples {
                    thead { tr { th { "Time (UTC)" } th { "Request" } th { "Production" } th { "Replay" } th { "Source" } } }
                    tbody {
                        @for u in &r.unfaithful_examples {
                            tr data-recorded=(u.recorded) data-replayed=(u.replayed) {
                                td.mono { (u.ts) } td { span.id { (u.request_id) } }
                                td { (u.recorded) } td { (u.replayed) }
                                td.mono { (view::shown_source(&u.source)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The HTML document.
pub fn render(r: &Report) -> Markup {
    let g = &r.gate;
    let rec = &r.records;
    let b = &r.inputs.baseline;
    let cand = &r.inputs.candidate;
    // Exit code 3 (too many rejects, or nothing evaluated) fails a CI job whatever the gate says.
    // With a plan, the plan decides the exit code (SPEC §9): the banner follows it.
    // A pass with warnings (a rule erroring on most records) is not shown green.
    let banner = match g.exit_code {
        3 => "none",
        0 if !r.summary.warnings.is_empty() => "none",
        0 => "pass",
        _ => "fail",
    };
    let gate_level = view::gate_pos(r).and_then(|i| r.levels.get(i));
    let worst = view::worst_windows(r, TOP_WINDOWS, TOO_FEW_WINDOWS);
    let min = r.settings.min_requests;
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
                            code { (cand.policy_id) } " (" (cand.selector) ") · " (r.settings.window) " windows, UTC"
                        }
                        h1 #headline data-passed=(g.passed) data-exit-code=(g.exit_code) { (r.summary.headline) }
                        p #verdict { (r.summary.verdict) }
                        @if !r.summary.warnings.is_empty() {
                            ul #warnings {
                                @for w in &r.summary.warnings { li { strong { "Warning: " } (w) } }
                            }
                        }
                        @if g.exit_code == 3 {
                            p #exit-warning {
                                strong { "Exit code 3: " }
                                "the run fails a CI job whatever the gate says. "
                                @if rec.evaluated == 0 { "Check the log files, the policy id and the rejected records." }
                                @else if g.failure.too_many_rejects { "See Rejected records below." }
                                @else if g.failure.unfaithful {
                                    "The replay does not reproduce production: see the fidelity banner below."
                                }
                                @else { "See the warnings above and Evaluation errors below." }
                            }
                        }
                    }
                    @if let Some(f) = &r.fidelity {
                        (fidelity_section(r, f))
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
                            Some(format!("rollback line {} ({} ×)", pct(rollback), r.settings.rollback_factor)),
                            "", num(g.drift_max)))
                        @if let Some(l) = gate_level {
                            (figure(&format!("Drift events at {} %", g.rollout_percent), "gate-drift-events",
                                l.drift_events.to_string(), Some(format!("{} of evaluated records", pct(l.drift_ratio))),
                                "", l.drift_events.to_string()))
                        }
                        (figure("Records evaluated", "records-evaluated", rec.evaluated.to_string(),
                            Some(format!("of {} read; {} rejected, {} skipped", rec.read, rec.rejected, rec.skipped)),
                            "", rec.evaluated.to_string()))
                        @if let Some(c) = g.confidence {
                            (figure(&format!("Proven safe at confidence {c}"), "proven-safe",
                                g.proven_safe_rollout_percent.map_or_else(|| "none".to_string(), |p| format!("{p} %")),
                                Some("no window breaches and the pooled upper bound is within drift max".into()),
                                if g.proven_safe_rollout_percent.is_some_and(|p| p >= g.rollout_percent.get()) { "good" } else { "bad" },
                                g.proven_safe_rollout_percent.map_or_else(|| "null".to_string(), |p| p.to_string())))
                        }
                        (figure("Exit code", "exit-code", g.exit_code.to_string(), None,
                            if g.exit_code == 0 { "good" } else { "bad" }, g.exit_code.to_string()))
                    }

                    @if let Some(p) = &r.plan {
                        (plan_section(r, p))
                    }

                    h2 { "Drift per window over time" }
                    figure {
                        (chart_time(r))
                        figcaption {
                            "Share of each window's requests whose verdict would change, if the candidate were enforced at each rollout level. "
                            "Shaded: windows that breach at the gate level (" (g.rollout_percent) " %)."
                            @if r.settings.min_requests > 1 {
                                " Grey: windows with fewer than " (r.settings.min_requests) " requests, which never breach "
                                "however high their ratio (--min-requests)."
                            }
                            @if g.confidence.is_some() {
                                " Blue bars: the Wilson bounds at the gate level; a window breaches when its lower bound is above drift max."
                            }
                        }
                    }
                    @if let Some(sentence) = view::pass_sentence(r) {
                        p.note #requests-to-pass { (sentence) }
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
                            " drifting records as at 100 % (every record enforced; at the gate level "
                            (g.rollout_percent) " % only records enforced from that level or lower drift, see Enforced from). "
                            "--examples sets how many; all of them with --drift-details. No context values are shown." }
                        table #examples {
                            thead { tr { th { "Time (UTC)" } th { "Request" } th { "Shadow → enforced" } th { "Cause" }
                                th.n { "Bucket" } th.n { "Enforced from" } th { "Source" } } }
                            tbody {
                                @for e in &r.examples {
                                    tr data-kind=(e.kind) data-cause=(e.cause) data-bucket=(e.bucket) {
                                        td.mono { (e.ts) } td { span.id { (e.request_id) } }
                                        td { (e.shadow.as_str()) " → " (e.enforced.as_str()) }
                                        td.mono { (e.cause) } td.n { (e.bucket) }
                                        td.n { (view::enforced_from(e.bucket)) " %" }
                                        td.mono { (view::shown_source(&e.source)) }
                                    }
                                }
                            }
                        }
                    }

                    h2 { "Rejected records" }
                    @if rec.rejected == 0 {
                        p.note #rejections { "No record was rejected." }
                    } @else {
                        p.note { (rec.rejected) " rejected (--max-rejects " (r.settings.max_rejects) ")"
                            @if rec.rejected > r.settings.max_rejects { ": more than allowed, exit code 3" } "." }
                        table #rejections {
                            thead { tr { th { "Reason" } th.n { "Records" } th { "First at" } } }
                            tbody {
                                @for (reason, n) in &rec.rejected_by_reason {
                                    tr data-reason=(reason) data-count=(n) {
                                        td.mono { (reason) } td.n { (n) }
                                        td.mono {
                                            @for (i, x) in r.rejections.iter().filter(|x| x.reason == *reason).take(5).enumerate() {
                                                @if i > 0 { ", " } (view::shown_path(&x.file)) ":" (x.line)
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }

                    @if !r.evaluation_errors.is_empty() {
                        h2 { "Evaluation errors" }
                        p.note { "Records on which a rule could not be evaluated (the rule then fails, fail-closed), by path, rule and reason."
                            @if let Some(max) = r.settings.max_eval_error_ratio { " --max-eval-error-ratio " (max) ": a rule above it exits 3." } }
                        table #evaluation-errors {
                            thead { tr { th { "Path" } th { "Rule" } th { "Reason" } th.n { "Records" } th.n { "Share of evaluated" } } }
                            tbody {
                                @for e in &r.evaluation_errors {
                                    tr data-path=(e.path) data-rule=(e.rule) data-reason=(e.reason) data-records=(e.records) {
                                        td { (e.path) } td.mono { (e.rule) } td.mono { (e.reason) }
                                        td.n { (e.records) } td.n { (pct(e.ratio)) }
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
                                    td { (role) } td.mono { (p.policy_id) } td.mono { (p.ir_hash) } td.mono { (view::shown_path(&p.path)) }
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
                                    td.mono { (view::shown_path(&fl.path)) }
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
                                    tr { td.mono { (l.name) } td.mono { (view::shown_path(&l.path)) } td.n { (l.values) } }
                                }
                            }
                        }
                    }
                    h3 { "Settings" }
                    table #config {
                        tbody {
                            tr { th { "Window" } td { (r.settings.window) } }
                            tr { th { "Levels" } td { (r.settings.levels.iter().map(|l| format!("{l} %")).collect::<Vec<_>>().join(", ")) } }
                            tr { th { "Gate level" } td { (r.settings.rollout) " %" } }
                            tr { th { "Drift max" } td { (num(r.settings.drift_max)) " (" (pct(r.settings.drift_max)) ")" } }
                            tr { th { "Rollback factor" } td { (r.settings.rollback_factor) " (line at " (pct(rollback)) ")" } }
                            tr { th { "Min requests per window" } td { (r.settings.min_requests) } }
                            tr { th { "Max rejects" } td { (r.settings.max_rejects) } }
                            tr { th { "Sampling salt" } td.mono { (r.config.salt) } }
                            tr { th { "Request ids redacted" } td { (match (r.config.redact_ids, r.config.redact_key_set) {
                                (false, _) => "no",
                                (true, true) => "yes, keyed by PROOF_REDACT_KEY",
                                (true, false) => "yes, keyed by the salt (guessable; set PROOF_REDACT_KEY)",
                            }) } }
                            @if let Some(s) = &r.config.scenario { tr { th { "Scenario" } td.mono { (view::shown_path(s)) } } }
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

    #[test]
    fn fidelity_banner_shows_the_share_the_limit_and_the_unfaithful_records() {
        let mut r = view::sample::report();
        assert!(!render(&r).into_string().contains("id=\"fidelity\""));
        r.fidelity = Some(FidelityOut {
            checked: 15,
            faithful: 14,
            unfaithful: 1,
            by_kind: [("fail->ok", 1)].into_iter().collect(),
        });
        r.unfaithful_examples = vec![model::UnfaithfulOut {
            ts: "1970-01-01T00:00:00.002Z".into(),
            request_id: "r<3>".into(),
            recorded: "fail",
            replayed: "ok",
            source: "logs/../a.jsonl:3".into(),
        }];
        // 1 of 15 (6.67 %) is above the default limit 0.001: the gate decided exit 3.
        r.gate.failure.unfaithful = true;
        let page = render(&r).into_string();
        assert!(page.contains(
            "<section id=\"fidelity\" class=\"bad\" data-checked=\"15\" data-faithful=\"14\" \
             data-unfaithful=\"1\" data-unfaithful-ratio=\"0.06666666666666667\" data-limit=\"0.001\" \
             data-passed=\"false\">"
        ));
        assert!(
            page.contains("The replay reproduced 14 of 15 production verdicts (93.3 %).</strong>")
        );
        assert!(page.contains(
            "1 unfaithful (6.67 %), above --max-unfaithful-ratio 0.001 (0.10 %): the run exits 3"
        ));
        assert!(page.contains(
            "<tr data-kind=\"fail-&gt;ok\" data-count=\"1\"><td class=\"mono\">fail → ok</td>"
        ));
        assert!(page.contains(
            "<tr data-recorded=\"fail\" data-replayed=\"ok\"><td class=\"mono\">1970-01-01T00:00:00.002Z</td>\
             <td><span class=\"id\">r&lt;3&gt;</span></td><td>fail</td><td>ok</td><td class=\"mono\">a.jsonl:3</td></tr>"
        ));
        // Before the key figures; within a raised limit it is green and lists no exit.
        assert!(page.find("id=\"fidelity\"").unwrap() < page.find("id=\"gate-level\"").unwrap());
        r.settings.max_unfaithful_ratio = 0.1;
        r.gate.failure.unfaithful = false;
        let page = render(&r).into_string();
        assert!(page.contains("<section id=\"fidelity\" class=\"good\""));
        assert!(page.contains("within --max-unfaithful-ratio 0.1 (10.0 %): the baseline replays"));
    }
}
