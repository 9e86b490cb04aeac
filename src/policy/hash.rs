//! Hashes fixed by the SPEC: the IR hash (RFC 8785 JCS + SHA3-256, SPEC §1) and the
//! SHA-256 helpers used for context ids and redaction.

use serde_json::Value;
use sha2::{Digest, Sha256};
use sha3::Sha3_256;

/// RFC 8785 canonical form of a JSON value.
pub fn jcs(value: &Value) -> Result<String, serde_json::Error> {
    serde_json_canonicalizer::to_string(value)
}

/// `sha3-256:` + hex of SHA3-256 over the JCS form of the IR without its `ir_hash` key.
pub fn ir_hash(ir: &Value) -> Result<String, serde_json::Error> {
    let canonical = match ir {
        Value::Object(map) if map.contains_key("ir_hash") => {
            let mut m = map.clone();
            m.remove("ir_hash");
            jcs(&Value::Object(m))?
        }
        other => jcs(other)?,
    };
    Ok(format!(
        "sha3-256:{}",
        hex::encode(Sha3_256::digest(canonical.as_bytes()))
    ))
}

/// Hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jcs_orders_keys_and_formats_numbers() {
        let v = json!({"b": 1.0, "a": [1e21, 0.1, -0.0], "\u{20ac}": "x", "c": "\u{1f600}"});
        assert_eq!(
            jcs(&v).unwrap(),
            "{\"a\":[1e+21,0.1,0],\"b\":1,\"c\":\"\u{1f600}\",\"\u{20ac}\":\"x\"}"
        );
    }

    #[test]
    fn sha3_known_answer() {
        // FIPS 202 test vector: SHA3-256("abc").
        assert_eq!(
            hex::encode(Sha3_256::digest(b"abc")),
            "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"
        );
        // The hash ignores an existing ir_hash key.
        let a = json!({"k": 1});
        let b = json!({"k": 1, "ir_hash": "sha3-256:whatever"});
        assert_eq!(ir_hash(&a).unwrap(), ir_hash(&b).unwrap());
        assert_eq!(
            ir_hash(&a).unwrap(),
            format!("sha3-256:{}", hex::encode(Sha3_256::digest(b"{\"k\":1}")))
        );
    }

    #[test]
    fn conformance_ir_hashes() {
        // The vendored copy of shared/conformance is always in the checkout, so this
        // check runs everywhere; the values are those of its README.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/conformance");
        for (file, want) in [
            (
                "demo.v1.ir.json",
                "sha3-256:9ddbe28d6eb62b6ecb779e677f764fb8999dc894ce1e0060d2b4e02728b04df8",
            ),
            (
                "demo.v2.ir.json",
                "sha3-256:30181d5988301bd8582e2bcd8567716f081b1e017d4cfc66f3bf49fa73fb455a",
            ),
        ] {
            let path = dir.join(file);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(ir_hash(&v).unwrap(), want, "{file}");
        }
    }
}
