//! Interrupting `proof replay --out DIR` (SIGINT, SIGTERM) never leaves DIR torn: it
//! holds the previous complete outputs or the new complete ones, and no `.proof-*.tmp`.
//! SIGKILL cannot be deferred, but the swap is one step: the old or new set, and the
//! next run clears what the killed one left; strace kills a run at each of its
//! file-system steps in turn to show it. Two runs into one DIR never mix: the
//! second exits 2 at once, naming the first's pid.
//!
//! The input is written by the test (300 000 JSONL records, about 60 MB). The signal is
//! sent when `/proc/PID/io` shows the process has read a given share of the input, or
//! when a `.proof-*.tmp` appears in DIR, so the kill points are mid-read, at the end of
//! reading, while the report is built and while it is written; no wall-clock limit is
//! involved.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const RECORDS: usize = 300_000;

fn conformance(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/conformance")
        .join(name)
}

fn write_log(path: &Path, n: usize) -> u64 {
    let f = std::fs::File::create(path).unwrap();
    let mut w = std::io::BufWriter::new(f);
    for i in 0..n {
        // Varied contexts so both paths and several windows are exercised.
        writeln!(
            w,
            r#"{{"ts":{},"request_id":"req-{i}","policy_id":"demo.v1","context":{{"supplier_hashes":["0xa4"{}],"ubo_hashes":["0xu0"],"audit":{{"score":{},"dates":["2026-03-01"]}},"countries":["CN","FR"]}}}}"#,
            1_793_866_200_000u64 + (i as u64) * 10,
            if i % 97 == 0 { r#","0xbad1""# } else { "" },
            i % 100
        )
        .unwrap();
    }
    w.flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

fn replay(log: &Path, out: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_proof"));
    c.arg("replay")
        .arg(log)
        .arg("--ir")
        .arg(conformance("demo.v1.ir.json"))
        .arg("--candidate-ir")
        .arg(conformance("demo.v2.ir.json"))
        .arg("--list")
        .arg(format!(
            "sanctions={}",
            conformance("sanctions.csv").display()
        ))
        .arg("--list")
        .arg(format!(
            "high_risk={}",
            conformance("high_risk.txt").display()
        ))
        .arg("--threads")
        .arg("2")
        .arg("-q")
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

type Snapshot = Vec<(String, Vec<u8>)>;

fn snapshot(dir: &Path) -> Snapshot {
    let mut v: Snapshot = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// The run-dependent parts (latency and wall-clock timings) removed, so two complete
/// outputs of the same input compare equal.
fn normalise(name: &str, bytes: &[u8]) -> Vec<u8> {
    match name {
        "report.json" => {
            let mut v: serde_json::Value = serde_json::from_slice(bytes)
                .unwrap_or_else(|e| panic!("report.json is not whole JSON: {e}"));
            v.as_object_mut().unwrap().remove("latency");
            serde_json::to_vec(&v).unwrap()
        }
        "metrics.om" => {
            let text = String::from_utf8(bytes.to_vec()).unwrap();
            assert!(text.ends_with("# EOF\n"), "metrics.om is cut short");
            text.lines()
                .filter(|l| !l.contains("adapt_selection_latency_seconds"))
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes()
        }
        _ => bytes.to_vec(),
    }
}

fn same_set(a: &Snapshot, b: &Snapshot) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((n1, b1), (n2, b2))| n1 == n2 && normalise(n1, b1) == normalise(n2, b2))
}

fn bytes_read(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .and_then(|n| n.trim().parse().ok())
}

/// Waits until the child has read `threshold` bytes (or has exited).
fn wait_for_read(child: &mut Child, threshold: u64) {
    loop {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        if bytes_read(child.id()).is_some_and(|n| n >= threshold) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Entries beside `out` that belong to it: its lock file and temporaries
/// (`.NAME.proof.lock`, `.NAME.proof-*.tmp`).
fn beside(out: &Path) -> Vec<String> {
    let prefix = format!(".{}.proof", out.file_name().unwrap().to_string_lossy());
    let mut v: Vec<String> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    v.sort();
    v
}

/// Waits until the new set's directory shows up beside `out` (writing has begun) or the
/// child ends.
fn wait_for_temp_file(child: &mut Child, out: &Path) {
    loop {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        let writing = beside(out)
            .iter()
            .any(|n| n.ends_with(".tmp") && !n.contains("probe"));
        if writing {
            return;
        }
        std::thread::yield_now();
    }
}

/// Waits until `out`'s lock file exists (the run holds the directory) or the child ends.
fn wait_for_lock(child: &mut Child, out: &Path) {
    loop {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        if beside(out).iter().any(|n| n.ends_with(".lock")) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn interrupted_replay_leaves_old_or_new_outputs_never_torn() {
    let tmp = tempfile::tempdir().unwrap();
    let small = tmp.path().join("small.jsonl");
    let large = tmp.path().join("large.jsonl");
    write_log(&small, 1000);
    let size = write_log(&large, RECORDS);

    // The previous outputs, and what a complete run on the large input writes.
    let old_dir = tmp.path().join("old");
    let st = replay(&small, &old_dir).status().unwrap();
    assert!(st.code().is_some_and(|c| c <= 1), "{st:?}");
    let old = snapshot(&old_dir);
    assert_eq!(old.len(), 7, "seven output files");
    let new_dir = tmp.path().join("new");
    let st = replay(&large, &new_dir).status().unwrap();
    assert!(st.code().is_some_and(|c| c <= 1), "{st:?}");
    let new = snapshot(&new_dir);
    assert!(
        !same_set(&old, &new),
        "old and new outputs must be told apart"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&new.iter().find(|(n, _)| n == "report.json").unwrap().1).unwrap();
    assert_eq!(report["records"]["read"], RECORDS);

    let mut interrupted_before_writing = 0;
    let mut signalled = 0;
    // Shares of the input read before the signal: mid-read ... end of reading.
    for (k, share) in [0.05, 0.3, 0.6, 0.9, 1.0, 1.0, 1.0, 1.0].iter().enumerate() {
        for sig in ["INT", "TERM"] {
            let out = tmp.path().join(format!("out-{k}-{sig}"));
            copy_dir(&old_dir, &out);
            let mut child = replay(&large, &out).spawn().unwrap();
            wait_for_read(&mut child, (size as f64 * share) as u64);
            // At share 1.0, some runs are signalled later still: two after a short
            // pause (the report is being built), two as soon as a temp file appears in
            // DIR (the outputs are being written).
            if *share >= 1.0 && k == 5 {
                std::thread::sleep(std::time::Duration::from_millis(30));
            }
            if *share >= 1.0 && k >= 6 {
                wait_for_temp_file(&mut child, &out);
            }
            let _ = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(child.id().to_string())
                .status()
                .unwrap();
            let output = child.wait_with_output().unwrap();
            let code = output.status.code();
            let stderr = String::from_utf8_lossy(&output.stderr);
            let after = snapshot(&out);
            let leftovers: Vec<_> = after
                .iter()
                .filter(|(n, _)| n.starts_with(".proof-") || n.ends_with(".tmp"))
                .map(|(n, _)| n.clone())
                .collect();
            assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
            assert_eq!(
                beside(&out),
                Vec::<String>::new(),
                "lock or temporaries left"
            );
            let is_old = same_set(&after, &old);
            let is_new = same_set(&after, &new);
            assert!(
                is_old || is_new,
                "share {share} SIG{sig}: the output set is neither the old nor the new one \
                 (exit {code:?}, stderr {stderr})"
            );
            let expected_signal_code = if sig == "INT" { 130 } else { 143 };
            match code {
                Some(c) if c == expected_signal_code => {
                    signalled += 1;
                    assert!(stderr.contains("interrupted by signal"), "{stderr}");
                    if is_old {
                        interrupted_before_writing += 1;
                    }
                }
                // The run finished before the signal arrived: the new set.
                Some(0 | 1) => assert!(is_new, "finished run must leave the new outputs"),
                other => panic!("unexpected exit {other:?}: {stderr}"),
            }
        }
    }
    eprintln!(
        "{signalled} of 16 runs stopped by the signal, {interrupted_before_writing} before \
         writing, {} after writing began",
        signalled - interrupted_before_writing
    );
    // The mid-read signals (share < 1) must have interrupted a running replay.
    assert!(
        interrupted_before_writing >= 8,
        "only {interrupted_before_writing} of {signalled} signalled runs stopped before writing"
    );
}

/// Writes the two logs and the reference outputs (old: 1 000 records, new: the large
/// input) once for the tests below.
fn fixtures(tmp: &Path) -> (PathBuf, PathBuf, Snapshot, Snapshot) {
    let small = tmp.join("small.jsonl");
    let large = tmp.join("large.jsonl");
    write_log(&small, 1000);
    write_log(&large, RECORDS);
    let old_dir = tmp.join("old");
    let st = replay(&small, &old_dir).status().unwrap();
    assert!(st.code().is_some_and(|c| c <= 1), "{st:?}");
    let new_dir = tmp.join("new");
    let st = replay(&large, &new_dir).status().unwrap();
    assert!(st.code().is_some_and(|c| c <= 1), "{st:?}");
    (small, large, snapshot(&old_dir), snapshot(&new_dir))
}

#[test]
fn sigkill_while_writing_leaves_old_or_new_set_and_the_next_run_clears_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let (small, large, old, new) = fixtures(tmp.path());
    let mut killed_mid_write = 0;
    for k in 0..4 {
        let out = tmp.path().join(format!("out-kill-{k}"));
        copy_dir(&tmp.path().join("old"), &out);
        let mut child = replay(&large, &out).spawn().unwrap();
        wait_for_temp_file(&mut child, &out);
        // Later and later into the write: at once, then after 0, 1, 2 ms.
        if k > 0 {
            std::thread::sleep(std::time::Duration::from_micros(500 * (k as u64 - 1)));
        }
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        let after = snapshot(&out);
        assert!(
            same_set(&after, &old) || same_set(&after, &new),
            "SIGKILL {k}: the output set is neither the old nor the new one ({status:?})"
        );
        if status.code().is_none() {
            killed_mid_write += 1;
        }
        // The next run (the small input) clears the killed run's lock and temporaries.
        let st = replay(&small, &out).status().unwrap();
        assert!(st.code().is_some_and(|c| c <= 1), "{st:?}");
        assert!(
            same_set(&snapshot(&out), &old),
            "the next run writes its set"
        );
        assert_eq!(
            beside(&out),
            Vec::<String>::new(),
            "leftovers after the next run"
        );
    }
    eprintln!("{killed_mid_write} of 4 runs killed while writing");
    assert!(killed_mid_write >= 1, "no run was killed while it wrote");
}

/// SIGKILL at every file-system step of a run, one at a time and in order (strace
/// injects the signal at the n-th `mkdir`, `openat`, `write`, `fsync`, `renameat2`,
/// `unlink` or `rmdir` of any thread), with the directory swap and again with the
/// two-rename fallback (`renameat2` refused, and `rename` among the kill points): the
/// directory holds the old set or the new one, nothing more, and the next run clears
/// what the killed one left. Needs strace (Debian
/// package `strace`, installed by scripts/test.sh).
#[test]
fn sigkill_at_every_file_system_step_leaves_one_whole_set() {
    let strace = std::env::var("STRACE").unwrap_or_else(|_| "strace".into());
    assert!(
        Command::new(&strace)
            .arg("-V")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        "strace not found (Debian package strace; scripts/test.sh installs it, or set STRACE)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let (small, large) = (
        tmp.path().join("small.jsonl"),
        tmp.path().join("large.jsonl"),
    );
    write_log(&small, 200);
    write_log(&large, 2000);
    let old_dir = tmp.path().join("old");
    assert!(replay(&small, &old_dir).status().unwrap().success());
    let new_dir = tmp.path().join("new");
    assert!(replay(&large, &new_dir).status().unwrap().success());
    let (old, new) = (snapshot(&old_dir), snapshot(&new_dir));
    assert!(!same_set(&old, &new));

    let (mut kills, mut missing) = (0, 0);
    // Then again where the directory swap is not available (`renameat2` refused, as on
    // a file system without RENAME_EXCHANGE): the two-rename fallback.
    let exchange = [
        "mkdir",
        "openat",
        "write",
        "fsync",
        "renameat2",
        "unlink",
        "rmdir",
    ];
    let fallback = [
        "mkdir", "openat", "write", "fsync", "rename", "unlink", "rmdir",
    ];
    let passes = (exchange.iter().map(|c| (*c, false))).chain(fallback.iter().map(|c| (*c, true)));
    for (call, no_exchange) in passes {
        let at = format!("SIGKILL at {call} #N (no exchange: {no_exchange})");
        let mut finished = false;
        for n in 1..=200 {
            let at = at.replace('N', &n.to_string());
            let out = tmp.path().join(format!("out-{call}-{no_exchange}-{n}"));
            copy_dir(&old_dir, &out);
            let run = replay(&large, &out);
            let mut traced = Command::new(&strace);
            traced.args(["-f", "-o", "/dev/null"]);
            if no_exchange {
                traced.args(["-e", "inject=renameat2:error=EINVAL"]);
            }
            traced
                .arg("-e")
                .arg(format!("inject={call}:signal=SIGKILL:when={n}"))
                .arg(run.get_program())
                .args(run.get_args())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let status = traced.status().unwrap();
            if no_exchange && !out.exists() {
                // Killed between the fallback's two renames: the directory is missing
                // (never mixed) and the old set lies whole beside it, for the next run
                // to restore.
                missing += 1;
                let kept = beside(&out)
                    .into_iter()
                    .find(|n| n.ends_with(".old.tmp"))
                    .unwrap_or_else(|| panic!("{at}: no old set beside the directory"));
                let kept = snapshot(&out.with_file_name(kept));
                assert!(
                    same_set(&kept, &old),
                    "{at}: the old set beside is not whole"
                );
            } else {
                let after = snapshot(&out);
                let names: Vec<&String> = after.iter().map(|(n, _)| n).collect();
                assert!(
                    same_set(&after, &old) || same_set(&after, &new),
                    "{at}: the directory holds neither the old set nor the new one: \
                     {names:?} ({status:?})"
                );
            }
            let st = replay(&small, &out).status().unwrap();
            assert!(st.success(), "the run after {at}: {st:?}");
            assert!(same_set(&snapshot(&out), &old), "after {at}");
            assert_eq!(beside(&out), Vec::<String>::new(), "after {at}");
            std::fs::remove_dir_all(&out).unwrap();
            if status.success() {
                finished = true;
                break;
            }
            kills += 1;
        }
        assert!(finished, "{at}: still killed at its 200th {call}");
    }
    eprintln!(
        "{kills} runs killed, each at another step; {missing} between the fallback's \
         two renames"
    );
    assert_eq!(
        missing, 1,
        "one step lies between the fallback's two renames"
    );
    assert!(kills >= 80, "only {kills} kill points");
}

#[test]
fn two_replays_into_one_out_never_mix_the_second_exits_2_naming_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let (small, large, old, new) = fixtures(tmp.path());
    let out = tmp.path().join("shared-out");
    // The first holds the directory; the second comes while it runs.
    let mut first = replay(&large, &out).spawn().unwrap();
    wait_for_lock(&mut first, &out);
    let second = replay(&small, &out).output().unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "another proof run is writing there (pid {}",
            first.id()
        )),
        "{err}"
    );
    let st = first.wait().unwrap();
    assert!(st.code().is_some_and(|c| c <= 1), "{st:?}");
    assert!(same_set(&snapshot(&out), &new));
    // Started together, any number of times: one whole set, from one of the two runs.
    for k in 0..6 {
        let out = tmp.path().join(format!("race-{k}"));
        let (a, b) = if k % 2 == 0 {
            (&small, &large)
        } else {
            (&large, &small)
        };
        let ca = replay(a, &out).spawn().unwrap();
        let cb = replay(b, &out).spawn().unwrap();
        let (oa, ob) = (
            ca.wait_with_output().unwrap(),
            cb.wait_with_output().unwrap(),
        );
        let codes = (oa.status.code(), ob.status.code());
        let after = snapshot(&out);
        assert!(
            same_set(&after, &old) || same_set(&after, &new),
            "race {k}: a mix of two runs (exits {codes:?})"
        );
        for o in [&oa, &ob] {
            if o.status.code() == Some(2) {
                let e = String::from_utf8_lossy(&o.stderr);
                assert!(
                    e.contains("another proof run is writing there (pid "),
                    "{e}"
                );
            } else {
                assert!(o.status.code().is_some_and(|c| c <= 1), "{codes:?}");
            }
        }
        assert_eq!(beside(&out), Vec::<String>::new());
    }
}
