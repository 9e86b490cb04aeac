//! The JSON parsers issue 15 asked to weigh, on the records replay reads: 2 000 lines
//! of `proof gen --seed 7` traffic, timed per batch (criterion reports the batch; per
//! record is that over 2 000). What each line costs to
//!
//! - parse into a full `serde_json::Value` (what `parse_line` does);
//! - tokenize and check the syntax only (`serde::de::IgnoredAny`: serde_json's floor,
//!   which skips number conversion and the depth count, so it is not a valid reader);
//! - read as replay does: `RecordBuf::read` under the engine's path table, values
//!   kept in slots, everything else checked as a full parse checks it;
//! - parse with `sonic-rs` into its DOM and through serde into a `serde_json::Value`,
//!   and with `simd-json` into its tape (both SIMD parsers; a tape is the cheapest
//!   thing simd-json builds).
//!
//! Before the timings it prints where sonic-rs reads a text differently.
//!
//! docs/performance.md ("Parsers") reads the numbers and says why replay keeps
//! serde_json. `sonic-rs` and `simd-json` are dev-dependencies of this bench only.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use proof::r#gen::{GenConfig, Generator, jsonl::to_jsonl};
use proof::replay::extract::PathTable;
use proof::replay::record::RecordBuf;

mod common;

fn lines() -> Vec<String> {
    let cfg = GenConfig {
        records: 2_000,
        seed: 7,
        ..GenConfig::default()
    };
    Generator::new(cfg).map(|r| to_jsonl(&r)).collect()
}

/// Where sonic-rs reads a text differently from serde_json (printed, not asserted).
fn differences() {
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    for text in [
        r#"{"x":-0}"#,
        r#"{"x":1e400}"#,
        r#"{"x":"\ud800"}"#,
        deep.as_str(),
    ] {
        let short = |v: serde_json::Value| v.to_string().chars().take(24).collect::<String>();
        let a = serde_json::from_str::<serde_json::Value>(text)
            .map(short)
            .map_err(|_| "error");
        let b = sonic_rs::from_str::<serde_json::Value>(text)
            .map(short)
            .map_err(|_| "error");
        let shown = if text.len() > 20 {
            "200 nested arrays"
        } else {
            text
        };
        eprintln!("{shown}: serde_json {a:?}, sonic-rs {b:?}");
    }
}

fn bench(c: &mut Criterion) {
    differences();
    let lines = lines();
    let engine = common::lksg_engine();
    let table = PathTable::for_engine(&engine);
    let mut g = c.benchmark_group("parse 2000 generated records");
    g.bench_function("serde_json: full Value", |b| {
        b.iter(|| {
            for l in &lines {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                std::hint::black_box(v);
            }
        })
    });
    g.bench_function("serde_json: syntax only (IgnoredAny)", |b| {
        b.iter(|| {
            for l in &lines {
                let v: serde::de::IgnoredAny = serde_json::from_str(l).unwrap();
                std::hint::black_box(v);
            }
        })
    });
    let mut buf = RecordBuf::default();
    g.bench_function("proof: RecordBuf::read (replay)", |b| {
        b.iter(|| {
            for l in &lines {
                std::hint::black_box(buf.read(l.as_bytes(), &table).is_ok());
            }
        })
    });
    g.bench_function("sonic-rs: full Value", |b| {
        b.iter(|| {
            for l in &lines {
                let v: sonic_rs::Value = sonic_rs::from_str(l).unwrap();
                std::hint::black_box(v);
            }
        })
    });
    g.bench_function("sonic-rs: serde into serde_json::Value", |b| {
        b.iter(|| {
            for l in &lines {
                let v: serde_json::Value = sonic_rs::from_str(l).unwrap();
                std::hint::black_box(v);
            }
        })
    });
    let mut bufs = simd_json::Buffers::default();
    g.bench_function("simd-json: tape", |b| {
        b.iter_batched_ref(
            || {
                lines
                    .iter()
                    .map(|l| l.as_bytes().to_vec())
                    .collect::<Vec<_>>()
            },
            |copies| {
                for l in copies.iter_mut() {
                    let t = simd_json::to_tape_with_buffers(l, &mut bufs).unwrap();
                    std::hint::black_box(t.0.len());
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
