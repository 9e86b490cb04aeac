//! `replay --plan` and `--confidence` end to end (SPEC §8, §9): Argo and Flagger files
//! on the conformance traffic worked by hand, the scenario key, the output columns, and
//! bad plans and confidence levels refused with exit 2 naming file, step, key and range.

mod common;

use std::process::Command;

use common::{conformance, root, text};
use serde_json::{Value, json};

/// The conformance policies, 1-minute windows, drift-max 0.05, 3 rejects allowed.
const GATE: &[&str] = &[
    "--window",
    "1m",
    "--drift-max",
    "0.05",
    "--max-rejects",
    "3",
];

fn run(extra: &[&str]) -> (i32, Value, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_proof"))
        .args(["replay", "traffic.jsonl"])
        .args(common::CONF_POLICIES)
        .args(GATE)
        .args(extra)
        .current_dir(conformance())
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    let report = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (
        o.status.code().unwrap_or(-1),
        report,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn plan_file(name: &str) -> String {
    root()
        .join("fixtures/plans")
        .join(name)
        .display()
        .to_string()
}

/// Windows of the traffic at 1m with drift at 100 % only: 08:06 (1 of 2), 08:12 (1 of
/// 3), 08:13 (1 of 2), and 08:19 (1 of 2, also at 50 %); every one breaches 0.05.
#[test]
fn argo_rollout_is_rolled_back_in_its_promoted_step() {
    let (code, r, err) = run(&["--plan", &plan_file("argo_rollout.yaml")]);
    assert_eq!(code, 1, "{err}");
    let p = &r["plan"];
    // setWeight 20 dropped, the analysis step ignored, 100 appended.
    assert_eq!(
        p["steps"],
        json!([{"rollout_percent": 10, "duration_seconds": 180},
               {"rollout_percent": 50, "duration_seconds": 240},
               {"rollout_percent": 100, "duration_seconds": null}])
    );
    assert_eq!(
        (p["failure_limit"].clone(), p["start"].clone()),
        (json!(1), json!("first"))
    );
    // 10 % over 08:00-08:03 and 50 % over 08:03-08:07 see no drift; at 100 % the window
    // 08:12 (1 of 3) is the first judged breach: rolled back at its end. Judged: the
    // windows 08:00..08:12, 25 requests, one new denial.
    assert_eq!(
        p["runs"],
        json!([{"start": "2026-11-05T08:00:00Z", "outcome": "rolled_back", "step": 3,
                "rollout_percent": 100, "at": "2026-11-05T08:13:00Z", "breached_windows": 1,
                "impact": {"requests": 25, "events": 1, "new_denials": 1, "missed_denials": 0}}])
    );
    assert_eq!(p["summary"]["rolled_back_by_step"], json!([0, 0, 1]));
    assert!(
        err.contains("plan ROLLED BACK in 1 of 1 runs (first at step 3, 08:13Z)"),
        "{err}"
    );
}

#[test]
fn flagger_canary_counts_to_its_threshold() {
    let (code, r, err) = run(&["--plan", &plan_file("flagger_canary.yaml")]);
    assert_eq!(code, 1, "{err}");
    let run = &r["plan"]["runs"][0];
    // 25 % (08:00-08:02), 50 % (08:02-08:04), then 100 %: 08:06 and 08:12 breach, the
    // second reaches threshold 2.
    assert_eq!(run["step"], 3);
    assert_eq!(run["at"], "2026-11-05T08:13:00Z");
    assert_eq!(run["breached_windows"], 2);
    assert_eq!(run["impact"]["events"], 2);
    assert_eq!(r["plan"]["failure_limit"], 2);
}

#[test]
fn a_plan_that_passes_exits_0_even_when_the_gate_breaches() {
    // 10 % for the whole traffic: no drift there. The gate at 100 % still breaches and
    // says so, but the plan decides the exit code (SPEC §9).
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("p.yaml");
    std::fs::write(&p, "steps: [{rollout: 10}]\nstart: every\n").unwrap();
    let (code, r, err) = run(&["--plan", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r["gate"]["passed"], false);
    assert_eq!(r["gate"]["exit_code"], 0);
    assert_eq!(r["plan"]["passed"], true);
    assert_eq!(r["plan"]["summary"]["promoted"], 17);
}

#[test]
fn a_scenario_plan_and_confidence_columns() {
    let d = tempfile::tempdir().unwrap();
    let sc = d.path().join("s.yaml");
    let c = conformance();
    std::fs::write(
        &sc,
        format!(
            "logs: [{0}/traffic.jsonl]\nir: {0}/demo.v1.ir.json\ncandidate_ir: {0}/demo.v2.ir.json\n\
             lists: {{sanctions: {0}/sanctions.csv, high_risk: {0}/high_risk.txt}}\n\
             window: 1m\ndrift_max: 0.05\nmax_rejects: 3\nconfidence: 0.6\n\
             plan: {0}/plan.yaml\n",
            c.display()
        ),
    )
    .unwrap();
    let out = d.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_proof"))
        .args([
            "replay",
            "--scenario",
            sc.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let exp: Value =
        serde_json::from_slice(&std::fs::read(c.join("expected_v2_plan_conf60.json")).unwrap())
            .unwrap();
    assert_eq!(r["plan"], exp["plan"]);
    assert_eq!(r["gate"]["proven_safe_rollout_percent"], 23);
    let csv = std::fs::read_to_string(out.join("windows.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "window_start,window_end,rollout_percent,requests,drift_events,drift_ratio,breach,lower,upper"
        )
    );
    // 08:06 at 100 %: 1 of 2 at 0.6 (z = 0.2533): lower 0.4118, upper 0.5882, a breach.
    let row = csv
        .lines()
        .find(|l| l.starts_with("2026-11-05T08:06:00Z,2026-11-05T08:07:00Z,100,"))
        .unwrap();
    let f: Vec<&str> = row.split(',').collect();
    assert_eq!(&f[3..7], ["2", "1", "0.5", "true"]);
    let (lo, hi): (f64, f64) = (f[7].parse().unwrap(), f[8].parse().unwrap());
    assert!(
        (lo - 0.411_832).abs() < 1e-6 && (hi - 0.588_168).abs() < 1e-6,
        "{row}"
    );
}

#[test]
fn bad_plans_and_levels_exit_2_naming_file_step_key_and_range() {
    let d = tempfile::tempdir().unwrap();
    let cases = [
        ("steps: []\n", "at least one step"),
        (
            "steps: [{rollout: 10, duration: 90s}, {rollout: 100}]\n",
            "step 1 (index 0): duration 90s is not a whole multiple of the window 1m",
        ),
        (
            "steps: [{rollout: 10, duration: 2m}, {rollout: 101}]\n",
            "step 2 (index 1), `rollout`: 101: an integer 0..=100",
        ),
        (
            "steps: [{rollout: 10}, {rollout: 100}]\n",
            "step 1 (index 0), `duration`: missing; only the last step may omit",
        ),
        (
            "steps: [{rollout: 10, duration: 1m, pause: 2}]\n",
            "`pause`: unknown key",
        ),
        (
            "kind: Rollout\nspec: {strategy: {canary: {steps: [{setWeight: 5}, {pause: {}}]}}}\n",
            "spec.strategy.canary.steps[1] (step 2), `pause.duration`: missing",
        ),
    ];
    for (i, (yaml, want)) in cases.iter().enumerate() {
        let p = d.path().join(format!("bad{i}.yaml"));
        std::fs::write(&p, yaml).unwrap();
        let (code, r, err) = run(&["--plan", p.to_str().unwrap()]);
        assert_eq!(code, 2, "{yaml}: {err}");
        assert!(r.is_null(), "nothing is written: {yaml}");
        assert!(err.contains(&format!("bad{i}.yaml")), "{yaml}: {err}");
        assert!(err.contains(want), "{yaml}: {err}");
    }
    for c in ["0.3", "1", "0.99999", "x"] {
        let (code, _, err) = run(&["--confidence", c]);
        assert_eq!(code, 2, "{c}: {err}");
        assert!(
            err.contains("--confidence") && err.contains("0.5..=0.9999"),
            "{c}: {err}"
        );
    }
    // A start that finds no window is a valid plan with one run that judges nothing.
    let p = d.path().join("late.yaml");
    std::fs::write(
        &p,
        "steps: [{rollout: 10, duration: 1m}]\nstart: 2030-01-01T00:00:00Z\n",
    )
    .unwrap();
    let (code, r, err) = run(&["--plan", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r["plan"]["runs"][0]["outcome"], "incomplete");
    assert_eq!(r["plan"]["runs"][0]["impact"]["requests"], 0);
}

/// The plan of `text` (written to a temp file named `name`), run over the traffic.
fn run_plan(name: &str, text: &str) -> (i32, Value, String) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join(name);
    std::fs::write(&p, text).unwrap();
    run(&["--plan", p.to_str().unwrap()])
}

/// Runs without the fields that number steps (`step`), for comparing plans whose steps
/// differ in number but not in what they judge.
fn runs_without_step(r: &Value) -> Value {
    let mut runs = r["plan"]["runs"].clone();
    for run in runs.as_array_mut().unwrap() {
        run.as_object_mut().unwrap().remove("step");
    }
    runs
}

#[test]
fn a_flagger_canary_of_200_000_weights_over_short_traffic() {
    // The traffic lasts 20 minutes: of 200 000 one-minute steps at 100 %, only the
    // first 20 hold windows. The run is the one of a 30-step canary (issue 24 item 7: the
    // simulation stops walking where the traffic ends).
    let canary = |n: usize| {
        let weights = vec!["100"; n].join(", ");
        format!(
            "kind: Canary\nspec:\n  analysis:\n    interval: 1m\n    threshold: 2\n    stepWeights: [{weights}]\n"
        )
    };
    let (code, long, err) = run_plan("long.yaml", &canary(200_000));
    assert_eq!(code, 1, "{err}");
    let (_, short, _) = run_plan("short.yaml", &canary(30));
    assert_eq!(long["plan"]["runs"], short["plan"]["runs"]);
    assert_eq!(long["plan"]["runs"][0]["outcome"], "rolled_back");
    assert_eq!(long["plan"]["steps"].as_array().unwrap().len(), 200_001);
    let by_step = long["plan"]["summary"]["rolled_back_by_step"]
        .as_array()
        .unwrap();
    assert_eq!(by_step.len(), 200_001);
    assert_eq!(by_step.iter().filter(|n| n.as_u64() != Some(0)).count(), 1);
}

#[test]
fn ten_thousand_steps_from_every_start_equal_one_long_step() {
    // 10 000 one-minute steps at 50 % judge every window as one 10 000-minute step at
    // 50 % does: the same runs, from every start, whatever the step number.
    let many: Vec<String> = (0..10_000)
        .map(|_| "{rollout: 50, duration: 1m}".to_string())
        .collect();
    let (code, r, err) = run_plan(
        "many.yaml",
        &format!("steps: [{}]\nstart: every\n", many.join(", ")),
    );
    let (code1, one, _) = run_plan(
        "one.yaml",
        "steps: [{rollout: 50, duration: 10000m}]\nstart: every\n",
    );
    assert_eq!((code, code1), (code1, code), "{err}");
    assert_eq!(r["plan"]["summary"]["runs"], 17);
    assert_eq!(runs_without_step(&r), runs_without_step(&one));
    assert_eq!(
        r["plan"]["summary"]["impact_events_max"],
        one["plan"]["summary"]["impact_events_max"]
    );
}

#[test]
fn argo_compound_durations_multi_document_manifests_and_large_json_plans() {
    // Argo's own duration grammar: 1h30m, 90s, 2m30s.
    let argo = concat!(
        "kind: Rollout\n",
        "spec:\n",
        "  strategy:\n",
        "    canary:\n",
        "      steps:\n",
        "        - setWeight: 10\n",
        "        - pause: {duration: 1h30m}\n",
        "        - setWeight: 20\n",
        "        - pause: {duration: 90s}\n",
        "        - pause: {duration: 30s}\n",
    );
    let (code, r, err) = run_plan("argo.yaml", argo);
    assert_ne!(code, 2, "{err}");
    assert_eq!(
        r["plan"]["steps"],
        json!([{"rollout_percent": 10, "duration_seconds": 5400},
               {"rollout_percent": 20, "duration_seconds": 120},
               {"rollout_percent": 100, "duration_seconds": null}])
    );
    // A Service, then the Rollout, as manifests are kept: the Rollout is the plan, the
    // Service is named in a note.
    let (code, r2, err) = run_plan(
        "app.yaml",
        &format!("apiVersion: v1\nkind: Service\nmetadata: {{name: verifier}}\n---\n{argo}"),
    );
    assert_ne!(code, 2, "{err}");
    assert_eq!(r2["plan"], r["plan"]);
    assert!(
        err.contains("note") && err.contains("Service verifier"),
        "{err}"
    );
    let (code, _, err) = run_plan("two.yaml", "kind: Service\n---\nkind: ConfigMap\n");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("2 YAML documents") && err.contains("document 1 (Service)"),
        "{err}"
    );
    // A large plain-JSON plan is JSON, not an alias bomb.
    let steps: Vec<Value> = (0..300_000)
        .map(|_| json!({"rollout": 50, "duration": "1m"}))
        .collect();
    let (code, r, err) = run_plan("big.json", &json!({ "steps": steps }).to_string());
    assert_ne!(code, 2, "{err}");
    assert!(!err.contains("alias"), "{err}");
    assert_eq!(r["plan"]["steps"].as_array().unwrap().len(), 300_000);
}
