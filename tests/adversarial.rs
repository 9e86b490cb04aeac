//! Adversarial inputs through the real binary: each case of `fixtures/adversarial/`
//! (small files committed there; big or filesystem-dependent ones generated here into a
//! temp dir) has one expected outcome — exit code, a message that names the file and
//! what to do, and the exact record accounting of report.json. The table of cases and
//! outcomes is `fixtures/adversarial/README.md`.
//!
//! Every run is watched: a run that has not ended after `HANG_SECS` is killed and the
//! case fails as a hang (a generous bound for a 2-core machine, not a speed check), and
//! the peak resident memory read from `/proc` is checked where a case is about memory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A run still going after this long is a hang.
const HANG_SECS: u64 = 300;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn adv(name: &str) -> PathBuf {
    root().join("fixtures/adversarial").join(name)
}

fn conf(name: &str) -> PathBuf {
    root().join("fixtures/conformance").join(name)
}

/// What one run produced.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stderr: String,
    report: Option<Value>,
    peak_rss_kib: u64,
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs `proof ARGS` with `--out` into a fresh directory (for replay) and watches it.
fn proof(args: &[&dyn AsRef<std::ffi::OsStr>], out: Option<&Path>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_proof"));
    for a in args {
        cmd.arg(a);
    }
    if let Some(o) = out {
        cmd.arg("--out").arg(o);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn proof");
    let pid = child.id();
    let mut stderr_pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr_pipe, &mut s);
        s
    });
    let started = Instant::now();
    let mut peak = 0;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if let Some(k) = peak_rss_kib(pid) {
            peak = peak.max(k);
        }
        if started.elapsed() > Duration::from_secs(HANG_SECS) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "proof {:?} hung",
                args.iter()
                    .map(|a| a.as_ref().to_owned())
                    .collect::<Vec<_>>()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stderr = reader.join().unwrap();
    assert!(!stderr.contains("panicked"), "proof panicked: {stderr}");
    let report = out
        .map(|o| o.join("report.json"))
        .filter(|p| p.exists())
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap());
    Run {
        code: status.code(),
        stderr,
        report,
        peak_rss_kib: peak,
    }
}

/// `proof replay LOG… --ir demo.v1 (lists) EXTRA…`, outputs in a fresh directory.
fn replay(logs: &[&Path], extra: &[&str]) -> Run {
    let out = tempfile::tempdir().unwrap();
    let sanctions = format!("sanctions={}", conf("sanctions.csv").display());
    let high_risk = format!("high_risk={}", conf("high_risk.txt").display());
    let ir = conf("demo.v1.ir.json");
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"replay"];
    for l in logs {
        args.push(l);
    }
    args.extend([
        &"--ir" as &dyn AsRef<std::ffi::OsStr>,
        &ir,
        &"--list",
        &sanctions,
        &"--list",
        &high_risk,
        &"-q",
    ]);
    for e in extra {
        args.push(e);
    }
    proof(&args, Some(out.path()))
}

/// Checks exit code and `records` exactly; `reasons` lists the non-zero reasons.
fn expect_records(r: &Run, code: i32, read: u64, evaluated: u64, skipped: u64, reasons: Value) {
    assert_eq!(r.code, Some(code), "{}", r.stderr);
    let rep = r
        .report
        .as_ref()
        .unwrap_or_else(|| panic!("no report.json: {}", r.stderr));
    let rec = &rep["records"];
    let rejected: u64 = reasons
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        rec,
        &json!({
            "read": read, "evaluated": evaluated, "rejected": rejected, "skipped": skipped,
            "rejected_by_reason": reasons,
            // Every skip in these cases is a record of another policy.
            "skipped_by_reason": if skipped > 0 { json!({"other_policy": skipped}) } else { json!({}) },
            "bucket_key_missing": 0
        }),
        "{}",
        r.stderr
    );
    assert_eq!(rep["gate"]["exit_code"], code);
}

/// An exit-2 error: no report, and stderr holds every `needles` item.
fn expect_error(r: &Run, needles: &[&str]) {
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.report.is_none(), "no report on exit 2");
    for n in needles {
        assert!(r.stderr.contains(n), "stderr lacks {n:?}: {}", r.stderr);
    }
}

const GOOD: &str = r#"{"ts":"2026-11-05T08:10:00Z","request_id":"good","policy_id":"demo.v1","context":{"supplier_hashes":["0xa4"],"ubo_hashes":["0xu0"],"audit":{"score":80,"dates":["2026-03-01"]},"countries":["FR"]}}"#;

// ---------------------------------------------------------------------------------
// Hostile values in JSONL
// ---------------------------------------------------------------------------------

#[test]
fn json_nested_100000_deep() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("deep.jsonl");
    let n = 100_000;
    let deep = format!("{}{}", "[".repeat(n), "]".repeat(n));
    let text = format!(
        "{GOOD}\n{{\"ts\":1,\"request_id\":\"ctx\",\"context\":{{\"a\":{deep}}}}}\n\
         {{\"ts\":1,\"request_id\":\"ignored\",\"x\":{deep},\"context\":{{}}}}\n{deep}\n"
    );
    std::fs::write(&p, text).unwrap();
    // The context and the bare array exceed the 128-level limit: malformed. A deep
    // value under a key the reader ignores is skipped without recursion: evaluated.
    let r = replay(&[&p], &["--max-rejects", "2"]);
    expect_records(&r, 0, 4, 2, 0, json!({"malformed": 2}));
    let rej = &r.report.as_ref().unwrap()["rejections"];
    assert_eq!(rej[0]["line"], 2);
    assert_eq!(rej[1]["line"], 4);
}

#[test]
fn numbers_out_of_range_negative_zero_and_huge_integers() {
    // 1e400 and -1e400 cannot be a JSON number of f64: malformed; -0 in a context is 0;
    // a 33-digit integer is read as the nearest f64; ts -0 is epoch 0; ts 1e3, 1.5 and
    // a 23-digit integer are not integer epoch milliseconds in range: bad_ts.
    let r = replay(&[&adv("numbers.jsonl")], &["--max-rejects", "5"]);
    expect_records(&r, 0, 8, 3, 0, json!({"bad_ts": 3, "malformed": 2}));
    let lines: Vec<u64> = r.report.as_ref().unwrap()["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [1, 5, 6, 7, 8]);
}

#[test]
fn invalid_utf8_anywhere_in_a_line_is_malformed() {
    let r = replay(&[&adv("invalid_utf8.jsonl")], &["--max-rejects", "4"]);
    expect_records(&r, 0, 5, 1, 0, json!({"malformed": 4}));
}

#[test]
fn bom_and_crlf() {
    // A BOM opening the file and CRLF endings are accepted; a BOM on a later line is
    // not whitespace in JSON: malformed. The CRLF blank line is not a record.
    let r = replay(&[&adv("bom_crlf.jsonl")], &["--max-rejects", "1"]);
    expect_records(&r, 0, 3, 2, 0, json!({"malformed": 1}));
    assert_eq!(r.report.as_ref().unwrap()["rejections"][0]["line"], 4);
}

#[test]
fn duplicate_keys() {
    // Duplicated record fields (ts, request_id, policy_id, context) are ambiguous:
    // malformed. Inside the context and in ignored keys the last one wins (serde_json).
    let r = replay(&[&adv("duplicate_keys.jsonl")], &["--max-rejects", "2"]);
    expect_records(&r, 0, 4, 2, 0, json!({"malformed": 2}));
}

#[test]
fn nul_bytes() {
    // A raw NUL is a control character JSON forbids: malformed (in a string, as a
    // line, after the object). The escape \u0000 is valid JSON: evaluated.
    let r = replay(&[&adv("nul_bytes.jsonl")], &["--max-rejects", "3"]);
    expect_records(&r, 0, 4, 1, 0, json!({"malformed": 3}));
}

#[test]
fn timestamps_before_1970_and_after_9999() {
    // 1969 and year 1 are fine; year 0, year 10000, epoch ms outside 0001..=9999 and a
    // record whose 5-minute window would end in year 10000 are bad_ts.
    let r = replay(&[&adv("timestamps.jsonl")], &["--max-rejects", "5"]);
    expect_records(&r, 0, 9, 4, 0, json!({"bad_ts": 5}));
    let rep = r.report.unwrap();
    let starts: Vec<&str> = rep["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["start"].as_str().unwrap())
        .collect();
    assert_eq!(
        starts,
        [
            "0001-01-01T00:00:00Z",
            "1969-07-20T20:15:00Z",
            "9999-12-31T23:50:00Z"
        ]
    );
    assert_eq!(rep["windows"][2]["end"], "9999-12-31T23:55:00Z");
}

#[test]
fn empty_and_blank_files_hold_no_records() {
    for name in [
        "empty.jsonl",
        "empty.jsonl.gz",
        "empty.parquet",
        "blank_lines.jsonl",
    ] {
        let r = replay(&[&adv(name)], &[]);
        expect_records(&r, 3, 0, 0, 0, json!({}));
        assert!(
            r.stderr.contains("no evaluable record") || r.report.is_some(),
            "{name}: {}",
            r.stderr
        );
    }
}

#[test]
fn a_20_mib_line_is_rejected_without_holding_it() {
    let d = tempfile::tempdir().unwrap();
    for (name, newline_at_end) in [("big.jsonl", true), ("big_eof.jsonl", false)] {
        let p = d.path().join(name);
        let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
        writeln!(f, "{GOOD}").unwrap();
        write!(
            f,
            "{{\"ts\":1,\"request_id\":\"big\",\"context\":{{\"x\":\""
        )
        .unwrap();
        let chunk = vec![b'y'; 1 << 20];
        for _ in 0..20 {
            f.write_all(&chunk).unwrap();
        }
        write!(f, "\"}}}}").unwrap();
        if newline_at_end {
            writeln!(f).unwrap();
            writeln!(f, "{GOOD}").unwrap();
        }
        drop(f);
        let r = replay(&[&p], &["--max-rejects", "1"]);
        let read = if newline_at_end { 3 } else { 2 };
        expect_records(&r, 0, read, read - 1, 0, json!({"too_long": 1}));
        assert_eq!(r.report.as_ref().unwrap()["rejections"][0]["line"], 2);
        // The limit is 16 MiB: the line is dropped once it passes it, so the process
        // never holds 20 MiB of it (nor several copies).
        assert!(
            r.peak_rss_kib < 160 * 1024,
            "peak RSS {} KiB",
            r.peak_rss_kib
        );
    }
    // The stderr verdict names the limit.
    let p = d.path().join("big.jsonl");
    let out = tempfile::tempdir().unwrap();
    let r = proof(
        &[
            &"replay",
            &p,
            &"--ir",
            &conf("demo.v1.ir.json"),
            &"--list",
            &format!("sanctions={}", conf("sanctions.csv").display()),
            &"--list",
            &format!("high_risk={}", conf("high_risk.txt").display()),
        ],
        Some(out.path()),
    );
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(r.stderr.contains("too_long: 1"), "{}", r.stderr);
    assert!(r.stderr.contains("16 MiB"), "{}", r.stderr);
}

// ---------------------------------------------------------------------------------
// Truncated compressed and Parquet inputs
// ---------------------------------------------------------------------------------

fn traffic() -> Vec<u8> {
    std::fs::read(conf("traffic.jsonl")).unwrap()
}

#[test]
fn truncated_gzip_and_zstd() {
    let d = tempfile::tempdir().unwrap();
    let plain = traffic();
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&plain).unwrap();
        e.finish().unwrap()
    };
    let zst = zstd::encode_all(&plain[..], 3).unwrap();
    for (name, bytes, what) in [
        ("t.jsonl.gz", &gz, "gzip stream is truncated or corrupt"),
        ("t.jsonl.zst", &zst, "zstd stream is truncated or corrupt"),
    ] {
        let p = d.path().join(name);
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        let r = replay(&[&p], &["--max-rejects", "10"]);
        let at = format!("{}:", p.display());
        expect_error(&r, &[&at, what, "no report was written"]);
        // Whole streams read every line.
        std::fs::write(&p, bytes).unwrap();
        let r = replay(&[&p], &["--max-rejects", "3"]);
        expect_records(
            &r,
            0,
            43,
            39,
            1,
            json!({"bad_ts": 1, "malformed": 1, "missing_request_id": 1}),
        );
    }
}

fn small_parquet(path: &Path) {
    let records: Vec<_> = traffic()
        .split(|&b| b == b'\n')
        .filter_map(|l| proof::replay::record::parse_line(l).ok())
        .collect();
    proof::r#gen::parquet::write_records(
        path,
        records,
        parquet::basic::Compression::SNAPPY,
        proof::r#gen::parquet::ContextLayout::Json,
    )
    .unwrap();
}

#[test]
fn truncated_and_corrupt_parquet() {
    let d = tempfile::tempdir().unwrap();
    let good = d.path().join("good.parquet");
    small_parquet(&good);
    let r = replay(&[&good], &[]);
    expect_records(&r, 0, 40, 39, 1, json!({}));
    let bytes = std::fs::read(&good).unwrap();

    let cut = d.path().join("cut.parquet");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let r = replay(&[&cut], &[]);
    expect_error(
        &r,
        &[&cut.display().to_string(), "cannot read Parquet (truncated"],
    );

    let tiny = d.path().join("tiny.parquet");
    std::fs::write(&tiny, b"PAR1").unwrap();
    let r = replay(&[&tiny], &[]);
    expect_error(&r, &[&tiny.display().to_string(), "too small"]);

    // A footer whose column chunk offset is negative: the Parquet crate asserts on it
    // (a panic); proof contains that and reports the file, without a panic message.
    let neg = adv("negative_offset.parquet");
    let r = replay(&[&neg], &[]);
    expect_error(
        &r,
        &[
            "negative_offset.parquet:1:",
            "Parquet data is corrupt near row 1",
            "should not be negative",
        ],
    );

    // Bytes flipped in the data pages: the footer is intact, the pages are not.
    let mut flipped = bytes.clone();
    for i in (8..bytes.len() / 2).step_by(7) {
        flipped[i] ^= 0x5a;
    }
    let bad = d.path().join("flipped.parquet");
    std::fs::write(&bad, &flipped).unwrap();
    let r = replay(&[&bad], &[]);
    expect_error(&r, &[&bad.display().to_string()]);
}

// ---------------------------------------------------------------------------------
// Directories with entries that cannot be read
// ---------------------------------------------------------------------------------

#[cfg(unix)]
#[test]
fn directories_with_unreadable_entries() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let base = tempfile::tempdir().unwrap();
    let mk = |name: &str| {
        let d = base.path().join(name);
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("a.jsonl"), traffic()).unwrap();
        d
    };

    // A dangling symlink: exit 2 naming the link and saying what is wrong.
    let d = mk("dangling");
    symlink("nowhere.jsonl", d.join("b.jsonl")).unwrap();
    let r = replay(&[&d], &[]);
    expect_error(&r, &["b.jsonl", "No such file or directory"]);
    assert_eq!(r.stderr.matches("os error").count(), 1, "{}", r.stderr);

    // A symlink to itself.
    let d = mk("selfloop");
    symlink("c.jsonl", d.join("c.jsonl")).unwrap();
    let r = replay(&[&d], &[]);
    expect_error(&r, &["c.jsonl", "symbolic links"]);

    // A FIFO without a writer: opening it would block forever, so it is refused.
    let d = mk("fifo");
    let st = Command::new("mkfifo")
        .arg(d.join("b.jsonl"))
        .status()
        .unwrap();
    assert!(st.success());
    let r = replay(&[&d], &[]);
    expect_error(&r, &["b.jsonl", "not a regular file (a FIFO)"]);

    // Directory symlinks back to an ancestor: walked once, every file read once.
    let d = mk("dirloop");
    symlink(".", d.join("loop1")).unwrap();
    symlink(".", d.join("loop2")).unwrap();
    let r = replay(&[&d], &["--max-rejects", "3"]);
    expect_records(
        &r,
        0,
        43,
        39,
        1,
        json!({"bad_ts": 1, "malformed": 1, "missing_request_id": 1}),
    );

    // chmod 000: tests may run as root, who reads it anyway. Both outcomes are checked
    // for what they are: counted when readable, exit 2 naming the file when not.
    let d = mk("mode000");
    let f = d.join("a.jsonl");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o000)).unwrap();
    let readable = std::fs::File::open(&f).is_ok();
    let r = replay(&[&d], &["--max-rejects", "3"]);
    if readable {
        expect_records(
            &r,
            0,
            43,
            39,
            1,
            json!({"bad_ts": 1, "malformed": 1, "missing_request_id": 1}),
        );
    } else {
        expect_error(&r, &["a.jsonl", "Permission denied"]);
    }
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();

    // A subdirectory that cannot be listed (again: root can).
    let d = mk("subdir000");
    let sub = d.join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o000)).unwrap();
    let listable = std::fs::read_dir(&sub).is_ok();
    let r = replay(&[&d], &["--max-rejects", "3"]);
    if listable {
        assert_eq!(r.code, Some(0), "{}", r.stderr);
    } else {
        expect_error(&r, &["sub", "Permission denied"]);
    }
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[cfg(unix)]
#[test]
fn a_fifo_given_explicitly_is_read_as_a_stream_without_losing_bytes() {
    let d = tempfile::tempdir().unwrap();
    let fifo = d.path().join("live.jsonl");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            f.write_all(&traffic()).unwrap();
        })
    };
    let r = replay(&[&fifo], &["--max-rejects", "3"]);
    writer.join().unwrap();
    // Before the fix the format sniffer ate the first 4 bytes: line 1 was malformed.
    expect_records(
        &r,
        0,
        43,
        39,
        1,
        json!({"bad_ts": 1, "malformed": 1, "missing_request_id": 1}),
    );
}

// ---------------------------------------------------------------------------------
// Policies: cycles, 10 000 rules, nesting and size limits
// ---------------------------------------------------------------------------------

#[test]
fn ir_cycles_cannot_form() {
    // Predicates read the context, never other predicates or rules: a var naming its
    // own predicate, a rule, or a predicate naming another in turn reads that context
    // key. Verdicts: c1 ok (gated inactive), c2 fail (p_self true), c3 fail (p_self
    // missing: fail-closed, gated active), c4 fail (base fails).
    let out = tempfile::tempdir().unwrap();
    let r = proof(
        &[
            &"replay",
            &adv("cycle.jsonl"),
            &"--ir",
            &adv("cycle.ir.json"),
            &"-q",
        ],
        Some(out.path()),
    );
    expect_records(&r, 0, 4, 4, 0, json!({}));
    let v = &r.report.unwrap()["verdicts"];
    assert_eq!(v["shadow"], json!({"ok": 1, "warn": 0, "fail": 3}));
}

#[test]
fn ten_thousand_rules() {
    let d = tempfile::tempdir().unwrap();
    let rules: Vec<Value> = (0..10_000)
        .map(|i| json!({"id": format!("r{i:05}"), "op": "ge", "lhs": {"var": "score"}, "rhs": i % 100}))
        .collect();
    let ids: Vec<String> = (0..10_000).step_by(2).map(|i| format!("r{i:05}")).collect();
    let ir = json!({
        "ir_version": "1.0", "policy_id": "big.v1", "rules": rules,
        "adaptivity": {
            "predicates": [{"id": "high", "expr": {"func": "ge", "args": [{"var": "score"}, 50]}}],
            "activations": [{"when": "high", "rules": ids}]
        }
    });
    let irp = d.path().join("big.ir.json");
    std::fs::write(&irp, serde_json::to_vec(&ir).unwrap()).unwrap();
    let log = d.path().join("big.jsonl");
    // score 99: every rule active and passing; score 10: odd rules only, rhs ≥ 11 fail.
    std::fs::write(
        &log,
        "{\"ts\":1,\"request_id\":\"a\",\"context\":{\"score\":99}}\n\
         {\"ts\":2,\"request_id\":\"b\",\"context\":{\"score\":10}}\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let r = proof(&[&"replay", &log, &"--ir", &irp, &"-q"], Some(out.path()));
    expect_records(&r, 0, 2, 2, 0, json!({}));
    assert_eq!(
        r.report.unwrap()["verdicts"]["shadow"],
        json!({"ok": 1, "warn": 0, "fail": 1})
    );
}

#[test]
fn ir_nested_too_deep_names_the_limit() {
    let d = tempfile::tempdir().unwrap();
    let mut e = json!({"var": "x"});
    for _ in 0..200 {
        e = json!({"func": "not", "args": [e]});
    }
    // serde_json's own serialiser is recursive too, but 200 levels are fine.
    let ir = json!({"ir_version": "1.0", "policy_id": "d.v1",
                    "rules": [{"id": "r", "op": "eq", "lhs": e, "rhs": true}]});
    let irp = d.path().join("deep.ir.json");
    std::fs::write(&irp, serde_json::to_vec(&ir).unwrap()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let r = proof(
        &[&"replay", &conf("traffic.jsonl"), &"--ir", &irp],
        Some(out.path()),
    );
    expect_error(
        &r,
        &["deep.ir.json:1:", "nested more than 128 levels", "flatten"],
    );
}

#[test]
fn ir_over_the_size_limit_names_it() {
    let d = tempfile::tempdir().unwrap();
    let irp = d.path().join("huge.ir.json");
    // Sparse: the limit is checked before a byte is read.
    let f = std::fs::File::create(&irp).unwrap();
    f.set_len(proof::policy::ir::MAX_IR_BYTES + 1).unwrap();
    let out = tempfile::tempdir().unwrap();
    let r = proof(
        &[&"replay", &conf("traffic.jsonl"), &"--ir", &irp],
        Some(out.path()),
    );
    expect_error(
        &r,
        &[
            "huge.ir.json",
            "the limit is 67108864 bytes",
            "MAX_IR_BYTES",
        ],
    );
}

// ---------------------------------------------------------------------------------
// Weights and YAML
// ---------------------------------------------------------------------------------

fn weighted(weights: &Path) -> Run {
    let w = weights.display().to_string();
    replay(
        &[&conf("traffic.jsonl")],
        &[
            "--selector",
            "weighted",
            "--weights",
            &w,
            "--max-rejects",
            "3",
        ],
    )
}

#[test]
fn weights_negative_or_overflowing() {
    const RULE: &str = "weights must be non-negative integers, 0..=18446744073709551615";
    let r = weighted(&adv("weights_negative.yaml"));
    expect_error(
        &r,
        &[
            "weights_negative.yaml",
            "line 1 column 26",
            "weight of rule 'no_sanctions' is -3",
            RULE,
        ],
    );
    let r = weighted(&adv("weights_overflow.yaml"));
    expect_error(
        &r,
        &[
            "weights_overflow.yaml",
            "line 2 column 17",
            "weight of rule 'no_sanctions' is 1e23",
            RULE,
        ],
    );
    let r = weighted(&adv("weights_negative.json"));
    expect_error(
        &r,
        &[
            "weights_negative.json:1:",
            "weight of rule 'no_sanctions' is -3",
            RULE,
        ],
    );
    let r = weighted(&adv("weights_overflow.json"));
    expect_error(&r, &["weights_overflow.json:1:", "number out of range"]);
    // u64::MAX costs and budget are valid; running totals saturate instead of wrapping,
    // so the budget admits the first step and the next one is over it.
    let r = weighted(&adv("weights_max.yaml"));
    expect_records(
        &r,
        0,
        43,
        39,
        1,
        json!({"bad_ts": 1, "malformed": 1, "missing_request_id": 1}),
    );
    assert_eq!(
        r.report.unwrap()["inputs"]["candidate"]["budget"],
        json!(u64::MAX)
    );
}

#[test]
fn yaml_alias_bombs_are_refused_quickly() {
    // The library reader bounds alias expansion (serde-saphyr budgets): a billion-laughs
    // document is an error, not 9^10 strings in memory.
    let bytes = std::fs::read(adv("alias_bomb.yaml")).unwrap();
    let e = proof::config::from_yaml::<Value>(&bytes, Path::new("alias_bomb.yaml")).unwrap_err();
    let m = e.to_string();
    assert!(m.starts_with("alias_bomb.yaml"), "{m}");
    assert!(
        m.contains("budget breached") && m.contains("alias bomb?"),
        "{m}"
    );
    // Through the binary, as a scenario and as a weights file: exit 2 naming the file.
    let out = tempfile::tempdir().unwrap();
    let r = proof(
        &[
            &"replay",
            &"--scenario",
            &adv("alias_bomb.yaml"),
            &"--ir",
            &conf("demo.v1.ir.json"),
        ],
        Some(out.path()),
    );
    expect_error(&r, &["alias_bomb.yaml", "line 2"]);
    assert!(
        r.peak_rss_kib < 200 * 1024,
        "peak RSS {} KiB",
        r.peak_rss_kib
    );
    let r = weighted(&adv("alias_bomb.yaml"));
    expect_error(&r, &["alias_bomb.yaml"]);
    let r = weighted(&adv("weights_alias_self.yaml"));
    expect_error(&r, &["weights_alias_self.yaml"]);
}

// ---------------------------------------------------------------------------------
// Limits that have a flag
// ---------------------------------------------------------------------------------

#[test]
fn too_many_windows_names_the_flag() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("span.jsonl");
    std::fs::write(
        &p,
        "{\"ts\":0,\"request_id\":\"a\",\"context\":{}}\n\
         {\"ts\":86400000,\"request_id\":\"b\",\"context\":{}}\n\
         {\"ts\":172800000,\"request_id\":\"c\",\"context\":{}}\n",
    )
    .unwrap();
    let r = replay(&[&p], &["--window", "1s", "--max-windows", "2"]);
    expect_error(
        &r,
        &["more than 2 windows", "--window 1s", "raise --max-windows"],
    );
    let r = replay(&[&p], &["--window", "1s", "--max-windows", "3"]);
    expect_records(&r, 0, 3, 3, 0, json!({}));
}
