//! `proof diff --format json`: the [`Diff`] model as pretty-printed JSON; its keys are
//! documented in docs/reports.md ("proof diff").

use super::model::Diff;

/// The JSON bytes, with a trailing newline.
pub fn render(d: &Diff) -> Vec<u8> {
    // The model holds only strings, integers, booleans and finite floats: serialising
    // it cannot fail, and an empty document would be caught by every consumer.
    let mut out = serde_json::to_vec_pretty(d).unwrap_or_default();
    out.push(b'\n');
    out
}
