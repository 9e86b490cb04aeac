//! The one sample encoder: every sample line proof writes — replay's timestamped
//! `metrics.om`, the textfile-collector `gate.prom` and `serve`'s live OpenMetrics
//! exposition — is `name{labels} value[ timestamp]` written here, with one float
//! format, one timestamp format and label names taken from the catalogue.

use std::fmt::{self, Display, Write};

use super::{Family, escape};

/// A float the way all three expositions write it: Rust's shortest round-trip
/// decimal (`0.25`, `1`, `0.0000001`), which Prometheus and OpenMetrics parsers read
/// back to the same `f64`, and the OpenMetrics spellings of the specials (`NaN`,
/// `+Inf`, `-Inf`) that the text formats share.
pub fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        v.to_string()
    }
}

/// Seconds since the epoch of a millisecond instant, exactly: `180` on a whole
/// second, `180.250` otherwise (exact for any count of milliseconds below 2^53).
pub fn seconds(ms: i64) -> String {
    if ms % 1000 == 0 {
        (ms / 1000).to_string()
    } else {
        format!("{:.3}", ms as f64 / 1000.0)
    }
}

/// A sample value: counts as integers, ratios and durations through [`num`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A count or a level.
    Int(i64),
    /// A count that may not fit an `i64`.
    Count(u64),
    /// Anything else.
    Float(f64),
}

impl Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Count(v) => write!(f, "{v}"),
            Value::Float(v) => f.write_str(&num(*v)),
        }
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Count(v)
    }
}
impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::Count(v as u64)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Count(u64::from(v))
    }
}
impl From<u8> for Value {
    fn from(v: u8) -> Self {
        Value::Count(u64::from(v))
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Count(u64::from(v))
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

/// A label set, `{a="x",b="y"}` with the values escaped, or nothing without labels.
pub fn labels<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut s = String::new();
    for (k, v) in pairs {
        s.push(if s.is_empty() { '{' } else { ',' });
        let _ = write!(s, "{k}=\"{}\"", escape(v));
    }
    if !s.is_empty() {
        s.push('}');
    }
    s
}

/// The label set of a catalogue family: `values` in the order of `f.labels`, then
/// `extra` (a histogram's `le`, a summary's `quantile`). Panics in debug builds when
/// the count does not match the catalogue: a programming error, not an input one.
pub fn family_labels(f: &Family, values: &[&str], extra: Option<(&str, &str)>) -> String {
    debug_assert_eq!(values.len(), f.labels.len(), "labels of {}", f.name);
    labels(
        f.labels
            .iter()
            .copied()
            .zip(values.iter().copied())
            .chain(extra),
    )
}

/// Writes one sample line: `name{labels} value`, then ` timestamp` in seconds when
/// `ts_ms` is given (metrics.om backfills; live expositions and gate.prom do not).
pub fn sample(out: &mut String, name: &str, labels: &str, value: Value, ts_ms: Option<i64>) {
    let _ = match ts_ms {
        Some(t) => writeln!(out, "{name}{labels} {value} {}", seconds(t)),
        None => writeln!(out, "{name}{labels} {value}"),
    };
}

/// Writes one sample of a catalogue family under its sample name (`adapt_requests_total`).
pub fn family_sample(
    out: &mut String,
    f: &Family,
    values: &[&str],
    value: impl Into<Value>,
    ts_ms: Option<i64>,
) {
    sample(
        out,
        f.sample,
        &family_labels(f, values, None),
        value.into(),
        ts_ms,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::catalogue as C;

    #[test]
    fn one_float_format_and_exact_timestamps() {
        assert_eq!(num(0.25), "0.25");
        assert_eq!(num(1.0), "1");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(1e-7), "0.0000001");
        assert_eq!(num(f64::NAN), "NaN");
        assert_eq!(num(f64::INFINITY), "+Inf");
        assert_eq!(num(f64::NEG_INFINITY), "-Inf");
        // Every value reads back to the same f64.
        for v in [0.1 + 0.2, 1.0 / 3.0, 5e-324, f64::MAX, 2.25e-9] {
            assert_eq!(num(v).parse::<f64>().unwrap(), v);
        }
        assert_eq!(seconds(180_000), "180");
        assert_eq!(seconds(180_250), "180.250");
        assert_eq!(seconds(1_730_800_500_001), "1730800500.001");
    }

    #[test]
    fn samples_take_label_names_from_the_catalogue() {
        let mut o = String::new();
        family_sample(
            &mut o,
            &C::REQUESTS,
            &["shadow", "p\"1\n"],
            7u64,
            Some(60_000),
        );
        family_sample(&mut o, &C::GATE_PASSED, &[], false, None);
        family_sample(&mut o, &C::DRIFT_RATIO, &["5m"], 0.5, Some(1));
        assert_eq!(
            o,
            "adapt_requests_total{mode=\"shadow\",policy_id=\"p\\\"1\\n\"} 7 60\n\
             proof_gate_passed 0\n\
             adapt_drift_ratio{window=\"5m\"} 0.5 0.001\n"
        );
        assert_eq!(
            family_labels(&C::SELECTION_LATENCY, &[], Some(("le", "0.5"))),
            "{le=\"0.5\"}"
        );
    }
}
