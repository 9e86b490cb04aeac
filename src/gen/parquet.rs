//! Parquet output of `proof gen` (and of tests that need Parquet input): records as
//! `ts` timestamp[ms, UTC], `request_id`, `policy_id` and `context`, a struct column
//! or a JSON string, and `verdict` (SPEC §11) when the first rows carry one. The reader side lives in `replay::parquet`.

use std::fs::File;
use std::path::Path;

use arrow::datatypes::{DataType, TimeUnit};
use arrow::record_batch::RecordBatch;
use serde_json::Value;

use crate::error::ProofError;
use crate::replay::record::Record;
use crate::replay::source::parquet_error;

/// How `write_records` stores the `context` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ContextLayout {
    /// A struct column whose schema is inferred from the first rows' contexts
    /// (objects become structs, arrays lists): the natural Parquet layout, read
    /// without a JSON parse per row.
    Struct,
    /// The context as a JSON string per row.
    Json,
}

/// Rows per written record batch (and so per inferred schema sample).
const WRITE_BATCH: usize = 65_536;

/// Writes records as Parquet (`ts` timestamp[ms, UTC], `request_id`, `policy_id`,
/// `context` in the given layout); used by `proof gen` and the tests. With
/// [`ContextLayout::Struct`] the context schema is inferred from the first batch by
/// arrow's JSON reader; a later context with a key or type the schema lacks is an
/// error rather than a silently dropped field.
pub fn write_records(
    path: &Path,
    records: impl IntoIterator<Item = Record>,
    compression: parquet::basic::Compression,
    layout: ContextLayout,
) -> Result<(), ProofError> {
    use arrow::array::{StringBuilder, StructArray, TimestampMillisecondBuilder};
    use arrow::datatypes::{Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;
    use std::sync::Arc;

    let fail = |e: &dyn std::fmt::Display| parquet_error(path, e);
    let open_writer = |contexts: &[Value],
                       with_verdict: bool|
     -> Result<(Arc<Schema>, ArrowWriter<File>), ProofError> {
        let ctx_type = match layout {
            ContextLayout::Json => DataType::Utf8,
            ContextLayout::Struct => {
                let inferred = arrow::json::reader::infer_json_schema_from_iterator(
                    contexts.iter().map(|c| Ok(c.clone())),
                )
                .map_err(|e| fail(&e))?;
                if inferred.fields().is_empty() {
                    // No context has a key: a struct needs at least one field.
                    DataType::Utf8
                } else {
                    DataType::Struct(inferred.fields().clone())
                }
            }
        };
        let mut fields = vec![
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                false,
            ),
            Field::new("request_id", DataType::Utf8, false),
            Field::new("policy_id", DataType::Utf8, true),
            Field::new("context", ctx_type, false),
        ];
        if with_verdict {
            fields.push(Field::new("verdict", DataType::Utf8, true));
        }
        let schema = Arc::new(Schema::new(fields));
        let file = File::create(path).map_err(|e| ProofError::io(path, e))?;
        let props = WriterProperties::builder()
            .set_compression(compression)
            .build();
        let w = ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|e| fail(&e))?;
        Ok((schema, w))
    };
    let mut it = records.into_iter().peekable();
    let mut writer: Option<(Arc<Schema>, ArrowWriter<File>)> = None;
    let mut first = true;
    while first || it.peek().is_some() {
        first = false;
        let mut ts = TimestampMillisecondBuilder::new().with_timezone("UTC");
        let mut rid = StringBuilder::new();
        let mut pid = StringBuilder::new();
        let mut verdict = StringBuilder::new();
        let mut contexts: Vec<Value> = Vec::new();
        let mut any_verdict = false;
        for r in it.by_ref().take(WRITE_BATCH) {
            ts.append_value(r.ts_ms);
            rid.append_value(&r.request_id);
            pid.append_option(r.policy_id.as_deref());
            verdict.append_option(r.verdict.map(|v| v.as_str()));
            any_verdict |= r.verdict.is_some();
            contexts.push(Value::Object(r.context));
        }
        let (schema, w) = match writer {
            Some(ref mut open) => open,
            None => writer.insert(open_writer(&contexts, any_verdict)?),
        };
        let with_verdict = schema.fields().len() == 5;
        if any_verdict && !with_verdict {
            return Err(fail(
                &"a record carries a verdict but none of the first rows did: the file has \
                  no verdict column",
            ));
        }
        let ctx: arrow::array::ArrayRef = match schema.field(3).data_type() {
            DataType::Struct(fields) => {
                let mut decoder =
                    arrow::json::ReaderBuilder::new(Arc::new(Schema::new(fields.clone())))
                        .with_strict_mode(true)
                        .build_decoder()
                        .map_err(|e| fail(&e))?;
                decoder.serialize(&contexts).map_err(|e| {
                    fail(&format!(
                        "a context does not fit the struct schema inferred from the first \
                         {WRITE_BATCH} rows ({e}); write the JSON layout instead"
                    ))
                })?;
                let batch = decoder.flush().map_err(|e| fail(&e))?.unwrap_or_else(|| {
                    RecordBatch::new_empty(Arc::new(Schema::new(fields.clone())))
                });
                Arc::new(StructArray::from(batch))
            }
            _ => {
                let mut b = StringBuilder::new();
                for c in &contexts {
                    b.append_value(c.to_string());
                }
                Arc::new(b.finish())
            }
        };
        let mut columns: Vec<arrow::array::ArrayRef> = vec![
            Arc::new(ts.finish()),
            Arc::new(rid.finish()),
            Arc::new(pid.finish()),
            ctx,
        ];
        if with_verdict {
            columns.push(Arc::new(verdict.finish()));
        }
        let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| fail(&e))?;
        w.write(&batch).map_err(|e| fail(&e))?;
    }
    if let Some((_, w)) = writer {
        w.close().map_err(|e| fail(&e))?;
    }
    Ok(())
}
