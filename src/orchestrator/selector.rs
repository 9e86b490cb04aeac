//! Selectors and plans (SPEC §2): which active rules run, in which order, at what
//! cost, and the verdict of one path.
//!
//! A [`Planner`] is built once per (policy, selector, weights) and orders every rule
//! up front; per record only the active mask and the budget walk remain.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ProofError;
use crate::policy::budget::{self, EVAL_BUDGET_UNITS};
use crate::policy::expr::Env;
use crate::policy::{Policy, RuleOutcome};

/// How the orchestrator picks and orders rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SelectorKind {
    /// Every active rule, ordered by id, at the op's default cost.
    #[default]
    Basic,
    /// Ordered by (cost, id) with costs from a weights file, optional budget.
    Weighted,
}

impl SelectorKind {
    /// Name as on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            SelectorKind::Basic => "basic",
            SelectorKind::Weighted => "weighted",
        }
    }
}

/// A weights file: per-rule costs and an optional budget.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    /// Cost per rule id (non-negative integers).
    #[serde(default, deserialize_with = "costs::weights")]
    pub weights: BTreeMap<String, u64>,
    /// Steps are taken while the running total stays within this.
    #[serde(default, deserialize_with = "costs::budget")]
    pub budget: Option<u64>,
}

/// Reading costs and the budget: any number the parser hands over is accepted by the
/// visitor and then checked, so that a negative, fractional or too large value gets
/// one message naming the rule and the allowed range (the parsers' own "invalid u64"
/// names neither).
mod costs {
    use std::collections::BTreeMap;
    use std::fmt;

    use serde::Deserializer;
    use serde::de::{self, DeserializeSeed, MapAccess, Visitor};

    /// The rule for weights, as the error states it.
    const WEIGHTS_RULE: &str = "weights must be non-negative integers, 0..=18446744073709551615";
    /// The rule for the budget, as the error states it.
    const BUDGET_RULE: &str = "the budget must be a non-negative integer, 0..=18446744073709551615";

    /// One cost; `what` names it in errors ("weight of rule 'x'", "budget").
    struct Cost<'a> {
        what: &'a str,
        rule: &'static str,
    }

    impl Cost<'_> {
        fn bad<E: de::Error>(&self, value: impl fmt::Display) -> E {
            E::custom(format_args!("{} is {value}: {}", self.what, self.rule))
        }
    }

    impl<'de> Visitor<'de> for Cost<'_> {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a non-negative integer for the {}", self.what)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| self.bad(v))
        }

        fn visit_u128<E: de::Error>(self, v: u128) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| self.bad(v))
        }

        fn visit_i128<E: de::Error>(self, v: i128) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| self.bad(v))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
            // A YAML integer too large for the parser's integers arrives as a float;
            // `1e23` reads better than 100000000000000000000000 (which it is not exactly).
            if v.fract() == 0.0 && v.abs() >= 1e16 {
                Err(self.bad(format_args!("{v:e}")))
            } else {
                // `{:?}` keeps the fraction visible: `3.0`, `2.5`.
                Err(self.bad(format_args!("{v:?}")))
            }
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            Err(self.bad(format_args!("the string {v:?}")))
        }

        fn visit_bool<E: de::Error>(self, v: bool) -> Result<u64, E> {
            Err(self.bad(v))
        }

        fn visit_unit<E: de::Error>(self) -> Result<u64, E> {
            Err(self.bad("null"))
        }
    }

    impl<'de> DeserializeSeed<'de> for Cost<'_> {
        type Value = u64;

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
            d.deserialize_any(self)
        }
    }

    struct Weights;

    impl<'de> Visitor<'de> for Weights {
        type Value = BTreeMap<String, u64>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map from rule id to cost")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(rule) = map.next_key::<String>()? {
                let what = format!("weight of rule '{rule}'");
                let cost = map.next_value_seed(Cost {
                    what: &what,
                    rule: WEIGHTS_RULE,
                })?;
                out.insert(rule, cost);
            }
            Ok(out)
        }
    }

    /// The `weights` map.
    pub fn weights<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, u64>, D::Error> {
        d.deserialize_map(Weights)
    }

    struct Budget;

    impl<'de> Visitor<'de> for Budget {
        type Value = Option<u64>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a non-negative integer budget")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            Cost {
                what: "budget",
                rule: BUDGET_RULE,
            }
            .deserialize(d)
            .map(Some)
        }
    }

    /// The optional `budget`.
    pub fn budget<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_option(Budget)
    }
}

impl Weights {
    /// Reads a weights file: JSON when it ends in `.json`, YAML otherwise.
    pub fn load(path: &Path) -> Result<Weights, ProofError> {
        let bytes = crate::config::read_config(path)?;
        Weights::parse(&bytes, path)
    }

    /// Parses weights from bytes; `path` decides the format and names errors.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Weights, ProofError> {
        let is_json = path.extension().is_some_and(|e| e == "json");
        if is_json {
            // Duplicate keys first (with line and key), then the typed read.
            crate::config::from_json_strict(bytes, path)?;
            serde_json::from_slice(bytes).map_err(|e| ProofError::json(path, &e))
        } else {
            crate::config::from_yaml(bytes, path)
        }
    }

    /// A weight naming a rule the IR lacks is a config error (SPEC §2).
    pub fn check_against(&self, policy: &Policy, path: &Path) -> Result<(), ProofError> {
        for id in self.weights.keys() {
            if policy.rule_index(id).is_none() {
                return Err(ProofError::config(
                    path,
                    0,
                    format!(
                        "weight for rule '{id}', which policy {} does not have",
                        policy.policy_id
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A path's overall decision for one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every executed step passed and nothing was skipped.
    Ok,
    /// Nothing failed, but rules were skipped or none was active.
    Warn,
    /// A step failed or errored (fail-closed).
    Fail,
}

impl Verdict {
    /// All verdicts, in report order.
    pub const ALL: [Verdict; 3] = [Verdict::Ok, Verdict::Warn, Verdict::Fail];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }

    /// Index into `ALL`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The verdict of a lower-case name.
    pub fn from_name(s: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// What happened to one rule on one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleState {
    /// Not switched on for this record.
    Inactive,
    /// Active, but left out by the budget.
    Skipped,
    /// Executed.
    Ran(RuleOutcome),
}

impl RuleState {
    /// Fail or error.
    pub fn is_bad(self) -> bool {
        matches!(self, RuleState::Ran(o) if o.is_bad())
    }
}

/// One path's evaluation of one record.
#[derive(Debug, Clone, PartialEq)]
pub struct PathResult {
    /// The decision.
    pub verdict: Verdict,
    /// State of each rule, indexed like `Policy::rules`.
    pub states: Vec<RuleState>,
    /// Executed rules in plan order, with their cost.
    pub taken: Vec<(usize, u64)>,
    /// Active rules left out by the budget, in plan order.
    pub skipped: Vec<usize>,
}

impl Default for PathResult {
    /// An empty result (no rule, verdict `ok`), to be filled by
    /// [`Planner::run_sharing_into`].
    fn default() -> PathResult {
        PathResult {
            verdict: Verdict::Ok,
            states: Vec::new(),
            taken: Vec::new(),
            skipped: Vec::new(),
        }
    }
}

impl PathResult {
    /// Sum of the executed steps' costs.
    pub fn total_cost(&self) -> u64 {
        self.taken
            .iter()
            .fold(0u64, |a, (_, c)| a.saturating_add(*c))
    }
}

/// A rule outcome one path of a record leaves for the other, with the evaluation
/// budget units it cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kept {
    /// The outcome.
    pub outcome: RuleOutcome,
    /// Units the evaluation charged (`policy::budget`).
    pub units: u64,
}

/// How a path shares rule outcomes with the other path of the same record: the two
/// policies of an engine usually have most rules in common (a candidate is a small
/// change), and a rule with the same op and operands decides the same on both.
#[derive(Debug)]
pub enum Share<'m> {
    /// Evaluate every rule.
    None,
    /// Evaluate every rule; keep the outcome of each rule `keep` marks in `out`
    /// (indexed like the policy's rules).
    Keep {
        /// Rules the other path has too.
        keep: &'m [bool],
        /// Where their outcomes go.
        out: &'m mut [Option<Kept>],
    },
    /// For rule `i` with `from[i] = Some(j)`, take `kept[j]` instead of evaluating,
    /// when one was kept and its units still fit this path's budget.
    Reuse {
        /// The other path's rule with the same op and operands, per rule.
        from: &'m [Option<usize>],
        /// The other path's kept outcomes.
        kept: &'m [Option<Kept>],
    },
}

impl Share<'_> {
    fn evaluate(&mut self, policy: &Policy, i: usize, env: &Env<'_>) -> RuleOutcome {
        match self {
            Share::None => policy.rules[i].evaluate(env),
            Share::Keep { keep, out } => {
                if !keep[i] {
                    return policy.rules[i].evaluate(env);
                }
                let before = budget::meter().map_or(0, |m| m.0);
                let outcome = policy.rules[i].evaluate(env);
                // Kept only when no charge was refused: then the outcome is a function
                // of the record alone, and re-running it charges the same units.
                out[i] = match budget::meter() {
                    Some((used, cap)) if used > cap => None,
                    m => Some(Kept {
                        outcome,
                        units: m.map_or(0, |m| m.0) - before,
                    }),
                };
                outcome
            }
            Share::Reuse { from, kept } => {
                if let Some(k) = from[i].and_then(|j| kept[j])
                    && budget::charge_if_fits(k.units)
                {
                    return k.outcome;
                }
                policy.rules[i].evaluate(env)
            }
        }
    }
}

/// The plan for one record: steps taken and rules skipped, both in plan order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Rules to run, with their cost.
    pub taken: Vec<(usize, u64)>,
    /// Active rules the budget leaves out.
    pub skipped: Vec<usize>,
}

/// A selector bound to one policy: the full rule order and each rule's cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planner {
    /// Selector kind.
    pub kind: SelectorKind,
    /// `(rule index, cost)` for every rule, in plan order.
    pub order: Vec<(usize, u64)>,
    /// Budget (weighted only).
    pub budget: Option<u64>,
}

impl Planner {
    /// Orders the policy's rules for a selector. Weights apply to `weighted` only.
    pub fn new(policy: &Policy, kind: SelectorKind, weights: Option<&Weights>) -> Planner {
        let mut order: Vec<(usize, u64)> = policy
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let cost = match (kind, weights) {
                    (SelectorKind::Weighted, Some(w)) => {
                        w.weights.get(&r.id).copied().unwrap_or(r.op.default_cost())
                    }
                    _ => r.op.default_cost(),
                };
                (i, cost)
            })
            .collect();
        let rules = &policy.rules;
        match kind {
            SelectorKind::Basic => order.sort_by(|a, b| rules[a.0].id.cmp(&rules[b.0].id)),
            SelectorKind::Weighted => order.sort_by(|a, b| {
                a.1.cmp(&b.1)
                    .then_with(|| rules[a.0].id.cmp(&rules[b.0].id))
            }),
        }
        let budget = match kind {
            SelectorKind::Weighted => weights.and_then(|w| w.budget),
            SelectorKind::Basic => None,
        };
        Planner {
            kind,
            order,
            budget,
        }
    }

    /// Selects and plans for one record, without running any rule: the active rules in
    /// plan order, split by the budget into steps taken (with their cost) and rules
    /// skipped. Outcomes play no part in the split, so [`Planner::run`] only adds the
    /// evaluation of the taken steps. `active` is scratch space.
    /// Predicates are evaluated under the record's evaluation budget, as in `run`.
    pub fn plan(&self, policy: &Policy, env: &Env<'_>, active: &mut Vec<bool>) -> Plan {
        let mut plan = Plan::default();
        budget::metered(EVAL_BUDGET_UNITS, || {
            self.plan_unmetered(policy, env, active, &mut plan.taken, &mut plan.skipped)
        });
        plan
    }

    /// The plan of [`Planner::plan`], appended to `taken` and `skipped` (both empty).
    fn plan_unmetered(
        &self,
        policy: &Policy,
        env: &Env<'_>,
        active: &mut Vec<bool>,
        taken: &mut Vec<(usize, u64)>,
        skipped: &mut Vec<usize>,
    ) {
        policy.active_rules(env, active);
        self.walk(active, taken, skipped);
    }

    /// The budget walk of a plan over the active rules (`active`, one flag per rule):
    /// steps taken (with their cost) and rules skipped, in plan order, appended to
    /// `taken` and `skipped`.
    pub(crate) fn walk(
        &self,
        active: &[bool],
        taken: &mut Vec<(usize, u64)>,
        skipped: &mut Vec<usize>,
    ) {
        let mut total: u64 = 0;
        let mut over_budget = false;
        for &(i, cost) in &self.order {
            if !active[i] {
                continue;
            }
            if !over_budget && let Some(b) = self.budget {
                over_budget = total.saturating_add(cost) > b;
            }
            if over_budget {
                skipped.push(i);
            } else {
                total = total.saturating_add(cost);
                taken.push((i, cost));
            }
        }
    }

    /// Selects, plans and runs the policy on one record. `active` is scratch space.
    /// Predicates and rules share one evaluation budget for the path
    /// (`policy::budget`): past it, the remaining rules error with reason `budget`.
    pub fn run(&self, policy: &Policy, env: &Env<'_>, active: &mut Vec<bool>) -> PathResult {
        self.run_sharing(policy, env, active, Share::None)
    }

    /// [`Planner::run`], sharing rule outcomes with the other path of the same record
    /// (see [`Share`]). The verdict, states and budget are those `run` gives.
    pub fn run_sharing(
        &self,
        policy: &Policy,
        env: &Env<'_>,
        active: &mut Vec<bool>,
        share: Share<'_>,
    ) -> PathResult {
        let mut out = PathResult::default();
        self.run_sharing_into(policy, env, active, share, &mut out);
        out
    }

    /// [`Planner::run_sharing`] into a result reused from record to record (its
    /// buffers keep their room; everything in it is replaced). Replay's hot path:
    /// nothing of the size of a result is moved per record.
    pub fn run_sharing_into(
        &self,
        policy: &Policy,
        env: &Env<'_>,
        active: &mut Vec<bool>,
        mut share: Share<'_>,
        out: &mut PathResult,
    ) {
        budget::metered(EVAL_BUDGET_UNITS, || {
            self.run_inner(policy, env, active, &mut share, out)
        });
    }

    fn run_inner(
        &self,
        policy: &Policy,
        env: &Env<'_>,
        active: &mut Vec<bool>,
        share: &mut Share<'_>,
        out: &mut PathResult,
    ) {
        let PathResult {
            verdict,
            states,
            taken,
            skipped,
        } = out;
        taken.clear();
        skipped.clear();
        self.plan_unmetered(policy, env, active, taken, skipped);
        states.clear();
        states.resize(policy.rules.len(), RuleState::Inactive);
        for &i in skipped.iter() {
            states[i] = RuleState::Skipped;
        }
        let mut failed = false;
        for &(i, _) in taken.iter() {
            let outcome = share.evaluate(policy, i, env);
            failed |= outcome.is_bad();
            states[i] = RuleState::Ran(outcome);
        }
        *verdict = Verdict::of_path(failed, skipped, taken);
    }
}

impl Verdict {
    /// A path's verdict (SPEC §2): `fail` when a step failed or errored, else `warn`
    /// when the budget left rules out or nothing ran, else `ok`.
    pub(crate) fn of_path(failed: bool, skipped: &[usize], taken: &[(usize, u64)]) -> Verdict {
        if failed {
            Verdict::Fail
        } else if !skipped.is_empty() || taken.is_empty() {
            Verdict::Warn
        } else {
            Verdict::Ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Lists;
    use serde_json::{Value, json};

    fn policy() -> Policy {
        let v = json!({
            "ir_version": "1.0", "policy_id": "t.v1",
            "rules": [
                {"id": "z_set", "op": "non_membership", "lhs": {"var": "s"}, "rhs": ["bad"]},
                {"id": "a_eq", "op": "eq", "lhs": {"var": "x"}, "rhs": 1},
                {"id": "m_thr", "op": "threshold", "lhs": {"var": "t"}, "rhs": 0.5}
            ]
        });
        Policy::from_value(&v, Path::new("t"), &Lists::default()).unwrap()
    }

    fn run(p: &Policy, pl: &Planner, ctx: Value) -> PathResult {
        let mut scratch = Vec::new();
        pl.run(
            p,
            &Env {
                ctx: ctx.as_object().unwrap(),
                now_ms: 0,
                vars: None,
            },
            &mut scratch,
        )
    }

    fn ids(p: &Policy, r: &PathResult) -> Vec<String> {
        r.taken
            .iter()
            .map(|(i, _)| p.rules[*i].id.clone())
            .collect()
    }

    #[test]
    fn basic_orders_by_id_with_default_costs() {
        let p = policy();
        let pl = Planner::new(&p, SelectorKind::Basic, None);
        let r = run(&p, &pl, json!({"s": ["ok"], "x": 1, "t": [true]}));
        assert_eq!(ids(&p, &r), ["a_eq", "m_thr", "z_set"]);
        assert_eq!(r.total_cost(), 31);
        assert_eq!(r.verdict, Verdict::Ok);
    }

    #[test]
    fn weighted_orders_by_cost_then_id_and_respects_budget() {
        let p = policy();
        let w = Weights {
            weights: [("z_set".to_string(), 1), ("a_eq".to_string(), 5)].into(),
            budget: Some(6),
        };
        let pl = Planner::new(&p, SelectorKind::Weighted, Some(&w));
        let r = run(&p, &pl, json!({"s": ["ok"], "x": 1, "t": [true]}));
        assert_eq!(ids(&p, &r), ["z_set", "a_eq"]);
        assert_eq!(r.skipped.as_slice(), [2]);
        assert_eq!(r.verdict, Verdict::Warn);
        // A failing step still makes the path fail, skipped or not.
        let r = run(&p, &pl, json!({"s": ["bad"], "x": 1, "t": [true]}));
        assert_eq!(r.verdict, Verdict::Fail);
    }

    #[test]
    fn errors_fail_closed_and_empty_plans_warn() {
        let p = policy();
        let pl = Planner::new(&p, SelectorKind::Basic, None);
        let r = run(&p, &pl, json!({"s": ["ok"], "t": [true]}));
        assert_eq!(r.verdict, Verdict::Fail);
        let empty = Policy::from_value(
            &json!({"ir_version": "1.0", "policy_id": "e", "rules": []}),
            Path::new("e"),
            &Lists::default(),
        )
        .unwrap();
        let pl = Planner::new(&empty, SelectorKind::Basic, None);
        assert_eq!(run(&empty, &pl, json!({})).verdict, Verdict::Warn);
    }

    #[test]
    fn weights_files() {
        let w = Weights::parse(b"weights: { a_eq: 3 }\nbudget: 10\n", Path::new("w.yaml")).unwrap();
        assert_eq!(w.budget, Some(10));
        let e = Weights::parse(b"weights: { a_eq: -3 }\n", Path::new("w.yaml")).unwrap_err();
        assert!(e.to_string().contains("w.yaml"), "{e}");
        let e = Weights::parse(b"{\"weights\": {\"a\": 1},}", Path::new("w.json")).unwrap_err();
        assert!(e.to_string().starts_with("w.json:1:"), "{e}");
        let w = Weights::parse(b"weights: { nope: 3 }\n", Path::new("w.yaml")).unwrap();
        let e = w.check_against(&policy(), Path::new("w.yaml")).unwrap_err();
        assert!(e.to_string().contains("'nope'"), "{e}");
        let e = Weights::parse(
            b"weights: { a_eq: 99999999999999999999999 }\n",
            Path::new("w.yaml"),
        );
        assert!(e.is_err());
    }

    #[test]
    fn bad_costs_name_the_file_the_rule_and_the_range() {
        let rule = "weights must be non-negative integers, 0..=18446744073709551615";
        for (file, text, want) in [
            (
                "w.yaml",
                "weights: { a_eq: -3 }\n",
                "weight of rule 'a_eq' is -3",
            ),
            (
                "w.json",
                r#"{"weights": {"a_eq": -3}}"#,
                "weight of rule 'a_eq' is -3",
            ),
            (
                "w.json",
                r#"{"weights": {"a_eq": 1.5}}"#,
                "weight of rule 'a_eq' is 1.5",
            ),
            (
                "w.yaml",
                "weights:\n  a_eq: 99999999999999999999999\n",
                "weight of rule 'a_eq' is 1e23",
            ),
            (
                "w.json",
                r#"{"weights": {"a_eq": "3"}}"#,
                "is the string \"3\"",
            ),
        ] {
            let e = Weights::parse(text.as_bytes(), Path::new(file))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(file), "{file} {text}: {e}");
            assert!(e.contains(want), "{file} {text}: {e}");
            assert!(e.contains(rule), "{file} {text}: {e}");
        }
        let e = Weights::parse(b"budget: -1\n", Path::new("w.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("budget is -1: the budget must be a non-negative integer"),
            "{e}"
        );
        // The edges still parse: 0, u64::MAX and a null budget.
        let w = Weights::parse(
            br#"{"weights": {"a_eq": 0, "z_set": 18446744073709551615}, "budget": null}"#,
            Path::new("w.json"),
        )
        .unwrap();
        assert_eq!(w.weights["z_set"], u64::MAX);
        assert_eq!(w.budget, None);
        let w = Weights::parse(b"budget: 18446744073709551615\n", Path::new("w.yaml")).unwrap();
        assert!(w.weights.is_empty());
        assert_eq!(w.budget, Some(u64::MAX));
    }
}
