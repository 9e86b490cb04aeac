//! Set operations over arrays (SPEC §1 rule ops `membership`, `non_membership`,
//! `non_intersection`): O(n + m) whatever the sizes.
//!
//! A bound list carries its own hash index. Two JSON arrays get a hash index of one
//! side, built per evaluation over a canonical hash of each element: values that are
//! equal under SPEC §1 equality (numbers numerically, objects whatever their key
//! order) hash alike, and the hasher is randomly keyed per process so that a record
//! cannot be built to collide. Small pairs are compared directly: an index costs more
//! than a few comparisons.

use std::collections::HashSet;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};

use serde_json::Value;

use super::value::{ArrView, Val, json_eq};

/// Below this many element pairs (n × m) a nested loop beats building an index.
const DIRECT_PAIRS: usize = 64;

/// An element of a JSON array, or a string of a bound list, with its canonical hash.
struct Key<'a> {
    hash: u64,
    val: KeyVal<'a>,
}

#[derive(Clone, Copy)]
enum KeyVal<'a> {
    Json(&'a Value),
    Str(&'a str),
}

impl<'a> KeyVal<'a> {
    fn val(self) -> Val<'a> {
        match self {
            KeyVal::Json(v) => Val::from_json(v),
            KeyVal::Str(s) => Val::Str(s),
        }
    }
}

impl Hash for Key<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.hash);
    }
}

impl PartialEq for Key<'_> {
    fn eq(&self, other: &Self) -> bool {
        // Equal values hash alike: only a full-hash match is compared (the table's
        // own probe would otherwise compare on a 7-bit tag match).
        self.hash == other.hash && json_eq(&self.val.val(), &other.val.val())
    }
}

impl Eq for Key<'_> {}

/// Tags keep values of different types apart (`"1"` vs `1`, `[]` vs `{}`).
const T_NULL: u8 = 0;
const T_BOOL: u8 = 1;
const T_NUM: u8 = 2;
const T_STR: u8 = 3;
const T_ARR: u8 = 4;
const T_OBJ: u8 = 5;

fn hash_str<H: Hasher>(s: &str, h: &mut H) {
    h.write_u8(T_STR);
    s.hash(h);
}

/// Feeds the canonical form of `v` to `h`. Object entries are hashed one by one with
/// fresh hashers of `state` and summed, so key order never matters.
fn hash_value<H: Hasher>(state: &RandomState, v: &Value, h: &mut H) {
    match v {
        Value::Null => h.write_u8(T_NULL),
        Value::Bool(b) => {
            h.write_u8(T_BOOL);
            h.write_u8(u8::from(*b));
        }
        Value::Number(n) => {
            h.write_u8(T_NUM);
            // Equality is on the f64 (as `Val::from_json` reads it); -0 equals 0.
            let x = n.as_f64().unwrap_or(f64::NAN);
            let x = if x == 0.0 { 0.0 } else { x };
            h.write_u64(x.to_bits());
        }
        Value::String(s) => hash_str(s, h),
        Value::Array(a) => {
            h.write_u8(T_ARR);
            h.write_usize(a.len());
            for e in a {
                hash_value(state, e, h);
            }
        }
        Value::Object(o) => {
            h.write_u8(T_OBJ);
            h.write_usize(o.len());
            let mut sum = 0u64;
            for (k, e) in o {
                let mut eh = state.build_hasher();
                k.hash(&mut eh);
                hash_value(state, e, &mut eh);
                sum = sum.wrapping_add(eh.finish());
            }
            h.write_u64(sum);
        }
    }
}

/// A hash index over the elements of one array.
struct Index<'a> {
    state: RandomState,
    set: HashSet<Key<'a>>,
}

impl<'a> Index<'a> {
    fn of(arr: ArrView<'a>) -> Index<'a> {
        let state = RandomState::new();
        let mut set = HashSet::with_capacity(arr.len());
        for i in 0..arr.len() {
            let k = key(&state, arr, i);
            set.insert(k);
        }
        Index { state, set }
    }

    fn contains(&self, arr: ArrView<'a>, i: usize) -> bool {
        self.set.contains(&key(&self.state, arr, i))
    }
}

fn key<'a>(state: &RandomState, arr: ArrView<'a>, i: usize) -> Key<'a> {
    super::value::did_hash();
    let mut h = state.build_hasher();
    let val = match arr {
        ArrView::Json(a) => {
            hash_value(state, &a[i], &mut h);
            KeyVal::Json(&a[i])
        }
        ArrView::List(l) => {
            hash_str(&l.values[i], &mut h);
            KeyVal::Str(&l.values[i])
        }
    };
    Key {
        hash: h.finish(),
        val,
    }
}

/// Whether every element of `xs` is in `set` (`want_in`), or none is (`!want_in`).
pub fn each_in(xs: ArrView<'_>, set: ArrView<'_>, want_in: bool) -> bool {
    let direct =
        matches!(set, ArrView::List(_)) || xs.len().saturating_mul(set.len()) <= DIRECT_PAIRS;
    if direct {
        return xs.iter().all(|x| set.contains(&x) == want_in);
    }
    let index = Index::of(set);
    (0..xs.len()).all(|i| index.contains(xs, i) == want_in)
}

/// Whether `a` and `b` share no element.
pub fn disjoint(a: ArrView<'_>, b: ArrView<'_>) -> bool {
    // Probe the list side when there is one: it has its index already.
    let (probe, set) = match (a, b) {
        (ArrView::List(_), ArrView::Json(_)) => (b, a),
        (ArrView::Json(_), ArrView::List(_)) => (a, b),
        // Index the smaller side, probe the larger (less memory, same O(n + m)).
        _ if a.len() <= b.len() => (b, a),
        _ => (a, b),
    };
    if matches!(set, ArrView::List(_)) || probe.len().saturating_mul(set.len()) <= DIRECT_PAIRS {
        return !probe.iter().any(|x| set.contains(&x));
    }
    let index = Index::of(set);
    !(0..probe.len()).any(|i| index.contains(probe, i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::lists::ListData;
    use serde_json::json;

    fn arr(v: &Value) -> ArrView<'_> {
        ArrView::Json(v.as_array().unwrap())
    }

    /// `n` elements of every kind, so that the index path (n × m > DIRECT_PAIRS) is the
    /// one under test.
    fn big(extra: Value) -> Value {
        let mut v: Vec<Value> = (0..40).map(|i| json!(format!("s{i}"))).collect();
        v.push(extra);
        Value::Array(v)
    }

    #[test]
    fn index_equality_is_json_equality() {
        let cases = [
            (json!(1), json!(1.0), true),
            (json!(0), json!(-0.0), true),
            (json!(1), json!("1"), false),
            (
                json!({"a": 1, "b": [2]}),
                json!({"b": [2.0], "a": 1.0}),
                true,
            ),
            (json!({"a": 1}), json!({"a": 1, "b": 2}), false),
            (json!([1, 2]), json!([2, 1]), false),
            (json!([]), json!({}), false),
            (json!(null), json!(false), false),
            (json!("KP"), json!("kp"), false),
            (json!(u64::MAX), json!(18446744073709551615.0), true),
        ];
        for (x, y, equal) in cases {
            let (xs, set) = (json!([x.clone()]), big(y.clone()));
            assert_eq!(each_in(arr(&xs), arr(&set), true), equal, "{x} in {set}");
            assert_eq!(disjoint(arr(&set), arr(&xs)), !equal, "{x} vs {set}");
            // The direct path agrees.
            let one = json!([y]);
            assert_eq!(each_in(arr(&xs), arr(&one), true), equal);
        }
    }

    #[test]
    fn membership_and_disjointness_over_indexes() {
        let set = big(json!(7));
        let inside = json!(["s3", 7.0, "s39"]);
        let mixed = json!(["s3", "zz"]);
        let outside = json!(["zz", 8, [7]]);
        assert!(each_in(arr(&inside), arr(&set), true));
        assert!(!each_in(arr(&mixed), arr(&set), true));
        assert!(!each_in(arr(&mixed), arr(&set), false));
        assert!(each_in(arr(&outside), arr(&set), false));
        assert!(!disjoint(arr(&set), arr(&mixed)));
        assert!(disjoint(arr(&outside), arr(&set)));
        let list = ListData::new((0..40).map(|i| format!("s{i}")).collect());
        assert!(!disjoint(ArrView::List(&list), arr(&mixed)));
        assert!(disjoint(arr(&outside), ArrView::List(&list)));
        // A bound list probed into an indexed JSON array.
        let strings: Vec<Value> = (0..50).map(|i| json!(format!("s{i}"))).collect();
        let strings = Value::Array(strings);
        assert!(each_in(ArrView::List(&list), arr(&strings), true));
        assert!(!each_in(ArrView::List(&list), arr(&set), false));
    }
}
