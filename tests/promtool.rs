//! `metrics.om` of a real replay goes into Prometheus' TSDB through the real
//! `promtool tsdb create-blocks-from openmetrics` (SPEC §6). Needs promtool (Debian
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
    let c = conformance();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let replay = Command::new(env!("CARGO_BIN_EXE_proof"))
        .arg("replay")
        .arg(c.join("traffic.jsonl"))
        .arg("--ir")
        .arg(c.join("demo.v1.ir.json"))
        .arg("--candidate-ir")
        .arg(c.join("demo.v2.ir.json"))
        .arg("--list")
        .arg(format!("sanctions={}", c.join("sanctions.csv").display()))
        .arg("--list")
        .arg(format!("high_risk={}", c.join("high_risk.txt").display()))
        .args(["--rollout", "50", "--max-rejects", "3", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    // The conformance case breaches its gate at 50 % (expected_v2_basic_r50.json).
    assert_eq!(replay.status.code(), Some(1), "{}", text(&replay));
    let om = out.join("metrics.om");
    assert!(om.is_file(), "no metrics.om: {}", text(&replay));

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
    // Four 5-minute windows, 08:00 to 08:20 on 2026-11-05; a sample sits at each
    // window end, so the block spans 08:05 to 08:20 (promtool prints max + 1 ms).
    assert_eq!(b[1], "1793865900000", "min time:\n{stdout}");
    assert_eq!(b[2], "1793866800001", "max time:\n{stdout}");
    // Series: rollout 1 + requests 2 (shadow, enforced) + drift events 1 + drift
    // ratio 1 + what-if 7 (levels 0,1,5,10,25,50,100) + verdicts 6 (2 modes × 3) +
    // policy info 2 + latency histogram 17 (14 buckets, +Inf, _count, _sum) = 37,
    // each with one sample per window: 148 samples.
    assert_eq!(b[6], "37", "series:\n{stdout}");
    assert_eq!(b[4], "148", "samples:\n{stdout}");
}
