//! Policy IR v1 (SPEC §1): the file model, loading with validation and the hash
//! check, and the compiled [`Policy`] that selectors evaluate.
//!
//! This module owns "is this IR acceptable"; it does not choose or order rules
//! (that is `orchestrator::selector`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::expr::{Env, Expr, Vars};
use super::hash::ir_hash;
use super::lists::Lists;
use super::ops::Op;
use super::value::{EvalError, Val};
use crate::error::ProofError;

/// Largest IR file read, in bytes (a policy is kilobytes; this stops a wrong path
/// to a multi-gigabyte log from being slurped).
pub const MAX_IR_BYTES: u64 = 64 * 1024 * 1024;

/// [`MAX_IR_BYTES`] as the limit of every IR read (`--ir`, `proof hash`).
pub const IR_LIMIT: crate::files::Limit = crate::files::Limit {
    bytes: MAX_IR_BYTES,
    what: "IR file",
    why: "policy::ir::MAX_IR_BYTES, fixed at build time: a policy is kilobytes, so this \
          is most likely the wrong file; to really raise it, change the constant and rebuild",
};

#[derive(Deserialize)]
struct IrFile {
    ir_version: String,
    policy_id: String,
    rules: Vec<RuleFile>,
    #[serde(default)]
    adaptivity: Option<AdaptivityFile>,
    #[serde(default)]
    ir_hash: Option<String>,
}

#[derive(Deserialize)]
struct RuleFile {
    id: String,
    op: String,
    lhs: Value,
    rhs: Value,
}

#[derive(Deserialize)]
struct AdaptivityFile {
    #[serde(default)]
    predicates: Vec<PredicateFile>,
    #[serde(default)]
    activations: Vec<ActivationFile>,
}

#[derive(Deserialize)]
struct PredicateFile {
    id: String,
    expr: Value,
}

#[derive(Deserialize)]
struct ActivationFile {
    when: String,
    rules: Vec<String>,
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique id, `[a-z0-9_]+`.
    pub id: String,
    /// The comparison.
    pub op: Op,
    /// Left operand.
    pub lhs: Expr,
    /// Right operand.
    pub rhs: Expr,
}

/// Outcome of one rule on one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleOutcome {
    /// The rule holds.
    Pass,
    /// The rule does not hold.
    Fail,
    /// The rule could not be evaluated.
    Error(EvalError),
}

impl RuleOutcome {
    /// Fail or error: the rule blocks the request (fail-closed).
    pub fn is_bad(self) -> bool {
        !matches!(self, RuleOutcome::Pass)
    }
}

impl Rule {
    /// True when both rules decide the same on every record (same op, operands
    /// [`Expr::same_as`]); their ids may differ.
    pub fn same_as(&self, other: &Rule) -> bool {
        self.op == other.op && self.lhs.same_as(&other.lhs) && self.rhs.same_as(&other.rhs)
    }

    /// Evaluates both operands (always both) and applies the op.
    pub fn evaluate(&self, env: &Env<'_>) -> RuleOutcome {
        // Matched by reference where they were returned: moving both results into a
        // pair first copied them, reading each back right after it was written.
        let l = self.lhs.eval_here(env);
        let r = self.rhs.eval_here(env);
        match (&l, &r) {
            (Ok(l), Ok(r)) => match self.op.apply(l, r) {
                Ok(true) => RuleOutcome::Pass,
                Ok(false) => RuleOutcome::Fail,
                Err(e) => RuleOutcome::Error(e),
            },
            (Err(e), _) | (_, Err(e)) => RuleOutcome::Error(*e),
        }
    }
}

/// A compiled predicate of the adaptivity block.
#[derive(Debug, Clone)]
pub struct Predicate {
    /// Unique id.
    pub id: String,
    /// Boolean expression.
    pub expr: Expr,
}

impl Predicate {
    /// True when the predicate holds; errors and non-booleans count as true
    /// (fail-closed: when in doubt, check).
    pub fn holds(&self, env: &Env<'_>) -> bool {
        !matches!(self.expr.eval_here(env), Ok(Val::Bool(false)))
    }
}

/// A loaded, validated and compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `policy_id` from the file.
    pub policy_id: String,
    /// The computed `sha3-256:` hash (equal to the declared one if any).
    pub ir_hash: String,
    /// Where it was loaded from (empty for in-memory policies).
    pub path: PathBuf,
    /// Rules in file order.
    pub rules: Vec<Rule>,
    /// Predicates in file order.
    pub predicates: Vec<Predicate>,
    /// For each rule, the predicates that activate it; empty = always active.
    pub activators: Vec<Vec<usize>>,
    /// The context vars its rules and predicates read ([`Env::vars`] ids).
    pub vars: Vars,
    index: HashMap<String, usize>,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl Policy {
    /// Reads, checks and compiles an IR file.
    pub fn load(path: &Path, lists: &Lists) -> Result<Policy, ProofError> {
        let bytes = crate::files::read_limited(path, IR_LIMIT)?;
        Policy::parse(&bytes, path, lists)
    }

    /// [`Policy::load`] through a set of files read once each (`serve`, `adapt`).
    pub fn load_from(
        path: &Path,
        lists: &Lists,
        files: &crate::files::FileSet,
    ) -> Result<Policy, ProofError> {
        Policy::parse(&files.read(path, IR_LIMIT)?, path, lists)
    }

    /// Checks and compiles an IR from its bytes; `path` names errors.
    pub fn parse(bytes: &[u8], path: &Path, lists: &Lists) -> Result<Policy, ProofError> {
        let value = crate::config::from_json_strict(bytes, path)?;
        Policy::from_value(&value, path, lists)
    }

    /// Checks and compiles an IR document already parsed.
    pub fn from_value(value: &Value, path: &Path, lists: &Lists) -> Result<Policy, ProofError> {
        let err = |msg: String| ProofError::ir(path, msg);
        if !value.is_object() {
            return Err(err("the IR must be a JSON object".into()));
        }
        let computed = ir_hash(value).map_err(|e| err(format!("cannot hash: {e}")))?;
        let file: IrFile = serde_json::from_value(value.clone()).map_err(|e| err(e.to_string()))?;
        if let Some(declared) = &file.ir_hash
            && *declared != computed
        {
            return Err(ProofError::HashMismatch {
                path: crate::error::Location::file(path),
                declared: declared.clone(),
                computed,
            });
        }
        if file.ir_version != "1.0" {
            return Err(err(format!(
                "ir_version is \"{}\"; this proof reads \"1.0\"",
                file.ir_version
            )));
        }
        if file.policy_id.is_empty() {
            return Err(err("policy_id is empty".into()));
        }

        let mut index = HashMap::new();
        let mut vars = Vars::default();
        let mut rules = Vec::with_capacity(file.rules.len());
        for (i, r) in file.rules.iter().enumerate() {
            if !valid_id(&r.id) {
                return Err(err(format!(
                    "rules[{i}]: rule id '{}' must match [a-z0-9_]+",
                    r.id
                )));
            }
            if index.insert(r.id.clone(), i).is_some() {
                return Err(err(format!("rules[{i}]: duplicate rule id '{}'", r.id)));
            }
            let op = Op::parse(&r.op).ok_or_else(|| {
                err(format!(
                    "rule '{}': unknown op '{}' (known: eq ne lt le gt ge range_min range_max membership non_membership non_intersection threshold)",
                    r.id, r.op
                ))
            })?;
            let at = format!("rule '{}'", r.id);
            rules.push(Rule {
                id: r.id.clone(),
                op,
                lhs: Expr::compile_in(&r.lhs, lists, &format!("{at}.lhs"), &mut vars)
                    .map_err(err)?,
                rhs: Expr::compile_in(&r.rhs, lists, &format!("{at}.rhs"), &mut vars)
                    .map_err(err)?,
            });
        }

        let mut predicates = Vec::new();
        let mut activators = vec![Vec::new(); rules.len()];
        if let Some(ad) = &file.adaptivity {
            let mut pindex = HashMap::new();
            for (i, p) in ad.predicates.iter().enumerate() {
                if !valid_id(&p.id) {
                    return Err(err(format!(
                        "adaptivity.predicates[{i}]: predicate id '{}' must match [a-z0-9_]+",
                        p.id
                    )));
                }
                if pindex.insert(p.id.clone(), i).is_some() {
                    return Err(err(format!(
                        "adaptivity.predicates[{i}]: duplicate predicate id '{}'",
                        p.id
                    )));
                }
                let expr =
                    Expr::compile_in(&p.expr, lists, &format!("predicate '{}'", p.id), &mut vars)
                        .map_err(err)?;
                predicates.push(Predicate {
                    id: p.id.clone(),
                    expr,
                });
            }
            for (i, a) in ad.activations.iter().enumerate() {
                let &p = pindex.get(&a.when).ok_or_else(|| {
                    err(format!(
                        "adaptivity.activations[{i}]: when names unknown predicate '{}'",
                        a.when
                    ))
                })?;
                let mut seen = HashSet::new();
                for rid in &a.rules {
                    let &r = index.get(rid).ok_or_else(|| {
                        err(format!(
                            "adaptivity.activations[{i}]: unknown rule '{rid}' (when '{}')",
                            a.when
                        ))
                    })?;
                    if seen.insert(r) && !activators[r].contains(&p) {
                        activators[r].push(p);
                    }
                }
            }
        }
        Ok(Policy {
            policy_id: file.policy_id,
            ir_hash: computed,
            path: path.to_path_buf(),
            rules,
            predicates,
            activators,
            vars,
            index,
        })
    }

    /// Index of a rule by id.
    pub fn rule_index(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Which rules are active for this record (SPEC §1 "Active rules"), written into
    /// `active` (one flag per rule). Each predicate is evaluated once.
    pub fn active_rules(&self, env: &Env<'_>, active: &mut Vec<bool>) {
        active.clear();
        if self.predicates.is_empty() {
            active.extend(self.activators.iter().map(|a| a.is_empty()));
            return;
        }
        let holds: smallvec::SmallVec<[bool; 16]> =
            self.predicates.iter().map(|p| p.holds(env)).collect();
        active.extend(
            self.activators
                .iter()
                .map(|a| a.is_empty() || a.iter().any(|&p| holds[p])),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn load(v: Value) -> Result<Policy, ProofError> {
        Policy::from_value(&v, Path::new("t.ir.json"), &Lists::default())
    }

    fn base() -> Value {
        json!({
            "ir_version": "1.0", "policy_id": "t.v1",
            "rules": [
                {"id": "a", "op": "eq", "lhs": {"var": "x"}, "rhs": 1},
                {"id": "b", "op": "ge", "lhs": {"var": "y"}, "rhs": 2}
            ],
            "adaptivity": {
                "predicates": [{"id": "big", "expr": {"func": "gt", "args": [{"var": "y"}, 10]}}],
                "activations": [{"when": "big", "rules": ["b"]}]
            }
        })
    }

    fn msg(v: Value) -> String {
        load(v).unwrap_err().to_string()
    }

    #[test]
    fn validation_names_the_offender() {
        let mut v = base();
        v["ir_version"] = json!("2.0");
        assert!(msg(v).contains("ir_version is \"2.0\""));
        let mut v = base();
        v["rules"][1]["id"] = json!("a");
        assert!(msg(v).contains("duplicate rule id 'a'"));
        let mut v = base();
        v["rules"][0]["id"] = json!("Bad-Id");
        assert!(msg(v).contains("'Bad-Id' must match"));
        let mut v = base();
        v["rules"][0]["op"] = json!("regex");
        assert!(msg(v).contains("unknown op 'regex'"));
        let mut v = base();
        v["adaptivity"]["activations"][0]["when"] = json!("nope");
        assert!(msg(v).contains("unknown predicate 'nope'"));
        let mut v = base();
        v["adaptivity"]["activations"][0]["rules"] = json!(["zz"]);
        assert!(msg(v).contains("unknown rule 'zz'"));
        let mut v = base();
        v["adaptivity"]["predicates"][0]["expr"] = json!({"func": "shell"});
        assert!(msg(v).contains("unknown func 'shell'"));
        let mut v = base();
        v.as_object_mut().unwrap().remove("rules");
        assert!(msg(v).contains("missing field `rules`"));
        assert!(msg(json!([1])).contains("must be a JSON object"));
    }

    #[test]
    fn hash_mismatch_is_refused_and_both_values_printed() {
        let mut v = base();
        let good = ir_hash(&v).unwrap();
        v["ir_hash"] = json!(good.clone());
        assert_eq!(load(v.clone()).unwrap().ir_hash, good);
        v["ir_hash"] = json!("sha3-256:00");
        let m = msg(v);
        assert!(m.contains("sha3-256:00") && m.contains(&good), "{m}");
    }

    #[test]
    fn adaptivity_activates_rules() {
        let p = load(base()).unwrap();
        let mut active = Vec::new();
        let ctx = json!({"x": 1, "y": 3});
        let env = Env {
            ctx: ctx.as_object().unwrap(),
            now_ms: 0,
            vars: None,
        };
        p.active_rules(&env, &mut active);
        assert_eq!(active, [true, false]);
        let ctx = json!({"x": 1, "y": 30});
        let env = Env {
            ctx: ctx.as_object().unwrap(),
            now_ms: 0,
            vars: None,
        };
        p.active_rules(&env, &mut active);
        assert_eq!(active, [true, true]);
        // A predicate that errors counts as true.
        let ctx = json!({"x": 1});
        let env = Env {
            ctx: ctx.as_object().unwrap(),
            now_ms: 0,
            vars: None,
        };
        p.active_rules(&env, &mut active);
        assert_eq!(active, [true, true]);
        // Non-boolean predicate value counts as true too.
        let mut v = base();
        v["adaptivity"]["predicates"][0]["expr"] = json!(5);
        let p = load(v).unwrap();
        let ctx = json!({});
        let env = Env {
            ctx: ctx.as_object().unwrap(),
            now_ms: 0,
            vars: None,
        };
        p.active_rules(&env, &mut active);
        assert_eq!(active, [true, true]);
    }

    #[test]
    fn no_adaptivity_means_all_active() {
        let mut v = base();
        v.as_object_mut().unwrap().remove("adaptivity");
        let p = load(v).unwrap();
        let ctx = json!({});
        let mut active = Vec::new();
        p.active_rules(
            &Env {
                ctx: ctx.as_object().unwrap(),
                now_ms: 0,
                vars: None,
            },
            &mut active,
        );
        assert_eq!(active, [true, true]);
    }
}
