//! One replay record, stage by stage (issue 15), so a regression shows where it is:
//! `extract` (reading the JSONL line: the full `Value` parse of `parse_line`, the
//! path-table read of `parse_line_with`, and the reused `RecordBuf` replay uses), `evaluate` (both paths, with the
//! context as an object and as replay's slots), `bucket` (SHA-256
//! rollout bucket), `aggregate` (`Aggregate::add` of one decision) and the IR engine's
//! worker (`Worker::line`: read, evaluate, key) folded by `absorb`. lksg.v1 → lksg.v2 with the fixture lists, on the record of
//! `fixtures/contexts/context_ok.json` written as one JSONL line.
//!
//! A counting allocator wraps the system one: before the timings, the bench prints
//! the heap allocations each stage makes per record (steady state, after warm-up).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use proof::engine::ir::{IrEngine, IrOptions, evaluate_ref};
use proof::engine::{BucketKey, Decision, Engine as _, Worker as _};
use proof::orchestrator::Scratch;
use proof::policy::expr::Env;
use proof::replay::aggregate::{Aggregate, Bounds, Origin};
use proof::replay::pipeline::{Setup, absorb};
use proof::replay::record::{RecordBuf, parse_line, parse_line_with};
use proof::replay::window::WindowLen;
use serde_json::Value;

/// The system allocator, counting allocations (reallocations included).
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap allocations per call of `f`, over 1000 calls after 100 of warm-up.
fn allocs_per_call(mut f: impl FnMut()) -> f64 {
    for _ in 0..100 {
        f();
    }
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        f();
    }
    (ALLOCS.load(Ordering::Relaxed) - before) as f64 / 1000.0
}

mod common;
use common::fixture;

fn setup() -> (Setup, IrEngine, Vec<u8>) {
    let paths = common::lksg_engine();
    let ir = IrEngine::new(
        paths,
        IrOptions {
            policy_filter: Some("lksg.v1".into()),
            ..IrOptions::default()
        },
        [String::new(), String::new()],
    );
    let setup = Setup {
        salt: "lksg.v1".into(),
        window: WindowLen::from_ms(60_000).unwrap(),
        bounds: Bounds {
            examples: 3,
            rejections: 5,
            drift_details: false,
        },
        max_windows: 1_000_000,
    };
    let rec: Value = serde_json::from_slice(
        &std::fs::read(fixture("fixtures/contexts/context_ok.json")).unwrap(),
    )
    .unwrap();
    (setup, ir, serde_json::to_vec(&rec).unwrap())
}

fn bench(c: &mut Criterion) {
    let (setup, ir, line) = setup();
    let table = ir.table().clone();
    let rec = parse_line_with(&line, &table).unwrap();
    let env = Env {
        ctx: &rec.context,
        now_ms: rec.ts_ms,
        vars: None,
    };
    let engine = &ir.paths;
    let mut scratch = Scratch::default();
    let mut acc = Aggregate::new(setup.bounds);
    let origin = Origin { file: 0, line: 1 };
    let ev = engine.evaluate(&env, &mut scratch);
    let outcome = |ev: &proof::orchestrator::Evaluation| {
        let (shadow, enforced) = (ev.shadow.verdict, ev.enforced.verdict);
        (shadow, enforced, engine.drift_cause(ev))
    };

    // The record as replay's reader leaves it: context values in slots.
    let mut slot_buf = RecordBuf::default();
    let slot_rec = slot_buf.read(&line, &table).unwrap();

    // Allocations per record, stage by stage (printed, not asserted: a benchmark).
    let mut scratch2 = Scratch::default();
    let mut buf = RecordBuf::default();
    let mut acc2 = Aggregate::new(setup.bounds);
    let mut worker = ir.worker();
    let counts = [
        (
            "extract, full parse",
            allocs_per_call(|| drop(parse_line(&line))),
        ),
        (
            "extract, path table",
            allocs_per_call(|| drop(parse_line_with(&line, &table))),
        ),
        (
            "evaluate both paths",
            allocs_per_call(|| {
                std::hint::black_box(engine.evaluate_in(&env, &env, &mut scratch2));
            }),
        ),
        (
            "evaluate both paths, vars from slots (replay)",
            allocs_per_call(|| {
                std::hint::black_box(evaluate_ref(engine, &slot_rec, &mut scratch2));
            }),
        ),
        (
            "extract, reused RecordBuf (replay)",
            allocs_per_call(|| {
                std::hint::black_box(buf.read(&line, &table).is_ok());
            }),
        ),
        (
            "bucket",
            allocs_per_call(|| {
                std::hint::black_box(engine.bucket(&rec.request_id));
            }),
        ),
        (
            "read + evaluate + absorb (replay's worker)",
            allocs_per_call(|| {
                absorb(&mut acc2, &setup, origin, worker.line(&line));
            }),
        ),
    ];
    for (stage, n) in counts {
        eprintln!("allocations per record: {stage}: {n:.1}");
    }

    c.bench_function("extract: parse_line (full Value)", |b| {
        b.iter(|| parse_line(std::hint::black_box(&line)).is_ok())
    });
    c.bench_function("extract: parse_line_with (path table)", |b| {
        b.iter(|| parse_line_with(std::hint::black_box(&line), &table).is_ok())
    });
    c.bench_function("extract: RecordBuf::read (replay, reused record)", |b| {
        b.iter(|| buf.read(std::hint::black_box(&line), &table).is_ok())
    });
    c.bench_function("evaluate: both paths", |b| {
        b.iter(|| {
            let env = std::hint::black_box(&env);
            outcome(engine.evaluate_in(env, env, &mut scratch))
        })
    });
    c.bench_function("evaluate: both paths, vars from slots (replay)", |b| {
        b.iter(|| {
            outcome(evaluate_ref(
                engine,
                std::hint::black_box(&slot_rec),
                &mut scratch,
            ))
        })
    });
    c.bench_function("bucket: SHA-256 rollout bucket", |b| {
        b.iter(|| engine.bucket(std::hint::black_box(&rec.request_id)))
    });
    let drift = engine.drift_cause(&ev);
    let decision = Decision {
        ts_ms: rec.ts_ms,
        request_id: &rec.request_id,
        key: BucketKey::RequestId,
        shadow: ev.shadow.verdict,
        enforced: ev.enforced.verdict,
        recorded: None,
        drift: drift.map(|(k, c)| (k, c.as_str())),
        changed: false,
        errors: &[],
        latency_ns: 1_000,
    };
    c.bench_function("aggregate: Aggregate::add", |b| {
        b.iter(|| {
            acc.add(
                origin,
                setup.window.of(rec.ts_ms),
                42,
                std::hint::black_box(&decision),
            )
        })
    });
    c.bench_function("record: worker.line + absorb (replay)", |b| {
        b.iter(|| {
            absorb(
                &mut acc,
                &setup,
                origin,
                worker.line(std::hint::black_box(&line)),
            );
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
