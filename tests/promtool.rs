//! `metrics.om` of a real replay goes into Prometheus' TSDB through the real
//! `promtool tsdb create-blocks-from openmetrics` (SPEC §6), with and without a
//! rollout plan, and `gate.prom` passes `promtool check metrics` with no timestamp
//! (node_exporter's textfile collector refuses timestamped files). Needs promtool (Debian
//! package `prometheus`, or PROMTOOL=/path/to/promtool): without it the test fails
//! and says how to install it.

mod common;

use common::{conformance, text};

use std::process::{Command, Output};

fn promtool() -> String {
    std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".to_string())
}

fn run_promtool(args: &[&str]) -> Output {
    let bin = promtool();
    match Command::new(&bin).args(args).output() {
        Ok(o) => o,
        Err(e) => panic!(
            "cannot run `{bin}` ({e}). This test needs Prometheus' promtool: install it with \
             `apt-get install prometheus` (Debian) or point PROMTOOL at the binary."
        ),
    }
}

#[test]
fn replay_metrics_backfill_into_a_tsdb_block() {
    // The fidelity command line (SPEC §11): its metrics.om has every SPEC §6 family and
    // the fidelity families too.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let replay = Command::new(env!("CARGO_BIN_EXE_proof"))
        .current_dir(conformance())
        .args(["replay", "traffic_verdicts.jsonl"])
        .args(common::CASE_V2_FIDELITY_SCORE_R25)
        .args(["--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    // The case passes its gate at 25 % (expected_v2_fidelity_score_r25.json).
    assert_eq!(replay.status.code(), Some(0), "{}", text(&replay));
    let om = out.join("metrics.om");
    assert!(om.is_file(), "no metrics.om: {}", text(&replay));
    let body = std::fs::read_to_string(&om).unwrap();
    // 37 of 39 faithful, one fail->ok and one ok->fail, at the end of the last window.
    for want in [
        "adapt_fidelity_checked_total{policy_id=\"demo.v1\"} 39 1793866800\n",
        "adapt_fidelity_faithful_total{policy_id=\"demo.v1\"} 37 1793866800\n",
        "adapt_fidelity_unfaithful_total{policy_id=\"demo.v1\",recorded=\"fail\",replayed=\"ok\"} 1 1793866800\n",
        "adapt_fidelity_unfaithful_total{policy_id=\"demo.v1\",recorded=\"ok\",replayed=\"fail\"} 1 1793866800\n",
        "adapt_fidelity_unfaithful_ratio{policy_id=\"demo.v1\"} 0.05128205128205128 1793866800\n",
    ] {
        assert!(body.contains(want), "no {want:?} in metrics.om:\n{body}");
    }

    let tsdb = dir.path().join("tsdb");
    let backfill = run_promtool(&[
        "tsdb",
        "create-blocks-from",
        "openmetrics",
        om.to_str().unwrap(),
        tsdb.to_str().unwrap(),
    ]);
    assert!(backfill.status.success(), "backfill: {}", text(&backfill));

    let list = run_promtool(&["tsdb", "list", tsdb.to_str().unwrap()]);
    assert!(list.status.success(), "tsdb list: {}", text(&list));
    let stdout = String::from_utf8_lossy(&list.stdout);
    // Columns: ULID, MIN TIME, MAX TIME, DURATION, NUM SAMPLES, NUM CHUNKS, NUM SERIES, SIZE.
    let blocks: Vec<Vec<&str>> = stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .collect();
    assert_eq!(blocks.len(), 1, "one block expected:\n{stdout}");
    let b = &blocks[0];
    // Two 10-minute windows, 08:00 to 08:20 on 2026-11-05; a sample sits at each
    // window end, so the block spans 08:10 to 08:20 (promtool prints max + 1 ms).
    assert_eq!(b[1], "1793866200000", "min time:\n{stdout}");
    assert_eq!(b[2], "1793866800001", "max time:\n{stdout}");
    // Series: rollout 1 + requests 2 (shadow, enforced) + drift events 1 + drift
    // ratio 1 + what-if 7 (levels 0,1,5,10,25,50,100) + verdicts 6 (2 modes × 3) +
    // policy info 2 + latency histogram 17 (14 buckets, +Inf, _count, _sum) + window
    // requests 1 + window counted 1 = 39, each with one sample per window (78), and
    // fidelity checked 1 + faithful 1 + unfaithful 6 + ratio 1 = 9 with one sample each.
    assert_eq!(b[6], "48", "series:\n{stdout}");
    assert_eq!(b[4], "87", "samples:\n{stdout}");
}

/// Runs the third conformance command line (1-minute windows, confidence 0.6,
/// plan.yaml from every start) into `out`.
fn replay_plan(out: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_proof"))
        .current_dir(conformance())
        .args(["replay", "traffic.jsonl"])
        .args(common::CASE_V2_PLAN_CONF60)
        .args(["--quiet", "--out"])
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn plan_metrics_backfill_and_gate_prom_has_no_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = replay_plan(&out);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let om = std::fs::read_to_string(out.join("metrics.om")).unwrap();
    // The first run starts at 08:00: 10 % for 3 minutes (windows 08:00 and 08:02; 08:01
    // has no record), 50 % for 5 minutes (08:03 to 08:07), then 100 % (08:09 to 08:13;
    // 08:08 has no record) until its second breached window, 08:13, rolls it back at
    // 08:14: 0 from there on (08:14 to 08:19, 08:16 without records).
    let plan: Vec<&str> = om
        .lines()
        .filter(|l| l.starts_with("adapt_plan_rollout_percent "))
        .map(|l| l.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(
        plan,
        [
            "10", "10", "50", "50", "50", "50", "50", "100", "100", "100", "100", "100", "0", "0",
            "0", "0", "0"
        ]
    );
    let tsdb = dir.path().join("tsdb");
    let backfill = run_promtool(&[
        "tsdb",
        "create-blocks-from",
        "openmetrics",
        out.join("metrics.om").to_str().unwrap(),
        tsdb.to_str().unwrap(),
    ]);
    assert!(backfill.status.success(), "backfill: {}", text(&backfill));
    let list = run_promtool(&["tsdb", "list", tsdb.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&list.stdout);
    let b: Vec<&str> = stdout.lines().nth(1).unwrap().split_whitespace().collect();
    // 17 windows; series as in the case above (39, the 7 default levels include the
    // gate's 100 %) plus the plan's level: 40 series × 17 windows.
    assert_eq!((b[6], b[4]), ("40", "680"), "{stdout}");

    let gate = out.join("gate.prom");
    let prom = std::fs::read_to_string(&gate).unwrap();
    // `name value` or `name{labels} value`: a third field would be a timestamp.
    for l in prom.lines().filter(|l| !l.starts_with('#')) {
        let fields = match l.rsplit_once('}') {
            Some((_, value)) => 1 + value.split_whitespace().count(),
            None => l.split_whitespace().count(),
        };
        assert_eq!(fields, 2, "{l:?} is not `name value` (a timestamp?)");
    }
    for want in [
        "proof_gate_passed 0\n",
        "proof_gate_exit_code 1\n",
        "proof_gate_max_safe_rollout_percent 23\n",
        "proof_gate_proven_safe_rollout_percent 23\n",
        "proof_gate_confidence 0.6\n",
        "proof_gate_plan_passed 0\n",
        "proof_gate_plan_runs{outcome=\"rolled_back\"} 5\n",
        "proof_gate_traffic_end_timestamp_seconds 1793866800\n",
    ] {
        assert!(prom.contains(want), "no {want:?} in gate.prom:\n{prom}");
    }
    let check = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&gate).unwrap())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "promtool check metrics: {}",
        text(&check)
    );
}
