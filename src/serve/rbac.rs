//! The access map of `proof serve --rbac FILE`: bearer tokens, stored only as SHA-256
//! hex digests, each with a set of scopes. Owns parsing and checking the file and the
//! constant-time lookup of a presented token; counting and routing live in `serve`.
//!
//! ```yaml
//! tokens:
//!   - name: gateway            # for humans and error messages; never a secret
//!     sha256: 9f86d0…          # hex SHA-256 of the token (e.g. `printf %s TOKEN | sha256sum`)
//!     scopes: [adapt:run]
//!   - name: prometheus
//!     sha256: 60303a…
//!     scopes: [metrics:read]
//! ```

use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::ProofError;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// `POST /v1/adapt`.
    AdaptRun,
    /// `GET /metrics`.
    MetricsRead,
}

impl Scope {
    /// Every scope, in documentation order.
    pub const ALL: [Scope; 2] = [Scope::AdaptRun, Scope::MetricsRead];

    /// Name as written in the access map.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::AdaptRun => "adapt:run",
            Scope::MetricsRead => "metrics:read",
        }
    }

    /// The scope named `s`, if any.
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMap {
    tokens: Vec<FileToken>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToken {
    name: String,
    sha256: String,
    #[serde(default)]
    scopes: Vec<String>,
}

/// One token of the map.
#[derive(Debug, Clone)]
struct Entry {
    digest: [u8; 32],
    scopes: Vec<Scope>,
}

/// A loaded, validated access map.
#[derive(Debug, Clone)]
pub struct AccessMap {
    entries: Vec<Entry>,
    /// Hex SHA-256 of the file's bytes (the `etag` of `rbac_map_info`).
    pub etag: String,
}

/// Result of checking a request against the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A known token with the scope.
    Allowed,
    /// No bearer token, or one the map does not know (401).
    Unauthenticated,
    /// A known token without the scope (403).
    MissingScope,
}

impl AccessMap {
    /// Parses an access map; errors name the file and the offending entry.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<AccessMap, ProofError> {
        let file: FileMap = crate::config::from_yaml(bytes, path)?;
        let mut entries: Vec<Entry> = Vec::with_capacity(file.tokens.len());
        for (i, t) in file.tokens.iter().enumerate() {
            let at = |msg: String| {
                ProofError::config(path, 0, format!("tokens[{i}] ('{}'): {msg}", t.name))
            };
            let hexd = t.sha256.trim().to_ascii_lowercase();
            let digest: [u8; 32] = match hex::decode(&hexd) {
                Ok(v) if v.len() == 32 => v.try_into().unwrap_or([0; 32]),
                _ => {
                    return Err(at(
                        "field 'sha256': expected 64 hex digits, the SHA-256 of the token \
                         (e.g. `printf %s TOKEN | sha256sum`); tokens are never stored in clear"
                            .into(),
                    ));
                }
            };
            if entries.iter().any(|e| e.digest == digest) {
                return Err(at(
                    "field 'sha256': the same token hash appears twice".into()
                ));
            }
            let mut scopes = Vec::new();
            for s in &t.scopes {
                match Scope::parse(s) {
                    Some(sc) if !scopes.contains(&sc) => scopes.push(sc),
                    Some(_) => {}
                    None => {
                        return Err(at(format!(
                            "field 'scopes': unknown scope '{s}' (known: adapt:run, metrics:read)"
                        )));
                    }
                }
            }
            entries.push(Entry { digest, scopes });
        }
        Ok(AccessMap {
            entries,
            etag: hex::encode(Sha256::digest(bytes)),
        })
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map holds no token (every protected route then answers 401).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks the `Authorization` header value (if any) for `scope`.
    pub fn check(&self, authorization: Option<&[u8]>, scope: Scope) -> Decision {
        let Some(token) = authorization.and_then(bearer) else {
            return Decision::Unauthenticated;
        };
        let digest: [u8; 32] = Sha256::digest(token).into();
        // Compare with every entry, without early exit, so timing does not tell
        // which (or whether a) stored hash shares a prefix with the presented one.
        let mut found: Option<&Entry> = None;
        for e in &self.entries {
            if ct_eq(&e.digest, &digest) {
                found = Some(e);
            }
        }
        match found {
            None => Decision::Unauthenticated,
            Some(e) if e.scopes.contains(&scope) => Decision::Allowed,
            Some(_) => Decision::MissingScope,
        }
    }
}

/// The token of `Bearer TOKEN` (scheme case-insensitive, RFC 6750).
fn bearer(h: &[u8]) -> Option<&[u8]> {
    let h = h.trim_ascii();
    if h.len() < 7 || !h[..7].eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let t = h[7..].trim_ascii();
    (!t.is_empty()).then_some(t)
}

/// Constant-time equality of two digests.
fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(s: &str) -> String {
        hex::encode(Sha256::digest(s.as_bytes()))
    }

    fn map(yaml: &str) -> Result<AccessMap, ProofError> {
        AccessMap::parse(yaml.as_bytes(), Path::new("rbac.yaml"))
    }

    #[test]
    fn tokens_and_scopes() {
        let y = format!(
            "tokens:\n  - name: gw\n    sha256: {}\n    scopes: [adapt:run]\n  - name: prom\n    sha256: {}\n    scopes: [metrics:read, metrics:read]\n",
            sha("gw-secret"),
            sha("prom-secret").to_uppercase()
        );
        let m = map(&y).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m.etag, sha(&y));
        let ok = |h: &str, s| m.check(Some(h.as_bytes()), s);
        assert_eq!(ok("Bearer gw-secret", Scope::AdaptRun), Decision::Allowed);
        assert_eq!(ok("bearer  gw-secret ", Scope::AdaptRun), Decision::Allowed);
        assert_eq!(
            ok("Bearer gw-secret", Scope::MetricsRead),
            Decision::MissingScope
        );
        assert_eq!(
            ok("Bearer prom-secret", Scope::MetricsRead),
            Decision::Allowed
        );
        assert_eq!(
            ok("Bearer wrong", Scope::AdaptRun),
            Decision::Unauthenticated
        );
        assert_eq!(
            ok("Basic gw-secret", Scope::AdaptRun),
            Decision::Unauthenticated
        );
        assert_eq!(ok("Bearer ", Scope::AdaptRun), Decision::Unauthenticated);
        assert_eq!(m.check(None, Scope::AdaptRun), Decision::Unauthenticated);
    }

    #[test]
    fn bad_maps_name_the_entry() {
        let e = map("tokens:\n  - name: x\n    sha256: abc\n    scopes: []\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("rbac.yaml") && e.contains("tokens[0] ('x')") && e.contains("64 hex"));
        let y = format!(
            "tokens:\n  - name: x\n    sha256: {}\n    scopes: [admin]\n",
            sha("t")
        );
        assert!(
            map(&y)
                .unwrap_err()
                .to_string()
                .contains("unknown scope 'admin'")
        );
        let y = format!(
            "tokens:\n  - {{name: a, sha256: {0}}}\n  - {{name: b, sha256: {0}}}\n",
            sha("t")
        );
        assert!(map(&y).unwrap_err().to_string().contains("tokens[1] ('b')"));
        assert!(map("tokens: []\nextra: 1\n").is_err());
        assert!(map("tokens: []\n").unwrap().is_empty());
    }
}
