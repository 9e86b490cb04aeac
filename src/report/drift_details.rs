//! `--drift-details FILE`: every drifting record, one row each, as Parquet or JSONL
//! (chosen by the file's extension), for DuckDB, pandas or `jq`. Rows come from
//! `Report::drift_details`, already in (ts, origin) order and with request ids
//! redacted when asked; this module only serialises them and writes the file
//! atomically. It never sees context values.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{StringBuilder, TimestampMillisecondBuilder, UInt16Builder};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Serialize;

use super::model::ExampleOut;
use super::writer::write_atomic;
use crate::error::ProofError;

/// File format of the drift details, from the file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetailsFormat {
    /// Apache Parquet, zstd-compressed.
    Parquet,
    /// One JSON object a line.
    Jsonl,
}

impl DetailsFormat {
    /// `.parquet` or `.jsonl`; anything else is a usage error naming the flag.
    pub fn from_path(path: &Path) -> Result<DetailsFormat, ProofError> {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("parquet") => Ok(DetailsFormat::Parquet),
            Some(e) if e.eq_ignore_ascii_case("jsonl") => Ok(DetailsFormat::Jsonl),
            _ => Err(ProofError::Usage(format!(
                "--drift-details {}: the file name must end in .parquet or .jsonl",
                path.display()
            ))),
        }
    }
}

/// Rows per Parquet row group (and record batch).
const ROW_GROUP: usize = 65_536;

/// Columns, in file order: `ts` timestamp[ms, UTC], strings, `bucket` uint16.
fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("request_id", DataType::Utf8, false),
        Field::new("shadow", DataType::Utf8, false),
        Field::new("enforced", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("cause", DataType::Utf8, false),
        Field::new("bucket", DataType::UInt16, false),
        Field::new("source", DataType::Utf8, false),
    ]))
}

fn to_parquet(path: &Path, rows: &[(i64, ExampleOut)]) -> Result<Vec<u8>, ProofError> {
    let err = |e: &dyn std::fmt::Display| {
        ProofError::Usage(format!(
            "--drift-details {}: cannot encode Parquet: {e}",
            path.display()
        ))
    };
    let schema = schema();
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP))
        .build();
    let mut w =
        ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props)).map_err(|e| err(&e))?;
    for part in rows.chunks(ROW_GROUP) {
        let mut ts = TimestampMillisecondBuilder::new().with_timezone("UTC");
        let mut rid = StringBuilder::new();
        let mut shadow = StringBuilder::new();
        let mut enforced = StringBuilder::new();
        let mut kind = StringBuilder::new();
        let mut cause = StringBuilder::new();
        let mut bucket = UInt16Builder::new();
        let mut source = StringBuilder::new();
        for (ms, r) in part {
            ts.append_value(*ms);
            rid.append_value(&r.request_id);
            shadow.append_value(r.shadow.as_str());
            enforced.append_value(r.enforced.as_str());
            kind.append_value(r.kind);
            cause.append_value(&r.cause);
            bucket.append_value(r.bucket);
            source.append_value(&r.source);
        }
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(ts.finish()),
                Arc::new(rid.finish()),
                Arc::new(shadow.finish()),
                Arc::new(enforced.finish()),
                Arc::new(kind.finish()),
                Arc::new(cause.finish()),
                Arc::new(bucket.finish()),
                Arc::new(source.finish()),
            ],
        )
        .map_err(|e| err(&e))?;
        w.write(&batch).map_err(|e| err(&e))?;
    }
    w.into_inner().map_err(|e| err(&e))
}

/// One JSONL line; field order is the Parquet column order.
#[derive(Serialize)]
struct Line<'a> {
    ts: &'a str,
    request_id: &'a str,
    shadow: &'a str,
    enforced: &'a str,
    kind: &'a str,
    cause: &'a str,
    bucket: u16,
    source: &'a str,
}

fn to_jsonl(rows: &[(i64, ExampleOut)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * 160);
    for (_, r) in rows {
        let line = Line {
            ts: &r.ts,
            request_id: &r.request_id,
            shadow: r.shadow.as_str(),
            enforced: r.enforced.as_str(),
            kind: r.kind,
            cause: &r.cause,
            bucket: r.bucket,
            source: &r.source,
        };
        // Serialising plain strings and integers into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, &line);
        out.push(b'\n');
    }
    out
}

/// The file's bytes in `format`.
pub fn serialize(
    path: &Path,
    format: DetailsFormat,
    rows: &[(i64, ExampleOut)],
) -> Result<Vec<u8>, ProofError> {
    match format {
        DetailsFormat::Parquet => to_parquet(path, rows),
        DetailsFormat::Jsonl => Ok(to_jsonl(rows)),
    }
}

/// Writes the drifting records to `path` atomically; returns the number of rows.
pub fn write(path: &Path, rows: &[(i64, ExampleOut)]) -> Result<usize, ProofError> {
    let format = DetailsFormat::from_path(path)?;
    let bytes = serialize(path, format, rows)?;
    write_atomic(path, &bytes)?;
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::Verdict;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{TimestampMillisecondType, UInt16Type};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn row(ms: i64, id: &str, bucket: u16) -> (i64, ExampleOut) {
        (
            ms,
            ExampleOut {
                ts: crate::policy::time::format_rfc3339_ms(ms),
                request_id: id.into(),
                shadow: Verdict::Ok,
                enforced: Verdict::Fail,
                kind: "ok->fail",
                cause: "audit_score".into(),
                bucket,
                source: "logs/a \"b\".jsonl:7".into(),
            },
        )
    }

    #[test]
    fn format_from_extension() {
        assert_eq!(
            DetailsFormat::from_path(Path::new("x/d.parquet")).unwrap(),
            DetailsFormat::Parquet
        );
        assert_eq!(
            DetailsFormat::from_path(Path::new("d.JSONL")).unwrap(),
            DetailsFormat::Jsonl
        );
        let e = DetailsFormat::from_path(Path::new("d.csv")).unwrap_err();
        assert!(e.to_string().contains("--drift-details d.csv"), "{e}");
        assert!(DetailsFormat::from_path(Path::new("parquet")).is_err());
    }

    #[test]
    fn jsonl_rows_are_exact() {
        let rows = [row(1_762_329_219_880, "req-1", 8618), row(0, "x\"y", 0)];
        let text = String::from_utf8(to_jsonl(&rows)).unwrap();
        assert_eq!(
            text,
            "{\"ts\":\"2025-11-05T07:53:39.880Z\",\"request_id\":\"req-1\",\"shadow\":\"ok\",\
             \"enforced\":\"fail\",\"kind\":\"ok->fail\",\"cause\":\"audit_score\",\"bucket\":8618,\
             \"source\":\"logs/a \\\"b\\\".jsonl:7\"}\n\
             {\"ts\":\"1970-01-01T00:00:00Z\",\"request_id\":\"x\\\"y\",\"shadow\":\"ok\",\
             \"enforced\":\"fail\",\"kind\":\"ok->fail\",\"cause\":\"audit_score\",\"bucket\":0,\
             \"source\":\"logs/a \\\"b\\\".jsonl:7\"}\n"
        );
        assert!(to_jsonl(&[]).is_empty());
    }

    #[test]
    fn parquet_round_trips_through_the_arrow_reader() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("d.parquet");
        let rows = [
            row(1_762_329_219_880, "req-1", 8618),
            row(-5, "req-2", 9999),
        ];
        assert_eq!(write(&p, &rows).unwrap(), 2);
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&p).unwrap())
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        assert_eq!(batches.len(), 1);
        let b = &batches[0];
        assert_eq!(b.schema(), schema());
        assert_eq!(b.num_rows(), 2);
        let ts = b.column(0).as_primitive::<TimestampMillisecondType>();
        assert_eq!((ts.value(0), ts.value(1)), (1_762_329_219_880, -5));
        assert_eq!(b.column(1).as_string::<i32>().value(1), "req-2");
        assert_eq!(b.column(4).as_string::<i32>().value(0), "ok->fail");
        let bucket = b.column(6).as_primitive::<UInt16Type>();
        assert_eq!((bucket.value(0), bucket.value(1)), (8618, 9999));
        assert_eq!(b.column(7).null_count(), 0);

        // No drift still gives a readable file with the schema and no rows.
        let empty = d.path().join("e.parquet");
        write(&empty, &[]).unwrap();
        let r =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&empty).unwrap()).unwrap();
        assert_eq!(r.metadata().file_metadata().num_rows(), 0);
        assert_eq!(r.schema().fields().len(), 8);
    }
}
