//! `proof replay` end to end on small hand-checked fixtures and the conformance case.
//! Every expected number here was worked out by hand from the fixture (see the comments
//! in fixtures/replay/README.md), not copied from a run.

mod common;

use common::{
    CASE_V1_WEIGHTED_R25, CASE_V2_BASIC_R50, CASE_V2_FIDELITY_SCORE_R25, CASE_V2_PLAN_CONF60, root,
};

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

fn run(args: &[&str], cwd: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_proof"))
        .args(args)
        .current_dir(cwd)
        .env_remove("PROOF_POLICY_DIR")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .expect("run proof");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn replay(args: &[&str]) -> (i32, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut a = vec!["replay"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["--out", dir.path().to_str().unwrap()]);
    let (code, err) = run(&a, &root().join("fixtures/replay"));
    let report = std::fs::read(dir.path().join("report.json"))
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or(Value::Null);
    (code, report, err)
}

const BASIC: [&str; 5] = [
    "small.jsonl",
    "--ir",
    "mini.v1.ir.json",
    "--candidate-ir",
    "mini.v2.ir.json",
];

#[test]
fn accounting_verdicts_and_drift_by_hand() {
    let (code, r, err) = replay(&BASIC);
    assert_eq!(code, 3, "5 rejected > --max-rejects 0: {err}");
    assert_eq!(
        r["records"],
        json!({"read": 13, "evaluated": 7, "rejected": 5, "skipped": 1, "rejected_by_reason": {
            "malformed": 1, "missing_ts": 1, "bad_ts": 1, "missing_request_id": 1, "missing_context": 1},
            "skipped_by_reason": {"other_policy": 1}, "bucket_key_missing": 0})
    );
    assert_eq!(
        r["verdicts"],
        json!({"shadow": {"ok": 4, "warn": 0, "fail": 3}, "enforced": {"ok": 1, "warn": 0, "fail": 6}})
    );
    assert_eq!(r["drift"]["events"], 3);
    assert_eq!(r["drift"]["ratio"], 3.0 / 7.0);
    assert_eq!(r["drift"]["by_kind"], json!({"ok->fail": 3}));
    assert_eq!(
        r["drift"]["by_cause"],
        json!([{"cause": "amount_ok", "events": 2}, {"cause": "doc_ok", "events": 1}])
    );
    // The stderr verdict names the first rejected line.
    assert!(
        err.contains("5 rejected") && err.contains("first at small.jsonl:8"),
        "{err}"
    );
}

#[test]
fn windows_on_boundaries_and_out_of_order() {
    let (_, r, _) = replay(&BASIC);
    let w: Vec<(String, String, u64)> = r["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["start"].as_str().unwrap().to_string(),
                w["end"].as_str().unwrap().to_string(),
                w["requests"].as_u64().unwrap(),
            )
        })
        .collect();
    // a4 is 08:06+01:00 = 07:06Z; 08:04:59.999 stays in 08:00; 08:05:00.000 (epoch ms) opens 08:05.
    assert_eq!(
        w,
        [
            (
                "2026-11-05T07:05:00Z".into(),
                "2026-11-05T07:10:00Z".into(),
                1
            ),
            (
                "2026-11-05T08:00:00Z".into(),
                "2026-11-05T08:05:00Z".into(),
                4
            ),
            (
                "2026-11-05T08:05:00Z".into(),
                "2026-11-05T08:10:00Z".into(),
                2
            ),
        ]
    );
    // Buckets (salt mini.v1): a2 1722, a3 2525, a8 5530.
    let events = |i: usize| -> Vec<u64> {
        r["windows"][i]["drift"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["events"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(events(0), [0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(events(1), [0, 0, 0, 0, 0, 1, 2]);
    assert_eq!(events(2), [0, 0, 0, 0, 1, 1, 1]);
}

#[test]
fn levels_and_gate_by_hand() {
    let (_, r, _) = replay(&BASIC);
    let lv = |pct: u64| {
        r["levels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["rollout_percent"] == pct)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        lv(25),
        json!({"rollout_percent": 25, "drift_events": 1, "drift_ratio": 1.0 / 7.0,
               "max_window_ratio": 0.5, "breached_windows": 1, "rollback_windows": 1,
               "passed_windows": 0})
    );
    assert_eq!(
        lv(50),
        json!({"rollout_percent": 50, "drift_events": 2, "drift_ratio": 2.0 / 7.0,
               "max_window_ratio": 0.5, "breached_windows": 2, "rollback_windows": 2,
               "passed_windows": 0})
    );
    assert_eq!(lv(10)["drift_events"], 0);
    assert_eq!(
        r["gate"],
        json!({"rollout_percent": 100, "drift_max": 0.005, "passed": false,
               "breached_windows": ["2026-11-05T08:00:00Z", "2026-11-05T08:05:00Z"],
               // a2's bucket 1722 first counts at 18 %.
               "max_safe_rollout_percent": 17, "exit_code": 3,
               // SPEC §8: null with confidence off.
               "confidence": null, "proven_safe_rollout_percent": null})
    );
}

#[test]
fn every_exit_code() {
    let mut a = BASIC.to_vec();
    a.extend_from_slice(&["--max-rejects", "5"]);
    assert_eq!(replay(&a).0, 1, "breach");
    a.extend_from_slice(&["--drift-max", "0.5"]);
    let (code, r, _) = replay(&a);
    assert_eq!(code, 0, "0.5 is not above 0.5");
    assert_eq!(r["gate"]["max_safe_rollout_percent"], 100);
    let mut b = BASIC.to_vec();
    b.extend_from_slice(&["--window", "5 minutes"]);
    let (code, _, err) = replay(&b);
    assert_eq!(code, 2);
    assert!(err.contains("--window"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "\n\n").unwrap();
    let (code, r, _) = replay(&[empty.to_str().unwrap(), "--ir", "mini.v1.ir.json"]);
    assert_eq!(code, 3, "no evaluable record");
    assert_eq!(r["records"]["read"], 0);
    // --min-requests 3: the 2-request window no longer breaches; gate passes at 25.
    let mut c = BASIC.to_vec();
    c.extend_from_slice(&[
        "--max-rejects",
        "5",
        "--rollout",
        "25",
        "--min-requests",
        "3",
    ]);
    let (code, r, _) = replay(&c);
    assert_eq!(code, 0);
    assert_eq!(r["gate"]["breached_windows"], json!([]));
    assert_eq!(
        r["gate"]["max_safe_rollout_percent"], 25,
        "a3 (2525) breaches the 4-request window from 26 %"
    );
}

#[test]
fn budget_skips_and_causes_by_hand() {
    let (code, r, err) = replay(&[
        "small.jsonl",
        "--ir",
        "mini.v1.ir.json",
        "--selector",
        "weighted",
        "--weights",
        "mini_weights.yaml",
        "--max-rejects",
        "5",
    ]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        r["verdicts"],
        json!({"shadow": {"ok": 4, "warn": 0, "fail": 3}, "enforced": {"ok": 0, "warn": 5, "fail": 2}})
    );
    assert_eq!(
        r["drift"]["by_kind"],
        json!({"ok->warn": 4, "fail->warn": 1})
    );
    assert_eq!(
        r["drift"]["by_cause"],
        json!([{"cause": "budget_skip", "events": 4}, {"cause": "country_ok", "events": 1}])
    );
    assert_eq!(r["inputs"]["candidate"]["budget"], 5);
}

#[test]
fn weights_with_basic_selector_is_a_usage_error() {
    let (code, _, err) = replay(&[
        "small.jsonl",
        "--ir",
        "mini.v1.ir.json",
        "--weights",
        "mini_weights.yaml",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--selector"), "{err}");
}

#[test]
fn windows_csv_and_examples() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = vec!["replay"];
    a.extend_from_slice(&BASIC);
    a.extend_from_slice(&["--out", dir.path().to_str().unwrap(), "--levels", "25"]);
    let (code, _) = run(&a, &root().join("fixtures/replay"));
    assert_eq!(code, 3);
    let csv = std::fs::read_to_string(dir.path().join("windows.csv")).unwrap();
    assert_eq!(
        csv,
        "window_start,window_end,rollout_percent,requests,drift_events,drift_ratio,breach\n\
         2026-11-05T07:05:00Z,2026-11-05T07:10:00Z,25,1,0,0.0,false\n\
         2026-11-05T07:05:00Z,2026-11-05T07:10:00Z,100,1,0,0.0,false\n\
         2026-11-05T08:00:00Z,2026-11-05T08:05:00Z,25,4,0,0.0,false\n\
         2026-11-05T08:00:00Z,2026-11-05T08:05:00Z,100,4,2,0.5,true\n\
         2026-11-05T08:05:00Z,2026-11-05T08:10:00Z,25,2,1,0.5,true\n\
         2026-11-05T08:05:00Z,2026-11-05T08:10:00Z,100,2,1,0.5,true\n"
    );
    let r: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    let ex: Vec<(String, String, String)> = r["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["request_id"].as_str().unwrap().into(),
                e["cause"].as_str().unwrap().into(),
                e["source"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        ex,
        [
            ("a3".into(), "doc_ok".into(), "small.jsonl:3".into()),
            ("a8".into(), "amount_ok".into(), "small.jsonl:14".into()),
            ("a2".into(), "amount_ok".into(), "small.jsonl:2".into()),
        ]
    );
    let text = std::fs::read_to_string(dir.path().join("report.json")).unwrap();
    assert!(
        !text.contains("\"amount\""),
        "no context values in the report"
    );
}

/// Runs the BASIC replay into a fresh directory with `PROOF_REDACT_KEY` as given;
/// returns report.json's text and stderr.
fn replay_redacted(extra: &[&str], key: Option<&str>) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut a = vec!["replay"];
    a.extend_from_slice(&BASIC);
    a.extend_from_slice(&["--out", dir.path().to_str().unwrap()]);
    a.extend_from_slice(extra);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_proof"));
    cmd.args(&a)
        .current_dir(root().join("fixtures/replay"))
        .env_remove("PROOF_POLICY_DIR")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("PROOF_REDACT_KEY");
    if let Some(k) = key {
        cmd.env("PROOF_REDACT_KEY", k);
    }
    let out = cmd.output().expect("run proof");
    let text = std::fs::read_to_string(dir.path().join("report.json")).unwrap();
    (text, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn redact_ids_hides_request_ids() {
    let (text, _) = replay_redacted(&["--redact-ids"], Some("k"));
    assert!(
        !text.contains("\"a2\"") && !text.contains("\"a3\""),
        "{text}"
    );
    assert!(text.contains("\"request_id\": \"hmac:"), "{text}");
}

const REDACT_WARNING: &str = "ids are hashed with the salt, which report.json shows; set PROOF_REDACT_KEY to make them unguessable";

#[test]
fn redact_ids_without_a_key_warns_and_report_json_says_so() {
    // Without PROOF_REDACT_KEY (or with it empty) the salt keys the hashes: a warning,
    // also under --quiet, and config.redact_key_set false.
    for key in [None, Some("")] {
        let (text, err) = replay_redacted(&["--redact-ids", "--quiet"], key);
        assert!(err.contains(REDACT_WARNING), "{key:?}: {err}");
        let r: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(r["config"]["redact_ids"], true);
        assert_eq!(r["config"]["redact_key_set"], false, "{key:?}");
    }
    // Keyed by the salt, the ids are HMAC(salt, id): anyone with report.json (which
    // shows the salt) can recompute them; that is what the warning is about.
    let (text, _) = replay_redacted(&["--redact-ids"], None);
    let r: Value = serde_json::from_str(&text).unwrap();
    let salt = r["config"]["salt"].as_str().unwrap();
    let guessed = proof::cli::replay::redact(salt.as_bytes(), "a2");
    assert!(text.contains(&guessed), "{guessed} not in {text}");

    // With a key: no warning, the flag in report.json, never the key itself, and the
    // same bytes on every run (deterministic, SPEC §6).
    let key = "s3cret-redaction-key";
    let (a, err) = replay_redacted(&["--redact-ids"], Some(key));
    assert!(!err.contains("PROOF_REDACT_KEY"), "{err}");
    let r: Value = serde_json::from_str(&a).unwrap();
    assert_eq!(r["config"]["redact_key_set"], true);
    assert!(!a.contains(key), "the key leaked into report.json");
    assert!(!a.contains(&guessed), "still keyed by the salt");
    assert!(a.contains(&proof::cli::replay::redact(key.as_bytes(), "a2")));
    let (b, _) = replay_redacted(&["--redact-ids"], Some(key));
    let strip = |t: &str| {
        let mut v: Value = serde_json::from_str(t).unwrap();
        v.as_object_mut().unwrap().remove("latency");
        v
    };
    assert_eq!(strip(&a), strip(&b));

    // Without --redact-ids there is nothing to warn about and nothing keyed.
    let (text, err) = replay_redacted(&[], Some(key));
    assert!(!err.contains("PROOF_REDACT_KEY"), "{err}");
    let r: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["config"]["redact_ids"], false);
    assert_eq!(r["config"]["redact_key_set"], false);
}

#[test]
fn scenario_file_with_flag_override() {
    let dir = tempfile::tempdir().unwrap();
    let sc = dir.path().join("s.yaml");
    let fx = root().join("fixtures/replay");
    std::fs::write(
        &sc,
        format!(
            "logs: [{0}/small.jsonl]\nir: {0}/mini.v1.ir.json\ncandidate_ir: {0}/mini.v2.ir.json\nmax_rejects: 5\nrollout: 25\n",
            fx.display()
        ),
    )
    .unwrap();
    let (code, r, _) = replay(&["--scenario", sc.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(r["gate"]["rollout_percent"], 25);
    let (code, r, _) = replay(&["--scenario", sc.to_str().unwrap(), "--rollout", "10"]);
    assert_eq!(code, 0, "flags override the scenario");
    assert_eq!(r["gate"]["rollout_percent"], 10);
}

/// The public conformance case (fixtures/conformance, vendored from shared/conformance).
#[test]
fn conformance_case_matches_expected_fixed_fields() {
    let conf = root().join("fixtures/conformance");
    let cases = [
        ("expected_v2_basic_r50.json", 1, CASE_V2_BASIC_R50),
        ("expected_v1_weighted_r25.json", 3, CASE_V1_WEIGHTED_R25),
        ("expected_v2_plan_conf60.json", 1, CASE_V2_PLAN_CONF60),
        (
            "expected_v2_fidelity_score_r25.json",
            0,
            CASE_V2_FIDELITY_SCORE_R25,
        ),
    ];
    for (expected, exit, args) in cases {
        let out = tempfile::tempdir().unwrap();
        let log = if expected.contains("fidelity") {
            "traffic_verdicts.jsonl"
        } else {
            "traffic.jsonl"
        };
        let mut a = vec!["replay", log];
        a.extend_from_slice(args);
        a.extend_from_slice(&["--out", out.path().to_str().unwrap()]);
        let (code, err) = run(&a, &conf);
        assert_eq!(code, exit, "{expected}: {err}");
        let mut got: Value =
            serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap())
                .unwrap();
        let mut exp: Value =
            serde_json::from_slice(&std::fs::read(conf.join(expected)).unwrap()).unwrap();
        // by_cause may come in any order among equal counts: compare as maps.
        for d in [&mut got, &mut exp] {
            let m: serde_json::Map<String, Value> = d["drift"]["by_cause"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c["cause"].as_str().unwrap().to_string(),
                        c["events"].clone(),
                    )
                })
                .collect();
            d["drift"]["by_cause"] = Value::Object(m);
        }
        // The expected files fix the keys they name (SPEC marks them fixed); a report
        // may carry more (fields added by later SPEC sections), as check.py allows.
        for key in [
            "records", "verdicts", "drift", "levels", "windows", "gate", "plan", "fidelity",
        ] {
            if exp.get(key).is_some() {
                assert_subset(&exp[key], &got[key], &format!("{expected}: {key}"));
            }
        }
    }
}

/// The two OPA conformance cases (fixtures/conformance/opa, expected values from OPA's
/// own engine): SPEC §12 with §11 and §3.
#[test]
fn opa_conformance_cases_match_expected_fixed_fields() {
    let conf = root().join("fixtures/conformance/opa");
    let cases: [(&str, &[&str]); 2] = [
        (
            "expected_shop_r50.json",
            &[
                "--bundle",
                "shop-v1",
                "--candidate-bundle",
                "shop-v2.tar.gz",
                "--max-unfaithful-ratio",
                "0.05",
            ],
        ),
        (
            "expected_shop_recorded_user.json",
            &[
                "--baseline",
                "recorded",
                "--candidate-bundle",
                "shop-v2.tar.gz",
                "--decision",
                "shop/orders/allow",
                "--bucket-key",
                "input.user",
            ],
        ),
    ];
    for (expected, args) in cases {
        let out = tempfile::tempdir().unwrap();
        let mut a = vec!["replay", "decisions.jsonl"];
        a.extend_from_slice(args);
        a.extend_from_slice(&[
            "--window",
            "5m",
            "--rollout",
            "50",
            "--drift-max",
            "0.1",
            "--max-rejects",
            "2",
            "--out",
            out.path().to_str().unwrap(),
        ]);
        let (code, err) = run(&a, &conf);
        assert_eq!(code, 1, "{expected}: {err}");
        let got: Value =
            serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap())
                .unwrap();
        let exp: Value =
            serde_json::from_slice(&std::fs::read(conf.join(expected)).unwrap()).unwrap();
        for key in [
            "records", "verdicts", "drift", "levels", "windows", "gate", "fidelity",
        ] {
            assert_subset(&exp[key], &got[key], &format!("{expected}: {key}"));
        }
    }
}

/// Every key of `exp` is in `got` with the same value (floats within 1e-12 relative).
fn assert_subset(exp: &Value, got: &Value, at: &str) {
    match (exp, got) {
        (Value::Object(e), Value::Object(g)) => {
            for (k, v) in e {
                let gv = g.get(k).unwrap_or_else(|| panic!("{at}.{k}: missing"));
                assert_subset(v, gv, &format!("{at}.{k}"));
            }
        }
        (Value::Array(e), Value::Array(g)) => {
            assert_eq!(e.len(), g.len(), "{at}: length");
            for (i, (x, y)) in e.iter().zip(g).enumerate() {
                assert_subset(x, y, &format!("{at}[{i}]"));
            }
        }
        (Value::Number(e), Value::Number(g)) if e.is_f64() || g.is_f64() => {
            let (e, g) = (e.as_f64().unwrap(), g.as_f64().unwrap());
            assert!(
                (e - g).abs() <= 1e-12 * e.abs().max(1.0),
                "{at}: expected {e}, got {g}"
            );
        }
        _ => assert_eq!(exp, got, "{at}"),
    }
}
