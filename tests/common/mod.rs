//! Helpers shared by the integration tests: each test file that needs them says
//! `mod common;`. Not every file uses every helper.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

/// The crate root (where Cargo.toml is).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// fixtures/conformance: the vendored copy of shared/conformance.
pub fn conformance() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/conformance")
}

/// Exit status, stdout and stderr of a run, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The flags of the first command line of fixtures/conformance/README.md (after
/// `proof replay traffic.jsonl`): candidate demo.v2, basic selector, rollout 50 %.
/// Expected: exit 1, expected_v2_basic_r50.json.
pub const CASE_V2_BASIC_R50: &[&str] = &[
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
    "3",
];

/// The flags of the second command line: demo.v1 with the weighted selector,
/// rollout 25 %, 10-minute windows. Expected: exit 3, expected_v1_weighted_r25.json.
pub const CASE_V1_WEIGHTED_R25: &[&str] = &[
    "--ir",
    "demo.v1.ir.json",
    "--selector",
    "weighted",
    "--weights",
    "weights.yaml",
    "--list",
    "sanctions=sanctions.csv",
    "--list",
    "high_risk=high_risk.txt",
    "--rollout",
    "25",
    "--drift-max",
    "0.1",
    "--window",
    "10m",
];

/// The fourth command line (SPEC §11, §3), over traffic_verdicts.jsonl: recorded
/// verdicts checked, buckets keyed by `audit.score`. Expected: exit 0,
/// expected_v2_fidelity_score_r25.json.
#[allow(dead_code)] // not every test uses it
pub const CASE_V2_FIDELITY_SCORE_R25: &[&str] = &[
    "--ir",
    "demo.v1.ir.json",
    "--candidate-ir",
    "demo.v2.ir.json",
    "--list",
    "sanctions=sanctions.csv",
    "--list",
    "high_risk=high_risk.txt",
    "--rollout",
    "25",
    "--drift-max",
    "0.1",
    "--window",
    "10m",
    "--max-rejects",
    "4",
    "--bucket-key",
    "audit.score",
    "--max-unfaithful-ratio",
    "0.1",
];

/// The third command line (SPEC §8, §9): demo.v1 → demo.v2, 1-minute windows,
/// drift-max 0.05, Wilson bounds at 0.6 and plan.yaml from every window start.
/// Expected: exit 1, expected_v2_plan_conf60.json.
pub const CASE_V2_PLAN_CONF60: &[&str] = &[
    "--ir",
    "demo.v1.ir.json",
    "--candidate-ir",
    "demo.v2.ir.json",
    "--list",
    "sanctions=sanctions.csv",
    "--list",
    "high_risk=high_risk.txt",
    "--window",
    "1m",
    "--drift-max",
    "0.05",
    "--confidence",
    "0.6",
    "--max-rejects",
    "3",
    "--plan",
    "plan.yaml",
];

/// The three reference lists lksg.v1 and lksg.v2 read, bound as `replay` binds them
/// (paths relative to the crate root).
pub const LKSG_LISTS: [&str; 6] = [
    "--list",
    "sanctions=fixtures/lists/sanctions.csv",
    "--list",
    "ubo_watchlist=fixtures/lists/ubo_watchlist.txt",
    "--list",
    "high_risk=fixtures/lists/high_risk_countries.txt",
];

/// The conformance policies and lists, demo.v1 → demo.v2 (the first eight flags of the
/// first and third command lines).
pub const CONF_POLICIES: &[&str] = &[
    "--ir",
    "demo.v1.ir.json",
    "--candidate-ir",
    "demo.v2.ir.json",
    "--list",
    "sanctions=sanctions.csv",
    "--list",
    "high_risk=high_risk.txt",
];

/// Compares `got` with tests/golden/NAME; `UPDATE_GOLDEN=1` rewrites the file instead
/// (review the diff by eye before committing it).
pub fn golden(name: &str, got: &[u8]) {
    let path = root().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run UPDATE_GOLDEN=1 cargo test --release and review it",
            path.display()
        )
    });
    assert!(
        want == got,
        "{name} differs from {}; if the change is intended, rerun with UPDATE_GOLDEN=1 and review \
         the diff.\n--- got ---\n{}",
        path.display(),
        String::from_utf8_lossy(got)
    );
}

/// `proof replay` of the conformance traffic, demo.v1 → demo.v2, with no `--list`:
/// every rule reading a list errors (missing_var) on both paths; reports into `out`.
pub fn replay_without_lists(out: &Path) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_proof"))
        .current_dir(conformance())
        .args([
            "replay",
            "traffic.jsonl",
            "--ir",
            "demo.v1.ir.json",
            "--candidate-ir",
            "demo.v2.ir.json",
        ])
        .args(["--max-rejects", "3", "--quiet", "--out"])
        .arg(out)
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap()
}
