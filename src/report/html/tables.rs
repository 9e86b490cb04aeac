//! The tables and key figures of report.html: windows at the gate level and the
//! figure boxes under the headline.

use maud::{Markup, html};

use super::num;
use crate::report::model::{PlanOut, PlanRunOut, Report, Window, WindowLevel, pct};
use crate::report::view;

/// A table of windows at the gate level with their figures and status.
pub(super) fn window_table(id: &str, r: &Report, rows: &[(&Window, &WindowLevel)]) -> Markup {
    html! {
        table id=(id) {
            thead { tr { th { "Window (UTC)" } th.n { "Requests" } th.n { "Drift events" } th.n { "Drift ratio" } th { "Status" } } }
            tbody {
                @for (w, d) in rows {
                    @let st = view::status(r, d.events, w.requests);
                    tr data-start=(w.start) data-end=(w.end) data-requests=(w.requests) data-events=(d.events)
                        data-ratio=(num(d.ratio)) data-status=(st.as_str()) {
                        td.mono { (w.start) " – " (w.end) }
                        td.n { (w.requests) } td.n { (d.events) } td.n { (pct(d.ratio)) }
                        td class=(format!("status-{}", st.as_str())) { (st.as_str()) }
                    }
                }
            }
        }
    }
}

pub(super) fn figure(
    title: &str,
    key: &str,
    value: String,
    note: Option<String>,
    class: &str,
    data: String,
) -> Markup {
    html! {
        div {
            dt { (title) }
            dd id=(key) class=(class) data-value=(data) { (value) @if let Some(n) = note { small { (n) } } }
        }
    }
}

/// Runs listed in the runs table; beyond, the worst ones (all in report.json).
const MAX_RUNS: usize = 60;

fn duration(seconds: Option<&serde_json::Number>) -> String {
    let Some(n) = seconds.and_then(serde_json::Number::as_f64) else {
        return "until the end of the traffic".into();
    };
    let ms = (n * 1000.0).round() as i64;
    crate::policy::time::format_span(ms)
}

/// The plan's steps with how many runs rolled back in each.
pub(super) fn plan_steps(p: &PlanOut) -> Markup {
    html! {
        table #plan-steps {
            thead { tr { th.n { "Step" } th.n { "Rollout" } th { "Duration" } th.n { "Runs rolled back here" } } }
            tbody {
                @for (i, s) in p.steps.iter().enumerate() {
                    @let n = p.summary.rolled_back_by_step.get(i).copied().unwrap_or(0);
                    tr data-step=(i + 1) data-rollout=(s.rollout_percent) data-rolled-back=(n) {
                        td.n { (i + 1) } td.n { (s.rollout_percent) " %" }
                        td { (duration(s.duration_seconds.as_ref())) }
                        td.n class=(if n > 0 { "status-breach" } else { "" }) { (n) }
                    }
                }
            }
        }
    }
}

/// The runs, in start order (at most [`MAX_RUNS`]: then the ones with the most
/// drift events, still in start order), the worst one marked.
pub(super) fn plan_runs(p: &PlanOut, worst: Option<&PlanRunOut>) -> Markup {
    let mut shown: Vec<&PlanRunOut> = p.runs.iter().collect();
    if shown.len() > MAX_RUNS {
        shown.sort_by(|a, b| {
            b.impact
                .events
                .cmp(&a.impact.events)
                .then_with(|| a.start.cmp(&b.start))
        });
        shown.truncate(MAX_RUNS);
        shown.sort_by(|a, b| a.start.cmp(&b.start));
    }
    let is_worst = |x: &PlanRunOut| worst.is_some_and(|w| std::ptr::eq(w, x));
    html! {
        @if p.runs.len() > MAX_RUNS {
            p.note { "The " (MAX_RUNS) " runs with the most drift events of " (p.runs.len()) ", in start order; all in report.json." }
        }
        table #plan-runs {
            thead { tr {
                th { "Start (UTC)" } th { "Outcome" } th.n { "Step" } th.n { "Rollout" } th { "At" }
                th.n { "Breached windows" } th.n { "Requests" } th.n { "Drift events" } th.n { "New denials" } th.n { "Missed denials" }
            } }
            tbody {
                @for x in &shown {
                    tr.worst[is_worst(x)] data-start=(x.start) data-outcome=(x.outcome) data-events=(x.impact.events) {
                        td { span.id { (x.start) } @if is_worst(x) { " (worst)" } }
                        td class=(format!("outcome-{}", x.outcome)) { (x.outcome.replace('_', " ")) }
                        td.n { @if let Some(s) = x.step { (s) } @else { "–" } }
                        td.n { @if let Some(l) = x.rollout_percent { (l) " %" } @else { "–" } }
                        td { span.id { (x.at.as_deref().unwrap_or("–")) } }
                        td.n { (x.breached_windows) }
                        td.n { (x.impact.requests) } td.n { (x.impact.events) }
                        td.n { (x.impact.new_denials) } td.n { (x.impact.missed_denials) }
                    }
                }
            }
        }
    }
}
