//! Shared readers for YAML configuration (weights, scenarios, access maps).
//! serde-saphyr bounds alias expansion, so an alias bomb is an error, not an OOM.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::ProofError;

/// Largest configuration file read, in bytes.
pub const MAX_CONFIG_BYTES: usize = 16 * 1024 * 1024;

/// The limit of weights, scenario, plan and access-map files.
pub const LIMIT: crate::files::Limit = crate::files::Limit {
    bytes: MAX_CONFIG_BYTES as u64,
    what: "config file",
    why: "config::MAX_CONFIG_BYTES, fixed at build time: weights and scenarios are \
          kilobytes, so this is most likely the wrong file",
};

/// Reads a configuration file, refusing one over [`MAX_CONFIG_BYTES`] before reading
/// it whole (a wrong path to a multi-gigabyte log must not be slurped).
pub fn read_config(path: &Path) -> Result<Vec<u8>, ProofError> {
    crate::files::read_limited(path, LIMIT)
}

/// Parses YAML from bytes; errors name `path` and, where known, the line.
pub fn from_yaml<T: DeserializeOwned>(bytes: &[u8], path: &Path) -> Result<T, ProofError> {
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(LIMIT.exceeded(path, Some(bytes.len() as u64)));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ProofError::config(path, 0, format!("not valid UTF-8: {e}")))?;
    serde_saphyr::from_str(text).map_err(|e| {
        let mut msg = e.to_string();
        if msg.contains("budget breached") {
            // serde-saphyr's budgets stop alias bombs and giant documents; say so.
            msg.push_str(
                "\n(the YAML grows past the reader's fixed size budget once its aliases are \
                 expanded — an alias bomb? write the values out instead of aliasing them)",
            );
        }
        ProofError::config(path, 0, msg)
    })
}

/// Parses JSON like `serde_json::from_slice::<Value>`, but a key named twice in one
/// object is an error naming the key, with file, line and column (exit 2): the last
/// value would silently win, and `proof hash --write` would then drop the first. Log
/// records and YAML already refuse duplicates; this does it for IR and JSON weights.
pub fn from_json_strict(bytes: &[u8], path: &Path) -> Result<serde_json::Value, ProofError> {
    use serde::Deserialize;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = Strict::deserialize(&mut de)
        .and_then(|s| de.end().map(|()| s.0))
        .map_err(|e| ProofError::json(path, &e))?;
    Ok(v)
}

/// A JSON value read with duplicate keys refused.
struct Strict(serde_json::Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
        use serde::de::{self, MapAccess, SeqAccess, Visitor};
        use serde_json::Value;
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Strict;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, b: bool) -> Result<Strict, E> {
                Ok(Strict(Value::Bool(b)))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Strict, E> {
                Ok(Strict(Value::from(n)))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Strict, E> {
                Ok(Strict(Value::from(n)))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Strict, E> {
                Ok(Strict(
                    serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number),
                ))
            }
            fn visit_str<E>(self, s: &str) -> Result<Strict, E> {
                Ok(Strict(Value::String(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<Strict, E> {
                Ok(Strict(Value::String(s)))
            }
            fn visit_unit<E>(self) -> Result<Strict, E> {
                Ok(Strict(Value::Null))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Strict, A::Error> {
                let mut v = Vec::new();
                while let Some(Strict(e)) = a.next_element()? {
                    v.push(e);
                }
                Ok(Strict(Value::Array(v)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Strict, A::Error> {
                let mut m = serde_json::Map::new();
                while let Some(k) = a.next_key::<String>()? {
                    if m.contains_key(&k) {
                        return Err(de::Error::custom(format_args!(
                            "duplicate key '{k}': each key may appear once in an object \
                             (the last value would silently win)"
                        )));
                    }
                    let Strict(v) = a.next_value()?;
                    m.insert(k, v);
                }
                Ok(Strict(Value::Object(m)))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_json_keys_are_refused_with_line_and_key() {
        let p = Path::new("x.ir.json");
        let e = from_json_strict(b"{\"a\": 1,\n \"b\": {\"c\": 1, \"c\": 2}}", p).unwrap_err();
        let m = e.to_string();
        assert!(m.starts_with("x.ir.json:2:"), "{m}");
        assert!(m.contains("duplicate key 'c'"), "{m}");
        let v = from_json_strict(br#"{"a": [1, 2.5, "x", null, true, {"a": 1}]}"#, p).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": [1, 2.5, "x", null, true, {"a": 1}]})
        );
        assert!(from_json_strict(b"{} x", p).is_err());
    }
}
