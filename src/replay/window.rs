//! Windows (SPEC §5): the one place that says how a timestamp maps to its window,
//! where a window ends, and whether a window can be written as RFC 3339.
//! `window_start = floor(ts_ms / W_ms) × W_ms`, UTC, epoch-aligned.

use std::fmt;

use crate::policy::time::{MAX_TS_MS, format_rfc3339_ms, format_span, parse_span_ms};

/// 0000-01-01T00:00:00Z, the earliest instant RFC 3339 can write.
pub const RFC3339_MIN_MS: i64 = -62_167_219_200_000;

/// The longest window accepted: a year. Longer ones would put the window of most
/// timestamps outside the years RFC 3339 can write, so every record would be `bad_ts`.
pub const MAX_WINDOW_MS: i64 = 366 * 86_400_000;

/// A window length in milliseconds, 1 ms ..= [`MAX_WINDOW_MS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowLen(i64);

impl WindowLen {
    /// The SPEC default, 5 minutes.
    pub const DEFAULT: WindowLen = WindowLen(300_000);

    /// A length in milliseconds, if it is in range.
    pub fn from_ms(ms: i64) -> Option<WindowLen> {
        (1..=MAX_WINDOW_MS).contains(&ms).then_some(WindowLen(ms))
    }

    /// Parses `30s`, `5m`, `1h`, `1d`: a whole number with unit ms, s, m, h or d.
    pub fn parse(s: &str) -> Result<WindowLen, String> {
        let ms = parse_span_ms(s).ok_or_else(|| {
            format!(
                "'{s}': expected a length such as 30s, 1m, 5m, 15m, 1h (a whole number > 0 \
                 with unit ms, s, m, h or d)"
            )
        })?;
        WindowLen::from_ms(ms)
            .ok_or_else(|| format!("'{s}': a window is at most 366d (allowed range 1ms..=366d)"))
    }

    /// Milliseconds.
    pub fn ms(self) -> i64 {
        self.0
    }

    /// The window that holds `ts_ms`.
    pub fn of(self, ts_ms: i64) -> WindowStart {
        WindowStart(ts_ms.div_euclid(self.0) * self.0)
    }

    /// Whether `span_ms` is a whole, positive multiple of this length.
    pub fn divides(self, span_ms: i64) -> bool {
        span_ms > 0 && span_ms % self.0 == 0
    }
}

impl Default for WindowLen {
    fn default() -> Self {
        WindowLen::DEFAULT
    }
}

impl fmt::Display for WindowLen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_span(self.0))
    }
}

/// The start of a window, epoch milliseconds (a multiple of its length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowStart(pub i64);

impl WindowStart {
    /// Epoch milliseconds.
    pub fn ms(self) -> i64 {
        self.0
    }

    /// The window's end (exclusive), epoch milliseconds.
    pub fn end(self, len: WindowLen) -> i64 {
        self.0.saturating_add(len.0)
    }

    /// Whether `[start, end)` can be written as RFC 3339: it starts at or after
    /// 0000-01-01 and ends by 9999-12-31T23:59:59.999Z.
    pub fn fits(self, len: WindowLen) -> bool {
        self.0 >= RFC3339_MIN_MS && self.0.checked_add(len.0).is_some_and(|e| e <= MAX_TS_MS)
    }

    /// RFC 3339 UTC with `Z` (milliseconds only when non-zero).
    pub fn rfc3339(self) -> String {
        format_rfc3339_ms(self.0)
    }

    /// The window end as RFC 3339.
    pub fn end_rfc3339(self, len: WindowLen) -> String {
        format_rfc3339_ms(self.end(len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floors_towards_minus_infinity() {
        let w = WindowLen::parse("5m").unwrap();
        assert_eq!(w.of(0), WindowStart(0));
        assert_eq!(w.of(299_999), WindowStart(0));
        assert_eq!(w.of(300_000), WindowStart(300_000));
        assert_eq!(w.of(-1), WindowStart(-300_000));
        assert_eq!(w.of(-300_000), WindowStart(-300_000));
        assert_eq!(w.of(1).end(w), 300_000);
        assert_eq!(WindowStart(0).rfc3339(), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn range_is_a_usage_error_that_states_it() {
        assert!(WindowLen::parse("366d").is_ok());
        let e = WindowLen::parse("3000000d").unwrap_err();
        assert!(e.contains("1ms..=366d"), "{e}");
        assert!(WindowLen::parse("0s").is_err());
        assert!(WindowLen::parse("5 minutes").is_err());
    }

    #[test]
    fn fits_rfc3339_years() {
        let d = WindowLen::parse("1d").unwrap();
        assert!(WindowStart(RFC3339_MIN_MS).fits(d));
        assert!(!WindowStart(RFC3339_MIN_MS - 86_400_000).fits(d));
        // Ends are exclusive: the last day's window would end at 10000-01-01.
        assert!(!d.of(MAX_TS_MS).fits(d));
        assert!(d.of(MAX_TS_MS - 86_400_000).fits(d));
    }
}
