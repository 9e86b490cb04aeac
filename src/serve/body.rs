//! Body validation of `/v1/adapt`: the size limit and reading a body as replay reads
//! a record (`replay::record`, SPEC §4), so the same bytes get the same outcome. The
//! classification of parse errors (serde_json's error category, the one depth limit
//! `error::JSON_MAX_DEPTH`) is the record reader's, shared with `replay` and `adapt`.

use axum::http::StatusCode;
use axum::response::Response;

use super::response::error_response;
use crate::replay::record::{self, Reason};

/// Largest `/v1/adapt` body accepted, in bytes (1 MiB); larger ones get 413.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Why a body is not a record: the SPEC §4 reason, the field (if one) and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError {
    /// Rejection reason (`malformed`, `bad_ts`, …).
    pub error: &'static str,
    /// The offending field, when one is to blame.
    pub field: Option<&'static str>,
    /// What is wrong.
    pub message: String,
}

impl BodyError {
    pub(super) fn response(&self) -> Response {
        error_response(
            StatusCode::BAD_REQUEST,
            self.error,
            self.field,
            &self.message,
        )
    }
}

impl From<record::Rejection> for BodyError {
    fn from(r: record::Rejection) -> Self {
        BodyError {
            error: r.reason.as_str(),
            field: r.field,
            message: r.message,
        }
    }
}

/// Parses and checks a body with replay's reader (`record::read_document`, SPEC §4),
/// so the same bytes get the same outcome; the one difference is that `ts` may be
/// absent or null, meaning now. The body is parsed once (twice on an error, to explain).
pub fn parse_body(body: &[u8]) -> Result<record::Record, BodyError> {
    let explain = |r: Reason| BodyError::from(record::explain(body, r));
    let doc = record::read_document(body, crate::policy::time::now_ms(), false).map_err(explain)?;
    let request_id = doc
        .request_id
        .ok_or_else(|| explain(Reason::MissingRequestId))?;
    Ok(record::Record {
        ts_ms: doc.ts_ms,
        request_id,
        policy_id: doc.policy_id,
        context: doc.context,
        verdict: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> Vec<u8> {
        // The record object is level 1 and the context level 2.
        let inner = depth - 2;
        format!(
            r#"{{"ts":1,"request_id":"r","context":{{"x":{}{}}}}}"#,
            "[".repeat(inner),
            "]".repeat(inner)
        )
        .into_bytes()
    }

    #[test]
    fn depth_limit_is_named_and_shared_with_replay() {
        let ok = nested(crate::error::JSON_MAX_DEPTH - 1);
        assert!(record::parse_line(&ok).is_ok());
        assert!(parse_body(&ok).is_ok());
        let deep = nested(crate::error::JSON_MAX_DEPTH);
        assert_eq!(record::parse_line(&deep), Err(Reason::Malformed));
        let e = parse_body(&deep).unwrap_err();
        assert_eq!((e.error, e.field), ("malformed", None));
        assert!(
            e.message.contains("recursion limit is 128 levels"),
            "{}",
            e.message
        );
        assert!(e.message.contains("line 1 column"), "{}", e.message);
    }

    #[test]
    fn errors_name_the_problem() {
        let e = parse_body(br#"{"request_id":"a","context":{},"context":{"x":1}}"#).unwrap_err();
        assert_eq!((e.error, e.field), ("malformed", Some("context")));
        assert!(
            e.message
                .starts_with("duplicate key 'context': a record names each field once")
        );
        let e = parse_body(b"{\"request_id\":\"a\",\"k\":\"\xff\",\"context\":{}}").unwrap_err();
        assert_eq!(e.message, "invalid UTF-8 at byte 23");
        let e = parse_body(b"[]").unwrap_err();
        assert!(e.message.starts_with("the body must be a JSON object"));
        let e = parse_body(br#"{"request_id":"a","context":{},"policy_id":1}"#).unwrap_err();
        assert_eq!((e.error, e.field), ("malformed", Some("policy_id")));
        let e = parse_body(br#"{"request_id":"a"}"#).unwrap_err();
        assert_eq!(
            (e.error, e.field, e.message.as_str()),
            (
                "missing_context",
                Some("context"),
                "field 'context': expected a JSON object"
            )
        );
        let e = parse_body(br#"{"request_id":"a","context":{}"#).unwrap_err();
        assert!(
            e.message.starts_with("invalid JSON at line 1 column"),
            "{}",
            e.message
        );
    }

    #[test]
    fn absent_or_null_ts_is_now() {
        let before = crate::policy::time::now_ms();
        for body in [
            &br#"{"request_id":"a","context":{"x":1,"x":2}}"#[..],
            br#"{"ts":null,"request_id":"a","context":{}}"#,
        ] {
            let r = parse_body(body).unwrap();
            assert!(r.ts_ms >= before && r.ts_ms <= crate::policy::time::now_ms());
        }
        let r = parse_body(br#"{"ts":5,"request_id":"a","context":{}}"#).unwrap();
        assert_eq!(r.ts_ms, 5);
    }
}
