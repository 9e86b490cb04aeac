//! `proof serve` end to end: the real binary on loopback (`--listen 127.0.0.1:0`),
//! driven by a small blocking HTTP/1.1 client over std `TcpStream`. Every wait is a
//! bounded poll; the child is killed when its guard drops.

mod common;

use common::conformance;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proof::orchestrator::enforcer::bucket;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A path under the crate root, as a string.
fn root_path(p: &str) -> String {
    common::root().join(p).display().to_string()
}

fn c(name: &str) -> String {
    conformance().join(name).display().to_string()
}

/// A running `proof serve`; killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_proof"));
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args);
        Server::spawn(cmd)
    }

    /// Starts `cmd`, which runs `proof serve` (perhaps through a shell).
    fn spawn(mut cmd: Command) -> Server {
        let mut child = cmd
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("PROOF_POLICY_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start proof serve");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = BufReader::new(child.stderr.take().unwrap());
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                if let Some(a) = line.strip_prefix("proof serve: listening on ") {
                    let _ = tx.send(a.trim().to_string());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let mut server = Server {
            child,
            addr: "127.0.0.1:1".parse().unwrap(),
            stderr,
        };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => server.addr = a.parse().expect("parseable address"),
            Err(_) => panic!(
                "proof serve did not report its address; stderr:\n{}",
                server.log()
            ),
        }
        server
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    fn req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        http(self.addr, method, path, headers, body)
    }

    fn adapt(&self, body: &[u8]) -> Resp {
        self.req("POST", "/v1/adapt", &[], body)
    }

    fn metrics(&self) -> String {
        let r = self.req("GET", "/metrics", &[], b"");
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
    }

    fn readyz(&self) -> (u16, Value) {
        let r = self.req("GET", "/readyz", &[], b"");
        (r.status, r.json())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A raw connection to the server whose reads give up after `timeout`.
fn connect(addr: SocketAddr, timeout: Duration) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(timeout)).unwrap();
    s
}

/// One request on a fresh connection (`Connection: close`), read to the end.
fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut s = connect(addr, Duration::from_secs(30));
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) before reading a large body: ignore a reset here.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw)
}

/// Status, headers and (de-chunked) body of one raw HTTP/1.1 response.
fn parse_response(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 4 + n..];
    }
}

/// The value of one series (exact name and label set as printed) in 0.0.4 text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(|v| v.trim().parse().expect("sample value"))
    })
}

/// Polls `f` every 20 ms until it returns Some, for at most 60 s.
fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn lists() -> Vec<String> {
    vec![
        "--list".into(),
        format!("sanctions={}", c("sanctions.csv")),
        "--list".into(),
        format!("high_risk={}", c("high_risk.txt")),
    ]
}

/// Replaces `path` atomically (write a sibling, rename), as an operator should.
fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn ir_hash_of(v: &Value) -> String {
    proof::policy::hash::ir_hash(v).unwrap()
}

#[test]
fn verdicts_equal_adapt_for_the_conformance_traffic() {
    let mut flags: Vec<String> = vec![
        "--ir".into(),
        c("demo.v1.ir.json"),
        "--enforce".into(),
        "--rollout".into(),
        "50".into(),
        "--selector".into(),
        "weighted".into(),
        "--weights".into(),
        c("weights.yaml"),
    ];
    flags.extend(lists());
    let f: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::start(&f);
    let dir = tempfile::tempdir().unwrap();
    let traffic = std::fs::read_to_string(conformance().join("traffic.jsonl")).unwrap();
    let (mut ok, mut bad, mut drifts) = (0u32, 0u32, 0u32);
    for (i, line) in traffic.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let r = server.adapt(line.as_bytes());
        match proof::replay::record::parse_line(line.as_bytes()) {
            Ok(_) => {
                assert_eq!(r.status, 200, "line {}: {}", i + 1, r.text());
                assert_eq!(r.header("content-type"), Some("application/json"));
                let ctx = dir.path().join(format!("line{}.json", i + 1));
                std::fs::write(&ctx, line).unwrap();
                let mut args = vec!["adapt", "--context", ctx.to_str().unwrap()];
                args.extend(&f);
                let out = Command::new(env!("CARGO_BIN_EXE_proof"))
                    .args(&args)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let want: Value = serde_json::from_slice(&out.stdout).unwrap();
                assert_eq!(r.json(), want, "line {}", i + 1);
                ok += 1;
                drifts += u32::from(want["drift"] == true);
            }
            Err(reason) => {
                // The same rejection reason as replay's, named in the body.
                assert_eq!(r.status, 400, "line {}: {}", i + 1, r.text());
                assert_eq!(r.json()["error"], reason.as_str(), "line {}", i + 1);
                bad += 1;
            }
        }
    }
    assert_eq!((ok, bad), (40, 3));
    assert!(
        drifts > 0,
        "the weighted budget makes some enforced records drift"
    );

    let m = server.metrics();
    let shadow = r#"adapt_requests_total{mode="shadow",policy_id="demo.v1"}"#;
    assert_eq!(sample(&m, shadow), Some(f64::from(ok)));
    assert_eq!(
        sample(&m, r#"adapt_drift_events_total{policy_id="demo.v1"}"#),
        Some(f64::from(drifts))
    );
    let verdicts: f64 = ["ok", "warn", "fail"]
        .iter()
        .filter_map(|v| {
            sample(
                &m,
                &format!(r#"adapt_verdicts_total{{mode="shadow",verdict="{v}"}}"#),
            )
        })
        .sum();
    assert_eq!(verdicts, f64::from(ok));
    assert_eq!(
        sample(
            &m,
            r#"adapt_http_responses_total{code="400",route="/v1/adapt"}"#
        ),
        Some(3.0)
    );
    assert_eq!(sample(&m, "adapt_enforce_rollout_percent"), Some(50.0));

    // Readiness: the three 400s are client errors, outside the success ratio (2xx
    // over 2xx + 5xx); drift over the 40 evaluated.
    let (status, r) = server.readyz();
    assert_eq!(status, 200);
    assert_eq!(r["status"], "ready");
    assert_eq!(r["success_ratio_1m"], 1.0);
    assert_eq!(r["success_ratio_5m"], 1.0);
    assert_eq!(r["drift_ratio_5m"], f64::from(drifts) / 40.0);
    let m = server.metrics();
    assert_eq!(
        sample(&m, r#"adapt_readyz_success_ratio{window="1m"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, r#"adapt_drift_ratio{window="5m"}"#),
        Some(f64::from(drifts) / 40.0)
    );
}

#[test]
fn bodies_ts_default_and_size_limit() {
    let ir = c("demo.v1.ir.json");
    let server = Server::start(&["--ir", &ir]);
    assert_eq!(server.req("GET", "/healthz", &[], b"").status, 200);

    // No ts: now() is the current time.
    let before = chrono::Utc::now().timestamp_millis();
    let r = server
        .adapt(br#"{"request_id":"r-1","context":{"supplier_hashes":[],"ubo_hashes":["u"]}}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let ts = chrono::DateTime::parse_from_rfc3339(v["ts"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    assert!(ts >= before - 1000 && ts <= chrono::Utc::now().timestamp_millis());
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    for k in [
        "policy_id",
        "ir_hash",
        "request_id",
        "options",
        "plan",
        "shadow",
        "enforced",
        "enforced_applied",
        "drift",
    ] {
        assert!(keys.contains(&k), "missing {k} in {keys:?}");
    }

    let err = |body: &[u8]| {
        let r = server.adapt(body);
        assert_eq!(r.status, 400, "{}", r.text());
        let v = r.json();
        (v["error"].as_str().unwrap().to_string(), v["field"].clone())
    };
    assert_eq!(err(b"{\"request_id\":"), ("malformed".into(), Value::Null));
    assert_eq!(err(b"[1,2]"), ("malformed".into(), Value::Null));
    assert_eq!(
        err(br#"{"ts":"yesterday","request_id":"r","context":{}}"#),
        ("bad_ts".into(), json!("ts"))
    );
    assert_eq!(
        err(br#"{"request_id":"","context":{}}"#),
        ("missing_request_id".into(), json!("request_id"))
    );
    assert_eq!(
        err(br#"{"request_id":"r","context":"x"}"#),
        ("missing_context".into(), json!("context"))
    );
    assert_eq!(
        err(br#"{"request_id":"r","policy_id":3,"context":{}}"#),
        ("malformed".into(), json!("policy_id"))
    );

    // Exactly 1 MiB is accepted; one byte more is 413.
    let rec = br#"{"request_id":"r-big","context":{}}"#;
    let mut big = rec.to_vec();
    big.resize(1 << 20, b' ');
    assert_eq!(server.adapt(&big).status, 200);
    big.push(b' ');
    let r = server.adapt(&big);
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"], "too_large");
    let m = server.metrics();
    assert_eq!(
        sample(
            &m,
            r#"adapt_http_responses_total{code="413",route="/v1/adapt"}"#
        ),
        Some(1.0)
    );
    // Wrong method on a known route.
    assert_eq!(server.req("GET", "/v1/adapt", &[], b"").status, 405);
}

#[test]
fn hot_reload_swaps_valid_changes_and_keeps_the_old_ir_on_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ir = dir.path().join("policy.ir.json");
    let v1: Value =
        serde_json::from_slice(&std::fs::read(conformance().join("demo.v1.ir.json")).unwrap())
            .unwrap();
    std::fs::write(&ir, serde_json::to_vec_pretty(&v1).unwrap()).unwrap();
    let h1 = ir_hash_of(&v1);
    let server = Server::start(&["--ir", ir.to_str().unwrap(), "--reload-interval", "50ms"]);
    let info = |h: &str, path: &str| {
        format!(r#"adapt_policy_info{{ir_hash="{h}",path="{path}",policy_id="demo.v1"}}"#)
    };
    let m = server.metrics();
    assert_eq!(sample(&m, &info(&h1, "shadow")), Some(1.0));
    assert_eq!(sample(&m, "adapt_policy_reload_hits_total"), Some(0.0));

    // A valid change: a stricter audit score.
    let mut v2 = v1.clone();
    v2["rules"][2]["rhs"] = json!(60);
    let h2 = ir_hash_of(&v2);
    assert_ne!(h1, h2);
    replace(&ir, &serde_json::to_vec_pretty(&v2).unwrap());
    let m = until("the new ir_hash in adapt_policy_info", || {
        let m = server.metrics();
        sample(&m, &info(&h2, "enforced")).map(|_| m)
    });
    assert_eq!(sample(&m, &info(&h2, "shadow")), Some(1.0));
    assert_eq!(sample(&m, &info(&h1, "shadow")), None);
    assert_eq!(sample(&m, &info(&h1, "enforced")), None);
    assert_eq!(m.matches("adapt_policy_info{").count(), 2);
    assert_eq!(sample(&m, "adapt_policy_reload_hits_total"), Some(1.0));
    assert_eq!(sample(&m, "adapt_policy_reload_errors_total"), Some(0.0));
    assert!(sample(&m, "adapt_policy_reload_checks_total").unwrap() >= 1.0);
    let body = br#"{"request_id":"r","context":{"supplier_hashes":[],"ubo_hashes":["u"]}}"#;
    assert_eq!(server.adapt(body).json()["ir_hash"], h2.as_str());

    // An invalid change (unknown op) is refused once; the v2 IR keeps serving.
    let mut bad = v2.clone();
    bad["rules"][0]["op"] = json!("frobnicate");
    replace(&ir, &serde_json::to_vec_pretty(&bad).unwrap());
    let m = until("the reload error counter", || {
        let m = server.metrics();
        (sample(&m, "adapt_policy_reload_errors_total") == Some(1.0)).then_some(m)
    });
    let checks = sample(&m, "adapt_policy_reload_checks_total").unwrap();
    assert_eq!(sample(&m, &info(&h2, "enforced")), Some(1.0));
    assert_eq!(sample(&m, "adapt_policy_reload_hits_total"), Some(1.0));
    let r = server.adapt(body);
    assert_eq!((r.status, r.json()["ir_hash"].clone()), (200, json!(h2)));
    let m = until("three more reload checks", || {
        let m = server.metrics();
        (sample(&m, "adapt_policy_reload_checks_total").unwrap() >= checks + 3.0).then_some(m)
    });
    assert_eq!(sample(&m, "adapt_policy_reload_errors_total"), Some(1.0));
    assert!(server.log().contains("reload refused"), "{}", server.log());
    assert!(server.log().contains("frobnicate"), "{}", server.log());
}

fn sha_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

#[test]
fn rbac_tokens_scopes_counters_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("rbac.yaml");
    let yaml1 = format!(
        "tokens:\n  - name: gateway\n    sha256: {}\n    scopes: [adapt:run]\n  - name: prometheus\n    sha256: {}\n    scopes: [metrics:read]\n",
        sha_hex("gw-token"),
        sha_hex("prom-token")
    );
    std::fs::write(&map, &yaml1).unwrap();
    let ir = c("demo.v1.ir.json");
    let server = Server::start(&[
        "--ir",
        &ir,
        "--rbac",
        map.to_str().unwrap(),
        "--reload-interval",
        "50ms",
    ]);
    let body = br#"{"request_id":"r","context":{"supplier_hashes":[],"ubo_hashes":["u"]}}"#;
    let post = |tok: Option<&str>| {
        let h = tok.map(|t| format!("Bearer {t}"));
        let hs: Vec<(&str, &str)> = h.iter().map(|v| ("Authorization", v.as_str())).collect();
        server.req("POST", "/v1/adapt", &hs, body)
    };
    let scrape = |tok: Option<&str>| {
        let h = tok.map(|t| format!("Bearer {t}"));
        let hs: Vec<(&str, &str)> = h.iter().map(|v| ("Authorization", v.as_str())).collect();
        server.req("GET", "/metrics", &hs, b"")
    };
    let r = post(None);
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    assert_eq!(post(Some("nope")).status, 401);
    let r = post(Some("prom-token"));
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "forbidden");
    assert_eq!(post(Some("gw-token")).status, 200);
    assert_eq!(scrape(None).status, 401);
    assert_eq!(scrape(Some("gw-token")).status, 403);
    // Health and readiness stay open.
    assert_eq!(server.req("GET", "/healthz", &[], b"").status, 200);
    assert_eq!(server.readyz().0, 200);

    let r = scrape(Some("prom-token"));
    assert_eq!(r.status, 200);
    let m = r.text();
    let s = |series: &str| sample(&m, series);
    assert_eq!(s(r#"rbac_allowed_total{route="/v1/adapt"}"#), Some(1.0));
    assert_eq!(s(r#"rbac_allowed_total{route="/metrics"}"#), Some(1.0));
    assert_eq!(
        s(r#"rbac_forbidden_total{reason="unauthenticated",route="/v1/adapt"}"#),
        Some(2.0)
    );
    assert_eq!(
        s(r#"rbac_forbidden_total{reason="missing_scope",route="/v1/adapt"}"#),
        Some(1.0)
    );
    assert_eq!(
        s(r#"rbac_forbidden_total{reason="unauthenticated",route="/metrics"}"#),
        Some(1.0)
    );
    assert_eq!(
        s(r#"rbac_forbidden_total{reason="missing_scope",route="/metrics"}"#),
        Some(1.0)
    );
    assert_eq!(
        s(r#"rbac_route_matches_total{route="/v1/adapt"}"#),
        Some(4.0)
    );
    assert_eq!(
        s(r#"rbac_route_matches_total{route="/metrics"}"#),
        Some(3.0)
    );
    let etag1 = sha_hex(&yaml1);
    assert_eq!(s(&format!(r#"rbac_map_info{{etag="{etag1}"}}"#)), Some(1.0));
    assert!(!m.contains("gw-token") && !m.contains("prom-token"));

    // Reload: the gateway token may now read metrics too.
    let yaml2 = yaml1.replace("[adapt:run]", "[adapt:run, metrics:read]");
    replace(&map, yaml2.as_bytes());
    let etag2 = sha_hex(&yaml2);
    until("the new access map", || {
        (scrape(Some("gw-token")).status == 200).then_some(())
    });
    let m = scrape(Some("prom-token")).text();
    assert_eq!(sample(&m, "rbac_reload_hits_total"), Some(1.0));
    assert!(sample(&m, "rbac_reload_checks_total").unwrap() >= 1.0);
    assert_eq!(
        sample(&m, &format!(r#"rbac_map_info{{etag="{etag2}"}}"#)),
        Some(1.0)
    );
    assert_eq!(m.matches("rbac_map_info{").count(), 1);

    // A broken map is refused; the previous one stays in force.
    replace(&map, b"tokens:\n  - name: x\n    sha256: 1234\n");
    until("the refused access map", || {
        let m = scrape(Some("prom-token")).text();
        (sample(&m, "rbac_reload_errors_total") == Some(1.0)).then_some(())
    });
    assert_eq!(post(Some("gw-token")).status, 200);
}

#[test]
fn refuses_non_loopback_without_rbac() {
    let out = Command::new(env!("CARGO_BIN_EXE_proof"))
        .args([
            "serve",
            "--ir",
            &c("demo.v1.ir.json"),
            "--listen",
            "0.0.0.0:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0 without --rbac"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_proof"))
        .args(["serve", "--ir", "no/such.ir.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such.ir.json"));
}

/// Request ids whose bucket (salt demo.v1) is below / at or above 5000: enforced or
/// not at rollout 50.
fn ids(enforced: bool, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("gate-{i}"))
        .filter(|id| (bucket("demo.v1", id) < 5000) == enforced)
        .take(n)
        .collect()
}

/// Passes every active rule of demo.v1 under basic: ok in shadow; the budget-0
/// weighted candidate skips every rule: warn. Enforced, it drifts ok->warn.
fn clean_record(id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "ts": "2026-11-05T08:00:00Z", "request_id": id, "policy_id": "demo.v1",
        "context": {"supplier_hashes": ["0xa1"], "ubo_hashes": ["0xu1"],
                    "audit": {"score": 90, "dates": ["2026-10-01"]}, "countries": ["FR"]}
    }))
    .unwrap()
}

fn gate_server(dir: &Path, extra: &[&str]) -> Server {
    let w = dir.join("budget0.yaml");
    std::fs::write(&w, "weights: {}\nbudget: 0\n").unwrap();
    let mut args = vec![
        "--ir".to_string(),
        c("demo.v1.ir.json"),
        "--enforce".into(),
        "--rollout".into(),
        "50".into(),
        "--selector".into(),
        "weighted".into(),
        "--weights".into(),
        w.display().to_string(),
        "--readiness-gate".into(),
        "--drift-max".into(),
        "0.1".into(),
    ];
    args.extend(lists());
    args.extend(extra.iter().map(|s| s.to_string()));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&a)
}

#[test]
fn readiness_gate_flips_on_drift_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = gate_server(dir.path(), &[]);
    let (status, r) = server.readyz();
    assert_eq!(status, 200);
    assert_eq!(
        r,
        json!({"status": "ready", "success_ratio_1m": 1.0, "success_ratio_5m": 1.0,
               "drift_ratio_1m": 0.0, "drift_ratio_5m": 0.0, "drift_max": 0.1,
               "readiness_gate": true})
    );
    let drifting = ids(true, 2);
    let clean = ids(false, 9);
    let v = server.adapt(&clean_record(&drifting[0])).json();
    assert_eq!(
        (v["drift"].clone(), v["drift_kind"].clone()),
        (json!(true), json!("ok->warn"))
    );
    let (status, r) = server.readyz();
    assert_eq!(status, 503);
    assert_eq!(r["status"], "not_ready");
    assert_eq!(r["drift_ratio_5m"], 1.0);
    assert_eq!(r["reason"], "drift_ratio_5m 1 > drift_max 0.1");

    // Nine requests outside the 50 % sample: 1 drift in 10 = 0.1, not above the limit.
    for id in &clean {
        let v = server.adapt(&clean_record(id)).json();
        assert_eq!(
            (v["enforced_applied"].clone(), v["drift"].clone()),
            (json!(false), json!(false))
        );
    }
    let (status, r) = server.readyz();
    assert_eq!((status, r["drift_ratio_5m"].clone()), (200, json!(0.1)));
    assert!(r.get("reason").is_none());

    // One more drift: 2 in 11 > 0.1.
    server.adapt(&clean_record(&drifting[1]));
    let (status, r) = server.readyz();
    assert_eq!(
        (status, r["drift_ratio_1m"].clone()),
        (503, json!(2.0 / 11.0))
    );
    let m = server.metrics();
    assert_eq!(
        sample(&m, r#"adapt_drift_ratio{window="5m"}"#),
        Some(2.0 / 11.0)
    );
    assert_eq!(
        sample(&m, r#"adapt_drift_events_total{policy_id="demo.v1"}"#),
        Some(2.0)
    );
}

#[test]
fn readiness_returns_when_the_windows_empty() {
    let dir = tempfile::tempdir().unwrap();
    // Test-only: 5m lasts 3 s and 1m 0.6 s of real time.
    let server = gate_server(dir.path(), &["--window-scale", "0.01"]);
    let drifting = ids(true, 1);
    assert_eq!(server.adapt(&clean_record(&drifting[0])).status, 200);
    assert_eq!(server.readyz().0, 503);
    let r = until("the 5m window to empty", || {
        let (status, r) = server.readyz();
        (status == 200).then_some(r)
    });
    assert_eq!(r["drift_ratio_5m"], 0.0);
    assert_eq!(r["drift_ratio_1m"], 0.0);
    assert_eq!(r["success_ratio_5m"], 1.0);
}

#[test]
fn openmetrics_on_request_and_accepted_by_promtool() {
    let ir = c("demo.v1.ir.json");
    let server = Server::start(&["--ir", &ir]);
    server.adapt(br#"{"request_id":"r","context":{"supplier_hashes":[],"ubo_hashes":["u"]}}"#);
    let r = server.req(
        "GET",
        "/metrics",
        &[(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let om = r.text();
    assert!(om.ends_with("# EOF\n"));
    assert!(om.contains("# TYPE adapt_requests counter\n"));
    assert!(om.contains("# TYPE adapt_policy info\n"));
    assert!(om.contains("# TYPE adapt_selection_latency_seconds histogram\n"));
    assert!(om.contains(r#"adapt_requests_total{mode="shadow",policy_id="demo.v1"} 1"#));
    assert!(!om.contains("# TYPE adapt_requests_total"));
    let text = server.metrics();
    assert!(text.contains("# TYPE adapt_requests_total counter\n"));
    assert!(!text.contains("# EOF"));

    // promtool's OpenMetrics parser wants timestamps for a backfill: add one to each
    // sample and let the real parser judge the rest.
    let stamped: String = om
        .lines()
        .map(|l| {
            if l.starts_with('#') {
                format!("{l}\n")
            } else {
                format!("{l} 1793865600\n")
            }
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("live.om");
    std::fs::write(&f, stamped).unwrap();
    let out = Command::new(std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into()))
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&f)
        .arg(dir.path().join("tsdb"))
        .output()
        .expect("promtool (apt-get install prometheus, or set PROMTOOL)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let ir = c("demo.v1.ir.json");
    let mut server = Server::start(&["--ir", &ir]);
    assert_eq!(server.req("GET", "/healthz", &[], b"").status, 200);
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = until("the server to exit", || server.child.try_wait().unwrap());
    assert_eq!(status.code(), Some(0));
    until("the shutdown line", || {
        server
            .log()
            .contains("proof serve: shut down")
            .then_some(())
    });
}

/// Sends SIGTERM to the server.
fn sigterm(server: &Server) {
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
}

/// Waits (at most `limit`) for the peer to close `s`; reads and discards what it
/// sends. Returns how long that took, or None if it was still open at `limit`.
fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    let mut buf = [0u8; 4096];
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    while t0.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return Some(t0.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(t0.elapsed()),
        }
    }
    None
}

/// Reads one response with a `content-length` from a keep-alive connection.
fn read_one(s: &mut TcpStream) -> Resp {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if raw.len() >= split + 4 + len {
                return parse_response(&raw[..split + 4 + len]);
            }
        }
        let n = s.read(&mut buf).expect("read a response");
        assert!(n > 0, "closed before a whole response");
        raw.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn slowloris_and_idle_connections_are_closed_after_the_header_timeout() {
    let ir = c("demo.v1.ir.json");
    let server = Server::start(&["--ir", &ir, "--header-timeout", "300ms"]);
    // Half a request head, then one header byte every 50 ms: progress does not
    // extend the deadline.
    let mut slow = TcpStream::connect(server.addr).unwrap();
    let t0 = Instant::now();
    slow.write_all(b"POST /v1/adapt HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 1024];
    let closed_after = loop {
        // Far below the 10 s default: the flag is what closed it.
        assert!(
            t0.elapsed() < Duration::from_secs(8),
            "a slowloris connection is still open after 8 s"
        );
        if slow.write_all(b"a").is_err() {
            break t0.elapsed();
        }
        match slow.read(&mut buf) {
            Ok(0) => break t0.elapsed(),
            Ok(n) => panic!("unexpected answer: {}", String::from_utf8_lossy(&buf[..n])),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break t0.elapsed(),
        }
    };
    assert!(
        closed_after >= Duration::from_millis(300),
        "{closed_after:?}"
    );

    // A connection that never sends anything, and a keep-alive one gone idle after
    // an answer, are closed the same way.
    let mut silent = TcpStream::connect(server.addr).unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(8)).is_some());
    let mut idle = connect(server.addr, Duration::from_secs(30));
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_one(&mut idle).status, 200);
    assert!(closed_within(&mut idle, Duration::from_secs(8)).is_some());
    // The server serves on.
    assert_eq!(server.req("GET", "/healthz", &[], b"").status, 200);
}

#[test]
fn half_sent_body_gets_408_after_the_body_timeout() {
    let ir = c("demo.v1.ir.json");
    // The header timeout is short too: the body deadline, not the socket's, applies
    // while the body is read.
    let server = Server::start(&[
        "--ir",
        &ir,
        "--body-timeout",
        "600ms",
        "--header-timeout",
        "200ms",
    ]);
    let mut s = connect(server.addr, Duration::from_secs(30));
    s.write_all(
        b"POST /v1/adapt HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"request_id\":",
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let r = parse_response(&raw);
    assert_eq!(r.status, 408, "{}", r.text());
    assert_eq!(r.json()["error"], "body_timeout");
    assert!(r.json()["message"].as_str().unwrap().contains("600ms"));
    assert_eq!(r.header("connection"), Some("close"));
    let m = server.metrics();
    assert_eq!(
        sample(
            &m,
            r#"adapt_http_responses_total{code="408",route="/v1/adapt"}"#
        ),
        Some(1.0)
    );
    // A client error: outside the success ratio.
    assert_eq!(server.readyz().1["success_ratio_1m"], 1.0);
}

#[test]
fn sigterm_with_a_half_sent_body_exits_at_the_shutdown_deadline() {
    let ir = c("demo.v1.ir.json");
    // Request timeouts of an hour: only the shutdown deadline can end these.
    let mut server = Server::start(&[
        "--ir",
        &ir,
        "--header-timeout",
        "1h",
        "--body-timeout",
        "1h",
        "--shutdown-timeout",
        "300ms",
    ]);
    let mut body = TcpStream::connect(server.addr).unwrap();
    body.write_all(
        b"POST /v1/adapt HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"request_id\":",
    )
    .unwrap();
    let mut head = TcpStream::connect(server.addr).unwrap();
    head.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // Both connections have been taken up once another is answered after them.
    assert_eq!(server.req("GET", "/healthz", &[], b"").status, 200);
    let t0 = Instant::now();
    sigterm(&server);
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "still running 30 s after SIGTERM with a 300ms shutdown deadline"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    assert!(closed_within(&mut body, Duration::from_secs(5)).is_some());
    assert!(closed_within(&mut head, Duration::from_secs(5)).is_some());
    until("the last log line", || {
        server
            .log()
            .contains("proof serve: shut down")
            .then_some(())
    });
    let log = server.log();
    assert!(log.contains("shutdown deadline passed"), "{log}");
}

#[test]
fn max_connections_holds_further_connections_in_the_backlog() {
    let ir = c("demo.v1.ir.json");
    let server = Server::start(&[
        "--ir",
        &ir,
        "--max-connections",
        "2",
        "--header-timeout",
        "1h",
    ]);
    let mut open: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = connect(server.addr, Duration::from_secs(30));
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            assert_eq!(read_one(&mut s).status, 200);
            s
        })
        .collect();
    // A third connection is made (the kernel queues it) but not served...
    let mut third = TcpStream::connect(server.addr).unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(third.read(&mut buf).is_err(), "answered above the bound");
    // ...until one of the two closes.
    drop(open.pop());
    third
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut raw = Vec::new();
    third.read_to_end(&mut raw).unwrap();
    assert_eq!(parse_response(&raw).status, 200);
    assert!(
        server.log().contains("--max-connections"),
        "{}",
        server.log()
    );
}

#[test]
fn bodies_are_read_as_replay_reads_lines() {
    let ir = c("demo.v1.ir.json");
    let server = Server::start(&["--ir", &ir]);
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let corpus: Vec<Vec<u8>> = vec![
        // Duplicate top-level fields: malformed (a generic JSON value would keep the last).
        br#"{"ts":1,"request_id":"a","context":{},"context":{"x":1}}"#.to_vec(),
        br#"{"ts":1,"ts":2,"request_id":"a","context":{}}"#.to_vec(),
        br#"{"ts":1,"request_id":"a","request_id":"b","context":{}}"#.to_vec(),
        // Duplicates inside the context, or of keys the reader ignores: accepted by both.
        br#"{"ts":1,"request_id":"a","context":{"x":1,"x":2}}"#.to_vec(),
        br#"{"ts":1,"request_id":"a","context":{},"y":1,"y":2}"#.to_vec(),
        // Invalid UTF-8 anywhere, even in an ignored key.
        b"{\"ts\":1,\"request_id\":\"a\",\"y\":\"\xff\",\"context\":{}}".to_vec(),
        b"{\"ts\":1,\"request_id\":\"a\",\"y\":\"\xed\xa0\x80\",\"context\":{}}".to_vec(),
        br#"{"ts":1,"request_id":"a","y":"\ud800","context":{}}"#.to_vec(),
        br#"{"ts":1,"request_id":"a","context":{"k":"\ud800"}}"#.to_vec(),
        br#"  {"ts":1,"request_id":"a","context":{}}  "#.to_vec(),
        br#"{"ts":1,"request_id":"a","context":{}} x"#.to_vec(),
        br#"{"ts":1e400,"request_id":"a","context":{}}"#.to_vec(),
        br#"{"ts":1.5,"request_id":"a","context":{}}"#.to_vec(),
        br#"{"ts":1,"request_id":"a","policy_id":null,"context":{}}"#.to_vec(),
        br#"{"ts":1,"request_id":"a","policy_id":[],"context":{}}"#.to_vec(),
        br#"["ts",1]"#.to_vec(),
        b"".to_vec(),
        format!(
            r#"{{"ts":1,"request_id":"a","context":{{"x":{}}}}}"#,
            deep(100)
        )
        .into_bytes(),
        format!(
            r#"{{"ts":1,"request_id":"a","context":{{"x":{}}}}}"#,
            deep(100_000)
        )
        .into_bytes(),
        format!(
            r#"{{"ts":1,"request_id":"a","y":{},"context":{{}}}}"#,
            deep(1000)
        )
        .into_bytes(),
    ];
    for (i, body) in corpus.iter().enumerate() {
        let r = server.adapt(body);
        match proof::replay::record::parse_line(body) {
            Ok(_) => assert_eq!(r.status, 200, "body {i}: {}", r.text()),
            Err(reason) => {
                assert_eq!(r.status, 400, "body {i}: {}", r.text());
                let v = r.json();
                assert_eq!(v["error"], reason.as_str(), "body {i}: {v}");
                assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
            }
        }
    }
    // The 400s name the problem.
    let v = server.adapt(&corpus[0]).json();
    assert_eq!(v["field"], "context");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("duplicate key 'context'"),
        "{v}"
    );
    let v = server.adapt(&corpus[5]).json();
    assert!(v["message"].as_str().unwrap().contains("UTF-8"), "{v}");
    let v = server.adapt(&corpus[18]).json();
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains("recursion limit is 128 levels"), "{msg}");
    // Without ts (serve's one difference: now), the same reader still rules.
    let r = server.adapt(br#"{"request_id":"a","context":{},"context":{"x":1}}"#);
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, json!("malformed"))
    );
    let r = server.adapt(b"{\"request_id\":\"a\",\"y\":\"\xff\",\"context\":{}}");
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, json!("malformed"))
    );
    assert_eq!(
        server
            .adapt(br#"{"ts":null,"request_id":"a","context":{"x":1,"x":2}}"#)
            .status,
        200
    );
}

#[test]
fn weights_and_list_changes_are_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("weights.yaml");
    std::fs::write(&weights, "weights: {}\nbudget: 0\n").unwrap();
    let sanctions = dir.path().join("sanctions.csv");
    std::fs::copy(conformance().join("sanctions.csv"), &sanctions).unwrap();
    let (w, sl) = (
        weights.display().to_string(),
        format!("sanctions={}", sanctions.display()),
    );
    let hr = format!("high_risk={}", c("high_risk.txt"));
    let ir = c("demo.v1.ir.json");
    let server = Server::start(&[
        "--ir",
        &ir,
        "--enforce",
        "--rollout",
        "100",
        "--selector",
        "weighted",
        "--weights",
        &w,
        "--list",
        &sl,
        "--list",
        &hr,
        "--reload-interval",
        "50ms",
    ]);
    let hits = || sample(&server.metrics(), "adapt_policy_reload_hits_total").unwrap();
    let verdicts = || {
        let v = server.adapt(&clean_record("reload-1")).json();
        (
            v["shadow"]["verdict"].as_str().unwrap().to_string(),
            v["enforced"]["verdict"].as_str().unwrap().to_string(),
        )
    };
    // Budget 0: the candidate skips every rule.
    assert_eq!(verdicts(), ("ok".into(), "warn".into()));
    assert_eq!(hits(), 0.0);

    // Weights: a budget that covers every rule.
    replace(&weights, b"weights: {}\nbudget: 1000\n");
    until("the weights reload", || (hits() == 1.0).then_some(()));
    assert_eq!(verdicts(), ("ok".into(), "ok".into()));

    // A list: the record's supplier (0xa1) becomes sanctioned.
    let mut list = std::fs::read_to_string(&sanctions)
        .unwrap()
        .trim_end()
        .to_string();
    list.push_str("\n0xa1\n");
    replace(&sanctions, list.as_bytes());
    until("the list reload", || (hits() == 2.0).then_some(()));
    let v = server.adapt(&clean_record("reload-1")).json();
    assert_eq!(v["shadow"]["verdict"], "fail", "{v}");
    assert_eq!(v["shadow"]["failed_rules"], json!(["no_sanctions"]));
    assert_eq!(
        sample(&server.metrics(), "adapt_policy_reload_errors_total"),
        Some(0.0)
    );
}

#[test]
fn logs_never_show_bodies_tokens_or_context_values() {
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("rbac.yaml");
    let token = "tok-SECRETMARK-gw";
    std::fs::write(
        &map,
        format!(
            "tokens:\n  - name: gateway\n    sha256: {}\n    scopes: [adapt:run, metrics:read]\n",
            sha_hex(token)
        ),
    )
    .unwrap();
    let ir = c("demo.v1.ir.json");
    let mut server = Server::start(&[
        "--ir",
        &ir,
        "--rbac",
        map.to_str().unwrap(),
        "--reload-interval",
        "50ms",
        "--header-timeout",
        "300ms",
        "--body-timeout",
        "300ms",
    ]);
    let good = format!("Bearer {token}");
    let auth = [("Authorization", good.as_str())];
    let ok = br#"{"request_id":"rid-SECRETMARK","context":{"supplier_hashes":["ctx-SECRETMARK"],"ubo_hashes":["u"],"countries":["SECRETMARK"]}}"#;
    assert_eq!(server.req("POST", "/v1/adapt", &auth, ok).status, 200);
    for bad in [
        &br#"{"request_id":"rid-SECRETMARK","context":"ctx-SECRETMARK"}"#[..],
        br#"{"request_id":"rid-SECRETMARK","context":{},"context":{"k":"SECRETMARK"}}"#,
        br#"{"ts":"SECRETMARK","request_id":"r","context":{}}"#,
        br#"{"request_id":SECRETMARK}"#,
        b"{\"request_id\":\"SECRETMARK\xff\",\"context\":{}}",
    ] {
        assert_eq!(server.req("POST", "/v1/adapt", &auth, bad).status, 400);
    }
    let wrong = "Bearer tok-SECRETMARK-wrong";
    assert_eq!(
        server
            .req("POST", "/v1/adapt", &[("Authorization", wrong)], ok)
            .status,
        401
    );
    assert_eq!(
        server
            .req("GET", "/metrics", &[("Authorization", wrong)], b"")
            .status,
        401
    );
    // A body that never completes, and a head that never completes.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(
        format!(
            "POST /v1/adapt HTTP/1.1\r\nHost: x\r\nAuthorization: {good}\r\nContent-Length: 500\r\n\r\n{{\"request_id\":\"SECRETMARK"
        )
        .as_bytes(),
    )
    .unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(8)).is_some());
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(
        format!("POST /v1/adapt HTTP/1.1\r\nAuthorization: {good}\r\nX-K: SECRETMARK").as_bytes(),
    )
    .unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(8)).is_some());
    // A refused reload of the map is logged, naming the file, not a token.
    std::fs::write(&map, "tokens:\n  - name: x\n    sha256: 12\n").unwrap();
    until("the refused map", || {
        server
            .log()
            .contains("access map reload refused")
            .then_some(())
    });
    sigterm(&server);
    let status = until("the server to exit", || server.child.try_wait().unwrap());
    assert_eq!(status.code(), Some(0));
    until("the shutdown line", || {
        server
            .log()
            .contains("proof serve: shut down")
            .then_some(())
    });
    let log = server.log();
    assert!(log.contains("listening on"), "{log}");
    assert!(!log.contains("SECRETMARK"), "{log}");
    assert!(!log.contains(&sha_hex(token)), "{log}");
}

#[test]
fn chunked_uploads_are_held_to_the_same_limit() {
    let ir = c("demo.v1.ir.json");
    let server = Server::start(&["--ir", &ir]);
    let chunked = |chunks: &[&[u8]]| {
        let mut s = connect(server.addr, Duration::from_secs(30));
        s.write_all(b"POST /v1/adapt HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
        for c in chunks {
            // The server may answer 413 and close before the rest is sent.
            let _ = s.write_all(format!("{:x}\r\n", c.len()).as_bytes());
            let _ = s.write_all(c);
            let _ = s.write_all(b"\r\n");
        }
        let _ = s.write_all(b"0\r\n\r\n");
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        parse_response(&raw)
    };
    let r = chunked(&[br#"{"request_id":"c","#, br#""context":{}}"#]);
    assert_eq!(r.status, 200, "{}", r.text());
    // 17 chunks of 64 KiB: 1 MiB + 64 KiB, never announced in a Content-Length.
    let pad = vec![b' '; 64 * 1024];
    let mut chunks: Vec<&[u8]> = vec![br#"{"request_id":"c","context":{}}"#];
    chunks.extend(std::iter::repeat_n(pad.as_slice(), 17));
    let r = chunked(&chunks);
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["error"], "too_large");
}

#[test]
fn hot_reload_watches_the_baseline_and_the_candidate() {
    let dir = tempfile::tempdir().unwrap();
    let (base, cand) = (dir.path().join("v1.ir.json"), dir.path().join("v2.ir.json"));
    let read = |n: &str| -> Value {
        serde_json::from_slice(&std::fs::read(conformance().join(n)).unwrap()).unwrap()
    };
    let (v1, v2) = (read("demo.v1.ir.json"), read("demo.v2.ir.json"));
    std::fs::write(&base, serde_json::to_vec(&v1).unwrap()).unwrap();
    std::fs::write(&cand, serde_json::to_vec(&v2).unwrap()).unwrap();
    let (h1, h2) = (ir_hash_of(&v1), ir_hash_of(&v2));
    let mut args = vec![
        "--ir".to_string(),
        base.display().to_string(),
        "--candidate-ir".into(),
        cand.display().to_string(),
        "--reload-interval".into(),
        "50ms".into(),
        "--enforce".into(),
        "--rollout".into(),
        "100".into(),
    ];
    args.extend(lists());
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&a);
    assert!(
        server.log().contains(&format!(
            "policy baseline demo.v1 {h1}, candidate demo.v2 {h2}"
        )),
        "{}",
        server.log()
    );
    let info = |id: &str, h: &str, path: &str| {
        format!(r#"adapt_policy_info{{ir_hash="{h}",path="{path}",policy_id="{id}"}}"#)
    };
    let m = server.metrics();
    assert_eq!(sample(&m, &info("demo.v1", &h1, "shadow")), Some(1.0));
    assert_eq!(sample(&m, &info("demo.v2", &h2, "enforced")), Some(1.0));
    // req-0006 of the conformance traffic: ok under v1, fail under v2
    // (low_risk_country), as replay's drift details say.
    let line = std::fs::read_to_string(conformance().join("traffic.jsonl"))
        .unwrap()
        .lines()
        .find(|l| l.contains(r#""req-0006""#))
        .unwrap()
        .to_string();
    let v = server.adapt(line.as_bytes()).json();
    assert_eq!(
        (&v["policy_id"], &v["drift_kind"], &v["drift_cause"]),
        (
            &json!("demo.v2"),
            &json!("ok->fail"),
            &json!("low_risk_country")
        )
    );
    let m = server.metrics();
    assert_eq!(
        sample(
            &m,
            r#"adapt_requests_total{mode="shadow",policy_id="demo.v1"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"adapt_requests_total{mode="enforced",policy_id="demo.v2"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, r#"adapt_drift_events_total{policy_id="demo.v2"}"#),
        Some(1.0)
    );

    // The candidate file becomes v1: both paths agree, the drift is gone.
    replace(&cand, &serde_json::to_vec(&v1).unwrap());
    until("the candidate's new hash", || {
        sample(&server.metrics(), &info("demo.v1", &h1, "enforced"))
    });
    let v = server.adapt(line.as_bytes()).json();
    assert_eq!((&v["ir_hash"], &v["drift"]), (&json!(h1), &json!(false)));
    // The baseline file becomes v2: the drift comes back the other way round.
    replace(&base, &serde_json::to_vec(&v2).unwrap());
    until("the baseline's new hash", || {
        sample(&server.metrics(), &info("demo.v2", &h2, "shadow"))
    });
    let v = server.adapt(line.as_bytes()).json();
    assert_eq!(
        (&v["drift_kind"], &v["drift_cause"]),
        (&json!("fail->ok"), &json!("low_risk_country"))
    );
    assert!(
        server.log().contains(&format!(
            "reloaded policy baseline demo.v2 {h2}, candidate demo.v1 {h1}"
        )),
        "{}",
        server.log()
    );
}

#[test]
fn readiness_gate_with_confidence_judges_the_wilson_lower_bound() {
    let dir = tempfile::tempdir().unwrap();
    let server = gate_server(dir.path(), &["--confidence", "0.95"]);
    let (status, r) = server.readyz();
    assert_eq!(status, 200);
    assert_eq!(
        r,
        json!({"status": "ready", "success_ratio_1m": 1.0, "success_ratio_5m": 1.0,
               "drift_ratio_1m": 0.0, "drift_ratio_5m": 0.0, "drift_max": 0.1,
               "readiness_gate": true, "confidence": 0.95, "requests_5m": 0,
               "drift_events_5m": 0, "drift_lower_5m": null, "drift_upper_5m": null})
    );
    // One drifting request of one: the point ratio (1.0) is far above 0.1, but the
    // lower bound at z = 1.6448536 is c − h = (1 + 1.35281)/(1 + 2.70562) − 1.64485 /
    // 3.70562 × sqrt(0 + 0.67641) = 0.63493 − 0.36507 = 0.26987 > 0.1: not ready.
    let drifting = ids(true, 3);
    let clean = ids(false, 3);
    server.adapt(&clean_record(&drifting[0]));
    let (status, r) = server.readyz();
    assert_eq!(status, 503, "{r}");
    let lower = r["drift_lower_5m"].as_f64().unwrap();
    assert!((lower - 0.26987).abs() < 1e-4, "{r}");
    assert_eq!(r["drift_upper_5m"], 1.0);
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .ends_with("> drift_max 0.1 at confidence 0.95 (1 of 1 requests drifting)"),
        "{r}"
    );
    // One of four: the point ratio 0.25 would breach 0.1, the lower bound does not:
    // c = 2.35281 / 6.70562 = 0.35087, h = 1.64485 / 6.70562 × sqrt(0.75 + 0.67641)
    // = 0.29296; lower = 0.05791 ≤ 0.1: ready.
    for id in &clean {
        server.adapt(&clean_record(id));
    }
    let (status, r) = server.readyz();
    assert_eq!(
        (status, r["drift_ratio_5m"].clone()),
        (200, json!(0.25)),
        "{r}"
    );
    let lower = r["drift_lower_5m"].as_f64().unwrap();
    assert!((lower - 0.05791).abs() < 1e-4, "{r}");
    assert_eq!(
        (r["requests_5m"].clone(), r["drift_events_5m"].clone()),
        (json!(4), json!(1))
    );
    // Three of six: c = 4.35281 / 8.70562 = 0.5, h = 1.64485 / 8.70562 × sqrt(1.5 +
    // 0.67641) = 0.27875; lower = 0.22125 > 0.1: not ready again.
    server.adapt(&clean_record(&drifting[1]));
    server.adapt(&clean_record(&drifting[2]));
    let (status, r) = server.readyz();
    assert_eq!(status, 503, "{r}");
    let lower = r["drift_lower_5m"].as_f64().unwrap();
    assert!((lower - 0.22125).abs() < 1e-4, "{r}");
}

/// A record of about 980 KB that costs the engine about 0.2 s a path under
/// fixtures/adversarial/budget.ir.json (36 `non_intersection` rules over two
/// 50 000-element arrays; the evaluation budget lets every rule run).
fn slow_record(id: &str) -> Vec<u8> {
    let a: Vec<String> = (0..50_000).map(|i| format!("a{i}")).collect();
    let b: Vec<String> = (0..50_000).map(|i| format!("b{i}")).collect();
    let body = serde_json::to_vec(&json!({"ts": 1, "request_id": id, "context": {"a": a, "b": b}}))
        .unwrap();
    assert!(body.len() <= 1 << 20, "{} bytes", body.len());
    body
}

#[test]
fn content_length_over_the_limit_gets_413_at_once() {
    let ir = c("demo.v1.ir.json");
    // A body timeout of an hour: a 413 can only come from the announced length.
    let server = Server::start(&["--ir", &ir, "--body-timeout", "1h"]);
    let mut s = connect(server.addr, Duration::from_secs(30));
    s.write_all(b"POST /v1/adapt HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n")
        .unwrap();
    let r = read_one(&mut s);
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["error"], "too_large");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(closed_within(&mut s, Duration::from_secs(5)).is_some());
    // Announcing exactly the limit is accepted: the server waits for the body.
    let mut s = connect(server.addr, Duration::from_millis(300));
    s.write_all(b"POST /v1/adapt HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 64];
    let e = s.read(&mut buf).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{e}"
    );
    let m = server.metrics();
    assert_eq!(
        sample(
            &m,
            r#"adapt_http_responses_total{code="413",route="/v1/adapt"}"#
        ),
        Some(1.0)
    );
}

#[test]
fn shutdown_deadline_holds_while_requests_evaluate() {
    let ir = root_path("fixtures/adversarial/budget.ir.json");
    // One serving thread, so before evaluation left the event loop every slow
    // request held the loop that also serves /healthz and keeps the deadline.
    let mut server = Server::start(&[
        "--ir",
        &ir,
        "--threads",
        "1",
        "--header-timeout",
        "1h",
        "--body-timeout",
        "1h",
        "--shutdown-timeout",
        "300ms",
    ]);
    let first = server.adapt(&slow_record("slow-0"));
    assert_eq!(first.status, 200, "{}", first.text());
    // 40 slow requests: ~16 s of evaluation one after another.
    const K: usize = 40;
    let (sent_tx, sent_rx) = std::sync::mpsc::channel();
    let clients: Vec<_> = (0..K)
        .map(|i| {
            let (addr, sent) = (server.addr, sent_tx.clone());
            let body = slow_record(&format!("slow-{}", i + 1));
            std::thread::spawn(move || {
                let mut s = connect(addr, Duration::from_secs(60));
                let head = format!(
                    "POST /v1/adapt HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                s.write_all(head.as_bytes()).unwrap();
                s.write_all(&body).unwrap();
                sent.send(()).unwrap();
                let mut raw = Vec::new();
                let _ = s.read_to_end(&mut raw);
                // Answered, or closed without an answer by the shutdown.
                raw.starts_with(b"HTTP/1.1 200")
            })
        })
        .collect();
    for _ in 0..K {
        sent_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the server reads every body while others evaluate");
    }
    // The event loop stays free for other requests (generous bound: without the pool
    // this waited for every evaluation queued before it).
    let t0 = Instant::now();
    assert_eq!(server.req("GET", "/healthz", &[], b"").status, 200);
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let t0 = Instant::now();
    sigterm(&server);
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM with a 300ms shutdown deadline"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    let answered = clients
        .into_iter()
        .map(|c| c.join().unwrap())
        .filter(|&ok| ok)
        .count();
    until("the last log line", || {
        server
            .log()
            .contains("proof serve: shut down")
            .then_some(())
    });
    let log = server.log();
    // "stopping: no new connections, up to 300ms for N open connections (M requests
    // in flight)": every request left unanswered was open then.
    let stopping = log
        .lines()
        .find_map(|l| l.strip_prefix("proof serve: stopping: no new connections, up to 300ms for "))
        .unwrap_or_else(|| panic!("{log}"));
    let nums: Vec<usize> = stopping
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let (open, in_flight) = (nums[0], nums[1]);
    let unanswered = K - answered;
    assert!(
        unanswered >= 1,
        "all {K} answered before the deadline: {log}"
    );
    assert!(
        open >= unanswered && open <= K,
        "{stopping}: {unanswered} unanswered"
    );
    assert!(in_flight >= 1 && in_flight <= open, "{stopping}");
    assert!(log.contains("shutdown deadline passed"), "{log}");
}

fn mkfifo(p: &Path) {
    let ok = Command::new("mkfifo").arg(p).status().expect("mkfifo");
    assert!(ok.success(), "mkfifo {}", p.display());
}

/// A record whose supplier (0xbad1) is on the conformance sanctions list.
fn sanctioned_record(id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "ts": "2026-11-05T08:00:00Z", "request_id": id, "policy_id": "demo.v1",
        "context": {"supplier_hashes": ["0xbad1"], "ubo_hashes": ["0xu1"],
                    "audit": {"score": 90, "dates": ["2026-10-01"]}, "countries": ["FR"]}
    }))
    .unwrap()
}

/// Issue 24, item 1: a list given through a FIFO is read once, at start, enforced,
/// and named as not reloadable; reload ticks never read it again (it would be empty,
/// or block). Before: the fingerprint read consumed the pipe and the load blocked on
/// a second open (a named FIFO) or read it as empty (`<(cat …)`: fail-open).
#[test]
fn a_sanctions_list_through_a_fifo_is_enforced_and_not_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("sanctions.csv");
    mkfifo(&fifo);
    let bytes = std::fs::read(conformance().join("sanctions.csv")).unwrap();
    let writer = fifo.clone();
    std::thread::spawn(move || {
        let _ = std::fs::write(&writer, bytes);
    });
    let server = Server::start(&[
        "--ir",
        &c("demo.v1.ir.json"),
        "--list",
        &format!("sanctions={}", fifo.display()),
        "--list",
        &format!("high_risk={}", c("high_risk.txt")),
        "--reload-interval",
        "20ms",
    ]);
    let check = |id: &str| {
        let v = server.adapt(&sanctioned_record(id)).json();
        assert_eq!(v["shadow"]["verdict"], "fail", "{v}");
        assert_eq!(v["shadow"]["failed_rules"], json!(["no_sanctions"]), "{v}");
    };
    check("fifo-1");
    assert!(
        server.log().contains(&format!(
            "{} is a FIFO (pipe), not a regular file: read once at start and not reloadable",
            fifo.display()
        )),
        "{}",
        server.log()
    );
    let checks = sample(&server.metrics(), "adapt_policy_reload_checks_total").unwrap();
    let m = until("ten more reload checks", || {
        let m = server.metrics();
        (sample(&m, "adapt_policy_reload_checks_total").unwrap() >= checks + 10.0).then_some(m)
    });
    assert_eq!(sample(&m, "adapt_policy_reload_errors_total"), Some(0.0));
    assert_eq!(sample(&m, "adapt_policy_reload_hits_total"), Some(0.0));
    check("fifo-2");
}

/// Item 1 as reported: `--list sanctions=<(cat sanctions.csv)` through a shell. Before,
/// the list was served empty and a sanctioned supplier got `ok`.
#[test]
fn a_sanctions_list_through_process_substitution_is_enforced() {
    if Command::new("bash").arg("-c").arg("true").status().is_err() {
        eprintln!("no bash: skipped");
        return;
    }
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(
            "exec \"$0\" serve --listen 127.0.0.1:0 --ir \"$1\" \
             --list sanctions=<(cat \"$2\") --list high_risk=\"$3\" --reload-interval 20ms",
        )
        .arg(env!("CARGO_BIN_EXE_proof"))
        .arg(c("demo.v1.ir.json"))
        .arg(c("sanctions.csv"))
        .arg(c("high_risk.txt"));
    let server = Server::spawn(cmd);
    let v = server.adapt(&sanctioned_record("subst-1")).json();
    assert_eq!(v["shadow"]["verdict"], "fail", "{v}");
    assert!(server.log().contains("not reloadable"), "{}", server.log());
}

/// Issue 24, item 4: a FIFO put where the access map or a list was is an error of
/// that reload (counted, logged, the previous version kept), never a blocked read;
/// reload keeps ticking, so a later revocation still takes effect. Before, the reload
/// task blocked on the FIFO for good: a revoked token kept working.
#[test]
fn a_fifo_in_a_watched_path_is_a_reload_error_and_reload_keeps_ticking() {
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("rbac.yaml");
    let token = |name: &str, tok: &str, scopes: &str| {
        format!(
            "  - name: {name}\n    sha256: {}\n    scopes: [{scopes}]\n",
            sha_hex(tok)
        )
    };
    let prom = token("prometheus", "prom-token", "metrics:read");
    std::fs::write(
        &map,
        format!(
            "tokens:\n{}{prom}",
            token("gateway", "gw-token", "adapt:run")
        ),
    )
    .unwrap();
    let sanctions = dir.path().join("sanctions.csv");
    std::fs::copy(conformance().join("sanctions.csv"), &sanctions).unwrap();
    let server = Server::start(&[
        "--ir",
        &c("demo.v1.ir.json"),
        "--list",
        &format!("sanctions={}", sanctions.display()),
        "--list",
        &format!("high_risk={}", c("high_risk.txt")),
        "--rbac",
        map.to_str().unwrap(),
        "--reload-interval",
        "20ms",
    ]);
    let post = |tok: &str| {
        let h = format!("Bearer {tok}");
        server.req(
            "POST",
            "/v1/adapt",
            &[("Authorization", h.as_str())],
            &sanctioned_record("watched"),
        )
    };
    let scrape = || {
        let r = server.req(
            "GET",
            "/metrics",
            &[("Authorization", "Bearer prom-token")],
            b"",
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
    };
    assert_eq!(post("gw-token").status, 200);

    // FIFOs where the access map and the list were; nobody writes to them.
    std::fs::remove_file(&map).unwrap();
    mkfifo(&map);
    std::fs::remove_file(&sanctions).unwrap();
    mkfifo(&sanctions);
    let m = until("both reload errors", || {
        let m = scrape();
        (sample(&m, "rbac_reload_errors_total") == Some(1.0)
            && sample(&m, "adapt_policy_reload_errors_total") == Some(1.0))
        .then_some(m)
    });
    let (rbac_checks, policy_checks) = (
        sample(&m, "rbac_reload_checks_total").unwrap(),
        sample(&m, "adapt_policy_reload_checks_total").unwrap(),
    );
    let m = until("more reload checks", || {
        let m = scrape();
        (sample(&m, "rbac_reload_checks_total").unwrap() >= rbac_checks + 5.0
            && sample(&m, "adapt_policy_reload_checks_total").unwrap() >= policy_checks + 5.0)
            .then_some(m)
    });
    // Refused once each, not on every tick; the old versions stay in force.
    assert_eq!(sample(&m, "rbac_reload_errors_total"), Some(1.0));
    assert_eq!(sample(&m, "adapt_policy_reload_errors_total"), Some(1.0));
    let log = server.log();
    assert!(
        log.contains("access map reload refused, previous map kept")
            && log.contains("reload refused, still serving")
            && log.contains("is a FIFO (pipe), not a regular file"),
        "{log}"
    );
    let r = post("gw-token");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["shadow"]["verdict"], "fail");

    // Revoke the gateway: a regular file again, and reload picks it up.
    replace(&map, format!("tokens:\n{prom}").as_bytes());
    until("the revocation", || {
        (post("gw-token").status == 401).then_some(())
    });
}
