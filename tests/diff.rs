//! `proof diff` end to end, running the real binary on replays it makes itself from
//! fixtures/diff (numbers hand-checked in fixtures/diff/README.md): Markdown and JSON
//! compared with tests/golden/diff_* (`UPDATE_GOLDEN=1 cargo test --release --test diff`
//! rewrites them; review the diff), each limit tripping alone, no regression,
//! incompatible and bad reports (exit 2, nothing written), NEW's exit code 3, the
//! optional SPEC §8/§9 fields, a fidelity change (SPEC §11), and the CI example of docs/ci.md run as written.

mod common;

use common::{root, text};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BASE_URL: &str = "https://ci.example/runs/100";
const NEW_URL: &str = "https://ci.example/runs/101";

/// A temp dir whose `fixtures` is the repository's, so scenario paths (and the paths
/// the reports record) are the same as in a checkout.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(root().join("fixtures"), dir.path().join("fixtures")).unwrap();
        Work { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_proof"));
        c.current_dir(self.dir.path())
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("NO_COLOR");
        c
    }

    /// Replays `fixtures/diff/<scenario>.yaml` into `out`; `extra` flags override it.
    fn replay(&self, scenario: &str, out: &str, extra: &[&str]) -> Output {
        let o = self
            .cmd()
            .arg("replay")
            .arg("--scenario")
            .arg(format!("fixtures/diff/{scenario}.yaml"))
            .args(["--quiet", "--out", out])
            .args(extra)
            .output()
            .unwrap();
        assert!(matches!(o.status.code(), Some(1 | 3)), "{}", text(&o));
        o
    }

    fn diff(&self, args: &[&str]) -> Output {
        self.cmd().arg("diff").args(args).output().unwrap()
    }

    /// main (v2) and pr (v3), the pair of fixtures/diff/README.md.
    fn main_and_pr() -> Self {
        let w = Work::new();
        w.replay("main", "proof-main", &[]);
        w.replay("pr", "proof-pr", &[]);
        w
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

use common::golden;

#[test]
fn markdown_and_json_match_the_golden_files() {
    let w = Work::main_and_pr();
    let o = w.diff(&[
        "proof-main",
        "proof-pr",
        "--format",
        "markdown",
        "--base-url",
        BASE_URL,
        "--new-url",
        NEW_URL,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    golden("diff_v2_v3.md", &o.stdout);
    // The verdict goes to stderr when stdout carries another format.
    assert!(
        stderr(&o).contains(
            "proof: regression: --max-safe-decrease 0: max safe rollout fell by 5 points (17 % → 12 %)"
        ),
        "{}",
        text(&o)
    );

    let o = w.diff(&["proof-main", "proof-pr", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    golden("diff_v2_v3.json", &o.stdout);
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    // The hand-checked figures of fixtures/diff/README.md.
    assert_eq!(j["schema"], "proof.diff/v1");
    assert_eq!(
        j["headline"],
        "max safe rollout 17 % → 12 %: regression (--max-safe-decrease 0)"
    );
    assert_eq!(j["gate"]["base"]["max_safe_rollout_percent"], 17);
    assert_eq!(j["gate"]["new"]["max_safe_rollout_percent"], 12);
    assert_eq!(j["gate"]["max_safe_change"], -5);
    let gate = j["levels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["gate"] == true)
        .unwrap();
    assert_eq!(gate["rollout_percent"], 100);
    assert_eq!(gate["base"]["drift_events"], 3);
    assert_eq!(gate["new"]["drift_events"], 1);
    assert_eq!(gate["new"]["worst_window"]["start"], "2026-11-05T08:00:00Z");
    assert_eq!(gate["new"]["worst_window"]["requests"], 4);
    // 2 of 4 (08:00) and 1 of 2 (08:05) tie at 50 %: the earlier window.
    assert_eq!(
        gate["base"]["worst_window"]["start"],
        "2026-11-05T08:00:00Z"
    );
    assert_eq!(gate["base"]["worst_window"]["events"], 2);
    // At 25 % only a2 (bucket 1722, 08:05) counts.
    assert_eq!(j["levels"][4]["rollout_percent"], 25);
    assert_eq!(
        j["levels"][4]["base"]["worst_window"]["start"],
        "2026-11-05T08:05:00Z"
    );
    let causes = j["drift_by_cause"].as_array().unwrap();
    let cause = |name: &str| causes.iter().find(|c| c["cause"] == name).unwrap();
    assert_eq!(cause("doc_ok")["status"], "gone");
    assert_eq!(cause("amount_ok")["status"], "within_noise");
    let z = cause("amount_ok")["z"].as_f64().unwrap();
    assert!((z - -0.651_338_947_278_929_6).abs() < 1e-12, "{z}");
    assert_eq!(j["inputs"]["differ"], false);
    assert_eq!(j["inputs"]["files_match"], true);
    assert_eq!(j["window"], "5m");
}

#[test]
fn text_output_has_no_colour_when_piped_and_o_writes_the_same_bytes() {
    let w = Work::main_and_pr();
    let o = w.diff(&["proof-main", "proof-pr"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    assert!(!out.contains('\x1b'), "{out}");
    assert!(out.starts_with(
        "proof diff: max safe rollout 17 % → 12 %: regression (--max-safe-decrease 0)\n  \
         --max-safe-decrease 0: max safe rollout fell by 5 points (17 % → 12 %)\n"
    ));
    assert!(
        out.contains("\n 100 %*  3 → 1           42.9 % → 14.3 %"),
        "{out}"
    );
    // Text on stdout already says it: nothing repeated on stderr.
    assert!(o.stderr.is_empty(), "{}", text(&o));
    let o2 = w.diff(&["proof-main", "proof-pr", "-o", "diff.txt"]);
    assert_eq!(o2.status.code(), Some(1), "{}", text(&o2));
    assert!(o2.stdout.is_empty());
    assert_eq!(std::fs::read(w.path("diff.txt")).unwrap(), o.stdout);
}

#[test]
fn max_safe_decrease_trips_alone_and_its_limit_is_inclusive() {
    let w = Work::main_and_pr();
    let o = w.diff(&["proof-main/report.json", "proof-pr", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    let tripped = j["tripped"].as_array().unwrap();
    assert_eq!(tripped.len(), 1, "{tripped:?}");
    assert_eq!(tripped[0]["limit"], "--max-safe-decrease 0");
    // 17 → 12 is a fall of 5 points: allowed at 5, not at 4.
    let o = w.diff(&["proof-main", "proof-pr", "--max-safe-decrease", "5"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = w.diff(&["proof-main", "proof-pr", "--max-safe-decrease", "4"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("--max-safe-decrease 4: max safe rollout fell by 5 points")
    );
}

#[test]
fn max_drift_increase_trips_alone() {
    // The other way round: BASE v3 (1 of 7 drifts), NEW v2 (3 of 7): +2/7 = 0.2857 at 100 %.
    let w = Work::main_and_pr();
    let o = w.diff(&["proof-pr", "proof-main", "--max-drift-increase", "0.28"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with(
            "proof diff: max safe rollout 12 % → 17 %: regression (--max-drift-increase 0.28)\n  \
             --max-drift-increase 0.28: drift ratio at the gate level (100 %) rose by 28.57 points \
             (14.3 % → 42.9 %)\n"
        ),
        "{out}"
    );
    assert_eq!(out.matches("--max-").count(), 2, "{out}");
    let o = w.diff(&["proof-pr", "proof-main", "--max-drift-increase", "0.29"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn fail_on_new_cause_trips_alone() {
    // BASE v3 has only amount_ok; NEW v2 adds doc_ok.
    let w = Work::main_and_pr();
    let o = w.diff(&["proof-pr", "proof-main", "--max-drift-increase", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = w.diff(&[
        "proof-pr",
        "proof-main",
        "--max-drift-increase",
        "1",
        "--fail-on-new-cause",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        j["tripped"],
        serde_json::json!([{
            "limit": "--fail-on-new-cause",
            "message": "drift cause that BASE does not have: doc_ok (1 event)"
        }])
    );
    assert_eq!(
        j["headline"],
        "max safe rollout 12 % → 17 %: regression (--fail-on-new-cause)"
    );
}

#[test]
fn the_same_report_twice_is_no_regression_and_appends_the_step_summary() {
    let w = Work::main_and_pr();
    let summary = w.path("summary.md");
    std::fs::write(&summary, "# earlier step\n").unwrap();
    let o = w
        .cmd()
        .args([
            "diff",
            "proof-main",
            "proof-main",
            "--fail-on-new-cause",
            "--format",
            "json",
        ])
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        j["headline"],
        "max safe rollout unchanged at 17 %: no regression"
    );
    assert_eq!(j["tripped"], serde_json::json!([]));
    assert!(j["settings"].as_array().unwrap().is_empty());
    let md = w
        .diff(&["proof-main", "proof-main", "--format", "markdown"])
        .stdout;
    let got = std::fs::read_to_string(&summary).unwrap();
    assert_eq!(
        got,
        format!("# earlier step\n{}\n", String::from_utf8(md).unwrap())
    );
    assert!(got.contains("## ✅ proof diff: max safe rollout unchanged at 17 %: no regression"));
}

#[test]
fn incompatible_windows_or_levels_exit_2_naming_both_values() {
    let w = Work::main_and_pr();
    w.replay("pr", "pr-10m", &["--window", "10m"]);
    w.replay("pr", "pr-levels", &["--levels", "0,50"]);
    let o = w.diff(&["proof-main", "pr-10m", "-o", "out.md"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let e = stderr(&o);
    assert!(
        e.contains(
            "incompatible reports: window length 5m in BASE proof-main/report.json but 10m in \
             NEW pr-10m/report.json"
        ),
        "{e}"
    );
    assert!(!w.path("out.md").exists());
    let o = w.diff(&["proof-main", "pr-levels"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let e = stderr(&o);
    assert!(
        e.contains("levels 0,1,5,10,25,50,100 in BASE proof-main/report.json but 0,50,100 in NEW"),
        "{e}"
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn bad_reports_exit_2_with_the_path_and_write_nothing() {
    let w = Work::main_and_pr();
    let report = std::fs::read_to_string(w.path("proof-pr/report.json")).unwrap();
    std::fs::create_dir(w.path("empty")).unwrap();
    std::fs::write(
        w.path("v2.json"),
        report.replacen("proof.replay/v1", "proof.replay/v2", 1),
    )
    .unwrap();
    std::fs::write(w.path("cut.json"), &report[..report.len() / 2]).unwrap();
    std::fs::write(w.path("text.json"), "gate passed\n").unwrap();
    let summary = w.path("summary.md");
    for (arg, want) in [
        ("empty", "empty: no report.json in this directory"),
        ("missing", "missing: No such file or directory"),
        (
            "v2.json",
            "v2.json: schema is \"proof.replay/v2\", not \"proof.replay/v1\"",
        ),
        ("cut.json", "cut.json:"),
        ("text.json", "text.json:1:1: expected value"),
    ] {
        for (base, new) in [("proof-main", arg), (arg, "proof-main")] {
            let o = w
                .cmd()
                .args(["diff", base, new, "--format", "markdown", "-o", "out.md"])
                .env("GITHUB_STEP_SUMMARY", &summary)
                .output()
                .unwrap();
            assert_eq!(o.status.code(), Some(2), "{arg}: {}", text(&o));
            let e = stderr(&o);
            assert!(
                e.starts_with("proof: error: ") && e.contains(want),
                "{arg}: {e}"
            );
            assert!(!e.contains("panicked"), "{e}");
            assert!(!w.path("out.md").exists(), "{arg}: -o written");
            assert!(!summary.exists(), "{arg}: step summary written");
        }
    }
    // The truncated file's message says where it ends.
    let o = w.diff(&["proof-main", "cut.json"]);
    assert!(stderr(&o).contains("EOF while parsing"), "{}", text(&o));
}

#[test]
fn new_report_with_exit_code_3_exits_3() {
    let w = Work::main_and_pr();
    let o = w.replay("pr", "pr-rejects", &["--max-rejects", "0"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    // 3 wins over 1 (the max safe rollout still falls 17 → 12).
    let o = w.diff(&["proof-main", "pr-rejects", "--format", "markdown"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(
        md.starts_with("## ⚠️ proof diff: NEW run FAILED \\(its replay exited 3"),
        "{md}"
    );
    assert!(md.contains("> **Exit code 3:**"), "{md}");
    // A BASE that exited 3 is only reported.
    let o = w.diff(&["pr-rejects", "proof-pr"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("setting config.max_rejects: 0 → 5"), "{out}");
}

/// Adds the SPEC §8/§9 fields to a report, as a replay with --confidence and --plan
/// writes them.
fn with_confidence(path: &Path, proven: Value, plan_passed: bool, passed_windows: u64) {
    let mut r: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    r["gate"]["confidence"] = serde_json::json!(0.95);
    r["gate"]["proven_safe_rollout_percent"] = proven;
    for l in r["levels"].as_array_mut().unwrap() {
        l["passed_windows"] = passed_windows.into();
    }
    r["plan"] = serde_json::json!({
        "passed": plan_passed, "steps": [], "failure_limit": 1, "start": "every", "runs": [],
        "summary": {"runs": 3, "promoted": if plan_passed {3} else {1},
                    "rolled_back": if plan_passed {0} else {2}, "incomplete": 0,
                    "rolled_back_by_step": [], "impact_events_max": 0, "impact_events_median": 0}
    });
    std::fs::write(path, serde_json::to_vec(&r).unwrap()).unwrap();
}

#[test]
fn proven_safe_plan_and_passed_windows_are_compared_when_present() {
    let w = Work::main_and_pr();
    // The same replay twice: only the optional fields differ.
    std::fs::create_dir(w.path("b")).unwrap();
    std::fs::create_dir(w.path("n")).unwrap();
    std::fs::copy(w.path("proof-main/report.json"), w.path("b/report.json")).unwrap();
    std::fs::copy(w.path("proof-main/report.json"), w.path("n/report.json")).unwrap();
    with_confidence(&w.path("b/report.json"), 8.into(), true, 3);
    with_confidence(&w.path("n/report.json"), Value::Null, false, 2);
    let o = w.diff(&["b", "n", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        j["tripped"],
        serde_json::json!([{
            "limit": "--max-safe-decrease 0",
            "message": "proven safe rollout fell from 8 % to none"
        }])
    );
    assert_eq!(j["gate"]["base"]["proven_safe_rollout_percent"], 8);
    assert_eq!(j["gate"]["new"]["proven_safe_rollout_percent"], Value::Null);
    assert_eq!(j["plan"]["base"]["passed"], true);
    assert_eq!(j["plan"]["new"]["rolled_back"], 2);
    assert_eq!(j["levels"][0]["base"]["passed_windows"], 3);
    assert_eq!(j["levels"][0]["new"]["passed_windows"], 2);
    let md = String::from_utf8(w.diff(&["b", "n", "--format", "markdown"]).stdout).unwrap();
    assert!(
        md.contains("| Proven safe rollout (confidence) | 8 % (0.95) | none (0.95) |"),
        "{md}"
    );
    assert!(
        md.contains(
            "| Plan | passed: 3 of 3 runs promoted, 0 rolled back, 0 incomplete | FAILED: 1 of 3 \
             runs promoted, 2 rolled back, 0 incomplete |"
        ),
        "{md}"
    );
    assert!(md.contains("| Passed windows |"), "{md}");
    assert!(md.contains("| 3 → 2 ↓ |\n"), "{md}");
    // Only one side has them: loaded, and the level figures still compare.
    let o = w.diff(&["proof-main", "n", "--max-safe-decrease", "0"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn bad_urls_are_usage_errors() {
    let w = Work::main_and_pr();
    for url in [
        "ftp://x/y",
        "https://",
        "https://a b",
        "javascript:alert(1)",
    ] {
        let o = w.diff(&["proof-main", "proof-pr", "--base-url", url]);
        assert_eq!(o.status.code(), Some(2), "{url}: {}", text(&o));
        assert!(o.stdout.is_empty());
    }
}

/// The shell block of docs/ci.md between the ci-example markers.
fn ci_example() -> String {
    let doc = std::fs::read_to_string(root().join("docs/ci.md")).unwrap();
    let start = doc
        .find("<!-- ci-example:begin -->")
        .expect("no begin marker");
    let end = doc.find("<!-- ci-example:end -->").expect("no end marker");
    let block = &doc[start..end];
    let body = block
        .split_once("```sh\n")
        .and_then(|(_, b)| b.rsplit_once("```"))
        .map(|(b, _)| b)
        .expect("no sh block");
    body.to_string()
}

#[test]
fn the_ci_example_of_docs_runs_as_written() {
    let w = Work::new();
    let bin = Path::new(env!("CARGO_BIN_EXE_proof"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(bin).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let summary = w.path("summary.md");
    let o = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &ci_example()])
        .current_dir(w.dir.path())
        .env("PATH", path)
        .env("BASE_URL", BASE_URL)
        .env("NEW_URL", NEW_URL)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    // The bundled pull request lowers the max safe rollout from 17 % to 12 %.
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stderr(&o).contains(
            "proof: diff: max safe rollout 17 % → 12 %: regression (--max-safe-decrease 0)"
        ),
        "{}",
        text(&o)
    );
    let comment = std::fs::read_to_string(w.path("proof-diff.md")).unwrap();
    // The comment is the golden one (same replays, same links; the other limits it
    // sets do not trip), and the job summary got it too.
    let direct = w.diff(&[
        "proof-main",
        "proof-pr",
        "--format",
        "markdown",
        "--base-url",
        BASE_URL,
        "--new-url",
        NEW_URL,
    ]);
    assert_eq!(comment.as_bytes(), direct.stdout.as_slice());
    assert!(comment.contains(&format!("[report.html]({BASE_URL})")));
    // Both replays appended their report.md first.
    let got = std::fs::read_to_string(&summary).unwrap();
    assert!(
        got.ends_with(&format!("report.html</sub>\n\n{comment}\n")),
        "{got}"
    );
    assert_eq!(got.matches("## ❌ proof replay: ").count(), 2, "{got}");
    for f in ["proof-main/report.html", "proof-pr/report.html"] {
        assert!(w.path(f).is_file(), "{f}");
    }
}

#[test]
fn text_is_coloured_on_a_terminal_unless_no_color_is_set() {
    // A real pseudo-terminal from util-linux's `script` (as tests/progress.rs does).
    let w = Work::main_and_pr();
    let run = |no_color: Option<&str>| {
        let cmd = format!("{} diff proof-main proof-pr", env!("CARGO_BIN_EXE_proof"));
        let mut c = Command::new("script");
        c.args(["-qec", &cmd, "/dev/null"])
            .current_dir(w.dir.path())
            .env("TERM", "xterm")
            .env_remove("NO_COLOR")
            .env_remove("GITHUB_STEP_SUMMARY");
        if let Some(v) = no_color {
            c.env("NO_COLOR", v);
        }
        let o = c.output().expect("util-linux script runs");
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let screen = run(None);
    assert!(
        screen.contains("\x1b[1m\x1b[31mproof diff: max safe rollout 17 % → 12 %"),
        "{screen:?}"
    );
    assert!(
        screen.contains("\x1b[31m--max-safe-decrease 0: max safe rollout fell by 5 points"),
        "{screen:?}"
    );
    let plain = run(Some("1"));
    assert!(!plain.contains('\x1b'), "{plain:?}");
    assert!(
        plain.contains("proof diff: max safe rollout 17 % → 12 %"),
        "{plain:?}"
    );
    // NO_COLOR= (empty) does not turn colour off (no-color.org).
    assert!(run(Some("")).contains("\x1b[31m"));
}

/// The fidelity command line of fixtures/conformance (SPEC §11) into `out`, with `extra`.
fn replay_fidelity(out: &Path, extra: &[&str]) -> Value {
    let o = Command::new(env!("CARGO_BIN_EXE_proof"))
        .current_dir(common::conformance())
        .args(["replay", "traffic_verdicts.jsonl", "--quiet"])
        .args(common::CASE_V2_FIDELITY_SCORE_R25)
        .args(extra)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(matches!(o.status.code(), Some(0 | 3)), "{}", text(&o));
    serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap()
}

#[test]
fn a_fidelity_change_between_two_replays_is_shown() {
    // NEW replays the same records with an empty sanctions list: the records production
    // denied for a sanctioned supplier now replay otherwise, so fewer are reproduced.
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("none.csv");
    std::fs::write(&empty, "supplier_hash\n").unwrap();
    let (b, n) = (dir.path().join("base"), dir.path().join("new"));
    let rb = replay_fidelity(&b, &[]);
    let rn = replay_fidelity(&n, &["--list", &format!("sanctions={}", empty.display())]);
    let (fb, fnew) = (&rb["fidelity"], &rn["fidelity"]);
    assert_eq!(
        (fb["faithful"].as_u64(), fb["checked"].as_u64()),
        (Some(37), Some(39))
    );
    // 15 records name a sanctioned supplier; of the 14 production denied, 7 pass every
    // other rule and now replay ok (req-0017, fail->ok before, still is; req-0004 stays
    // ok->fail on another rule): 9 unfaithful.
    assert_eq!(fnew["unfaithful"], 9, "{fnew}");
    assert_eq!(
        fnew["by_kind"],
        serde_json::json!({"fail->ok": 8, "ok->fail": 1})
    );
    let o = Command::new(env!("CARGO_BIN_EXE_proof"))
        .arg("diff")
        .arg(&b)
        .arg(&n)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let d: Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in ["checked", "faithful", "unfaithful", "by_kind"] {
        assert_eq!(d["fidelity"]["base"][key], fb[key], "{key}");
        assert_eq!(d["fidelity"]["new"][key], fnew[key], "{key}");
    }
    let o = Command::new(env!("CARGO_BIN_EXE_proof"))
        .arg("diff")
        .arg(&b)
        .arg(&n)
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(
        t.contains(
            "fidelity: 37 of 39 reproduced, 2 unfaithful (5.13 %) → 30 of 39 reproduced, 9 \
             unfaithful (23.1 %)\nunfaithful (recorded->replayed): fail->ok 1 → 8, ok->fail 1\n"
        ),
        "{t}"
    );
}
