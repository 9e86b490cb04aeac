//! The inline-SVG charts of report.html: drift per window over time (one line per
//! level), the what-if curve over rollout levels, the verdict mix and the bar charts
//! of drift by kind and cause, with the line styles and legends they share.

use maud::{Markup, html};

use super::num;
use crate::report::model::{Report, pct, ratio};
use crate::report::svg::{Linear, day, decimals, nice_ticks, tick_anchor, time_label, time_ticks};
use crate::report::view::{self, WindowStatus};

/// Point markers are drawn up to this many windows (beyond, lines only).
const MAX_MARKERS: usize = 120;

/// Line colours for the rollout levels other than the gate level, lowest level first.
/// Fifteen colours that stay apart from each other, from the gate's near-black and
/// from the orange and red of the reference lines; beyond fifteen levels the colours
/// repeat with a dash pattern, so every level keeps its own line style.
const PALETTE: [&str; 15] = [
    "#4e79a7", "#59a14f", "#b07aa1", "#76b7b2", "#c9a227", "#9c755f", "#ff9da7", "#17becf",
    "#393b79", "#8cd17d", "#a5a5a5", "#7b4173", "#86bcf0", "#637939", "#e377c2",
];
/// Dash patterns for the rounds through the palette (none first).
const DASHES: [&str; 4] = ["", "7 3", "2 3", "9 3 2 3"];
/// The gate level's line: drawn last, thickest, in a colour no other level has.
const GATE_COLOUR: &str = "#1f2328";
/// The what-if curve over the windows that count for the gate.
const WHATIF_COLOUR: &str = "#3e6fb0";
const DRIFT_MAX_COLOUR: &str = "#d97706";
const ROLLBACK_COLOUR: &str = "#b91c1c";

fn px(x: f64) -> String {
    format!("{x:.1}")
}

/// How one level's line is drawn in the drift-over-time chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LineStyle {
    colour: &'static str,
    /// `stroke-dasharray`, empty for a solid line.
    dash: &'static str,
    gate: bool,
}

/// Line styles of the reported levels, in level order: the gate level gets the
/// reserved gate colour, the others walk the palette, then the palette again with
/// each dash pattern in turn.
fn level_styles(r: &Report) -> Vec<LineStyle> {
    let gate = view::gate_pos(r);
    let mut k = 0;
    (0..r.levels.len())
        .map(|li| {
            if Some(li) == gate {
                return LineStyle {
                    colour: GATE_COLOUR,
                    dash: "",
                    gate: true,
                };
            }
            let st = LineStyle {
                colour: PALETTE[k % PALETTE.len()],
                dash: DASHES[(k / PALETTE.len()) % DASHES.len()],
                gate: false,
            };
            k += 1;
            st
        })
        .collect()
}

/// A legend swatch: a short line in the style of a chart line (inline SVG, so dash
/// patterns show as they do in the chart).
fn swatch(colour: &str, dash: &str, width: f64) -> Markup {
    html! {
        svg.swatch width="24" height="10" viewBox="0 0 24 10" aria-hidden="true" {
            line x1="1" x2="23" y1="5" y2="5" stroke=(colour) stroke-width=(px(width))
                stroke-dasharray=[(!dash.is_empty()).then_some(dash)] {}
        }
    }
}

/// Plot area of a chart: the full size and the margins.
#[derive(Clone, Copy)]
struct Frame {
    w: f64,
    h: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Frame {
    fn x(&self, d0: f64, d1: f64) -> Linear {
        Linear {
            d0,
            d1,
            r0: self.left,
            r1: self.w - self.right,
        }
    }
    fn y(&self, d1: f64) -> Linear {
        Linear {
            d0: 0.0,
            d1,
            r0: self.h - self.bottom,
            r1: self.top,
        }
    }
    fn view_box(&self) -> String {
        format!("0 0 {} {}", self.w, self.h)
    }
}

/// Y axis of ratios shown in percent: grid lines, tick labels, axis title.
fn ratio_axis(f: &Frame, y: &Linear, ticks: &[f64], title: &str) -> Markup {
    let shown: Vec<f64> = ticks.iter().map(|t| t * 100.0).collect();
    let d = decimals(&shown);
    html! {
        @for (t, p) in ticks.iter().zip(&shown) {
            line.grid x1=(px(f.left)) x2=(px(f.w - f.right)) y1=(px(y.map(*t))) y2=(px(y.map(*t))) {}
            text x=(px(f.left - 6.0)) y=(px(y.map(*t) + 4.0)) text-anchor="end" { (format!("{p:.d$} %")) }
        }
        line.axis x1=(px(f.left)) x2=(px(f.left)) y1=(px(f.top)) y2=(px(f.h - f.bottom)) {}
        line.axis x1=(px(f.left)) x2=(px(f.w - f.right)) y1=(px(f.h - f.bottom)) y2=(px(f.h - f.bottom)) {}
        text x="14" y=(px((f.top + f.h - f.bottom) / 2.0)) text-anchor="middle"
            transform=(format!("rotate(-90 14 {})", px((f.top + f.h - f.bottom) / 2.0))) { (title) }
    }
}

/// The drift-max and rollback reference lines, labelled at the right end: the
/// rollback label above its line, the drift-max label below its own, so that the
/// two never overlap however close the lines are.
fn limit_lines(f: &Frame, y: &Linear, r: &Report) -> Markup {
    let (dm, rb) = (r.settings.drift_max, view::rollback_line(r));
    let below = y.map(dm) + 14.0;
    // No room below the drift-max line (it sits on the x axis): stack both labels
    // above the rollback line, rollback on top as its line is.
    let (dm_label, rb_label) = if below > f.h - f.bottom - 3.0 {
        (y.map(rb) - 4.0, y.map(rb) - 18.0)
    } else {
        (below, y.map(rb) - 4.0)
    };
    let lines = [
        (dm, DRIFT_MAX_COLOUR, "drift max", dm_label),
        (rb, ROLLBACK_COLOUR, "rollback", rb_label),
    ];
    html! {
        @for (v, colour, name, ly) in lines {
            line x1=(px(f.left)) x2=(px(f.w - f.right)) y1=(px(y.map(v))) y2=(px(y.map(v)))
                stroke=(colour) stroke-width="1.5" stroke-dasharray="6 4" {}
            text x=(px(f.w - f.right - 4.0)) y=(px(ly))
                text-anchor="end" class="halo" style=(format!("fill:{colour}")) { (name) " " (pct(v)) }
        }
    }
}

/// Chart 1: drift ratio per window over time, one line per level.
pub(super) fn chart_time(r: &Report) -> Markup {
    let series = &r.series;
    if series.is_empty() || series.len() != r.windows.len() {
        return html! { p.note { "No evaluated records: nothing to plot." } };
    }
    let f = Frame {
        w: 960.0,
        h: 340.0,
        left: 70.0,
        right: 18.0,
        top: 16.0,
        bottom: 46.0,
    };
    let (t0, t1) = (series[0].start_ms, series[series.len() - 1].end_ms);
    let x = f.x(t0 as f64, t1 as f64);
    let max = r
        .windows
        .iter()
        .flat_map(|w| w.drift.iter().map(|d| d.ratio))
        .fold(view::rollback_line(r), f64::max);
    let ticks = nice_ticks(max * 1.05, 5);
    let y = f.y(*ticks.last().unwrap_or(&1.0));
    let (step, tt) = time_ticks(t0, t1, 8);
    let multi_day = day(t0) != day(t1 - 1);
    let gate = view::gate_pos(r);
    let styles = level_styles(r);
    let mid = |i: usize| x.map((series[i].start_ms as f64 + series[i].end_ms as f64) / 2.0);
    let paths: Vec<String> = (0..r.levels.len())
        .map(|li| {
            let mut d = String::new();
            for (i, w) in r.windows.iter().enumerate() {
                let joined = i > 0 && series[i - 1].end_ms == series[i].start_ms;
                let ratio = w.drift.get(li).map_or(0.0, |d| d.ratio);
                d.push_str(&format!(
                    "{}{} {} ",
                    if joined { "L" } else { "M" },
                    px(mid(i)),
                    px(y.map(ratio))
                ));
            }
            d
        })
        .collect();
    // The other levels first, thin and translucent; the gate level last, so that no
    // higher level hides the line the gate reads.
    let order: Vec<usize> = (0..r.levels.len())
        .filter(|&li| Some(li) != gate)
        .chain(gate)
        .collect();
    let markers = r.windows.len() <= MAX_MARKERS;
    // Runs of adjacent windows with fewer than --min-requests requests (start, end,
    // windows): shaded grey, since a ratio there may be high but never breaches.
    let mut too_few: Vec<(i64, i64, usize)> = Vec::new();
    for (w, s) in r.windows.iter().zip(series) {
        if view::counts(r, w) {
            continue;
        }
        match too_few.last_mut() {
            Some(run) if run.1 == s.start_ms => {
                run.1 = s.end_ms;
                run.2 += 1;
            }
            _ => too_few.push((s.start_ms, s.end_ms, 1)),
        }
    }
    let title = if multi_day {
        "window (UTC)".to_string()
    } else {
        format!("window (UTC, {})", day(t0))
    };
    html! {
        svg.chart #chart-drift-time viewBox=(f.view_box()) role="img"
            aria-label="Drift ratio per window over time, one line per rollout level" {
            @for (a, b, n) in &too_few {
                rect.too-few x=(px(x.map(*a as f64))) y=(px(f.top))
                    width=(px((x.map(*b as f64) - x.map(*a as f64)).max(1.0)))
                    height=(px(f.h - f.bottom - f.top)) fill="#8c959f" fill-opacity="0.13" {
                    title { (format!("{n} window(s) with fewer than {} requests: they never breach", r.settings.min_requests)) }
                }
            }
            @for (i, w) in r.windows.iter().enumerate() {
                @if let Some(d) = gate.and_then(|g| w.drift.get(g)) {
                    @let st = view::status(r, d.events, w.requests);
                    @if matches!(st, WindowStatus::Breach | WindowStatus::Rollback) {
                        rect.breach x=(px(x.map(series[i].start_ms as f64))) y=(px(f.top))
                            width=(px((x.map(series[i].end_ms as f64) - x.map(series[i].start_ms as f64)).max(2.0)))
                            height=(px(f.h - f.bottom - f.top)) fill=(ROLLBACK_COLOUR) fill-opacity="0.10"
                            data-start=(w.start) {
                            title { (format!("{} – {}: {} at {} % ({} of {} requests), {}",
                                w.start, w.end, pct(d.ratio), r.gate.rollout_percent, d.events,
                                w.requests, st.as_str())) }
                        }
                    }
                }
            }
            (ratio_axis(&f, &y, &ticks, "drift ratio per window"))
            (gate_bands(r, &x, &y))
            @for t in &tt {
                @let tx = x.map(*t as f64);
                @let label = time_label(*t, step, multi_day);
                line.axis x1=(px(tx)) x2=(px(tx)) y1=(px(f.h - f.bottom)) y2=(px(f.h - f.bottom + 5.0)) {}
                text x=(px(tx)) y=(px(f.h - f.bottom + 18.0))
                    text-anchor=(tick_anchor(tx, label.chars().count(), 0.0, f.w)) { (label) }
            }
            text x=(px((f.left + f.w - f.right) / 2.0)) y=(px(f.h - 6.0)) text-anchor="middle" class="muted" { (title) }
            @for &li in &order {
                @let st = styles[li];
                @let l = &r.levels[li];
                @if st.gate {
                    // A white casing lifts the gate line off the lines beneath it.
                    path d=(paths[li]) fill="none" stroke="#fff" stroke-width="6" stroke-linejoin="round" {}
                }
                path d=(paths[li]) fill="none" stroke=(st.colour)
                    stroke-width=(if st.gate { "2.6" } else { "1.3" })
                    stroke-opacity=(if st.gate { "1" } else { "0.75" })
                    stroke-dasharray=[(!st.dash.is_empty()).then_some(st.dash)]
                    stroke-linejoin="round" data-rollout=(l.rollout_percent.get()) {}
                @if markers {
                    @for (i, w) in r.windows.iter().enumerate() {
                        @if let Some(d) = w.drift.get(li) {
                            circle cx=(px(mid(i))) cy=(px(y.map(d.ratio))) r=(if st.gate { "3.5" } else { "2.2" }) fill=(st.colour) {
                                title { (format!("{} at {} %: {} ({} of {} requests)", w.start, l.rollout_percent, pct(d.ratio), d.events, w.requests)) }
                            }
                        }
                    }
                }
            }
            @for (i, w) in r.windows.iter().enumerate() {
                @if let Some(d) = gate.and_then(|g| w.drift.get(g)) {
                    @if matches!(view::status(r, d.events, w.requests), WindowStatus::Breach | WindowStatus::Rollback) {
                        circle.breach-marker cx=(px(mid(i))) cy=(px(y.map(d.ratio))) r="6" fill="none"
                            stroke=(ROLLBACK_COLOUR) stroke-width="2" {}
                    }
                }
            }
            // Reference lines and their labels last: never under a data line.
            (limit_lines(&f, &y, r))
        }
        ul.legend {
            @for (li, l) in r.levels.iter().enumerate() {
                @let st = styles[li];
                li { (swatch(st.colour, st.dash, if st.gate { 3.0 } else { 2.0 }))
                    @if st.gate { strong { (l.rollout_percent) " % (gate)" } } @else { (l.rollout_percent) " %" } }
            }
            li { (swatch(DRIFT_MAX_COLOUR, "6 4", 2.0)) "drift max " (pct(r.settings.drift_max)) }
            li { (swatch(ROLLBACK_COLOUR, "6 4", 2.0)) "rollback line " (pct(view::rollback_line(r))) }
            li { i.box style=(format!("background:{ROLLBACK_COLOUR};opacity:.25")) {} "window breached at the gate level" }
            @if !too_few.is_empty() {
                li { i.box style="background:#8c959f;opacity:.3" {}
                    "fewer than " (r.settings.min_requests) " requests: never breaches" }
            }
        }
    }
}

/// The d attribute of a step curve over whole percents.
fn step_path(x: &Linear, y: &Linear, curve: &[f64]) -> String {
    let mut d = format!("M{} {}", px(x.map(0.0)), px(y.map(curve[0])));
    for (p, v) in curve.iter().enumerate().skip(1) {
        d.push_str(&format!(" H{} V{}", px(x.map(p as f64)), px(y.map(*v))));
    }
    d
}

/// Chart 2: the what-if curve, worst window ratio against rollout level, over the
/// windows that count for the gate (so it crosses drift max at the max safe level);
/// with `--min-requests` above 1, a faint curve over all windows for reference.
pub(super) fn chart_whatif(r: &Report) -> Markup {
    let f = Frame {
        w: 960.0,
        h: 320.0,
        left: 70.0,
        right: 18.0,
        top: 22.0,
        bottom: 46.0,
    };
    let counted = view::whatif_curve(r, view::Windows::Counted);
    let all = view::whatif_curve(r, view::Windows::All);
    let min = r.settings.min_requests;
    let show_all = min > 1 && all != counted;
    let shown: &[f64] = if show_all { &all } else { &counted };
    let max = shown.iter().copied().fold(view::rollback_line(r), f64::max);
    let ticks = nice_ticks(max * 1.05, 5);
    let y = f.y(*ticks.last().unwrap_or(&1.0));
    let x = f.x(0.0, 100.0);
    let safe = f64::from(r.gate.max_safe_rollout_percent);
    let gate = f64::from(r.gate.rollout_percent.get());
    html! {
        svg.chart #chart-whatif viewBox=(f.view_box()) role="img"
            aria-label="Worst window drift ratio against rollout level" {
            @if safe < 100.0 && r.records.evaluated > 0 {
                rect x=(px(x.map(safe))) y=(px(f.top)) width=(px(x.map(100.0) - x.map(safe)))
                    height=(px(f.h - f.bottom - f.top)) fill=(ROLLBACK_COLOUR) fill-opacity="0.07" {
                    title { "a window breaches above " (r.gate.max_safe_rollout_percent) " %" }
                }
            }
            (ratio_axis(&f, &y, &ticks, "worst window drift ratio"))
            @for t in (0..=100).step_by(10) {
                @let tx = x.map(f64::from(t));
                @let label = format!("{t} %");
                line.axis x1=(px(tx)) x2=(px(tx)) y1=(px(f.h - f.bottom)) y2=(px(f.h - f.bottom + 5.0)) {}
                text x=(px(tx)) y=(px(f.h - f.bottom + 18.0))
                    text-anchor=(tick_anchor(tx, label.chars().count(), 0.0, f.w)) { (label) }
            }
            text x=(px((f.left + f.w - f.right) / 2.0)) y=(px(f.h - 6.0)) text-anchor="middle" class="muted" { "rollout level (share of requests enforced)" }
            @if show_all {
                path #whatif-all d=(step_path(&x, &y, &all)) fill="none" stroke="#8c959f" stroke-width="1.3"
                    stroke-dasharray="2 3" {
                    title { "worst of all windows, including those under " (min) " requests (they never breach)" }
                }
            }
            path #whatif-counted d=(step_path(&x, &y, &counted)) fill="none" stroke=(WHATIF_COLOUR) stroke-width="2.2" {}
            @for (li, l) in r.levels.iter().enumerate() {
                @let m = view::max_counted_ratio(r, li);
                circle cx=(px(x.map(f64::from(l.rollout_percent.get())))) cy=(px(y.map(m.unwrap_or(0.0))))
                    r="4.5" fill=(if l.breached_windows > 0 { ROLLBACK_COLOUR } else { "#1a7f37" })
                    data-rollout=(l.rollout_percent.get())
                    data-max-counted-window-ratio=[m.map(num)]
                    data-max-window-ratio=(num(l.max_window_ratio)) {
                    title {
                        (l.rollout_percent) " %: worst counted window " (m.map_or_else(|| "–".to_string(), pct))
                        ", " (l.breached_windows) " breached window(s)"
                        @if min > 1 { "; worst of all windows " (pct(l.max_window_ratio)) }
                    }
                }
            }
            // Reference lines and labels last: never under the curve.
            (limit_lines(&f, &y, r))
            line #whatif-max-safe x1=(px(x.map(safe))) x2=(px(x.map(safe))) y1=(px(f.top)) y2=(px(f.h - f.bottom))
                stroke="#1a7f37" stroke-width="2" stroke-dasharray="4 3" data-value=(r.gate.max_safe_rollout_percent) {}
            text x=(px(x.map(safe) + if safe > 80.0 { -4.0 } else { 4.0 })) y=(px(f.top + 10.0))
                text-anchor=(if safe > 80.0 { "end" } else { "start" }) class="halo" style="fill:#1a7f37" {
                "max safe " (r.gate.max_safe_rollout_percent) " %"
            }
            line x1=(px(x.map(gate))) x2=(px(x.map(gate))) y1=(px(f.top)) y2=(px(f.h - f.bottom))
                stroke="#59636e" stroke-width="1" stroke-dasharray="2 3" {}
            text x=(px(x.map(gate) + if gate > 80.0 { -4.0 } else { 4.0 })) y=(px(f.top + 26.0))
                text-anchor=(if gate > 80.0 { "end" } else { "start" }) class="muted halo" { "gate " (r.gate.rollout_percent) " %" }
        }
        ul.legend {
            li { (swatch(WHATIF_COLOUR, "", 2.5))
                @if min > 1 { "worst window with at least " (min) " requests, at each whole percent" }
                @else { "worst window at each whole percent" } }
            @if show_all {
                li { (swatch("#8c959f", "2 3", 2.0)) "worst of all windows, including those under " (min) " requests (never breach)" }
            }
            li { i.box style="background:#1a7f37;width:11px;border-radius:6px" {} "reported level, no breach" }
            li { i.box style=(format!("background:{ROLLBACK_COLOUR};width:11px;border-radius:6px")) {} "reported level, breached" }
            li { (swatch("#1a7f37", "4 3", 2.0)) "max safe rollout" }
        }
    }
}

/// Chart 3: verdict mix of the shadow and the enforced path.
pub(super) fn chart_verdicts(r: &Report) -> Markup {
    let f = Frame {
        w: 960.0,
        h: 120.0,
        left: 190.0,
        right: 18.0,
        top: 10.0,
        bottom: 10.0,
    };
    let colours = [
        ("ok", "#1a7f37"),
        ("warn", "#bf8700"),
        ("fail", ROLLBACK_COLOUR),
    ];
    let v = &r.verdicts;
    let rows = [
        (
            "shadow (baseline)",
            "shadow",
            [v.shadow.ok, v.shadow.warn, v.shadow.fail],
        ),
        (
            "enforced (candidate, 100 %)",
            "enforced",
            [v.enforced.ok, v.enforced.warn, v.enforced.fail],
        ),
    ];
    let total = r.records.evaluated.max(1);
    let x = f.x(0.0, total as f64);
    html! {
        svg.chart #chart-verdicts viewBox=(f.view_box()) role="img" aria-label="Verdict mix, shadow against enforced" {
            @for (ri, (label, key, counts)) in rows.iter().enumerate() {
                @let top = f.top + ri as f64 * 52.0;
                text x=(px(f.left - 8.0)) y=(px(top + 26.0)) text-anchor="end" { (label) }
                @for (ci, n) in counts.iter().enumerate() {
                    @let (name, c) = colours[ci];
                    @let before: u64 = counts[..ci].iter().sum();
                    @let x0 = x.map(before as f64);
                    @let wdt = x.map((before + n) as f64) - x0;
                    @if *n > 0 {
                        rect x=(px(x0)) y=(px(top + 8.0)) width=(px(wdt)) height="30" fill=(c)
                            data-path=(key) data-verdict=(name) data-count=(n) {
                            title { (format!("{label}: {name} {n} ({})", pct(ratio(*n, r.records.evaluated)))) }
                        }
                        @if wdt > 70.0 {
                            text x=(px(x0 + wdt / 2.0)) y=(px(top + 28.0)) text-anchor="middle" style="fill:#fff;font-weight:600" {
                                (name) " " (n)
                            }
                        }
                    }
                }
            }
        }
        ul.legend {
            @for (name, c) in colours {
                li { i.box style=(format!("background:{c}")) {}
                    (name) ": shadow " (match name { "ok" => v.shadow.ok, "warn" => v.shadow.warn, _ => v.shadow.fail })
                    ", enforced " (match name { "ok" => v.enforced.ok, "warn" => v.enforced.warn, _ => v.enforced.fail }) }
            }
        }
    }
}

/// Longest bar label shown in full, in characters.
const LABEL_CHARS: usize = 28;
/// Width of one monospace label character in chart units (13 px type).
const CHAR_WIDTH: f64 = 8.0;

/// A horizontal bar chart of counts (chart 4).
pub(super) fn bars(
    id: &str,
    label: &str,
    items: &[(String, u64)],
    total: u64,
    colour: &str,
) -> Markup {
    // The labels are monospace (13 px, about 8 units a character): the left margin
    // grows with the longest name up to LABEL_CHARS, and longer names are shortened
    // with an ellipsis (the full name in the tooltip), so none is clipped.
    let longest = items
        .iter()
        .map(|(n, _)| n.chars().count().min(LABEL_CHARS))
        .max()
        .unwrap_or(0);
    let f = Frame {
        w: 470.0,
        h: 20.0 + 26.0 * items.len().max(1) as f64,
        left: (14.0 + CHAR_WIDTH * longest as f64).max(60.0),
        right: 90.0,
        top: 10.0,
        bottom: 10.0,
    };
    let max = items.iter().map(|i| i.1).max().unwrap_or(1).max(1);
    let x = f.x(0.0, max as f64);
    html! {
        svg.chart id=(id) viewBox=(f.view_box()) role="img" aria-label=(label) {
            @if items.is_empty() {
                text x=(px(f.left)) y="28" class="muted" { "no drift" }
            }
            @for (i, (name, n)) in items.iter().enumerate() {
                @let top = f.top + i as f64 * 26.0;
                @let short: String = if name.chars().count() > LABEL_CHARS {
                    name.chars().take(LABEL_CHARS - 1).chain(std::iter::once('…')).collect()
                } else { name.clone() };
                text x=(px(f.left - 6.0)) y=(px(top + 16.0)) text-anchor="end" class="mono" {
                    title { (name) } (short)
                }
                rect x=(px(f.left)) y=(px(top + 3.0)) width=(px((x.map(*n as f64) - f.left).max(1.0))) height="18"
                    fill=(colour) data-name=(name) data-count=(n) {}
                text x=(px(x.map(*n as f64) + 6.0)) y=(px(top + 16.0)) {
                    (n) " (" (pct(ratio(*n, total))) ")"
                }
            }
        }
    }
}

/// The plan's staircase colour (the simulated rollout level).
const PLAN_COLOUR: &str = "#6e40c9";
/// Confidence bands (Wilson lower..upper).
const BAND_COLOUR: &str = "#3e6fb0";

/// The rollout plan chart: the drift ratio of each window the first run judged, at
/// its step's level (with its Wilson band when confidence is on), the windows that
/// breached, the rollback marker, and the simulated rollout level as a staircase on
/// the right-hand axis.
pub(super) fn chart_plan(r: &Report) -> Markup {
    let series = &r.series;
    let judged = view::plan_windows(r);
    let run = r.plan.as_ref().and_then(|p| p.runs.first());
    let (Some(run), Some(first), Some(last)) = (run, series.first(), series.last()) else {
        return html! { p.note { "No run: nothing to plot." } };
    };
    let f = Frame {
        w: 960.0,
        h: 320.0,
        left: 70.0,
        right: 62.0,
        top: 22.0,
        bottom: 46.0,
    };
    let (t0, t1) = (first.start_ms, last.end_ms);
    let x = f.x(t0 as f64, t1 as f64);
    let max = judged
        .iter()
        .map(|p| {
            p.judgement
                .bounds
                .map_or(p.judgement.ratio, |b| b.1.max(p.judgement.ratio))
        })
        .fold(view::rollback_line(r), f64::max);
    let ticks = nice_ticks(max * 1.05, 5);
    let y = f.y(*ticks.last().unwrap_or(&1.0));
    let level_y = f.y(100.0);
    let (step, tt) = time_ticks(t0, t1, 8);
    let multi_day = day(t0) != day(t1 - 1);
    // The staircase: the first run's level from its start, held across windows
    // without records, to the end of the traffic.
    let mut stairs = String::new();
    let mut current: Option<u8> = None;
    for s in series {
        let Some(l) = s.plan_rollout_percent else {
            continue;
        };
        let (sx, ly) = (px(x.map(s.start_ms as f64)), px(level_y.map(f64::from(l))));
        match current {
            None => stairs.push_str(&format!("M{sx} {ly}")),
            Some(c) if c != l => stairs.push_str(&format!(" H{sx} V{ly}")),
            Some(_) => {}
        }
        current = Some(l);
    }
    stairs.push_str(&format!(" H{}", px(x.map(t1 as f64))));
    let rollback_at = r
        .plan_result
        .as_ref()
        .and_then(|p| p.runs.first())
        .filter(|_| run.outcome == "rolled_back")
        .and_then(|x| x.at_ms);
    let title = if multi_day {
        "window (UTC)".to_string()
    } else {
        format!("window (UTC, {})", day(t0))
    };
    let mid = |i: usize| x.map((series[i].start_ms as f64 + series[i].end_ms as f64) / 2.0);
    let width = |i: usize| x.map(series[i].end_ms as f64) - x.map(series[i].start_ms as f64);
    // Beyond MAX_MARKERS judged windows: an area for the bands, a line for the ratios
    // and points only where a window breached.
    let many = judged.len() > MAX_MARKERS;
    let judged_line: String = judged
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!(
                "{}{} {} ",
                if i == 0 { "M" } else { "L" },
                px(mid(p.index)),
                px(y.map(p.judgement.ratio))
            )
        })
        .collect();
    html! {
        svg.chart #chart-plan viewBox=(f.view_box()) role="img"
            aria-label="Simulated rollout level of the plan's first run over time, with the drift it judged" {
            @for p in &judged {
                @if p.judgement.breach {
                    @let s = &series[p.index];
                    rect.plan-breach x=(px(x.map(s.start_ms as f64))) y=(px(f.top))
                        width=(px(width(p.index).max(2.0))) height=(px(f.h - f.bottom - f.top))
                        fill=(ROLLBACK_COLOUR) fill-opacity="0.12" data-start=(r.windows[p.index].start) {
                        title { (format!("{}: breached at {} % ({} of {} requests)", r.windows[p.index].start,
                            p.level, p.judgement.events, s.requests)) }
                    }
                }
            }
            (ratio_axis(&f, &y, &ticks, "drift ratio at the step's level"))
            @for l in [0u8, 25, 50, 75, 100] {
                text x=(px(f.w - f.right + 6.0)) y=(px(level_y.map(f64::from(l)) + 4.0)) style=(format!("fill:{PLAN_COLOUR}")) { (l) " %" }
            }
            @for t in &tt {
                @let tx = x.map(*t as f64);
                @let label = time_label(*t, step, multi_day);
                line.axis x1=(px(tx)) x2=(px(tx)) y1=(px(f.h - f.bottom)) y2=(px(f.h - f.bottom + 5.0)) {}
                text x=(px(tx)) y=(px(f.h - f.bottom + 18.0))
                    text-anchor=(tick_anchor(tx, label.chars().count(), 0.0, f.w)) { (label) }
            }
            text x=(px((f.left + f.w - f.right) / 2.0)) y=(px(f.h - 6.0)) text-anchor="middle" class="muted" { (title) }
            @if many {
                (band_area(&judged.iter().filter_map(|p| p.judgement.bounds.map(|(lo, hi)|
                    (mid(p.index), y.map(lo), y.map(hi)))).collect::<Vec<_>>(), 0.22))
                path d=(judged_line) fill="none" stroke=(GATE_COLOUR) stroke-width="1.2" {}
            }
            @for p in judged.iter().filter(|_| !many) {
                @if let Some((lo, hi)) = p.judgement.bounds {
                    @let bw = (width(p.index) * 0.6).max(2.0);
                    rect.band x=(px(mid(p.index) - bw / 2.0)) y=(px(y.map(hi))) width=(px(bw))
                        height=(px((y.map(lo) - y.map(hi)).max(1.0))) fill=(BAND_COLOUR) fill-opacity="0.22"
                        data-start=(r.windows[p.index].start) data-lower=(num(lo)) data-upper=(num(hi)) {
                        title { (format!("{}: {} at {} %, bounds {} – {}", r.windows[p.index].start,
                            pct(p.judgement.ratio), p.level, pct(lo), pct(hi))) }
                    }
                }
            }
            @for p in judged.iter().filter(|p| !many || p.judgement.breach) {
                circle cx=(px(mid(p.index))) cy=(px(y.map(p.judgement.ratio))) r="3.5"
                    fill=(if p.judgement.breach { ROLLBACK_COLOUR } else { GATE_COLOUR })
                    data-start=(r.windows[p.index].start) data-level=(p.level)
                    data-events=(p.judgement.events) data-breach=(p.judgement.breach) {
                    title { (format!("{} at {} %: {} ({} of {} requests){}", r.windows[p.index].start, p.level,
                        pct(p.judgement.ratio), p.judgement.events, series[p.index].requests,
                        if p.judgement.breach { ", breached" } else { "" })) }
                }
            }
            (limit_lines(&f, &y, r))
            path #plan-staircase d=(stairs) fill="none" stroke=(PLAN_COLOUR) stroke-width="2.4" stroke-linejoin="round" {}
            @if let Some(at) = rollback_at {
                @let ax = x.map(at as f64);
                @let right = ax > f.w - f.right - 180.0;
                line #plan-rollback x1=(px(ax)) x2=(px(ax)) y1=(px(f.top)) y2=(px(f.h - f.bottom))
                    stroke=(ROLLBACK_COLOUR) stroke-width="2.2" data-at=(run.at.clone().unwrap_or_default()) {}
                text x=(px(if right { ax - 4.0 } else { ax + 4.0 })) y=(px(f.top + 12.0))
                    text-anchor=(if right { "end" } else { "start" }) class="halo" style=(format!("fill:{ROLLBACK_COLOUR}")) {
                    "rolled back at step " (run.step.unwrap_or(0)) " (" (run.rollout_percent.unwrap_or(0)) " %)"
                }
            }
        }
        ul.legend {
            li { (swatch(PLAN_COLOUR, "", 2.5)) "simulated rollout level (right axis), first run from " (run.start) }
            li { i.box style=(format!("background:{GATE_COLOUR};width:11px;border-radius:6px")) {} "drift ratio of a judged window at its step's level" }
            @if judged.iter().any(|p| p.judgement.bounds.is_some()) {
                li { i.box style=(format!("background:{BAND_COLOUR};opacity:.35")) {} "Wilson bounds at confidence " (r.gate.confidence.unwrap_or(0.0)) }
            }
            li { i.box style=(format!("background:{ROLLBACK_COLOUR};opacity:.25")) {} "window breached (counts toward the failure limit)" }
            @if rollback_at.is_some() { li { (swatch(ROLLBACK_COLOUR, "", 2.2)) "rollback" } }
        }
    }
}

/// One shaded area between the lower and upper bounds through `(x, y_lower, y_upper)`
/// points (chart units), for charts with more windows than bars can show.
fn band_area(pts: &[(f64, f64, f64)], opacity: f64) -> Markup {
    if pts.is_empty() {
        return html! {};
    }
    let mut d = String::new();
    for (i, (x, _, hi)) in pts.iter().enumerate() {
        d.push_str(&format!(
            "{}{} {} ",
            if i == 0 { "M" } else { "L" },
            px(*x),
            px(*hi)
        ));
    }
    for (x, lo, _) in pts.iter().rev() {
        d.push_str(&format!("L{} {} ", px(*x), px(*lo)));
    }
    d.push('Z');
    html! {
        path.band-area d=(d) fill=(BAND_COLOUR) fill-opacity=(opacity) stroke="none" {}
    }
}

/// Wilson bands of the gate level's windows, for the drift-over-time chart.
fn gate_bands(r: &Report, x: &Linear, y: &Linear) -> Markup {
    let gate = view::gate_pos(r);
    if r.windows.len() > MAX_MARKERS {
        // Too many windows for one bar each: one shaded area between the bounds.
        let pts: Vec<(f64, f64, f64)> = r
            .windows
            .iter()
            .zip(&r.series)
            .filter_map(|(w, s)| {
                let d = gate.and_then(|g| w.drift.get(g))?;
                let mid = x.map((s.start_ms as f64 + s.end_ms as f64) / 2.0);
                Some((mid, y.map(d.lower?), y.map(d.upper?.min(y.d1))))
            })
            .collect();
        return band_area(&pts, 0.18);
    }
    html! {
        @for (w, s) in r.windows.iter().zip(&r.series) {
            @if let Some(d) = gate.and_then(|g| w.drift.get(g)) {
                @if let (Some(lo), Some(hi)) = (d.lower, d.upper) {
                    @let (a, b) = (x.map(s.start_ms as f64), x.map(s.end_ms as f64));
                    // Bands of tiny windows reach far above the lines: clip them to the axis.
                    @let hi = hi.min(y.d1);
                    @let bw = ((b - a) * 0.6).max(2.0);
                    rect.band x=(px((a + b) / 2.0 - bw / 2.0)) y=(px(y.map(hi))) width=(px(bw))
                        height=(px((y.map(lo) - y.map(hi)).max(1.0))) fill=(BAND_COLOUR) fill-opacity="0.18"
                        data-start=(w.start) data-lower=(num(lo)) data-upper=(num(hi)) {
                        title { (format!("{} at {} %: bounds {} – {}", w.start, r.gate.rollout_percent, pct(lo), pct(hi))) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::view;

    #[test]
    fn every_level_has_its_own_line_style_and_the_gate_its_own_colour() {
        let mut r = view::sample::report();
        // 50 levels (a replay reports at most 101): the gate (index 2) and 49 others.
        let extra = r.levels[3].clone();
        r.levels.resize(50, extra);
        let st = level_styles(&r);
        assert_eq!(st.iter().filter(|s| s.gate).count(), 1);
        assert!(st[2].gate && st[2].colour == GATE_COLOUR);
        for (i, a) in st.iter().enumerate() {
            assert!(a.gate || a.colour != GATE_COLOUR);
            for b in &st[i + 1..] {
                assert!((a.colour, a.dash) != (b.colour, b.dash), "{a:?} twice");
            }
        }
        // The first fifteen other levels are solid, in fifteen colours.
        assert!(
            st.iter()
                .filter(|s| !s.gate)
                .take(15)
                .all(|s| s.dash.is_empty())
        );
    }
}
