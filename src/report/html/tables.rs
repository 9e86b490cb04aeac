//! The tables and key figures of report.html: windows at the gate level and the
//! figure boxes under the headline.

use maud::{Markup, html};

use super::num;
use crate::report::model::{Report, Window, WindowLevel, pct};
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
