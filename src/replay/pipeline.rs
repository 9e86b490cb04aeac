//! The streaming replay: one reader thread produces chunks, a rayon pool parses and
//! evaluates them on both paths and folds them into mergeable [`Aggregate`]s. Memory
//! is bounded by the channel (a few chunks) plus the per-window state.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use rayon::prelude::*;
use serde_json::{Map, Value};
use smallvec::SmallVec;

use super::aggregate::{Aggregate, Bounds, Origin, Outcome};
use super::extract::PathTable;
use super::parquet::for_each_row_ref;
use super::record::{Ctx, Reason, Record, RecordBuf, RecordRef};
use super::source::{Chunk, Input, TOO_LONG, read_all};
use super::window::WindowLen;
use crate::error::ProofError;
use crate::orchestrator::{Engine, Evaluation, Scratch};
use crate::policy::expr::{Env, Memo, Resolved};

/// What the workers need to evaluate records.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Shadow and enforced paths.
    pub engine: Engine,
    /// Window length.
    pub window: WindowLen,
    /// Sample sizes.
    pub bounds: Bounds,
    /// Policy id records must carry (if they carry one) to be evaluated.
    pub baseline_id: String,
    /// Most windows held before the run stops with a limit error.
    pub max_windows: usize,
}

/// Counts one parsed record (or its rejection) into `acc`.
pub fn absorb(
    acc: &mut Aggregate,
    setup: &Setup,
    scratch: &mut Scratch,
    origin: Origin,
    rec: Result<Record, Reason>,
) {
    absorb_ref(
        acc,
        setup,
        scratch,
        origin,
        rec.as_ref().map(Record::borrowed).map_err(|r| *r),
    )
}

/// [`absorb`] of a borrowed record (replay reads lines into a reused [`RecordBuf`]).
pub fn absorb_ref(
    acc: &mut Aggregate,
    setup: &Setup,
    scratch: &mut Scratch,
    origin: Origin,
    rec: Result<RecordRef<'_>, Reason>,
) {
    let rec = match rec {
        Ok(r) => r,
        Err(reason) => return acc.reject(origin, reason),
    };
    if rec.policy_id.is_some_and(|p| p != setup.baseline_id) {
        return acc.skip(origin);
    }
    let window = setup.window.of(rec.ts_ms);
    if !window.fits(setup.window) {
        // Its window's start or end would fall outside the years 0000..=9999 and could
        // not be written as RFC 3339: the timestamp is out of range for this --window.
        return acc.reject(origin, Reason::BadTs);
    }
    let t0 = Instant::now();
    let ev = evaluate_ref(&setup.engine, &rec, scratch);
    let latency_ns = t0.elapsed().as_nanos() as u64;
    acc.add(&Outcome {
        origin,
        ts_ms: rec.ts_ms,
        window,
        request_id: rec.request_id,
        bucket: setup.engine.bucket(rec.request_id),
        shadow: ev.shadow.verdict,
        enforced: ev.enforced.verdict,
        drift: setup.engine.drift_cause(&ev),
        latency_ns,
        states: [&ev.shadow.states, &ev.enforced.states],
    });
}

/// Evaluates both paths of an engine on a borrowed record. A context read into slots
/// (`Ctx::Slots`) must come from a table made by `PathTable::for_engine(engine)`: its
/// vars are resolved once per path and evaluated by index.
pub fn evaluate_ref(engine: &Engine, rec: &RecordRef<'_>, scratch: &mut Scratch) -> Evaluation {
    match rec.context {
        Ctx::Map(ctx) => engine.evaluate(
            &Env {
                ctx,
                now_ms: rec.ts_ms,
                vars: None,
            },
            scratch,
        ),
        Ctx::Slots(slots, layout) => {
            static EMPTY: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);
            let (mut s, mut e) = (SmallVec::new(), SmallVec::new());
            layout.resolve(0, slots, &mut s);
            layout.resolve(1, slots, &mut e);
            let memo = Memo::default();
            let (s, e) = (
                Resolved {
                    values: &s,
                    memo: &memo,
                },
                Resolved {
                    values: &e,
                    memo: &memo,
                },
            );
            let env = |vars| Env {
                ctx: &EMPTY,
                now_ms: rec.ts_ms,
                vars: Some(vars),
            };
            engine.evaluate_pair(&env(&s), &env(&e), scratch)
        }
    }
}

/// Processes one chunk into `acc`.
pub fn process_chunk(acc: Aggregate, setup: &Setup, chunk: Chunk) -> Aggregate {
    process_chunk_with(acc, setup, &PathTable::for_engine(&setup.engine), chunk)
}

/// [`process_chunk`] with the engine's [`PathTable`] compiled once by the caller:
/// records are read keeping of their context only what the policies can look up.
pub fn process_chunk_with(
    mut acc: Aggregate,
    setup: &Setup,
    table: &PathTable,
    chunk: Chunk,
) -> Aggregate {
    if acc.windows.len() > setup.max_windows {
        // Already over the limit: stop growing; the caller reports the limit.
        return acc;
    }
    let mut scratch = Scratch::default();
    // One reusable record per chunk (a chunk is up to 1 MiB of lines).
    let mut buf = RecordBuf::default();
    match chunk {
        Chunk::Lines {
            file,
            first_line,
            data,
            spans,
        } => {
            for (k, span) in spans.iter().enumerate() {
                let origin = Origin {
                    file,
                    line: first_line + k as u64,
                };
                if *span == TOO_LONG {
                    acc.reject(origin, Reason::TooLong);
                    continue;
                }
                let line = &data[span.0 as usize..span.1 as usize];
                if line
                    .iter()
                    .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                {
                    continue; // blank (JSON whitespace only; a form feed is not) lines are not records
                }
                absorb_ref(&mut acc, setup, &mut scratch, origin, buf.read(line, table));
            }
        }
        Chunk::Batch {
            file,
            first_row,
            batch,
            columns,
        } => {
            // Rows whose conversion panics (corrupt arrays) arrive as `malformed`.
            let mut line = first_row;
            for_each_row_ref(&batch, &columns, table, |rec| {
                absorb_ref(&mut acc, setup, &mut scratch, Origin { file, line }, rec);
                line += 1;
            });
        }
    }
    acc
}

/// Runs the whole pipeline over `inputs` on `threads` worker threads.
pub fn run(
    setup: &Setup,
    inputs: &[Input],
    threads: usize,
    bytes_read: &Arc<AtomicU64>,
    records_done: &Arc<AtomicU64>,
) -> Result<Aggregate, ProofError> {
    let threads = threads.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("proof-worker-{i}"))
        .build()
        .map_err(|e| ProofError::Internal(format!("cannot start {threads} threads: {e}")))?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Chunk>(threads * 2);
    let bounds = setup.bounds;
    let table = PathTable::for_engine(&setup.engine);
    let (read_result, agg) = std::thread::scope(|s| {
        let reader = s.spawn(move || read_all(inputs, &tx, bytes_read));
        let agg = pool.install(|| {
            rx.into_iter()
                .par_bridge()
                .fold(
                    || Aggregate::new(bounds),
                    |acc, chunk| {
                        let before = acc.read;
                        let acc = process_chunk_with(acc, setup, &table, chunk);
                        records_done
                            .fetch_add(acc.read - before, std::sync::atomic::Ordering::Relaxed);
                        acc
                    },
                )
                .reduce(Aggregate::default, Aggregate::merge)
        });
        let read_result = reader
            .join()
            .unwrap_or_else(|_| Err(ProofError::Internal("the reader thread panicked".into())));
        (read_result, agg)
    });
    read_result?;
    let mut agg = agg;
    // One accumulator that rayon never merged may still hold up to twice the examples
    // asked for; finish trims, so the report never depends on how chunks were split.
    agg.bounds = bounds;
    agg.finish();
    if agg.windows.len() > setup.max_windows {
        return Err(ProofError::Limit {
            path: crate::error::Location::file(std::path::Path::new("--max-windows")),
            msg: format!(
                "more than {} windows: the logs span too long a time for --window {}; \
                 use a longer --window or raise --max-windows",
                setup.max_windows, setup.window
            ),
        });
    }
    Ok(agg)
}
