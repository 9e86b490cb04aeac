//! `proof gen` end to end: the ranges its help states are the ones it enforces, and
//! every record it writes is one replay can read.

use std::process::Command;

fn gen_(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_proof"))
        .arg("gen")
        .args(args)
        .output()
        .expect("run proof gen");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn start_and_duration_outside_their_range_exit_2_naming_it() {
    // Before the Unix epoch.
    let (code, out, err) = gen_(&["--records", "1", "--start", "1969-12-31T23:59:59Z"]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("1970-01-01T00:00:00Z..=9999-12-31T23:59:59.999Z"),
        "{err}"
    );
    // Records past year 9999 would be bad_ts to replay (they used to be written).
    let (code, out, err) = gen_(&[
        "--records",
        "2",
        "--start",
        "9999-12-31T00:00:00Z",
        "--duration",
        "2d",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("9999-12-31T23:59:59.999Z"), "{err}");
    // One millisecond past the last 5-minute window replay can report (it used to be
    // written, and replay rejected those records as bad_ts).
    let (code, out, err) = gen_(&[
        "--records",
        "2",
        "--start",
        "9999-12-30T23:55:00.001Z",
        "--duration",
        "1d",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains(
            "the records would run past 9999-12-31T23:54:59.999Z, the last instant whose \
             5-minute window (replay's default --window) ends by 9999-12-31T23:59:59.999Z"
        ),
        "{err}"
    );
    for bad in ["0d", "1w", "-1d", "100000000000000d"] {
        let (code, _, err) = gen_(&["--records", "1", &format!("--duration={bad}")]);
        assert_eq!(code, 2, "--duration {bad}: {err}");
        assert!(
            err.contains("whole number > 0 with unit ms, s, m, h or d"),
            "{err}"
        );
    }
}

#[test]
fn the_edges_of_the_range_are_accepted() {
    let (code, out, err) = gen_(&["--records", "3", "--start", "1970-01-01T00:00:00Z"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 3);
    // The last day whose records replay's default 5-minute windows can all hold: it
    // ends at 9999-12-31T23:55:00Z (the window [23:55, 24:00) would end in year 10000).
    let (code, out, err) = gen_(&[
        "--records",
        "50",
        "--start",
        "9999-12-30T23:55:00Z",
        "--duration",
        "1d",
    ]);
    assert_eq!(code, 0, "{err}");
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let ts = v["ts"].as_str().unwrap();
        assert!(
            ts > "9999-12-30T23:55" && ts < "9999-12-31T23:55:00.000Z",
            "{ts}"
        );
    }
    let (code, out, err) = gen_(&["--records", "0"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty());
}

fn timestamps(out: &str) -> Vec<String> {
    out.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["ts"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn a_duration_under_a_day_spreads_records_over_the_span() {
    // 6 h: 14 046 of 20 000 records used to share 05:59:59.999Z; 1 h: 4 002 of 5 000.
    for (duration, records, end, last_minute) in [
        (
            "6h",
            20_000,
            "2026-11-02T06:00:00.000Z",
            "2026-11-02T05:59:",
        ),
        ("1h", 5_000, "2026-11-02T01:00:00.000Z", "2026-11-02T00:59:"),
    ] {
        let (code, out, err) = gen_(&["--records", &records.to_string(), "--duration", duration]);
        assert_eq!(code, 0, "{err}");
        let ts = timestamps(&out);
        assert_eq!(ts.len(), records);
        // RFC 3339 with milliseconds and Z sorts as time.
        assert!(
            ts.iter()
                .all(|t| t.as_str() >= "2026-11-02T00:00:00.000Z" && t.as_str() < end)
        );
        let mut most = 0;
        let mut run = 0;
        for (i, t) in ts.iter().enumerate() {
            run = if i > 0 && ts[i - 1] == *t { run + 1 } else { 1 };
            most = most.max(run);
        }
        assert!(most <= 3, "{duration}: {most} records on one millisecond");
        // The last minute of the span is night in the scaled profile: a small share.
        let tail = ts.iter().filter(|t| t.starts_with(last_minute)).count();
        assert!(
            tail * 100 < records,
            "{duration}: {tail} records in the last minute"
        );
    }
}

/// The README's `proof gen --verdicts … --tenants` command (3 000 records, flip ratio
/// `flip`) into `dir`; returns the log path.
fn gen_verdicts(dir: &std::path::Path, flip: &str) -> std::path::PathBuf {
    gen_verdicts_to(dir, flip, &format!("tenants-{flip}.jsonl"))
}

/// [`gen_verdicts`] into `dir/name` (`.parquet`: Parquet).
fn gen_verdicts_to(dir: &std::path::Path, flip: &str, name: &str) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let log = dir.join(name);
    let f = |p: &str| root.join(p).display().to_string();
    let (code, out, err) = gen_(&[
        "--records",
        "3000",
        "--tenants",
        "40",
        "--verdicts",
        &f("fixtures/policies/lksg.v1.ir.json"),
        "--list",
        &format!("sanctions={}", f("fixtures/lists/sanctions.csv")),
        "--list",
        &format!("ubo_watchlist={}", f("fixtures/lists/ubo_watchlist.txt")),
        "--list",
        &format!("high_risk={}", f("fixtures/lists/high_risk_countries.txt")),
        "--flip-ratio",
        flip,
        "-o",
        log.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    log
}

/// Replays `log` with the bundled canary scenario, sticky per tenant.
fn replay_tenants(log: &std::path::Path, out: &std::path::Path) -> (i32, serde_json::Value) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = Command::new(env!("CARGO_BIN_EXE_proof"))
        .arg("replay")
        .arg(log)
        .arg("--scenario")
        .arg(root.join("fixtures/scenarios/lksg_v2_canary.yaml"))
        .args([
            "--bucket-key",
            "tenant.id",
            "--min-requests",
            "1",
            "--quiet",
            "--out",
        ])
        .arg(out)
        .output()
        .unwrap();
    let report = std::fs::read(out.join("report.json"))
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    (
        o.status.code().unwrap_or(-1),
        serde_json::from_slice(&report).unwrap(),
    )
}

#[test]
fn generated_verdicts_replay_faithfully_except_exactly_the_flipped_share() {
    let dir = tempfile::tempdir().unwrap();
    // No flip: every verdict is what replay's baseline answers.
    let (_, r) = replay_tenants(&gen_verdicts(dir.path(), "0"), &dir.path().join("o0"));
    let evaluated = r["records"]["evaluated"].as_u64().unwrap();
    // 3 000 records less the few naming lksg.v0 (skipped, written without a verdict).
    assert!((2980..3000).contains(&evaluated), "{}", r["records"]);
    assert_eq!(r["fidelity"]["checked"], evaluated);
    assert_eq!(r["fidelity"]["unfaithful"], 0);
    // Every context has a tenant: none falls back to its request id.
    assert_eq!(r["records"]["bucket_key_missing"], 0);

    // 1 %: exactly ⌊evaluated × 0.01⌋ unfaithful, more than the default limit 0.001: exit 3.
    let log = gen_verdicts(dir.path(), "0.01");
    let (code, r) = replay_tenants(&log, &dir.path().join("o1"));
    let flipped = (evaluated as f64 * 0.01).floor() as u64;
    assert_eq!(r["fidelity"]["checked"], evaluated);
    assert_eq!(r["fidelity"]["unfaithful"], flipped);
    assert_eq!(r["fidelity"]["faithful"], evaluated - flipped);
    assert_eq!(code, 3);
    let head = r["summary"]["headline"].as_str().unwrap();
    let want = format!(
        "Run FAILED: the replay reproduced {} of {evaluated} production verdicts, {flipped} \
         unfaithful (",
        evaluated - flipped
    );
    assert!(head.starts_with(&want), "{head}");
    // The same seed gives the same bytes, and the records are those of plain `gen`
    // with a tenant and a verdict added.
    let second = dir.path().join("again");
    std::fs::create_dir(&second).unwrap();
    let again = gen_verdicts(&second, "0.01");
    assert_ne!(log, again);
    assert_eq!(std::fs::read(&log).unwrap(), std::fs::read(&again).unwrap());
    let (code, plain, err) = gen_(&["--records", "3000"]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&log).unwrap();
    let mut verdicts = 0;
    for (a, b) in plain.lines().zip(text.lines()) {
        let mut v: serde_json::Value = serde_json::from_str(b).unwrap();
        let t = v["context"]
            .as_object_mut()
            .unwrap()
            .remove("tenant")
            .unwrap();
        assert!(t["id"].as_str().unwrap().starts_with("t-00"), "{t}");
        verdicts += u64::from(v.as_object_mut().unwrap().remove("verdict").is_some());
        assert_eq!(v, serde_json::from_str::<serde_json::Value>(a).unwrap());
    }
    assert_eq!(verdicts, evaluated);
    assert_eq!(text.lines().count(), 3000);
    // The same records as Parquet (a `verdict` column) replay to the same figures.
    let parquet = gen_verdicts_to(dir.path(), "0.01", "tenants.parquet");
    let (code, p) = replay_tenants(&parquet, &dir.path().join("o2"));
    assert_eq!(code, 3);
    for key in ["fidelity", "records", "drift", "levels", "gate"] {
        assert_eq!(p[key], r[key], "{key}");
    }
}

#[test]
fn fidelity_flags_are_checked() {
    // --flip-ratio and --list need --verdicts; ranges as --help says.
    let (code, _, err) = gen_(&["--records", "1", "--flip-ratio", "0.1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--verdicts"), "{err}");
    let (code, _, err) = gen_(&["--records", "1", "--tenants", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--tenants"), "{err}");
    let (code, _, err) = gen_(&["--records", "1", "--verdicts", "/nonexistent/x.ir.json"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/nonexistent/x.ir.json"), "{err}");
    // OPA events carry the bundle's own answer: --verdicts and --tenants are refused
    // with --bundle, not ignored.
    for extra in [["--verdicts", "x.ir.json"], ["--tenants", "5"]] {
        let mut args = vec!["--records", "1", "--bundle", "fixtures/opa/gateway-v1"];
        args.extend(extra);
        let (code, _, err) = gen_(&args);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(extra[0]) && err.contains("--bundle"), "{err}");
    }
}
