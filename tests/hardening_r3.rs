//! Hardening, round three (issue 24): inputs read once (a pipe has no second read),
//! every configuration read bounded (`/dev/zero` is an error naming the limit, not an
//! allocation failure), and outputs that would overwrite an input refused.
//! `proof serve`'s share (pipes given at start, FIFOs in watched paths) is in
//! tests/serve.rs.
//!
//! Every child runs under a deadline (and, where it could allocate, an address-space
//! limit), so a regression fails the test instead of hanging it or the machine.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{conformance, text};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_proof")
}

/// Runs `cmd` to its end or kills it after 60 s (then the test fails, naming `what`).
fn run(mut cmd: Command, what: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Drain both pipes on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let e = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after 60 s (killed)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: o.join().unwrap(),
        stderr: e.join().unwrap(),
    }
}

/// `proof ARGS` under a 3 GiB address-space limit (`ulimit -v`): reading without a
/// bound ends in an allocation failure (abort), not in exhausting the machine.
fn proof_limited(args: &[&str], what: &str) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -v 3145728 && exec \"$@\"")
        .arg("sh")
        .arg(bin())
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    run(cmd, what)
}

fn c(name: &str) -> String {
    conformance().join(name).display().to_string()
}

fn mkfifo(p: &Path) {
    let ok = Command::new("mkfifo").arg(p).status().expect("mkfifo");
    assert!(ok.success(), "mkfifo {}", p.display());
}

/// Writes `bytes` into the FIFO `p` from a thread (the open waits for the reader).
fn feed(p: &Path, bytes: Vec<u8>) {
    let p = p.to_path_buf();
    std::thread::spawn(move || {
        let _ = std::fs::write(&p, bytes);
    });
}

// ---- item 13: every read bounded ----------------------------------------------

fn assert_limit(o: &Output, file: &str, limit: &str) {
    let t = text(o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("{file}: ")) && err.contains(&format!("the limit is {limit} bytes")),
        "{t}"
    );
}

#[test]
fn dev_zero_as_ir_list_context_rbac_hash_or_report_is_a_limit_error() {
    let ir = c("demo.v1.ir.json");
    let log = c("traffic.jsonl");
    // --ir: the 64 MiB IR limit, checked on streams too.
    let o = proof_limited(&["replay", &log, "--ir", "/dev/zero", "-q"], "replay --ir");
    assert_limit(&o, "/dev/zero", "67108864");
    let o = proof_limited(&["hash", "/dev/zero"], "hash");
    assert_limit(&o, "/dev/zero", "67108864");
    // --list: 512 MiB.
    let o = proof_limited(
        &[
            "replay",
            &log,
            "--ir",
            &ir,
            "--list",
            "sanctions=/dev/zero",
            "-q",
        ],
        "replay --list",
    );
    assert_limit(&o, "/dev/zero", "536870912");
    // adapt --context: one record, 16 MiB.
    let o = proof_limited(
        &["adapt", "--ir", &ir, "--context", "/dev/zero"],
        "adapt --context",
    );
    assert_limit(&o, "/dev/zero", "16777216");
    // serve --rbac: a config file, 16 MiB; refused at start.
    let o = proof_limited(
        &[
            "serve",
            "--ir",
            &ir,
            "--rbac",
            "/dev/zero",
            "--listen",
            "127.0.0.1:0",
        ],
        "serve --rbac",
    );
    assert_limit(&o, "/dev/zero", "16777216");
    // diff: a report, 256 MiB.
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let r = run(
        {
            let mut cmd = Command::new(bin());
            cmd.args(["replay", &log, "--ir", &ir, "-q"])
                .args(lists_flags())
                .arg("--out")
                .arg(dir.path().join("out"));
            cmd
        },
        "replay for diff",
    );
    // Any gate outcome (0, 1, 3) writes the report.
    assert_ne!(r.status.code(), Some(2), "{}", text(&r));
    std::fs::copy(dir.path().join("out/report.json"), &report).unwrap();
    let o = proof_limited(
        &["diff", "/dev/zero", report.to_str().unwrap()],
        "diff /dev/zero",
    );
    assert_limit(&o, "/dev/zero", "268435456");
}

fn lists_flags() -> Vec<String> {
    vec![
        "--list".into(),
        format!("sanctions={}", c("sanctions.csv")),
        "--list".into(),
        format!("high_risk={}", c("high_risk.txt")),
    ]
}

// ---- item 1: a pipe is read once ------------------------------------------------

#[test]
fn a_fifo_bound_to_two_list_names_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("sanctions.csv");
    mkfifo(&fifo);
    feed(
        &fifo,
        std::fs::read(conformance().join("sanctions.csv")).unwrap(),
    );
    let ctx = dir.path().join("ctx.json");
    std::fs::write(
        &ctx,
        r#"{"ts":"2026-11-05T08:00:00Z","request_id":"r","context":{"supplier_hashes":["0xbad1"],"ubo_hashes":["u"],"audit":{"score":90,"dates":["2026-10-01"]},"countries":["FR"]}}"#,
    )
    .unwrap();
    let mut cmd = Command::new(bin());
    cmd.args(["adapt", "--ir", &c("demo.v1.ir.json")])
        .arg("--list")
        .arg(format!("sanctions={}", fifo.display()))
        .arg("--list")
        .arg(format!("also_sanctions={}", fifo.display()))
        .arg("--list")
        .arg(format!("high_risk={}", c("high_risk.txt")))
        .arg("--context")
        .arg(&ctx);
    let o = run(cmd, "adapt with one FIFO bound twice");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["shadow"]["verdict"], "fail", "{v}");
    assert_eq!(
        v["shadow"]["failed_rules"],
        serde_json::json!(["no_sanctions"]),
        "{v}"
    );
}

// ---- item 5: outputs never overwrite inputs -------------------------------------

/// A temp dir holding a copy of the conformance log, IR and lists.
fn workspace() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs/traffic.jsonl");
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    std::fs::copy(conformance().join("traffic.jsonl"), &log).unwrap();
    let ir = dir.path().join("demo.v1.ir.json");
    std::fs::copy(conformance().join("demo.v1.ir.json"), &ir).unwrap();
    let list = dir.path().join("sanctions.csv");
    std::fs::copy(conformance().join("sanctions.csv"), &list).unwrap();
    (dir, log, ir, list)
}

fn replay_in(dir: &Path, log: &Path, ir: &Path, list: &Path, extra: &[&str]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.arg("replay")
        .arg(log)
        .arg("--ir")
        .arg(ir)
        .arg("--list")
        .arg(format!("sanctions={}", list.display()))
        .arg("--list")
        .arg(format!("high_risk={}", c("high_risk.txt")))
        .args(["-q", "--threads", "2"])
        .args(extra)
        .current_dir(dir);
    run(cmd, "replay")
}

#[test]
fn partial_out_or_drift_details_naming_an_input_is_refused_before_reading() {
    let (dir, log, ir, list) = workspace();
    let originals: Vec<(PathBuf, Vec<u8>)> = [&log, &ir, &list]
        .iter()
        .map(|p| (p.to_path_buf(), std::fs::read(p).unwrap()))
        .collect();
    let link = dir.path().join("link-to-ir.json");
    std::os::unix::fs::symlink(&ir, &link).unwrap();
    let hard = dir.path().join("hard-link-to-list.csv");
    std::fs::hard_link(&list, &hard).unwrap();
    let cases: Vec<(&str, PathBuf, &str)> = vec![
        ("--partial-out", log.clone(), "is the input"),
        ("--partial-out", ir.clone(), "is the input"),
        ("--partial-out", list.clone(), "is the input"),
        // Through a symlink, a hard link, a path with `..`.
        ("--partial-out", link.clone(), "is the input"),
        ("--partial-out", hard.clone(), "is the input"),
        (
            "--partial-out",
            dir.path().join("logs/../demo.v1.ir.json"),
            "is the input",
        ),
        (
            "--drift-details",
            dir.path().join("logs/traffic.jsonl"),
            "is the input",
        ),
        ("--drift-details", list.clone(), "is the input"),
    ];
    for (flag, target, what) in &cases {
        let t = target.to_str().unwrap();
        let o = replay_in(dir.path(), &log, &ir, &list, &[flag, t]);
        let msg = text(&o);
        assert_eq!(o.status.code(), Some(2), "{flag} {t}: {msg}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(flag) && err.contains(what) && err.contains("nothing was read"),
            "{flag} {t}: {msg}"
        );
        for (p, bytes) in &originals {
            assert_eq!(&std::fs::read(p).unwrap(), bytes, "{} changed", p.display());
        }
    }
    // The log directory as input: a file inside it as output, and --out holding it.
    let logs = dir.path().join("logs");
    let inside = logs.join("traffic.jsonl");
    let mut cmd = Command::new(bin());
    cmd.arg("replay")
        .arg(&logs)
        .arg("--ir")
        .arg(&ir)
        .args(lists_flags())
        .arg("-q")
        .arg("--partial-out")
        .arg(&inside);
    let o = run(cmd, "replay DIR --partial-out DIR/file");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let mut cmd = Command::new(bin());
    cmd.arg("replay")
        .arg(&log)
        .arg("--ir")
        .arg(&ir)
        .args(lists_flags())
        .arg("-q")
        .arg("--out")
        .arg(&logs);
    let o = run(cmd, "replay --out LOGDIR");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("holds the input"),
        "{}",
        text(&o)
    );
    for (p, bytes) in &originals {
        assert_eq!(&std::fs::read(p).unwrap(), bytes, "{} changed", p.display());
    }
    // A fresh path is fine.
    let o = replay_in(
        dir.path(),
        &log,
        &ir,
        &list,
        &["--partial-out", "shard.partial"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(dir.path().join("shard.partial").is_file());
}
