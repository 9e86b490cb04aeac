//! One log record (SPEC §4) and the rules that reject it, with their fixed reasons.
//!
//! The JSONL path deserialises straight into the few fields it needs; unknown keys
//! are skipped without building values for them.

use serde::Deserialize;
use serde::de::DeserializeSeed;
use serde_json::{Map, Value};

use super::extract::{ContextSlots, EVERYTHING, InPlace, Layout, PathTable};
use super::scan;

use crate::orchestrator::Verdict;
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
    /// The verdict production returned, if the record says (SPEC §11).
    pub verdict: Option<Verdict>,
}

pub use crate::engine::Reason;

/// The fields of a line the reader keeps (unknown keys are skipped without building
/// values), before the SPEC §4 checks. `serve` and `adapt` read documents through the
/// same struct (`read_document`).
#[derive(Default)]
pub struct Fields {
    /// `ts`, unchecked.
    pub ts: Option<Value>,
    /// `request_id`, unchecked.
    pub request_id: Option<Value>,
    /// `policy_id`, unchecked.
    pub policy_id: Option<Value>,
    /// `context`, unchecked.
    pub context: Option<Value>,
    /// `verdict`, unchecked.
    pub verdict: Option<Value>,
    /// The first record field named twice, if any: the record is then ambiguous
    /// (`malformed`), and explanations can name the field without parsing messages.
    pub duplicate: Option<&'static str>,
}

/// The record fields by name; anything else is skipped.
enum Key {
    Ts,
    RequestId,
    PolicyId,
    Context,
    Verdict,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: serde::de::Error>(self, k: &str) -> Result<Key, E> {
                Ok(match k {
                    "ts" => Key::Ts,
                    "request_id" => Key::RequestId,
                    "policy_id" => Key::PolicyId,
                    "context" => Key::Context,
                    "verdict" => Key::Verdict,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Fields, D::Error> {
        FieldsSeed(&EVERYTHING).deserialize(d)
    }
}

/// Reads [`Fields`] keeping of the context only what a [`PathTable`] names.
#[derive(Debug, Clone, Copy)]
pub struct FieldsSeed<'t>(pub &'t PathTable);

impl<'de> DeserializeSeed<'de> for FieldsSeed<'_> {
    type Value = Fields;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Fields, D::Error> {
        struct V<'t>(&'t PathTable);
        impl<'de> serde::de::Visitor<'de> for V<'_> {
            type Value = Fields;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object: one log record")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Fields, A::Error> {
                let mut f = Fields::default();
                while let Some(k) = m.next_key::<Key>()? {
                    let (slot, name) = match k {
                        Key::Ts => (&mut f.ts, "ts"),
                        Key::RequestId => (&mut f.request_id, "request_id"),
                        Key::PolicyId => (&mut f.policy_id, "policy_id"),
                        Key::Context => (&mut f.context, "context"),
                        Key::Verdict => (&mut f.verdict, "verdict"),
                        Key::Other => {
                            m.next_value::<serde::de::IgnoredAny>()?;
                            continue;
                        }
                    };
                    if slot.is_some() {
                        f.duplicate.get_or_insert(name);
                        m.next_value::<serde::de::IgnoredAny>()?;
                    } else if name == "context" {
                        // Only the parts the policies read are built (`replay::extract`);
                        // the rest is still parsed, so the same bytes are rejected.
                        *slot = Some(m.next_value_seed(self.0.context_seed())?);
                    } else {
                        // `null` is kept as a value: "present but null" reads as absent
                        // for ts and policy_id, and as a bad value elsewhere.
                        *slot = Some(m.next_value::<Value>()?);
                    }
                }
                Ok(f)
            }
        }
        d.deserialize_map(V(self.0))
    }
}

/// The UTF-8 byte-order mark. It may open a file or a document (a context file, a POST
/// body), where it is skipped; anywhere else it is not JSON whitespace.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// `bytes` without a leading byte-order mark.
pub fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(BOM).unwrap_or(bytes)
}

/// The byte-level checks of a line (length, an object, UTF-8), giving its text.
fn line_text(line: &[u8]) -> Result<&str, Reason> {
    if line.len() > MAX_RECORD_BYTES {
        return Err(Reason::TooLong);
    }
    // serde would also read a struct from a JSON array; a record is an object.
    if line.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Reason::Malformed);
    }
    // Validate the whole line first: serde_json checks UTF-8 only in the strings it
    // keeps, so invalid bytes inside an ignored key would otherwise slip through.
    std::str::from_utf8(line).map_err(|_| Reason::Malformed)
}

/// Reads the fields of one JSONL line (without its newline): the byte-level checks
/// (length, an object, UTF-8) and the JSON parse, before the SPEC §4 field checks.
pub fn parse_fields(line: &[u8]) -> Result<Fields, Reason> {
    parse_fields_with(line, &EVERYTHING)
}

/// [`parse_fields`] keeping of the context only what `table` names: the same bytes
/// are rejected for the same reasons (`replay::extract`).
pub fn parse_fields_with(line: &[u8], table: &PathTable) -> Result<Fields, Reason> {
    let text = line_text(line)?;
    // What `serde_json::from_str` does, with a seed: the value, then only whitespace.
    let mut de = serde_json::Deserializer::from_str(text);
    let f = FieldsSeed(table)
        .deserialize(&mut de)
        .and_then(|f| de.end().map(|()| f))
        .map_err(|_| Reason::Malformed)?;
    if f.duplicate.is_some() {
        return Err(Reason::Malformed);
    }
    Ok(f)
}

/// One document of `adapt --context` (a record or a bare context) or a `serve` POST
/// body, read by the replay reader's rules (SPEC §4, §7).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// `ts`, or the `now_ms` given when the document has none (or `null`).
    pub ts_ms: i64,
    /// `request_id`, if the document has one (not `null`).
    pub request_id: Option<String>,
    /// `policy_id`, if the document has one.
    pub policy_id: Option<String>,
    /// The context: the record's `context`, or the whole document when it has no
    /// `context` key (a bare context).
    pub context: Map<String, Value>,
}

/// Reads one document with the bytes-level rules of a log line (a leading BOM skipped,
/// 16 MiB, an object, UTF-8, each record field once) and its field checks in replay's
/// order. `ts` may be absent (`now_ms`). With `context_file` (`adapt --context`),
/// `request_id` may be absent too and a document without a `context` key is a bare
/// context; a `serve` body must name both.
pub fn read_document(bytes: &[u8], now_ms: i64, context_file: bool) -> Result<Document, Reason> {
    let bytes = strip_bom(bytes);
    let f = parse_fields(bytes)?;
    if f.context.is_none() && context_file {
        // A bare context: the whole object (parse_fields checked it is one, in UTF-8).
        let context: Map<String, Value> =
            serde_json::from_slice(bytes).map_err(|_| Reason::Malformed)?;
        return Ok(Document {
            ts_ms: now_ms,
            request_id: None,
            policy_id: None,
            context,
        });
    }
    let ts = match f.ts {
        None | Some(Value::Null) => Some(Value::from(now_ms)),
        ts => ts,
    };
    let has_id = !matches!(f.request_id, None | Some(Value::Null));
    // A stand-in that passes the check; the caller supplies the id it means.
    let request_id = if has_id || !context_file {
        f.request_id
    } else {
        Some(Value::from("-"))
    };
    // serve and adapt answer for themselves: a recorded verdict is replay's (§11).
    let rec = check(ts, request_id, f.policy_id, f.context, None)?;
    Ok(Document {
        ts_ms: rec.ts_ms,
        request_id: has_id.then_some(rec.request_id),
        policy_id: rec.policy_id,
        context: rec.context,
    })
}

/// Why a document was rejected: the reason, the field to blame (if one) and a message
/// for a person (`serve`'s 400 body, `adapt`'s exit-2 error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The SPEC §4 reason.
    pub reason: Reason,
    /// The offending field, when one is to blame.
    pub field: Option<&'static str>,
    /// What is wrong.
    pub message: String,
    /// Line and column (1-based) where the JSON parser stopped, for syntax errors.
    pub at: Option<(u64, u64)>,
}

/// Explains a rejection of `bytes` (as read by [`read_document`]), retracing the reader's
/// steps to say where. Costs a second parse, on the error path only.
pub fn explain(bytes: &[u8], reason: Reason) -> Rejection {
    let field_msg = |field: &'static str, msg: &str| Rejection {
        reason,
        field: Some(field),
        message: format!("field '{field}': {msg}"),
        at: None,
    };
    let malformed = |field, message| Rejection {
        reason: Reason::Malformed,
        field,
        message,
        at: None,
    };
    match reason {
        Reason::MissingTs | Reason::BadTs => {
            return field_msg(
                "ts",
                "expected an RFC 3339 date-time or integer epoch milliseconds,                  0001-01-01T00:00:00Z..=9999-12-31T23:54:59.999Z (or no ts: now)",
            );
        }
        Reason::MissingRequestId => return field_msg("request_id", "expected a non-empty string"),
        Reason::MissingContext => return field_msg("context", "expected a JSON object"),
        Reason::BadVerdict => {
            return field_msg(
                "verdict",
                "expected \"ok\", \"warn\" or \"fail\" (or no verdict)",
            );
        }
        Reason::MissingPath => {
            return field_msg("path", "expected a decision path such as a/b/allow");
        }
        Reason::TooLong => {
            return Rejection {
                reason,
                field: None,
                message: format!("record too long: the limit is {MAX_RECORD_BYTES} bytes (16 MiB)"),
                at: None,
            };
        }
        Reason::Malformed => {}
    }
    let bytes = strip_bom(bytes);
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return malformed(
            None,
            "the body must be a JSON object: one log record \
             {ts?, request_id, context, policy_id?}"
                .into(),
        );
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => return malformed(None, format!("invalid UTF-8 at byte {}", e.valid_up_to())),
    };
    match serde_json::from_str::<Fields>(text) {
        Err(e) => {
            let pos = Some((e.line() as u64, e.column() as u64));
            let at = format!("line {} column {}", e.line(), e.column());
            if crate::error::is_depth_error(&e) {
                let max = crate::error::JSON_MAX_DEPTH;
                return Rejection {
                    at: pos,
                    ..malformed(
                        None,
                        format!(
                            "JSON nested too deeply at {at}: serde_json's recursion limit is \
                             {max} levels (at most {} nested arrays and objects, the record \
                             object included)",
                            max - 1
                        ),
                    )
                };
            }
            let msg = crate::error::strip_position(&e.to_string());
            Rejection {
                at: pos,
                ..malformed(None, format!("invalid JSON at {at}: {msg}"))
            }
        }
        Ok(Fields {
            duplicate: Some(name),
            ..
        }) => malformed(
            Some(name),
            format!("duplicate key '{name}': a record names each field once"),
        ),
        // It read: the record checks found a `policy_id` that is not a string.
        Ok(_) => malformed(
            Some("policy_id"),
            "field 'policy_id': expected a string".into(),
        ),
    }
}

/// Parses one JSONL line (without its newline).
pub fn parse_line(line: &[u8]) -> Result<Record, Reason> {
    parse_line_with(line, &EVERYTHING)
}

/// [`parse_line`] keeping of the context only what `table` names (replay's path:
/// same verdicts and rejections, fewer values built).
pub fn parse_line_with(line: &[u8], table: &PathTable) -> Result<Record, Reason> {
    let l = parse_fields_with(line, table)?;
    check(l.ts, l.request_id, l.policy_id, l.context, l.verdict)
}

/// A record borrowed from a [`RecordBuf`]: what the pipeline evaluates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordRef<'a> {
    /// Epoch milliseconds (sub-millisecond digits truncated).
    pub ts_ms: i64,
    /// Non-empty request id.
    pub request_id: &'a str,
    /// Policy the record was served under, if it says.
    pub policy_id: Option<&'a str>,
    /// The context (only the parts the path table names).
    pub context: Ctx<'a>,
    /// The verdict production returned, if the record says (SPEC §11).
    pub verdict: Option<Verdict>,
}

/// A record's context as a reader left it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ctx<'a> {
    /// An object (the parts the path table names, or all of it).
    Map(&'a Map<String, Value>),
    /// The kept values in the slots of an engine's table: read by a table made with
    /// [`PathTable::for_engine`], for that engine only.
    Slots(&'a ContextSlots, &'a Layout),
}

impl<'a> Ctx<'a> {
    /// The object, when the context was read as one (a table without a slot layout).
    pub fn as_map(&self) -> Option<&'a Map<String, Value>> {
        match self {
            Ctx::Map(m) => Some(m),
            Ctx::Slots(..) => None,
        }
    }
}

impl Record {
    /// Borrows the record.
    pub fn borrowed(&self) -> RecordRef<'_> {
        RecordRef {
            ts_ms: self.ts_ms,
            request_id: &self.request_id,
            policy_id: self.policy_id.as_deref(),
            context: Ctx::Map(&self.context),
            verdict: self.verdict,
        }
    }
}

/// One record field read in place: whether this record has it, and its value (which
/// keeps the allocations of an earlier record's value when it does not).
#[derive(Debug, Default)]
struct Slot {
    present: bool,
    value: Value,
}

impl Slot {
    fn get(&self) -> Option<&Value> {
        self.present.then_some(&self.value)
    }
}

/// A worker's reusable record: each line is read into the values of the one before
/// (`replay::extract::InPlace`), so records of one shape need few allocations. It
/// accepts and rejects exactly what [`parse_line_with`] does, with the same reasons.
#[derive(Debug, Default)]
pub struct RecordBuf {
    ts: Slot,
    request_id: Slot,
    policy_id: Slot,
    context: Slot,
    verdict: Slot,
    /// The context under a table with a slot layout (`context.value` is unused then).
    slots: ContextSlots,
    /// Whether that context was an object.
    slots_object: bool,
}

impl RecordBuf {
    /// Reads one JSONL line (without its newline) under `table`.
    pub fn read<'a>(
        &'a mut self,
        line: &[u8],
        table: &'a PathTable,
    ) -> Result<RecordRef<'a>, Reason> {
        if line.len() > MAX_RECORD_BYTES {
            return Err(Reason::TooLong);
        }
        for s in [
            &mut self.ts,
            &mut self.request_id,
            &mut self.policy_id,
            &mut self.context,
            &mut self.verdict,
        ] {
            s.present = false;
        }
        // The fast path (`scan`, after one UTF-8 check of the line) when the table has
        // slots; a miss is read by serde, which accepts and rejects as it always did.
        let fast = match table.layout() {
            Some(layout) => self.read_fast(line, layout).is_ok(),
            None => false,
        };
        if !fast {
            let text = line_text(line)?;
            self.read_serde(text, table)?;
        }
        self.checked(table)
    }

    /// Reads a line with the fast path (`scan`); a miss may leave anything in the
    /// slots, and the line is then read again by [`RecordBuf::read_serde`].
    fn read_fast(&mut self, line: &[u8], layout: &Layout) -> Result<(), scan::Miss> {
        // One UTF-8 check of the whole line (std's, word at a time over ASCII: 57 ns for
        // a 473-byte record here; simdutf8's AVX2 check took 52 ns, too little to earn a
        // dependency); a line that fails it is the serde path's to reject.
        let text = std::str::from_utf8(line).map_err(|_| scan::Miss)?;
        scan::record(text, |f, c| {
            let slot = match f {
                scan::Field::Ts => &mut self.ts,
                scan::Field::RequestId => &mut self.request_id,
                scan::Field::PolicyId => &mut self.policy_id,
                scan::Field::Verdict => &mut self.verdict,
                scan::Field::Context => {
                    self.context.present = true;
                    self.slots.reset(layout);
                    scan::context(c, layout.root(), &mut self.slots, 1)?;
                    self.slots_object = true;
                    return Ok(());
                }
            };
            slot.present = true;
            scan::field_value(c, &mut slot.value)
        })
    }

    /// Reads a line through serde (every table; any text).
    fn read_serde(&mut self, text: &str, table: &PathTable) -> Result<(), Reason> {
        for s in [
            &mut self.ts,
            &mut self.request_id,
            &mut self.policy_id,
            &mut self.context,
            &mut self.verdict,
        ] {
            s.present = false;
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let duplicate = FieldsInPlace { buf: self, table }
            .deserialize(&mut de)
            .and_then(|d| de.end().map(|()| d))
            .map_err(|_| Reason::Malformed)?;
        if duplicate {
            return Err(Reason::Malformed);
        }
        Ok(())
    }

    /// The checks of [`check`], in its order, on the borrowed values of a line read.
    fn checked<'a>(&'a self, table: &'a PathTable) -> Result<RecordRef<'a>, Reason> {
        let ts_ms = parse_ts(self.ts.get())?;
        let request_id = match self.request_id.get() {
            Some(Value::String(s)) if !s.is_empty() => s,
            _ => return Err(Reason::MissingRequestId),
        };
        let context = match (table.layout(), self.context.get()) {
            (Some(layout), Some(_)) if self.slots_object => Ctx::Slots(&self.slots, layout),
            (None, Some(Value::Object(m))) => Ctx::Map(m),
            _ => return Err(Reason::MissingContext),
        };
        let policy_id = match self.policy_id.get() {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => return Err(Reason::Malformed),
        };
        let verdict = parse_verdict(self.verdict.get())?;
        Ok(RecordRef {
            ts_ms,
            request_id,
            policy_id,
            context,
            verdict,
        })
    }
}

/// The [`Fields`] visitor, reading into a [`RecordBuf`]; yields whether a record
/// field was named twice.
struct FieldsInPlace<'b, 't> {
    buf: &'b mut RecordBuf,
    table: &'t PathTable,
}

impl<'de> DeserializeSeed<'de> for FieldsInPlace<'_, '_> {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for FieldsInPlace<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object: one log record")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<bool, A::Error> {
        let mut duplicate = false;
        while let Some(k) = m.next_key::<Key>()? {
            let b = &mut *self.buf;
            let slot = match k {
                Key::Ts => &mut b.ts,
                Key::RequestId => &mut b.request_id,
                Key::PolicyId => &mut b.policy_id,
                Key::Context => &mut b.context,
                Key::Verdict => &mut b.verdict,
                Key::Other => {
                    m.next_value::<serde::de::IgnoredAny>()?;
                    continue;
                }
            };
            if slot.present {
                duplicate = true;
                m.next_value::<serde::de::IgnoredAny>()?;
                continue;
            }
            slot.present = true;
            if matches!(k, Key::Context) {
                match self.table.layout() {
                    Some(layout) => {
                        b.slots.reset(layout);
                        b.slots_object = m.next_value_seed(b.slots.seed(layout))?;
                    }
                    None => m.next_value_seed(InPlace::context(&mut slot.value, self.table))?,
                }
            } else {
                m.next_value_seed(InPlace::whole(&mut slot.value))?;
            }
        }
        Ok(duplicate)
    }
}

/// The latest `ts` a record may carry: 9999-12-31T23:54:59.999Z. The last five
/// minutes of year 9999 are refused (`bad_ts`) by every reader, because the default
/// 5-minute window holding them would end in year 10000, which RFC 3339 cannot write;
/// so `adapt`, `serve` and `replay` give the same answer on the same bytes
/// (docs/reliability.md).
pub const LAST_TS_MS: i64 = crate::policy::time::MAX_TS_MS - 300_000;

/// Reads a `ts` value: RFC 3339 string or integer epoch milliseconds, up to
/// [`LAST_TS_MS`].
pub fn parse_ts(ts: Option<&Value>) -> Result<i64, Reason> {
    parse_ts_unbounded(ts).and_then(|t| {
        if t > LAST_TS_MS {
            Err(Reason::BadTs)
        } else {
            Ok(t)
        }
    })
}

fn parse_ts_unbounded(ts: Option<&Value>) -> Result<i64, Reason> {
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

/// Reads a `verdict` value (SPEC §11): absent is none; `"ok"`, `"warn"` or `"fail"` is
/// the recorded verdict; anything else, `null` included, is `bad_verdict`.
pub fn parse_verdict(v: Option<&Value>) -> Result<Option<Verdict>, Reason> {
    match v {
        None => Ok(None),
        Some(Value::String(s)) => Verdict::from_name(s).map(Some).ok_or(Reason::BadVerdict),
        Some(_) => Err(Reason::BadVerdict),
    }
}

/// The SPEC §4 checks, in the order a reader meets them: ts, request id, context,
/// verdict.
pub fn check(
    ts: Option<Value>,
    request_id: Option<Value>,
    policy_id: Option<Value>,
    context: Option<Value>,
    verdict: Option<Value>,
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
    let verdict = parse_verdict(verdict.as_ref())?;
    Ok(Record {
        ts_ms,
        request_id,
        policy_id,
        context,
        verdict,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shadow path's vars as a read in slots resolves them, beside what a lookup
    /// of the same names in a fresh parse's context finds.
    fn slots_and_lookups<'a>(
        read: &RecordRef<'a>,
        fresh: &'a Record,
        names: [&str; 2],
    ) -> (Vec<Option<&'a Value>>, Vec<Option<&'a Value>>) {
        let Ctx::Slots(slots, layout) = read.context else {
            panic!("slots")
        };
        let mut got = smallvec::SmallVec::new();
        layout.resolve(0, slots, &mut got);
        let want = names.map(|n| crate::policy::expr::lookup_var(&fresh.context, n));
        (got.to_vec(), want.to_vec())
    }

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
    fn a_reused_record_reads_each_line_as_a_fresh_parse() {
        let mut t = PathTable::empty();
        for v in ["a.b", "c", "d"] {
            t.add_var(v);
        }
        let lines: [&[u8]; 6] = [
            br#"{"ts":1,"request_id":"r-1","policy_id":"p","context":{"a":{"b":[1,"x"],"z":0},"c":{"k":"v","l":[]},"d":"long string","e":1}}"#,
            br#"{"ts":2,"request_id":"r","context":{"a":{"b":["y"]},"c":{"l":[1,2,3]},"c":{"m":null}}}"#,
            br#"{"ts":3,"request_id":"r","context":{"a":[1],"d":{"q":1e400}}}"#,
            br#"{"ts":4,"request_id":"r","context":{"a":{"b":1,"b":{"c":2}},"d":-0}}"#,
            br#"{"ts":5,"request_id":"","context":{}}"#,
            br#"{"ts":6,"request_id":"r","context":{}}"#,
        ];
        let mut buf = RecordBuf::default();
        for line in lines {
            let fresh = parse_line_with(line, &t);
            let reused = buf.read(line, &t);
            assert_eq!(fresh.as_ref().map(Record::borrowed).map_err(|r| *r), reused);
        }
        // What the second line keeps: `c` named twice keeps its last value.
        let r = buf.read(lines[1], &t).unwrap();
        assert_eq!(
            Value::Object(r.context.as_map().unwrap().clone()),
            serde_json::json!({"a":{"b":["y"]},"c":{"m":null}})
        );
    }

    /// Arrays whose length changes from record to record hand their extra elements to
    /// a pool and take them back (`scan::take`): whatever the pool held, each line
    /// still reads as a fresh parse, and the pool stays bounded.
    #[test]
    fn arrays_growing_and_shrinking_across_records_read_as_fresh_parses() {
        let t = PathTable::for_vars([&["a".to_string(), "b.c".to_string()], &[]]);
        let layout = t.layout().unwrap();
        let big = format!(
            r#"{{"ts":7,"request_id":"r","context":{{"a":[{}"end"]}}}}"#,
            "\"s\",".repeat(5000)
        );
        let lines = [
            r#"{"ts":1,"request_id":"r","context":{"a":["x","yy","zzz",[1,["deep"]],{"k":1}],"b":{"c":[true,null,2]}}}"#,
            r#"{"ts":2,"request_id":"r","context":{"a":["q"],"b":{"c":[]}}}"#,
            r#"{"ts":3,"request_id":"r","context":{"a":[[],"long string here",7,-3,false,"\u00e9",["n"]],"b":{"c":["s","t"]}}}"#,
            r#"{"ts":4,"request_id":"r","context":{"a":[],"b":{"c":[[["x"]],[]]}}}"#,
            r#"{"ts":5,"request_id":"r","context":{"a":["a","b","c","d","e","f","g","h","i","j"],"b":{"c":"scalar"}}}"#,
            r#"{"ts":6,"request_id":"r","context":{"a":[1,2],"b":{"c":[{"o":[1]},"w"]}}}"#,
            // Scalars written over scalars of other types, in place and in elements.
            r#"{"ts":6,"request_id":"r","context":{"a":[true,1,null,"s",-0,1.5],"b":{"c":false}}}"#,
            r#"{"ts":6,"request_id":"r","context":{"a":[1,null,"s",true,false,2],"b":{"c":3}}}"#,
            r#"{"ts":6,"request_id":"r","context":{"a":[null,"s",true,-4,18446744073709551615],"b":{"c":null}}}"#,
            r#"{"ts":6,"request_id":"r","context":{"a":true,"b":{"c":"x"}}}"#,
            r#"{"ts":6,"request_id":"r","context":{"a":12,"b":{"c":true}}}"#,
            r#"{"ts":6,"request_id":"r","context":{"a":null,"b":{"c":-7}}}"#,
            r#"{"ts":6,"request_id":"r","context":{"a":false,"b":{"c":[null]}}}"#,
            &big,
            r#"{"ts":8,"request_id":"r","context":{"a":["after","big"]}}"#,
        ];
        let mut buf = RecordBuf::default();
        for _ in 0..2 {
            for line in lines {
                assert!(buf.read_fast(line.as_bytes(), layout).is_ok(), "{line}");
                let fresh = parse_line_with(line.as_bytes(), &t).unwrap();
                let read = buf.read(line.as_bytes(), &t).unwrap();
                let (got, want) = slots_and_lookups(&read, &fresh, ["a", "b.c"]);
                assert_eq!(got, want, "{line}");
            }
        }
        assert!(buf.slots.parts_mut().2.len() <= 1024);
    }

    /// The fast path (`scan`) takes ordinary lines and leaves every corner it is not
    /// sure about to serde; either way a line reads as a fresh serde parse reads it.
    #[test]
    fn the_fast_path_takes_plain_lines_and_misses_the_corners() {
        let t = PathTable::for_vars([&["a.b".to_string(), "c".to_string()], &[]]);
        let layout = t.layout().unwrap();
        let deep = |n: usize| {
            format!(
                r#"{{"ts":1,"request_id":"r","context":{{"x":{}{}}}}}"#,
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        let taken = [
            r#"{"ts":1,"request_id":"r-1","policy_id":"p","context":{"a":{"b":[1,"x"],"z":0},"c":"v","e":[1.5e3,-2,true,null,{"q":"\n\u00e9"}]}}"#.to_string(),
            r#" { "ts" : "2026-11-02T10:04:31Z" , "request_id":"r","context":{"c":{"k":1},"c":2,"a":{"b":3},"a":{}},"x":{}} "#.to_string(),
            r#"{"ts":-0,"request_id":"r","verdict":"ok","context":{"c":-0,"d":1e299,"f":123456789012345678901234567890}}"#.to_string(),
            r#"{"ts":1,"request_id":"r","context":{"a":5,"c":"\"quoted\""}}"#.to_string(),
            deep(60),
        ];
        let missed = [
            r#"{"ts":1,"request_id":"r","context":{"c":1e400}}"#.to_string(),
            r#"{"ts":1,"request_id":"r","context":{"c":1e301}}"#.to_string(),
            r#"{"ts":1,"request_id":"r","context":{"x":"\ud800"}}"#.to_string(),
            r#"{"ts":1,"request_id":"r","context":{"x":"\ud83d\ude00"}}"#.to_string(),
            r#"{"ts":1,"request_id":"r","context":{"\u0063":1}}"#.to_string(),
            r#"{"ts":1,"ts":2,"request_id":"r","context":{}}"#.to_string(),
            r#"{"ts":1,"request_id":"r","context":[]}"#.to_string(),
            r#"{"ts":1,"request_id":"r","context":{"x":01}}"#.to_string(),
            r#"{"ts":1,"request_id":"r","context":{"x":[1,]}}"#.to_string(),
            r#"{"ts":1,"request_id":"r","context":{"x":1.}}"#.to_string(),
            r#"{"ts":1,"request_id":"r","context":{"x":"\q"}}"#.to_string(),
            "{\"ts\":1,\"request_id\":\"r\",\"context\":{\"x\":\"\u{1}\"}}".to_string(),
            r#"{"ts":1,"request_id":"r","context":{}} x"#.to_string(),
            deep(70),
            deep(130),
        ];
        let mut buf = RecordBuf::default();
        for (lines, fast) in [(&taken[..], true), (&missed[..], false)] {
            for line in lines {
                assert_eq!(
                    buf.read_fast(line.as_bytes(), layout).is_ok(),
                    fast,
                    "fast path on {line}"
                );
                let fresh = parse_line_with(line.as_bytes(), &t);
                let read = buf.read(line.as_bytes(), &t);
                assert_eq!(fresh.is_ok(), read.is_ok(), "{line}");
                match (fresh, read) {
                    (Err(a), Err(b)) => assert_eq!(a, b, "{line}"),
                    (Ok(a), Ok(b)) => {
                        assert_eq!(
                            (
                                a.ts_ms,
                                a.request_id.as_str(),
                                a.policy_id.as_deref(),
                                a.verdict
                            ),
                            (b.ts_ms, b.request_id, b.policy_id, b.verdict)
                        );
                        let (got, want) = slots_and_lookups(&b, &a, ["a.b", "c"]);
                        assert_eq!(got, want, "{line}");
                    }
                    _ => unreachable!(),
                }
            }
        }
        // What the kept values are, by hand: `c` named twice keeps its last value,
        // and a later `a` without `b` leaves `a.b` absent.
        let r = buf.read(taken[1].as_bytes(), &t).unwrap();
        let Ctx::Slots(slots, layout) = r.context else {
            panic!("slots")
        };
        let mut got = smallvec::SmallVec::new();
        layout.resolve(0, slots, &mut got);
        assert_eq!(&got[..], &[None, Some(&Value::from(2))]);
        assert_eq!(r.ts_ms, 1_793_613_871_000);
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
