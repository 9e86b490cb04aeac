//! One log record (SPEC §4) and the rules that reject it, with their fixed reasons.
//!
//! The JSONL path deserialises straight into the few fields it needs; unknown keys
//! are skipped without building values for them.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::policy::time::{check_epoch_ms, parse_rfc3339_ms};

/// Longest line or record accepted, in bytes (SPEC §4: 16 MiB).
pub const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

/// A record that passed the SPEC §4 checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Epoch milliseconds (sub-millisecond digits truncated).
    pub ts_ms: i64,
    /// Non-empty request id.
    pub request_id: String,
    /// Policy the record was served under, if it says.
    pub policy_id: Option<String>,
    /// The context object.
    pub context: Map<String, Value>,
}

/// Why a record was rejected (SPEC §4, fixed names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Not valid JSON / UTF-8, not an object, duplicate keys, wrong field types.
    Malformed,
    /// No `ts`.
    MissingTs,
    /// `ts` neither RFC 3339 nor integer epoch milliseconds in years 1..=9999.
    BadTs,
    /// No non-empty string `request_id`.
    MissingRequestId,
    /// No `context` object.
    MissingContext,
    /// Longer than 16 MiB.
    TooLong,
}

impl Reason {
    /// Every reason, in report order.
    pub const ALL: [Reason; 6] = [
        Reason::Malformed,
        Reason::MissingTs,
        Reason::BadTs,
        Reason::MissingRequestId,
        Reason::MissingContext,
        Reason::TooLong,
    ];

    /// Fixed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::MissingTs => "missing_ts",
            Reason::BadTs => "bad_ts",
            Reason::MissingRequestId => "missing_request_id",
            Reason::MissingContext => "missing_context",
            Reason::TooLong => "too_long",
        }
    }

    /// Index into `ALL`.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The fields of a line the reader keeps (unknown keys are skipped without building
/// values), before the SPEC §4 checks. `serve` reads bodies through the same struct.
#[derive(Deserialize)]
pub struct Fields {
    /// `ts`, unchecked.
    #[serde(default)]
    pub ts: Option<Value>,
    /// `request_id`, unchecked.
    #[serde(default)]
    pub request_id: Option<Value>,
    /// `policy_id`, unchecked.
    #[serde(default)]
    pub policy_id: Option<Value>,
    /// `context`, unchecked.
    #[serde(default)]
    pub context: Option<Value>,
}

/// Reads the fields of one JSONL line (without its newline): the byte-level checks
/// (length, an object, UTF-8) and the JSON parse, before the SPEC §4 field checks.
pub fn parse_fields(line: &[u8]) -> Result<Fields, Reason> {
    if line.len() > MAX_RECORD_BYTES {
        return Err(Reason::TooLong);
    }
    // serde would also read a struct from a JSON array; a record is an object.
    if line.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Reason::Malformed);
    }
    // Validate the whole line first: serde_json checks UTF-8 only in the strings it
    // keeps, so invalid bytes inside an ignored key would otherwise slip through.
    let text = std::str::from_utf8(line).map_err(|_| Reason::Malformed)?;
    serde_json::from_str(text).map_err(|_| Reason::Malformed)
}

/// Parses one JSONL line (without its newline).
pub fn parse_line(line: &[u8]) -> Result<Record, Reason> {
    let l = parse_fields(line)?;
    check(l.ts, l.request_id, l.policy_id, l.context)
}

/// Reads a `ts` value: RFC 3339 string or integer epoch milliseconds.
pub fn parse_ts(ts: Option<&Value>) -> Result<i64, Reason> {
    match ts {
        None | Some(Value::Null) => Err(Reason::MissingTs),
        Some(Value::String(s)) => parse_rfc3339_ms(s).ok_or(Reason::BadTs),
        // serde_json reads the integer literal `-0` as the float -0.0; it is epoch 0.
        // Other non-integers (1.5, 1e3) stay `bad_ts`: the SPEC asks for an integer.
        Some(Value::Number(n)) if n.as_f64().is_some_and(|f| f == 0.0 && f.is_sign_negative()) => {
            Ok(0)
        }
        Some(Value::Number(n)) => n.as_i64().and_then(check_epoch_ms).ok_or(Reason::BadTs),
        Some(_) => Err(Reason::BadTs),
    }
}

/// The SPEC §4 checks, in the order a reader meets them: ts, request id, context.
pub fn check(
    ts: Option<Value>,
    request_id: Option<Value>,
    policy_id: Option<Value>,
    context: Option<Value>,
) -> Result<Record, Reason> {
    let ts_ms = parse_ts(ts.as_ref())?;
    let request_id = match request_id {
        Some(Value::String(s)) if !s.is_empty() => s,
        _ => return Err(Reason::MissingRequestId),
    };
    let context = match context {
        Some(Value::Object(m)) => m,
        _ => return Err(Reason::MissingContext),
    };
    let policy_id = match policy_id {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(Reason::Malformed),
    };
    Ok(Record {
        ts_ms,
        request_id,
        policy_id,
        context,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(line: &str) -> Reason {
        parse_line(line.as_bytes()).unwrap_err()
    }

    #[test]
    fn accepts_both_timestamp_forms() {
        let r = parse_line(br#"{"ts":"2026-11-02T10:04:31.250999Z","request_id":"r-1","context":{"a":1},"x":[1,2]}"#).unwrap();
        assert_eq!(r.ts_ms, 1_793_613_871_250);
        assert_eq!(r.policy_id, None);
        let r = parse_line(br#"{"ts":-5,"request_id":"r","policy_id":"p","context":{}}"#).unwrap();
        assert_eq!((r.ts_ms, r.policy_id.as_deref()), (-5, Some("p")));
        let r = parse_line(br#"{"ts":-0,"request_id":"r","context":{}}"#).unwrap();
        assert_eq!(r.ts_ms, 0);
        assert_eq!(
            parse_line(br#"{"ts":1e3,"request_id":"r","context":{}}"#),
            Err(Reason::BadTs)
        );
    }

    #[test]
    fn rejection_reasons() {
        assert_eq!(reason("{broken"), Reason::Malformed);
        assert_eq!(reason("[1]"), Reason::Malformed);
        assert_eq!(
            reason(r#"{"request_id":"r","context":{}}"#),
            Reason::MissingTs
        );
        assert_eq!(
            reason(r#"{"ts":null,"request_id":"r","context":{}}"#),
            Reason::MissingTs
        );
        assert_eq!(
            reason(r#"{"ts":"not a time","request_id":"r","context":{}}"#),
            Reason::BadTs
        );
        assert_eq!(
            reason(r#"{"ts":1.5,"request_id":"r","context":{}}"#),
            Reason::BadTs
        );
        assert_eq!(
            reason(r#"{"ts":1e400,"request_id":"r","context":{}}"#),
            Reason::Malformed
        );
        assert_eq!(
            reason(r#"{"ts":253402300800000,"request_id":"r","context":{}}"#),
            Reason::BadTs
        );
        assert_eq!(
            reason(r#"{"ts":"2026-11-02","request_id":"r","context":{}}"#),
            Reason::BadTs
        );
        assert_eq!(reason(r#"{"ts":1,"context":{}}"#), Reason::MissingRequestId);
        assert_eq!(
            reason(r#"{"ts":1,"request_id":"","context":{}}"#),
            Reason::MissingRequestId
        );
        assert_eq!(
            reason(r#"{"ts":1,"request_id":7,"context":{}}"#),
            Reason::MissingRequestId
        );
        assert_eq!(
            reason(r#"{"ts":1,"request_id":"r"}"#),
            Reason::MissingContext
        );
        assert_eq!(
            reason(r#"{"ts":1,"request_id":"r","context":[]}"#),
            Reason::MissingContext
        );
        assert_eq!(
            reason(r#"{"ts":1,"ts":2,"request_id":"r","context":{}}"#),
            Reason::Malformed
        );
        assert_eq!(
            reason(r#"{"ts":1,"request_id":"r","policy_id":5,"context":{}}"#),
            Reason::Malformed
        );
        assert_eq!(
            parse_line(&b"{\"ts\":1,\"request_id\":\"\xff\",\"context\":{}}"[..]),
            Err(Reason::Malformed)
        );
        // Invalid UTF-8 in a key the reader ignores still makes the line malformed.
        assert_eq!(
            parse_line(
                &b"{\"ts\":1,\"request_id\":\"r\",\"x\":\"\xed\xa0\x80\",\"context\":{}}"[..]
            ),
            Err(Reason::Malformed)
        );
    }
}
