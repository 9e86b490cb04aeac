//! Runtime values of the expression language: JSON borrowed from the context or the
//! IR, bound reference lists, and the two time types (SPEC §1 "Types").
//!
//! Nothing here allocates: every value borrows from the record or the policy.

use std::cell::Cell;
use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::lists::ListData;
use super::time::{parse_duration_ms, parse_timestamp_ms};

/// Why an evaluation failed; the name is what reports and `adapt` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvalError {
    /// A `var` was found neither in the bound lists nor in the context.
    MissingVar,
    /// An argument had the wrong type (or a string did not parse as a time).
    Type,
    /// `max`/`min` of an empty array, or `threshold` over an empty array.
    Empty,
    /// A function was called with the wrong number of arguments.
    Arity,
    /// Time or number arithmetic left the representable range.
    Overflow,
    /// The record's evaluation budget is spent (`policy::budget`).
    Budget,
}

impl EvalError {
    /// Stable lower-case name used in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            EvalError::MissingVar => "missing_var",
            EvalError::Type => "type",
            EvalError::Empty => "empty",
            EvalError::Arity => "arity",
            EvalError::Overflow => "overflow",
            EvalError::Budget => "budget",
        }
    }
}

/// Result of evaluating an expression.
pub type EvalResult<'a> = Result<Val<'a>, EvalError>;

/// A value during evaluation.
#[derive(Debug, Clone, Copy)]
pub enum Val<'a> {
    /// JSON null.
    Null,
    /// JSON boolean.
    Bool(bool),
    /// JSON number, as f64.
    Num(f64),
    /// JSON string (may be read as a time where one is needed).
    Str(&'a str),
    /// JSON array.
    Arr(&'a [Value]),
    /// JSON object.
    Obj(&'a Map<String, Value>),
    /// A list bound with `--list` (an array of strings with a hash index).
    List(&'a ListData),
    /// A timestamp, epoch milliseconds.
    Time(i64),
    /// A duration, milliseconds.
    Dur(i64),
    /// A string literal of the IR that reads as a time, parsed once at load time. It is
    /// a string everywhere except where a time is needed.
    TimeStr(&'a str, Temporal),
}

impl<'a> Val<'a> {
    /// Borrows a JSON value.
    pub fn from_json(v: &'a Value) -> Val<'a> {
        match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => Val::Num(n.as_f64().unwrap_or(f64::NAN)),
            Value::String(s) => Val::Str(s),
            Value::Array(a) => Val::Arr(a),
            Value::Object(o) => Val::Obj(o),
        }
    }

    /// A pre-parsed time literal as the plain string it is.
    pub fn plain(self) -> Val<'a> {
        match self {
            Val::TimeStr(s, _) => Val::Str(s),
            v => v,
        }
    }

    /// The value as an array, if it is one.
    pub fn as_array(&self) -> Option<ArrView<'a>> {
        match *self {
            Val::Arr(a) => Some(ArrView::Json(a)),
            Val::List(l) => Some(ArrView::List(l)),
            _ => None,
        }
    }

    /// Reads the value as a time: timestamps and durations as they are, strings by
    /// the SPEC rule (leading `P` = duration, else timestamp).
    pub fn as_temporal(&self) -> Result<Temporal, EvalError> {
        match *self {
            Val::Time(t) => Ok(Temporal::Time(t)),
            Val::Dur(d) => Ok(Temporal::Dur(d)),
            Val::TimeStr(_, t) => Ok(t),
            Val::Str(s) if s.starts_with('P') => parse_duration_ms(s)
                .map(Temporal::Dur)
                .ok_or(EvalError::Type),
            Val::Str(s) => parse_timestamp_ms(s)
                .map(Temporal::Time)
                .ok_or(EvalError::Type),
            _ => Err(EvalError::Type),
        }
    }
}

/// A time value: either a point in time or a length of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporal {
    /// Epoch milliseconds.
    Time(i64),
    /// Milliseconds.
    Dur(i64),
}

impl Temporal {
    /// Back to a runtime value.
    pub fn into_val<'a>(self) -> Val<'a> {
        match self {
            Temporal::Time(t) => Val::Time(t),
            Temporal::Dur(d) => Val::Dur(d),
        }
    }
}

/// A read-only view of an array value.
#[derive(Debug, Clone, Copy)]
pub enum ArrView<'a> {
    /// A JSON array.
    Json(&'a [Value]),
    /// A bound list.
    List(&'a ListData),
}

impl<'a> ArrView<'a> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            ArrView::Json(a) => a.len(),
            ArrView::List(l) => l.values.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` as a value.
    pub fn get(&self, i: usize) -> Val<'a> {
        match *self {
            ArrView::Json(a) => Val::from_json(&a[i]),
            ArrView::List(l) => Val::Str(&l.values[i]),
        }
    }

    /// Iterates the elements.
    pub fn iter(self) -> impl Iterator<Item = Val<'a>> {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// Work units of reading every element (`policy::budget`).
    pub fn units(&self) -> usize {
        self.len()
    }

    /// Work units of looking one value up: a scan of a JSON array, nothing for a
    /// bound list's index.
    pub fn lookup_units(&self) -> usize {
        match self {
            ArrView::Json(a) => a.len(),
            ArrView::List(_) => 0,
        }
    }

    /// True when `x` equals (JSON equality) an element.
    pub fn contains(&self, x: &Val<'_>) -> bool {
        match (self, x.plain()) {
            (ArrView::List(l), Val::Str(s)) => l.set.contains(s),
            (ArrView::List(_), _) => false,
            (ArrView::Json(a), _) => a.iter().any(|e| json_eq(&Val::from_json(e), x)),
        }
    }
}

/// The work set operations and equality actually did on this thread since it
/// started: not budget units (those are charged from operand sizes before the work),
/// but what ran. Tests read it to show that an op over two large arrays is linear.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Work {
    /// Array elements hashed, to build a set index or to probe one.
    pub hashed: u64,
    /// JSON equality comparisons (`value::json_eq` calls, nested ones included).
    pub compared: u64,
}

thread_local! {
    static WORK: Cell<Work> = const { Cell::new(Work { hashed: 0, compared: 0 }) };
}

/// This thread's [`Work`] so far; subtract two readings to measure a call.
pub fn work() -> Work {
    WORK.with(Cell::get)
}

/// Counts one element hashed.
pub(crate) fn did_hash() {
    WORK.with(|w| {
        let mut v = w.get();
        v.hashed += 1;
        w.set(v);
    });
}

/// Counts one equality comparison.
pub(crate) fn did_compare() {
    WORK.with(|w| {
        let mut v = w.get();
        v.compared += 1;
        w.set(v);
    });
}

/// JSON equality with numbers compared numerically; a time compared with a string
/// reads the string as a time.
pub fn json_eq(a: &Val<'_>, b: &Val<'_>) -> bool {
    did_compare();
    let (a, b) = (&a.plain(), &b.plain());
    match (a, b) {
        (Val::Null, Val::Null) => true,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Num(x), Val::Num(y)) => x == y,
        (Val::Str(x), Val::Str(y)) => x == y,
        (Val::Obj(x), Val::Obj(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    y.get(k)
                        .is_some_and(|w| json_eq(&Val::from_json(v), &Val::from_json(w)))
                })
        }
        (Val::Time(_) | Val::Dur(_), _) | (_, Val::Time(_) | Val::Dur(_)) => {
            matches!((a.as_temporal(), b.as_temporal()), (Ok(x), Ok(y)) if x == y)
        }
        _ => match (a.as_array(), b.as_array()) {
            (Some(x), Some(y)) => {
                x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| json_eq(&p, &q))
            }
            _ => false,
        },
    }
}

/// Work units of `json_eq(a, b)` at the top level: the element or key counts of both
/// when both are arrays or both objects (scalars and mixed types cost nothing).
pub fn eq_units(a: &Val<'_>, b: &Val<'_>) -> usize {
    match (a.plain(), b.plain()) {
        (Val::Obj(x), Val::Obj(y)) => x.len() + y.len(),
        (x, y) => match (x.as_array(), y.as_array()) {
            (Some(x), Some(y)) => x.units() + y.units(),
            _ => 0,
        },
    }
}

/// Orders two numbers, timestamps or durations (`lt le gt ge`, `range_min/max`).
pub fn compare(a: &Val<'_>, b: &Val<'_>) -> Result<Ordering, EvalError> {
    if let (Val::Num(x), Val::Num(y)) = (a, b) {
        return x.partial_cmp(y).ok_or(EvalError::Type);
    }
    match (a.as_temporal()?, b.as_temporal()?) {
        (Temporal::Time(x), Temporal::Time(y)) | (Temporal::Dur(x), Temporal::Dur(y)) => {
            Ok(x.cmp(&y))
        }
        _ => Err(EvalError::Type),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_numerically() {
        let one = json!(1);
        let one_f = json!(1.0);
        assert!(json_eq(&Val::from_json(&one), &Val::from_json(&one_f)));
        let a = json!([1, "x", {"k": [2.0]}]);
        let b = json!([1.0, "x", {"k": [2]}]);
        assert!(json_eq(&Val::from_json(&a), &Val::from_json(&b)));
        assert!(!json_eq(&Val::Str("1"), &Val::Num(1.0)));
    }

    #[test]
    fn compare_times_and_mixed_types() {
        assert_eq!(
            compare(&Val::Str("2026-01-01"), &Val::Str("2026-01-02T00:00:00Z")),
            Ok(Ordering::Less)
        );
        assert_eq!(compare(&Val::Dur(5), &Val::Str("PT1S")), Ok(Ordering::Less));
        assert_eq!(
            compare(&Val::Time(5), &Val::Str("PT1S")),
            Err(EvalError::Type)
        );
        assert_eq!(
            compare(&Val::Num(1.0), &Val::Str("x")),
            Err(EvalError::Type)
        );
        assert_eq!(
            compare(&Val::Bool(true), &Val::Bool(false)),
            Err(EvalError::Type)
        );
    }
}
