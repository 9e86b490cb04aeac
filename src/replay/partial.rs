//! Partial aggregates (SPEC §10): the state of a replay over part of the traffic, as a
//! file that `proof merge` (or the Python package, or a Spark driver) combines with
//! the other parts into the report of one run over all the records.
//!
//! Format `proof.partial/v1` (docs/scale-out.md), chosen to be compact, versioned and
//! checkable with tools already in the build:
//!
//! ```text
//! "PROOF-PARTIAL\n"            14 bytes of magic (tells a partial from anything else)
//! u32 LE format version        1
//! u64 LE n, n bytes            header: JSON (fingerprint, identities, inputs; readable
//!                              with `head -c`, diffable, extensible)
//! u64 LE m, m bytes            body: zstd of the counts as LEB128 varints
//! 32 bytes                     SHA-256 of everything before (truncation, corruption)
//! ```
//!
//! The fingerprint holds everything that makes two parts comparable; `merge` refuses
//! parts that differ in any of its fields and names the field and both values.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::aggregate::{Aggregate, Bounds, Example, FileCounts, Origin, Unfaithful, WindowAgg};
use super::job::{Job, input_files};
use super::record::Reason;
use super::settings::Settings;
use super::source::Input;
use super::window::WindowLen;
use crate::error::ProofError;
use crate::orchestrator::metrics::LATENCY_BUCKETS;
use crate::orchestrator::{DriftKind, Verdict};
use crate::report::model::{
    ConfigOut, InputFile, Inputs, ListRef, PolicyRef, Report, ReportContext,
};

/// Magic bytes at the start of every partial.
pub const MAGIC: &[u8; 14] = b"PROOF-PARTIAL\n";
/// The binary layout's version.
pub const FORMAT_VERSION: u32 = 2;
/// The header's schema tag.
pub const SCHEMA: &str = "proof.partial/v2";
/// The sampling scheme of SPEC §3, named so a future scheme cannot be merged with it.
pub const BUCKET_SCHEME: &str = "u64_be(sha256(salt:request_id)[0..8]) mod 10000";
/// Largest partial read (a bound against reading a wrong multi-gigabyte file whole).
pub const MAX_PARTIAL_BYTES: u64 = 4 << 30;

/// What makes parts comparable (SPEC §10). Every field must match to merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Header schema.
    pub schema: String,
    /// `proof` version that wrote the part.
    pub proof_version: String,
    /// The policy engine (`ir`, `opa`).
    pub engine: String,
    /// Baseline hash (an IR's `ir_hash`, a bundle's digest; empty when recorded).
    pub baseline_hash: String,
    /// Candidate hash.
    pub candidate_hash: String,
    /// The engine's other comparable settings (selectors, weights and lists digests,
    /// the decision path), by name.
    pub settings: BTreeMap<String, String>,
    /// `replayed`, or `recorded` / `recorded=ID` (SPEC §11).
    pub baseline: String,
    /// `--bucket-key`, if given.
    pub bucket_key: Option<String>,
    /// Sampling salt.
    pub salt: String,
    /// Window length, milliseconds.
    pub window_ms: i64,
    /// Sampling scheme.
    pub bucket_scheme: String,
}

impl Fingerprint {
    /// `(field, value)` pairs, in a fixed order, for messages.
    fn fields(&self) -> Vec<(String, String)> {
        let mut v = vec![
            ("schema".to_string(), self.schema.clone()),
            ("proof_version".into(), self.proof_version.clone()),
            ("engine".into(), self.engine.clone()),
            ("baseline_hash".into(), self.baseline_hash.clone()),
            ("candidate_hash".into(), self.candidate_hash.clone()),
            ("baseline".into(), self.baseline.clone()),
            (
                "bucket_key".into(),
                self.bucket_key.clone().unwrap_or_else(|| "(request_id)".into()),
            ),
            ("salt".into(), self.salt.clone()),
            ("window_ms".into(), self.window_ms.to_string()),
            ("bucket_scheme".into(), self.bucket_scheme.clone()),
        ];
        let names: std::collections::BTreeSet<&String> = self.settings.keys().collect();
        for n in names {
            v.push((format!("settings.{n}"), self.settings[n].clone()));
        }
        v
    }
}

/// The header: the fingerprint plus what the report needs besides the counts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    /// Must match across parts.
    pub fingerprint: Fingerprint,
    /// Shadow identity.
    pub baseline: PartRef,
    /// Candidate identity.
    pub candidate: PartRef,
    /// Bound lists.
    pub lists: Vec<PartList>,
    /// Rule ids of the shadow and the enforced policy (for evaluation errors).
    pub rule_ids: [Vec<String>; 2],
    /// Inputs this part read, in origin order.
    pub files: Vec<PartFile>,
}

/// A policy path's identity, as report.json shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartRef {
    /// Policy id.
    pub policy_id: String,
    /// IR hash.
    pub ir_hash: String,
    /// IR file.
    pub path: String,
    /// Selector.
    pub selector: String,
    /// Weights file.
    pub weights: Option<String>,
    /// Budget.
    pub budget: Option<u64>,
}

/// A bound list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartList {
    /// Variable name.
    pub name: String,
    /// File.
    pub path: String,
    /// Values.
    pub values: usize,
}

/// An input (its counts are in the body).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct PartFile {
    /// Path as given.
    pub path: String,
    /// jsonl or parquet.
    pub format: String,
    /// none, gzip or zstd.
    pub compression: String,
    /// Size on disk.
    pub bytes: Option<u64>,
}

/// A decoded partial.
#[derive(Debug, Clone)]
pub struct Partial {
    /// Fingerprint, identities, inputs.
    pub header: Header,
    /// The counts.
    pub agg: Aggregate,
}

fn part_ref(r: &PolicyRef) -> PartRef {
    PartRef {
        policy_id: r.policy_id.clone(),
        ir_hash: r.ir_hash.clone(),
        path: r.path.clone(),
        selector: r.selector.to_string(),
        weights: r.weights.clone(),
        budget: r.budget,
    }
}

fn policy_ref(r: &PartRef) -> PolicyRef {
    PolicyRef {
        policy_id: r.policy_id.clone(),
        ir_hash: r.ir_hash.clone(),
        path: r.path.clone(),
        selector: match r.selector.as_str() {
            "weighted" => "weighted",
            _ => "basic",
        },
        weights: r.weights.clone(),
        budget: r.budget,
    }
}

/// The header of a job's part over `files`.
pub fn header(job: &Job, files: Vec<PartFile>) -> Header {
    let about = job.engine.about();
    let s = &job.settings;
    Header {
        fingerprint: Fingerprint {
            schema: SCHEMA.into(),
            proof_version: env!("CARGO_PKG_VERSION").into(),
            engine: about.engine.into(),
            baseline_hash: about.baseline.hash.clone(),
            candidate_hash: about.candidate.hash.clone(),
            settings: about
                .settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            baseline: s.baseline.to_string(),
            bucket_key: s.bucket_key.as_ref().map(|k| k.to_string()),
            salt: job.engine.salt().to_string(),
            window_ms: job.gate.window.ms(),
            bucket_scheme: BUCKET_SCHEME.into(),
        },
        baseline: part_ref(&job.baseline),
        candidate: part_ref(&job.candidate),
        lists: job
            .lists
            .summary()
            .into_iter()
            .map(|(name, path, values)| PartList {
                name,
                path: path.display().to_string(),
                values,
            })
            .collect(),
        rule_ids: [about.baseline.rules.clone(), about.candidate.rules.clone()],
        files,
    }
}

/// The part files of expanded inputs.
pub fn part_files(inputs: &[Input], agg: &Aggregate) -> Vec<PartFile> {
    input_files(inputs, agg)
        .into_iter()
        .map(|f| PartFile {
            path: f.path,
            format: f.format,
            compression: f.compression,
            bytes: f.bytes,
        })
        .collect()
}

// ---- body encoding -----------------------------------------------------------------

struct Enc(Vec<u8>);

impl Enc {
    fn u(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return;
            }
            self.0.push(b | 0x80);
        }
    }
    fn i(&mut self, v: i64) {
        self.u(((v << 1) ^ (v >> 63)) as u64);
    }
    fn s(&mut self, s: &str) {
        self.u(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn example(&mut self, e: &Example) {
        self.i(e.ts_ms);
        self.u(u64::from(e.origin.file));
        self.u(e.origin.line);
        self.s(&e.request_id);
        self.u(u64::from(e.bucket));
        self.u(e.shadow.index() as u64);
        self.u(e.enforced.index() as u64);
        self.u(e.kind.index() as u64);
        self.s(&e.cause);
    }
}

struct Dec<'a> {
    b: &'a [u8],
}

type DecResult<T> = Result<T, &'static str>;

impl Dec<'_> {
    fn u(&mut self) -> DecResult<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.b.split_first().ok_or("ends early")?;
            self.b = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("a number is too long")
    }
    fn u32(&mut self) -> DecResult<u32> {
        u32::try_from(self.u()?).map_err(|_| "a count is out of range")
    }
    fn i(&mut self) -> DecResult<i64> {
        let u = self.u()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
    fn len(&mut self) -> DecResult<usize> {
        let n = self.u()?;
        // A length can never exceed the bytes left (every item takes at least one).
        if n > self.b.len() as u64 {
            return Err("a length runs past the end");
        }
        Ok(n as usize)
    }
    fn s(&mut self) -> DecResult<String> {
        let n = self.len()?;
        let (s, rest) = self.b.split_at(n);
        self.b = rest;
        String::from_utf8(s.to_vec()).map_err(|_| "a string is not UTF-8")
    }
    fn pick<T: Copy>(&mut self, all: &[T]) -> DecResult<T> {
        let i = self.u()? as usize;
        all.get(i).copied().ok_or("an enum value is out of range")
    }
    fn example(&mut self) -> DecResult<Example> {
        Ok(Example {
            ts_ms: self.i()?,
            origin: Origin {
                file: self.u32()?,
                line: self.u()?,
            },
            request_id: self.s()?,
            bucket: u16::try_from(self.u()?)
                .ok()
                .filter(|&b| b < 10_000)
                .ok_or("a bucket is out of range")?,
            shadow: self.pick(&Verdict::ALL)?,
            enforced: self.pick(&Verdict::ALL)?,
            kind: self.pick(&DriftKind::ALL)?,
            cause: self.s()?,
        })
    }
}

/// The reasons an evaluation error can have (EvalError names), for decoding.
const ERROR_REASONS: [&str; 6] = [
    "missing_var",
    "type",
    "empty",
    "arity",
    "overflow",
    "budget",
];

fn static_reason(s: &str) -> Option<&'static str> {
    ERROR_REASONS.iter().copied().find(|r| *r == s)
}

fn encode_body(a: &Aggregate) -> Vec<u8> {
    let mut e = Enc(Vec::new());
    e.u(a.bounds.examples as u64);
    e.u(a.bounds.rejections as u64);
    e.u(u64::from(a.bounds.drift_details));
    e.u(a.read);
    e.u(a.evaluated);
    e.u(a.skipped);
    for &n in &a.rejected {
        e.u(n);
    }
    e.u(a.rejection_samples.len() as u64);
    for (o, r) in &a.rejection_samples {
        e.u(u64::from(o.file));
        e.u(o.line);
        e.u(r.index() as u64);
    }
    e.u(a.windows.len() as u64);
    for (&start, w) in &a.windows {
        e.i(start);
        e.u(w.requests);
        for arr in [
            &w.drift_by_pct,
            &w.new_denials_by_pct,
            &w.missed_denials_by_pct,
        ] {
            for &n in arr.iter() {
                e.u(u64::from(n));
            }
        }
        for row in &w.enforced_by_pct {
            for &n in row {
                e.u(u64::from(n));
            }
        }
        for &n in &w.shadow {
            e.u(n);
        }
        for &n in &w.latency_buckets {
            e.u(n);
        }
        e.u(w.latency_sum_ns);
    }
    for arr in [&a.shadow, &a.enforced] {
        for &n in arr {
            e.u(n);
        }
    }
    for &n in &a.by_kind {
        e.u(n);
    }
    e.u(a.by_cause.len() as u64);
    for (c, &n) in &a.by_cause {
        e.s(c);
        e.u(n);
    }
    for list in [&a.examples, &a.drifts] {
        e.u(list.len() as u64);
        for x in list {
            e.example(x);
        }
    }
    e.u(a.files.len() as u64);
    for (&k, f) in &a.files {
        e.u(u64::from(k));
        e.u(f.read);
        e.u(f.evaluated);
        e.u(f.rejected);
        e.u(f.skipped);
    }
    let recorded: Vec<(u64, u64)> = a
        .latency
        .0
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect();
    e.u(recorded.len() as u64);
    for (v, n) in recorded {
        e.u(v);
        e.u(n);
    }
    e.u(a.eval_errors.len() as u64);
    for (&(path, rule, reason), &n) in &a.eval_errors {
        e.u(u64::from(path));
        e.u(u64::from(rule));
        e.s(reason);
        e.u(n);
    }
    for &n in &a.skipped_by {
        e.u(n);
    }
    e.u(a.bucket_key_missing);
    e.u(a.changed);
    for row in &a.fidelity {
        for &n in row {
            e.u(n);
        }
    }
    e.u(a.unfaithful.len() as u64);
    for x in &a.unfaithful {
        e.i(x.ts_ms);
        e.u(u64::from(x.origin.file));
        e.u(x.origin.line);
        e.s(&x.request_id);
        e.u(x.recorded.index() as u64);
        e.u(x.replayed.index() as u64);
    }
    e.0
}

fn decode_body(b: &[u8]) -> DecResult<Aggregate> {
    let mut d = Dec { b };
    let mut a = Aggregate::new(Bounds {
        examples: d.u()? as usize,
        rejections: d.u()? as usize,
        drift_details: d.u()? != 0,
    });
    a.read = d.u()?;
    a.evaluated = d.u()?;
    a.skipped = d.u()?;
    for n in a.rejected.iter_mut() {
        *n = d.u()?;
    }
    for _ in 0..d.len()? {
        let o = Origin {
            file: d.u32()?,
            line: d.u()?,
        };
        a.rejection_samples.push((o, d.pick(&Reason::ALL)?));
    }
    for _ in 0..d.len()? {
        let start = d.i()?;
        let mut w = WindowAgg {
            requests: d.u()?,
            ..WindowAgg::default()
        };
        for arr in [
            &mut w.drift_by_pct,
            &mut w.new_denials_by_pct,
            &mut w.missed_denials_by_pct,
        ] {
            for n in arr.iter_mut() {
                *n = d.u32()?;
            }
        }
        for row in w.enforced_by_pct.iter_mut() {
            for n in row.iter_mut() {
                *n = d.u32()?;
            }
        }
        for n in w.shadow.iter_mut() {
            *n = d.u()?;
        }
        for n in w.latency_buckets.iter_mut() {
            *n = d.u()?;
        }
        w.latency_sum_ns = d.u()?;
        if a.windows.insert(start, w).is_some() {
            return Err("a window appears twice");
        }
    }
    for arr in [&mut a.shadow, &mut a.enforced] {
        for n in arr.iter_mut() {
            *n = d.u()?;
        }
    }
    for n in a.by_kind.iter_mut() {
        *n = d.u()?;
    }
    for _ in 0..d.len()? {
        let c = d.s()?;
        let n = d.u()?;
        a.by_cause.insert(c, n);
    }
    for k in 0..2 {
        for _ in 0..d.len()? {
            let x = d.example()?;
            if k == 0 {
                a.examples.push(x);
            } else {
                a.drifts.push(x);
            }
        }
    }
    for _ in 0..d.len()? {
        let k = d.u32()?;
        a.files.insert(
            k,
            FileCounts {
                read: d.u()?,
                evaluated: d.u()?,
                rejected: d.u()?,
                skipped: d.u()?,
            },
        );
    }
    for _ in 0..d.len()? {
        let v = d.u()?;
        let n = d.u()?;
        a.latency
            .0
            .record_n(v.clamp(1, 60_000_000_000), n)
            .map_err(|_| "a latency value is out of range")?;
    }
    for _ in 0..d.len()? {
        let path = u8::try_from(d.u()?)
            .ok()
            .filter(|&p| p < 2)
            .ok_or("an evaluation error's path is out of range")?;
        let rule = d.u32()?;
        let reason = static_reason(&d.s()?).ok_or("an evaluation error has an unknown reason")?;
        a.eval_errors.insert((path, rule, reason), d.u()?);
    }
    for n in a.skipped_by.iter_mut() {
        *n = d.u()?;
    }
    a.bucket_key_missing = d.u()?;
    a.changed = d.u()?;
    for row in a.fidelity.iter_mut() {
        for n in row.iter_mut() {
            *n = d.u()?;
        }
    }
    for _ in 0..d.len()? {
        a.unfaithful.push(Unfaithful {
            ts_ms: d.i()?,
            origin: Origin {
                file: d.u32()?,
                line: d.u()?,
            },
            request_id: d.s()?,
            recorded: d.pick(&Verdict::ALL)?,
            replayed: d.pick(&Verdict::ALL)?,
        });
    }
    if !d.b.is_empty() {
        return Err("has bytes after its end");
    }
    // Counts that must agree, so a crafted file cannot make the report inconsistent.
    if a.read != a.evaluated + a.skipped + a.rejected_total()
        || a.skipped != a.skipped_by.iter().sum::<u64>()
        || a.windows.values().map(|w| w.requests).sum::<u64>() != a.evaluated
    {
        return Err("its counts do not add up (read = evaluated + rejected + skipped)");
    }
    let _ = LATENCY_BUCKETS;
    Ok(a)
}

/// Encodes a partial.
pub fn encode(p: &Partial) -> Result<Vec<u8>, ProofError> {
    let header = serde_json::to_vec(&p.header)
        .map_err(|e| ProofError::Encode(format!("partial header: {e}")))?;
    let body = zstd::bulk::compress(&encode_body(&p.agg), 3)
        .map_err(|e| ProofError::Encode(format!("partial body: {e}")))?;
    let mut out = Vec::with_capacity(header.len() + body.len() + 80);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    Ok(out)
}

/// Decodes a partial; `name` (a path or `-`) is named in every error.
pub fn decode(bytes: &[u8], name: &str) -> Result<Partial, ProofError> {
    let bad = |msg: String| ProofError::Config {
        path: crate::error::Location::file(Path::new(name)),
        msg,
    };
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(bad(
            "not a proof partial (no PROOF-PARTIAL header); write one with `proof replay --partial-out FILE`".into(),
        ));
    }
    let truncated = || bad("truncated partial (the file ends early); write it again".into());
    let rest = &bytes[MAGIC.len()..];
    if rest.len() < 4 {
        return Err(truncated());
    }
    let version = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(bad(format!(
            "partial format version {version}, but this proof ({}) reads version {FORMAT_VERSION}; \
             write the parts and merge them with the same proof version",
            env!("CARGO_PKG_VERSION")
        )));
    }
    if bytes.len() < MAGIC.len() + 4 + 8 + 8 + 32 {
        return Err(truncated());
    }
    let (content, sum) = bytes.split_at(bytes.len() - 32);
    let mut r = &content[MAGIC.len() + 4..];
    let take = |r: &mut &[u8]| -> Option<Vec<u8>> {
        if r.len() < 8 {
            return None;
        }
        let n = u64::from_le_bytes(r[..8].try_into().expect("8 bytes"));
        let n = usize::try_from(n).ok().filter(|&n| n <= r.len() - 8)?;
        let v = r[8..8 + n].to_vec();
        *r = &r[8 + n..];
        Some(v)
    };
    let header = take(&mut r).ok_or_else(truncated)?;
    let body = take(&mut r).ok_or_else(truncated)?;
    if !r.is_empty() || Sha256::digest(content).as_slice() != sum {
        return Err(bad(
            "corrupt or truncated partial (its SHA-256 check does not match); write it again"
                .into(),
        ));
    }
    let header: Header =
        serde_json::from_slice(&header).map_err(|e| bad(format!("partial header: {e}")))?;
    if header.fingerprint.schema != SCHEMA {
        return Err(bad(format!(
            "partial schema {}, expected {SCHEMA}",
            header.fingerprint.schema
        )));
    }
    // zstd bounds the output; a bomb stops at the limit.
    let mut raw = Vec::new();
    zstd::stream::read::Decoder::new(&body[..])
        .map_err(|e| bad(format!("partial body: {e}")))?
        .take(MAX_PARTIAL_BYTES)
        .read_to_end(&mut raw)
        .map_err(|e| bad(format!("partial body: {e}")))?;
    let agg = decode_body(&raw).map_err(|m| bad(format!("partial body {m}")))?;
    if agg.files.keys().any(|&k| k as usize >= header.files.len()) {
        return Err(bad("partial body names an input its header lacks".into()));
    }
    Ok(Partial { header, agg })
}

/// Reads and decodes a partial file (`-`: standard input).
pub fn read(path: &Path) -> Result<Partial, ProofError> {
    let mut bytes = Vec::new();
    let name = path.display().to_string();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .take(MAX_PARTIAL_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| ProofError::io(path, e))?;
    } else {
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_PARTIAL_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|e| ProofError::io(path, e))?;
    }
    if bytes.len() as u64 > MAX_PARTIAL_BYTES {
        return Err(ProofError::Limit {
            path: crate::error::Location::file(path),
            msg: "a partial larger than 4 GiB is not read (is this the right file?)".into(),
        });
    }
    decode(&bytes, &name)
}

/// Expands partial arguments: files as given, directories to their files in name
/// order (hidden files skipped), `-` for standard input.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ProofError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| ProofError::io(p, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|e| {
                    e.is_file()
                        && !e
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect();
            entries.sort();
            if entries.is_empty() {
                return Err(ProofError::Usage(format!(
                    "{}: directory holds no partial",
                    p.display()
                )));
            }
            out.extend(entries);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Merges parts: refused (naming the field, both values and both parts) unless
/// every fingerprint field matches. The result does not depend on the order of
/// `parts`: they are put in a canonical order first (by inputs, then content).
pub fn merge(parts: Vec<(String, Partial)>) -> Result<Partial, ProofError> {
    let Some((first_name, first)) = parts.first() else {
        return Err(ProofError::Usage("no partial to merge".into()));
    };
    for (name, p) in &parts[1..] {
        for ((field, a), (_, b)) in first
            .header
            .fingerprint
            .fields()
            .into_iter()
            .zip(p.header.fingerprint.fields())
        {
            if a != b {
                return Err(ProofError::Usage(format!(
                    "cannot merge {name} with {first_name}: they differ in {field} ({b} vs {a}); \
                     every part must be replayed with the same policies, selectors, weights, \
                     lists, salt and window"
                )));
            }
        }
        if first.header.fingerprint != p.header.fingerprint {
            return Err(ProofError::Usage(format!(
                "cannot merge {name} with {first_name}: their engine settings differ ({:?} vs \
                 {:?}); every part must be replayed with the same engine settings",
                p.header.fingerprint.settings, first.header.fingerprint.settings
            )));
        }
    }
    let mut keyed: Vec<(Vec<u8>, Partial)> = parts
        .into_iter()
        .map(|(_, p)| {
            let key = [
                serde_json::to_vec(&p.header.files).unwrap_or_default(),
                encode_body(&p.agg),
            ]
            .concat();
            (key, p)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut parts = keyed.into_iter().map(|(_, p)| p);
    let mut out = parts.next().expect("at least one part");
    // Parts of one input (byte ranges or rows of a file, as Spark splits it) name
    // the same file: it stays one input, with the parts' counts added, as in one run
    // over the whole file.
    let first = std::mem::take(&mut out.header.files);
    let mut agg = std::mem::take(&mut out.agg);
    renumber_files(&mut agg, &input_indices(&mut out.header.files, first));
    out.agg = agg;
    for p in parts {
        let mut agg = p.agg;
        renumber_files(
            &mut agg,
            &input_indices(&mut out.header.files, p.header.files),
        );
        out.agg = out.agg.merge(agg);
    }
    out.agg.finish();
    Ok(out)
}

/// Adds a part's inputs to the merged list (an input already there keeps its place)
/// and returns where each of the part's inputs went.
fn input_indices(merged: &mut Vec<PartFile>, part: Vec<PartFile>) -> Vec<u32> {
    part.into_iter()
        .map(|f| match merged.iter().position(|m| *m == f) {
            Some(i) => i as u32,
            None => {
                merged.push(f);
                (merged.len() - 1) as u32
            }
        })
        .collect()
}

/// Renumbers a part's inputs to their places in the merged list (`to[i]` for input
/// `i`). Inputs that land on one place have their counts added.
fn renumber_files(a: &mut Aggregate, to: &[u32]) {
    let at = |k: u32| to.get(k as usize).copied().unwrap_or(k);
    let mut files: BTreeMap<u32, FileCounts> = BTreeMap::new();
    for (k, f) in std::mem::take(&mut a.files) {
        let mine = files.entry(at(k)).or_default();
        mine.read += f.read;
        mine.evaluated += f.evaluated;
        mine.rejected += f.rejected;
        mine.skipped += f.skipped;
    }
    a.files = files;
    for (o, _) in &mut a.rejection_samples {
        o.file = at(o.file);
    }
    a.rejection_samples.sort();
    for e in a.examples.iter_mut().chain(a.drifts.iter_mut()) {
        e.origin.file = at(e.origin.file);
    }
}

/// Writes a job's part over `inputs` to `path`, atomically.
pub fn write(path: &Path, job: &Job, inputs: &[Input], agg: &Aggregate) -> Result<(), ProofError> {
    let p = Partial {
        header: header(job, part_files(inputs, agg)),
        agg: agg.clone(),
    };
    crate::report::writer::write_atomic(path, &encode(&p)?)
}

/// The report of a (merged) partial under gate settings taken from `settings` (its
/// window, lists and policies come from the partial; `settings.window` must match).
pub fn report(p: &Partial, settings: &Settings) -> Result<Report, ProofError> {
    let fp = &p.header.fingerprint;
    let window = WindowLen::from_ms(fp.window_ms).ok_or_else(|| ProofError::Config {
        path: crate::error::Location::file(Path::new("partial")),
        msg: format!("window_ms {} out of range", fp.window_ms),
    })?;
    let mut gate = settings.gate();
    gate.window = window;
    if let Some(plan) = &settings.plan {
        plan.plan.check_window(window, &plan.origin)?;
    }
    let files = p
        .header
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| InputFile {
            path: f.path.clone(),
            format: f.format.clone(),
            compression: f.compression.clone(),
            bytes: f.bytes,
            counts: p.agg.files.get(&(i as u32)).copied().unwrap_or_default(),
        })
        .collect();
    let redact_key = std::env::var_os(super::job::REDACT_KEY_VAR)
        .filter(|k| !k.is_empty())
        .map(|k| k.into_encoded_bytes());
    let key = redact_key
        .clone()
        .unwrap_or_else(|| fp.salt.as_bytes().to_vec());
    let redact_ids = settings.redact_ids;
    let show_id = |id: &str| {
        if redact_ids {
            super::job::redact(&key, id)
        } else {
            id.to_string()
        }
    };
    let config = ConfigOut {
        window: window.to_string(),
        rollout: gate.rollout,
        drift_max: gate.drift_max,
        levels: gate.levels.clone(),
        min_requests: gate.min_requests,
        rollback_factor: gate.rollback_factor,
        max_rejects: gate.max_rejects,
        salt: fp.salt.clone(),
        redact_ids,
        redact_key_set: redact_ids && redact_key.is_some(),
        scenario: None,
        max_eval_error_ratio: gate.max_eval_error_ratio,
    };
    let mut agg = p.agg.clone();
    agg.bounds.examples = agg.bounds.examples.min(settings.examples);
    agg.finish();
    Ok(Report::build(
        &agg,
        ReportContext {
            gate: &gate,
            inputs: Inputs {
                files,
                baseline: policy_ref(&p.header.baseline),
                candidate: policy_ref(&p.header.candidate),
                lists: p
                    .header
                    .lists
                    .iter()
                    .map(|l| ListRef {
                        name: l.name.clone(),
                        path: l.path.clone(),
                        values: l.values,
                    })
                    .collect(),
            },
            config,
            show_id: &show_id,
            rule_ids: p.header.rule_ids.clone(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        let mut e = Enc(Vec::new());
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            e.u(v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, -62_167_219_200_000] {
            e.i(v);
        }
        let mut d = Dec { b: &e.0 };
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            assert_eq!(d.u().unwrap(), v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, -62_167_219_200_000] {
            assert_eq!(d.i().unwrap(), v);
        }
        assert!(d.u().is_err());
    }
}
