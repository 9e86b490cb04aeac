//! `proof adapt` end to end: the real binary on the fixtures (seed B1 enforcer CLI).

use std::path::Path;
use std::process::Command;

use clap::Parser;
use proof::cli::{Cli, Command as Sub};
use proof::orchestrator::enforcer::bucket;
use serde_json::Value;

fn proof(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_proof"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("PROOF_POLICY_DIR")
        .output()
        .expect("run proof");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn adapt_json(args: &[&str]) -> Value {
    let (code, out, err) = proof(args);
    assert_eq!(code, 0, "stderr: {err}");
    serde_json::from_str(&out).expect("adapt prints JSON")
}

fn parse_adapt(args: &[&str]) -> proof::cli::adapt::AdaptArgs {
    let mut argv = vec!["proof", "adapt"];
    argv.extend_from_slice(args);
    match Cli::try_parse_from(argv).expect("flags parse").command {
        Sub::Adapt(a) => a,
        other => panic!("parsed as {other:?}"),
    }
}

const OK: &str = "fixtures/contexts/context_ok.json";

#[test]
fn defaults_shadow_mode() {
    let a = parse_adapt(&["--policy", "lksg.v1", "--context", OK]);
    let o = a.options();
    assert!(!o.enforce);
    assert_eq!(o.rollout_percent.get(), 0);
    assert_eq!(o.drift_max_ratio, 0.005);
    let v = adapt_json(&["adapt", "--policy", "lksg.v1", "--context", OK]);
    assert_eq!(v["options"]["enforce"], false);
    assert_eq!(v["options"]["rollout_percent"], 0);
    assert_eq!(v["options"]["drift_max_ratio"], 0.005);
    assert_eq!(v["enforced_applied"], false);
    assert_eq!(v["drift"], false);
}

#[test]
fn parse_enforce_rollout_drift() {
    let a = parse_adapt(&[
        "--policy",
        "lksg.v1",
        "--context",
        OK,
        "--enforce",
        "--rollout",
        "25",
        "--drift-max",
        "0.01",
    ]);
    let o = a.options();
    assert!(o.enforce);
    assert_eq!(o.rollout_percent.get(), 25);
    assert_eq!(o.drift_max_ratio, 0.01);
}

#[test]
fn deterministic_sampling() {
    // Known answers from the SPEC formula (shared/conformance/README.md).
    assert_eq!(bucket("lksg.v1", "r-000001"), 934);
    assert_eq!(bucket("demo.v1", "req-0000"), 7626);
    let args = [
        "adapt",
        "--policy",
        "lksg.v1",
        "--context",
        OK,
        "--enforce",
        "--rollout",
        "25",
    ];
    let a = adapt_json(&args);
    let b = adapt_json(&args);
    assert_eq!(a["request_id"], "r-000001");
    assert_eq!(a["bucket"], 934);
    assert_eq!(a["enforced_applied"], true, "934 < 2500");
    assert_eq!(a, b);
    // req-0000 sits in bucket 7626 under salt demo.v1; with lksg.v1 compute it the same way.
    let id = "req-0000";
    let expected = bucket("lksg.v1", id);
    let c = adapt_json(&[
        "adapt",
        "--policy",
        "lksg.v1",
        "--context",
        OK,
        "--enforce",
        "--rollout",
        "25",
        "--request-id",
        id,
    ]);
    assert_eq!(c["bucket"], expected);
    assert_eq!(c["enforced_applied"], expected < 2500);
    // At rollout 9 bucket 934 is not enforced, at 10 it is (threshold = r × 100).
    let at = |r: &str| {
        adapt_json(&[
            "adapt",
            "--policy",
            "lksg.v1",
            "--context",
            OK,
            "--enforce",
            "--rollout",
            r,
        ])
    };
    assert_eq!(at("9")["enforced_applied"], false);
    assert_eq!(at("10")["enforced_applied"], true);
}

#[test]
fn dry_run_never_applies_enforcement() {
    let base = [
        "adapt",
        "--policy",
        "lksg.v1",
        "--context",
        OK,
        "--enforce",
        "--rollout",
        "100",
    ];
    let v = adapt_json(&base);
    assert_eq!(v["enforced_applied"], true);
    let mut dry = base.to_vec();
    dry.push("--dry-run");
    let d = adapt_json(&dry);
    assert_eq!(d["enforced_applied"], false);
    assert_eq!(d["dry_run"], true);
    // The plan and verdicts are still computed.
    assert_eq!(d["plan"], v["plan"]);
    assert_eq!(d["shadow"], v["shadow"]);
}

#[test]
fn seed_examples_work_as_written() {
    let v = adapt_json(&[
        "adapt",
        "--policy",
        "lksg.v1",
        "--context",
        OK,
        "--rollout",
        "0",
        "--drift-max",
        "0.005",
        "--dry-run",
    ]);
    assert_eq!(v["policy_id"], "lksg.v1");
    assert_eq!(v["shadow"]["verdict"], "ok");
    // basic plan: every rule of lksg.v1, by id, default costs.
    let steps: Vec<(String, u64)> = v["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["rule_id"].as_str().unwrap().to_string(),
                s["cost"].as_u64().unwrap(),
            )
        })
        .collect();
    let expect = [
        ("audit_recency", 2),
        ("audit_score_min", 2),
        ("grievance_mechanism", 1),
        ("no_high_risk_country", 15),
        ("no_sanctions", 10),
        ("risk_assessment_done", 1),
        ("ubo_known", 2),
    ];
    assert_eq!(steps, expect.map(|(a, b)| (a.to_string(), b)));
    assert_eq!(v["plan"]["total_cost"], 33);
    for (i, s) in v["plan"]["steps"].as_array().unwrap().iter().enumerate() {
        assert_eq!(s["step_index"], i);
    }

    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    let (code, out, err) = proof(&[
        "adapt",
        "--policy",
        "lksg.v1",
        "--context",
        OK,
        "--enforce",
        "--rollout",
        "25",
        "-o",
        plan.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty(), "-o writes the file, not stdout");
    let written: Value = serde_json::from_slice(&std::fs::read(&plan).unwrap()).unwrap();
    assert_eq!(written["options"]["rollout_percent"], 25);

    // Weighted: costs from the weights file, ordered by (cost, id).
    let w = adapt_json(&[
        "adapt",
        "--policy",
        "lksg.v1",
        "--context",
        "fixtures/contexts/context_stale_audit.json",
        "--selector",
        "weighted",
        "--weights",
        "fixtures/weights/rule_weights.yaml",
        "--enforce",
        "--rollout",
        "25",
    ]);
    let order: Vec<&str> = w["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rule_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "grievance_mechanism",
            "risk_assessment_done",
            "audit_score_min",
            "ubo_known",
            "audit_recency",
            "no_high_risk_country",
            "no_sanctions"
        ]
    );
    assert_eq!(w["plan"]["total_cost"], 27);
}

#[test]
fn weighted_budget_skip_on_a_failing_context_is_no_drift() {
    // lksg.v2 on a stale audit with 6 suppliers: controls_threshold (20) does not fit the
    // budget of 50 after 42 → skipped; the stale audit still fails, so both paths fail
    // and there is no drift even though the budget skipped a rule.
    let v = adapt_json(&[
        "adapt",
        "--policy",
        "lksg.v2",
        "--context",
        "fixtures/contexts/context_stale_audit.json",
        "--selector",
        "weighted",
        "--weights",
        "fixtures/weights/rule_weights.yaml",
        "--enforce",
        "--rollout",
        "100",
    ]);
    assert_eq!(
        v["plan"]["skipped"],
        serde_json::json!(["controls_threshold"])
    );
    assert_eq!(v["plan"]["total_cost"], 42);
    assert_eq!(v["shadow"]["verdict"], "fail");
    assert_eq!(v["enforced"]["verdict"], "fail");
    assert_eq!(v["enforced_applied"], true);
    assert_eq!(v["drift"], false);
    assert_eq!(v["drift_kind"], Value::Null);
    // On a clean context every active rule fits the budget of 50 (total 40): nothing
    // is skipped, both paths are ok, no drift. tight_budget.yaml below is the case
    // where the budget does cause a drift.
    let ok = adapt_json(&[
        "adapt",
        "--policy",
        "lksg.v2",
        "--context",
        OK,
        "--selector",
        "weighted",
        "--weights",
        "fixtures/weights/rule_weights.yaml",
        "--enforce",
        "--rollout",
        "100",
        "--request-id",
        "x",
    ]);
    assert_eq!(ok["shadow"]["verdict"], "ok");
    assert_eq!(ok["plan"]["skipped"], serde_json::json!([]));
    assert_eq!(ok["plan"]["total_cost"], 40);
    assert_eq!(ok["enforced"]["verdict"], "ok");
    assert_eq!(ok["drift"], false);
}

/// SPEC §3 bucket, computed here from the formula rather than by the library:
/// `u64_be(SHA-256(salt + ":" + request_id)[0..8]) mod 10000`.
fn spec_bucket(salt: &str, request_id: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("{salt}:{request_id}").as_bytes());
    u64::from_be_bytes(d[..8].try_into().unwrap()) % 10_000
}

#[test]
fn weighted_budget_skip_drifts_ok_to_warn_when_enforcement_applies() {
    // tight_budget.yaml: budget 10 takes grievance_mechanism, risk_assessment_done,
    // ubo_known and audit_recency (1 + 1 + 2 + 3 = 7); no_high_risk_country (8) does
    // not fit, so it, no_sanctions and ubo_screened are skipped. context_ok passes
    // every rule: shadow ok, enforced warn, and no rule is bad on either path, so the
    // cause is budget_skip.
    let args = |request_id: &'static str| {
        [
            "adapt",
            "--policy",
            "lksg.v2",
            "--context",
            OK,
            "--selector",
            "weighted",
            "--weights",
            "fixtures/weights/tight_budget.yaml",
            "--enforce",
            "--rollout",
            "25",
            "--request-id",
            request_id,
        ]
    };
    // Salt = the policy id. r-000004 falls in bucket 2394 < 2500 (enforced at 25 %);
    // r-000001 in bucket 7358 (not enforced).
    assert_eq!(spec_bucket("lksg.v2", "r-000004"), 2394);
    assert_eq!(spec_bucket("lksg.v2", "r-000001"), 7358);

    let v = adapt_json(&args("r-000004"));
    assert_eq!(v["bucket"], 2394);
    assert_eq!(v["plan"]["total_cost"], 7);
    assert_eq!(
        v["plan"]["skipped"],
        serde_json::json!(["no_high_risk_country", "no_sanctions", "ubo_screened"])
    );
    assert_eq!(v["shadow"]["verdict"], "ok");
    assert_eq!(v["enforced"]["verdict"], "warn");
    assert_eq!(v["enforced"]["failed_rules"], serde_json::json!([]));
    assert_eq!(v["enforced_applied"], true);
    assert_eq!(v["drift"], true);
    assert_eq!(v["drift_kind"], "ok->warn");
    assert_eq!(v["drift_cause"], "budget_skip");

    // Outside the rollout the same difference is reported but is not drift.
    let v = adapt_json(&args("r-000001"));
    assert_eq!(v["bucket"], 7358);
    assert_eq!(v["enforced"]["verdict"], "warn");
    assert_eq!(v["enforced_applied"], false);
    assert_eq!(v["drift"], false);
    assert_eq!(v["drift_kind"], "ok->warn");
    assert_eq!(v["drift_cause"], "budget_skip");
}

#[test]
fn out_of_range_values_exit_2_with_the_range() {
    let (code, _, err) = proof(&[
        "adapt",
        "--policy",
        "lksg.v1",
        "--context",
        OK,
        "--rollout",
        "101",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("0..=100"), "{err}");
    let (code, _, err) = proof(&[
        "adapt",
        "--policy",
        "lksg.v1",
        "--context",
        OK,
        "--drift-max",
        "1.5",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("0.0..=1.0"), "{err}");
    let (code, _, err) = proof(&[
        "adapt",
        "--policy",
        "lksg.v1",
        "--context",
        OK,
        "--selector",
        "greedy",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("basic") && err.contains("weighted"), "{err}");
}

#[test]
fn missing_and_malformed_files_are_named() {
    let (code, _, err) = proof(&[
        "adapt",
        "--policy",
        "lksg.v1",
        "--context",
        "fixtures/contexts/nope.json",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("fixtures/contexts/nope.json"), "{err}");
    let (code, _, err) = proof(&["adapt", "--policy", "nosuch.v9", "--context", OK]);
    assert_eq!(code, 2);
    assert!(err.contains("nosuch.v9.ir.json"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("ctx.json");
    std::fs::write(&bad, "{\n  \"a\": 1,\n  \"b\": [1, 2,,]\n}\n").unwrap();
    let (code, _, err) = proof(&[
        "adapt",
        "--policy",
        "lksg.v1",
        "--context",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("{}:3:", bad.display())),
        "line and column: {err}"
    );

    let ir = dir.path().join("x.ir.json");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/policies/lksg.v1.ir.json"),
    )
    .unwrap();
    std::fs::write(
        &ir,
        text.replacen(
            "\"policy_id\": \"lksg.v1\"",
            "\"policy_id\": \"lksg.v1\",\n  \"ir_hash\": \"sha3-256:abc\"",
            1,
        ),
    )
    .unwrap();
    let (code, _, err) = proof(&["adapt", "--ir", ir.to_str().unwrap(), "--context", OK]);
    assert_eq!(code, 2);
    assert!(
        err.contains("sha3-256:abc") && err.contains("hashes to sha3-256:"),
        "{err}"
    );

    let w = dir.path().join("w.yaml");
    std::fs::write(&w, "weights: { not_a_rule: 3 }\n").unwrap();
    let (code, _, err) = proof(&[
        "adapt",
        "--policy",
        "lksg.v1",
        "--context",
        OK,
        "--selector",
        "weighted",
        "--weights",
        w.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("not_a_rule") && err.contains("w.yaml"),
        "{err}"
    );
}

#[test]
fn bare_context_gets_a_content_hash_id() {
    let v = adapt_json(&[
        "adapt",
        "--policy",
        "lksg.v1",
        "--context",
        "fixtures/contexts/context_missing_inputs.json",
    ]);
    let id = v["request_id"].as_str().unwrap();
    assert!(id.starts_with("sha256:") && id.len() == 7 + 64, "{id}");
    assert_eq!(v["shadow"]["verdict"], "fail");
    assert_eq!(v["shadow"]["errors"]["ubo_known"], "missing_var");
}

#[test]
fn metrics_out_writes_prometheus_text() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("proof.prom");
    let (code, _, err) = proof(&[
        "adapt",
        "--policy",
        "lksg.v1",
        "--context",
        OK,
        "--enforce",
        "--rollout",
        "25",
        "--metrics-out",
        m.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&m).unwrap();
    assert!(
        text.contains("adapt_enforce_rollout_percent 25\n"),
        "{text}"
    );
    assert!(
        text.contains("adapt_requests_total{mode=\"enforced\",policy_id=\"lksg.v1\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("adapt_requests_total{mode=\"shadow\",policy_id=\"lksg.v1\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("adapt_drift_events_total{policy_id=\"lksg.v1\"} 0\n"),
        "{text}"
    );
    assert!(
        text.contains("adapt_selection_latency_seconds_count 1\n"),
        "{text}"
    );
    assert!(!text.contains("r-000001"), "no request ids in labels");
}

/// `--context` is read by replay's record reader (issue 17 item 7): `ts` twice is
/// malformed, a leading BOM is skipped, and the last five minutes of year 9999 are
/// `bad_ts`, as in replay and serve.
#[test]
fn context_file_is_read_as_replay_reads_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        proof(&[
            "adapt",
            "--policy",
            "lksg.v1",
            "--context",
            p.to_str().unwrap(),
        ])
    };
    let (code, _, err) = run(
        "twice.json",
        br#"{"ts":"2026-11-02T10:00:00Z","ts":"2026-11-02T11:00:00Z","request_id":"r","context":{}}"#,
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("twice.json: duplicate key 'ts': a record names each field once (malformed)"),
        "{err}"
    );
    let (code, out, err) = run(
        "bom.json",
        b"\xEF\xBB\xBF{\"ts\":\"2026-11-02T10:00:00Z\",\"request_id\":\"r-bom\",\"context\":{}}",
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["request_id"], "r-bom");
    assert_eq!(v["ts"], "2026-11-02T10:00:00Z");
    let (code, _, err) = run(
        "late.json",
        br#"{"ts":"9999-12-31T23:59:59.999Z","request_id":"r","context":{}}"#,
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("field 'ts'") && err.ends_with("(bad_ts)\n"),
        "{err}"
    );
    let (code, _, err) = run(
        "last.json",
        br#"{"ts":"9999-12-31T23:54:59.999Z","request_id":"r","context":{}}"#,
    );
    assert_eq!(code, 0, "{err}");
}

/// Duplicate keys in an IR or a JSON weights file are exit 2 naming file, line and key
/// (issue 17 item 6); `hash --write` on a symlink writes through to its target.
#[test]
fn duplicate_keys_in_ir_and_weights_are_refused_and_hash_writes_through_symlinks() {
    let (code, _, err) = proof(&[
        "adapt",
        "--ir",
        "fixtures/adversarial/duplicate_rules.ir.json",
        "--context",
        OK,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("fixtures/adversarial/duplicate_rules.ir.json:7:")
            && err.contains("duplicate key 'rules'"),
        "{err}"
    );
    let (code, _, err) = proof(&["hash", "fixtures/adversarial/duplicate_rules.ir.json"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("duplicate key 'rules'"), "{err}");
    let (code, _, err) = proof(&[
        "adapt",
        "--policy",
        "lksg.v1",
        "--context",
        OK,
        "--selector",
        "weighted",
        "--weights",
        "fixtures/adversarial/weights_duplicate.json",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("fixtures/adversarial/weights_duplicate.json:2:")
            && err.contains("duplicate key 'no_sanctions'"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("real.ir.json");
    let mut ir: Value = serde_json::from_slice(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/adversarial/cycle.ir.json"),
        )
        .unwrap(),
    )
    .unwrap();
    ir.as_object_mut().unwrap().remove("ir_hash");
    std::fs::write(&target, serde_json::to_vec(&ir).unwrap()).unwrap();
    let link = dir.path().join("link.ir.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let (code, out, err) = proof(&["hash", "--write", link.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let written: Value = serde_json::from_slice(&std::fs::read(&target).unwrap()).unwrap();
    let h = out.split_whitespace().next().unwrap();
    assert_eq!(written["ir_hash"], h);
}
