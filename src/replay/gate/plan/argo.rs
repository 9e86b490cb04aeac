//! Argo Rollouts (SPEC §9): a `kind: Rollout` read from `spec.strategy.canary.steps`.
//! Each `setWeight` opens a step whose duration is the sum of the `pause` durations
//! that follow it; a weight without a pause has no windows and is dropped; the
//! rollout is promoted to 100 % after its last step.

use serde_json::Value;

use super::{Plan, Start, Step, percent, promoted, span};
use crate::orchestrator::RolloutPercent;

/// A plan from an Argo Rollout; errors name the step's index in the manifest.
pub(super) fn parse(v: &Value) -> Result<Plan, String> {
    let steps_v = v
        .pointer("/spec/strategy/canary/steps")
        .and_then(Value::as_array)
        .ok_or("kind Rollout: `spec.strategy.canary.steps` (a list) is required")?;
    let mut steps: Vec<Step> = Vec::new();
    let mut open: Option<(RolloutPercent, i64)> = None;
    let close = |open: Option<(RolloutPercent, i64)>, steps: &mut Vec<Step>| {
        if let Some((rollout, d)) = open
            && d > 0
        {
            steps.push(Step {
                rollout,
                duration_ms: Some(d),
            });
        }
    };
    for (i, s) in steps_v.iter().enumerate() {
        let at = |key: &str, msg: String| {
            format!(
                "spec.strategy.canary.steps[{i}] (step {}), `{key}`: {msg}",
                i + 1
            )
        };
        if let Some(w) = s.get("setWeight") {
            let w = percent(w).map_err(|e| at("setWeight", e))?;
            close(open.take(), &mut steps);
            open = Some((w, 0));
        } else if let Some(p) = s.get("pause") {
            let d = match p.get("duration") {
                Some(Value::Number(n)) => n
                    .as_u64()
                    .and_then(|s| i64::try_from(s).ok())
                    .and_then(|s| s.checked_mul(1000))
                    .filter(|&ms| ms > 0)
                    .ok_or_else(|| {
                        at(
                            "pause.duration",
                            format!("{n}: a whole number of seconds > 0"),
                        )
                    })?,
                Some(Value::String(d)) => duration(d).map_err(|e| at("pause.duration", e))?,
                _ => {
                    return Err(at(
                        "pause.duration",
                        "missing: a pause without a duration waits for a person, which a replay cannot simulate; give a span such as 30m or seconds".into(),
                    ));
                }
            };
            if let Some((_, acc)) = &mut open {
                *acc = acc.saturating_add(d);
            }
            // A pause before the first setWeight is ignored.
        }
        // Other step kinds (analysis, experiment, setCanaryScale, …) are ignored.
    }
    close(open, &mut steps);
    steps.push(promoted());
    Ok(Plan {
        steps,
        failure_limit: 1,
        start: Start::First,
        source: "argo",
    })
}

/// Argo's `pause.duration` string, in milliseconds: an integer of seconds (`"90"`), or
/// Argo's duration form (Go's `time.ParseDuration` in whole units): one or more
/// `<integer><unit>` with unit `h`, `m` or `s`, such as `90s`, `30m` or `1h30m`. The
/// spans proof reads elsewhere (`500ms`, `1d`) are also accepted, as before.
fn duration(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<u64>() {
        return i64::try_from(secs)
            .ok()
            .and_then(|s| s.checked_mul(1000))
            .filter(|&ms| ms > 0)
            .ok_or_else(|| format!("'{s}': a whole number of seconds > 0"));
    }
    compound(t).or_else(|| span(t).ok()).ok_or_else(|| {
        format!(
            "'{s}': expected seconds (90) or Argo's duration form such as 30s, 5m, 1h or 1h30m \
             (whole numbers with unit h, m or s)"
        )
    })
}

/// `1h30m`, `2m30s`, `90s`: segments of digits and a unit h, m or s; `None` if not that
/// form, empty, zero or out of range.
fn compound(s: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        let scale = match rest.as_bytes()[digits] {
            b'h' => 3_600_000,
            b'm' if rest.as_bytes().get(digits + 1) != Some(&b's') => 60_000,
            b's' => 1000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(scale)?)?;
        rest = &rest[digits + 1..];
    }
    (total > 0).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::super::Plan;
    use super::*;
    use serde_json::json;

    const MIN: i64 = 60_000;

    #[test]
    fn argo_rollout_steps() {
        let v: Value = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "spec": {"strategy": {"canary": {"steps": [
                {"pause": {"duration": "1h"}},
                {"setWeight": 10},
                {"pause": {"duration": "2m"}},
                {"setWeight": 20},
                {"setWeight": 50},
                {"analysis": {"templates": [{"templateName": "success-rate"}]}},
                {"pause": {"duration": 180}},
                {"pause": {"duration": "60"}},
                {"setWeight": 80}
            ]}}}
        }))
        .unwrap();
        let p = Plan::from_value(&v).unwrap();
        let steps: Vec<(u8, Option<i64>)> = p
            .steps
            .iter()
            .map(|s| (s.rollout.get(), s.duration_ms))
            .collect();
        // 20 (no pause) and 80 (last, no pause) are dropped; 50 lasts 180 s + 60 s;
        // the promotion to 100 is appended.
        assert_eq!(
            steps,
            [(10, Some(2 * MIN)), (50, Some(4 * MIN)), (100, None)]
        );
        assert_eq!((p.failure_limit, p.source), (1, "argo"));
        let bad = json!({"kind": "Rollout", "spec": {"strategy": {"canary": {"steps": [
            {"setWeight": 10}, {"pause": {}}]}}}});
        let e = Plan::from_value(&bad).unwrap_err();
        assert!(
            e.contains("steps[1]") && e.contains("pause.duration"),
            "{e}"
        );
    }

    #[test]
    fn argo_durations_take_argos_compound_form() {
        for (s, ms) in [
            ("1h30m", 90 * MIN),
            ("90s", 90_000),
            ("2m30s", 150_000),
            ("1h0m0s", 60 * MIN),
            ("45", 45_000),
            ("30m", 30 * MIN),
            ("1d", 24 * 60 * MIN),
            ("500ms", 500),
        ] {
            assert_eq!(duration(s), Ok(ms), "{s}");
        }
        for s in ["", "0s", "1x", "h", "1h30", "1.5h", "-1m", "0"] {
            let e = duration(s).unwrap_err();
            assert!(e.contains(&format!("'{s}'")), "{s}: {e}");
        }
    }
}
