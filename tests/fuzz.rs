//! Fuzz-style property tests on stable Rust (proptest): every parser and evaluator that
//! user input reaches is fed random and mutated input, and must answer without
//! panicking while keeping its invariants (accounting, monotone levels, determinism).
//!
//! Each property runs for a time budget, not a case count, so that cheap and costly
//! properties both get a real run: `PROOF_FUZZ_SECONDS` per property (3 by default;
//! `scripts/test.sh` runs 40, so each of the six areas gets about a minute or more).
//! For a longer run: `PROOF_FUZZ_SECONDS=600 cargo test --release --test fuzz`. Each
//! property prints how many cases it ran (`--nocapture`). A failure prints the minimal
//! input proptest shrank it to; add it to `fixtures/adversarial/` as a case.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};

use proof::engine::ir::{IrEngine, IrOptions};
use proof::engine::{BucketKey, Decision, Skip};
use proof::orchestrator::{
    DriftKind, Engine, PathSpec, Planner, RolloutPercent, Scratch, SelectorKind, Verdict, Weights,
};
use proof::policy::expr::Env;
use proof::policy::time::{MAX_TS_MS, MIN_TS_MS};
use proof::policy::{ListSpec, Lists, Policy};
use proof::replay::aggregate::{Aggregate, Bounds, Origin};
use proof::replay::pipeline::{self, Setup};
use proof::replay::record::{self, Reason, parse_line};
use proof::replay::scenario::Scenario;
use proof::replay::source::expand_inputs;
use proof::replay::window::{WindowLen, WindowStart};
use proof::report::model::{ConfigOut, GateSettings, Inputs, PolicyRef, Report, ReportContext};

/// Seconds each property runs: `PROOF_FUZZ_SECONDS`, else 3 (a quick pass for a plain
/// `cargo test`; `scripts/test.sh` asks for more).
fn budget() -> Duration {
    let secs = std::env::var("PROOF_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs)
}

/// Runs `test` on fresh values of `strategy`, in rounds of 64 cases, until this
/// property's time budget is spent (at least one round). A failure panics with the
/// minimal input proptest shrank it to.
fn fuzz<S>(strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let deadline = Instant::now() + budget();
    let config = Config {
        cases: 64,
        // Shrunk failures are reported in the test output; no files beside the sources.
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    };
    // A runner counts its cases for good; each round gets a fresh one, seeded from a
    // master runner so that the rounds draw different inputs.
    let mut master = TestRunner::new(config.clone());
    let mut cases = 0u64;
    loop {
        let mut round = TestRunner::new_with_rng(config.clone(), master.new_rng());
        if let Err(e) = round.run(&strategy, &test) {
            panic!("after {cases} passing cases: {e}");
        }
        cases += u64::from(config.cases);
        if Instant::now() >= deadline {
            break;
        }
    }
    eprintln!("{cases} cases");
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn conformance_lists() -> Lists {
    Lists::load(&[
        ListSpec {
            name: "sanctions".into(),
            path: fixture("fixtures/conformance/sanctions.csv"),
        },
        ListSpec {
            name: "high_risk".into(),
            path: fixture("fixtures/conformance/high_risk.txt"),
        },
    ])
    .expect("conformance lists load")
}

fn demo_ir(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(&format!("fixtures/conformance/{name}")))
        .expect("conformance IR readable");
    serde_json::from_str(&text).expect("conformance IR is JSON")
}

// ---------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------

/// Strings that exercise the interesting corners: times, durations, ids, unicode.
fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_.]{0,12}",
        Just("2026-11-05T08:10:00Z".to_string()),
        Just("2026-03-01".to_string()),
        Just("0001-01-01T00:00:00Z".to_string()),
        Just("9999-12-31T23:59:59.999Z".to_string()),
        Just("P365D".to_string()),
        Just("PT0.5S".to_string()),
        Just("P99999999999999W".to_string()),
        Just("0xbad1".to_string()),
        Just("CN".to_string()),
        any::<String>(),
    ]
}

fn any_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(json!(-0.0)),
        Just(json!(0)),
        Just(json!(1)),
        Just(json!(MAX_TS_MS)),
        Just(json!(MIN_TS_MS)),
    ]
}

/// Arbitrary JSON trees of bounded depth and size.
fn any_json(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any_number(),
        any_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(depth, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((any_string(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

const FUNCS: [&str; 17] = [
    "now", "add", "sub", "max", "min", "len", "lt", "le", "gt", "ge", "eq", "ne", "and", "or",
    "not", "in", "nope",
];
const OPS: [&str; 13] = [
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "range_min",
    "range_max",
    "membership",
    "non_membership",
    "non_intersection",
    "threshold",
    "regex",
];
const VARS: [&str; 8] = [
    "a",
    "b",
    "a.b",
    "ts_list",
    "sanctions",
    "high_risk",
    "flags",
    "missing",
];

/// Expression trees of the IR language (with the odd unknown func or bad arity).
fn any_expr() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        3 => prop::sample::select(&VARS[..]).prop_map(|v| json!({ "var": v })),
        2 => any_json(1),
        1 => Just(json!({"func": "now", "args": []})),
    ];
    leaf.prop_recursive(4, 40, 3, |inner| {
        (
            prop::sample::select(&FUNCS[..]),
            prop::collection::vec(inner, 0..4),
        )
            .prop_map(|(f, args)| json!({ "func": f, "args": args }))
    })
}

/// Contexts holding values under the names expressions read, of any type.
fn any_context() -> impl Strategy<Value = Map<String, Value>> {
    (
        prop::collection::vec((prop::sample::select(&VARS[..]), any_json(2)), 0..6),
        prop::collection::vec(any::<bool>(), 0..5),
        prop::collection::vec(any_string(), 0..4),
    )
        .prop_map(|(kv, flags, times)| {
            let mut m: Map<String, Value> =
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            m.insert("flags".into(), json!(flags));
            m.insert("ts_list".into(), json!(times));
            m
        })
}

/// A policy document with random rules, predicates and activations.
fn any_policy_doc() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(
            (prop::sample::select(&OPS[..]), any_expr(), any_expr()),
            0..6,
        ),
        prop::collection::vec(any_expr(), 0..3),
        prop::collection::vec((0usize..3, prop::collection::vec(0usize..6, 0..4)), 0..3),
    )
        .prop_map(|(rules, preds, acts)| {
            let n_rules = rules.len();
            let n_preds = preds.len();
            let rules: Vec<Value> = rules
                .into_iter()
                .enumerate()
                .map(|(i, (op, l, r))| json!({"id": format!("r{i}"), "op": op, "lhs": l, "rhs": r}))
                .collect();
            let preds: Vec<Value> = preds
                .into_iter()
                .enumerate()
                .map(|(i, e)| json!({"id": format!("p{i}"), "expr": e}))
                .collect();
            let acts: Vec<Value> = acts
                .into_iter()
                .filter(|_| n_preds > 0 && n_rules > 0)
                .map(|(p, rs)| {
                    json!({
                        "when": format!("p{}", p % n_preds),
                        "rules": rs.iter().map(|r| format!("r{}", r % n_rules)).collect::<Vec<_>>()
                    })
                })
                .collect();
            json!({
                "ir_version": "1.0", "policy_id": "fuzz.v1", "rules": rules,
                "adaptivity": {"predicates": preds, "activations": acts}
            })
        })
}

// ---------------------------------------------------------------------------------
// Checks shared by several properties
// ---------------------------------------------------------------------------------

fn lists_for_exprs() -> Lists {
    let mut l = Lists::default();
    l.insert("sanctions", vec!["0xbad1".into(), "0xbad2".into()]);
    l.insert("high_risk", vec!["CN".into()]);
    l
}

/// Runs a planner and checks what SPEC §2 says a path result must look like.
fn check_path(policy: &Policy, planner: &Planner, env: &Env<'_>) -> Verdict {
    let mut active = Vec::new();
    let r = planner.run(policy, env, &mut active);
    let again = planner.run(policy, env, &mut active);
    assert_eq!(r.verdict, again.verdict, "evaluation is deterministic");
    assert_eq!(r.states, again.states);
    assert_eq!(r.states.len(), policy.rules.len());
    let any_bad = r.taken.iter().any(|&(i, _)| r.states[i].is_bad());
    let expected = if any_bad {
        Verdict::Fail
    } else if !r.skipped.is_empty() || r.taken.is_empty() {
        Verdict::Warn
    } else {
        Verdict::Ok
    };
    assert_eq!(r.verdict, expected);
    match planner.budget {
        Some(b) => assert!(r.total_cost() <= b, "budget exceeded"),
        None => assert!(r.skipped.is_empty(), "skips without a budget"),
    }
    // Taken steps follow the plan order.
    let pos = |i: usize| planner.order.iter().position(|&(j, _)| j == i).unwrap();
    assert!(r.taken.windows(2).all(|w| pos(w[0].0) < pos(w[1].0)));
    r.verdict
}

// ---------------------------------------------------------------------------------
// 1. One JSONL record
// ---------------------------------------------------------------------------------

fn record_field() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        1 => Just(None),
        4 => any_json(2).prop_map(Some),
        2 => any_string().prop_map(|s| Some(Value::String(s))),
    ]
}

/// Arbitrary bytes: never a panic; an accepted record satisfies SPEC §4.
#[test]
fn parse_line_on_arbitrary_bytes() {
    fuzz((prop::collection::vec(any::<u8>(), 0..400),), |(bytes,)| {
        if let Ok(r) = parse_line(&bytes) {
            prop_assert!(!r.request_id.is_empty());
            prop_assert!((MIN_TS_MS..=MAX_TS_MS).contains(&r.ts_ms));
        }
        Ok(())
    });
}

/// A mutated valid line (byte flips, truncation, insertions): never a panic.
#[test]
fn parse_line_on_mutated_lines() {
    fuzz(
        (
            prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..6),
            any::<prop::sample::Index>(),
        ),
        |(edits, cut)| {
            let mut line = br#"{"ts":"2026-11-05T08:11:19.126Z","request_id":"req-0000","policy_id":"demo.v1","context":{"supplier_hashes":["0xa4"],"audit":{"score":40,"dates":["2026-03-01"]}}}"#.to_vec();
            for (at, b, kind) in edits {
                let i = at.index(line.len());
                match kind {
                    0 => line[i] = b,
                    1 => line.insert(i, b),
                    _ => {
                        line.remove(i);
                    }
                }
            }
            line.truncate(cut.index(line.len() + 1));
            if let Ok(r) = parse_line(&line) {
                prop_assert!(!r.request_id.is_empty());
            }
            Ok(())
        },
    );
}

/// Structured records: reading the serialised line (`parse_line`, also behind `serve`)
/// gives the record, or the reason, that the SPEC §4 checks give on the fields
/// themselves: the reader neither loses nor invents a field, whatever else the line
/// holds.
#[test]
fn parse_line_agrees_with_field_checks() {
    fuzz(
        (
            prop_oneof![
                record_field(),
                any_number().prop_map(Some),
                (MIN_TS_MS - 5..MIN_TS_MS + 5).prop_map(|n| Some(json!(n))),
                (MAX_TS_MS - 5..MAX_TS_MS + 5).prop_map(|n| Some(json!(n))),
            ],
            record_field(),
            record_field(),
            prop_oneof![
                record_field(),
                any_json(3).prop_map(|v| Some(json!({"k": v})))
            ],
            any_json(2),
        ),
        |(ts, rid, pid, ctx, extra)| {
            let mut m = Map::new();
            for (k, v) in [
                ("ts", ts),
                ("request_id", rid),
                ("policy_id", pid),
                ("context", ctx),
            ] {
                if let Some(v) = v {
                    m.insert(k.to_string(), v);
                }
            }
            m.insert("other".into(), extra);
            let line = serde_json::to_vec(&Value::Object(m.clone())).unwrap();
            let expected = record::check(
                m.remove("ts"),
                m.remove("request_id"),
                m.remove("policy_id"),
                m.remove("context"),
                m.remove("verdict"),
            );
            prop_assert_eq!(parse_line(&line), expected);
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------
// 2. IR loading and validation
// ---------------------------------------------------------------------------------

/// One random edit of a JSON tree: replace, delete or duplicate a node.
#[derive(Debug, Clone)]
enum Edit {
    Replace(Vec<prop::sample::Index>, Value),
    Delete(Vec<prop::sample::Index>),
    Duplicate(Vec<prop::sample::Index>),
}

fn any_edit() -> impl Strategy<Value = Edit> {
    let path = prop::collection::vec(any::<prop::sample::Index>(), 0..6);
    prop_oneof![
        (path.clone(), any_json(2)).prop_map(|(p, v)| Edit::Replace(p, v)),
        path.clone().prop_map(Edit::Delete),
        path.prop_map(Edit::Duplicate),
    ]
}

fn child_count(v: &Value) -> usize {
    match v {
        Value::Array(a) => a.len(),
        Value::Object(o) => o.len(),
        _ => 0,
    }
}

fn child_mut(v: &mut Value, i: usize) -> &mut Value {
    match v {
        Value::Array(a) => &mut a[i],
        Value::Object(o) => o.values_mut().nth(i).unwrap(),
        _ => unreachable!(),
    }
}

fn apply_edit(doc: &mut Value, edit: &Edit) {
    let (path, leaf_op) = match edit {
        Edit::Replace(p, _) | Edit::Delete(p) | Edit::Duplicate(p) => (p, edit),
    };
    // Walk down to a parent, stopping where the tree ends.
    let mut cur = doc;
    let mut last = None;
    for idx in path {
        let n = child_count(cur);
        if n == 0 {
            break;
        }
        let i = idx.index(n);
        if child_count(child_mut(cur, i)) == 0 {
            last = Some(i);
            break;
        }
        cur = child_mut(cur, i);
        last = None;
    }
    let n = child_count(cur);
    let i = last.unwrap_or(0);
    match leaf_op {
        Edit::Replace(_, v) if n > 0 => *child_mut(cur, i) = v.clone(),
        Edit::Replace(_, v) => *cur = v.clone(),
        Edit::Delete(_) if n > 0 => match cur {
            Value::Array(a) => {
                a.remove(i);
            }
            Value::Object(o) => {
                let k = o.keys().nth(i).unwrap().clone();
                o.remove(&k);
            }
            _ => {}
        },
        Edit::Duplicate(_) if n > 0 => {
            if let Value::Array(a) = cur {
                let c = a[i].clone();
                a.push(c);
            }
        }
        _ => {}
    }
}

/// Arbitrary JSON trees: a clear error or a policy, never a panic.
#[test]
fn policy_from_arbitrary_json() {
    fuzz((any_json(4),), |(v,)| {
        let lists = Lists::default();
        if let Err(e) = Policy::from_value(&v, Path::new("x.ir.json"), &lists) {
            prop_assert!(e.to_string().starts_with("x.ir.json"), "{}", e);
        }
        Ok(())
    });
}

/// Random but well-shaped policies: they load or are refused with the file named,
/// and a loaded one evaluates any context under both selectors.
#[test]
fn random_policies_evaluate_any_context() {
    fuzz(
        (
            any_policy_doc(),
            prop::collection::vec(any_context(), 1..4),
            MIN_TS_MS..=MAX_TS_MS,
            prop::option::of(0u64..40),
            prop::collection::vec(any::<u64>(), 0..6),
        ),
        |(doc, ctxs, now, budget, costs)| {
            let lists = lists_for_exprs();
            let p = match Policy::from_value(&doc, Path::new("r.ir.json"), &lists) {
                Ok(p) => p,
                Err(e) => {
                    let m = e.to_string();
                    prop_assert!(m.starts_with("r.ir.json: invalid IR:"), "{}", m);
                    return Ok(());
                }
            };
            let weights = Weights {
                weights: p
                    .rules
                    .iter()
                    .zip(&costs)
                    .map(|(r, &c)| (r.id.clone(), c))
                    .collect(),
                budget,
            };
            let basic = Planner::new(&p, SelectorKind::Basic, None);
            let weighted = Planner::new(&p, SelectorKind::Weighted, Some(&weights));
            for ctx in &ctxs {
                let env = Env {
                    ctx,
                    now_ms: now,
                    vars: None,
                };
                check_path(&p, &basic, &env);
                check_path(&p, &weighted, &env);
            }
            Ok(())
        },
    );
}

/// Mutated copies of the conformance IR: a clear error naming the file, or a policy
/// that evaluates the conformance traffic.
#[test]
fn mutated_demo_ir() {
    fuzz(
        (prop::collection::vec(any_edit(), 1..4), any_context()),
        |(edits, ctx)| {
            let mut doc = demo_ir("demo.v1.ir.json");
            for e in &edits {
                apply_edit(&mut doc, e);
            }
            let lists = conformance_lists();
            match Policy::from_value(&doc, Path::new("demo.v1.ir.json"), &lists) {
                Ok(p) => {
                    let pl = Planner::new(&p, SelectorKind::Basic, None);
                    check_path(
                        &p,
                        &pl,
                        &Env {
                            ctx: &ctx,
                            now_ms: 1_793_866_200_000,
                            vars: None,
                        },
                    );
                }
                Err(e) => {
                    let m = e.to_string();
                    prop_assert!(m.starts_with("demo.v1.ir.json"), "{}", m);
                }
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------
// 3. The engine on arbitrary contexts
// ---------------------------------------------------------------------------------

fn demo_engine(selector: SelectorKind) -> Engine {
    let lists = conformance_lists();
    let v1 =
        Arc::new(Policy::from_value(&demo_ir("demo.v1.ir.json"), Path::new("v1"), &lists).unwrap());
    let v2 =
        Arc::new(Policy::from_value(&demo_ir("demo.v2.ir.json"), Path::new("v2"), &lists).unwrap());
    let w = Weights::load(&fixture("fixtures/conformance/weights.yaml")).unwrap();
    Engine::new(
        PathSpec {
            planner: Planner::new(&v1, SelectorKind::Basic, None),
            policy: v1,
        },
        PathSpec {
            planner: Planner::new(&v2, selector, Some(&w)),
            policy: v2,
        },
        "demo.v1".into(),
    )
}

/// Contexts shaped like the demo traffic, with any value in any place.
fn demo_context() -> impl Strategy<Value = Map<String, Value>> {
    let hashes = prop_oneof![
        prop::collection::vec(
            prop::sample::select(vec!["0xa4", "0xbad1", "0xa3", ""]).prop_map(Value::from),
            0..4
        )
        .prop_map(Value::Array),
        any_json(2),
    ];
    let dates = prop_oneof![
        prop::collection::vec(any_string().prop_map(Value::String), 0..3).prop_map(Value::Array),
        any_json(1),
    ];
    (
        prop::option::of(hashes.clone()),
        prop::option::of(hashes),
        prop::option::of(any_number()),
        prop::option::of(dates),
        prop::option::of(any_json(2)),
    )
        .prop_map(|(s, u, score, dates, countries)| {
            let mut m = Map::new();
            if let Some(s) = s {
                m.insert("supplier_hashes".into(), s);
            }
            if let Some(u) = u {
                m.insert("ubo_hashes".into(), u);
            }
            let mut audit = Map::new();
            if let Some(x) = score {
                audit.insert("score".into(), x);
            }
            if let Some(d) = dates {
                audit.insert("dates".into(), d);
            }
            m.insert("audit".into(), Value::Object(audit));
            if let Some(c) = countries {
                m.insert("countries".into(), c);
            }
            m
        })
}

/// The shadow/enforced engine on arbitrary contexts and timestamps: verdicts follow
/// SPEC §2, drift kind follows the verdict pair, and the cause names a rule of one
/// of the policies or one of the two fixed fallbacks.
#[test]
fn engine_on_arbitrary_contexts() {
    fuzz(
        (
            demo_context(),
            MIN_TS_MS..=MAX_TS_MS,
            any_string(),
            any::<bool>(),
        ),
        |(ctx, now, rid, weighted)| {
            let engine = demo_engine(if weighted {
                SelectorKind::Weighted
            } else {
                SelectorKind::Basic
            });
            let env = Env {
                ctx: &ctx,
                now_ms: now,
                vars: None,
            };
            let mut scratch = Scratch::default();
            let ev = engine.evaluate(&env, &mut scratch);
            let s = check_path(&engine.shadow.policy, &engine.shadow.planner, &env);
            let e = check_path(&engine.enforced.policy, &engine.enforced.planner, &env);
            prop_assert_eq!((ev.shadow.verdict, ev.enforced.verdict), (s, e));
            prop_assert!(engine.bucket(&rid) < 10_000);
            match engine.drift(&ev) {
                None => prop_assert_eq!(s, e),
                Some((kind, cause)) => {
                    prop_assert_eq!(Some(kind), DriftKind::of(s, e));
                    let known = engine.shadow.policy.rule_index(cause).is_some()
                        || engine.enforced.policy.rule_index(cause).is_some()
                        || cause == "budget_skip"
                        || cause == "no_active_rules";
                    prop_assert!(known, "cause {}", cause);
                }
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------
// 4. Weights and scenario files
// ---------------------------------------------------------------------------------

fn yamlish_text() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "weights",
        "budget",
        "logs",
        "ir",
        "rollout",
        "levels",
        "window",
        "lists",
        "threads",
        "drift-max",
        "x",
    ]);
    let val = prop::sample::select(vec![
        "1",
        "-3",
        "99999999999999999999999",
        "18446744073709551615",
        "1e400",
        "{ a_eq: 3 }",
        "{ a_eq: -1 }",
        "[0, 50, 100]",
        "[a.jsonl, b.jsonl]",
        "&x [1, *x]",
        "*nowhere",
        "!!binary aGk=",
        "'5m'",
        "~",
        "{",
        "\"\\u0000\"",
        "{s: l.csv}",
    ]);
    prop::collection::vec((key, val), 0..6)
        .prop_map(|kv| kv.into_iter().map(|(k, v)| format!("{k}: {v}\n")).collect())
}

/// Weights from arbitrary bytes and from YAML/JSON-ish text: an error naming the
/// file, or weights (unsigned by construction).
#[test]
fn weights_parse() {
    fuzz(
        (
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..200),
                yamlish_text().prop_map(String::into_bytes),
                any_json(3).prop_map(|v| serde_json::to_vec(&v).unwrap()),
            ],
            any::<bool>(),
        ),
        |(bytes, json_name)| {
            let name = if json_name { "w.json" } else { "w.yaml" };
            if let Err(e) = Weights::parse(&bytes, Path::new(name)) {
                prop_assert!(e.to_string().starts_with(name), "{}", e);
            }
            Ok(())
        },
    );
}

/// Scenario files from arbitrary text: an error naming the file, or settings whose
/// relative paths were resolved against the file's directory.
#[test]
fn scenario_load() {
    fuzz(
        (prop_oneof![
            yamlish_text().prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 0..200),
        ],),
        |(text,)| {
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join("s.yaml");
            std::fs::write(&p, &text).unwrap();
            match Scenario::load(&p) {
                Ok(s) => {
                    for l in &s.logs {
                        prop_assert!(l.is_absolute() || l.as_os_str() == "-", "{}", l.display());
                    }
                }
                Err(e) => prop_assert!(e.to_string().contains("s.yaml"), "{}", e),
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------
// 5. Inputs through the real pipeline: JSONL (plain, gzip, zstd) and Parquet bytes
// ---------------------------------------------------------------------------------

fn demo_ir_engine() -> IrEngine {
    IrEngine::new(
        demo_engine(SelectorKind::Basic),
        IrOptions {
            policy_filter: Some("demo.v1".into()),
            ..IrOptions::default()
        },
        [String::new(), String::new()],
    )
}

fn demo_setup() -> Setup {
    Setup {
        salt: "demo.v1".into(),
        window: WindowLen::from_ms(300_000).unwrap(),
        bounds: Bounds {
            examples: 3,
            rejections: 5,
            drift_details: false,
        },
        max_windows: 100_000,
    }
}

/// Expands and replays one file; on success the accounting must balance.
fn replay_file(path: &Path) -> Result<Aggregate, String> {
    let ir = demo_ir_engine();
    let columns =
        |schema: &arrow::datatypes::Schema| proof::engine::Engine::check_schema(&ir, schema);
    let inputs = expand_inputs(&[path.to_path_buf()], None, &columns).map_err(|e| e.to_string())?;
    let agg = pipeline::run(
        &ir,
        &demo_setup(),
        &inputs,
        2,
        &Arc::new(AtomicU64::new(0)),
        &Arc::new(AtomicU64::new(0)),
    )
    .map_err(|e| e.to_string())?;
    assert_eq!(
        agg.read,
        agg.evaluated + agg.rejected_total() + agg.skipped,
        "read = evaluated + rejected + skipped"
    );
    Ok(agg)
}

/// Records a JSONL reader must see in `bytes`: non-blank lines (a BOM opens line 1).
fn expected_records(bytes: &[u8]) -> u64 {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .count() as u64
}

fn traffic() -> Vec<u8> {
    std::fs::read(fixture("fixtures/conformance/traffic.jsonl")).unwrap()
}

fn mutate(
    bytes: &mut Vec<u8>,
    edits: &[(prop::sample::Index, u8, u8)],
    cut: Option<prop::sample::Index>,
) {
    for (at, b, kind) in edits {
        if bytes.is_empty() {
            bytes.push(*b);
            continue;
        }
        let i = at.index(bytes.len());
        match kind % 3 {
            0 => bytes[i] ^= b | 1,
            1 => bytes.insert(i, *b),
            _ => {
                bytes.remove(i);
            }
        }
    }
    if let Some(c) = cut {
        bytes.truncate(c.index(bytes.len() + 1));
    }
}

fn small_parquet() -> Vec<u8> {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES
        .get_or_init(|| {
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join("t.parquet");
            let records: Vec<_> = traffic()
                .split(|&b| b == b'\n')
                .filter_map(|l| parse_line(l).ok())
                .collect();
            proof::r#gen::parquet::write_records(
                &p,
                records,
                parquet::basic::Compression::UNCOMPRESSED,
                // The struct layout: the typed column walk is the code to shake.
                proof::r#gen::parquet::ContextLayout::Struct,
            )
            .unwrap();
            std::fs::read(&p).unwrap()
        })
        .clone()
}

/// Mutated JSONL: every non-blank line is counted exactly once, whatever it holds.
#[test]
fn jsonl_counts_every_line() {
    fuzz(
        (
            prop::collection::vec(
                (any::<prop::sample::Index>(), any::<u8>(), any::<u8>()),
                0..40,
            ),
            prop::option::of(any::<prop::sample::Index>()),
            any::<bool>(),
        ),
        |(edits, cut, bom)| {
            let mut bytes = traffic();
            mutate(&mut bytes, &edits, cut);
            if bom {
                bytes.splice(0..0, *b"\xEF\xBB\xBF");
            }
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join("t.jsonl");
            std::fs::write(&p, &bytes).unwrap();
            // Mutations can fake a gzip or zstd magic number; then the stream error applies.
            match replay_file(&p) {
                Ok(agg) => prop_assert_eq!(agg.read, expected_records(&bytes)),
                Err(e) => prop_assert!(e.starts_with(&p.display().to_string()), "{}", e),
            }
            Ok(())
        },
    );
}

/// Mutated and truncated gzip / zstd streams: a stream error naming the file and
/// line, or a balanced count; never a panic or a hang.
#[test]
fn compressed_streams() {
    fuzz(
        (
            prop::collection::vec(
                (any::<prop::sample::Index>(), any::<u8>(), any::<u8>()),
                0..4,
            ),
            prop::option::of(any::<prop::sample::Index>()),
            any::<bool>(),
        ),
        |(edits, cut, zstd_not_gzip)| {
            let plain = traffic();
            let (mut bytes, name) = if zstd_not_gzip {
                (zstd::encode_all(&plain[..], 3).unwrap(), "t.jsonl.zst")
            } else {
                use std::io::Write;
                let mut e =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(&plain).unwrap();
                (e.finish().unwrap(), "t.jsonl.gz")
            };
            let untouched = edits.is_empty() && cut.is_none();
            mutate(&mut bytes, &edits, cut);
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join(name);
            std::fs::write(&p, &bytes).unwrap();
            match replay_file(&p) {
                Ok(agg) if untouched => prop_assert_eq!(agg.read, expected_records(&plain)),
                Ok(_) => {}
                Err(e) => prop_assert!(e.starts_with(&p.display().to_string()), "{}", e),
            }
            Ok(())
        },
    );
}

/// Mutated and truncated Parquet written by `write_records`: a schema or data error
/// naming the file, or a balanced count; never a panic.
#[test]
fn parquet_bytes() {
    fuzz(
        (
            prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), Just(0u8)), 0..6),
            prop::option::of(any::<prop::sample::Index>()),
        ),
        |(edits, cut)| {
            let mut bytes = small_parquet();
            let untouched = edits.is_empty() && cut.is_none();
            mutate(&mut bytes, &edits, cut);
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join("t.parquet");
            std::fs::write(&p, &bytes).unwrap();
            match replay_file(&p) {
                Ok(agg) if untouched => prop_assert_eq!(agg.read, 40),
                Ok(_) => {}
                Err(e) => prop_assert!(e.starts_with(&p.display().to_string()), "{}", e),
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------
// 6. Rollout and level arithmetic of the report
// ---------------------------------------------------------------------------------

/// One synthetic record outcome: window index, bucket, verdicts, or a rejection/skip.
#[derive(Debug, Clone)]
enum Outcome {
    Eval {
        window: i64,
        bucket: u16,
        shadow: Verdict,
        enforced: Verdict,
    },
    Reject(Reason),
    Skip,
}

fn any_verdict() -> impl Strategy<Value = Verdict> {
    prop::sample::select(Verdict::ALL.to_vec())
}

fn any_outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        8 => (-3i64..4, 0u16..10_000, any_verdict(), any_verdict()).prop_map(|(w, b, s, e)| {
            Outcome::Eval { window: w, bucket: b, shadow: s, enforced: e }
        }),
        1 => prop::sample::select(Reason::ALL.to_vec()).prop_map(Outcome::Reject),
        1 => Just(Outcome::Skip),
    ]
}

fn feed(acc: &mut Aggregate, k: u64, o: &Outcome, window_ms: i64) {
    let origin = Origin {
        file: 0,
        line: k + 1,
    };
    match *o {
        Outcome::Eval {
            window,
            bucket,
            shadow,
            enforced,
        } => {
            let drift = DriftKind::of(shadow, enforced).map(|kind| (kind, "rule_x"));
            let id = format!("r{k}");
            acc.add(
                origin,
                WindowStart(window * window_ms),
                bucket,
                &Decision {
                    ts_ms: window * window_ms,
                    request_id: &id,
                    key: BucketKey::RequestId,
                    shadow,
                    enforced,
                    recorded: None,
                    drift,
                    changed: false,
                    errors: &[],
                    latency_ns: 1000,
                },
            );
        }
        Outcome::Reject(r) => acc.reject(origin, r),
        Outcome::Skip => acc.skip(origin, Skip::OtherPolicy),
    }
}

fn policy_ref() -> PolicyRef {
    PolicyRef {
        policy_id: "p".into(),
        ir_hash: "h".into(),
        path: "p.ir.json".into(),
        selector: "basic",
        weights: None,
        budget: None,
    }
}

fn build(agg: &Aggregate, g: &GateSettings) -> Report {
    let show = |id: &str| id.to_string();
    Report::build(
        agg,
        ReportContext {
            gate: g,
            inputs: Inputs {
                files: Vec::new(),
                baseline: policy_ref(),
                candidate: policy_ref(),
                lists: Vec::new(),
            },
            config: ConfigOut {
                window: "5m".into(),
                rollout: g.rollout,
                drift_max: g.drift_max,
                levels: g.levels.clone(),
                min_requests: g.min_requests,
                rollback_factor: g.rollback_factor,
                max_rejects: g.max_rejects,
                salt: "s".into(),
                redact_ids: false,
                redact_key_set: false,
                scenario: None,
                max_eval_error_ratio: None,
            },
            show_id: &show,
            warnings: Vec::new(),
            rule_ids: Default::default(),
        },
    )
}

/// SPEC §5 invariants of the report, checked against a brute-force oracle.
#[test]
fn report_levels_and_gate() {
    fuzz(
        (
            prop::collection::vec(any_outcome(), 0..120),
            prop::collection::btree_set(0u8..=100, 0..8),
            0u8..=100,
            prop_oneof![Just(0.0), Just(0.005), Just(1.0), 0.0f64..=1.0],
            0u64..6,
            1.0f64..4.0,
            0u64..4,
            any::<prop::sample::Index>(),
        ),
        |(
            outcomes,
            levels,
            rollout,
            drift_max,
            min_requests,
            rollback_factor,
            max_rejects,
            split,
        )| {
            let window_ms = 300_000;
            let b = Bounds {
                examples: 4,
                rejections: 3,
                drift_details: false,
            };
            let rollout = RolloutPercent::new(rollout).unwrap();
            let mut lv: Vec<RolloutPercent> = levels
                .iter()
                .map(|&l| RolloutPercent::new(l).unwrap())
                .collect();
            lv.push(rollout);
            lv.sort();
            lv.dedup();
            let g = GateSettings {
                rollout,
                drift_max,
                levels: lv.clone(),
                min_requests,
                rollback_factor,
                max_rejects,
                window: WindowLen::from_ms(window_ms).unwrap(),
                confidence: None,
                plan: None,
                max_eval_error_ratio: None,
                max_unfaithful_ratio: 0.001,
            };
            let mut whole = Aggregate::new(b);
            for (k, o) in outcomes.iter().enumerate() {
                feed(&mut whole, k as u64, o, window_ms);
            }
            // As `pipeline::run` finishes an aggregate.
            whole.trim_examples(b.examples);
            whole.finish();
            let r = build(&whole, &g);

            // Accounting.
            let n = outcomes.len() as u64;
            prop_assert_eq!(r.records.read, n);
            prop_assert_eq!(
                r.records.read,
                r.records.evaluated + r.records.rejected + r.records.skipped
            );
            prop_assert_eq!(
                r.records.rejected,
                r.records.rejected_by_reason.values().sum::<u64>()
            );

            // Oracle: per window, requests and drifting buckets.
            let mut per_window: std::collections::BTreeMap<i64, (u64, Vec<u16>)> =
                Default::default();
            for o in &outcomes {
                if let Outcome::Eval {
                    window,
                    bucket,
                    shadow,
                    enforced,
                } = o
                {
                    let e = per_window.entry(*window).or_default();
                    e.0 += 1;
                    if shadow != enforced {
                        e.1.push(*bucket);
                    }
                }
            }
            let breach = |l: u8, req: u64, drifts: &[u16]| {
                let ev = drifts.iter().filter(|&&b| b < u16::from(l) * 100).count() as u64;
                req >= min_requests && (ev as f64 / req as f64) > drift_max
            };
            let oracle_safe = (0..=100u8)
                .rev()
                .find(|&l| per_window.values().all(|(req, d)| !breach(l, *req, d)))
                .unwrap_or(0);
            prop_assert_eq!(r.gate.max_safe_rollout_percent, oracle_safe);
            prop_assert_eq!(r.windows.len(), per_window.len());

            // Levels: ascending, drift never decreases as the level rises, breaches agree
            // with max_safe_rollout_percent.
            let got: Vec<RolloutPercent> = r.levels.iter().map(|l| l.rollout_percent).collect();
            prop_assert_eq!(&got, &lv);
            for pair in r.levels.windows(2) {
                prop_assert!(pair[0].drift_events <= pair[1].drift_events);
                prop_assert!(pair[0].max_window_ratio <= pair[1].max_window_ratio);
                prop_assert!(pair[0].breached_windows <= pair[1].breached_windows);
                prop_assert!(pair[0].rollback_windows <= pair[1].rollback_windows);
            }
            for l in &r.levels {
                prop_assert_eq!(
                    l.breached_windows > 0,
                    l.rollout_percent.get() > oracle_safe
                );
                prop_assert!(l.rollback_windows <= l.breached_windows);
                prop_assert!((0.0..=1.0).contains(&l.drift_ratio));
            }
            for w in &r.windows {
                prop_assert!(w.drift.windows(2).all(|p| p[0].events <= p[1].events));
                prop_assert!(w.drift.iter().all(|d| d.events <= w.requests));
            }
            prop_assert_eq!(
                r.drift.events,
                per_window
                    .values()
                    .map(|(_, d)| d.len() as u64)
                    .sum::<u64>()
            );
            prop_assert_eq!(r.gate.passed, rollout.get() <= oracle_safe);
            prop_assert_eq!(r.gate.passed, r.gate.breached_windows.is_empty());
            let expect_exit = if r.records.rejected > max_rejects || r.records.evaluated == 0 {
                3
            } else if r.gate.passed {
                0
            } else {
                1
            };
            prop_assert_eq!(r.gate.exit_code, expect_exit);

            // Mergeable: any split of the input gives the same report.
            let cut = split.index(outcomes.len() + 1);
            let (mut x, mut y) = (Aggregate::new(b), Aggregate::new(b));
            for (k, o) in outcomes.iter().enumerate() {
                feed(
                    if k < cut { &mut x } else { &mut y },
                    k as u64,
                    o,
                    window_ms,
                );
            }
            let mut merged = y.merge(x);
            merged.trim_examples(b.examples);
            merged.finish();
            let a = serde_json::to_value(build(&merged, &g)).unwrap();
            let w = serde_json::to_value(&r).unwrap();
            prop_assert_eq!(a, w);

            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------
// One record reader for the three front doors (issue 17 item 7)
// ---------------------------------------------------------------------------------

/// What `replay` made of a one-line file: accepted (evaluated or skipped) or the reason.
fn replay_door(path: &Path) -> Result<(), Reason> {
    let agg = replay_file(path).expect("a one-line JSONL file replays");
    assert_eq!(agg.read, 1, "one record");
    if agg.evaluated + agg.skipped == 1 {
        return Ok(());
    }
    let i = agg.rejected.iter().position(|&n| n == 1).unwrap();
    Err(Reason::ALL[i])
}

/// What `serve` made of the bytes as a POST body.
fn serve_door(bytes: &[u8]) -> Result<(), Reason> {
    proof::serve::parse_body(bytes).map(|_| ()).map_err(|e| {
        *Reason::ALL
            .iter()
            .find(|r| r.as_str() == e.error)
            .expect("a SPEC §4 reason")
    })
}

/// What `adapt --context` made of the bytes as a file (its error ends in `(reason)`).
fn adapt_door(path: &Path) -> Result<(), Reason> {
    proof::cli::adapt::read_context(path)
        .map(|_| ())
        .map_err(|e| {
            let m = e.to_string();
            *Reason::ALL
                .iter()
                .find(|r| m.ends_with(&format!("({})", r.as_str())))
                .unwrap_or_else(|| panic!("a reason at the end of: {m}"))
        })
}

/// The same bytes through `replay` (a one-line file), `serve` (a body) and `adapt`
/// (a context file): each gives the SPEC §4 answer of the field checks, and they agree
/// wherever no documented leniency applies (serve and adapt: no `ts` means now; adapt:
/// no `request_id` is allowed, no `context` key means a bare context). Covers a leading
/// BOM, a record field named twice and timestamps at the end of year 9999.
#[test]
fn front_doors_agree_on_the_same_bytes() {
    let ts = prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        Just(Some(json!("2026-11-02T10:04:31.250Z"))),
        Just(Some(json!("9999-12-31T23:59:59.999Z"))),
        Just(Some(json!("9999-12-31T23:54:59.999Z"))),
        Just(Some(json!("9999-12-31T23:55:00Z"))),
        (MAX_TS_MS - 300_005..MAX_TS_MS + 5).prop_map(|n| Some(json!(n))),
        record_field(),
    ];
    let rid = prop_oneof![
        Just(None),
        Just(Some(json!("r-1"))),
        Just(Some(json!(""))),
        record_field()
    ];
    let pid = prop_oneof![
        Just(None),
        Just(Some(json!("demo.v1"))),
        Just(Some(json!("other.v1"))),
        record_field()
    ];
    let ctx = prop_oneof![
        Just(None),
        Just(Some(json!({}))),
        any_json(2).prop_map(|v| Some(json!({ "k": v }))),
        record_field()
    ];
    // 0: none; 1..=4: that record field again (first value kept in the text order).
    let dup = 0usize..5;
    fuzz(
        (ts, rid, pid, ctx, dup, any::<bool>()),
        |(ts, rid, pid, ctx, dup, bom)| {
            let fields = [
                ("ts", ts),
                ("request_id", rid),
                ("policy_id", pid),
                ("context", ctx),
            ];
            let mut text = String::from("{");
            let mut parts: Vec<String> = Vec::new();
            for (k, v) in &fields {
                if let Some(v) = v {
                    parts.push(format!("{}:{}", json!(k), v));
                }
            }
            // A duplicate only of a field that is there.
            if dup > 0 && fields[dup - 1].1.is_some() {
                parts.push(format!("{}:1", json!(fields[dup - 1].0)));
            }
            text.push_str(&parts.join(","));
            text.push('}');
            let mut bytes = Vec::new();
            if bom {
                bytes.extend_from_slice(b"\xEF\xBB\xBF");
            }
            bytes.extend_from_slice(text.as_bytes());
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join("one.jsonl");
            std::fs::write(&p, &bytes).unwrap();
            let (r, s, a) = (replay_door(&p), serve_door(&bytes), adapt_door(&p));

            // The oracle: SPEC §4 checks on the field values, with each door's leniency.
            let [ts, rid, pid, ctx] = fields.map(|(_, v)| v);
            let no = |v: &Option<Value>| matches!(v, None | Some(Value::Null));
            let now = Some(json!(1_793_613_871_250_i64));
            let duplicated = dup > 0 && fields_present(dup - 1, [&ts, &rid, &pid, &ctx]);
            let check = |ts: Option<Value>, rid: Option<Value>, ctx: Option<Value>| {
                if duplicated {
                    Err(Reason::Malformed)
                } else {
                    record::check(ts, rid, pid.clone(), ctx, None).map(|_| ())
                }
            };
            let ts_or_now = if no(&ts) { now.clone() } else { ts.clone() };
            let rid_or_any = if no(&rid) {
                Some(json!("-"))
            } else {
                rid.clone()
            };
            prop_assert_eq!(
                r,
                check(ts.clone(), rid.clone(), ctx.clone()),
                "replay {}",
                text
            );
            prop_assert_eq!(
                s,
                check(ts_or_now.clone(), rid.clone(), ctx.clone()),
                "serve {}",
                text
            );
            let adapt_expected = if ctx.is_none() && !duplicated {
                Ok(())
            } else {
                check(ts_or_now, rid_or_any, ctx.clone())
            };
            prop_assert_eq!(a, adapt_expected, "adapt {}", text);
            // Door against door where no leniency applies.
            if !no(&ts) {
                prop_assert_eq!(s, r, "serve vs replay: {}", text);
            }
            if !no(&rid) && ctx.is_some() {
                prop_assert_eq!(a, s, "adapt vs serve: {}", text);
            }
            Ok(())
        },
    );
}

/// Whether record field `i` (ts, request_id, policy_id, context) is in the record, so
/// that appending it again makes a duplicate.
fn fields_present(i: usize, fields: [&Option<Value>; 4]) -> bool {
    fields[i].is_some()
}

// ---------------------------------------------------------------------------------
// 7. The path-table reader against a full parse (issue 15)
// ---------------------------------------------------------------------------------

/// Pieces spliced into a record after a `{` or `,`: keys the demo policies read and
/// keys they do not, holding what a full parse rejects (1e400, a lone surrogate, bad
/// escapes, control characters, invalid UTF-8, nesting at and past the limit) or
/// reads in a special way (duplicates, escaped keys, -0, dotted names).
fn splices() -> Vec<String> {
    let deep = |n: usize| format!("\"deep\":{}{},", "[".repeat(n), "]".repeat(n));
    let mut v: Vec<String> = [
        r#""audit":{"score":1e400},"#,
        r#""tier":1e400,"#,
        r#""tier":[-1e999],"#,
        r#""tier":{"a":1,"a":[2]},"#,
        r#""supplier_hashes":["0xa4"],"#,
        r#""supplier_hashes":"0xbad1","#,
        r#""ubo_hashes":["0xu0"],"ubo_hashes":[],"#,
        r#""audit":{"dates":["2026-01-01"],"dates":5},"#,
        r#""audit":{"score":-0,"score":70},"#,
        r#""audit":[1],"#,
        r#""audit.score":7,"#,
        r#""\u0061udit":{"score":99},"#,
        r#""x":"\ud800","#,
        r#""x":"\q","#,
        r#""\ud800":1,"#,
        r#""x":"\u00e9\n","#,
        "\"x\":\"\u{1}\",",
        r#""x":01,"#,
        r#""countries":["CN","CN"],"#,
        r#""countries":{"CN":1},"#,
        r#""context":{},"#,
        r#""audit":{"score":40,"dates":["2025-06-01"],"x":1e400},"#,
        // A later value of an object key that lacks, or is not, what the earlier held.
        r#""audit":{"dates":["2026-01-01"],"score":90},"audit":{"score":1},"#,
        r#""audit":{"dates":["2026-01-01"]},"audit":5,"#,
        r#""audit":{"dates":[]},"#,
        r#""audit.dates":["2027-01-01"],"#,
        r#""a\u0075dit.score":3,"#,
        r#""audit":{"d\u0061tes":["2024-01-01","2026-06-01"]},"#,
        // Around the fences of the fast reader (`engine::ir::scan`): magnitudes near
        // f64's limit, surrogate pairs, nesting near its depth limit.
        r#""tier":1e300,"#,
        r#""tier":[9.9e299,-12345678901234567890,1e-400],"#,
        r#""audit":{"score":1e301},"#,
        r#""x":"\ud83d\ude00","#,
        r#""supplier_hashes":["0x\u0061\t"],"#,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("\"x\":\"\u{ff}\",".into());
    for n in [60, 61, 62, 63, 120, 124, 125, 126, 127, 130] {
        v.push(deep(n));
    }
    v
}

/// Bytes with the invalid-UTF-8 splice made real (a Rust string cannot hold 0xFF).
fn splice_bytes(s: &str) -> Vec<u8> {
    s.replace('\u{ff}', "\u{0}")
        .into_bytes()
        .into_iter()
        .map(|b| if b == 0 { 0xFF } else { b })
        .collect()
}

/// Everything the engine decides on one record: both paths' results (verdicts, plan,
/// rule states with their error causes) and the drift kind and cause.
fn decided(engine: &Engine, ctx: &Map<String, Value>, now_ms: i64) -> String {
    let mut scratch = Scratch::default();
    let ev = engine.evaluate(
        &Env {
            ctx,
            now_ms,
            vars: None,
        },
        &mut scratch,
    );
    format!("{ev:?} {:?}", engine.drift(&ev))
}

/// [`decided`] for a record as replay's readers leave it (context in slots).
fn decided_ref(engine: &Engine, rec: record::RecordRef<'_>) -> String {
    let mut scratch = Scratch::default();
    let ev = proof::engine::ir::evaluate_ref(engine, &rec, &mut scratch);
    format!("{ev:?} {:?}", engine.drift(ev))
}

/// Mutated records read by the path table (`parse_line_with`, and replay's reused
/// `RecordBuf`, which carries one case's values into the next) and by the full
/// `serde_json::Value` parse of `parse_line` give the same rejections, the same record
/// fields and the same decisions on both paths, and so do Parquet context strings
/// (`PathTable::read_str` against `serde_json::from_str`).
#[test]
fn path_table_reader_agrees_with_full_parse() {
    use proof::policy::expr::lookup_var;
    use proof::replay::extract::{ContextSlots, PathTable};
    let engine = demo_engine(SelectorKind::Weighted);
    let table = PathTable::for_engine(&engine);
    let lines: Vec<Vec<u8>> = traffic()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let splices = splices();
    let buf = std::cell::RefCell::new(record::RecordBuf::default());
    let (accepted, rejected) = (AtomicU64::new(0), AtomicU64::new(0));
    let count = |ok: bool| {
        let c = if ok { &accepted } else { &rejected };
        c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    };
    fuzz(
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(
                (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
                0..4,
            ),
            prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..2),
        ),
        |(which, inserts, edits)| {
            let mut line = lines[which.index(lines.len())].clone();
            for (at, what) in &inserts {
                let spots: Vec<usize> = (1..line.len())
                    .filter(|&i| matches!(line[i - 1], b'{' | b','))
                    .collect();
                if spots.is_empty() {
                    break;
                }
                let i = spots[at.index(spots.len())];
                let s = splice_bytes(&splices[what.index(splices.len())]);
                // A splice before a closing brace loses its comma.
                let s = if line[i] == b'}' {
                    &s[..s.len() - 1]
                } else {
                    &s[..]
                };
                line.splice(i..i, s.iter().copied());
            }
            mutate(&mut line, &edits, None);
            let full = parse_line(&line);
            let lazy = record::parse_line_with(&line, &table);
            count(full.is_ok());
            // The reused record of the pipeline, still holding the previous case's
            // values: it must answer as a fresh parse does.
            let mut buf = buf.borrow_mut();
            let reused = buf.read(&line, &table);
            match (&full, &reused) {
                (Err(a), Err(b)) => prop_assert_eq!(a, b, "{}", String::from_utf8_lossy(&line)),
                (Ok(a), Ok(b)) => {
                    prop_assert_eq!(
                        (a.ts_ms, a.request_id.as_str(), a.policy_id.as_deref()),
                        (b.ts_ms, b.request_id, b.policy_id)
                    );
                    prop_assert_eq!(
                        decided(&engine, &a.context, a.ts_ms),
                        decided_ref(&engine, *b),
                        "{}",
                        String::from_utf8_lossy(&line)
                    );
                    // Every var of both paths finds in the slots what a lookup in the
                    // path table's object finds.
                    let record::Ctx::Slots(slots, layout) = b.context else {
                        panic!("an engine's table reads contexts into slots");
                    };
                    let kept = &lazy.as_ref().unwrap().context;
                    for (path, p) in [&engine.shadow.policy, &engine.enforced.policy]
                        .into_iter()
                        .enumerate()
                    {
                        let mut got = smallvec::SmallVec::new();
                        layout.resolve(path, slots, &mut got);
                        let want: Vec<Option<&Value>> =
                            p.vars.names().iter().map(|v| lookup_var(kept, v)).collect();
                        prop_assert_eq!(&got[..], &want[..], "{}", String::from_utf8_lossy(&line));
                    }
                }
                _ => prop_assert!(
                    false,
                    "full {:?} vs reused record {:?}: {}",
                    full.as_ref().map(|_| ()),
                    reused.as_ref().map(|_| ()),
                    String::from_utf8_lossy(&line)
                ),
            }
            match (&full, &lazy) {
                (Err(a), Err(b)) => prop_assert_eq!(a, b, "{}", String::from_utf8_lossy(&line)),
                (Ok(a), Ok(b)) => {
                    prop_assert_eq!(
                        (a.ts_ms, &a.request_id, &a.policy_id),
                        (b.ts_ms, &b.request_id, &b.policy_id)
                    );
                    prop_assert_eq!(
                        decided(&engine, &a.context, a.ts_ms),
                        decided(&engine, &b.context, b.ts_ms),
                        "{}",
                        String::from_utf8_lossy(&line)
                    );
                }
                _ => prop_assert!(
                    false,
                    "full {:?} vs path table {:?}: {}",
                    full.as_ref().map(|_| ()),
                    lazy.as_ref().map(|_| ()),
                    String::from_utf8_lossy(&line)
                ),
            }
            // The same bytes as a Parquet context string (the context's own text when
            // the line still has one, else the whole line).
            if let Ok(text) = std::str::from_utf8(&line) {
                let ctx_text = text.find("\"context\":").map_or(text, |i| {
                    &text[i + 10..text.len().saturating_sub(1).max(i + 10)]
                });
                let layout = table.layout().expect("an engine's table has a layout");
                let mut slots = ContextSlots::default();
                for t in [text, ctx_text] {
                    let full = serde_json::from_str::<Value>(t);
                    let lazy = table.read_str(t);
                    // The Parquet reader's slots: the same answer as the full parse.
                    match (&full, layout.read_str(t, &mut slots)) {
                        (Ok(Value::Object(a)), Ok(true)) => {
                            let rec = record::RecordRef {
                                ts_ms: 0,
                                request_id: "r",
                                policy_id: None,
                                context: record::Ctx::Slots(&slots, layout),
                                verdict: None,
                            };
                            prop_assert_eq!(
                                decided(&engine, a, 0),
                                decided_ref(&engine, rec),
                                "{}",
                                t
                            )
                        }
                        (Ok(a), Ok(false)) => prop_assert!(!a.is_object(), "{}", t),
                        (Err(_), Err(_)) => {}
                        (a, b) => {
                            prop_assert!(false, "{:?} vs slots {:?}: {}", a, b.map_err(|_| ()), t)
                        }
                    }
                    match (&full, &lazy) {
                        (Ok(Value::Object(a)), Ok(Value::Object(b))) => {
                            prop_assert_eq!(decided(&engine, a, 0), decided(&engine, b, 0), "{}", t)
                        }
                        (Ok(a), Ok(b)) => {
                            prop_assert!(!a.is_object() && !b.is_object(), "{}", t)
                        }
                        (Err(_), Err(_)) => {}
                        _ => prop_assert!(false, "{:?} vs {:?}: {}", full, lazy, t),
                    }
                }
            }
            Ok(())
        },
    );
    // Both sides of the property were exercised.
    let (accepted, rejected) = (accepted.into_inner(), rejected.into_inner());
    eprintln!("{accepted} records accepted, {rejected} rejected");
    assert!(accepted > 0 && rejected > 0);
}

// ---------------------------------------------------------------------------------
// 8. Shared rules, context slots and the max/min memo against two separate runs
// ---------------------------------------------------------------------------------

/// Context keys a lookup may reach in awkward ways: dotted names with empty segments,
/// a whole key that is also a prefix of a longer var, a bound list's name, and an
/// escaped spelling of `a`.
const REVIEW_KEYS: [&str; 15] = [
    "a",
    "b",
    "c",
    "a.b",
    "a.b.c",
    "a..b",
    "",
    ".a",
    "a.",
    "x",
    "d",
    "L",
    "\\u0061",
    "b.c",
    "a\\u002eb",
];

/// JSON text of a value, with objects that may name a key twice.
fn review_value(depth: u32) -> BoxedStrategy<String> {
    let leaf = prop::sample::select(vec![
        "1",
        "2",
        "-0",
        "50",
        "70",
        "1.5",
        "0",
        "null",
        "true",
        "false",
        "\"x\"",
        "\"y\"",
        "\"2026-01-01\"",
        "\"2025-06-01T12:00:00Z\"",
        "\"P1D\"",
        "[]",
        "[1,2,3]",
        "[3,-0,0]",
        "[\"2026-01-01\",\"2024-02-29\"]",
        "[\"2026-01-01\",\"nope\"]",
        "[true,false,true]",
        "[\"x\",1]",
        "[[1],[2]]",
        "[\"P1D\",\"PT1H\"]",
    ])
    .prop_map(String::from);
    if depth == 0 {
        return leaf.boxed();
    }
    prop_oneof![
        3 => leaf,
        2 => review_object(depth - 1),
        1 => prop::collection::vec(review_value(depth - 1), 0..3)
            .prop_map(|v| format!("[{}]", v.join(","))),
    ]
    .boxed()
}

fn review_object(depth: u32) -> BoxedStrategy<String> {
    prop::collection::vec(
        (
            prop::sample::select(REVIEW_KEYS.to_vec()),
            review_value(depth),
        ),
        0..6,
    )
    .prop_map(|kv| {
        let body: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", body.join(","))
    })
    .boxed()
}

/// Rule bodies (op, lhs, rhs) over the awkward names, `max`/`min` of context arrays
/// and of literal arrays, and a bound list `L`.
fn review_rule_bodies() -> Vec<Value> {
    let v = |n: &str| json!({"var": n});
    let f = |name: &str, args: Value| json!({"func": name, "args": args});
    vec![
        json!(["eq", v("a"), 1]),
        json!(["ge", v("a.b"), 50]),
        json!(["membership", v("a.b.c"), ["x", 1]]),
        json!(["non_membership", v("x"), v("L")]),
        json!(["ge", f("max", json!([v("d")])), "2025-01-01"]),
        json!(["lt", f("min", json!([v("d")])), 2]),
        json!(["ge", f("max", json!([v("a..b")])), 1]),
        json!(["range_min", f("len", json!([v(".a")])), 1]),
        json!(["eq", v("a."), v("x")]),
        json!(["non_intersection", v("x"), v("d")]),
        json!(["threshold", v("a.b"), 0.5]),
        json!(["eq", v(""), v("b.c")]),
        json!([
            "le",
            f("max", json!([[1, 5, 3]])),
            f("min", json!([v("d")]))
        ]),
        json!([
            "gt",
            f(
                "sub",
                json!([f("now", json!([])), f("max", json!([v("d")]))])
            ),
            "P30D"
        ]),
        json!([
            "eq",
            f("max", json!([v("b.c")])),
            f("min", json!([v("b.c")]))
        ]),
        json!(["membership", v("d"), v("a.b.c")]),
    ]
}

/// A policy of some of the bodies (by index), its rules named with `prefix`, with
/// predicates over the same names activating some of them.
fn review_policy(id: &str, prefix: &str, picks: &[(usize, bool)], lists: &Lists) -> Policy {
    let bodies = review_rule_bodies();
    let v = |n: &str| json!({"var": n});
    let f = |name: &str, args: Value| json!({"func": name, "args": args});
    let mut rules = Vec::new();
    let mut gated = Vec::new();
    for (k, (body, gate)) in picks.iter().enumerate() {
        let b = &bodies[*body % bodies.len()];
        let rid = format!("{prefix}{k}_{body}");
        rules.push(json!({"id": rid, "op": b[0], "lhs": b[1], "rhs": b[2]}));
        if *gate {
            gated.push(rid);
        }
    }
    let mut doc = json!({"ir_version": "1.0", "policy_id": id, "rules": rules});
    if !gated.is_empty() {
        let half = gated.len() / 2;
        doc["adaptivity"] = json!({
            "predicates": [
                {"id": "recent", "expr": f("gt", json!([f("max", json!([v("d")])), "2025-06-01"]))},
                {"id": "deep", "expr": f("in", json!([v("a.b.c"), v("d")]))},
            ],
            "activations": [
                {"when": "recent", "rules": gated[..half]},
                {"when": "deep", "rules": gated[half..]},
            ]
        });
    }
    Policy::from_value(&doc, Path::new(id), lists).unwrap()
}

/// Random baseline and candidate policies under weighted selectors with budgets and
/// random record contexts: replay's evaluation (the line read into slots by a reused
/// `RecordBuf` or a Parquet context string, vars by index, shared rules, the max/min
/// memo) gives exactly the path results and drift cause of running each path on its
/// own over a full `serde_json::Value` parse, also when a small evaluation budget
/// (an enclosing meter) runs out part-way.
#[test]
fn shared_rules_slots_and_memo_agree_with_separate_runs() {
    use proof::policy::budget::metered;
    use proof::replay::extract::{ContextSlots, PathTable};
    let mut lists = Lists::default();
    lists.insert("L", vec!["x".into(), "y".into()]);
    let buf = std::cell::RefCell::new(record::RecordBuf::default());
    let picks = || prop::collection::vec((0usize..16, any::<bool>()), 0..7);
    let weights = prop::collection::vec(0u64..12, 8);
    fuzz(
        (
            (picks(), picks(), weights.clone(), weights),
            (prop::option::of(0u64..40), prop::option::of(0u64..40)),
            review_object(3),
            prop_oneof![Just(u64::MAX), 0u64..30],
            any::<bool>(),
        ),
        |((sp, ep, sw, ew), (sb, eb), ctx, cap, valid_before)| {
            let base = Arc::new(review_policy("b.v1", "r", &sp, &lists));
            // The candidate shares some bodies, under other ids, and repeats some.
            let cand = Arc::new(review_policy("c.v1", "s", &ep, &lists));
            let w = |p: &Policy, ws: &[u64], budget| Weights {
                weights: p
                    .rules
                    .iter()
                    .zip(ws.iter().cycle())
                    .map(|(r, c)| (r.id.clone(), *c))
                    .collect(),
                budget,
            };
            let (bw, cw) = (w(&base, &sw, sb), w(&cand, &ew, eb));
            let engine = Engine::new(
                PathSpec {
                    planner: Planner::new(&base, SelectorKind::Weighted, Some(&bw)),
                    policy: base.clone(),
                },
                PathSpec {
                    planner: Planner::new(&cand, SelectorKind::Weighted, Some(&cw)),
                    policy: cand.clone(),
                },
                "b.v1".into(),
            );
            let table = PathTable::for_engine(&engine);
            let line = format!(r#"{{"ts":1767225600000,"request_id":"r","context":{ctx}}}"#);
            // The reference: each path on its own over the full parse.
            let full = parse_line(line.as_bytes()).unwrap();
            let env = Env {
                ctx: &full.context,
                now_ms: full.ts_ms,
                vars: None,
            };
            let (want, _) = metered(cap, || {
                let mut active = Vec::new();
                let shadow = engine.shadow.planner.run(&base, &env, &mut active);
                let enforced = engine.enforced.planner.run(&cand, &env, &mut active);
                proof::orchestrator::Evaluation { shadow, enforced }
            });
            let want = format!("{want:?} {:?}", engine.drift(&want));
            // `adapt` and `serve`: the object, shared rules, no slots and no memo.
            let (got, _) = metered(cap, || engine.evaluate(&env, &mut Scratch::default()));
            let got = format!("{got:?} {:?}", engine.drift(&got));
            prop_assert_eq!(&want, &got, "object {}", line);
            // Replay's reader, reused after a record that was read (or rejected) just
            // before, so slots of another record are still in place.
            let mut buf = buf.borrow_mut();
            let before = if valid_before {
                r#"{"ts":1,"request_id":"q","context":{"a":{"b":{"c":"x"}},"d":[1],"a.":7,"x":"x","":3,".a":[1]}}"#
            } else {
                r#"{"ts":1,"request_id":"q","context":{"a":{"b":{"c":"x"}},"d":[1],"a.":7,"x":1e400}}"#
            };
            let _ = buf.read(before.as_bytes(), &table);
            let rec = buf.read(line.as_bytes(), &table).unwrap();
            // Without a cap, no enclosing meter: replay's own path, the compiled steps
            // (`orchestrator::compiled`) whenever both policies compile.
            let slotted = |rec: &record::RecordRef<'_>| {
                let run = || {
                    let mut scratch = Scratch::default();
                    proof::engine::ir::evaluate_ref(&engine, rec, &mut scratch).clone()
                };
                if cap == u64::MAX {
                    run()
                } else {
                    metered(cap, run).0
                }
            };
            let got = slotted(&rec);
            let got = format!("{got:?} {:?}", engine.drift(&got));
            prop_assert_eq!(&want, &got, "JSONL {}", line);
            // The same context as a Parquet JSON string, into reused slots.
            let layout = table.layout().unwrap();
            let mut slots = ContextSlots::default();
            let _ = layout.read_str(
                &before[before.find("\"context\":").unwrap() + 10..before.len() - 1],
                &mut slots,
            );
            prop_assert!(layout.read_str(&ctx, &mut slots).unwrap());
            let rec = record::RecordRef {
                ts_ms: full.ts_ms,
                request_id: "r",
                policy_id: None,
                context: record::Ctx::Slots(&slots, layout),
                verdict: None,
            };
            let got = slotted(&rec);
            let got = format!("{got:?} {:?}", engine.drift(&got));
            prop_assert_eq!(&want, &got, "Parquet {}", ctx);
            Ok(())
        },
    );
}

/// The real per-path budget (`EVAL_BUDGET_UNITS`, no enclosing meter): a record whose
/// big array runs the shadow path out of budget on its fourth rule, while the
/// candidate has that rule (under another id, in another order) plus three of the
/// others, or fewer. Replay's shared, slotted evaluation gives the results of two
/// separate runs, with the exact budget errors.
#[test]
fn shared_rules_under_the_real_budget_equal_separate_runs() {
    use proof::orchestrator::RuleState;
    use proof::policy::RuleOutcome;
    use proof::policy::value::EvalError;
    use proof::replay::extract::PathTable;
    // 1 100 000 elements: each rule below reads them all (n + 1 or n + 2 units), so
    // three fit in 2^22 units and a fourth does not.
    let n = 1_100_000;
    let big = format!("[{}0]", "0,".repeat(n - 1));
    let line = format!(r#"{{"ts":0,"request_id":"r","context":{{"big":{big},"k":1}}}}"#);
    let bodies = [
        json!({"op": "membership", "lhs": {"var": "big"}, "rhs": [0]}),
        json!({"op": "membership", "lhs": {"var": "big"}, "rhs": [0, 1]}),
        json!({"op": "non_membership", "lhs": {"var": "big"}, "rhs": [5]}),
        json!({"op": "non_membership", "lhs": {"var": "big"}, "rhs": [6]}),
        json!({"op": "eq", "lhs": {"var": "k"}, "rhs": 1}),
    ];
    let policy = |id: &str, rules: &[(&str, usize)]| {
        let rules: Vec<Value> = rules
            .iter()
            .map(|(rid, b)| {
                let mut r = bodies[*b].clone();
                r["id"] = json!(rid);
                r
            })
            .collect();
        Arc::new(
            Policy::from_value(
                &json!({"ir_version": "1.0", "policy_id": id, "rules": rules}),
                Path::new(id),
                &Lists::default(),
            )
            .unwrap(),
        )
    };
    // Basic order is by id: a, b, c, d, e.
    let base = policy("b.v1", &[("a", 0), ("b", 1), ("c", 2), ("d", 3), ("e", 4)]);
    let candidates = [
        // Only the rule the shadow path could not afford, and a cheap one.
        policy("c.v1", &[("z", 3), ("y", 4)]),
        // The same four, the unaffordable one first.
        policy("c.v1", &[("p", 3), ("q", 0), ("r", 1), ("s", 2)]),
        // The same rules, ids and order: all but the fourth reused.
        base.clone(),
    ];
    let full = parse_line(line.as_bytes()).unwrap();
    let env = Env {
        ctx: &full.context,
        now_ms: 0,
        vars: None,
    };
    let budget = RuleState::Ran(RuleOutcome::Error(EvalError::Budget));
    for (k, cand) in candidates.into_iter().enumerate() {
        let engine = Engine::new(
            PathSpec {
                planner: Planner::new(&base, SelectorKind::Basic, None),
                policy: base.clone(),
            },
            PathSpec {
                planner: Planner::new(&cand, SelectorKind::Basic, None),
                policy: cand.clone(),
            },
            "b.v1".into(),
        );
        assert!(engine.shared_rules() > 0);
        let mut active = Vec::new();
        let want = proof::orchestrator::Evaluation {
            shadow: engine.shadow.planner.run(&base, &env, &mut active),
            enforced: engine.enforced.planner.run(&cand, &env, &mut active),
        };
        // The hand-checked answer: the shadow path's fourth rule (d) errors, and so does
        // the candidate's fourth read of the array, whichever rule it is (and every
        // rule after it).
        assert_eq!(want.shadow.states[3], budget);
        // Fail-closed: once a charge was refused, even the cheap `eq` (0 units) errors.
        assert_eq!(want.shadow.states[4], budget);
        let enforced_errors = want
            .enforced
            .states
            .iter()
            .filter(|s| **s == budget)
            .count();
        assert_eq!(enforced_errors, [0, 1, 2][k], "candidate {k}");
        let want = format!("{want:?} {:?}", engine.drift(&want));
        let got = engine.evaluate(&env, &mut Scratch::default());
        assert_eq!(
            want,
            format!("{got:?} {:?}", engine.drift(&got)),
            "candidate {k}"
        );
        let table = PathTable::for_engine(&engine);
        let mut buf = record::RecordBuf::default();
        let rec = buf.read(line.as_bytes(), &table).unwrap();
        let mut scratch = Scratch::default();
        let got = proof::engine::ir::evaluate_ref(&engine, &rec, &mut scratch);
        assert_eq!(
            want,
            format!("{got:?} {:?}", engine.drift(got)),
            "candidate {k}"
        );
    }
}
