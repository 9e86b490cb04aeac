//! JSONL output of `proof gen`: one record a line, keys in log order, plain or
//! compressed by the file name (`.gz`, `.zst`).

use std::io::{BufWriter, Write};
use std::path::Path;

use serde_json::Value;

use crate::error::ProofError;
use crate::policy::time::format_rfc3339_ms;
use crate::replay::record::Record;

/// One JSONL line for a record, keys in log order: ts (RFC 3339, ms), request_id,
/// policy_id, context, and the verdict when it has one (SPEC §11).
pub fn to_jsonl(r: &Record) -> String {
    let s = |v: &str| Value::String(v.to_string()).to_string();
    let policy = match &r.policy_id {
        Some(p) => format!(",\"policy_id\":{}", s(p)),
        None => String::new(),
    };
    let verdict = match r.verdict {
        Some(v) => format!(",\"verdict\":\"{}\"", v.as_str()),
        None => String::new(),
    };
    format!(
        "{{\"ts\":{},\"request_id\":{}{policy},\"context\":{}{verdict}}}",
        s(&format_rfc3339_ms(r.ts_ms)),
        s(&r.request_id),
        Value::Object(r.context.clone())
    )
}

/// Writes `records` as JSONL into `file`, compressed as `name` says (`.gz`: gzip,
/// `.zst`: zstd at `zstd_level`, else plain); errors name `path`.
pub fn write_records(
    file: std::fs::File,
    path: &Path,
    name: &str,
    zstd_level: i32,
    records: impl IntoIterator<Item = Record>,
) -> Result<(), ProofError> {
    let mut w: Box<dyn Write> = if name.ends_with(".gz") {
        Box::new(flate2::write::GzEncoder::new(
            BufWriter::new(file),
            flate2::Compression::default(),
        ))
    } else if name.ends_with(".zst") {
        Box::new(
            zstd::stream::write::Encoder::new(BufWriter::new(file), zstd_level)
                .map_err(|e| ProofError::io(path, e))?
                .auto_finish(),
        )
    } else {
        Box::new(BufWriter::new(file))
    };
    for r in records {
        writeln!(w, "{}", to_jsonl(&r)).map_err(|e| ProofError::io(path, e))?;
    }
    w.flush().map_err(|e| ProofError::io(path, e))
}
