//! The progress bar: drawn on stderr when it is a terminal, with bytes against the
//! known size and records/s; absent when stderr is a pipe or with `--quiet`. The
//! terminal is a real pseudo-terminal from util-linux's `script`.

mod common;

use std::process::Command;

use common::{root, text};

/// Runs the README's main job with stderr on a pseudo-terminal (or not) and returns
/// everything written to the terminal (or to the stderr pipe).
fn run(tty: bool, quiet: bool) -> String {
    let out = tempfile::tempdir().unwrap();
    let cmd = format!(
        "{} replay --scenario fixtures/scenarios/lksg_v2_canary.yaml --out {}{}",
        env!("CARGO_BIN_EXE_proof"),
        out.path().display(),
        if quiet { " --quiet" } else { "" }
    );
    let o = if tty {
        Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .current_dir(root())
            .env("TERM", "xterm")
            .output()
            .expect("util-linux script runs")
    } else {
        Command::new("sh")
            .args(["-c", &cmd])
            .current_dir(root())
            .output()
            .expect("sh runs")
    };
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(out.path().join("report.json").exists());
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn bar_on_a_terminal_shows_bytes_of_the_known_size_and_records_per_second() {
    let screen = run(true, false);
    // 2.63 MiB is the size of fixtures/logs/lksg_day.jsonl.zst: the bar counts the
    // bytes read from disk against the file's size.
    assert!(screen.contains("/2.63 MiB"), "{screen}");
    assert!(screen.contains("records/s"), "{screen}");
    assert!(screen.contains("gate passed at 10 %"), "{screen}");
}

#[test]
fn no_bar_when_stderr_is_a_pipe_or_with_quiet() {
    let piped = run(false, false);
    assert!(
        !piped.contains("records/s") && !piped.contains("MiB"),
        "{piped}"
    );
    assert!(piped.contains("gate passed at 10 %"), "{piped}");
    let quiet = run(true, true);
    assert!(
        !quiet.contains("records/s") && !quiet.contains("MiB"),
        "{quiet}"
    );
}
