//! Rule ops (SPEC §1 "Rule ops"): what passes, what fails, what is an error, and the
//! default cost of each op.

use super::budget::charge;
use super::set;
use super::value::{EvalError, Val, compare, eq_units, json_eq};

/// A rule's comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// lhs = rhs.
    Eq,
    /// lhs ≠ rhs.
    Ne,
    /// lhs < rhs.
    Lt,
    /// lhs ≤ rhs.
    Le,
    /// lhs > rhs.
    Gt,
    /// lhs ≥ rhs.
    Ge,
    /// lhs ≥ rhs.
    RangeMin,
    /// lhs ≤ rhs.
    RangeMax,
    /// every element of lhs is in rhs.
    Membership,
    /// no element of lhs is in rhs.
    NonMembership,
    /// lhs and rhs share no element.
    NonIntersection,
    /// share of `true` in lhs ≥ rhs.
    Threshold,
}

/// Every op, for listings and tests.
pub const ALL_OPS: [Op; 12] = [
    Op::Eq,
    Op::Ne,
    Op::Lt,
    Op::Le,
    Op::Gt,
    Op::Ge,
    Op::RangeMin,
    Op::RangeMax,
    Op::Membership,
    Op::NonMembership,
    Op::NonIntersection,
    Op::Threshold,
];

impl Op {
    /// The IR name.
    pub fn name(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Lt => "lt",
            Op::Le => "le",
            Op::Gt => "gt",
            Op::Ge => "ge",
            Op::RangeMin => "range_min",
            Op::RangeMax => "range_max",
            Op::Membership => "membership",
            Op::NonMembership => "non_membership",
            Op::NonIntersection => "non_intersection",
            Op::Threshold => "threshold",
        }
    }

    /// Looks an op up by its IR name.
    pub fn parse(s: &str) -> Option<Op> {
        ALL_OPS.into_iter().find(|o| o.name() == s)
    }

    /// Cost under the `basic` selector and for rules a weights file does not name.
    pub fn default_cost(self) -> u64 {
        match self {
            Op::Eq | Op::Ne => 1,
            Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::RangeMin | Op::RangeMax => 2,
            Op::Membership | Op::NonMembership => 10,
            Op::NonIntersection => 15,
            Op::Threshold => 20,
        }
    }

    /// Applies the op: `Ok(true)` passes, `Ok(false)` fails. Set ops are O(n + m)
    /// (`policy::set`); every op charges its work to the record's budget first
    /// (`policy::budget`), so an op over the cap errors without doing the work.
    pub fn apply(self, lhs: &Val<'_>, rhs: &Val<'_>) -> Result<bool, EvalError> {
        match self {
            Op::Eq | Op::Ne => {
                charge(eq_units(lhs, rhs))?;
                Ok(json_eq(lhs, rhs) == (self == Op::Eq))
            }
            Op::Lt => compare(lhs, rhs).map(|o| o.is_lt()),
            Op::Le | Op::RangeMax => compare(lhs, rhs).map(|o| o.is_le()),
            Op::Gt => compare(lhs, rhs).map(|o| o.is_gt()),
            Op::Ge | Op::RangeMin => compare(lhs, rhs).map(|o| o.is_ge()),
            Op::Membership | Op::NonMembership => {
                let set = rhs.as_array().ok_or(EvalError::Type)?;
                let want_in = self == Op::Membership;
                match lhs.as_array() {
                    Some(xs) => {
                        charge(xs.units() + set.lookup_units())?;
                        Ok(set::each_in(xs, set, want_in))
                    }
                    None => {
                        charge(1 + set.lookup_units())?;
                        Ok(set.contains(lhs) == want_in)
                    }
                }
            }
            Op::NonIntersection => {
                let (a, b) = (
                    lhs.as_array().ok_or(EvalError::Type)?,
                    rhs.as_array().ok_or(EvalError::Type)?,
                );
                // A bound list side is probed through its index: only JSON arrays cost.
                charge(a.lookup_units() + b.lookup_units())?;
                Ok(set::disjoint(a, b))
            }
            Op::Threshold => {
                let xs = lhs.as_array().ok_or(EvalError::Type)?;
                if xs.is_empty() {
                    return Err(EvalError::Empty);
                }
                charge(xs.units())?;
                let Val::Num(min) = rhs else {
                    return Err(EvalError::Type);
                };
                let mut yes = 0usize;
                for x in xs.iter() {
                    match x {
                        Val::Bool(true) => yes += 1,
                        Val::Bool(false) => {}
                        _ => return Err(EvalError::Type),
                    }
                }
                Ok(yes as f64 / xs.len() as f64 >= *min)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::lists::ListData;
    use serde_json::{Value, json};

    fn apply(op: &str, l: Value, r: Value) -> Result<bool, EvalError> {
        Op::parse(op)
            .unwrap()
            .apply(&Val::from_json(&l), &Val::from_json(&r))
    }

    #[test]
    fn names_round_trip_and_costs() {
        for op in ALL_OPS {
            assert_eq!(Op::parse(op.name()), Some(op));
        }
        assert_eq!(Op::parse("regex"), None);
        let costs: Vec<u64> = ALL_OPS.iter().map(|o| o.default_cost()).collect();
        assert_eq!(costs, [1, 1, 2, 2, 2, 2, 2, 2, 10, 10, 15, 20]);
    }

    #[test]
    fn comparisons() {
        assert_eq!(apply("eq", json!(1), json!(1.0)), Ok(true));
        assert_eq!(apply("ne", json!("a"), json!("A")), Ok(true));
        assert_eq!(apply("lt", json!(1), json!(2)), Ok(true));
        assert_eq!(apply("le", json!(2), json!(2)), Ok(true));
        assert_eq!(apply("gt", json!(1), json!(2)), Ok(false));
        assert_eq!(
            apply("ge", json!("2026-01-01"), json!("2025-12-31")),
            Ok(true)
        );
        assert_eq!(apply("range_min", json!(50), json!(50)), Ok(true));
        assert_eq!(apply("range_min", json!(49.9), json!(50)), Ok(false));
        assert_eq!(apply("range_max", json!(3), json!(2)), Ok(false));
        assert_eq!(
            apply("range_max", json!("x"), json!(2)),
            Err(EvalError::Type)
        );
        assert_eq!(apply("lt", json!(null), json!(2)), Err(EvalError::Type));
    }

    #[test]
    fn set_ops() {
        assert_eq!(
            apply("membership", json!("DE"), json!(["DE", "FR"])),
            Ok(true)
        );
        assert_eq!(
            apply("membership", json!(["DE", "X"]), json!(["DE", "FR"])),
            Ok(false)
        );
        assert_eq!(apply("membership", json!([]), json!(["DE"])), Ok(true));
        assert_eq!(
            apply("membership", json!("DE"), json!("DE")),
            Err(EvalError::Type)
        );
        assert_eq!(
            apply("non_membership", json!(["a", "b"]), json!(["c"])),
            Ok(true)
        );
        assert_eq!(
            apply("non_membership", json!(["a", "c"]), json!(["c"])),
            Ok(false)
        );
        assert_eq!(apply("non_membership", json!(1), json!([1.0])), Ok(false));
        assert_eq!(
            apply("non_intersection", json!(["a"]), json!(["b"])),
            Ok(true)
        );
        assert_eq!(
            apply("non_intersection", json!(["a", "b"]), json!(["b"])),
            Ok(false)
        );
        assert_eq!(
            apply("non_intersection", json!("a"), json!(["b"])),
            Err(EvalError::Type)
        );
        // Strings compare case-sensitively.
        assert_eq!(
            apply("non_membership", json!("kp"), json!(["KP"])),
            Ok(true)
        );
    }

    #[test]
    fn set_ops_on_bound_lists() {
        let list = ListData::new(vec!["KP".into(), "IR".into()]);
        let countries = json!(["DE", "IR"]);
        let r = Op::NonIntersection.apply(&Val::from_json(&countries), &Val::List(&list));
        assert_eq!(r, Ok(false));
        let r = Op::NonIntersection.apply(&Val::List(&list), &Val::from_json(&countries));
        assert_eq!(r, Ok(false));
        let one = json!(1);
        assert_eq!(
            Op::Membership.apply(&Val::from_json(&one), &Val::List(&list)),
            Ok(false)
        );
    }

    #[test]
    fn threshold() {
        assert_eq!(
            apply("threshold", json!([true, false, true, true]), json!(0.75)),
            Ok(true)
        );
        assert_eq!(
            apply("threshold", json!([true, false]), json!(0.75)),
            Ok(false)
        );
        assert_eq!(
            apply("threshold", json!([]), json!(0.5)),
            Err(EvalError::Empty)
        );
        assert_eq!(
            apply("threshold", json!([true, 1]), json!(0.5)),
            Err(EvalError::Type)
        );
        assert_eq!(
            apply("threshold", json!([true]), json!("0.5")),
            Err(EvalError::Type)
        );
    }
}
