//! §12's fixed readings of a decision value: its verdict, and whether two values are
//! the same (for `changed_values` and the cause's "differs"). Pure functions.

use regorus::Value;

use crate::orchestrator::Verdict;

/// The verdict of a decision value (`Value::Undefined` = undefined), and the
/// evaluation error it counts (`verdict_type`) when the value has no verdict reading.
pub fn verdict_of(v: &Value) -> (Verdict, Option<&'static str>) {
    match v {
        Value::Bool(true) => (Verdict::Ok, None),
        Value::Bool(false) | Value::Undefined => (Verdict::Fail, None),
        Value::Object(o) => {
            let member = |k: &str| match o.get(&Value::from(k)) {
                Some(Value::Bool(b)) => Some(*b),
                _ => None,
            };
            match member("allowed").or_else(|| member("allow")) {
                Some(true) => (Verdict::Ok, None),
                Some(false) => (Verdict::Fail, None),
                None => (Verdict::Fail, Some("verdict_type")),
            }
        }
        Value::Array(a) if a.is_empty() => (Verdict::Ok, None),
        Value::Set(s) if s.is_empty() => (Verdict::Ok, None),
        Value::Array(_) | Value::Set(_) => (Verdict::Fail, None),
        _ => (Verdict::Fail, Some("verdict_type")),
    }
}

/// Whether two decision values are the same: JSON comparison with numbers compared
/// numerically and sets as sets (a recorded array matches a set of the same elements,
/// since a JSON log can only write a set as an array); undefined equals only undefined.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Undefined, Value::Undefined) => true,
        (Value::Undefined, _) | (_, Value::Undefined) => false,
        (Value::Set(s), Value::Array(arr)) | (Value::Array(arr), Value::Set(s)) => {
            arr.len() == s.len() && arr.iter().all(|x| s.iter().any(|y| same_value(x, y)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| same_value(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        // Numbers compare numerically in regorus (1 == 1.0); sets by their elements.
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(s: &str) -> Value {
        Value::from_json_str(s).unwrap()
    }

    #[test]
    fn verdicts_follow_section_12() {
        assert_eq!(verdict_of(&j("true")), (Verdict::Ok, None));
        assert_eq!(verdict_of(&j("false")), (Verdict::Fail, None));
        assert_eq!(verdict_of(&Value::Undefined), (Verdict::Fail, None));
        assert_eq!(
            verdict_of(&j(r#"{"allowed": true, "allow": false}"#)).0,
            Verdict::Ok
        );
        assert_eq!(
            verdict_of(&j(r#"{"allowed": "yes", "allow": false}"#)).0,
            Verdict::Fail
        );
        assert_eq!(verdict_of(&j(r#"{"allow": true}"#)), (Verdict::Ok, None));
        assert_eq!(
            verdict_of(&j(r#"{"status": 200}"#)),
            (Verdict::Fail, Some("verdict_type"))
        );
        assert_eq!(verdict_of(&j("[]")), (Verdict::Ok, None));
        assert_eq!(verdict_of(&Value::new_set()), (Verdict::Ok, None));
        assert_eq!(verdict_of(&j(r#"["no"]"#)), (Verdict::Fail, None));
        for other in ["1", r#""ok""#, "null"] {
            assert_eq!(verdict_of(&j(other)), (Verdict::Fail, Some("verdict_type")));
        }
    }

    #[test]
    fn values_compare_as_json_with_sets_and_numbers() {
        assert!(same_value(&j("1"), &j("1.0")));
        assert!(!same_value(&j("false"), &Value::Undefined));
        assert!(same_value(&Value::Undefined, &Value::Undefined));
        let mut set = Value::new_set();
        set.as_set_mut().unwrap().insert(j(r#""b""#));
        set.as_set_mut().unwrap().insert(j(r#""a""#));
        assert!(same_value(&set, &j(r#"["a", "b"]"#)));
        assert!(same_value(&j(r#"["b", "a"]"#), &set));
        assert!(!same_value(&set, &j(r#"["a"]"#)));
        assert!(!same_value(&j(r#"["a", "b"]"#), &j(r#"["b", "a"]"#)));
        assert!(same_value(
            &j(r#"{"n": 2, "m": [1.0]}"#),
            &j(r#"{"m": [1], "n": 2.0}"#)
        ));
        assert!(!same_value(&j(r#"{"n": 2}"#), &j(r#"{"n": 2, "m": 1}"#)));
    }
}
