//! OPA decision logs through the real binary (SPEC §12): the upload body (a JSON array,
//! plain or gzip) reads as the JSONL log does, Parquet events read as their JSON lines,
//! partials of an OPA replay merge into the one run, and bad input gets exit 2 with a
//! message naming what is wrong. Counts are those of the conformance case
//! (fixtures/conformance/opa: 47 lines, one broken, one without path, one erased).

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray};
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use serde_json::Value;

mod common;
use common::conformance;

const PAIR: [&str; 4] = [
    "--bundle",
    "shop-v1",
    "--candidate-bundle",
    "shop-v2.tar.gz",
];

/// Runs proof in the OPA conformance folder; exit code, report.json (if written), stderr.
fn proof(args: &[&str]) -> (i32, Option<Value>, String) {
    let out = tempfile::tempdir().unwrap();
    let sub: &[&str] = if args.first() == Some(&"merge") {
        &[]
    } else {
        &["replay"]
    };
    let o = Command::new(env!("CARGO_BIN_EXE_proof"))
        .args(sub)
        .args(args)
        .args(["--out", out.path().to_str().unwrap()])
        .current_dir(conformance().join("opa"))
        .output()
        .unwrap();
    let report = std::fs::read(out.path().join("report.json"))
        .ok()
        .map(|b| serde_json::from_slice(&b).unwrap());
    (
        o.status.code().unwrap_or(-1),
        report,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The 46 events of decisions.jsonl that are JSON (the broken line left out).
fn events() -> Vec<Value> {
    std::fs::read_to_string(conformance().join("opa/decisions.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn fixed(r: &Value) -> Value {
    let keys = ["verdicts", "drift", "levels", "windows", "gate", "fidelity"];
    keys.iter().map(|k| (k.to_string(), r[k].clone())).collect()
}

#[test]
fn an_upload_body_reads_as_the_log_does() {
    let d = tempfile::tempdir().unwrap();
    let plain = d.path().join("body.json");
    std::fs::write(&plain, serde_json::to_vec_pretty(&events()).unwrap()).unwrap();
    let gz = d.path().join("body.json.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(&serde_json::to_vec(&events()).unwrap())
        .unwrap();
    enc.finish().unwrap();
    let common = [
        "--rollout",
        "50",
        "--drift-max",
        "0.1",
        "--max-rejects",
        "2",
    ];
    let mut args = vec!["decisions.jsonl"];
    args.extend(PAIR);
    args.extend(common);
    args.extend(["--max-unfaithful-ratio", "0.05"]);
    let (code, log, err) = proof(&args);
    assert_eq!(code, 1, "{err}");
    let log = log.unwrap();
    for body in [&plain, &gz] {
        let mut a = vec![body.to_str().unwrap()];
        a.extend(PAIR);
        a.extend(common);
        a.extend(["--max-unfaithful-ratio", "0.05"]);
        let (code, r, err) = proof(&a);
        assert_eq!(code, 1, "{err}");
        let r = r.unwrap();
        // 46 elements: the broken line is not in the body, so one rejection fewer.
        assert_eq!(r["records"]["read"], 46);
        assert_eq!(
            r["records"]["rejected_by_reason"],
            serde_json::json!({"missing_path": 1})
        );
        assert_eq!(
            r["records"]["skipped_by_reason"],
            serde_json::json!({"redacted": 1})
        );
        assert_eq!(fixed(&r), fixed(&log), "{}", body.display());
    }
}

#[test]
fn a_broken_upload_body_names_the_byte_offset() {
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("bad.json");
    std::fs::write(&bad, b"[{\"decision_id\": \"a\"},\n  {\"decision_id\": }]").unwrap();
    let mut a = vec![bad.to_str().unwrap()];
    a.extend(PAIR);
    let (code, r, err) = proof(&a);
    assert_eq!(code, 2, "{err}");
    assert!(r.is_none());
    assert!(err.contains("byte offset 41"), "{err}");
}

#[test]
fn ir_flags_and_bundles_do_not_mix() {
    for extra in [
        vec!["--ir", "x.ir.json"],
        vec!["--list", "a=b.txt"],
        vec!["--selector", "weighted"],
    ] {
        let mut a = vec!["decisions.jsonl"];
        a.extend(PAIR);
        a.extend(extra.iter().copied());
        let (code, _, err) = proof(&a);
        assert_eq!(code, 2, "{extra:?}: {err}");
        assert!(err.contains("cannot be mixed with --bundle"), "{err}");
    }
    let (code, _, err) = proof(&["decisions.jsonl", "--bundle", "shop-v1"]);
    assert_eq!(code, 2);
    assert!(err.contains("--candidate-bundle is required"), "{err}");
    let mut a = vec!["decisions.jsonl"];
    a.extend(PAIR);
    a.extend(["--decision", "//"]);
    let (code, _, err) = proof(&a);
    assert_eq!(code, 2);
    assert!(err.contains("--decision '//'"), "{err}");
}

#[test]
fn a_bundle_with_a_syntax_error_names_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let b = d.path().join("broken");
    std::fs::create_dir_all(b.join("shop/orders")).unwrap();
    std::fs::write(
        b.join("shop/orders/policy.rego"),
        "package shop.orders\n\nallow if {\n  input.x ==\n",
    )
    .unwrap();
    let (code, _, err) = proof(&[
        "decisions.jsonl",
        "--bundle",
        b.to_str().unwrap(),
        "--candidate-bundle",
        "shop-v2.tar.gz",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("policy.rego:"), "{err}");
}

#[test]
fn halves_of_an_opa_replay_merge_into_the_one_run() {
    let d = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(conformance().join("opa/decisions.jsonl")).unwrap();
    let (mut a, mut b) = (String::new(), String::new());
    for (i, l) in text.lines().enumerate() {
        let half = if i % 2 == 0 { &mut a } else { &mut b };
        half.push_str(l);
        half.push('\n');
    }
    let (pa, pb) = (d.path().join("a.jsonl"), d.path().join("b.jsonl"));
    std::fs::write(&pa, a).unwrap();
    std::fs::write(&pb, b).unwrap();
    for (log, part) in [(&pa, "a.part"), (&pb, "b.part")] {
        let part = d.path().join(part);
        let mut args = vec![log.to_str().unwrap()];
        args.extend(PAIR);
        args.extend([
            "--max-rejects",
            "9",
            "--max-unfaithful-ratio",
            "1",
            "--partial-out",
            part.to_str().unwrap(),
        ]);
        let (code, _, err) = proof(&args);
        assert!(code == 0 || code == 1, "{err}");
    }
    let gate = [
        "--rollout",
        "50",
        "--drift-max",
        "0.1",
        "--max-rejects",
        "2",
        "--max-unfaithful-ratio",
        "0.05",
    ];
    let (bp, ap) = (d.path().join("b.part"), d.path().join("a.part"));
    let mut m = vec!["merge", bp.to_str().unwrap(), ap.to_str().unwrap()];
    m.extend(gate);
    let (code, merged, err) = proof(&m);
    assert_eq!(code, 1, "{err}");
    let mut one = vec!["decisions.jsonl"];
    one.extend(PAIR);
    one.extend(gate);
    let (code, single, err) = proof(&one);
    assert_eq!(code, 1, "{err}");
    let (merged, single) = (merged.unwrap(), single.unwrap());
    assert_eq!(merged["records"], single["records"]);
    assert_eq!(fixed(&merged), fixed(&single));
    // The bundles as the one run names them (revision, digest, path, selector `opa`).
    for side in ["baseline", "candidate"] {
        assert_eq!(merged["inputs"][side], single["inputs"][side], "{side}");
    }
    assert_eq!(merged["inputs"]["candidate"]["selector"], "opa");
    // A part of an IR replay is another engine: refused, naming the field.
    let ir_part = d.path().join("ir.part");
    let c = conformance();
    let o = Command::new(env!("CARGO_BIN_EXE_proof"))
        .current_dir(&c)
        .args([
            "replay",
            "traffic.jsonl",
            "--ir",
            "demo.v1.ir.json",
            "--list",
            "sanctions=sanctions.csv",
            "--list",
            "high_risk=high_risk.txt",
            "--max-rejects",
            "9",
            "--partial-out",
            ir_part.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(ir_part.exists(), "{}", String::from_utf8_lossy(&o.stderr));
    let (code, _, err) = proof(&["merge", ap.to_str().unwrap(), ir_part.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("differ in engine"), "{err}");
}

fn write_parquet(path: &Path, cols: Vec<(&str, ArrayRef)>) {
    let schema = Arc::new(Schema::new(
        cols.iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch =
        RecordBatch::try_new(schema.clone(), cols.into_iter().map(|c| c.1).collect()).unwrap();
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn parquet_events_read_as_their_json_lines() {
    let evs = events();
    let col = |f: &dyn Fn(&Value) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from(evs.iter().map(f).collect::<Vec<_>>()))
    };
    let s = |k: &'static str| move |e: &Value| e.get(k).and_then(Value::as_str).map(String::from);
    let j = |k: &'static str| move |e: &Value| e.get(k).map(Value::to_string);
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("events.parquet");
    write_parquet(
        &p,
        vec![
            ("decision_id", col(&s("decision_id"))),
            ("timestamp", col(&s("timestamp"))),
            ("path", col(&s("path"))),
            ("input", col(&j("input"))),
            ("result", col(&j("result"))),
            ("nd_builtin_cache", col(&j("nd_builtin_cache"))),
        ],
    );
    let common = [
        "--rollout",
        "50",
        "--drift-max",
        "0.1",
        "--max-rejects",
        "2",
        "--max-unfaithful-ratio",
        "0.05",
    ];
    // The same events as JSON lines, without the erased/masked lists the Parquet file
    // above leaves out, so both inputs hold the same records.
    let jsonl = d.path().join("events.jsonl");
    let mut text = String::new();
    for e in &evs {
        let mut e = e.clone();
        if let Some(o) = e.as_object_mut() {
            o.remove("erased");
            o.remove("masked");
        }
        text.push_str(&e.to_string());
        text.push('\n');
    }
    std::fs::write(&jsonl, text).unwrap();
    let mut a = vec![p.to_str().unwrap()];
    a.extend(PAIR);
    a.extend(common);
    let (code_p, rp, err) = proof(&a);
    let rp = rp.unwrap_or_else(|| panic!("{err}"));
    let mut b = vec![jsonl.to_str().unwrap()];
    b.extend(PAIR);
    b.extend(common);
    let (code_j, rj, err) = proof(&b);
    let rj = rj.unwrap_or_else(|| panic!("{err}"));
    assert_eq!(code_p, code_j);
    assert_eq!(rp["records"], rj["records"]);
    assert_eq!(rp["records"]["read"], 46);
    assert_eq!(fixed(&rp), fixed(&rj));
    // A file without the required columns is a schema error.
    let q = d.path().join("wrong.parquet");
    write_parquet(&q, vec![("decision_id", col(&s("decision_id")))]);
    let mut c = vec![q.to_str().unwrap()];
    c.extend(PAIR);
    let (code, _, err) = proof(&c);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("missing required column 'timestamp'"), "{err}");
}

/// Runs `proof adapt` with the gateway bundle pair on `event` (written to a file);
/// exit code, the JSON answer (if any) and stderr.
fn adapt(event: &Value, args: &[&str]) -> (i32, Option<Value>, String) {
    let d = tempfile::tempdir().unwrap();
    let ev = d.path().join("event.json");
    std::fs::write(&ev, serde_json::to_vec_pretty(event).unwrap()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_proof"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["adapt", "--context", ev.to_str().unwrap()])
        .args([
            "--bundle",
            "fixtures/opa/gateway-v1",
            "--candidate-bundle",
            "fixtures/opa/gateway-v2",
        ])
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        serde_json::from_slice(&o.stdout).ok(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// bob is an editor; gateway-v2 grants editors DELETE only under /api/v2/orders/.
fn bob_deletes_a_v1_order() -> Value {
    serde_json::json!({
        "decision_id": "adapt-1",
        "path": "gateway/authz/response",
        "timestamp": "2026-11-12T10:00:00.123456789Z",
        "input": {"user": "bob", "tenant": "t-07", "tier": "pro", "method": "DELETE",
                  "path": "/api/v1/orders/17", "ip": "10.0.0.9", "requests_this_minute": 14,
                  "token": {"exp_ns": 1_794_481_200_123_456_789_i64}},
        "result": {"allowed": true, "reasons": [], "status": 200}
    })
}

#[test]
fn adapt_explains_one_opa_event_as_replay_would() {
    // Hand-checked against fixtures/opa/gateway-v{1,2}: v1 lets the editor delete
    // /api/v1/orders/17 (grant /api/*/orders/*), v2 does not, so `method_allowed` goes
    // from true to undefined and the response turns 200 → 403. Of the rules the
    // response depends on, allow, deny, status, method_allowed and token_skew_ns (new
    // in v2) differ; the roots (no differing reference) are method_allowed and
    // token_skew_ns, the first in byte order is the cause. Bucket: SHA-256("gw-1:bob")
    // → 992 (python3 hashlib), under 10 % × 100 = 1000.
    let (code, out, err) = adapt(
        &bob_deletes_a_v1_order(),
        &["--bucket-key", "input.user", "--rollout", "10", "--enforce"],
    );
    assert_eq!(code, 0, "{err}");
    let mut out = out.unwrap();
    let hash = out["ir_hash"].take();
    assert!(
        hash.as_str()
            .is_some_and(|h| h.len() == 71 && h.starts_with("sha256:")),
        "{hash}"
    );
    let want = serde_json::json!({
        "engine": "opa",
        "policy_id": "gw-2",
        "ir_hash": null,
        "request_id": "adapt-1",
        "decision": "gateway/authz/response",
        "options": {"enforce": true, "rollout_percent": 10, "drift_max_ratio": 0.005},
        "plan": null,
        "shadow": {"policy_id": "gw-1", "verdict": "ok", "failed_rules": [], "errors": {},
                   "value": {"allowed": true, "reasons": [], "status": 200}},
        "enforced": {"policy_id": "gw-2", "verdict": "fail", "failed_rules": ["(decision)"],
                     "errors": {},
                     "value": {"allowed": false, "reasons": ["method not allowed"], "status": 403}},
        "enforced_applied": true,
        "drift": true,
        "bucket": 992,
        "bucket_key": "bob",
        "in_rollout": true,
        "drift_kind": "ok->fail",
        "drift_cause": "method_allowed",
        "changed": false,
        "recorded": {"verdict": "ok", "value": {"allowed": true, "reasons": [], "status": 200},
                     "faithful": true},
        "dry_run": false,
        "ts": "2026-11-12T10:00:00.123456789Z"
    });
    assert_eq!(out, want);
    // Without --enforce and the bucket key: keyed by decision_id, SHA-256("gw-1:adapt-1")
    // → 9556, outside 10 %; the drift is reported as a kind, not applied.
    let (code, out, err) = adapt(&bob_deletes_a_v1_order(), &["--rollout", "10"]);
    assert_eq!(code, 0, "{err}");
    let out = out.unwrap();
    let got: Vec<&Value> = [
        "bucket",
        "bucket_key",
        "in_rollout",
        "enforced_applied",
        "drift",
        "drift_kind",
    ]
    .iter()
    .map(|k| &out[*k])
    .collect();
    assert_eq!(
        got,
        [
            &serde_json::json!(9556),
            &Value::Null,
            &Value::Bool(false),
            &Value::Bool(false),
            &Value::Bool(false),
            &serde_json::json!("ok->fail")
        ]
    );
}

#[test]
fn adapt_shows_a_changed_value_and_an_unrecorded_result() {
    // alice (admin) on the free tier at 150 requests a minute: over both quotas (100 in
    // v1, 60 in v2), so both deny sets are non-empty (fail) but their messages differ:
    // changed, no drift. No `result`: recorded undefined, verdict fail, faithful.
    let ev = serde_json::json!({
        "decision_id": "adapt-2",
        "path": "/gateway/authz/deny",
        "timestamp": "2026-11-12T10:00:00Z",
        "input": {"user": "alice", "tier": "free", "method": "GET", "path": "/api/v1/orders/17",
                  "ip": "10.0.0.9", "requests_this_minute": 150,
                  "token": {"exp_ns": 1_794_481_200_000_000_000_i64}}
    });
    let (code, out, err) = adapt(&ev, &["--dry-run", "--enforce", "--rollout", "100"]);
    assert_eq!(code, 0, "{err}");
    let out = out.unwrap();
    assert_eq!(out["decision"], "gateway/authz/deny");
    assert_eq!(
        out["shadow"]["value"],
        serde_json::json!(["rate limit exceeded"])
    );
    assert_eq!(
        out["enforced"]["value"],
        serde_json::json!(["quota exceeded"])
    );
    assert_eq!(out["shadow"]["verdict"], "fail");
    assert_eq!(out["enforced"]["verdict"], "fail");
    assert_eq!(out["changed"], true);
    assert_eq!(out["drift_kind"], Value::Null);
    assert_eq!(out["drift_cause"], Value::Null);
    // --dry-run: in the rollout, never applied
    assert_eq!(out["in_rollout"], true);
    assert_eq!(out["enforced_applied"], false);
    assert_eq!(
        out["recorded"],
        serde_json::json!({"verdict": "fail", "faithful": true})
    );
}

#[test]
fn adapt_with_bundles_refuses_ir_flags_and_events_replay_would_not_read() {
    let ev = bob_deletes_a_v1_order();
    for extra in [
        vec!["--list", "a=b.txt"],
        vec!["--selector", "weighted"],
        vec!["--candidate-ir", "x.ir.json"],
        vec!["--ir", "x.ir.json"],
    ] {
        let (code, out, err) = adapt(&ev, &extra);
        assert_eq!(code, 2, "{extra:?}: {err}");
        assert!(out.is_none());
        assert!(
            err.contains("cannot be mixed with --bundle or --candidate-bundle"),
            "{extra:?}: {err}"
        );
    }
    // one bundle is not a comparison
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("e.json");
    std::fs::write(&p, ev.to_string()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_proof"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["adapt", "--context", p.to_str().unwrap()])
        .args(["--bundle", "fixtures/opa/gateway-v1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("give both --bundle"), "{err}");
    // an event replay rejects: named with its reason
    let mut no_ts = ev.clone();
    no_ts.as_object_mut().unwrap().remove("timestamp");
    let (code, _, err) = adapt(&no_ts, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("event.json") && err.contains("missing_ts"),
        "{err}"
    );
    // an erased input: replay skips it
    let mut erased = ev.clone();
    erased["erased"] = serde_json::json!(["/input/token"]);
    let (code, _, err) = adapt(&erased, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("skips this event as redacted"), "{err}");
}

#[test]
fn gen_writes_the_bundled_day_byte_for_byte() {
    // fixtures/opa/day.jsonl is `proof gen --bundle` output (docs/opa.md's command):
    // the same flags give the same bytes, and a replay through the same bundle
    // reproduces every recorded result (fidelity 2983 of 2983; 17 erased events skipped).
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("day.jsonl.gz");
    let o = Command::new(env!("CARGO_BIN_EXE_proof"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "gen",
            "--bundle",
            "fixtures/opa/gateway-v1",
            "--records",
            "3000",
        ])
        .args([
            "--start",
            "2026-11-12T00:00:00Z",
            "--duration",
            "1d",
            "--seed",
            "42",
        ])
        .args(["-o", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut text = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&out).unwrap()),
        &mut text,
    )
    .unwrap();
    let want = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/opa/day.jsonl"))
        .unwrap();
    assert!(text == want, "gen no longer writes fixtures/opa/day.jsonl");
    let o = Command::new(env!("CARGO_BIN_EXE_proof"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["replay", out.to_str().unwrap()])
        .args([
            "--bundle",
            "fixtures/opa/gateway-v1",
            "--candidate-bundle",
            "fixtures/opa/gateway-v1",
        ])
        .args(["--out", d.path().join("r").to_str().unwrap(), "-q"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: Value =
        serde_json::from_slice(&std::fs::read(d.path().join("r/report.json")).unwrap()).unwrap();
    assert_eq!(
        r["fidelity"],
        serde_json::json!({"checked": 2983, "faithful": 2983, "unfaithful": 0, "by_kind": {}})
    );
    assert_eq!(
        r["records"]["skipped_by_reason"],
        serde_json::json!({"redacted": 17})
    );
    // --decision picks the decisions; a path that names nothing is a usage error
    let o = Command::new(env!("CARGO_BIN_EXE_proof"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "gen",
            "--bundle",
            "fixtures/opa/gateway-v1",
            "--records",
            "5",
        ])
        .args(["--decision", "gateway/authz/deny"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let lines: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert!(
        lines
            .iter()
            .all(|e| e["path"] == "gateway/authz/deny" && e["result"].is_array())
    );
    let o = Command::new(env!("CARGO_BIN_EXE_proof"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "gen",
            "--bundle",
            "fixtures/opa/gateway-v1",
            "--decision",
            "//",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

/// `proof replay` in `dir` with the given bundles on `log`: exit code, report, stderr.
fn replay_in(dir: &Path, log: &Path, base: &Path, cand: &Path) -> (i32, Option<Value>, String) {
    let out = dir.join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_proof"))
        .current_dir(dir)
        .args(["replay", log.to_str().unwrap()])
        .args(["--bundle", base.to_str().unwrap()])
        .args(["--candidate-bundle", cand.to_str().unwrap()])
        .args(["--max-unfaithful-ratio", "1", "--max-rejects", "9"])
        .args(["--out", out.to_str().unwrap(), "-q"])
        .output()
        .unwrap();
    let report = std::fs::read(out.join("report.json"))
        .ok()
        .map(|b| serde_json::from_slice(&b).unwrap());
    let _ = std::fs::remove_dir_all(&out);
    (
        o.status.code().unwrap_or(-1),
        report,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn bad_bundles_stop_the_run_and_bad_events_are_counted_never_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (v1, v2) = (
        root.join("fixtures/opa/gateway-v1"),
        root.join("fixtures/opa/gateway-v2"),
    );
    let d = tempfile::tempdir().unwrap();
    let work = d.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let log = work.join("one.jsonl");
    std::fs::write(
        &log,
        "{\"decision_id\":\"a\",\"path\":\"gateway/authz/allow\",\"timestamp\":\"2026-11-12T10:00:00Z\"}\n",
    )
    .unwrap();
    let gz = |tar: Vec<u8>| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&tar).unwrap();
        e.finish().unwrap()
    };
    // A truncated tarball of a real bundle.
    let mut t = tar::Builder::new(Vec::new());
    t.append_dir_all(".", &v2).unwrap();
    let whole = gz(t.into_inner().unwrap());
    let cut = work.join("cut.tar.gz");
    std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
    let (code, r, err) = replay_in(&work, &log, &v1, &cut);
    assert_eq!((code, r.is_none()), (2, true), "{err}");
    assert!(
        err.contains("cut.tar.gz: not a readable .tar.gz bundle"),
        "{err}"
    );
    // A tarball with a `../` entry: refused, nothing written outside.
    let mut t = tar::Builder::new(Vec::new());
    for (name, body) in [
        (
            "gateway/authz/x.rego",
            "package gateway.authz\n\nallow := true\n",
        ),
        ("../escape.rego", "package x\n"),
    ] {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        t.append(&h, body.as_bytes()).unwrap();
    }
    let evil = work.join("evil.tar.gz");
    std::fs::write(&evil, gz(t.into_inner().unwrap())).unwrap();
    let (code, _, err) = replay_in(&work, &log, &v1, &evil);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`../escape.rego` leaves the bundle"), "{err}");
    assert!(!d.path().join("escape.rego").exists());
    // Data that conflicts with a rule: the data file is named.
    let clash = work.join("clash");
    for f in [
        "gateway/authz/policy.rego",
        "roles/data.json",
        "tiers/data.json",
    ] {
        let to = clash.join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(v1.join(f), to).unwrap();
    }
    std::fs::write(clash.join("gateway/authz/data.json"), r#"{"allow": false}"#).unwrap();
    let (code, _, err) = replay_in(&work, &log, &clash, &v2);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("data.json: data.gateway.authz.allow conflicts with rule `allow`"),
        "{err}"
    );

    // Events: an input 100 levels deep is evaluated; 200 deep is past the JSON
    // reader's nesting limit, a malformed record; a nd_builtin_cache of the wrong
    // shape makes time.now_ns an evaluation error on both paths (fail-closed).
    let nest = |n: usize| {
        let mut s = String::from("true");
        for _ in 0..n {
            s = format!("{{\"a\":{s}}}");
        }
        s
    };
    let ev = |id: &str, rest: &str| {
        format!(
            "{{\"decision_id\":\"{id}\",\"path\":\"gateway/authz/allow\",\"timestamp\":\"2026-11-12T10:00:00Z\",{rest}}}\n"
        )
    };
    let events = work.join("bad.jsonl");
    std::fs::write(
        &events,
        [
            ev("deep100", &format!("\"input\":{}", nest(100))),
            ev("deep200", &format!("\"input\":{}", nest(200))),
            ev(
                "nd",
                "\"input\":{\"user\":\"alice\",\"tier\":\"pro\",\"method\":\"GET\",\"path\":\"/api/v1/orders/1\",\"ip\":\"10.0.0.1\",\"requests_this_minute\":1,\"token\":{\"exp_ns\":1894470410000000000}},\"nd_builtin_cache\":[1]",
            ),
        ]
        .concat(),
    )
    .unwrap();
    let (code, r, err) = replay_in(&work, &events, &v1, &v2);
    assert!(code == 0 || code == 1 || code == 3, "{code}: {err}");
    let r = r.unwrap();
    assert_eq!(r["records"]["read"], 3);
    assert_eq!(r["records"]["evaluated"], 2);
    assert_eq!(
        r["records"]["rejected_by_reason"],
        serde_json::json!({"malformed": 1})
    );
    assert_eq!(r["rejections"][0]["line"], 2, "{}", r["rejections"]);
    // both evaluated events are denied on both paths: the deep one has no user, the
    // other's time.now_ns cannot be answered
    assert_eq!(r["verdicts"]["shadow"]["fail"], 2);
    assert_eq!(r["verdicts"]["enforced"]["fail"], 2);
    let errs: Vec<(String, String, u64)> = r["evaluation_errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().to_string(),
                e["reason"].as_str().unwrap().to_string(),
                e["records"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        errs,
        [
            ("enforced".to_string(), "nondeterministic".to_string(), 1),
            ("shadow".to_string(), "nondeterministic".to_string(), 1)
        ],
        "{}",
        r["evaluation_errors"]
    );
}
