//! Flagger (SPEC is silent; docs/design.md): a `kind: Canary` read from
//! `spec.analysis`.

use serde_json::Value;

use super::{Plan, Start, Step, percent, promoted, span};
use crate::orchestrator::RolloutPercent;

/// Flagger (SPEC is silent; docs/design.md): `spec.analysis` with `interval`,
/// `threshold`, `stepWeight` + `maxWeight` or `stepWeights`. One step per weight, each
/// lasting `interval`, `threshold` as failure_limit, promotion to 100 afterwards.
pub(super) fn parse(v: &Value) -> Result<Plan, String> {
    let a = v
        .pointer("/spec/analysis")
        .and_then(Value::as_object)
        .ok_or("kind Canary: `spec.analysis` (a mapping) is required")?;
    let at = |key: &str, msg: String| format!("spec.analysis.{key}: {msg}");
    let interval = match a.get("interval") {
        Some(Value::String(s)) => span(s).map_err(|e| at("interval", e))?,
        None => 60_000, // Flagger's default
        Some(o) => return Err(at("interval", format!("{o}: a span such as 1m"))),
    };
    let failure_limit = match a.get("threshold") {
        None => 1,
        Some(t) => t
            .as_u64()
            .filter(|&n| n >= 1)
            .ok_or_else(|| at("threshold", format!("{t}: an integer ≥ 1")))?,
    };
    let weights: Vec<RolloutPercent> = if let Some(ws) = a.get("stepWeights") {
        let ws = ws
            .as_array()
            .filter(|w| !w.is_empty())
            .ok_or_else(|| at("stepWeights", "a non-empty list of integers 0..=100".into()))?;
        ws.iter()
            .enumerate()
            .map(|(i, w)| percent(w).map_err(|e| at(&format!("stepWeights[{i}]"), e)))
            .collect::<Result<_, _>>()?
    } else {
        let step = a
            .get("stepWeight")
            .ok_or_else(|| {
                at(
                    "stepWeight",
                    "missing: give stepWeight (with maxWeight) or stepWeights".into(),
                )
            })
            .and_then(|s| percent(s).map_err(|e| at("stepWeight", e)))?;
        if step.get() == 0 {
            return Err(at("stepWeight", "0: an integer 1..=100".into()));
        }
        let max = match a.get("maxWeight") {
            None => 100,
            Some(m) => percent(m).map_err(|e| at("maxWeight", e))?.get(),
        };
        let mut out = Vec::new();
        let mut w = step.get();
        loop {
            let cur = w.min(max);
            out.push(RolloutPercent::new(cur).expect("capped at 100"));
            if cur >= max {
                break;
            }
            w = w.saturating_add(step.get());
        }
        out
    };
    let mut steps: Vec<Step> = weights
        .into_iter()
        .map(|rollout| Step {
            rollout,
            duration_ms: Some(interval),
        })
        .collect();
    steps.push(promoted());
    Ok(Plan {
        steps,
        failure_limit,
        start: Start::First,
        source: "flagger",
    })
}

#[cfg(test)]
mod tests {
    use super::super::Plan;
    use serde_json::json;

    const MIN: i64 = 60_000;

    #[test]
    fn flagger_canary_steps() {
        let v = json!({"kind": "Canary", "spec": {"analysis": {
            "interval": "1m", "threshold": 2, "stepWeight": 20, "maxWeight": 50}}});
        let p = Plan::from_value(&v).unwrap();
        let steps: Vec<(u8, Option<i64>)> = p
            .steps
            .iter()
            .map(|s| (s.rollout.get(), s.duration_ms))
            .collect();
        assert_eq!(
            steps,
            [
                (20, Some(MIN)),
                (40, Some(MIN)),
                (50, Some(MIN)),
                (100, None)
            ]
        );
        assert_eq!(p.failure_limit, 2);
        let v = json!({"kind": "Canary", "spec": {"analysis": {"stepWeights": [1, 5, 25]}}});
        let p = Plan::from_value(&v).unwrap();
        assert_eq!(p.steps.len(), 4);
    }
}
