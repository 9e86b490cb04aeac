//! Figures derived from the report model for the human-facing exporters (HTML,
//! Markdown, JUnit), so that the three agree: the gate level's column, how a window
//! fares, the worst windows and the what-if curve over every whole percent.

use super::model::{Report, Window, WindowLevel, ratio};

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

/// Status of `events` drifting records out of `requests`, with the report's settings.
/// Same arithmetic as `model::breaches`.
pub fn status(r: &Report, events: u64, requests: u64) -> WindowStatus {
    let c = &r.config;
    let x = ratio(events, requests);
    if requests < c.min_requests {
        WindowStatus::TooFew
    } else if x > c.rollback_factor * c.drift_max {
        WindowStatus::Rollback
    } else if x > c.drift_max {
        WindowStatus::Breach
    } else {
        WindowStatus::Ok
    }
}

/// The rollback line: rollback_factor × drift_max.
pub fn rollback_line(r: &Report) -> f64 {
    r.config.rollback_factor * r.config.drift_max
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

/// Up to `n` windows with drift at the gate level, worst ratio first, then by start.
pub fn worst_windows(r: &Report, n: usize) -> Vec<(&Window, &WindowLevel)> {
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
    v.truncate(n);
    v
}

/// Smallest whole rollout percent that enforces a record of this bucket.
pub fn enforced_from(bucket: u16) -> u16 {
    bucket / 100 + 1
}

/// Largest window ratio at every whole percent 0..=100 (index = percent), from the
/// per-window bucket counts; equals `levels[].max_window_ratio` at reported levels.
pub fn whatif_curve(r: &Report) -> Vec<f64> {
    let mut worst = vec![0.0f64; 101];
    for s in &r.series {
        let mut cum = 0u64;
        for (p, w) in worst.iter_mut().enumerate().skip(1) {
            cum += u64::from(s.agg.drift_by_pct[p - 1]);
            let x = ratio(cum, s.agg.requests);
            if x > *w {
                *w = x;
            }
        }
    }
    worst
}
