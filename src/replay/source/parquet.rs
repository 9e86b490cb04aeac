//! Parquet files (SPEC §4): opened with the columns an engine reads, and read into
//! record batches with their row numbers. Every call into the Parquet reader is
//! guarded: a panic on corrupt data becomes an error naming the file and row.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;

use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};

use super::{Chunk, Columns, FileStamp, Input, PARQUET_BATCH, changed_error, changed_since};
use crate::error::{Location, ProofError};
use crate::panics::contain_panics;

/// A Parquet call that may panic on corrupt data, as an error naming file and row.
pub(super) fn parquet_guarded<T>(
    path: &Path,
    row: u64,
    f: impl FnOnce() -> Result<T, ProofError>,
) -> Result<T, ProofError> {
    contain_panics(f).unwrap_or_else(|why| {
        let place = if row == 0 {
            "Parquet footer or schema is corrupt".to_string()
        } else {
            format!("Parquet data is corrupt near row {row}")
        };
        Err(ProofError::Config {
            path: Location::at(path, row, 0),
            msg: format!(
                "{place}: the Parquet reader gave up ({why}); no report was written — \
                 re-export the file"
            ),
        })
    })
}

pub(super) fn read_parquet(
    input: &Input,
    file: u32,
    tx: &SyncSender<Chunk>,
    bytes_read: &Arc<AtomicU64>,
    columns: Columns<'_>,
) -> Result<(), ProofError> {
    let path = &input.path;
    // The reader opens the file itself: compare by path, before and after.
    let unchanged = || -> Result<(), ProofError> {
        let Some(listed) = &input.stamp else {
            return Ok(());
        };
        let now = FileStamp::of(&std::fs::metadata(path).map_err(|e| ProofError::io(path, e))?);
        match changed_since(listed, &now, None) {
            Some(what) => Err(changed_error(path, &what)),
            None => Ok(()),
        }
    };
    unchanged()?;
    let builder = parquet_guarded(path, 0, || open_projected(path, columns))
        .map_err(|e| unchanged().err().unwrap_or(e))?;
    // The decoder reads column chunks, not a byte stream: progress advances by the
    // share of rows decoded, in bytes of the file, so the bar and its ETA move.
    let total_rows = builder.metadata().file_metadata().num_rows().max(1) as u64;
    let size = input.bytes.unwrap_or(0);
    let mut credited = 0u64;
    let mut reader = parquet_guarded(path, 0, || {
        builder
            .with_batch_size(PARQUET_BATCH)
            .build()
            .map_err(|e| parquet_error(path, e))
    })?;
    let mut first_row = 1;
    while let Some(batch) = parquet_guarded(path, first_row, || Ok(reader.next()))
        .map_err(|e| unchanged().err().unwrap_or(e))?
    {
        let batch = batch.map_err(|e| {
            unchanged().err().unwrap_or_else(|| ProofError::Config {
                path: Location::at(path, first_row, 0),
                msg: format!("Parquet data is truncated or corrupt near row {first_row}: {e}"),
            })
        })?;
        let n = batch.num_rows() as u64;
        let done = (size as u128 * (first_row - 1 + n).min(total_rows) as u128 / total_rows as u128)
            as u64;
        bytes_read.fetch_add(done.saturating_sub(credited), Ordering::Relaxed);
        credited = done;
        if tx
            .send(Chunk::Batch {
                file,
                first_row,
                batch,
            })
            .is_err()
        {
            return Ok(());
        }
        first_row += n;
    }
    unchanged()
}

/// A Parquet library error as a user-facing error.
pub fn parquet_error(path: &Path, e: impl std::fmt::Display) -> ProofError {
    ProofError::Schema {
        path: Location::file(path),
        msg: format!(
            "cannot read Parquet (truncated, still being written, or not Parquet at all): {e}"
        ),
    }
}

/// Opens a file, checks its schema with an engine's `columns` and projects the columns
/// it reads.
pub fn open_projected(
    path: &Path,
    columns: Columns<'_>,
) -> Result<ParquetRecordBatchReaderBuilder<File>, ProofError> {
    let builder = open_parquet(path)?;
    let roots = columns(builder.schema()).map_err(|msg| ProofError::Schema {
        path: Location::file(path),
        msg,
    })?;
    let builder = string_views(path, builder)?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots.iter().copied());
    Ok(builder.with_projection(mask))
}

/// The same reader with every top-level string column read as `Utf8View`: the views
/// point into the decompressed pages instead of each value being copied into an
/// offsets-and-bytes buffer first (the engines read both types alike).
fn string_views(
    path: &Path,
    builder: ParquetRecordBatchReaderBuilder<File>,
) -> Result<ParquetRecordBatchReaderBuilder<File>, ProofError> {
    use arrow::datatypes::{DataType, Field, Schema};
    let schema = builder.schema().clone();
    if !schema
        .fields()
        .iter()
        .any(|f| f.data_type() == &DataType::Utf8)
    {
        return Ok(builder);
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 => f.as_ref().clone().with_data_type(DataType::Utf8View),
            _ => f.as_ref().clone(),
        })
        .collect();
    let hinted = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let options = ArrowReaderOptions::new().with_schema(hinted);
    // A file whose embedded Arrow schema is unreadable (`open_parquet`) keeps the
    // reader it was opened with.
    match parquet::arrow::arrow_reader::ArrowReaderMetadata::try_new(
        builder.metadata().clone(),
        options,
    ) {
        Ok(metadata) => {
            let file = File::open(path).map_err(|e| ProofError::io(path, e))?;
            Ok(ParquetRecordBatchReaderBuilder::new_with_metadata(
                file, metadata,
            ))
        }
        Err(_) => Ok(builder),
    }
}

/// Opens a Parquet file for reading batches.
pub fn open_parquet(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, ProofError> {
    let open = || File::open(path).map_err(|e| ProofError::io(path, e));
    match ParquetRecordBatchReaderBuilder::try_new(open()?) {
        Ok(b) => Ok(b),
        // The Arrow schema writers embed (a flatbuffer in the `ARROW:schema` metadata)
        // can be nested past its decoder's depth limit — a context of 60 levels of
        // structs of lists is — while the file itself is fine (issue 24): read it
        // by its Parquet schema instead, which gives the same columns.
        Err(e) if e.to_string().contains("ARROW:schema") => {
            let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
            ParquetRecordBatchReaderBuilder::try_new_with_options(open()?, options).map_err(|e2| {
                ProofError::Schema {
                    path: Location::file(path),
                    msg: format!(
                        "cannot read the Parquet schema: the embedded Arrow schema is \
                         unreadable ({e}) and so is the Parquet one ({e2}); a context \
                         nested this deep is better stored as a JSON string"
                    ),
                }
            })
        }
        Err(e) => Err(parquet_error(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid file whose embedded Arrow schema is nested past the flatbuffer
    /// decoder's limit (60 levels of a struct holding a list) is read by its Parquet
    /// schema, not called truncated (issue 24, item 14).
    #[test]
    fn a_deeply_nested_parquet_context_is_read() {
        // arrow's JSON reader and the Parquet writer and decoder recurse per level: more
        // than a test thread's 2 MiB in a debug build (the replay reader thread has its
        // own larger stack, `replay::pipeline`).
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(deeply_nested_parquet_context_is_read)
            .unwrap()
            .join()
            .unwrap();
    }

    fn deeply_nested_parquet_context_is_read() {
        let mut nested = r#"{"x":[1,2]}"#.to_string();
        for _ in 0..59 {
            nested = format!(r#"{{"a":[{nested}]}}"#);
        }
        let line = format!(
            r#"{{"ts":"2026-11-02T00:00:00Z","request_id":"r-1","context":{{"k":{nested}}}}}"#
        );
        let (schema, _) =
            arrow::json::reader::infer_json_schema(std::io::Cursor::new(line.as_bytes()), None)
                .unwrap();
        let schema = Arc::new(schema);
        let batch = arrow::json::ReaderBuilder::new(schema.clone())
            .build(std::io::Cursor::new(line.as_bytes()))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep.parquet");
        let mut w =
            parquet::arrow::ArrowWriter::try_new(File::create(&path).unwrap(), schema, None)
                .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        // What the default reader says of it: the embedded schema is too deep.
        let plain = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap());
        assert!(plain.unwrap_err().to_string().contains("ARROW:schema"));
        let rows: usize = open_parquet(&path)
            .unwrap()
            .build()
            .unwrap()
            .map(|b| b.unwrap().num_rows())
            .sum();
        assert_eq!(rows, 1);
    }
}
