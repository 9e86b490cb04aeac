//! `proof replay --partial-out` and `proof merge` (SPEC §10) on the conformance
//! traffic: parts merged in any order give the single run's fixed report fields, and
//! parts that cannot be compared are refused with exit 2 naming the file and field.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{conformance, text};
use serde_json::Value;

const POLICIES: &[&str] = common::CONF_POLICIES;

fn proof(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_proof"))
        .args(args)
        .current_dir(conformance())
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("PROOF_REDACT_KEY")
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Splits traffic.jsonl's lines round-robin into `k` files in `dir`.
fn split(dir: &Path, k: usize) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(conformance().join("traffic.jsonl")).unwrap();
    let mut parts = vec![String::new(); k];
    for (i, line) in text.lines().enumerate() {
        parts[i % k].push_str(line);
        parts[i % k].push('\n');
    }
    parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let f = dir.join(format!("part{i}.jsonl"));
            std::fs::write(&f, p).unwrap();
            f
        })
        .collect()
}

fn partial(log: &Path, out: &Path, extra: &[&str]) {
    let mut a = vec!["replay", s(log)];
    a.extend_from_slice(POLICIES);
    a.extend_from_slice(extra);
    a.extend_from_slice(&["--partial-out", s(out)]);
    let o = proof(&a);
    // A shard prints no report and leaves the gate to merge.
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(o.stdout.is_empty(), "{}", text(&o));
}

fn report(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
}

const FIXED: [&str; 7] = [
    "records", "verdicts", "drift", "levels", "windows", "gate", "plan",
];

/// CASE_V2_PLAN_CONF60 after the policies: window, limit, confidence, rejects, plan.
const GATE: &[&str] = common::CASE_V2_PLAN_CONF60.split_at(8).1;

#[test]
fn parts_merged_in_any_order_equal_the_single_run() {
    let d = tempfile::tempdir().unwrap();
    let one = d.path().join("one");
    let mut a = vec!["replay", "traffic.jsonl"];
    a.extend_from_slice(POLICIES);
    a.extend_from_slice(GATE);
    a.extend_from_slice(&["--out", s(&one)]);
    let o = proof(&a);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let single = report(&one);

    let logs = split(d.path(), 3);
    let parts: Vec<PathBuf> = logs
        .iter()
        .enumerate()
        .map(|(i, log)| {
            let p = d.path().join(format!("p{i}.partial"));
            partial(log, &p, &["--window", "1m"]);
            p
        })
        .collect();
    let gate_flags = &GATE[2..]; // the window comes from the parts
    for (name, order) in [
        ("m012", [0, 1, 2]),
        ("m201", [2, 0, 1]),
        ("m120", [1, 2, 0]),
    ] {
        let out = d.path().join(name);
        let mut a = vec!["merge"];
        for i in order {
            a.push(s(&parts[i]));
        }
        a.extend_from_slice(gate_flags);
        a.extend_from_slice(&["--out", s(&out)]);
        let o = proof(&a);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let merged = report(&out);
        for key in FIXED {
            assert_eq!(merged[key], single[key], "{name}: {key}");
        }
        // Record accounting is kept per input: three parts, 40 + 3 + 1 read in all.
        let files = merged["inputs"]["files"].as_array().unwrap();
        assert_eq!(files.len(), 3);
        let read: u64 = files.iter().map(|f| f["read"].as_u64().unwrap()).sum();
        assert_eq!(read, single["records"]["read"].as_u64().unwrap());
        for f in [
            "windows.csv",
            "metrics.om",
            "report.md",
            "junit.xml",
            "report.html",
        ] {
            assert!(out.join(f).is_file(), "{name}: {f}");
        }
    }
    // The same windows.csv byte for byte, whatever the order.
    assert_eq!(
        std::fs::read(d.path().join("m012/windows.csv")).unwrap(),
        std::fs::read(d.path().join("m201/windows.csv")).unwrap()
    );
    assert_eq!(
        std::fs::read(d.path().join("m012/windows.csv")).unwrap(),
        std::fs::read(one.join("windows.csv")).unwrap()
    );

    // A directory of parts, and a part on standard input, merge the same way; so does
    // a merge of merges (--partial-out on merge).
    let pdir = d.path().join("parts");
    std::fs::create_dir(&pdir).unwrap();
    for p in &parts {
        std::fs::copy(p, pdir.join(p.file_name().unwrap())).unwrap();
    }
    let o = proof(&[&["merge", s(&pdir)], gate_flags].concat());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let from_dir: Value = serde_json::from_slice(&o.stdout).unwrap();
    let two = d.path().join("two.partial");
    let o = proof(&[
        "merge",
        s(&parts[0]),
        s(&parts[1]),
        "--partial-out",
        s(&two),
    ]);
    // Without gate flags the defaults judge (SPEC §6): parts 0 and 1 hold 29 records,
    // 2 of them rejected (one malformed, one bad_ts) against --max-rejects 0: exit 3,
    // and the merged partial is written all the same.
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let two_report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(two_report["records"]["read"], 29);
    assert_eq!(two_report["records"]["rejected"], 2);
    assert!(two.is_file());
    let mut child = Command::new(env!("CARGO_BIN_EXE_proof"))
        .args([&["merge", "-", s(&parts[2])], gate_flags].concat())
        .current_dir(conformance())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&std::fs::read(&two).unwrap()).unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let staged: Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in FIXED {
        assert_eq!(from_dir[key], single[key], "directory: {key}");
        assert_eq!(staged[key], single[key], "staged: {key}");
    }
}

#[test]
fn incompatible_truncated_and_foreign_parts_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let logs = split(d.path(), 2);
    let (a, b, c) = (
        d.path().join("a.partial"),
        d.path().join("b.partial"),
        d.path().join("c.partial"),
    );
    partial(&logs[0], &a, &[]);
    partial(&logs[1], &b, &["--window", "10m"]);
    partial(&logs[1], &c, &["--salt", "other"]);
    let out = d.path().join("out");
    let o = proof(&["merge", s(&a), s(&b), "--out", s(&out)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("window_ms") && err.contains("600000") && err.contains("300000"),
        "{err}"
    );
    assert!(
        err.contains("a.partial") && err.contains("b.partial"),
        "{err}"
    );
    assert!(!out.exists(), "nothing is written on error");
    let o = proof(&["merge", s(&a), s(&c)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("salt (other vs demo.v1)"));

    // Truncated: every cut is refused, naming the file.
    let bytes = std::fs::read(&a).unwrap();
    let t = d.path().join("t.partial");
    for cut in [1, 14, 30, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&t, &bytes[..cut]).unwrap();
        let o = proof(&["merge", s(&t)]);
        assert_eq!(o.status.code(), Some(2), "cut {cut}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("t.partial"), "cut {cut}: {err}");
        assert!(
            err.contains("truncated") || err.contains("not a proof partial"),
            "cut {cut}: {err}"
        );
    }
    // One flipped byte in the body fails the checksum.
    let mut flipped = bytes.clone();
    let at = bytes.len() - 40;
    flipped[at] ^= 0x55;
    std::fs::write(&t, &flipped).unwrap();
    let o = proof(&["merge", s(&t)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("SHA-256"));
    // Not a partial at all.
    let o = proof(&["merge", "traffic.jsonl"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("traffic.jsonl") && err.contains("not a proof partial"),
        "{err}"
    );
}

/// Unfaithful records (SPEC §11) keep their own input when parts are merged in another
/// order than their files sort in, and `--redact-ids` hashes their request ids in the
/// part itself, as it does for drift examples, so the merged report shows no raw id
/// (the part is compressed; the report is where a leaked id shows). Both were missed:
/// every example cited the first file, with its raw id.
#[test]
fn unfaithful_examples_keep_their_file_and_their_redaction_across_a_merge() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_proof"))
            .args(args)
            .current_dir(root)
            .env_remove("PROOF_REDACT_KEY")
            .env_remove("GITHUB_STEP_SUMMARY")
            .output()
            .unwrap()
    };
    let lists = common::LKSG_LISTS;
    let d = tempfile::tempdir().unwrap();
    for (name, seed) in [("a", "3"), ("b", "4")] {
        let log = d.path().join(format!("{name}.jsonl"));
        let part = d.path().join(format!("{name}.part"));
        // 100 records, exactly 5 written with another verdict than lksg.v1 answers
        // (lines 20, 40, …, 100).
        let mut g = vec!["gen", "--records", "100", "--seed", seed];
        g.extend_from_slice(&["--verdicts", "fixtures/policies/lksg.v1.ir.json"]);
        g.extend_from_slice(&lists);
        g.extend_from_slice(&["--flip-ratio", "0.05", "-o", s(&log)]);
        let o = run(&g);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let mut r = vec!["replay", s(&log), "--policy", "lksg.v1"];
        r.extend_from_slice(&["--candidate-policy", "lksg.v2"]);
        r.extend_from_slice(&lists);
        r.extend_from_slice(&["--redact-ids", "--partial-out", s(&part), "-q"]);
        let o = run(&r);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let out = d.path().join("merged");
    // b's part first: its file sorts second, so the merge renumbers both parts' inputs.
    let o = run(&[
        "merge",
        s(&d.path().join("b.part")),
        s(&d.path().join("a.part")),
        "--out",
        s(&out),
        "-q",
    ]);
    assert!(out.join("report.json").exists(), "{}", text(&o));
    let r = report(&out);
    assert_eq!(r["fidelity"]["unfaithful"], 10, "{}", r["fidelity"]);
    let examples = r["unfaithful_examples"].as_array().unwrap();
    let mut sources: Vec<String> = examples
        .iter()
        .map(|e| {
            let src = e["source"].as_str().unwrap();
            let file = Path::new(src).file_name().unwrap().to_str().unwrap();
            assert!(
                e["request_id"].as_str().unwrap().starts_with("hmac:"),
                "{e}"
            );
            file.to_string()
        })
        .collect();
    sources.sort();
    let want: Vec<String> = ["a", "b"]
        .iter()
        .flat_map(|f| (1..=5).map(move |k| format!("{f}.jsonl:{}", 20 * k)))
        .collect();
    let mut want = want;
    want.sort();
    assert_eq!(sources, want);
}
