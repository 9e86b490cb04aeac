//! Select + plan latency for lksg.v2 on a typical context (issue target: p50 ≤ 1 µs).
//! `select` = adaptivity predicates + active-rule mask; `select + plan` = that plus the
//! selector's ordered, budgeted walk (`Planner::plan`, no rule evaluated), for `basic`
//! and `weighted`; `select + plan + run` adds evaluating every taken rule; `both paths`
//! = what replay does per record.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use proof::orchestrator::{Engine, PathSpec, Planner, Scratch, SelectorKind, Weights};
use proof::policy::Policy;
use proof::policy::expr::Env;
use serde_json::Value;

mod common;
use common::fixture;

fn setup() -> (
    Arc<Policy>,
    Arc<Policy>,
    Weights,
    serde_json::Map<String, Value>,
    i64,
) {
    let (v1, v2) = common::lksg_policies();
    let w = Weights::load(&fixture("fixtures/weights/rule_weights.yaml")).unwrap();
    let rec: Value = serde_json::from_slice(
        &std::fs::read(fixture("fixtures/contexts/context_ok.json")).unwrap(),
    )
    .unwrap();
    let ctx = rec["context"].as_object().unwrap().clone();
    let ts = proof::policy::time::parse_rfc3339_ms(rec["ts"].as_str().unwrap()).unwrap();
    (v1, v2, w, ctx, ts)
}

fn bench(c: &mut Criterion) {
    let (v1, v2, w, ctx, ts) = setup();
    let env = Env {
        ctx: &ctx,
        now_ms: ts,
        vars: None,
    };
    let mut active = Vec::new();
    c.bench_function("lksg.v2 select (predicates + active mask)", |b| {
        b.iter(|| {
            v2.active_rules(std::hint::black_box(&env), &mut active);
            active.len()
        })
    });
    let basic = Planner::new(&v2, SelectorKind::Basic, None);
    let weighted = Planner::new(&v2, SelectorKind::Weighted, Some(&w));
    for (name, planner) in [("basic", &basic), ("weighted", &weighted)] {
        c.bench_function(&format!("lksg.v2 select + plan, {name}"), |b| {
            b.iter(|| {
                planner
                    .plan(&v2, std::hint::black_box(&env), &mut active)
                    .taken
                    .len()
            })
        });
    }
    c.bench_function("lksg.v2 select + plan + run, basic", |b| {
        b.iter(|| {
            basic
                .run(&v2, std::hint::black_box(&env), &mut active)
                .verdict
        })
    });
    c.bench_function("lksg.v2 select + plan + run, weighted", |b| {
        b.iter(|| {
            weighted
                .run(&v2, std::hint::black_box(&env), &mut active)
                .verdict
        })
    });
    let engine = Engine::new(
        PathSpec {
            planner: Planner::new(&v1, SelectorKind::Basic, None),
            policy: v1.clone(),
        },
        PathSpec {
            planner: basic.clone(),
            policy: v2.clone(),
        },
        "lksg.v1".into(),
    );
    let mut scratch = Scratch::default();
    c.bench_function("lksg.v1 → lksg.v2 both paths + bucket", |b| {
        b.iter(|| {
            let ev = engine.evaluate(std::hint::black_box(&env), &mut scratch);
            (engine.bucket("r-00000001"), engine.drift(&ev).is_some())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
