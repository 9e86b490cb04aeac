//! `--redact-ids`: request ids replaced by a keyed hash before they leave the process
//! (reports, drift details, partials).

use hmac::{KeyInit, Mac};

/// Keyed hash for --redact-ids: HMAC-SHA256, first 16 bytes, hex.
pub fn redact(key: &[u8], id: &str) -> String {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    let tag = mac.finalize().into_bytes();
    format!("hmac:{}", hex::encode(&tag[..16]))
}
