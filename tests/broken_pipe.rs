//! A reader that closes standard output early (`proof gen | head`) ends the command
//! quietly, as in ripgrep: no "Broken pipe" message, no panic, and the exit code the
//! command would have had anyway (0, or the replay gate's code).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Which standard stream of proof is a pipe whose reading end is already closed, so
/// the first write to it fails with EPIPE.
#[derive(Clone, Copy)]
enum Closed {
    Stdout,
    /// `proof … 2>&1 | head` once `head` has gone.
    Stderr,
}

/// Runs proof with one standard stream closed (see [`Closed`]); the other is kept
/// (stderr, for the messages) or dropped (stdout).
fn with_closed(which: Closed, args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_proof"));
    cmd.args(args)
        .current_dir(root())
        .env_remove("PROOF_POLICY_DIR")
        .env_remove("GITHUB_STEP_SUMMARY");
    match which {
        Closed::Stdout => cmd.stdout(writer).stderr(Stdio::piped()),
        Closed::Stderr => cmd.stdout(Stdio::null()).stderr(writer),
    };
    cmd.output().unwrap()
}

fn with_closed_stdout(args: &[&str]) -> Output {
    with_closed(Closed::Stdout, args)
}

fn with_closed_stderr(args: &[&str]) -> Output {
    with_closed(Closed::Stderr, args)
}

fn assert_quiet(args: &[&str], code: i32) {
    let out = with_closed_stdout(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "proof {args:?}: {err}");
    assert!(err.is_empty(), "proof {args:?} wrote to stderr: {err}");
}

#[test]
fn every_subcommand_writing_to_stdout_ends_quietly() {
    assert_quiet(&["gen", "--records", "1000"], 0);
    assert_quiet(&["completions", "bash"], 0);
    assert_quiet(&["man"], 0);
    assert_quiet(&["hash", "fixtures/conformance/demo.v1.ir.json"], 0);
    assert_quiet(
        &[
            "adapt",
            "--policy",
            "lksg.v1",
            "--context",
            "fixtures/contexts/context_ok.json",
        ],
        0,
    );
}

/// `proof replay` of the conformance case at `rollout` % (at 50 % the gate breaches:
/// exit 1, SPEC §5), then `extra` flags.
fn conformance_replay(rollout: &str, extra: &[&str]) -> Vec<String> {
    let c = |f: &str| format!("fixtures/conformance/{f}");
    let mut args: Vec<String> = [
        "replay".to_string(),
        c("traffic.jsonl"),
        "--ir".into(),
        c("demo.v1.ir.json"),
        "--candidate-ir".into(),
        c("demo.v2.ir.json"),
        "--list".into(),
        format!("sanctions={}", c("sanctions.csv")),
        "--list".into(),
        format!("high_risk={}", c("high_risk.txt")),
        "--rollout".into(),
        rollout.into(),
        "--max-rejects".into(),
        "3".into(),
    ]
    .into();
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn replay_without_out_keeps_the_gate_exit_code() {
    // Losing report.json's reader must not turn a breach into a pass, nor into exit 2.
    assert_quiet(&strs(&conformance_replay("50", &["--quiet"])), 1);
    assert_quiet(&strs(&conformance_replay("0", &["--quiet"])), 0);
}

#[test]
fn gen_stops_when_the_reader_goes_away_mid_stream() {
    // `proof gen --records 100000000 | head -1`: one line read, then the pipe closes.
    // Writing a hundred million records takes gen about 15 minutes of CPU; stopping
    // at the closed pipe takes it about a second (a first pass over the records'
    // spacings comes before the first line). The bound below is for a hang, not a
    // speed check: two minutes, after which the child is killed and the test fails.
    let mut child = Command::new(env!("CARGO_BIN_EXE_proof"))
        .args(["gen", "--records", "100000000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // The reader reads one line and goes away (its end of the pipe closes).
    let reader = std::thread::spawn(move || {
        let mut first = String::new();
        BufReader::new(stdout).read_line(&mut first).map(|_| first)
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("proof gen was still running two minutes after it started");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let first = reader.join().unwrap().unwrap();
    assert!(first.starts_with("{\"ts\":"), "{first}");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn hash_write_updates_every_file_even_when_stdout_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = ["demo.v1.ir.json", "demo.v2.ir.json"]
        .iter()
        .map(|f| {
            let to = dir.path().join(f);
            std::fs::copy(root().join("fixtures/conformance").join(f), &to).unwrap();
            to.display().to_string()
        })
        .collect();
    let mut args = vec!["hash", "--write"];
    args.extend(files.iter().map(String::as_str));
    assert_quiet(&args, 0);
    for f in &files {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
        assert!(
            v["ir_hash"].as_str().unwrap().starts_with("sha3-256:"),
            "{f} has no ir_hash"
        );
    }
}

#[test]
fn a_closed_standard_error_keeps_every_exit_code() {
    // std's eprintln! panics on EPIPE, and a panic exits 101: the gate's breach (1),
    // an error (2) and a diff regression would all have reached CI as 101.
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("run");
    let out_flag = ["--out", out_dir.to_str().unwrap()];
    // Not --quiet: the verdict line and "reports in …" go to the closed stderr.
    let breach = conformance_replay("50", &out_flag);
    assert_eq!(with_closed_stderr(&strs(&breach)).status.code(), Some(1));
    assert!(out_dir.join("report.json").is_file());
    let pass = conformance_replay("0", &out_flag);
    assert_eq!(with_closed_stderr(&strs(&pass)).status.code(), Some(0));
    let missing = with_closed_stderr(&["replay", "no-such-file.jsonl", "--policy", "lksg.v1"]);
    assert_eq!(missing.status.code(), Some(2));
    let bad_flag = with_closed_stderr(&["replay", "--rollout", "101"]);
    assert_eq!(bad_flag.status.code(), Some(2));
}
