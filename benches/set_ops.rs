//! Set ops on one adversarial record (issue 17 item 1): two 60 000-element context
//! arrays, about 1 MB of JSON. Each of `membership`, `non_membership`,
//! `non_intersection` and `in` used to scan linearly per element (60 000 × 60 000
//! comparisons, 67 s for the record in `replay`); they now index one side, so the
//! whole record (`fixtures/adversarial/set_ops.ir.json`, one path) costs milliseconds.

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use proof::orchestrator::{Planner, SelectorKind};
use proof::policy::expr::Env;
use proof::policy::{Lists, Policy};
use serde_json::{Map, Value, json};

fn context() -> Map<String, Value> {
    let a: Vec<Value> = (0..60_000).map(|i| json!(format!("a{i}"))).collect();
    let b: Vec<Value> = (0..60_000).map(|i| json!(format!("b{i}"))).collect();
    let mut ctx = Map::new();
    ctx.insert("a".into(), Value::Array(a));
    ctx.insert("b".into(), Value::Array(b));
    ctx.insert("x".into(), json!("b59999"));
    ctx
}

fn bench(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/adversarial/set_ops.ir.json");
    let policy = Policy::load(&path, &Lists::default()).unwrap();
    let planner = Planner::new(&policy, SelectorKind::Basic, None);
    let ctx = context();
    let bytes = serde_json::to_vec(&ctx).unwrap().len();
    let env = Env {
        ctx: &ctx,
        now_ms: 0,
        vars: None,
    };
    let mut active = Vec::new();
    let mut group = c.benchmark_group("adversarial record");
    group.sample_size(20);
    group.bench_function(
        format!("4 set-op rules over 2 × 60 000 context elements ({bytes} bytes)"),
        |b| {
            b.iter(|| {
                planner
                    .run(&policy, std::hint::black_box(&env), &mut active)
                    .verdict
            })
        },
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
