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
    // The last day that still ends by 9999-12-31T23:59:59.999Z.
    let (code, out, err) = gen_(&[
        "--records",
        "50",
        "--start",
        "9999-12-31T00:00:00Z",
        "--duration",
        "1d",
    ]);
    assert_eq!(code, 0, "{err}");
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let ts = v["ts"].as_str().unwrap();
        assert!(ts.starts_with("9999-12-31T"), "{ts}");
    }
    let (code, out, err) = gen_(&["--records", "0"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty());
}
