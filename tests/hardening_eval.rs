//! Evaluation hardening (issue 17 item 1): set ops over context arrays do O(n + m)
//! work (counted as it runs: elements hashed, equality comparisons), and a record whose evaluation passes the per-path budget fails closed with
//! reason `budget` instead of stalling.

use std::path::{Path, PathBuf};
use std::process::Command;

use proof::orchestrator::{Planner, RuleState, SelectorKind, Verdict};
use proof::policy::budget::{EVAL_BUDGET_UNITS, metered};
use proof::policy::expr::Env;
use proof::policy::value::EvalError;
use proof::policy::value::{Work, work};
use proof::policy::{Lists, Policy, RuleOutcome};
use serde_json::{Map, Value, json};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The adversarial context: two 60 000-element string arrays (about 1 MB as JSON),
/// disjoint unless `overlap`, where `b` ends with `a`'s last element; `x` is `b`'s
/// last element.
fn big_context(overlap: bool) -> Map<String, Value> {
    let a: Vec<Value> = (0..60_000).map(|i| json!(format!("a{i}"))).collect();
    let mut b: Vec<Value> = (0..60_000).map(|i| json!(format!("b{i}"))).collect();
    if overlap {
        b[59_999] = json!("a59999");
    }
    let x = b[59_999].clone();
    let mut ctx = Map::new();
    ctx.insert("a".into(), Value::Array(a));
    ctx.insert("b".into(), Value::Array(b));
    ctx.insert("x".into(), x);
    ctx
}

fn outcomes(policy: &Policy, ctx: &Map<String, Value>) -> (Vec<(String, RuleState)>, u64) {
    let planner = Planner::new(policy, SelectorKind::Basic, None);
    let env = Env {
        ctx,
        now_ms: 1_793_866_200_000,
        vars: None,
    };
    let mut active = Vec::new();
    let (r, used) = metered(u64::MAX, || planner.run(policy, &env, &mut active));
    let states = policy
        .rules
        .iter()
        .zip(r.states.iter())
        .map(|(rule, s)| (rule.id.clone(), *s))
        .collect();
    (states, used)
}

/// Each rule of `policy` evaluated alone on `ctx`: its outcome and the work it did.
fn work_per_rule(policy: &Policy, ctx: &Map<String, Value>) -> Vec<(String, RuleOutcome, Work)> {
    let env = Env {
        ctx,
        now_ms: 1_793_866_200_000,
        vars: None,
    };
    policy
        .rules
        .iter()
        .map(|rule| {
            let before = work();
            let outcome = rule.evaluate(&env);
            let after = work();
            let did = Work {
                hashed: after.hashed - before.hashed,
                compared: after.compared - before.compared,
            };
            (rule.id.clone(), outcome, did)
        })
        .collect()
}

fn w(hashed: u64, compared: u64) -> Work {
    Work { hashed, compared }
}

#[test]
fn set_ops_on_two_60k_context_arrays_are_right_and_linear() {
    let policy = Policy::load(
        &fixture("fixtures/adversarial/set_ops.ir.json"),
        &Lists::default(),
    )
    .expect("fixture loads");
    let (pass, fail) = (RuleOutcome::Pass, RuleOutcome::Fail);
    let row = |id: &str, o: RuleOutcome, work: Work| (id.to_string(), o, work);

    // The work done, by hand (a quadratic scan would compare up to 60 000 × 60 000 =
    // 3.6e9 pairs per rule):
    // - all_in (membership a ⊆ b): index b's 60 000 elements, probe a[0], not there:
    //   stop. 60 001 hashed.
    // - disjoint (non_intersection): index a (the first of two equal sizes), probe
    //   all 60 000 of b. 120 000 hashed.
    // - in_fn (in(x, b) == true): x is b's last element, found after 60 000
    //   comparisons, then one for `== true`.
    // - none_in (non_membership): index b, probe all of a. 120 000 hashed.
    // Only elements whose full hashes match are compared: none here.
    assert_eq!(
        work_per_rule(&policy, &big_context(false)),
        [
            row("all_in", fail, w(60_001, 0)),
            row("disjoint", pass, w(120_000, 0)),
            row("in_fn", pass, w(0, 60_001)),
            row("none_in", pass, w(120_000, 0)),
        ]
    );
    // b's last element is a's last: disjoint and none_in find it on their last probe
    // (one comparison, the match); x is that element.
    assert_eq!(
        work_per_rule(&policy, &big_context(true)),
        [
            row("all_in", fail, w(60_001, 0)),
            row("disjoint", fail, w(120_000, 1)),
            row("in_fn", pass, w(0, 60_001)),
            row("none_in", fail, w(120_000, 1)),
        ]
    );

    // The planner's path agrees, and charges budget units from operand sizes before
    // the work: 60 000 + 60 000 per set op, 60 001 for in(x, b).
    let pass = RuleState::Ran(RuleOutcome::Pass);
    let fail = RuleState::Ran(RuleOutcome::Fail);
    let (states, used) = outcomes(&policy, &big_context(false));
    assert_eq!(
        states,
        [
            ("all_in".to_string(), fail),
            ("disjoint".to_string(), pass),
            ("in_fn".to_string(), pass),
            ("none_in".to_string(), pass),
        ]
    );
    assert_eq!(used, 3 * 120_000 + 60_001);
}

#[test]
fn a_smaller_enclosing_budget_makes_the_rest_of_the_path_error_with_budget() {
    let policy = Policy::load(
        &fixture("fixtures/adversarial/set_ops.ir.json"),
        &Lists::default(),
    )
    .expect("fixture loads");
    let planner = Planner::new(&policy, SelectorKind::Basic, None);
    let ctx = big_context(false);
    let env = Env {
        ctx: &ctx,
        now_ms: 0,
        vars: None,
    };
    let mut active = Vec::new();
    // 250 000 units: all_in (120 000) and disjoint (240 000) fit, in_fn (300 001) does not.
    let (r, used) = metered(250_000, || planner.run(&policy, &env, &mut active));
    let budget = RuleState::Ran(RuleOutcome::Error(EvalError::Budget));
    assert_eq!(r.states[2], budget);
    assert_eq!(r.states[3], budget);
    assert_eq!(r.states[1], RuleState::Ran(RuleOutcome::Pass));
    assert_eq!(r.verdict, Verdict::Fail);
    assert_eq!(used, 3 * 120_000 + 60_001);
    assert_eq!(EvalError::Budget.as_str(), "budget");
}

#[test]
fn a_record_over_the_budget_fails_closed_in_adapt() {
    // 36 non_intersection rules over the two 60 000-element arrays: 34 × 120 000 =
    // 4 080 000 units fit the 4 194 304 cap, the 35th rule (d34) would reach 4 200 000.
    assert_eq!(EVAL_BUDGET_UNITS, 4_194_304);
    let dir = tempfile::tempdir().unwrap();
    let ctx_path = dir.path().join("big.json");
    let rec = json!({
        "ts": "2026-11-02T10:04:31.250Z",
        "request_id": "r-big",
        "context": Value::Object(big_context(false)),
    });
    std::fs::write(&ctx_path, serde_json::to_vec(&rec).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_proof"))
        .args([
            "adapt",
            "--ir",
            "fixtures/adversarial/budget.ir.json",
            "--context",
        ])
        .arg(&ctx_path)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run proof");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for path in ["shadow", "enforced"] {
        assert_eq!(v[path]["verdict"], "fail", "{path}");
        assert_eq!(v[path]["failed_rules"], json!(["d34", "d35"]), "{path}");
        assert_eq!(
            v[path]["errors"],
            json!({"d34": "budget", "d35": "budget"}),
            "{path}"
        );
    }
}
