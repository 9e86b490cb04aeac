//! A deterministic day of API-gateway decision-log events (SPEC §12) for `proof gen
//! --bundle`: OPA's decision-log shape (`labels`, `decision_id`, `bundles`, `path`,
//! `input`, `result`, `timestamp`, `nd_builtin_cache`), the diurnal rate of the LkSG
//! generator ([`super::Generator`]'s timestamps, sorted), users and tenants, and each
//! event's `result` filled by evaluating the bundle with proof's OPA engine, so that a
//! replay through the same bundle reproduces every recorded result.
//!
//! The inputs have the shape of the bundled gateway example (`fixtures/opa/gateway-*`):
//! `user`, `tenant`, `tier`, `method`, `path`, `ip`, `requests_this_minute`, `token`.
//! Any bundle can be evaluated on them; a bundle written for other inputs gets
//! (correctly evaluated) results that say little. When the bundle calls `time.now_ns`,
//! each event carries `nd_builtin_cache` with the value it answered, as OPA records it:
//! a moment (under 3 ms) before the event's timestamp. Other non-deterministic
//! built-ins have no value to record: an event whose evaluation needs one stops `gen`.

use std::io::{BufWriter, Write};
use std::path::Path;

use chrono::{SecondsFormat, TimeZone, Utc};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde_json::{Value, json};

use super::{GenConfig, Generator};
use crate::engine::opa::{Bundle, DecisionPath, OpaEngine, Read, Worker, parse_event};
use crate::error::ProofError;

/// The decisions an event asks for when `--decision` is not given, with weights: the
/// gateway example's `allow` most often, its `deny` set, `response` object and
/// `status` number.
pub const DEFAULT_DECISIONS: [(&str, u32); 4] = [
    ("gateway/authz/allow", 5),
    ("gateway/authz/deny", 2),
    ("gateway/authz/response", 2),
    ("gateway/authz/status", 1),
];

/// Users with weights: `alice` is an admin, `bob`/`dave` editors, `carol` a viewer,
/// `erin` has no role and `mallory` is unknown to the example's data.
const USERS: [(&str, u32); 6] = [
    ("alice", 2),
    ("bob", 6),
    ("carol", 3),
    ("dave", 6),
    ("erin", 1),
    ("mallory", 1),
];
const METHODS: [(&str, u32); 4] = [("GET", 6), ("POST", 2), ("DELETE", 2), ("PUT", 1)];
const PATHS: [(&str, u32); 7] = [
    ("/api/v1/orders/17", 5),
    ("/api/v2/orders/9", 3),
    ("/api/v1/reports", 2),
    ("/api/v2/reports", 1),
    ("/api/v1/orders", 1),
    ("/internal/orders/1", 1),
    ("/api/v3/orders/x/y", 1),
];
/// Tenants; tenant `t-NN` has tier `TIERS[mix(NN) % 4]` (`gold` is not in the data).
const TENANTS: u64 = 40;
const TIERS: [&str; 4] = ["free", "free", "pro", "enterprise"];
/// The example's per-tier quotas (`tiers/data.json` of gateway-v1).
fn quota(tier: &str) -> u64 {
    match tier {
        "pro" => 1000,
        "enterprise" => 10_000,
        _ => 100,
    }
}

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct OpaGenConfig {
    /// Number of events.
    pub records: u64,
    /// First instant, epoch ms.
    pub start_ms: i64,
    /// Span, ms.
    pub duration_ms: i64,
    /// PRNG seed.
    pub seed: u64,
    /// Decisions to ask for, picked uniformly; empty = [`DEFAULT_DECISIONS`].
    pub decisions: Vec<DecisionPath>,
}

fn pick<'a>(rng: &mut Pcg64Mcg, items: &[(&'a str, u32)]) -> &'a str {
    let total: u32 = items.iter().map(|i| i.1).sum();
    let mut r = rng.random_range(0..total);
    for (s, w) in items {
        if r < *w {
            return s;
        }
        r -= w;
    }
    items[0].0
}

/// A version-4 UUID from the generator (OPA's decision ids are UUIDs).
fn uuid(rng: &mut Pcg64Mcg) -> String {
    let x: u128 = rng.random::<u128>() & !(0xF000u128 << 64) & !(0xC000u128 << 48);
    let x = x | (0x4000u128 << 64) | (0x8000u128 << 48);
    let h = format!("{x:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// RFC 3339 with nine fraction digits, as OPA writes `timestamp`.
fn rfc3339_ns(ns: i64) -> String {
    Utc.timestamp_nanos(ns)
        .to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Streams events as JSONL lines (without the newline).
pub struct OpaGenerator {
    times: Generator,
    rng: Pcg64Mcg,
    decisions: Vec<(String, u32)>,
    worker: Worker,
    bundle_name: String,
    revision: String,
    now_ns: bool,
    next: u64,
    records: u64,
}

impl OpaGenerator {
    /// A generator evaluating `bundle`.
    pub fn new(cfg: OpaGenConfig, bundle: Bundle) -> Result<OpaGenerator, ProofError> {
        let times = Generator::new(GenConfig {
            records: cfg.records,
            start_ms: cfg.start_ms,
            duration_ms: cfg.duration_ms,
            seed: cfg.seed,
            ..GenConfig::default()
        });
        let decisions: Vec<(String, u32)> = if cfg.decisions.is_empty() {
            DEFAULT_DECISIONS
                .iter()
                .map(|(d, w)| (d.to_string(), *w))
                .collect()
        } else {
            cfg.decisions.iter().map(|d| (d.to_string(), 1)).collect()
        };
        let bundle_name = decisions[0]
            .0
            .split('/')
            .next()
            .unwrap_or("authz")
            .to_string();
        let now_ns = bundle.nd_calls().iter().any(|c| c.name == "time.now_ns");
        let revision = bundle.id().to_string();
        let worker = OpaEngine::new(None, bundle).worker()?;
        Ok(OpaGenerator {
            times,
            rng: Pcg64Mcg::seed_from_u64(cfg.seed ^ 0x0FA0_0FA0),
            decisions,
            worker,
            bundle_name,
            revision,
            now_ns,
            next: 0,
            records: cfg.records,
        })
    }

    /// The next timestamp of the diurnal profile, epoch ms (sorted).
    fn next_ts_ms(&mut self) -> i64 {
        let g = &mut self.times;
        g.spacing_acc += -(1.0 - g.spacing_rng.random::<f64>()).ln();
        let u = (g.spacing_acc / g.spacing_sum).min(0.999_999_999);
        g.cfg.start_ms + g.time_at(u)
    }

    /// The next event, or an error naming the event when the bundle cannot evaluate it.
    fn event(&mut self) -> Result<String, ProofError> {
        let i = self.next;
        self.next += 1;
        let ts_ns = self.next_ts_ms() * 1_000_000 + self.rng.random_range(0..1_000_000i64);
        let now = ts_ns - self.rng.random_range(0..3_000_000i64);
        let rng = &mut self.rng;
        let decision = {
            let items: Vec<(&str, u32)> = self
                .decisions
                .iter()
                .map(|(d, w)| (d.as_str(), *w))
                .collect();
            pick(rng, &items).to_string()
        };
        let decision_id = uuid(rng);
        let tenant = rng.random_range(1..=TENANTS);
        let tier = TIERS[(super::mix(tenant) % TIERS.len() as u64) as usize];
        let limit = quota(tier);
        let requests = match rng.random_range(0..10u8) {
            0..=5 => rng.random_range(0..50),
            6 | 7 => rng.random_range(40..limit + 20),
            8 => rng.random_range(40..110),
            _ => limit,
        };
        let ip = if rng.random_bool(0.03) {
            "10.6.6.6".to_string()
        } else {
            format!(
                "10.0.{}.{}",
                rng.random_range(0..4u8),
                rng.random_range(1..255u8)
            )
        };
        let mut input = json!({
            "user": pick(rng, &USERS),
            "tenant": format!("t-{tenant:02}"),
            "tier": tier,
            "method": pick(rng, &METHODS),
            "path": pick(rng, &PATHS),
            "ip": ip,
            "requests_this_minute": requests,
        });
        // Most requests carry a token: most valid for a while, some expiring within
        // the minute (around the v2 bundle's 30 s skew), a few expired.
        if rng.random_bool(0.95) {
            let ahead_s: i64 = match rng.random_range(0..10u8) {
                0..=6 => rng.random_range(90..3600),
                7 | 8 => rng.random_range(0..60),
                _ => rng.random_range(-600..0),
            };
            let exp = now + ahead_s * 1_000_000_000 + rng.random_range(0..1_000_000_000i64);
            input["token"] = json!({ "exp_ns": exp });
        }
        // OPA's decision-log masking: a few events had their token erased.
        let erased = rng.random_bool(0.005);

        let s = |v: &str| Value::String(v.to_string()).to_string();
        let timestamp = s(&rfc3339_ns(ts_ns));
        let cache = self.now_ns.then(|| {
            format!(
                ",\"nd_builtin_cache\":{}",
                json!({"time.now_ns": {"[]": now}})
            )
        });
        let cache = cache.unwrap_or_default();
        let asked = format!(
            "{{\"decision_id\":{},\"path\":{},\"input\":{input},\"timestamp\":{timestamp}{cache}}}",
            s(&decision_id),
            s(&decision),
        );
        let Read::Event(ev) = parse_event(asked.as_bytes(), None) else {
            return Err(ProofError::Internal(format!(
                "proof gen: event {} does not read back as a decision event: {asked}",
                i + 1
            )));
        };
        let out = self.worker.evaluate(&ev);
        // A value without a verdict reading (`status` is a number) is still a result.
        if let Some(reason) = out.errors[1].iter().find(|r| **r != "verdict_type") {
            return Err(ProofError::Usage(format!(
                "proof gen: evaluating event {} ({decision}) on the bundle is an evaluation \
                 error ({reason}); gen records only time.now_ns in nd_builtin_cache, so a \
                 bundle needing another non-deterministic built-in, or one that fails on \
                 the gateway inputs, cannot fill its results",
                i + 1
            )));
        }
        let result = match &out.enforced_value {
            Some(v) => format!(
                ",\"result\":{}",
                serde_json::to_string(v)
                    .map_err(|e| ProofError::Encode(format!("a decision value: {e}")))?
            ),
            None => String::new(),
        };
        // OPA erases after evaluating: the result stands, the input loses the token.
        let erased = if erased {
            if let Some(o) = input.as_object_mut() {
                o.remove("token");
            }
            ",\"erased\":[\"/input/token\"]"
        } else {
            ""
        };
        Ok(format!(
            "{{\"labels\":{{\"app\":\"gateway\"}},\"decision_id\":{},\"bundles\":{{{}:{{\"revision\":{}}}}},\"path\":{},\"input\":{input}{result}{erased},\"timestamp\":{timestamp}{cache}}}",
            s(&decision_id),
            s(&self.bundle_name),
            s(&self.revision),
            s(&decision),
        ))
    }
}

impl Iterator for OpaGenerator {
    type Item = Result<String, ProofError>;

    fn next(&mut self) -> Option<Self::Item> {
        (self.next < self.records).then(|| self.event())
    }
}

/// `proof gen --bundle`: writes the events to `output` (atomically: a temporary file
/// beside it, then renamed), JSONL plain or `.gz`/`.zst` by its name; or to stdout.
pub fn write(
    events: OpaGenerator,
    output: Option<&Path>,
    zstd_level: i32,
) -> Result<(), ProofError> {
    let Some(path) = output else {
        let mut out = BufWriter::new(std::io::stdout().lock());
        for e in events {
            match writeln!(out, "{}", e?) {
                // `proof gen | head`: stop once the reader is gone.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                Err(e) => return Err(ProofError::io(Path::new("-"), e)),
                Ok(()) => {}
            }
        }
        return match out.flush() {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(ProofError::io(Path::new("-"), e))
            }
            _ => Ok(()),
        };
    };
    let name = path.to_string_lossy().to_lowercase();
    if name.ends_with(".parquet") {
        return Err(ProofError::Usage(
            "proof gen --bundle writes JSONL decision events (.jsonl, .jsonl.gz, .jsonl.zst), \
             not Parquet"
                .into(),
        ));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".proof-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| ProofError::io(&dir, e))?;
    crate::report::writer::set_readable(tmp.as_file());
    let file = tmp.reopen().map_err(|e| ProofError::io(path, e))?;
    let mut w: Box<dyn Write> = if name.ends_with(".gz") {
        Box::new(flate2::write::GzEncoder::new(
            BufWriter::new(file),
            flate2::Compression::default(),
        ))
    } else if name.ends_with(".zst") {
        Box::new(
            zstd::stream::write::Encoder::new(BufWriter::new(file), zstd_level)
                .map_err(|e| ProofError::io(path, e))?
                .auto_finish(),
        )
    } else {
        Box::new(BufWriter::new(file))
    };
    for e in events {
        writeln!(w, "{}", e?).map_err(|e| ProofError::io(path, e))?;
    }
    w.flush().map_err(|e| ProofError::io(path, e))?;
    drop(w);
    tmp.persist(path)
        .map_err(|e| ProofError::io(path, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway() -> Bundle {
        Bundle::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/opa/gateway-v1"))
            .unwrap()
    }

    fn cfg(records: u64) -> OpaGenConfig {
        OpaGenConfig {
            records,
            start_ms: 1_794_441_600_000, // 2026-11-12T00:00:00Z
            duration_ms: 86_400_000,
            seed: 7,
            decisions: Vec::new(),
        }
    }

    #[test]
    fn events_are_deterministic_sorted_and_carry_their_results() {
        let a: Vec<String> = OpaGenerator::new(cfg(300), gateway())
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let b: Vec<String> = OpaGenerator::new(cfg(300), gateway())
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(a, b);
        let evs: Vec<Value> = a.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        let ts: Vec<&str> = evs
            .iter()
            .map(|e| e["timestamp"].as_str().unwrap())
            .collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]), "sorted");
        assert!(
            ts[0].starts_with("2026-11-12T") && ts[0].len() == 30,
            "{}",
            ts[0]
        );
        for e in &evs {
            assert_eq!(e["bundles"]["gateway"]["revision"], "gw-1");
            assert_eq!(e["decision_id"].as_str().unwrap().len(), 36);
            assert_eq!(e["decision_id"].as_str().unwrap().as_bytes()[14], b'4');
            // the policy calls time.now_ns: every event records it, before the timestamp
            let now = e["nd_builtin_cache"]["time.now_ns"]["[]"].as_i64().unwrap();
            let ts_ns =
                crate::engine::opa::event::parse_rfc3339_ns(e["timestamp"].as_str().unwrap())
                    .unwrap();
            assert!((0..3_000_000).contains(&(ts_ns - i128::from(now))));
        }
        // every decision has a result; allow is a boolean, deny an array, response an
        // object, status a number
        let by = |d: &'static str| evs.iter().filter(move |e| e["path"] == d);
        assert!(by("gateway/authz/allow").all(|e| e["result"].is_boolean()));
        assert!(by("gateway/authz/deny").all(|e| e["result"].is_array()));
        assert!(by("gateway/authz/response").all(|e| e["result"]["status"].is_number()));
        assert!(by("gateway/authz/status").all(|e| e["result"].is_number()));
        let allowed = by("gateway/authz/allow")
            .filter(|e| e["result"] == true)
            .count();
        let all = by("gateway/authz/allow").count();
        assert!(allowed * 4 > all && allowed < all, "{allowed} of {all}");
        let other = OpaGenerator::new(OpaGenConfig { seed: 8, ..cfg(1) }, gateway())
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_ne!(other, a[0]);
    }

    #[test]
    fn a_bundle_needing_another_nd_builtin_stops_gen_naming_the_event() {
        let b = Bundle::from_files(
            Path::new("r"),
            "r",
            [(
                "p.rego".to_string(),
                b"package r\n\nallow if rand.intn(\"x\", 10) == 3\n".to_vec(),
            )]
            .into(),
        )
        .unwrap();
        let c = OpaGenConfig {
            decisions: vec![DecisionPath::parse("r/allow").unwrap()],
            ..cfg(5)
        };
        let err = OpaGenerator::new(c, b)
            .unwrap()
            .next()
            .unwrap()
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("event 1 (r/allow)"), "{msg}");
        assert!(msg.contains("nondeterministic"), "{msg}");
    }
}
