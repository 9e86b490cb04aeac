//! `proof replay --drift-details FILE`: every drifting record, JSONL or Parquet,
//! in (ts, origin) order whatever the thread count, with ids redacted on request.

mod common;

use common::{conformance, text};

use std::path::Path;
use std::process::{Command, Output};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType, UInt16Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

/// The conformance case with the gate at 50 % (exit 1), on `log`, plus `extra`.
fn replay(log: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_proof"))
        .current_dir(conformance())
        .arg("replay")
        .arg(log)
        .args([
            "--ir",
            "demo.v1.ir.json",
            "--candidate-ir",
            "demo.v2.ir.json",
            "--list",
            "sanctions=sanctions.csv",
            "--list",
            "high_risk=high_risk.txt",
            "--rollout",
            "50",
            "--max-rejects",
            "1000000",
            "--quiet",
        ])
        .args(extra)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

fn report(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap()
}

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn jsonl_lists_every_drifting_record_of_the_conformance_case() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let details = dir.path().join("drift.jsonl");
    let o = replay(
        Path::new("traffic.jsonl"),
        &out,
        &["--drift-details", details.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let rows = jsonl(&details);
    // Checked by hand against traffic.jsonl: four ok->fail records at 100 %.
    let want = [
        (
            "2026-11-05T08:06:39.737Z",
            "req-0017",
            "audit_score",
            8401,
            "traffic.jsonl:30",
        ),
        (
            "2026-11-05T08:12:38.293Z",
            "req-0006",
            "low_risk_country",
            5967,
            "traffic.jsonl:25",
        ),
        (
            "2026-11-05T08:13:39.880Z",
            "req-0012",
            "low_risk_country",
            8618,
            "traffic.jsonl:10",
        ),
        (
            "2026-11-05T08:19:13.894Z",
            "req-0013",
            "audit_score",
            2394,
            "traffic.jsonl:14",
        ),
    ];
    assert_eq!(rows.len(), want.len());
    for (row, (ts, id, cause, bucket, source)) in rows.iter().zip(want) {
        assert_eq!(row["ts"], ts);
        assert_eq!(row["request_id"], id);
        assert_eq!(row["shadow"], "ok");
        assert_eq!(row["enforced"], "fail");
        assert_eq!(row["kind"], "ok->fail");
        assert_eq!(row["cause"], cause);
        assert_eq!(row["bucket"], bucket);
        assert_eq!(row["source"], source);
    }
    let r = report(&out);
    assert_eq!(r["drift"]["events"], rows.len());
    // report.json's examples are the same records, in the same order.
    assert_eq!(r["examples"].as_array().unwrap().len(), rows.len());
    for (e, row) in r["examples"].as_array().unwrap().iter().zip(&rows) {
        assert_eq!(e["request_id"], row["request_id"]);
        assert_eq!(e["ts"], row["ts"]);
    }
}

#[test]
fn parquet_has_typed_columns_and_redacted_ids() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let details = dir.path().join("drift.parquet");
    let o = replay(
        Path::new("traffic.jsonl"),
        &out,
        &["--redact-ids", "--drift-details", details.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&out);
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&details).unwrap()).unwrap();
    let schema = reader.schema().clone();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "ts",
            "request_id",
            "shadow",
            "enforced",
            "kind",
            "cause",
            "bucket",
            "source"
        ]
    );
    assert_eq!(
        schema.field(0).data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    );
    let batches: Vec<_> = reader.build().unwrap().map(|b| b.unwrap()).collect();
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    assert_eq!(b.num_rows(), 4);
    let ts = b.column(0).as_primitive::<TimestampMillisecondType>();
    // 2026-11-05T08:06:39.737Z
    assert_eq!(ts.value(0), 1_793_865_999_737);
    let ids = b.column(1).as_string::<i32>();
    let buckets = b.column(6).as_primitive::<UInt16Type>();
    for (i, e) in r["examples"].as_array().unwrap().iter().enumerate() {
        let id = ids.value(i);
        assert!(id.starts_with("hmac:") && id.len() == 5 + 32, "{id}");
        assert_eq!(e["request_id"], id);
        assert_eq!(e["bucket"], buckets.value(i));
    }
    assert_eq!(b.column(7).null_count(), 0);
}

#[test]
fn order_and_bytes_do_not_depend_on_threads() {
    // 30 000 records (several chunks) built from the conformance records with new ids.
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(conformance().join("traffic.jsonl")).unwrap();
    let templates: Vec<Value> = src
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("request_id").is_some_and(|i| i.is_string()) && v.get("ts").is_some())
        .collect();
    assert!(templates.len() > 30);
    let mut big = String::new();
    for i in 0..30_000 {
        let mut v = templates[i % templates.len()].clone();
        v["request_id"] = Value::String(format!("gen-{i}"));
        big.push_str(&v.to_string());
        big.push('\n');
    }
    let log = dir.path().join("big.jsonl");
    std::fs::write(&log, big).unwrap();
    let mut outputs = Vec::new();
    for threads in ["1", "2", "3"] {
        let out = dir.path().join(format!("out{threads}"));
        let j = dir.path().join(format!("d{threads}.jsonl"));
        let p = dir.path().join(format!("d{threads}.parquet"));
        for details in [&j, &p] {
            let o = replay(
                &log,
                &out,
                &[
                    "--threads",
                    threads,
                    "--drift-details",
                    details.to_str().unwrap(),
                ],
            );
            assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
        }
        let r = report(&out);
        let rows = jsonl(&j);
        assert_eq!(r["drift"]["events"], rows.len());
        assert!(rows.len() > 1000, "{}", rows.len());
        outputs.push((
            std::fs::read(&j).unwrap(),
            std::fs::read(&p).unwrap(),
            r["examples"].clone(),
        ));
    }
    assert!(outputs.windows(2).all(|w| w[0] == w[1]));
    // Sorted by ts, then by line (one input file).
    let rows = jsonl(&dir.path().join("d1.jsonl"));
    let key = |v: &Value| {
        let (file, line) = v["source"].as_str().unwrap().rsplit_once(':').unwrap();
        assert!(file.ends_with("big.jsonl"));
        let ts = chrono::DateTime::parse_from_rfc3339(v["ts"].as_str().unwrap()).unwrap();
        (ts.timestamp_millis(), line.parse::<u64>().unwrap())
    };
    assert!(rows.windows(2).all(|w| key(&w[0]) < key(&w[1])));
}

#[test]
fn unknown_extension_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = replay(
        Path::new("traffic.jsonl"),
        &out,
        &["--drift-details", "drift.csv"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--drift-details drift.csv") && err.contains(".parquet or .jsonl"),
        "{err}"
    );
    assert!(!out.exists(), "nothing is written on a usage error");
}
