//! Sources (SPEC §4): expands paths into inputs, detects format and compression, and
//! reads them into chunks for the pipeline: JSONL lines with their line numbers, or
//! Parquet record batches with their row numbers.
//!
//! Reading is sequential (one thread, which also decompresses); parsing happens in
//! the workers. A line longer than the record limit is never held in memory whole.
//!
//! One file per concern: `discover` expands paths into inputs (directories walked in
//! name order, files given twice read once, format and compression sniffed, Parquet
//! schemas checked before any work starts); `jsonl` reads JSONL streams (plain, gzip,
//! zstd, standard input, or a JSON array of records) into line chunks; `parquet` reads
//! Parquet files into record batches, its calls guarded so that a panic on corrupt data
//! becomes an error. This file holds what they share (inputs, chunks, file stamps) and
//! [`read_all`], which reads every input in order.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::SyncSender;

use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::error::{Location, ProofError};
pub use crate::panics::contain_panics;

mod discover;
mod jsonl;
mod parquet;

pub(crate) use self::discover::{dedupe, file_kind};
pub use self::discover::{expand_inputs, expand_inputs_with_warnings};
pub use self::jsonl::MAX_ARRAY_BYTES;
pub use self::parquet::{open_parquet, open_projected, parquet_error};

/// Target bytes of line data per chunk.
pub const CHUNK_BYTES: usize = 1 << 20;
/// Most lines per chunk.
pub const CHUNK_LINES: usize = 8192;
/// Rows per Parquet batch.
pub const PARQUET_BATCH: usize = 8192;

/// Input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object a line (optionally .gz or .zst).
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

/// Compression of a JSONL input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Plain text.
    None,
    /// gzip (multi-member streams allowed).
    Gzip,
    /// Zstandard.
    Zstd,
}

/// One input to read.
#[derive(Debug, Clone, Serialize)]
pub struct Input {
    /// The path as given (or `-`).
    pub path: PathBuf,
    /// Format.
    pub format: Format,
    /// Compression (JSONL only).
    pub compression: Compression,
    /// Size on disk, when known.
    pub bytes: Option<u64>,
    /// Size and modification time when the inputs were listed (regular files only):
    /// the file must still look like this after it has been read.
    #[serde(skip)]
    pub stamp: Option<FileStamp>,
}

/// What a regular file looked like at one moment: its size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    /// Size in bytes.
    pub len: u64,
    /// Last modification, where the file system keeps one.
    pub modified: Option<std::time::SystemTime>,
}

impl FileStamp {
    /// The stamp of a file's metadata.
    pub fn of(meta: &std::fs::Metadata) -> FileStamp {
        FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
        }
    }
}

/// How a file differs from the stamp it had when it was listed, or `None` if it looks
/// the same: another size, another modification time, or (`read`, for files read as
/// plain bytes to their end) a byte count other than the listed size. A log truncated,
/// appended to or rewritten while it is read would otherwise give a report over part
/// of it while `inputs.files[].bytes` still shows the old size.
pub fn changed_since(listed: &FileStamp, now: &FileStamp, read: Option<u64>) -> Option<String> {
    let mut what = Vec::new();
    if now.len != listed.len {
        what.push(format!(
            "its size went from {} to {} bytes",
            listed.len, now.len
        ));
    }
    if let Some(n) = read
        && n != listed.len
    {
        what.push(format!("{n} bytes were read of the {} listed", listed.len));
    }
    if now.modified != listed.modified {
        what.push("its modification time changed".to_string());
    }
    (!what.is_empty()).then(|| what.join(", "))
}

/// The error for a file that changed while it was read.
fn changed_error(path: &Path, what: &str) -> ProofError {
    ProofError::Config {
        path: Location::file(path),
        msg: format!(
            "the file changed while it was read ({what}); no report was written, since it \
             would cover only part of the file — replay a copy that is no longer written \
             to (a rotated file, or `cp` it first)"
        ),
    }
}

/// Checks `file` (open on `path`) against the stamp it was listed with.
fn check_stamp(
    path: &Path,
    listed: Option<&FileStamp>,
    file: &File,
    read: Option<u64>,
) -> Result<(), ProofError> {
    let Some(listed) = listed else {
        return Ok(());
    };
    let now = FileStamp::of(&file.metadata().map_err(|e| ProofError::io(path, e))?);
    match changed_since(listed, &now, read) {
        Some(what) => Err(changed_error(path, &what)),
        None => Ok(()),
    }
}

/// A piece of work for the pipeline.
pub enum Chunk {
    /// Consecutive JSONL lines.
    Lines {
        /// Input index.
        file: u32,
        /// Line number of the first line.
        first_line: u64,
        /// Line bytes, back to back.
        data: Vec<u8>,
        /// `(start, end)` of each line in `data`; `TOO_LONG` marks an over-long line.
        spans: Vec<(u32, u32)>,
    },
    /// A Parquet record batch.
    Batch {
        /// Input index.
        file: u32,
        /// Row number of the first row (1-based).
        first_row: u64,
        /// The rows.
        batch: RecordBatch,
    },
}

/// Span marker of a line over the record limit.
pub const TOO_LONG: (u32, u32) = (u32::MAX, u32::MAX);

/// Compression told by the magic number at the start of a stream.
fn sniff_compression(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// An engine's check of a Parquet schema: the root columns it reads, in schema order,
/// or what is wrong (`crate::engine::Engine::check_schema`).
pub type Columns<'a> = &'a (dyn Fn(&arrow::datatypes::Schema) -> Result<Vec<usize>, String> + Sync);

/// Reads every input in order and sends chunks; stops early if the receiver is gone.
/// A regular file that changed while it was read (or since it was listed) is an error.
pub fn read_all(
    inputs: &[Input],
    tx: &SyncSender<Chunk>,
    bytes_read: &Arc<AtomicU64>,
    columns: Columns<'_>,
) -> Result<(), ProofError> {
    for (i, input) in inputs.iter().enumerate() {
        let file = i as u32;
        match input.format {
            Format::Parquet => parquet::read_parquet(input, file, tx, bytes_read, columns)?,
            Format::Jsonl => {
                if !jsonl::read_jsonl(input, file, tx, bytes_read)? {
                    return Ok(()); // the receiver is gone: the run is ending anyway
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_changed_since_it_was_listed_is_told_apart() {
        let t0 = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000);
        let listed = FileStamp {
            len: 1000,
            modified: Some(t0),
        };
        assert_eq!(changed_since(&listed, &listed, Some(1000)), None);
        assert_eq!(changed_since(&listed, &listed, None), None);
        // Truncated while read: it shrank and fewer bytes came out.
        let shrunk = FileStamp {
            len: 400,
            modified: Some(t0 + std::time::Duration::from_millis(3)),
        };
        assert_eq!(
            changed_since(&listed, &shrunk, Some(650)).as_deref(),
            Some(
                "its size went from 1000 to 400 bytes, 650 bytes were read of the 1000 listed, \
                 its modification time changed"
            )
        );
        // Rewritten to the same size: only the time tells.
        let rewritten = FileStamp {
            len: 1000,
            modified: Some(t0 + std::time::Duration::from_nanos(1)),
        };
        assert_eq!(
            changed_since(&listed, &rewritten, Some(1000)).as_deref(),
            Some("its modification time changed")
        );
        // Truncated and grown back within the clock's resolution: the byte count tells.
        assert_eq!(
            changed_since(&listed, &listed, Some(1200)).as_deref(),
            Some("1200 bytes were read of the 1000 listed")
        );
        let e = changed_error(Path::new("logs/a.jsonl"), "its size went from 1 to 0 bytes");
        assert!(
            e.to_string().starts_with(
                "logs/a.jsonl: the file changed while it was read (its size went from 1 to 0 \
                 bytes); no report was written"
            ),
            "{e}"
        );
    }
}
