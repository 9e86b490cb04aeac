//! Axis arithmetic for the inline SVG charts of report.html: a linear scale, "nice"
//! value ticks and UTC time ticks. Pure functions; the markup itself lives in
//! `html.rs` (maud escapes every text there).

use chrono::{TimeZone, Utc};

/// Maps a data interval onto a pixel interval.
#[derive(Debug, Clone, Copy)]
pub struct Linear {
    /// Data start.
    pub d0: f64,
    /// Data end.
    pub d1: f64,
    /// Pixel at `d0`.
    pub r0: f64,
    /// Pixel at `d1`.
    pub r1: f64,
}

impl Linear {
    /// Pixel of `v`; a zero-width domain maps everything to the middle.
    pub fn map(&self, v: f64) -> f64 {
        if self.d1 == self.d0 {
            return (self.r0 + self.r1) / 2.0;
        }
        self.r0 + (v - self.d0) / (self.d1 - self.d0) * (self.r1 - self.r0)
    }
}

/// Ticks from 0 to a round top ≥ `max`, about `n` of them, steps of 1, 2, 2.5 or 5
/// × 10^k. `max ≤ 0` (or not finite) gives the ticks of 0..1 × 10^-2.
pub fn nice_ticks(max: f64, n: usize) -> Vec<f64> {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        0.01
    };
    let raw = max / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag);
    let count = (max / step - 1e-9).ceil().max(1.0) as usize;
    (0..=count).map(|i| i as f64 * step).collect()
}

/// Decimals needed to print the ticks `vs` (already in display units) exactly.
pub fn decimals(vs: &[f64]) -> usize {
    (0..=6)
        .find(|&d| {
            let f = 10f64.powi(d as i32);
            vs.iter().all(|v| ((v * f).round() - v * f).abs() < 1e-6)
        })
        .unwrap_or(6)
}

/// Time steps tried for an axis, milliseconds.
const STEPS_MS: [i64; 21] = [
    1_000,
    5_000,
    10_000,
    15_000,
    30_000,
    60_000,
    120_000,
    300_000,
    600_000,
    900_000,
    1_800_000,
    3_600_000,
    7_200_000,
    10_800_000,
    21_600_000,
    43_200_000,
    86_400_000,
    172_800_000,
    604_800_000,
    1_209_600_000,
    2_592_000_000,
];

/// UTC-aligned ticks inside `[start, end]`, at most `max_ticks` of them (at least one
/// step wider than the span gives none, so callers label the ends). Returns the step.
pub fn time_ticks(start: i64, end: i64, max_ticks: usize) -> (i64, Vec<i64>) {
    let span = end.saturating_sub(start).max(1);
    let step = STEPS_MS
        .iter()
        .copied()
        .find(|s| span / s < max_ticks.max(1) as i64)
        .unwrap_or_else(|| {
            let days = span / 86_400_000 / max_ticks.max(1) as i64 + 1;
            days * 86_400_000
        });
    let first = start.div_euclid(step) * step;
    let first = if first < start { first + step } else { first };
    let ticks = std::iter::successors(Some(first), |t| t.checked_add(step))
        .take_while(|t| *t <= end)
        .collect();
    (step, ticks)
}

/// Label of a time tick: `HH:MM` (`HH:MM:SS` below a minute step) within one UTC day,
/// `MM-DD HH:MM` across days, `YYYY-MM-DD` for steps of a day or more.
pub fn time_label(ms: i64, step: i64, multi_day: bool) -> String {
    let Some(t) = Utc.timestamp_millis_opt(ms).single() else {
        return format!("{ms}ms");
    };
    let fmt = if step >= 86_400_000 {
        "%Y-%m-%d"
    } else if step < 60_000 {
        "%H:%M:%S"
    } else if multi_day {
        "%m-%d %H:%M"
    } else {
        "%H:%M"
    };
    t.format(fmt).to_string()
}

/// Rough width of one character of axis text (12 px sans-serif digits), in pixels;
/// generous, so that an estimate errs towards keeping a label inside.
const CHAR_PX: f64 = 8.0;

/// `text-anchor` for a tick label of `chars` characters at `x` that must stay inside
/// `lo..=hi`: centred on its tick where it fits, else ending (or starting) at the
/// tick, so that the first and last labels of an axis are never clipped.
pub fn tick_anchor(x: f64, chars: usize, lo: f64, hi: f64) -> &'static str {
    let half = chars as f64 * CHAR_PX / 2.0;
    if x + half > hi {
        "end"
    } else if x - half < lo {
        "start"
    } else {
        "middle"
    }
}

/// The UTC day `YYYY-MM-DD` of `ms`.
pub fn day(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map_or_else(String::new, |t| t.format("%Y-%m-%d").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_maps_ends_and_middle() {
        let s = Linear {
            d0: 0.0,
            d1: 0.2,
            r0: 300.0,
            r1: 20.0,
        };
        assert_eq!(s.map(0.0), 300.0);
        assert_eq!(s.map(0.2), 20.0);
        assert_eq!(s.map(0.1), 160.0);
        let flat = Linear { d1: 0.0, ..s };
        assert_eq!(flat.map(5.0), 160.0);
    }

    #[test]
    fn nice_ticks_cover_the_maximum_with_round_steps() {
        assert_eq!(
            nice_ticks(1.0, 5),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        let t = nice_ticks(0.2222, 5);
        assert_eq!(t.len(), 6);
        assert!(
            (t[1] - 0.05).abs() < 1e-12 && (t[5] - 0.25).abs() < 1e-12,
            "{t:?}"
        );
        let t = nice_ticks(0.0105, 5);
        assert!(
            (t[1] - 0.0025).abs() < 1e-12 && *t.last().unwrap() >= 0.0105,
            "{t:?}"
        );
        assert_eq!(nice_ticks(0.0, 5).len(), 6);
        assert_eq!(nice_ticks(f64::NAN, 4), nice_ticks(0.01, 4));
        assert_eq!(
            nice_ticks(100.0, 5),
            vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
        );
    }

    #[test]
    fn decimals_are_the_fewest_that_print_exactly() {
        assert_eq!(decimals(&[0.0, 5.0, 10.0]), 0);
        assert_eq!(decimals(&[0.0, 2.5, 5.0]), 1);
        assert_eq!(decimals(&[0.0, 0.25, 0.5000000000000001]), 2);
    }

    #[test]
    fn tick_labels_stay_inside_the_chart() {
        // "11-05 00:00" (11 characters) at the right end of a 960-wide chart.
        assert_eq!(tick_anchor(942.0, 11, 0.0, 960.0), "end");
        assert_eq!(tick_anchor(480.0, 11, 0.0, 960.0), "middle");
        assert_eq!(tick_anchor(20.0, 11, 0.0, 960.0), "start");
        // "100 %" at the right end of the what-if chart only just does not fit.
        assert_eq!(tick_anchor(942.0, 5, 0.0, 960.0), "end");
        assert_eq!(tick_anchor(846.4, 4, 0.0, 960.0), "middle");
    }

    #[test]
    fn time_ticks_are_utc_aligned_and_bounded() {
        // 08:00..08:20 on 2026-11-05: 5-minute steps, ticks at 08:00, 08:05, ….
        let start = 1_793_865_600_000; // 2026-11-05T08:00:00Z
        let (step, ticks) = time_ticks(start, start + 20 * 60_000, 8);
        assert_eq!(step, 300_000);
        assert_eq!(ticks.len(), 5);
        assert_eq!(time_label(ticks[1], step, false), "08:05");
        assert_eq!(time_label(ticks[1], step, true), "11-05 08:05");
        assert_eq!(day(start), "2026-11-05");
        // Starting off-grid rounds up to the next aligned tick.
        let (_, t) = time_ticks(start + 1, start + 20 * 60_000, 8);
        assert_eq!(t[0], start + 300_000);
        // A week in hourly windows: daily ticks, date labels.
        let (step, t) = time_ticks(start, start + 7 * 86_400_000, 8);
        assert_eq!(step, 86_400_000);
        assert!(t.len() <= 8);
        assert_eq!(time_label(t[0], step, true), "2026-11-06");
        // Years: whole days, still bounded.
        let (step, t) = time_ticks(0, 10 * 365 * 86_400_000, 8);
        assert_eq!(step % 86_400_000, 0);
        assert!(t.len() <= 8, "{}", t.len());
        assert_eq!(time_label(30_500, 1000, false), "00:00:30");
    }
}
