//! Parquet input (SPEC §4): schema checks before any work starts, and rows of a
//! record batch turned into records. `ts` may be a timestamp of any unit, int64 epoch
//! milliseconds or an RFC 3339 string; `context` a JSON string or a struct (null
//! struct fields are left out, as a JSON writer would leave out absent keys).

use std::path::Path;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    TimeUnit, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow::record_batch::RecordBatch;
use serde_json::{Map, Number, Value};

use serde::de::DeserializeSeed;

use super::extract::ContextSlots;
use super::extract::{EVERYTHING, InPlace, PathTable};
use super::record::{Ctx, Reason, Record, RecordRef};
use crate::error::{Location, ProofError};
use crate::orchestrator::Verdict;
use crate::panics::contain_panics;
use crate::policy::time::{check_epoch_ms, format_rfc3339_ms, parse_rfc3339_ms};

/// Positions of the record columns in a projected batch.
#[derive(Debug, Clone)]
pub struct ParquetColumns {
    ts: usize,
    request_id: usize,
    policy_id: Option<usize>,
    context: usize,
    verdict: Option<usize>,
}

pub(crate) fn is_string(dt: &DataType) -> bool {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_string(v),
        _ => false,
    }
}

/// The deepest nesting of structs and lists a struct context column (or an OPA `input`
/// column) may have: what a JSON context may have (serde_json's nesting limit, 128, under
/// which a deeper JSONL record is `malformed`, SPEC §4), and well within what the Parquet
/// decoder's recursion holds on the reader thread's stack (`replay::pipeline`). A file
/// nested deeper is refused by name before any of it is decoded: without this, 150
/// levels overflowed the decoder's stack and aborted the process.
pub(crate) const MAX_NESTING: usize = 128;

/// How deep `dt` nests structs and lists: 0 for a scalar, 1 for a struct of scalars.
/// Iterative, so a hostile schema cannot exhaust the stack here.
pub(crate) fn nesting(dt: &DataType) -> usize {
    use DataType::*;
    let mut deepest = 0;
    let mut todo = vec![(dt, 0usize)];
    while let Some((t, d)) = todo.pop() {
        deepest = deepest.max(d);
        match t {
            List(f) | LargeList(f) | FixedSizeList(f, _) => todo.push((f.data_type(), d + 1)),
            Struct(fields) => todo.extend(fields.iter().map(|f| (f.data_type(), d + 1))),
            _ => {}
        }
    }
    deepest
}

/// [`MAX_NESTING`] for column `name`, as the schema error's message.
pub(crate) fn check_nesting(name: &str, dt: &DataType) -> Result<(), String> {
    let depth = nesting(dt);
    if depth > MAX_NESTING {
        return Err(format!(
            "column '{name}' nests structs and lists {depth} levels deep; proof reads at \
             most {MAX_NESTING} (as for a JSON context): store a context this deep as a JSON \
             string"
        ));
    }
    Ok(())
}

/// Whether a context (sub)type can be turned into JSON (call after [`check_nesting`]:
/// this one recurses).
pub(crate) fn supported(dt: &DataType) -> bool {
    use DataType::*;
    match dt {
        Null
        | Boolean
        | Int8
        | Int16
        | Int32
        | Int64
        | UInt8
        | UInt16
        | UInt32
        | UInt64
        | Float32
        | Float64
        | Utf8
        | LargeUtf8
        | Utf8View
        | Date32
        | Timestamp(_, _) => true,
        List(f) | LargeList(f) | FixedSizeList(f, _) => supported(f.data_type()),
        Struct(fields) => fields.iter().all(|f| supported(f.data_type())),
        Dictionary(_, v) => is_string(v),
        _ => false,
    }
}

impl ParquetColumns {
    /// Checks an Arrow schema (a Parquet file's, or a batch's from Python or Spark) for
    /// the record columns; errors name `path`. Returns the columns' positions among
    /// the projected ones, and the projected root columns in schema order.
    pub fn from_schema(
        schema: &arrow::datatypes::Schema,
        path: &Path,
    ) -> Result<(ParquetColumns, Vec<usize>), ProofError> {
        let err = |msg: String| ProofError::Schema {
            path: Location::file(path),
            msg,
        };
        let find = |name: &str| schema.fields().iter().position(|f| f.name() == name);
        let need = |name: &str, what: &str| {
            find(name).ok_or_else(|| {
                err(format!(
                    "missing required column '{name}' ({what}); columns present: {}",
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
        };
        // A record column given twice is ambiguous (which one did production log?), so
        // it is a schema error rather than a silent pick of the first.
        for name in ["ts", "request_id", "policy_id", "context", "verdict"] {
            let at: Vec<String> = schema
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| f.name() == name)
                .map(|(i, _)| (i + 1).to_string())
                .collect();
            if at.len() > 1 {
                return Err(err(format!(
                    "column '{name}' appears {} times (columns {}); a record column must be \
                     unique — drop or rename the extra ones",
                    at.len(),
                    at.join(" and ")
                )));
            }
        }
        let ts = need("ts", "timestamp, int64 epoch ms or RFC 3339 string")?;
        let rid = need("request_id", "string")?;
        let ctx = need("context", "JSON string or struct")?;
        let pid = find("policy_id");
        let verdict = find("verdict");
        let dt = |i: usize| schema.field(i).data_type().clone();
        match dt(ts) {
            DataType::Timestamp(_, _) | DataType::Int64 => {}
            ref d if is_string(d) => {}
            d => {
                return Err(err(format!(
                    "column 'ts' has type {d}; expected timestamp, int64 or string"
                )));
            }
        }
        if !is_string(&dt(rid)) {
            return Err(err(format!(
                "column 'request_id' has type {}; expected string",
                dt(rid)
            )));
        }
        if let Some(p) = pid
            && !is_string(&dt(p))
        {
            return Err(err(format!(
                "column 'policy_id' has type {}; expected string",
                dt(p)
            )));
        }
        if let Some(v) = verdict
            && !is_string(&dt(v))
        {
            return Err(err(format!(
                "column 'verdict' has type {}; expected string (ok, warn or fail)",
                dt(v)
            )));
        }
        check_nesting("context", &dt(ctx)).map_err(err)?;
        match dt(ctx) {
            ref d if is_string(d) => {}
            DataType::Struct(_) if supported(&dt(ctx)) => {}
            d => {
                return Err(err(format!(
                    "column 'context' has type {d}; expected a JSON string or a struct of \
                     booleans, numbers, strings, dates, timestamps, lists and structs"
                )));
            }
        }
        let mut roots: Vec<usize> = [Some(ts), Some(rid), Some(ctx), pid, verdict]
            .into_iter()
            .flatten()
            .collect();
        roots.sort_unstable();
        let pos = |i: usize| roots.iter().position(|&r| r == i).unwrap_or(0);
        let cols = ParquetColumns {
            ts: pos(ts),
            request_id: pos(rid),
            policy_id: pid.map(pos),
            context: pos(ctx),
            verdict: verdict.map(pos),
        };
        Ok((cols, roots))
    }
}

pub(crate) fn plain(a: &ArrayRef) -> ArrayRef {
    match a.data_type() {
        DataType::Dictionary(_, v) => arrow::compute::cast(a, v).unwrap_or_else(|_| a.clone()),
        _ => a.clone(),
    }
}

pub(crate) fn str_at(a: &dyn Array, i: usize) -> Option<&str> {
    if a.is_null(i) {
        return None;
    }
    match a.data_type() {
        DataType::Utf8 => Some(a.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => Some(a.as_string::<i64>().value(i)),
        DataType::Utf8View => Some(a.as_string_view().value(i)),
        _ => None,
    }
}

fn ts_at(a: &dyn Array, i: usize) -> Result<i64, Reason> {
    if a.is_null(i) {
        return Err(Reason::MissingTs);
    }
    let ms = match a.data_type() {
        DataType::Int64 => Some(a.as_primitive::<Int64Type>().value(i)),
        DataType::Timestamp(unit, _) => Some(match unit {
            TimeUnit::Second => a
                .as_primitive::<TimestampSecondType>()
                .value(i)
                .saturating_mul(1000),
            TimeUnit::Millisecond => a.as_primitive::<TimestampMillisecondType>().value(i),
            TimeUnit::Microsecond => a
                .as_primitive::<TimestampMicrosecondType>()
                .value(i)
                .div_euclid(1000),
            TimeUnit::Nanosecond => a
                .as_primitive::<TimestampNanosecondType>()
                .value(i)
                .div_euclid(1_000_000),
        }),
        _ => return str_at(a, i).and_then(parse_rfc3339_ms).ok_or(Reason::BadTs),
    };
    ms.and_then(check_epoch_ms).ok_or(Reason::BadTs)
}

fn num(x: f64) -> Value {
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// Converts one element of a supported array to JSON.
pub(crate) fn to_json(a: &dyn Array, i: usize) -> Value {
    if a.is_null(i) {
        return Value::Null;
    }
    match a.data_type() {
        DataType::Boolean => Value::Bool(a.as_boolean().value(i)),
        DataType::Int8 => a.as_primitive::<Int8Type>().value(i).into(),
        DataType::Int16 => a.as_primitive::<Int16Type>().value(i).into(),
        DataType::Int32 => a.as_primitive::<Int32Type>().value(i).into(),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i).into(),
        DataType::UInt8 => a.as_primitive::<UInt8Type>().value(i).into(),
        DataType::UInt16 => a.as_primitive::<UInt16Type>().value(i).into(),
        DataType::UInt32 => a.as_primitive::<UInt32Type>().value(i).into(),
        DataType::UInt64 => a.as_primitive::<UInt64Type>().value(i).into(),
        DataType::Float32 => num(f64::from(a.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => num(a.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            Value::String(str_at(a, i).unwrap_or_default().to_string())
        }
        DataType::Date32 => {
            let days = i64::from(a.as_primitive::<Date32Type>().value(i));
            let s = format_rfc3339_ms(days * 86_400_000);
            Value::String(s[..10].to_string())
        }
        DataType::Timestamp(_, _) => match ts_at(a, i) {
            Ok(ms) => Value::String(format_rfc3339_ms(ms)),
            Err(_) => Value::Null,
        },
        DataType::List(_) => {
            let l = a.as_list::<i32>().value(i);
            Value::Array((0..l.len()).map(|j| to_json(&l, j)).collect())
        }
        DataType::LargeList(_) => {
            let l = a.as_list::<i64>().value(i);
            Value::Array((0..l.len()).map(|j| to_json(&l, j)).collect())
        }
        DataType::FixedSizeList(_, _) => {
            let l = a.as_fixed_size_list().value(i);
            Value::Array((0..l.len()).map(|j| to_json(&l, j)).collect())
        }
        DataType::Struct(fields) => {
            let s = a.as_struct();
            let mut m = Map::new();
            for (f, col) in fields.iter().zip(s.columns()) {
                if !col.is_null(i) {
                    m.insert(f.name().clone(), to_json(col, i));
                }
            }
            Value::Object(m)
        }
        DataType::Dictionary(_, _) => {
            let plain = plain(&a.slice(i, 1));
            to_json(&plain, 0)
        }
        _ => Value::Null,
    }
}

/// A context column resolved once per batch: the common types are downcast here, so
/// converting a row walks typed arrays and list offsets instead of matching the data
/// type and slicing a new array for every element.
enum Col<'a> {
    Bool(&'a arrow::array::BooleanArray),
    Int64(&'a arrow::array::Int64Array),
    Float64(&'a arrow::array::Float64Array),
    Utf8(&'a arrow::array::StringArray),
    List(&'a arrow::array::ListArray, Box<Col<'a>>),
    /// The struct, its fields, and whether their names are all different.
    Struct(&'a arrow::array::StructArray, Vec<(&'a str, Col<'a>)>, bool),
    /// Any other supported type, converted element by element with [`to_json`].
    Other(&'a dyn Array),
}

impl<'a> Col<'a> {
    fn new(a: &'a dyn Array) -> Col<'a> {
        match a.data_type() {
            DataType::Boolean => Col::Bool(a.as_boolean()),
            DataType::Int64 => Col::Int64(a.as_primitive::<Int64Type>()),
            DataType::Float64 => Col::Float64(a.as_primitive::<Float64Type>()),
            DataType::Utf8 => Col::Utf8(a.as_string::<i32>()),
            DataType::List(_) => {
                let l = a.as_list::<i32>();
                Col::List(l, Box::new(Col::new(l.values().as_ref())))
            }
            DataType::Struct(fields) => {
                let s = a.as_struct();
                let children: Vec<_> = fields
                    .iter()
                    .zip(s.columns())
                    .map(|(f, c)| (f.name().as_str(), Col::new(c.as_ref())))
                    .collect();
                let unique = children_unique(&children);
                Col::Struct(s, children, unique)
            }
            _ => Col::Other(a),
        }
    }

    fn array(&self) -> &dyn Array {
        match self {
            Col::Bool(a) => *a,
            Col::Int64(a) => *a,
            Col::Float64(a) => *a,
            Col::Utf8(a) => *a,
            Col::List(a, _) => *a,
            Col::Struct(a, ..) => *a,
            Col::Other(a) => *a,
        }
    }

    /// [`Col::value`] written into `slot`, reusing the strings, arrays and object keys
    /// an earlier row left there (the row loop keeps one slot per batch). The slot
    /// ends up equal to `self.value(i)`.
    fn value_into(&self, i: usize, slot: &mut Value) {
        if self.array().is_null(i) {
            *slot = Value::Null;
            return;
        }
        match self {
            Col::Utf8(a) => match slot {
                Value::String(s) => {
                    s.clear();
                    s.push_str(a.value(i));
                }
                _ => *slot = Value::String(a.value(i).to_string()),
            },
            Col::List(a, child) => {
                let off = a.value_offsets();
                let (from, to) = (off[i] as usize, off[i + 1] as usize);
                let mut items = match std::mem::take(slot) {
                    Value::Array(v) => v,
                    _ => Vec::new(),
                };
                items.truncate(to - from);
                for (k, j) in (from..to).enumerate() {
                    if k < items.len() {
                        child.value_into(j, &mut items[k]);
                    } else {
                        let mut v = Value::Null;
                        child.value_into(j, &mut v);
                        items.push(v);
                    }
                }
                *slot = Value::Array(items);
            }
            // Field names twice in one struct: a later null field must not remove an
            // earlier one's value, so build it afresh.
            Col::Struct(_, children, true) => {
                let mut m = match std::mem::take(slot) {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                let mut kept = 0;
                for (name, c) in children {
                    if c.array().is_null(i) {
                        m.remove(*name);
                        continue;
                    }
                    kept += 1;
                    match m.get_mut(*name) {
                        Some(v) => c.value_into(i, v),
                        None => {
                            let mut v = Value::Null;
                            c.value_into(i, &mut v);
                            m.insert((*name).to_string(), v);
                        }
                    }
                }
                if m.len() != kept {
                    // Keys from a value of another shape: keep only this row's.
                    m.retain(|k, _| {
                        children
                            .iter()
                            .any(|(n, c)| *n == k.as_str() && !c.array().is_null(i))
                    });
                }
                *slot = Value::Object(m);
            }
            _ => *slot = self.value(i),
        }
    }

    /// Element `i` as JSON (null struct fields are left out, as in [`to_json`]).
    fn value(&self, i: usize) -> Value {
        if self.array().is_null(i) {
            return Value::Null;
        }
        match self {
            Col::Bool(a) => Value::Bool(a.value(i)),
            Col::Int64(a) => a.value(i).into(),
            Col::Float64(a) => num(a.value(i)),
            Col::Utf8(a) => Value::String(a.value(i).to_string()),
            Col::List(a, child) => {
                let off = a.value_offsets();
                let (from, to) = (off[i] as usize, off[i + 1] as usize);
                Value::Array((from..to).map(|j| child.value(j)).collect())
            }
            Col::Struct(_, children, _) => {
                let mut m = Map::new();
                for (name, c) in children {
                    if !c.array().is_null(i) {
                        m.insert((*name).to_string(), c.value(i));
                    }
                }
                Value::Object(m)
            }
            Col::Other(a) => to_json(*a, i),
        }
    }
}

/// True when no two fields of a struct share a name.
fn children_unique(children: &[(&str, Col<'_>)]) -> bool {
    let names: std::collections::HashSet<&str> = children.iter().map(|(n, _)| *n).collect();
    names.len() == children.len()
}

/// Turns the rows of a batch, in order, into records or rejection reasons and hands
/// each to `f` as soon as it is built: a record is evaluated and dropped before the
/// next is made, so a batch never holds thousands of context maps at once (the
/// allocator then reuses the same memory instead of consolidating freed chunks).
///
/// Arrow asserts rather than errs on some corrupt arrays: a row whose conversion
/// panics is rejected as `malformed` (all rows, if the batch's columns cannot even be
/// prepared). Only the conversion is guarded; `f` runs outside, so a panic there is
/// not mistaken for bad data.
pub fn for_each_row(
    batch: &RecordBatch,
    cols: &ParquetColumns,
    f: impl FnMut(Result<Record, Reason>),
) {
    for_each_row_with(batch, cols, &EVERYTHING, f)
}

/// The record columns of a batch with dictionaries decoded: ts, request id, policy
/// id, whether the context is a JSON string, the context and the verdict. `Err` when a
/// column cannot be decoded (every row of the batch is then rejected).
type Prepared = (
    ArrayRef,
    ArrayRef,
    Option<ArrayRef>,
    bool,
    ArrayRef,
    Option<ArrayRef>,
);

/// A row's recorded verdict (SPEC §11). A column cannot tell an absent value from a
/// null one, so a null is "no verdict" (as a null `policy_id` is "no policy id"); any
/// string but `ok`, `warn` or `fail` is `bad_verdict`.
fn verdict_at(col: Option<&ArrayRef>, i: usize) -> Result<Option<Verdict>, Reason> {
    let Some(col) = col.filter(|c| !c.is_null(i)) else {
        return Ok(None);
    };
    str_at(col, i)
        .and_then(Verdict::from_name)
        .map(Some)
        .ok_or(Reason::BadVerdict)
}

fn prepare(batch: &RecordBatch, cols: &ParquetColumns) -> Result<Prepared, String> {
    contain_panics(|| {
        let ctx = plain(batch.column(cols.context));
        (
            plain(batch.column(cols.ts)),
            plain(batch.column(cols.request_id)),
            cols.policy_id.map(|p| plain(batch.column(p))),
            is_string(ctx.data_type()),
            ctx,
            cols.verdict.map(|v| plain(batch.column(v))),
        )
    })
}

/// [`for_each_row`] reading a JSON-string context through `table` (only the parts
/// the policies can look up are built; the same strings are rejected). A struct
/// context is converted whole.
pub fn for_each_row_with(
    batch: &RecordBatch,
    cols: &ParquetColumns,
    table: &PathTable,
    mut f: impl FnMut(Result<Record, Reason>),
) {
    let prepared = prepare(batch, cols);
    let Ok((ts, rid, pid, ctx_is_json, ctx, verdict)) = prepared else {
        for _ in 0..batch.num_rows() {
            f(Err(Reason::Malformed));
        }
        return;
    };
    let ctx_col = contain_panics(|| Col::new(ctx.as_ref())).unwrap_or(Col::Other(ctx.as_ref()));
    let row = |i: usize| -> Result<Record, Reason> {
        let ts_ms = ts_at(&ts, i)?;
        let request_id = match str_at(&rid, i) {
            Some(s) if !s.is_empty() => s.to_string(),
            _ => return Err(Reason::MissingRequestId),
        };
        if ctx.is_null(i) {
            return Err(Reason::MissingContext);
        }
        let context = if ctx_is_json {
            let text = str_at(&ctx, i).unwrap_or_default();
            match table.read_str(text) {
                Ok(Value::Object(m)) => m,
                Ok(_) => return Err(Reason::MissingContext),
                Err(_) => return Err(Reason::Malformed),
            }
        } else {
            match ctx_col.value(i) {
                Value::Object(m) => m,
                _ => return Err(Reason::MissingContext),
            }
        };
        let verdict = verdict_at(verdict.as_ref(), i)?;
        let policy_id = pid.as_ref().and_then(|p| str_at(p, i)).map(String::from);
        Ok(Record {
            ts_ms,
            request_id,
            policy_id,
            context,
            verdict,
        })
    };
    for i in 0..batch.num_rows() {
        f(contain_panics(|| row(i)).unwrap_or(Err(Reason::Malformed)));
    }
}

/// [`for_each_row_with`] handing each row to `f` borrowed, for the pipeline: ids come
/// straight from the string arrays, and a JSON-string context is read in place into
/// one value reused across the batch (`replay::extract::InPlace`, the way of
/// `record::RecordBuf`). A struct context is converted whole, as in
/// [`for_each_row`], but into the same reused value. The same rows are rejected for
/// the same reasons.
pub fn for_each_row_ref(
    batch: &RecordBatch,
    cols: &ParquetColumns,
    table: &PathTable,
    mut f: impl FnMut(Result<RecordRef<'_>, Reason>),
) {
    let prepared = prepare(batch, cols);
    let Ok((ts, rid, pid, ctx_is_json, ctx, verdict_col)) = prepared else {
        // Columns that cannot be prepared: the owned path rejects every row.
        return for_each_row_with(batch, cols, table, |r| {
            f(r.as_ref().map(Record::borrowed).map_err(|e| *e))
        });
    };
    let ctx_col = if ctx_is_json {
        None
    } else {
        Some(contain_panics(|| Col::new(ctx.as_ref())).unwrap_or(Col::Other(ctx.as_ref())))
    };
    let mut slot = Value::Null;
    // A JSON-string context under an engine's table is read into slots, as
    // `RecordBuf` reads a JSONL context.
    let layout = table.layout().filter(|_| ctx_col.is_none());
    let mut slots = ContextSlots::default();
    for i in 0..batch.num_rows() {
        // The checks of `for_each_row_with`, in its order; only the conversion is
        // guarded, `f` runs outside.
        type Checked<'c> = (i64, &'c str, Option<&'c str>, Option<Verdict>);
        let checked = contain_panics(|| -> Result<Checked<'_>, Reason> {
            let ts_ms = ts_at(&ts, i)?;
            let request_id = match str_at(&rid, i) {
                Some(s) if !s.is_empty() => s,
                _ => return Err(Reason::MissingRequestId),
            };
            if ctx.is_null(i) {
                return Err(Reason::MissingContext);
            }
            let object = match (&ctx_col, layout) {
                // A struct context, converted whole as in `for_each_row_with`.
                (Some(col), _) => {
                    col.value_into(i, &mut slot);
                    slot.is_object()
                }
                (None, Some(layout)) => layout
                    .read_str(str_at(&ctx, i).unwrap_or_default(), &mut slots)
                    .map_err(|_| Reason::Malformed)?,
                (None, None) => {
                    let text = str_at(&ctx, i).unwrap_or_default();
                    let mut de = serde_json::Deserializer::from_str(text);
                    InPlace::context(&mut slot, table)
                        .deserialize(&mut de)
                        .and_then(|()| de.end())
                        .map_err(|_| Reason::Malformed)?;
                    slot.is_object()
                }
            };
            if !object {
                return Err(Reason::MissingContext);
            }
            let verdict = verdict_at(verdict_col.as_ref(), i)?;
            let policy_id = pid.as_ref().and_then(|p| str_at(p, i));
            Ok((ts_ms, request_id, policy_id, verdict))
        })
        .unwrap_or(Err(Reason::Malformed));
        match (checked, &slot) {
            (Ok((ts_ms, request_id, policy_id, verdict)), _) if let Some(layout) = layout => {
                f(Ok(RecordRef {
                    ts_ms,
                    request_id,
                    policy_id,
                    context: Ctx::Slots(&slots, layout),
                    verdict,
                }))
            }
            (Ok((ts_ms, request_id, policy_id, verdict)), Value::Object(context)) => {
                f(Ok(RecordRef {
                    ts_ms,
                    request_id,
                    policy_id,
                    context: Ctx::Map(context),
                    verdict,
                }))
            }
            (Ok(_), _) => f(Err(Reason::MissingContext)),
            (Err(e), _) => f(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, Fields, Schema};
    use std::sync::Arc;

    type Row = Result<(i64, String, Option<String>, Map<String, Value>), Reason>;

    /// Nesting is counted per struct and list level, for both engines' struct columns:
    /// the IR's `context` and OPA's `input` are refused past [`MAX_NESTING`] by name.
    #[test]
    fn nesting_is_counted_per_level_and_bounded_for_both_engines() {
        let deep = |levels: usize| {
            let mut t = DataType::Int64;
            for i in 0..levels {
                t = if i % 2 == 0 {
                    DataType::List(Arc::new(Field::new("item", t, true)))
                } else {
                    DataType::Struct(Fields::from(vec![Field::new("a", t, true)]))
                };
            }
            t
        };
        assert_eq!(nesting(&DataType::Utf8), 0);
        assert_eq!(nesting(&deep(1)), 1);
        let wide = DataType::Struct(Fields::from(vec![
            Field::new("x", DataType::Int64, true),
            Field::new("y", deep(5), true),
        ]));
        assert_eq!(nesting(&wide), 6);
        assert_eq!(nesting(&deep(1_000)), 1_000);
        assert!(check_nesting("context", &deep(MAX_NESTING)).is_ok());
        let schema = |name: &str, t: DataType| {
            let mut fields = vec![
                Field::new("ts", DataType::Int64, true),
                Field::new("request_id", DataType::Utf8, true),
                Field::new("decision_id", DataType::Utf8, true),
                Field::new("timestamp", DataType::Utf8, true),
                Field::new("path", DataType::Utf8, true),
            ];
            fields.push(Field::new(name, t, true));
            Schema::new(fields)
        };
        let t = deep(MAX_NESTING + 1); // a struct outermost
        let err = ParquetColumns::from_schema(&schema("context", t.clone()), Path::new("f"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("column 'context' nests structs and lists 129 levels deep"),
            "{err}"
        );
        let err = crate::engine::opa::parquet::roots(&schema("input", t)).unwrap_err();
        assert!(
            err.contains("column 'input' nests structs and lists 129 levels deep"),
            "{err}"
        );
    }

    fn batch(lines: &str, context: DataType) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("ts", DataType::Int64, true),
            Field::new("request_id", DataType::Utf8, true),
            Field::new("policy_id", DataType::Utf8, true),
            Field::new("context", context, true),
        ]);
        arrow::json::ReaderBuilder::new(Arc::new(schema))
            .build(std::io::Cursor::new(lines.as_bytes().to_vec()))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
    }

    /// The owned rows and the reused-slot rows of one batch.
    fn both(b: &RecordBatch, table: &PathTable) -> (Vec<Row>, Vec<Row>) {
        let cols = ParquetColumns {
            ts: 0,
            request_id: 1,
            policy_id: Some(2),
            context: 3,
            verdict: None,
        };
        let (mut owned, mut reused) = (Vec::new(), Vec::new());
        for_each_row_with(b, &cols, table, |r| {
            owned.push(r.map(|r| (r.ts_ms, r.request_id, r.policy_id, r.context)))
        });
        for_each_row_ref(b, &cols, table, |r| {
            reused.push(r.map(|r| {
                (
                    r.ts_ms,
                    r.request_id.to_string(),
                    r.policy_id.map(String::from),
                    r.context
                        .as_map()
                        .expect("a table without a layout")
                        .clone(),
                )
            }))
        });
        (owned, reused)
    }

    #[test]
    fn reused_slot_rows_equal_owned_rows() {
        let inner = Fields::from(vec![
            Field::new("c", DataType::Int64, true),
            Field::new("d", DataType::Float64, true),
        ]);
        let ctx = DataType::Struct(Fields::from(vec![
            Field::new(
                "a",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                true,
            ),
            Field::new("b", DataType::Struct(inner), true),
            Field::new("e", DataType::Boolean, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let lines = r#"{"ts":1,"request_id":"r1","policy_id":"p","context":{"a":["x","y","z"],"b":{"c":1,"d":2.5},"e":true,"s":"a long string"}}
{"ts":2,"request_id":"r2","context":{"a":["q"],"b":null,"s":"s"}}
{"ts":3,"request_id":"","context":{"a":[]}}
{"ts":4,"request_id":"r4","context":null}
{"ts":5,"request_id":"r5","context":{"a":null,"b":{"c":null,"d":1.0},"e":false}}
{"ts":6,"request_id":"r6","context":{"a":["1","2","3","4"],"b":{"c":7,"d":null},"s":null}}
"#;
        let (owned, reused) = both(&batch(lines, ctx), &EVERYTHING);
        assert_eq!(owned.len(), 6);
        assert_eq!(owned[2], Err(Reason::MissingRequestId));
        assert_eq!(owned[3], Err(Reason::MissingContext));
        assert_eq!(
            Value::Object(owned[5].as_ref().unwrap().3.clone()),
            serde_json::json!({"a":["1","2","3","4"],"b":{"c":7}})
        );
        assert_eq!(owned, reused);

        // JSON-string contexts under a pruned table, rows of changing shapes.
        let mut t = PathTable::empty();
        t.add_var("a.b");
        t.add_var("k");
        let lines = r#"{"ts":1,"request_id":"r1","context":"{\"a\":{\"b\":[1,2,3],\"x\":1},\"k\":\"long value\",\"z\":0}"}
{"ts":2,"request_id":"r2","context":"{\"a\":{\"b\":[\"y\"]},\"k\":{\"n\":1},\"k\":[true]}"}
{"ts":3,"request_id":"r3","context":"[1,2]"}
{"ts":4,"request_id":"r4","context":"{\"a\":{\"b\":1e400}}"}
{"ts":5,"request_id":"r5","context":"{\"a\":7}"}
{"ts":6,"request_id":"r6","context":"{}"}
"#;
        let (owned, reused) = both(&batch(lines, DataType::Utf8), &t);
        assert_eq!(owned[2], Err(Reason::MissingContext));
        assert_eq!(owned[3], Err(Reason::Malformed));
        assert_eq!(
            Value::Object(owned[1].as_ref().unwrap().3.clone()),
            serde_json::json!({"a":{"b":["y"]},"k":[true]})
        );
        assert_eq!(owned, reused);
    }

    #[test]
    fn slot_rows_after_rejected_rows_find_what_the_owned_rows_hold() {
        use crate::policy::expr::lookup_var;
        let vars: [Vec<String>; 2] = [
            vec!["a.b".into(), "k".into(), "a..b".into()],
            vec!["a".into(), "a.b".into(), "".into()],
        ];
        let t = PathTable::for_vars([&vars[0], &vars[1]]);
        let layout = t.layout().unwrap();
        // Each rejected row follows a row that filled slots; the rows after it must not
        // find any of them.
        let lines = r#"{"ts":1,"request_id":"r1","context":"{\"a\":{\"b\":[1],\"\":{\"b\":2}},\"k\":\"v\",\"\":0}"}
{"ts":2,"request_id":"r2","context":"{\"a\":{\"b\":5},\"k\":1e400}"}
{"ts":3,"request_id":"r3","context":"{}"}
{"ts":4,"request_id":"r4","context":"{\"a\":{\"b\":{\"c\":1}},\"a\":3,\"k\":[2]}"}
{"ts":5,"request_id":"","context":"{\"k\":9}"}
{"ts":6,"request_id":"r6","context":"{\"a.b\":4}"}
{"ts":7,"request_id":"r7","context":"[]"}
{"ts":8,"request_id":"r8","context":"{\"x\":1}"}
"#;
        let b = batch(lines, DataType::Utf8);
        let cols = ParquetColumns {
            ts: 0,
            request_id: 1,
            policy_id: Some(2),
            context: 3,
            verdict: None,
        };
        let mut owned = Vec::new();
        for_each_row_with(&b, &cols, &t, |r| owned.push(r));
        let mut seen = Vec::new();
        for_each_row_ref(&b, &cols, &t, |r| {
            seen.push(r.map(|r| {
                let Ctx::Slots(slots, l) = r.context else {
                    panic!("a layout table reads JSON contexts into slots");
                };
                let mut out: [Vec<Option<Value>>; 2] = Default::default();
                for (path, o) in out.iter_mut().enumerate() {
                    let mut got = smallvec::SmallVec::new();
                    l.resolve(path, slots, &mut got);
                    *o = got.iter().map(|v| v.cloned()).collect();
                }
                (r.ts_ms, out)
            }))
        });
        // Whole keys "a", "a.b", "a..b", "k" and "": `a` is kept whole, so the walks of
        // "a.b" and "a..b" read inside its slot.
        assert_eq!(layout.slots(), 5);
        let want: Vec<_> = owned
            .iter()
            .map(|r| {
                r.as_ref().map(|r| {
                    let find = |vs: &[String]| {
                        vs.iter()
                            .map(|v| lookup_var(&r.context, v).cloned())
                            .collect::<Vec<_>>()
                    };
                    (r.ts_ms, [find(&vars[0]), find(&vars[1])])
                })
            })
            .map(|r| r.map_err(|e| *e))
            .collect();
        assert_eq!(want, seen);
        assert_eq!(seen[1], Err(Reason::Malformed));
        assert_eq!(seen[4], Err(Reason::MissingRequestId));
        assert_eq!(seen[6], Err(Reason::MissingContext));
        let none = || [vec![None; 3], vec![None; 3]];
        assert_eq!(seen[2], Ok((3, none())));
        assert_eq!(seen[7], Ok((8, none())));
        // `a` named twice: its later value (not an object) hides the earlier `a.b`.
        assert_eq!(
            seen[3],
            Ok((
                4,
                [
                    vec![None, Some(serde_json::json!([2])), None],
                    vec![Some(serde_json::json!(3)), None, None]
                ]
            ))
        );
    }
}
