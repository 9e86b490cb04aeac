//! The streaming replay: one reader thread produces chunks, a rayon pool hands each
//! line or batch to its thread's engine [`Worker`] (the seam, `crate::engine`) and
//! folds what it reads into mergeable [`Aggregate`]s: the window, the rollout bucket
//! and every count are decided here, for every engine alike. Memory is bounded by the
//! channel (a few chunks) plus the per-window state.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use rayon::prelude::*;

use super::aggregate::{Aggregate, Bounds, Origin};
use super::record::Reason;
use super::source::{Chunk, Input, TOO_LONG, read_all};
use super::window::WindowLen;
use crate::engine::{Engine, Read, Worker};
use crate::error::ProofError;
use crate::orchestrator::enforcer::bucket;

/// Stack of the reader thread: the Parquet decoder recurses per nesting level
/// (`engine::ir::parquet::MAX_NESTING`); 2 MiB (std's default) held about 240 levels
/// in a release build and fewer in a debug one.
const READER_STACK: usize = 16 << 20;

/// What the workers need besides the engine.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Salt of the rollout hash.
    pub salt: String,
    /// Window length.
    pub window: WindowLen,
    /// Sample sizes.
    pub bounds: Bounds,
    /// Most windows held before the run stops with a limit error.
    pub max_windows: usize,
}

/// Counts what an engine read of one record into `acc`: the record's window and
/// rollout bucket are placed here (SPEC §3, §5).
pub fn absorb(acc: &mut Aggregate, setup: &Setup, origin: Origin, read: Read<'_>) {
    let d = match read {
        Read::Rejected(reason) => return acc.reject(origin, reason),
        Read::Skipped(why) => return acc.skip(origin, why),
        Read::Evaluated(d) => d,
    };
    let window = setup.window.of(d.ts_ms);
    if !window.fits(setup.window) {
        // Its window's start or end would fall outside the years 0000..=9999 and could
        // not be written as RFC 3339: the timestamp is out of range for this --window.
        return acc.reject(origin, Reason::BadTs);
    }
    let b = bucket(&setup.salt, d.key.text(d.request_id));
    acc.add(origin, window, b, &d);
}

/// Processes one chunk into `acc` with a thread's worker.
pub fn process_chunk<W: Worker>(
    mut acc: Aggregate,
    setup: &Setup,
    worker: &mut W,
    chunk: Chunk,
) -> Aggregate {
    if acc.windows.len() > setup.max_windows {
        // Already over the limit: stop growing; the caller reports the limit.
        return acc;
    }
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
                absorb(&mut acc, setup, origin, worker.line(line));
            }
        }
        Chunk::Batch {
            file,
            first_row,
            batch,
        } => {
            let mut line = first_row;
            worker.batch(&batch, &mut |read| {
                absorb(&mut acc, setup, Origin { file, line }, read);
                line += 1;
            });
        }
    }
    acc
}

/// Runs the whole pipeline over `inputs` on `threads` worker threads.
pub fn run<E: Engine>(
    engine: &E,
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
    let check = |schema: &arrow::datatypes::Schema| engine.check_schema(schema);
    let (read_result, agg) = std::thread::scope(|s| {
        // The Parquet decoder recurses once per level of a nested column: the reader gets
        // a stack that holds `MAX_NESTING` levels with room to spare, in debug builds too
        // (only the pages it touches are committed).
        let reader = std::thread::Builder::new()
            .name("proof-reader".into())
            .stack_size(READER_STACK)
            .spawn_scoped(s, move || read_all(inputs, &tx, bytes_read, &check));
        let agg = pool.install(|| {
            rx.into_iter()
                .par_bridge()
                .fold(
                    || (Aggregate::new(bounds), engine.worker()),
                    |(acc, mut worker), chunk| {
                        let before = acc.read;
                        let acc = process_chunk(acc, setup, &mut worker, chunk);
                        records_done
                            .fetch_add(acc.read - before, std::sync::atomic::Ordering::Relaxed);
                        (acc, worker)
                    },
                )
                .map(|(acc, _)| acc)
                .reduce(Aggregate::default, Aggregate::merge)
        });
        // A reader that could not start dropped the sender: the workers saw no chunk.
        let read_result = match reader {
            Ok(r) => r
                .join()
                .unwrap_or_else(|_| Err(ProofError::Internal("the reader thread panicked".into()))),
            Err(e) => Err(ProofError::Internal(format!(
                "cannot start the reader thread: {e}"
            ))),
        };
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
