//! The three front doors give one answer (issue 13 item 4): with replay's candidate
//! flags, `proof adapt` and `proof serve` evaluate a record exactly as `proof replay`
//! does — the same shadow and enforced verdicts, bucket, drift kind and drift cause —
//! over the conformance traffic with demo.v1 → demo.v2, under the default salt and
//! under a `--salt` of one's own.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{conformance, text};
use proof::orchestrator::enforcer::bucket;
use proof::replay::record;
use serde_json::Value;

fn proof() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_proof"));
    c.current_dir(conformance()).env_remove("PROOF_POLICY_DIR");
    c
}

/// The engine flags all three doors get: baseline demo.v1, candidate demo.v2.
fn engine_flags(salt: Option<&str>) -> Vec<String> {
    let mut v: Vec<String> = [
        "--ir",
        "demo.v1.ir.json",
        "--candidate-ir",
        "demo.v2.ir.json",
        "--list",
        "sanctions=sanctions.csv",
        "--list",
        "high_risk=high_risk.txt",
    ]
    .map(String::from)
    .to_vec();
    if let Some(s) = salt {
        v.extend(["--salt".to_string(), s.to_string()]);
    }
    v
}

/// What one door says about one record.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    shadow: String,
    enforced: String,
    bucket: u64,
    kind: Option<String>,
    cause: Option<String>,
}

fn answer(v: &Value) -> Answer {
    let s = |k: &str| v[k].as_str().map(String::from);
    Answer {
        shadow: v["shadow"]["verdict"].as_str().unwrap().to_string(),
        enforced: v["enforced"]["verdict"].as_str().unwrap().to_string(),
        bucket: v["bucket"].as_u64().unwrap(),
        kind: s("drift_kind"),
        cause: s("drift_cause"),
    }
}

/// The records of the traffic that replay evaluates (accepted by the record reader,
/// of the baseline policy or none), with their line text.
fn evaluable() -> Vec<(String, String)> {
    let traffic = std::fs::read_to_string(conformance().join("traffic.jsonl")).unwrap();
    traffic
        .lines()
        .filter_map(|line| {
            let r = record::parse_line(line.as_bytes()).ok()?;
            match r.policy_id.as_deref() {
                None | Some("demo.v1") => Some((r.request_id, line.to_string())),
                Some(_) => None,
            }
        })
        .collect()
}

/// Replay at 100 % with --drift-details: every drifting record's answer, plus the
/// report's verdict counts and the number evaluated.
fn replay(salt: Option<&str>) -> (BTreeMap<String, Answer>, Value) {
    let dir = tempfile::tempdir().unwrap();
    let details = dir.path().join("drift.jsonl");
    let o = proof()
        .arg("replay")
        .arg("traffic.jsonl")
        .args(engine_flags(salt))
        .args(["--rollout", "100", "--max-rejects", "3", "--drift-max", "1"])
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg("--drift-details")
        .arg(&details)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let drifting = std::fs::read_to_string(&details)
        .unwrap()
        .lines()
        .map(|l| {
            let d: Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| d[k].as_str().unwrap().to_string();
            (
                s("request_id"),
                Answer {
                    shadow: s("shadow"),
                    enforced: s("enforced"),
                    bucket: d["bucket"].as_u64().unwrap(),
                    kind: Some(s("kind")),
                    cause: Some(s("cause")),
                },
            )
        })
        .collect();
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/report.json")).unwrap())
            .unwrap();
    (drifting, report)
}

fn adapt(salt: Option<&str>, line: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("record.json");
    std::fs::write(&ctx, line).unwrap();
    let o = proof()
        .arg("adapt")
        .args(engine_flags(salt))
        .args(["--enforce", "--rollout", "100", "--context"])
        .arg(&ctx)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// A running `proof serve`; killed on drop.
struct Server(Child, SocketAddr);

impl Server {
    fn start(salt: Option<&str>) -> Server {
        let mut child = proof()
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--enforce", "--rollout", "100"])
            .args(engine_flags(salt))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("proof serve exited before listening")
                .unwrap();
            if let Some(a) = line.strip_prefix("proof serve: listening on ") {
                break a.trim().parse().unwrap();
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Server(child, addr)
    }

    fn post(&self, body: &[u8]) -> (u16, Value) {
        let mut s = TcpStream::connect(self.1).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "POST /v1/adapt HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(body).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..split]);
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, serde_json::from_slice(&raw[split + 4..]).unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn same_answers_from_all_three(salt: Option<&str>) {
    let (drifting, report) = replay(salt);
    let salt_used = salt.unwrap_or("demo.v1");
    assert_eq!(report["config"]["salt"], salt_used);
    let records = evaluable();
    assert_eq!(
        records.len() as u64,
        report["records"]["evaluated"].as_u64().unwrap()
    );
    // The fixture drifts v1 → v2 on a handful of records, and keeps the rest.
    assert_eq!(drifting.len(), 4, "{drifting:?}");
    assert_eq!(
        report["drift"]["events"].as_u64().unwrap(),
        drifting.len() as u64
    );
    let server = Server::start(salt);
    let mut tally: BTreeMap<(&str, String), u64> = BTreeMap::new();
    let mut seen_drift = 0;
    for (id, line) in &records {
        let from_adapt = adapt(salt, line);
        let (status, from_serve) = server.post(line.as_bytes());
        assert_eq!(status, 200, "{id}: {from_serve}");
        let a = answer(&from_adapt);
        assert_eq!(answer(&from_serve), a, "{id}: serve and adapt differ");
        assert_eq!(from_adapt["policy_id"], "demo.v2", "{id}");
        // The SPEC §3 bucket under the salt replay used.
        assert_eq!(a.bucket, u64::from(bucket(salt_used, id)), "{id}");
        match drifting.get(id) {
            Some(r) => {
                seen_drift += 1;
                assert_eq!(&a, r, "{id}: adapt/serve and replay differ");
                assert_eq!(from_adapt["drift"], true, "{id}");
            }
            None => {
                assert_eq!((&a.kind, &a.cause), (&None, &None), "{id}");
                assert_eq!(a.shadow, a.enforced, "{id}");
                assert_eq!(from_serve["drift"], false, "{id}");
            }
        }
        *tally.entry(("shadow", a.shadow.clone())).or_default() += 1;
        *tally.entry(("enforced", a.enforced.clone())).or_default() += 1;
    }
    assert_eq!(seen_drift, drifting.len());
    // Every evaluated record's verdicts, summed, are replay's verdict counts.
    for (path, counts) in report["verdicts"].as_object().unwrap() {
        for (verdict, n) in counts.as_object().unwrap() {
            let got = tally
                .get(&(path.as_str(), verdict.clone()))
                .copied()
                .unwrap_or(0);
            assert_eq!(got, n.as_u64().unwrap(), "{path} {verdict}");
        }
    }
}

#[test]
fn adapt_serve_and_replay_agree_under_the_default_salt() {
    same_answers_from_all_three(None);
}

#[test]
fn adapt_serve_and_replay_agree_under_a_salt_of_ones_own() {
    same_answers_from_all_three(Some("canary-2026-11"));
}

#[test]
fn without_candidate_flags_both_paths_serve_the_one_ir() {
    // SPEC §7's default: the same IR on both paths, salted with its id; no drift.
    let line = &evaluable()[0].1;
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("record.json");
    std::fs::write(&ctx, line).unwrap();
    let o = proof()
        .args(["adapt", "--ir", "demo.v2.ir.json"])
        .args(["--list", "sanctions=sanctions.csv"])
        .args(["--list", "high_risk=high_risk.txt"])
        .args(["--enforce", "--rollout", "100", "--context"])
        .arg(&ctx)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = v["request_id"].as_str().unwrap();
    assert_eq!(v["bucket"].as_u64(), Some(u64::from(bucket("demo.v2", id))));
    assert_eq!(v["drift"], false);
}

#[test]
fn candidate_flag_errors_are_usage_errors() {
    let o = proof()
        .args(["adapt", "--ir", "demo.v1.ir.json", "--context", "x.json"])
        .args(["--shadow-weights", "weights.yaml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("--shadow-weights only applies with --shadow-selector weighted"),
        "{}",
        text(&o)
    );
    let o = proof()
        .args(["serve", "--ir", "demo.v1.ir.json"])
        .args(["--candidate-policy", "no.such.policy"])
        .args(["--policy-dir", "."])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no.such.policy"),
        "{}",
        text(&o)
    );
}

/// `--bucket-key` (SPEC §3) keys adapt's bucket as replay's: the conformance known answer
/// (salt demo.v1, key `65` for an `audit.score` of 65 → 7734), the request id when the
/// value is missing or an object.
#[test]
fn adapt_keys_the_bucket_by_the_bucket_key_as_replay_does() {
    let bucket = |ctx: &str, key: bool| {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("record.json");
        std::fs::write(&f, ctx).unwrap();
        let mut c = proof();
        c.arg("adapt")
            .args(engine_flags(None))
            .arg("--context")
            .arg(&f);
        if key {
            c.args(["--bucket-key", "audit.score"]);
        }
        let o = c.output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        v["bucket"].as_u64().unwrap()
    };
    let scored = r#"{"ts":1,"request_id":"req-0000","context":{"audit":{"score":65.0}}}"#;
    assert_eq!(bucket(scored, true), 7734);
    // Without the flag, or without the value, the request id: req-0000 → 7626.
    assert_eq!(bucket(scored, false), 7626);
    let unscored = r#"{"ts":1,"request_id":"req-0000","context":{"audit":{"score":{}}}}"#;
    assert_eq!(bucket(unscored, true), 7626);
    let o = proof()
        .args([
            "adapt",
            "--ir",
            "demo.v1.ir.json",
            "--bucket-key",
            "audit..score",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("empty segment"));
}
