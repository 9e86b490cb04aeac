//! Time values of the IR and the logs: RFC 3339 timestamps, ISO 8601 durations and
//! window lengths, all as integer milliseconds (SPEC §1, §4, §5).
//!
//! Sub-millisecond digits are truncated, never rounded. Timestamps are limited to the
//! years 0001..=9999 so that every window start can be written back as RFC 3339.

use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, TimeZone, Utc};

/// Earliest accepted timestamp: 0001-01-01T00:00:00Z in epoch milliseconds.
pub const MIN_TS_MS: i64 = -62_135_596_800_000;
/// Latest accepted timestamp: 9999-12-31T23:59:59.999Z in epoch milliseconds.
pub const MAX_TS_MS: i64 = 253_402_300_799_999;

/// Parses an RFC 3339 date-time (`2026-11-02T10:04:31.250Z`) to epoch milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    // chrono accepts a space or lower-case `t` as separator; RFC 3339 §5.6 allows `t`
    // and `z` (case-insensitive) but not a space, so refuse the space explicitly.
    if s.as_bytes().get(10) == Some(&b' ') {
        return None;
    }
    if let Some(ms) = zulu_ms(s) {
        return in_range(ms);
    }
    by_chrono(s)
}

/// The shape nearly every log writes, `YYYY-MM-DDTHH:MM:SSZ` or with `.fff`: its
/// digits read in place, the date and time still validated by chrono. `None` for any
/// other text, which chrono's RFC 3339 parser then reads (leap seconds, offsets, other
/// fractions, lower-case letters). Its generic parser was about 400 instructions a
/// record, a tenth of reading one.
fn zulu_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let ms = match b.len() {
        20 => 0,
        24 if b[19] == b'.' => digits(b, 20..23)?,
        _ => return None,
    };
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if b[b.len() - 1] != b'Z' {
        return None;
    }
    let date =
        NaiveDate::from_ymd_opt(digits(b, 0..4)? as i32, digits(b, 5..7)?, digits(b, 8..10)?)?;
    let time = NaiveTime::from_hms_milli_opt(
        digits(b, 11..13)?,
        digits(b, 14..16)?,
        digits(b, 17..19)?,
        ms,
    )?;
    // `from_hms_milli_opt` takes 1000..=1999 ms as a leap second; those have seconds 59
    // only, and `.fff` is at most 999 here.
    Some(date.and_time(time).and_utc().timestamp_millis())
}

/// The ASCII digits `b[r]` as a number (inlined: four calls read one timestamp).
#[inline(always)]
fn digits(b: &[u8], r: std::ops::Range<usize>) -> Option<u32> {
    let mut n = 0u32;
    for &c in &b[r] {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u32::from(d);
    }
    Some(n)
}

/// [`parse_rfc3339_ms`] by chrono's RFC 3339 parser alone.
fn by_chrono(s: &str) -> Option<i64> {
    let dt = DateTime::parse_from_rfc3339(s).ok()?;
    let secs = dt.timestamp();
    let millis = i64::from(dt.timestamp_subsec_millis());
    let ms = secs.checked_mul(1000)?.checked_add(millis)?;
    in_range(ms)
}

/// Parses a timestamp as the expression language reads it: RFC 3339, or `YYYY-MM-DD`
/// meaning 00:00Z of that day.
pub fn parse_timestamp_ms(s: &str) -> Option<i64> {
    if s.len() == 10 {
        // Fixed layout YYYY-MM-DD: read the digits directly (the generic format parser
        // costs more than the rest of a rule); chrono still validates the date.
        let b = s.as_bytes();
        if b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let d =
            NaiveDate::from_ymd_opt(digits(b, 0..4)? as i32, digits(b, 5..7)?, digits(b, 8..10)?)?;
        let ms = d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis();
        return in_range(ms);
    }
    parse_rfc3339_ms(s)
}

fn in_range(ms: i64) -> Option<i64> {
    (MIN_TS_MS..=MAX_TS_MS).contains(&ms).then_some(ms)
}

/// Checks that epoch milliseconds from a log lie in the supported range.
pub fn check_epoch_ms(ms: i64) -> Option<i64> {
    in_range(ms)
}

/// Parses an ISO 8601 duration of the forms `PnW` and `PnDTnHnMnS` (any part optional,
/// at least one present; seconds may carry a fraction). Years and months are refused
/// because their length depends on the calendar.
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    let rest = s.strip_prefix('P')?;
    if rest.is_empty() {
        return None;
    }
    if let Some(weeks) = rest.strip_suffix('W') {
        return number_ms(weeks, 7 * 86_400_000);
    }
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return None,
        None => (rest, None),
    };
    let mut total: i64 = 0;
    if !date.is_empty() {
        let days = date.strip_suffix('D')?;
        total = total.checked_add(number_ms(days, 86_400_000)?)?;
    }
    if let Some(mut t) = time {
        for (unit, scale) in [('H', 3_600_000), ('M', 60_000), ('S', 1000)] {
            if let Some(pos) = t.find(unit) {
                total = total.checked_add(number_ms(&t[..pos], scale)?)?;
                t = &t[pos + 1..];
            }
        }
        if !t.is_empty() {
            return None;
        }
    }
    Some(total)
}

/// `digits[.fraction]` times `scale` milliseconds, truncated to whole milliseconds.
fn number_ms(s: &str, scale: i64) -> Option<i64> {
    let (int, frac) = match s.split_once(['.', ',']) {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = int.parse().ok()?;
    let mut ms = whole.checked_mul(scale)?;
    // Fractional part: exact integer arithmetic on at most 9 digits.
    let frac = &frac[..frac.len().min(9)];
    if !frac.is_empty() {
        let num: i64 = frac.parse().ok()?;
        let den = 10_i64.pow(frac.len() as u32);
        ms = ms.checked_add(num.checked_mul(scale)? / den)?;
    }
    Some(ms)
}

/// Parses a window or interval length such as `500ms`, `30s`, `5m`, `1h` or `1d`.
pub fn parse_span_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().ok()?;
    let scale = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    let ms = n.checked_mul(scale)?;
    (ms > 0).then_some(ms)
}

/// Formats epoch milliseconds as RFC 3339 UTC with `Z`; milliseconds only when non-zero.
pub fn format_rfc3339_ms(ms: i64) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(dt) if ms.rem_euclid(1000) == 0 => dt.to_rfc3339_opts(SecondsFormat::Secs, true),
        Some(dt) => dt.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => format!("{ms}ms"),
    }
}

/// Formats a span in milliseconds the way `parse_span_ms` reads it (`5m`, `90s`).
pub fn format_span(ms: i64) -> String {
    for (unit, scale) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms % scale == 0 {
            return format!("{}{unit}", ms / scale);
        }
    }
    format!("{ms}ms")
}

/// Current wall-clock time in epoch milliseconds.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_truncates_below_millisecond() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00.0019Z"), Some(1));
        assert_eq!(
            parse_rfc3339_ms("2026-11-05T08:10:00Z"),
            Some(1_793_866_200_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-11-05T09:10:00+01:00"),
            Some(1_793_866_200_000)
        );
        assert_eq!(parse_rfc3339_ms("1969-12-31T23:59:59.999Z"), Some(-1));
        assert_eq!(parse_rfc3339_ms("2026-11-05 08:10:00Z"), None);
        assert_eq!(parse_rfc3339_ms("not a time"), None);
        assert_eq!(parse_rfc3339_ms("2026-11-05"), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        /// The in-place reading of `…Z` timestamps agrees with chrono's parser on texts
        /// of that shape and near it: out-of-range fields, leap seconds, other
        /// separators, lower case, offsets and other fraction lengths.
        #[test]
        fn zulu_shape_reads_as_chrono_does(
            y in 0u32..10_000, mo in 0u32..14, d in 0u32..33, h in 0u32..26, mi in 0u32..61,
            sec in 0u32..62, frac in proptest::option::of("[0-9]{0,5}"),
            t in proptest::sample::select(vec!["T", "t", " ", "x"]),
            z in proptest::sample::select(vec!["Z", "z", "+00:00", "+01:30", "-00:00", ""]),
        ) {
            let f = frac.map(|f| format!(".{f}")).unwrap_or_default();
            let s = format!("{y:04}-{mo:02}-{d:02}{t}{h:02}:{mi:02}:{sec:02}{f}{z}");
            let want = if s.as_bytes()[10] == b' ' { None } else { by_chrono(&s) };
            proptest::prop_assert_eq!(parse_rfc3339_ms(&s), want, "{}", s);
        }
    }

    #[test]
    fn zulu_shape_edges() {
        // Leap seconds and out-of-range fields are chrono's to judge.
        for s in [
            "2016-12-31T23:59:60Z",
            "2016-12-31T23:59:60.500Z",
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00.000Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00.00Z",
            "9999-12-31T23:59:59.999Z",
            "0000-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339_ms(s), by_chrono(s), "{s}");
        }
        assert_eq!(
            parse_rfc3339_ms("2026-11-02T00:00:00.093Z"),
            Some(1_793_577_600_093)
        );
        assert_eq!(zulu_ms("2016-12-31T23:59:60Z"), None);
    }

    #[test]
    fn date_only_is_midnight_utc() {
        assert_eq!(parse_timestamp_ms("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_timestamp_ms("2026-02-30"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("P365D"), Some(365 * 86_400_000));
        assert_eq!(parse_duration_ms("P2W"), Some(14 * 86_400_000));
        assert_eq!(parse_duration_ms("PT1H30M"), Some(5_400_000));
        assert_eq!(parse_duration_ms("P1DT0.5S"), Some(86_400_500));
        assert_eq!(parse_duration_ms("PT0.0009S"), Some(0));
        for bad in [
            "P", "PT", "P1Y", "P1M", "P1DT", "PT1X", "P-1D", "1D", "PT1S1H",
        ] {
            assert_eq!(parse_duration_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn spans_and_formatting() {
        assert_eq!(parse_span_ms("5m"), Some(300_000));
        assert_eq!(parse_span_ms("30s"), Some(30_000));
        assert_eq!(parse_span_ms("1h"), Some(3_600_000));
        assert_eq!(parse_span_ms("0m"), None);
        assert_eq!(parse_span_ms("5"), None);
        assert_eq!(format_span(600_000), "10m");
        assert_eq!(format_rfc3339_ms(1_793_866_200_000), "2026-11-05T08:10:00Z");
        assert_eq!(format_rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn range_limits() {
        assert_eq!(check_epoch_ms(MAX_TS_MS + 1), None);
        assert_eq!(check_epoch_ms(MIN_TS_MS - 1), None);
        assert_eq!(parse_rfc3339_ms("0001-01-01T00:00:00Z"), Some(MIN_TS_MS));
    }
}
