//! Evaluation of one event on both paths (SPEC §12): the decision value and verdict of
//! each path, `changed`, and for a drift its cause from the package's reference graph.
//! [`OpaEngine`] is the shared, cheaply cloned pair of bundles; a [`Worker`] owns one
//! regorus engine per path (regorus engines are stateful while they evaluate) and the
//! non-deterministic built-ins' context. Aggregation, sampling and windows are not here.
//!
//! **Budget.** regorus 0.14's interpreter offers one execution limit: a cooperative
//! wall-clock limiter (`ExecutionTimerConfig`) checked as it evaluates. Its hook for a
//! custom (e.g. step-counting) clock exists only in its own test and `no_std` builds, and
//! its instruction-limited VM (`rvm`) is a different evaluator. So the per-query budget
//! is wall-clock: [`DEFAULT_BUDGET`] per query, far above what any real decision takes
//! (microseconds), so that it only catches runaway policies; a query past it is an
//! evaluation error `budget`. Results are deterministic for every policy that finishes
//! well inside it, not for one that hovers around it.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use regorus::Value;
use regorus::utils::limits::ExecutionTimerConfig;

use super::bundle::Bundle;
use super::event::Event;
use super::nd::{self, NdContext};
use super::refs::RuleRefs;
use super::verdict::{same_value, verdict_of};
use crate::error::ProofError;
use crate::orchestrator::Verdict;

/// Wall-clock budget of one query (see the module doc).
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(2);

/// Cause when the baseline is the recorded result (§11).
pub const CAUSE_RECORDED: &str = "(recorded)";
/// Cause when evaluating the package errors on a path.
pub const CAUSE_ERROR: &str = "(error)";
/// Cause when no rule the decision references differs.
pub const CAUSE_DECISION: &str = "(decision)";

/// The outcome of one event.
#[derive(Debug, Clone, PartialEq)]
pub struct OpaEval {
    /// Shadow verdict: the baseline bundle's, or the recorded result's (§11).
    pub shadow: Verdict,
    /// Enforced verdict: the candidate bundle's.
    pub enforced: Verdict,
    /// Shadow decision value; `None` = undefined or an evaluation error.
    pub shadow_value: Option<Value>,
    /// Enforced decision value; `None` = undefined or an evaluation error.
    pub enforced_value: Option<Value>,
    /// Verdicts agree, both paths evaluated without error, and the values differ.
    pub changed: bool,
    /// The cause, only when the verdicts differ.
    pub cause: Option<String>,
    /// Evaluation errors of [shadow, enforced]: `eval`, `budget`, `nondeterministic`,
    /// `verdict_type` (the recorded result's `verdict_type` counts on the shadow side).
    pub errors: [Vec<&'static str>; 2],
}

/// The replay's two bundles (baseline `None` = `--baseline recorded`), shared by workers.
#[derive(Debug, Clone)]
pub struct OpaEngine {
    baseline: Option<Arc<Bundle>>,
    candidate: Arc<Bundle>,
    graph: Arc<CauseGraph>,
    budget: Duration,
}

/// Package → rule → what it names, over both bundles (union).
type CauseGraph = BTreeMap<Vec<String>, BTreeMap<String, RuleRefs>>;

impl OpaEngine {
    /// Pairs the bundles; the cause graph is their union (§12).
    pub fn new(baseline: Option<Bundle>, candidate: Bundle) -> OpaEngine {
        let mut graph = candidate.graph().clone();
        if let Some(b) = &baseline {
            for (pkg, rules) in b.graph() {
                let into = graph.entry(pkg.clone()).or_default();
                for (name, r) in rules {
                    let e = into.entry(name.clone()).or_default();
                    e.function |= r.function;
                    e.names.extend(r.names.iter().cloned());
                }
            }
        }
        OpaEngine {
            baseline: baseline.map(Arc::new),
            candidate: Arc::new(candidate),
            graph: Arc::new(graph),
            budget: DEFAULT_BUDGET,
        }
    }

    /// Sets the per-query wall-clock budget.
    pub fn with_budget(mut self, budget: Duration) -> OpaEngine {
        self.budget = budget;
        self
    }

    /// The baseline bundle (`None` with a recorded baseline).
    pub fn baseline(&self) -> Option<&Bundle> {
        self.baseline.as_deref()
    }

    /// The candidate bundle.
    pub fn candidate(&self) -> &Bundle {
        &self.candidate
    }

    /// A worker for one thread.
    pub fn worker(&self) -> Result<Worker, ProofError> {
        let ctx = Arc::new(Mutex::new(NdContext::default()));
        let timer = ExecutionTimerConfig {
            limit: self.budget,
            check_interval: NonZeroU32::new(64).unwrap_or(NonZeroU32::MIN),
        };
        let make = |b: &Bundle| -> Result<regorus::Engine, ProofError> {
            let mut e = b.engine().clone();
            nd::install(&mut e, &ctx)
                .map_err(|e| ProofError::Internal(format!("regorus extension: {e}")))?;
            e.set_execution_timer_config(timer);
            Ok(e)
        };
        Ok(Worker {
            baseline: self.baseline.as_deref().map(make).transpose()?,
            candidate: make(&self.candidate)?,
            ctx,
            graph: self.graph.clone(),
        })
    }
}

/// One thread's evaluators.
pub struct Worker {
    baseline: Option<regorus::Engine>,
    candidate: regorus::Engine,
    ctx: Arc<Mutex<NdContext>>,
    graph: Arc<CauseGraph>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").finish_non_exhaustive()
    }
}

/// The verdict of an event's recorded `result` (§11's fidelity check).
pub fn recorded_verdict(event: &Event) -> Verdict {
    verdict_of(&recorded_value(event)).0
}

fn recorded_value(event: &Event) -> Value {
    match &event.result {
        None => Value::Undefined,
        Some(j) => serde_json::from_value(j.clone()).unwrap_or(Value::Undefined),
    }
}

type Evaluated = Result<Value, &'static str>;

impl Worker {
    /// Evaluates `event` on both paths.
    pub fn evaluate(&mut self, event: &Event) -> OpaEval {
        let input: Result<Value, _> = match &event.input {
            None => Ok(Value::Undefined),
            Some(j) => serde_json::from_value::<Value>(j.clone()),
        };
        let query = event.path.query();
        let enforced_res = self.run(false, event, &input, &query);
        let shadow_res = match self.baseline.is_some() {
            true => self.run(true, event, &input, &query),
            false => Ok(recorded_value(event)),
        };
        let (shadow, shadow_value, e0) = reading(&shadow_res);
        let (enforced, enforced_value, e1) = reading(&enforced_res);
        let changed = shadow == enforced
            && match (&shadow_res, &enforced_res) {
                (Ok(a), Ok(b)) => !same_value(a, b),
                _ => false,
            };
        let cause = (shadow != enforced).then(|| match self.baseline {
            None => CAUSE_RECORDED.to_string(),
            Some(_) => self.cause(event, &input),
        });
        OpaEval {
            shadow,
            enforced,
            shadow_value,
            enforced_value,
            changed,
            cause,
            errors: [e0, e1],
        }
    }

    /// Queries `query` on one path with the event's input and built-in answers.
    fn run(
        &mut self,
        baseline: bool,
        event: &Event,
        input: &Result<Value, serde_json::Error>,
        query: &str,
    ) -> Evaluated {
        let Ok(input) = input else {
            return Err("eval");
        };
        self.ctx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set(event.ts_ns, event.nd_builtin_cache.as_ref());
        let engine = match (baseline, self.baseline.as_mut()) {
            (true, Some(e)) => e,
            _ => &mut self.candidate,
        };
        engine.set_input(input.clone());
        let res = engine.eval_query(query.to_string(), false);
        let missed = self.ctx.lock().unwrap_or_else(|p| p.into_inner()).missed;
        match res {
            _ if missed => Err("nondeterministic"),
            Ok(r) => Ok(r
                .result
                .into_iter()
                .next()
                .and_then(|r| r.expressions.into_iter().next())
                .map_or(Value::Undefined, |e| e.value)),
            Err(e) => {
                let over = e
                    .chain()
                    .any(|c| c.downcast_ref::<regorus::LimitError>().is_some())
                    || format!("{e:#}").contains("execution exceeded time limit");
                Err(if over { "budget" } else { "eval" })
            }
        }
    }

    /// §12's cause of a drift: the first root of D in byte order, `(decision)` without
    /// one, `(error)` when evaluating the package errors on either path.
    fn cause(&mut self, event: &Event, input: &Result<Value, serde_json::Error>) -> String {
        let pkg = event.path.package().to_vec();
        let pq = event.path.package_query();
        let (Ok(a), Ok(b)) = (
            self.run(true, event, input, &pq),
            self.run(false, event, input, &pq),
        ) else {
            return CAUSE_ERROR.to_string();
        };
        let Some(rules) = self.graph.get(&pkg) else {
            return CAUSE_DECISION.to_string();
        };
        let member = |v: &Value, name: &str| match v {
            Value::Object(o) => o
                .get(&Value::from(name))
                .cloned()
                .unwrap_or(Value::Undefined),
            _ => Value::Undefined,
        };
        let differs = |name: &str| !same_value(&member(&a, name), &member(&b, name));
        let d = reachable(rules, event.path.rule());
        d.iter()
            .find(|r| differs(r) && !expand(rules, r).iter().any(|x| differs(x)))
            .cloned()
            .unwrap_or_else(|| CAUSE_DECISION.to_string())
    }
}

/// The verdict, value and errors of one path's result.
fn reading(res: &Evaluated) -> (Verdict, Option<Value>, Vec<&'static str>) {
    match res {
        Ok(v) => {
            let (verdict, err) = verdict_of(v);
            let value = (*v != Value::Undefined).then(|| v.clone());
            (verdict, value, err.into_iter().collect())
        }
        Err(reason) => (Verdict::Fail, None, vec![*reason]),
    }
}

/// The package rules `rule` references, a function call standing for what the function
/// names (transitively through functions); functions themselves are left out, having no
/// value of their own to compare.
fn expand(rules: &BTreeMap<String, RuleRefs>, rule: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut seen_fns = BTreeSet::new();
    let mut stack = vec![rule.to_string()];
    while let Some(r) = stack.pop() {
        let Some(refs) = rules.get(&r) else { continue };
        for n in &refs.names {
            match rules.get(n) {
                Some(x) if x.function => {
                    if seen_fns.insert(n.clone()) {
                        stack.push(n.clone());
                    }
                }
                _ => {
                    out.insert(n.clone());
                }
            }
        }
    }
    out
}

/// D: every rule reachable from `decision` through [`expand`], without the decision.
fn reachable(rules: &BTreeMap<String, RuleRefs>, decision: &str) -> BTreeSet<String> {
    let mut d = BTreeSet::new();
    let mut stack = vec![decision.to_string()];
    while let Some(r) = stack.pop() {
        for n in expand(rules, &r) {
            if n != decision && d.insert(n.clone()) {
                stack.push(n);
            }
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::opa::event::{Read, parse_event};
    use std::path::Path;

    fn bundle(name: &str, files: &[(&str, &str)]) -> Bundle {
        Bundle::from_files(
            Path::new(name),
            name,
            files
                .iter()
                .map(|(p, b)| (p.to_string(), b.as_bytes().to_vec()))
                .collect(),
        )
        .unwrap()
    }

    fn event(s: &str) -> Event {
        match parse_event(s.as_bytes(), None) {
            Read::Event(e) => *e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn engine_and_worker_are_thread_ready() {
        fn send_sync<T: Send + Sync + Clone>() {}
        fn send<T: Send>() {}
        send_sync::<OpaEngine>();
        send::<Worker>();
    }

    #[test]
    fn now_ns_is_the_cache_value_else_the_timestamp() {
        let b = bundle(
            "t",
            &[(
                "p.rego",
                "package t\n\nnow := time.now_ns()\nok if time.now_ns() == input.want\n",
            )],
        );
        let eng = OpaEngine::new(Some(b.clone()), b);
        let mut w = eng.worker().unwrap();
        let e = event(
            r#"{"decision_id":"d","path":"t/now","timestamp":"2026-11-12T08:00:10.161973069Z"}"#,
        );
        let r = w.evaluate(&e);
        assert_eq!(
            r.shadow_value,
            Some(Value::from(1_794_470_410_161_973_069i128))
        );
        // a number is no verdict: counted, fail
        assert_eq!(r.errors, [vec!["verdict_type"], vec!["verdict_type"]]);
        let e = event(
            r#"{"decision_id":"d","path":"t/ok","timestamp":"2026-11-12T08:00:10Z",
                "input":{"want":5},"nd_builtin_cache":{"time.now_ns":{"[]":5}}}"#,
        );
        assert_eq!(w.evaluate(&e).enforced, Verdict::Ok);
        // `with` still overrides inside the policy
        let b = bundle(
            "w",
            &[(
                "p.rego",
                "package w\n\nn := time.now_ns()\nok if { n == 3 with time.now_ns as 3 }\n",
            )],
        );
        let mut w = OpaEngine::new(None, b).worker().unwrap();
        let e = event(r#"{"decision_id":"d","path":"w/ok","timestamp":"2026-11-12T08:00:10Z"}"#);
        assert_eq!(w.evaluate(&e).enforced, Verdict::Ok);
    }

    #[test]
    fn other_nd_builtins_replay_or_fail() {
        let b = bundle(
            "n",
            &[(
                "p.rego",
                "package n\n\nallow if rand.intn(\"x\", 10) == 3\nweb if http.send({\"url\": input.u}).status_code == 200\n",
            )],
        );
        let mut w = OpaEngine::new(Some(b.clone()), b).worker().unwrap();
        let ok = event(
            r#"{"decision_id":"d","path":"n/allow","timestamp":"2026-11-12T08:00:10Z",
                "nd_builtin_cache":{"rand.intn":{"[\"x\",10]":3}}}"#,
        );
        let r = w.evaluate(&ok);
        assert_eq!((r.shadow, r.enforced), (Verdict::Ok, Verdict::Ok));
        let missing =
            event(r#"{"decision_id":"d","path":"n/allow","timestamp":"2026-11-12T08:00:10Z"}"#);
        let r = w.evaluate(&missing);
        assert_eq!(r.enforced, Verdict::Fail);
        assert_eq!(
            r.errors,
            [vec!["nondeterministic"], vec!["nondeterministic"]]
        );
        let web = event(
            r#"{"decision_id":"d","path":"n/web","timestamp":"2026-11-12T08:00:10Z","input":{"u":"https://x"},
                "nd_builtin_cache":{"http.send":{"[{\"url\":\"https://x\"}]":{"status_code":200}}}}"#,
        );
        assert_eq!(w.evaluate(&web).enforced, Verdict::Ok);
        let bad_shape = event(
            r#"{"decision_id":"d","path":"n/allow","timestamp":"2026-11-12T08:00:10Z","nd_builtin_cache":[1]}"#,
        );
        assert_eq!(w.evaluate(&bad_shape).errors[1], vec!["nondeterministic"]);
    }

    #[test]
    fn budget_stops_a_runaway_query() {
        let b = bundle(
            "slow",
            &[(
                "p.rego",
                "package slow\n\nallow if count([1 | some i in numbers.range(1, 4000); some j in numbers.range(1, 4000)]) > 0\nfast := true\n",
            )],
        );
        let mut w = OpaEngine::new(None, b)
            .with_budget(Duration::from_millis(20))
            .worker()
            .unwrap();
        let e =
            event(r#"{"decision_id":"d","path":"slow/allow","timestamp":"2026-11-12T08:00:10Z"}"#);
        let r = w.evaluate(&e);
        assert_eq!((r.enforced, &r.errors[1]), (Verdict::Fail, &vec!["budget"]));
        let e =
            event(r#"{"decision_id":"d","path":"slow/fast","timestamp":"2026-11-12T08:00:10Z"}"#);
        assert_eq!(w.evaluate(&e).enforced, Verdict::Ok);
    }

    #[test]
    fn deep_input_is_evaluated_without_overflow() {
        let b = bundle("d", &[("p.rego", "package d\n\nallow if input.a.a.a.a\n")]);
        let mut w = OpaEngine::new(Some(b.clone()), b).worker().unwrap();
        let mut input = String::from("true");
        for _ in 0..100 {
            input = format!("{{\"a\":{input}}}");
        }
        let e = event(&format!(
            r#"{{"decision_id":"d","path":"d/allow","timestamp":"2026-11-12T08:00:10Z","input":{input}}}"#
        ));
        let r = w.evaluate(&e);
        assert_eq!(r.enforced, Verdict::Ok);
        assert!(r.errors[1].is_empty());
    }

    #[test]
    fn causes_pick_the_root_not_a_derived_rule() {
        let v1 = "package c\n\nallow if { ok_user; ok_amount }\nok_user if input.u == \"a\"\nok_amount if input.n < limit\nlimit := 10\nhelper(x) := x < limit\nviaf if helper(input.n)\n";
        let v2 = "package c\n\nallow if { ok_user; ok_amount }\nok_user if input.u == \"a\"\nok_amount if input.n < limit\nlimit := 5\nhelper(x) := x < limit\nviaf if helper(input.n)\nextra := 1\n";
        let eng = OpaEngine::new(
            Some(bundle("v1", &[("p.rego", v1)])),
            bundle("v2", &[("p.rego", v2)]),
        );
        let mut w = eng.worker().unwrap();
        let ev = |path: &str, n: u32| {
            event(&format!(
                r#"{{"decision_id":"d","path":"{path}","timestamp":"2026-11-12T08:00:10Z","input":{{"u":"a","n":{n}}}}}"#
            ))
        };
        // limit differs and is the root; ok_amount differs but derives from it
        let r = w.evaluate(&ev("c/allow", 7));
        assert_eq!((r.shadow, r.enforced), (Verdict::Ok, Verdict::Fail));
        assert_eq!(r.cause.as_deref(), Some("limit"));
        // through a function
        assert_eq!(w.evaluate(&ev("c/viaf", 7)).cause.as_deref(), Some("limit"));
        // no drift, no cause
        let r = w.evaluate(&ev("c/allow", 3));
        assert_eq!((r.cause, r.changed), (None, false));
        // recorded baseline: cause is always (recorded)
        let mut w = OpaEngine::new(None, bundle("v2", &[("p.rego", v2)]))
            .worker()
            .unwrap();
        let e = event(
            r#"{"decision_id":"d","path":"c/allow","timestamp":"2026-11-12T08:00:10Z","input":{"u":"a","n":7},"result":true}"#,
        );
        let r = w.evaluate(&e);
        assert_eq!(
            (r.shadow, r.enforced, r.cause.as_deref()),
            (Verdict::Ok, Verdict::Fail, Some("(recorded)"))
        );
    }

    #[test]
    fn expand_and_reachable() {
        let mut rules = BTreeMap::new();
        let r = |f: bool, n: &[&str]| RuleRefs {
            function: f,
            names: n.iter().map(|s| s.to_string()).collect(),
        };
        rules.insert("allow".to_string(), r(false, &["f", "a"]));
        rules.insert("f".to_string(), r(true, &["g", "b"]));
        rules.insert("g".to_string(), r(true, &["f", "c"]));
        rules.insert("a".to_string(), r(false, &["d"]));
        let names = |s: BTreeSet<String>| s.into_iter().collect::<Vec<_>>();
        assert_eq!(names(expand(&rules, "allow")), ["a", "b", "c"]);
        assert_eq!(names(reachable(&rules, "allow")), ["a", "b", "c", "d"]);
    }
}
