//! report.md and junit.xml of the conformance case (fixtures/conformance, gate at
//! 50 %) compared byte for byte with tests/golden/, reviewed by eye once.
//! `UPDATE_GOLDEN=1 cargo test --release --test report_golden` rewrites them.
//! Also: junit.xml parses as XML with the gate's counts, $GITHUB_STEP_SUMMARY is
//! appended to, text from inputs is escaped in both formats, exit code 3 leads the
//! headline, and a bad --drift-details path stops the run before any work.

mod common;

use common::{conformance, text};

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// The first command line of fixtures/conformance/README.md, with `candidate` as
/// the candidate IR, run in that directory.
fn replay(out: &Path, candidate: &Path, summary: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_proof"));
    cmd.current_dir(conformance())
        .args([
            "replay",
            "traffic.jsonl",
            "--ir",
            "demo.v1.ir.json",
            "--candidate-ir",
        ])
        .arg(candidate)
        .args([
            "--list",
            "sanctions=sanctions.csv",
            "--list",
            "high_risk=high_risk.txt",
            "--rollout",
            "50",
            "--max-rejects",
            "3",
            "--quiet",
            "--out",
        ])
        .arg(out)
        .env_remove("GITHUB_STEP_SUMMARY");
    if let Some(s) = summary {
        cmd.env("GITHUB_STEP_SUMMARY", s);
    }
    cmd.output().unwrap()
}

use common::golden;

#[test]
fn markdown_and_junit_match_the_golden_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = replay(&out, Path::new("demo.v2.ir.json"), None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    golden("report.md", &std::fs::read(out.join("report.md")).unwrap());
    golden("junit.xml", &std::fs::read(out.join("junit.xml")).unwrap());
}

#[test]
fn junit_is_xml_with_one_testcase_per_window_and_a_failure_per_breach() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = replay(&out, Path::new("demo.v2.ir.json"), None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let xml = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 2);
    let gate = suites[0];
    assert_eq!(gate.attribute("name"), Some("proof.gate"));
    let cases: Vec<_> = gate
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let windows = report["windows"].as_array().unwrap();
    assert_eq!(cases.len(), windows.len());
    assert_eq!(
        gate.attribute("tests"),
        Some(windows.len().to_string().as_str())
    );
    let breached: Vec<&str> = report["gate"]["breached_windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let failed: Vec<_> = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .collect();
    assert_eq!(
        gate.attribute("failures"),
        Some(breached.len().to_string().as_str())
    );
    assert_eq!(failed.len(), breached.len());
    for (c, start) in failed.iter().zip(&breached) {
        assert_eq!(
            c.attribute("name").unwrap(),
            format!("window {start} at 50 %")
        );
        let f = c.children().find(|n| n.has_tag_name("failure")).unwrap();
        // 08:15 window: 1 drifting record (bucket 2394) of 11 at 50 %.
        assert!(
            f.text()
                .unwrap()
                .contains("requests: 11\ndrift_events: 1\n")
        );
        assert!(
            f.attribute("message")
                .unwrap()
                .contains("9.09 % (1 of 11 requests)")
        );
    }
    let records = suites[1];
    assert_eq!(records.attribute("failures"), Some("0"));
    assert_eq!(
        root.attribute("tests"),
        Some((windows.len() + 2).to_string().as_str())
    );
}

#[test]
fn step_summary_is_appended_not_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    std::fs::write(&summary, "# earlier step\n").unwrap();
    let out = dir.path().join("out");
    let o = replay(&out, Path::new("demo.v2.ir.json"), Some(&summary));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let got = std::fs::read_to_string(&summary).unwrap();
    assert_eq!(got, format!("# earlier step\n{md}\n"));
    // A second run appends again.
    let o = replay(&out, Path::new("demo.v2.ir.json"), Some(&summary));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(&summary).unwrap(),
        format!("# earlier step\n{md}\n{md}\n")
    );
}

#[test]
fn ids_from_inputs_are_escaped_in_markdown_and_junit() {
    let dir = tempfile::tempdir().unwrap();
    let evil = "v2|<img src=x>&\"'`*_";
    let mut ir: Value =
        serde_json::from_slice(&std::fs::read(conformance().join("demo.v2.ir.json")).unwrap())
            .unwrap();
    ir["policy_id"] = Value::String(evil.into());
    ir.as_object_mut().unwrap().remove("ir_hash");
    let ir_path = dir.path().join("evil.ir.json");
    std::fs::write(&ir_path, serde_json::to_vec(&ir).unwrap()).unwrap();
    let out = dir.path().join("out");
    let o = replay(&out, &ir_path, None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(!md.contains("<img"), "{md}");
    let row = md
        .lines()
        .find(|l| l.starts_with("| Candidate (enforced) |"))
        .unwrap();
    // Backtick in the id: escaped text instead of a code span; the pipe cannot end the cell.
    assert!(
        row.starts_with("| Candidate (enforced) | v2\\|&lt;img src=x&gt;&amp;\"'\\`\\*\\_ · basic"),
        "{row}"
    );

    let xml = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let cand = doc
        .descendants()
        .find(|n| n.has_tag_name("property") && n.attribute("name") == Some("candidate"))
        .unwrap();
    assert!(
        cand.attribute("value")
            .unwrap()
            .starts_with(&format!("{evil} sha3-256:"))
    );
}

#[test]
fn exit_code_3_heads_report_md_and_junit() {
    // The second conformance command line: 3 rejected records, --max-rejects 0.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_proof"))
        .current_dir(conformance())
        .args(["replay", "traffic.jsonl", "--quiet"])
        .args(common::CASE_V1_WEIGHTED_R25)
        .arg("--out")
        .arg(&out)
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let headline = "Run FAILED: 3 records rejected, more than --max-rejects 0; \
                    gate passed at 25 %: safe up to 58 % rollout";
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert_eq!(
        md.lines().next().unwrap(),
        format!("## ⚠️ proof replay: {headline}")
    );
    let xml = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(
        xml.contains(&format!("<testsuites name=\"proof replay: {headline}\"")),
        "{xml}"
    );
    // Without --quiet, stderr leads with the failure too.
    let o = Command::new(env!("CARGO_BIN_EXE_proof"))
        .current_dir(conformance())
        .args(["replay", "traffic.jsonl"])
        .args(common::CASE_V1_WEIGHTED_R25)
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains(
            "proof: run FAILED: 3 records rejected, more than --max-rejects 0 \
             (bad_ts: 1, malformed: 1, missing_request_id: 1, first at traffic.jsonl:41); \
             gate passed at 25 %"
        ),
        "{stderr}"
    );
}

#[test]
fn bad_drift_details_path_fails_before_any_work() {
    // A missing directory, and a "directory" that is a file: exit 2 at once, naming
    // the file, with nothing written to --out (before, the replay ran, wrote --out
    // and then exit 2 replaced the gate's exit code 1).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    for (details, why) in [
        (dir.path().join("missing/drift.jsonl"), "does not exist"),
        (file.join("drift.parquet"), "is not a directory"),
    ] {
        let out = dir.path().join("out");
        let o = Command::new(env!("CARGO_BIN_EXE_proof"))
            .current_dir(conformance())
            .args(["replay", "traffic.jsonl"])
            .args(common::CASE_V2_BASIC_R50)
            .arg("--drift-details")
            .arg(&details)
            .arg("--out")
            .arg(&out)
            .env_remove("GITHUB_STEP_SUMMARY")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.contains(&format!("--drift-details {}: ", details.display()))
                && stderr.contains(why),
            "{stderr}"
        );
        assert!(!out.exists(), "--out was written before the error");
    }
    // A good path in the current directory (no parent part) still works.
    let out = dir.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_proof"))
        .current_dir(dir.path())
        .arg("replay")
        .arg(conformance().join("traffic.jsonl"))
        .arg("--ir")
        .arg(conformance().join("demo.v1.ir.json"))
        .args([
            "--max-rejects",
            "3",
            "--quiet",
            "--drift-details",
            "drift.jsonl",
            "--out",
        ])
        .arg(&out)
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(dir.path().join("drift.jsonl").is_file());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".proof-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "probe or temp file left: {leftovers:?}"
    );
}

/// The third conformance command line (1-minute windows, confidence 0.6, plan.yaml
/// from every window start) into `out`.
fn replay_plan(out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_proof"))
        .current_dir(conformance())
        .args(["replay", "traffic.jsonl"])
        .args(common::CASE_V2_PLAN_CONF60)
        .args(["--quiet", "--out"])
        .arg(out)
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap()
}

#[test]
fn plan_report_md_and_junit_match_the_golden_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = replay_plan(&out);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    // The plan's verdict leads: the headline, then the plan section before the gate.
    assert!(md.starts_with(
        "## ❌ proof replay: Plan ROLLED BACK in 5 of 17 runs \\(first at step 3, 08:14Z\\); gate FAILED"
    ));
    assert!(md.find("### Rollout plan").unwrap() < md.find("| Gate | |").unwrap());
    // 17 starts: 5 roll back in step 3 (100 %), 6 are promoted, 6 run out of traffic.
    assert!(md.contains("| 17 | 6 | 5 | 6 | 1 / 2 |"), "{md}");
    assert!(md.contains("| 3 | 100 % | until the end of the traffic | 5 |"));
    // The earliest of the runs with the most drift (2 events) is the worst start.
    assert!(md.contains(
        "Worst start: 2026-11-05T08:00:00Z — rolled back at step 3 (100 %) at 2026-11-05T08:14:00Z"
    ));
    // z(0.6) ≈ 0.2533: 0 of n passes 5 % from n = 2 on (upper(0, 1) ≈ 0.060).
    assert!(md.contains("Windows need ≥ 2 requests to show drift ≤ 5.00 % at confidence 0.6; 13 of 17 windows have that many."), "{md}");
    assert!(md.contains("| Proven safe at confidence 0.6 | **23 %** |"));
    golden("report_plan.md", md.as_bytes());
    golden(
        "junit_plan.xml",
        &std::fs::read(out.join("junit.xml")).unwrap(),
    );
}

#[test]
fn junit_has_one_testcase_per_plan_run_failed_when_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = replay_plan(&out);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let xml = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let plan = doc
        .descendants()
        .find(|n| n.attribute("name") == Some("proof.plan"))
        .expect("a proof.plan suite");
    let cases: Vec<_> = plan
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let runs = report["plan"]["runs"].as_array().unwrap();
    assert_eq!(cases.len(), runs.len());
    assert_eq!(cases.len(), 17);
    for (c, run) in cases.iter().zip(runs) {
        let start = run["start"].as_str().unwrap();
        assert_eq!(
            c.attribute("name").unwrap(),
            format!("plan run from {start}")
        );
        let child = c.children().find(|n| n.is_element());
        match run["outcome"].as_str().unwrap() {
            "rolled_back" => {
                let f = child.unwrap();
                assert_eq!(f.tag_name().name(), "failure");
                assert_eq!(f.attribute("type"), Some("RolledBack"));
            }
            "incomplete" => assert_eq!(child.unwrap().tag_name().name(), "skipped"),
            _ => assert!(child.is_none(), "a promoted run passes"),
        }
    }
    assert_eq!(
        (plan.attribute("failures"), plan.attribute("skipped")),
        (Some("5"), Some("6"))
    );
    // Root totals: 17 window cases (4 breached) + 2 record checks + 17 plan runs.
    let root = doc.root_element();
    assert_eq!(
        (root.attribute("tests"), root.attribute("failures")),
        (Some("36"), Some("9"))
    );
}

#[test]
fn evaluation_error_warnings_lead_report_md() {
    // Without --list every rule reading a list errors (missing_var): the gate passes,
    // but the summary must not look green, and the warnings come right after the
    // headline, before any table.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = common::replay_without_lists(&out);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let lines: Vec<&str> = md.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "## ⚠️ proof replay: Gate passed at 100 %: safe up to 100 % rollout"
    );
    assert!(lines[1].starts_with(
        "> ⚠️ **Warning:** rule no\\_sanctions: missing\\_var on 100.0 % of the enforced path's records"
    ), "{md}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("> ⚠️ **Warning:**"))
            .count(),
        3
    );
    assert!(md.contains("### Evaluation errors"));
    assert!(
        md.contains("| enforced | `no_sanctions` | `missing_var` | 39 | 100.0 % |"),
        "{md}"
    );
}
