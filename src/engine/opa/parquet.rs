//! OPA decision events in Parquet (SPEC §4): the columns `decision_id`, `timestamp`
//! (a timestamp of any unit, or an RFC 3339 string), `path`, `input` (a JSON string or
//! a struct), and optionally `result` (a JSON string; null = undefined), `erased`,
//! `masked` (lists of strings) and `nd_builtin_cache` (a JSON string). A row becomes
//! the JSON object of the event and is read by the same [`super::parse_event`] as a
//! log line, so both front doors accept and reject alike.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Schema, TimeUnit};
use serde_json::{Map, Value};

use crate::engine::Reason;
use crate::engine::ir::parquet::{check_nesting, is_string, plain, str_at, supported, to_json};
use crate::panics::contain_panics;

const REQUIRED: [&str; 4] = ["decision_id", "timestamp", "path", "input"];
const OPTIONAL: [&str; 4] = ["result", "erased", "masked", "nd_builtin_cache"];

/// The root columns an OPA replay reads, in schema order, or what is wrong.
pub fn roots(schema: &Schema) -> Result<Vec<usize>, String> {
    let present = || {
        schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut roots = Vec::new();
    for name in REQUIRED.iter().chain(&OPTIONAL) {
        let at: Vec<usize> = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| f.name() == name)
            .map(|(i, _)| i)
            .collect();
        match at.as_slice() {
            [] if REQUIRED.contains(name) => {
                return Err(format!(
                    "missing required column '{name}' of an OPA decision event; columns \
                     present: {}",
                    present()
                ));
            }
            [] => {}
            [i] => {
                let dt = schema.field(*i).data_type();
                check_nesting(name, dt)?;
                let ok = match *name {
                    "timestamp" => matches!(dt, DataType::Timestamp(..)) || is_string(dt),
                    "input" => is_string(dt) || matches!(dt, DataType::Struct(_)) && supported(dt),
                    "erased" | "masked" => {
                        matches!(dt, DataType::List(f) if is_string(f.data_type()))
                    }
                    _ => is_string(dt),
                };
                if !ok {
                    return Err(format!(
                        "column '{name}' has type {dt}; see SPEC §4 for the OPA event columns"
                    ));
                }
                roots.push(*i);
            }
            _ => {
                return Err(format!(
                    "column '{name}' appears {} times; a record column must be unique",
                    at.len()
                ));
            }
        }
    }
    roots.sort_unstable();
    Ok(roots)
}

/// Writes row `i` of `batch` (projected to [`roots`]) as the JSON object of its event.
pub fn row_json(batch: &RecordBatch, i: usize, out: &mut Vec<u8>) -> Result<(), Reason> {
    let obj = contain_panics(|| row_object(batch, i))
        .map_err(|_| Reason::Malformed)?
        .ok_or(Reason::Malformed)?;
    serde_json::to_writer(out, &Value::Object(obj)).map_err(|_| Reason::Malformed)
}

fn row_object(batch: &RecordBatch, i: usize) -> Option<Map<String, Value>> {
    let mut m = Map::new();
    for (field, col) in batch.schema().fields().iter().zip(batch.columns()) {
        let col = plain(col);
        if col.is_null(i) {
            continue; // an absent key, as a JSON writer leaves it out
        }
        let name = field.name().as_str();
        let v = match name {
            "timestamp" => match col.data_type() {
                DataType::Timestamp(unit, _) => {
                    let n = col.as_primitive::<arrow::datatypes::Int64Type>().value(i) as i128;
                    let ns = match unit {
                        TimeUnit::Second => n * 1_000_000_000,
                        TimeUnit::Millisecond => n * 1_000_000,
                        TimeUnit::Microsecond => n * 1_000,
                        TimeUnit::Nanosecond => n,
                    };
                    Value::String(rfc3339_ns(ns)?)
                }
                _ => Value::String(str_at(&col, i)?.to_string()),
            },
            "input" if !is_string(col.data_type()) => to_json(&col, i),
            "input" | "result" | "nd_builtin_cache" => {
                serde_json::from_str(str_at(&col, i)?).ok()?
            }
            "erased" | "masked" => {
                let l = col.as_list::<i32>().value(i);
                let l = plain(&l);
                Value::Array(
                    (0..l.len())
                        .filter_map(|j| str_at(&l, j).map(|s| Value::String(s.to_string())))
                        .collect(),
                )
            }
            _ => Value::String(str_at(&col, i)?.to_string()),
        };
        m.insert(name.to_string(), v);
    }
    Some(m)
}

/// RFC 3339 UTC with nine fractional digits.
fn rfc3339_ns(ns: i128) -> Option<String> {
    let secs = i64::try_from(ns.div_euclid(1_000_000_000)).ok()?;
    let nanos = ns.rem_euclid(1_000_000_000) as u32;
    let t = chrono::DateTime::from_timestamp(secs, nanos)?;
    Some(t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
}
