//! Properties of the replay on the bundled day of traffic (60 000 records): the same
//! report for any thread count, for a split input, and for every input format; drift
//! never decreases as the rollout level rises.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn proof(args: &[&str]) -> i32 {
    let out = Command::new(env!("CARGO_BIN_EXE_proof"))
        .args(args)
        .current_dir(root())
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .expect("run proof");
    assert!(out.status.code().is_some(), "killed by a signal");
    out.status.code().unwrap()
}

const LISTS: [&str; 6] = common::LKSG_LISTS;

/// Replays `logs` (lksg.v1 → lksg.v2, gate 25 %) and returns report.json without the
/// parts that may differ: `latency` always, `inputs.files` when asked.
fn report(logs: &[&str], extra: &[&str], drop_files: bool) -> Value {
    let out = tempfile::tempdir().unwrap();
    let mut a = vec!["replay"];
    a.extend_from_slice(logs);
    a.extend_from_slice(&[
        "--policy",
        "lksg.v1",
        "--candidate-policy",
        "lksg.v2",
        "--rollout",
        "25",
        "-q",
    ]);
    a.extend_from_slice(&LISTS);
    a.extend_from_slice(extra);
    a.extend_from_slice(&["--out", out.path().to_str().unwrap()]);
    let code = proof(&a);
    assert!(code == 0 || code == 1, "exit {code}");
    let mut v: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("latency");
    if drop_files {
        v["inputs"].as_object_mut().unwrap().remove("files");
        for e in v["examples"].as_array_mut().unwrap() {
            e.as_object_mut().unwrap().remove("source");
        }
        v["rejections"] = Value::Null;
    }
    v
}

const DAY: &str = "fixtures/logs/lksg_day.jsonl.zst";

#[test]
fn same_report_for_one_and_many_threads() {
    let one = report(&[DAY], &["--threads", "1"], false);
    let two = report(&[DAY], &["--threads", "2"], false);
    let five = report(&[DAY], &["--threads", "5"], false);
    assert_eq!(one["records"]["read"], 60_000);
    assert_eq!(one, two);
    assert_eq!(one, five);
    // Byte-identical, not just equal as JSON: serialise both the same way.
    assert_eq!(
        serde_json::to_string(&one).unwrap(),
        serde_json::to_string(&five).unwrap()
    );
}

fn decompress_day(dir: &Path) -> Vec<String> {
    let bytes = std::fs::read(root().join(DAY)).unwrap();
    let text = zstd::decode_all(bytes.as_slice()).unwrap();
    let text = String::from_utf8(text).unwrap();
    let lines: Vec<String> = text.lines().map(String::from).collect();
    std::fs::write(dir.join("day.jsonl"), text).unwrap();
    lines
}

#[test]
fn split_input_equals_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let lines = decompress_day(dir.path());
    // Split unevenly and out of time order: the second file first.
    let (a, b) = lines.split_at(lines.len() / 3);
    std::fs::write(dir.path().join("a.jsonl"), a.join("\n") + "\n").unwrap();
    std::fs::write(dir.path().join("b.jsonl"), b.join("\n") + "\n").unwrap();
    let whole = report(&[dir.path().join("day.jsonl").to_str().unwrap()], &[], true);
    let parts = report(
        &[
            dir.path().join("b.jsonl").to_str().unwrap(),
            dir.path().join("a.jsonl").to_str().unwrap(),
        ],
        &[],
        true,
    );
    assert_eq!(whole, parts);
}

#[test]
fn formats_give_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    decompress_day(dir.path());
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    for f in ["day.jsonl.gz", "day.parquet"] {
        assert_eq!(
            proof(&["gen", "--records", "60000", "--seed", "42", "-o", &d(f)]),
            0
        );
    }
    // The same records with the context as a JSON string per row instead of a struct.
    assert_eq!(
        proof(&[
            "gen",
            "--records",
            "60000",
            "--seed",
            "42",
            "--parquet-context",
            "json",
            "-o",
            &d("day-json.parquet"),
        ]),
        0
    );
    let plain = report(&[&d("day.jsonl")], &[], true);
    assert_eq!(plain, report(&[DAY], &[], true), "zstd");
    assert_eq!(plain, report(&[&d("day.jsonl.gz")], &[], true), "gzip");
    assert_eq!(
        plain,
        report(&[&d("day.parquet")], &[], true),
        "parquet, struct context"
    );
    assert_eq!(
        plain,
        report(&[&d("day-json.parquet")], &[], true),
        "parquet, JSON-string context"
    );
}

#[test]
fn drift_never_decreases_as_rollout_rises() {
    let levels: Vec<String> = (0..=100).map(|l| l.to_string()).collect();
    let r = report(&[DAY], &["--levels", &levels.join(",")], false);
    let ev: Vec<u64> = r["levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["drift_events"].as_u64().unwrap())
        .collect();
    assert_eq!(ev.len(), 101);
    assert!(ev.windows(2).all(|w| w[0] <= w[1]), "{ev:?}");
    assert_eq!(ev[0], 0);
    assert_eq!(ev[100], r["drift"]["events"].as_u64().unwrap());
    for w in r["windows"].as_array().unwrap() {
        let e: Vec<u64> = w["drift"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["events"].as_u64().unwrap())
            .collect();
        assert!(e.windows(2).all(|p| p[0] <= p[1]));
    }
    // max_safe_rollout_percent is the last level with no breached window.
    let safe = r["gate"]["max_safe_rollout_percent"].as_u64().unwrap() as usize;
    let breached: Vec<u64> = r["levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["breached_windows"].as_u64().unwrap())
        .collect();
    assert_eq!(breached[safe], 0);
    if safe < 100 {
        assert!(breached[safe + 1] > 0);
    }
    let total: u64 = r["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(total, r["records"]["evaluated"].as_u64().unwrap());
    let rec = &r["records"];
    assert_eq!(
        rec["read"].as_u64().unwrap(),
        rec["evaluated"].as_u64().unwrap()
            + rec["rejected"].as_u64().unwrap()
            + rec["skipped"].as_u64().unwrap()
    );
}
