//! The rollout key (SPEC §3): the request id, or with `--bucket-key PATH` a value of the
//! record, so a rollout can be sticky per user or tenant. What a value becomes as a key
//! is fixed here once, for every engine and front door.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

/// A checked `--bucket-key` path: dotted, walked segment by segment (no whole-key
/// lookup), every segment non-empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyPath {
    text: String,
}

impl KeyPath {
    /// The path as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Its segments.
    pub fn segments(&self) -> std::str::Split<'_, char> {
        self.text.split('.')
    }

    /// Walks the path from `root` (an object).
    pub fn walk<'v>(&self, root: &'v serde_json::Map<String, Value>) -> Option<&'v Value> {
        let mut segs = self.segments();
        let mut cur = root.get(segs.next()?)?;
        for s in segs {
            cur = cur.as_object()?.get(s)?;
        }
        Some(cur)
    }
}

impl FromStr for KeyPath {
    type Err = String;

    fn from_str(s: &str) -> Result<KeyPath, String> {
        if s.is_empty() {
            return Err("the bucket key path is empty; give a dotted path such as \
                        tenant.id or input.user"
                .into());
        }
        if s.split('.').any(str::is_empty) {
            return Err(format!(
                "the bucket key path '{s}' has an empty segment (a leading, trailing or \
                 doubled '.'); give a dotted path such as tenant.id or input.user"
            ));
        }
        Ok(KeyPath { text: s.to_owned() })
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What a record's rollout bucket hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketKey<'a> {
    /// No `--bucket-key`: the request id.
    RequestId,
    /// The value at the bucket key path, as a key string.
    Value(&'a str),
    /// `--bucket-key` given, but the record's value is missing, null, an array or an
    /// object: the request id stands in, and the record is counted.
    Missing,
}

impl<'a> BucketKey<'a> {
    /// The string hashed for a record with this request id.
    pub fn text(self, request_id: &'a str) -> &'a str {
        match self {
            BucketKey::Value(v) => v,
            BucketKey::RequestId | BucketKey::Missing => request_id,
        }
    }
}

/// The key string of a value (SPEC §3): a string as it is, a boolean as `true`/`false`,
/// a number in its RFC 8785 form (`1.0` → `1`, `-0` → `0`); `None` for null, arrays
/// and objects. Writes into `buf` unless the value is a string (then borrowed).
pub fn key_text<'v>(v: &'v Value, buf: &'v mut String) -> Option<&'v str> {
    match v {
        Value::String(s) => Some(s),
        Value::Bool(b) => Some(if *b { "true" } else { "false" }),
        Value::Number(_) => {
            buf.clear();
            buf.push_str(&serde_json_canonicalizer::to_string(v).ok()?);
            Some(buf)
        }
        _ => None,
    }
}

/// [`BucketKey`] of an optional value at the key path.
pub fn bucket_key<'v>(v: Option<&'v Value>, buf: &'v mut String) -> BucketKey<'v> {
    match v.and_then(|v| key_text(v, buf)) {
        Some(k) => BucketKey::Value(k),
        None => BucketKey::Missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(v: Value) -> Option<String> {
        let mut buf = String::new();
        key_text(&v, &mut buf).map(str::to_owned)
    }

    #[test]
    fn values_become_keys_as_spec_3_says() {
        assert_eq!(key(json!("acme")), Some("acme".into()));
        assert_eq!(key(json!("")), Some("".into()));
        assert_eq!(key(json!(true)), Some("true".into()));
        assert_eq!(key(json!(false)), Some("false".into()));
        assert_eq!(key(json!(65)), Some("65".into()));
        assert_eq!(key(json!(1.5)), Some("1.5".into()));
        assert_eq!(key(json!(1.0)), Some("1".into()));
        assert_eq!(key(json!(-0.0)), Some("0".into()));
        assert_eq!(key(json!(1e21)), Some("1e+21".into()));
        assert_eq!(key(json!(null)), None);
        assert_eq!(key(json!([1])), None);
        assert_eq!(key(json!({"a": 1})), None);
    }

    #[test]
    fn paths_are_checked_and_walked_by_segment() {
        assert!("".parse::<KeyPath>().is_err());
        for bad in [".a", "a.", "a..b", "."] {
            let e = bad.parse::<KeyPath>().unwrap_err();
            assert!(e.contains("empty segment"), "{bad}: {e}");
        }
        let p: KeyPath = "tenant.id".parse().unwrap();
        let ctx = json!({"tenant.id": "whole", "tenant": {"id": 7}});
        assert_eq!(p.walk(ctx.as_object().unwrap()), Some(&json!(7)));
        let p: KeyPath = "tenant.name".parse().unwrap();
        assert_eq!(p.walk(ctx.as_object().unwrap()), None);
    }

    #[test]
    fn missing_falls_back_to_the_request_id() {
        let mut buf = String::new();
        assert_eq!(bucket_key(None, &mut buf).text("r-1"), "r-1");
        let v = json!(null);
        assert_eq!(bucket_key(Some(&v), &mut buf), BucketKey::Missing);
        assert_eq!(BucketKey::RequestId.text("r-2"), "r-2");
        assert_eq!(BucketKey::Value("ann").text("r-2"), "ann");
    }
}
