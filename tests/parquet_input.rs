//! Inputs: Parquet ts of every kind, context as a struct, nulls rejecting a row, a
//! missing column as a schema error before any work, standard input (plain, gzip,
//! zstd) and which files a directory contributes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Int64Array, ListArray, StringArray, StructArray,
    TimestampMicrosecondArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Fields, Schema};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/replay")
}

fn write(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch =
        RecordBatch::try_new(schema.clone(), columns.into_iter().map(|c| c.1).collect()).unwrap();
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn replay(args: &[&str], stdin: Option<&[u8]>) -> (i32, Value, String) {
    let out = tempfile::tempdir().unwrap();
    let mut a = vec!["replay"];
    a.extend_from_slice(args);
    a.extend_from_slice(&[
        "--ir",
        "mini.v1.ir.json",
        "--candidate-ir",
        "mini.v2.ir.json",
        "--max-rejects",
        "9",
    ]);
    a.extend_from_slice(&["--out", out.path().to_str().unwrap()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_proof"))
        .args(&a)
        .current_dir(fixtures())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        pipe.write_all(bytes).unwrap();
    }
    drop(pipe);
    let o = child.wait_with_output().unwrap();
    let report = std::fs::read(out.path().join("report.json"))
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or(Value::Null);
    (
        o.status.code().unwrap_or(-1),
        report,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn struct_context_microsecond_timestamps_and_null_rows() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.parquet");
    // 2026-11-05T08:04:59.999999Z (µs) → 08:04:59.999 → window 08:00.
    let t0 = 1_793_865_899_999_999_i64;
    let ts = TimestampMicrosecondArray::from(vec![Some(t0), Some(t0 + 1), None, Some(t0 + 2)])
        .with_timezone("UTC");
    let rid = StringArray::from(vec![Some("a2"), Some("x"), Some("y"), None]);
    let pid = StringArray::from(vec![
        None,
        Some("mini.v1"),
        Some("mini.v1"),
        Some("mini.v1"),
    ]);
    let amount = Int64Array::from(vec![Some(70), Some(10), Some(1), Some(1)]);
    let doc = BooleanArray::from(vec![Some(true), None, Some(true), Some(true)]);
    let country = StringArray::from(vec!["DE", "KP", "DE", "DE"]);
    let tags = ListArray::new(
        Arc::new(Field::new("item", DataType::Utf8, true)),
        OffsetBuffer::from_lengths([1, 0, 0, 0]),
        Arc::new(StringArray::from(vec!["t"])),
        None,
    );
    let ctx = StructArray::new(
        Fields::from(vec![
            Field::new("amount", DataType::Int64, true),
            Field::new("has_doc", DataType::Boolean, true),
            Field::new("country", DataType::Utf8, true),
            Field::new("tags", tags.data_type().clone(), true),
        ]),
        vec![
            Arc::new(amount),
            Arc::new(doc),
            Arc::new(country),
            Arc::new(tags),
        ],
        None,
    );
    write(
        &p,
        vec![
            ("ts", Arc::new(ts)),
            ("request_id", Arc::new(rid)),
            ("policy_id", Arc::new(pid)),
            ("context", Arc::new(ctx)),
        ],
    );
    let (code, r, err) = replay(&[p.to_str().unwrap()], None);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        r["records"],
        json!({"read": 4, "evaluated": 2, "rejected": 2, "skipped": 0,
               "rejected_by_reason": {"missing_ts": 1, "missing_request_id": 1},
               "skipped_by_reason": {}, "bucket_key_missing": 0})
    );
    // a2: amount 70 → ok on v1, fail on v2 (amount_ok): the same drift as the JSONL fixture.
    assert_eq!(
        r["drift"]["by_cause"],
        json!([{"cause": "amount_ok", "events": 1}])
    );
    assert_eq!(r["windows"][0]["start"], "2026-11-05T08:00:00Z");
    assert_eq!(
        r["rejections"][0],
        json!({"file": p.to_str().unwrap(), "line": 3, "reason": "missing_ts"})
    );
}

#[test]
fn missing_column_is_a_schema_error_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.parquet");
    write(
        &p,
        vec![
            ("ts", Arc::new(Int64Array::from(vec![1_793_865_600_000]))),
            ("context", Arc::new(StringArray::from(vec!["{}"]))),
        ],
    );
    let (code, r, err) = replay(&[p.to_str().unwrap()], None);
    assert_eq!(code, 2);
    assert_eq!(r, Value::Null, "no outputs on a schema error");
    assert!(
        err.contains("bad.parquet") && err.contains("missing required column 'request_id'"),
        "{err}"
    );
}

#[test]
fn jsonl_from_standard_input() {
    let bytes = std::fs::read(fixtures().join("small.jsonl")).unwrap();
    let (code, r, err) = replay(&["-", "--format", "jsonl"], Some(&bytes));
    assert_eq!(code, 1, "{err}");
    assert_eq!(r["records"]["read"], 13);
    assert_eq!(r["drift"]["events"], 3);
    assert_eq!(r["inputs"]["files"][0]["path"], "-");
}

#[test]
fn string_and_int64_timestamps() {
    // The same two records twice: `ts` as RFC 3339 strings, then as int64 epoch ms.
    // a1 at 08:04:59.999 (window 08:00), a2 at 08:05:00.000 (window 08:05); a bad string
    // is `bad_ts`, like in JSONL.
    let dir = tempfile::tempdir().unwrap();
    let ctx = || {
        Arc::new(StringArray::from(vec![
            r#"{"amount": 10, "country": "DE"}"#,
            r#"{"amount": 70, "country": "DE", "has_doc": true}"#,
            r#"{"amount": 10, "country": "DE"}"#,
        ])) as ArrayRef
    };
    let rid = || Arc::new(StringArray::from(vec!["a1", "a2", "a3"])) as ArrayRef;
    let as_string = dir.path().join("s.parquet");
    write(
        &as_string,
        vec![
            (
                "ts",
                Arc::new(StringArray::from(vec![
                    "2026-11-05T08:04:59.999Z",
                    "2026-11-05T08:05:00Z",
                    "yesterday",
                ])),
            ),
            ("request_id", rid()),
            ("context", ctx()),
        ],
    );
    let as_int = dir.path().join("i.parquet");
    write(
        &as_int,
        vec![
            (
                "ts",
                Arc::new(Int64Array::from(vec![
                    1_793_865_899_999,
                    1_793_865_900_000,
                    i64::MAX,
                ])),
            ),
            ("request_id", rid()),
            ("context", ctx()),
        ],
    );
    for p in [&as_string, &as_int] {
        let (code, r, err) = replay(&[p.to_str().unwrap()], None);
        assert_eq!(code, 1, "{err}");
        assert_eq!(
            r["records"],
            json!({"read": 3, "evaluated": 2, "rejected": 1, "skipped": 0,
                   "rejected_by_reason": {"bad_ts": 1},
                   "skipped_by_reason": {}, "bucket_key_missing": 0}),
            "{}",
            p.display()
        );
        let starts: Vec<&str> = r["windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["start"].as_str().unwrap())
            .collect();
        assert_eq!(starts, ["2026-11-05T08:00:00Z", "2026-11-05T08:05:00Z"]);
        assert_eq!(r["drift"]["events"], 1, "a2 drifts (amount_ok)");
    }
}

#[test]
fn compressed_standard_input_is_recognised_by_its_magic_number() {
    let bytes = std::fs::read(fixtures().join("small.jsonl")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&bytes).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&bytes[..], 3).unwrap();
    for (name, input) in [("gzip", gz), ("zstd", zst)] {
        let (code, r, err) = replay(&["-"], Some(&input));
        assert_eq!(code, 1, "{name}: {err}");
        assert_eq!(r["records"]["read"], 13, "{name}");
        assert_eq!(r["records"]["rejected"], 5, "{name}");
        assert_eq!(r["drift"]["events"], 3, "{name}");
    }
}

#[test]
fn directories_leave_policies_and_other_json_documents_out() {
    // fixtures/replay holds small.jsonl beside two *.ir.json policies: only the log
    // is read (the policies would otherwise be counted as malformed records).
    let (code, r, err) = replay(&["."], None);
    assert_eq!(code, 1, "{err}");
    assert_eq!(r["records"]["read"], 13);
    assert_eq!(r["inputs"]["files"].as_array().unwrap().len(), 1);
    assert!(
        r["inputs"]["files"][0]["path"]
            .as_str()
            .unwrap()
            .ends_with("small.jsonl")
    );
}

#[test]
fn a_record_column_given_twice_is_a_schema_error() {
    // Two `ts` columns disagree on the time: which one production logged is unknowable,
    // so the file is refused (it used to read the first silently).
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("two_ts.parquet");
    write(
        &p,
        vec![
            ("ts", Arc::new(Int64Array::from(vec![1_793_865_600_000]))),
            ("request_id", Arc::new(StringArray::from(vec!["a1"]))),
            ("context", Arc::new(StringArray::from(vec!["{}"]))),
            ("ts", Arc::new(Int64Array::from(vec![1_793_952_000_000]))),
        ],
    );
    let (code, r, err) = replay(&[p.to_str().unwrap()], None);
    assert_eq!(code, 2, "{err}");
    assert_eq!(r, Value::Null, "no outputs on a schema error");
    assert!(
        err.contains("two_ts.parquet: schema error: column 'ts' appears 2 times (columns 1 and 4)"),
        "{err}"
    );
}

/// A one-row file whose struct context is `{"k": …}` around `levels` times
/// `{"a": [ … ]}` around `{"x": [1, 2]}`: structs and lists 2 × `levels` + 3 deep.
/// (Built from arrays: arrow's JSON reader stops at 128 levels.)
fn write_nested(path: &Path, levels: usize) {
    let list = |item: ArrayRef| -> ArrayRef {
        let field = Arc::new(Field::new("item", item.data_type().clone(), true));
        let offsets = OffsetBuffer::from_lengths([item.len()]);
        Arc::new(ListArray::new(field, offsets, item, None))
    };
    let object = |name: &str, a: ArrayRef| -> ArrayRef {
        let field = Arc::new(Field::new(name, a.data_type().clone(), true));
        Arc::new(StructArray::from(vec![(field, a)]))
    };
    let mut v = object("x", list(Arc::new(Int64Array::from(vec![1, 2]))));
    for _ in 0..levels {
        v = object("a", list(v));
    }
    write(
        path,
        vec![
            ("ts", Arc::new(Int64Array::from(vec![1_793_865_600_000]))),
            ("request_id", Arc::new(StringArray::from(vec!["r-1"]))),
            ("context", object("k", v)),
        ],
    );
}

/// A struct context may nest structs and lists 128 levels deep, as a JSON one may; a
/// deeper one is a schema error naming the file, the column and both depths, before
/// anything is decoded. (At 150 levels the Parquet decoder used to overflow the reader
/// thread's stack and abort the process.)
#[test]
fn a_context_nested_past_128_levels_is_a_schema_error_not_a_crash() {
    // Building the deep test files recurses in arrow's JSON reader and Parquet writer.
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(|| {
            let dir = tempfile::tempdir().unwrap();
            let ok = dir.path().join("deep62.parquet");
            write_nested(&ok, 62); // 127 levels
            let (code, r, err) = replay(&[ok.to_str().unwrap()], None);
            assert_eq!(code, 0, "{err}");
            assert_eq!(r["records"]["evaluated"], 1, "{err}");
            for (levels, depth) in [(63, 129), (400, 803)] {
                let p = dir.path().join(format!("deep{levels}.parquet"));
                write_nested(&p, levels);
                let (code, r, err) = replay(&[p.to_str().unwrap()], None);
                assert_eq!(code, 2, "{err}");
                assert_eq!(r, Value::Null, "no outputs on a schema error");
                let want = format!(
                    "deep{levels}.parquet: schema error: column 'context' nests structs and \
                     lists {depth} levels deep; proof reads at most 128"
                );
                assert!(err.contains(&want), "{err}");
            }
        })
        .unwrap()
        .join()
        .unwrap();
}
