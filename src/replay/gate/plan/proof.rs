//! proof's own plan shape (SPEC §9): `steps` of `{rollout, duration}`, `failure_limit`
//! and `start`.

use serde_json::{Map, Value};

use super::{Plan, Start, Step, percent, span};
use crate::policy::time::parse_rfc3339_ms;

/// A plan from proof's shape; errors name the step (number and index) and the key.
pub(super) fn parse(obj: &Map<String, Value>) -> Result<Plan, String> {
    for k in obj.keys() {
        if !matches!(
            k.as_str(),
            "steps" | "failure_limit" | "start" | "description"
        ) {
            return Err(format!(
                "unknown key `{k}`: a plan has `steps`, `failure_limit` and `start`"
            ));
        }
    }
    let steps_v = obj
        .get("steps")
        .and_then(Value::as_array)
        .ok_or("`steps`: a list of at least one {rollout, duration} is required")?;
    if steps_v.is_empty() {
        return Err("`steps`: a plan needs at least one step".into());
    }
    let mut steps = Vec::with_capacity(steps_v.len());
    for (i, s) in steps_v.iter().enumerate() {
        let at = |key: &str, msg: String| format!("step {} (index {i}), `{key}`: {msg}", i + 1);
        let m = s
            .as_object()
            .ok_or_else(|| at("steps", "a step is a mapping {rollout, duration}".into()))?;
        for k in m.keys() {
            if k != "rollout" && k != "duration" {
                return Err(at(
                    k,
                    "unknown key; a step has `rollout` and `duration`".into(),
                ));
            }
        }
        let rollout = m
            .get("rollout")
            .ok_or_else(|| at("rollout", "missing; an integer 0..=100".into()))
            .and_then(|r| percent(r).map_err(|e| at("rollout", e)))?;
        let duration_ms = match m.get("duration") {
            None | Some(Value::Null) => None,
            Some(Value::String(d)) => Some(span(d).map_err(|e| at("duration", e))?),
            Some(other) => {
                return Err(at(
                    "duration",
                    format!("{other}: expected a span such as 30m or 1h (units ms, s, m, h, d)"),
                ));
            }
        };
        if duration_ms.is_none() && i + 1 != steps_v.len() {
            return Err(at(
                "duration",
                "missing; only the last step may omit its duration".into(),
            ));
        }
        steps.push(Step {
            rollout,
            duration_ms,
        });
    }
    let failure_limit = match obj.get("failure_limit") {
        None | Some(Value::Null) => 1,
        Some(v) => v.as_u64().filter(|&n| n >= 1).ok_or_else(|| {
            format!("`failure_limit`: {v}: an integer ≥ 1 (breached windows before rollback)")
        })?,
    };
    let start = match obj.get("start") {
        None | Some(Value::Null) => Start::First,
        Some(Value::String(s)) => match s.as_str() {
            "first" => Start::First,
            "every" => Start::Every,
            t => Start::Instant(
                parse_rfc3339_ms(t).ok_or_else(|| {
                    format!("`start`: '{t}': expected first, every or an RFC 3339 instant such as 2026-11-05T08:00:00Z")
                })?,
                t.to_string(),
            ),
        },
        Some(v) => {
            return Err(format!(
                "`start`: {v}: expected first, every or an RFC 3339 instant"
            ));
        }
    };
    Ok(Plan {
        steps,
        failure_limit,
        start,
        source: "proof",
    })
}

#[cfg(test)]
mod tests {
    use super::super::Plan;
    use crate::replay::window::WindowLen;
    use serde_json::json;

    const MIN: i64 = 60_000;

    #[test]
    fn bad_plans_name_the_step_key_and_range() {
        let cases = [
            (json!({"steps": []}), "at least one step"),
            (json!({}), "`steps`"),
            (
                json!({"steps": [{"rollout": 101, "duration": "1m"}]}),
                "step 1 (index 0), `rollout`: 101: an integer 0..=100",
            ),
            (
                json!({"steps": [{"rollout": 5}, {"rollout": 10}]}),
                "step 1 (index 0), `duration`: missing; only the last step",
            ),
            (
                json!({"steps": [{"rollout": 5, "duration": "1m", "weight": 3}]}),
                "`weight`: unknown key",
            ),
            (
                json!({"steps": [{"rollout": 5}], "failure_limit": 0}),
                "integer ≥ 1",
            ),
            (
                json!({"steps": [{"rollout": 5}], "start": "soon"}),
                "RFC 3339",
            ),
            (
                json!({"steps": [{"rollout": 5}], "stepz": 1}),
                "unknown key `stepz`",
            ),
        ];
        for (v, want) in cases {
            let e = Plan::from_value(&v).unwrap_err();
            assert!(e.contains(want), "{v}: {e}");
        }
        let p = Plan::from_value(
            &json!({"steps": [{"rollout": 5, "duration": "90s"}, {"rollout": 100}]}),
        )
        .unwrap();
        let e = p
            .check_window(WindowLen::from_ms(MIN).unwrap(), "plan.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("plan.yaml: step 1 (index 0)")
                && e.contains("not a whole multiple of the window 1m"),
            "{e}"
        );
    }
}
