//! I/O hardening (issue 17): the 16 MiB limit with a byte-order mark and CRLF, logs
//! changed while they are read, a line of only a form feed, files named twice.
//!
//! The 16 MiB inputs are built in a temp dir by each test, never committed.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{conformance, text};

/// 16 MiB, the SPEC §4 record limit.
const LIMIT: usize = 16 * 1024 * 1024;

fn replay(logs: &[&Path], extra: &[&str]) -> Output {
    let c = conformance();
    Command::new(env!("CARGO_BIN_EXE_proof"))
        .arg("replay")
        .args(logs)
        .arg("--ir")
        .arg(c.join("demo.v1.ir.json"))
        .arg("--list")
        .arg(format!("sanctions={}", c.join("sanctions.csv").display()))
        .arg("--list")
        .arg(format!("high_risk={}", c.join("high_risk.txt").display()))
        .args(["--threads", "2", "-q"])
        .args(extra)
        .output()
        .unwrap()
}

/// Runs replay with report.json on stdout; returns it with the run's output.
fn report(logs: &[&Path]) -> (serde_json::Value, Output) {
    let o = replay(logs, &[]);
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    (v, o)
}

/// A valid record of exactly `len` bytes (padded in a context string).
fn record_of_len(len: usize, id: &str) -> Vec<u8> {
    let head = format!(
        r#"{{"ts":"2026-11-02T10:00:00Z","request_id":"{id}","context":{{"countries":["FR"],"pad":""#
    );
    let tail = r#""}}"#;
    let pad = len - head.len() - tail.len();
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(head.as_bytes());
    v.resize(head.len() + pad, b'x');
    v.extend_from_slice(tail.as_bytes());
    assert_eq!(v.len(), len);
    v
}

const SMALL: &str =
    r#"{"ts":"2026-11-02T10:00:01Z","request_id":"small","context":{"countries":["FR"]}}"#;

/// `prefix` + a record of `len` bytes + `eol`, then a small record, then a malformed
/// line (so the rejection list shows whether later line numbers shifted).
fn write_case(dir: &Path, name: &str, prefix: &[u8], len: usize, eol: &[u8]) -> PathBuf {
    let p = dir.join(name);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    f.write_all(prefix).unwrap();
    f.write_all(&record_of_len(len, "big")).unwrap();
    f.write_all(eol).unwrap();
    f.write_all(SMALL.as_bytes()).unwrap();
    f.write_all(eol).unwrap();
    f.write_all(b"not json").unwrap();
    f.write_all(eol).unwrap();
    f.flush().unwrap();
    p
}

fn rejections(v: &serde_json::Value) -> Vec<(u64, String)> {
    v["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn bom_and_crlf_do_not_count_against_the_16_mib_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let bom: &[u8] = b"\xEF\xBB\xBF";
    // (name, prefix, record length, line ending, evaluated, too_long)
    type Case<'a> = (&'a str, &'a [u8], usize, &'a [u8], u64, u64);
    let cases: [Case; 6] = [
        ("lf_exact.jsonl", b"", LIMIT, b"\n", 2, 0),
        ("lf_over.jsonl", b"", LIMIT + 1, b"\n", 1, 1),
        ("bom_exact.jsonl", bom, LIMIT, b"\n", 2, 0),
        ("bom_over.jsonl", bom, LIMIT + 1, b"\n", 1, 1),
        ("crlf_exact.jsonl", b"", LIMIT, b"\r\n", 2, 0),
        ("bom_crlf_exact.jsonl", bom, LIMIT, b"\r\n", 2, 0),
    ];
    for (name, prefix, len, eol, evaluated, too_long) in cases {
        let p = write_case(tmp.path(), name, prefix, len, eol);
        let (v, o) = report(&[&p]);
        let r = &v["records"];
        assert_eq!(r["read"], 3, "{name}: {}", text(&o));
        assert_eq!(r["evaluated"], evaluated, "{name}: {r}");
        assert_eq!(r["rejected"], 3 - evaluated, "{name}: {r}");
        let mut want = vec![(3, "malformed".to_string())];
        if too_long == 1 {
            want.insert(0, (1, "too_long".to_string()));
        }
        assert_eq!(rejections(&v), want, "{name}");
        std::fs::remove_file(&p).unwrap();
    }
}

#[test]
fn a_line_of_only_a_form_feed_is_malformed_not_blank() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("ff.jsonl");
    // Line 2 is a form feed alone, line 3 spaces, tab and CR (blank), line 4 a record
    // after a form feed: JSON whitespace is only space, tab, CR and LF.
    std::fs::write(&p, format!("{SMALL}\n\x0c\n \t\r\n\x0c{SMALL}\n")).unwrap();
    let (v, o) = report(&[&p]);
    assert_eq!(v["records"]["read"], 3, "{}", text(&o));
    assert_eq!(v["records"]["evaluated"], 1);
    assert_eq!(
        rejections(&v),
        [(2, "malformed".to_string()), (4, "malformed".to_string())]
    );
    // The committed fixture: the same lines.
    let fixture = common::root().join("fixtures/adversarial/form_feed.jsonl");
    let (v, _) = report(&[&fixture]);
    assert_eq!(v["records"]["read"], 3);
    assert_eq!(rejections(&v).len(), 2);
}

#[test]
fn a_file_named_twice_or_inside_a_named_directory_is_read_once_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("logs");
    std::fs::create_dir(&dir).unwrap();
    let a = dir.join("a.jsonl");
    std::fs::write(&a, format!("{SMALL}\n{SMALL}\n")).unwrap();
    let link = tmp.path().join("link.jsonl");
    std::os::unix::fs::symlink(&a, &link).unwrap();
    let (v, o) = report(&[&a, &dir, &link, &a]);
    assert_eq!(v["records"]["read"], 2, "{}", text(&o));
    assert_eq!(v["inputs"]["files"].as_array().unwrap().len(), 1);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("is the same file as").count(), 3, "{err}");
    assert!(
        err.contains(&format!(
            "proof: warning: {} is the same file as {} (named twice, or inside a directory also given); it is read once",
            link.display(),
            a.display()
        )),
        "{err}"
    );
}

fn bytes_read(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .and_then(|n| n.trim().parse().ok())
}

#[test]
fn a_log_truncated_while_it_is_read_is_exit_2_naming_it_never_a_partial_report() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("growing.jsonl");
    let records = 400_000u64;
    let mut w = std::io::BufWriter::new(std::fs::File::create(&log).unwrap());
    for i in 0..records {
        writeln!(
            w,
            r#"{{"ts":{},"request_id":"r{i}","context":{{"countries":["FR","CN"],"audit":{{"score":{}}}}}}}"#,
            1_793_866_200_000u64 + i * 10,
            i % 100
        )
        .unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let size = std::fs::metadata(&log).unwrap().len();
    let mut hit = 0;
    for attempt in 0..3 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_proof"))
            .arg("replay")
            .arg(&log)
            .arg("--ir")
            .arg(conformance().join("demo.v1.ir.json"))
            .args(["--threads", "1", "-q"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Truncate once a fifth of the file has been read (or the run is over).
        loop {
            if child.try_wait().unwrap().is_some()
                || bytes_read(child.id()).is_some_and(|n| n >= size / 5)
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let f = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
        f.set_len(size / 10).unwrap();
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        if o.status.code() == Some(2) {
            hit += 1;
            assert!(o.stdout.is_empty(), "no report on stdout: {}", text(&o));
            assert!(
                err.contains(&format!(
                    "{}: the file changed while it was read (its size went from {size} to {} bytes",
                    log.display(),
                    size / 10
                )) && err.contains("no report was written"),
                "attempt {attempt}: {err}"
            );
        } else {
            // The run finished before the truncation: the report covers the whole file.
            let v: serde_json::Value =
                serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
            assert_eq!(v["records"]["read"], records, "{}", text(&o));
        }
        // Restore the whole file for the next attempt.
        f.set_len(0).unwrap();
        drop(f);
        let mut w = std::io::BufWriter::new(std::fs::File::create(&log).unwrap());
        for i in 0..records {
            writeln!(
                w,
                r#"{{"ts":{},"request_id":"r{i}","context":{{"countries":["FR","CN"],"audit":{{"score":{}}}}}}}"#,
                1_793_866_200_000u64 + i * 10,
                i % 100
            )
            .unwrap();
        }
        w.flush().unwrap();
        if hit > 0 {
            break;
        }
    }
    assert!(
        hit > 0,
        "the truncation never landed while the file was read"
    );
}

#[test]
fn a_bad_out_is_exit_2_before_any_input_is_read_naming_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    // The log does not exist: an --out error shows the check ran before reading it.
    let missing = tmp.path().join("missing.jsonl");
    let file = tmp.path().join("report.json");
    std::fs::write(&file, "{}").unwrap();
    let cases = [
        (
            file.to_str().unwrap().to_string(),
            format!(
                "--out {}: exists and is a regular file, not a directory; --out takes a directory (created if missing) for report.json",
                file.display()
            ),
        ),
        (
            "/dev/null".to_string(),
            "--out /dev/null: exists and is a device, not a directory".to_string(),
        ),
        // A parent that cannot be created (/proc refuses new entries).
        (
            "/proc/proof-no-such/out".to_string(),
            "/proc/proof-no-such".to_string(),
        ),
    ];
    for (out, want) in cases {
        let o = replay(&[&missing], &["--out", &out]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{out}: {err}");
        assert!(err.contains(&want), "{out}: {err}");
        assert!(
            !err.contains("missing.jsonl"),
            "{out}: input read first: {err}"
        );
    }
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"{}",
        "the file is untouched"
    );
    // The current directory cannot be swapped out from under the shell.
    let o = Command::new(env!("CARGO_BIN_EXE_proof"))
        .args(["replay", "missing.jsonl", "--ir"])
        .arg(conformance().join("demo.v1.ir.json"))
        .args(["--out", "."])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--out .: is the current directory or holds it"),
        "{err}"
    );
}

#[test]
fn out_keeps_files_and_directories_it_did_not_write() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("a.jsonl");
    std::fs::write(&log, format!("{SMALL}\n")).unwrap();
    let out = tmp.path().join("out");
    let o = replay(&[&log], &["--out", out.to_str().unwrap()]);
    assert!(o.status.code().is_some_and(|c| c <= 1), "{}", text(&o));
    // A nested --out (docs/runbook_rollout.md: out/ and out/whatif-25) and a note.
    let nested = out.join("whatif-25");
    let o = replay(&[&log], &["--out", nested.to_str().unwrap()]);
    assert!(o.status.code().is_some_and(|c| c <= 1), "{}", text(&o));
    std::fs::write(out.join("NOTES.md"), "keep me").unwrap();
    let o = replay(&[&log], &["--out", out.to_str().unwrap()]);
    assert!(o.status.code().is_some_and(|c| c <= 1), "{}", text(&o));
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "NOTES.md",
            "gate.prom",
            "junit.xml",
            "metrics.om",
            "report.html",
            "report.json",
            "report.md",
            "whatif-25",
            "windows.csv"
        ]
    );
    assert!(nested.join("report.json").is_file());
    assert_eq!(std::fs::read(out.join("NOTES.md")).unwrap(), b"keep me");
    let mut beside: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    assert_eq!(beside, ["a.jsonl", "out"], "no lock or temporary left");
}
