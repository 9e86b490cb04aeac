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

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::aggregate::{Aggregate, Bounds, Example, FileCounts, Origin, Unfaithful, WindowAgg};
use super::job::input_files;
use super::record::Reason;
use super::settings::Settings;
use super::source::Input;
use super::window::WindowLen;
use crate::engine::About;
use crate::error::ProofError;
use crate::orchestrator::{DriftKind, Verdict};
use crate::policy::Lists;
use crate::policy::time::{MAX_TS_MS, MIN_TS_MS, check_epoch_ms};
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
                self.bucket_key
                    .clone()
                    .unwrap_or_else(|| "(request_id)".into()),
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
    /// Size of the body once decompressed: a reader inflates no more (absent in parts
    /// written before it was added; the zstd frame's declared size is used then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_bytes: Option<u64>,
    /// Request ids in the body are already keyed hashes (`--redact-ids`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ids_redacted: bool,
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
            // OPA bundles (SPEC §12) have no selector: the CLI's reports say `opa`.
            "opa" => "opa",
            _ => "basic",
        },
        weights: r.weights.clone(),
        budget: r.budget,
    }
}

/// What identifies a run for its partial's fingerprint (SPEC §10).
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    /// What the engine says about itself.
    pub about: &'a About,
    /// The rollout salt.
    pub salt: &'a str,
    /// Window length.
    pub window: WindowLen,
    /// `replayed`, `recorded` or `recorded=ID`.
    pub baseline: &'a crate::replay::settings::Baseline,
    /// `--bucket-key`.
    pub bucket_key: Option<&'a crate::engine::KeyPath>,
}

/// What a part says about the run that made it: the header without its inputs.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Must match across parts.
    pub fingerprint: Fingerprint,
    /// Shadow identity.
    pub baseline: PartRef,
    /// Candidate identity.
    pub candidate: PartRef,
    /// Bound lists.
    pub lists: Vec<PartList>,
    /// Rule ids of the shadow and the enforced policy.
    pub rule_ids: [Vec<String>; 2],
}

impl Identity {
    /// The identity of a run of `engine` with `lists`, `window` and the policies as
    /// report.json shows them.
    pub fn of(
        run: Run<'_>,
        lists: &Lists,
        baseline: &PolicyRef,
        candidate: &PolicyRef,
    ) -> Identity {
        let about = run.about;
        Identity {
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
                baseline: run.baseline.to_string(),
                bucket_key: run.bucket_key.map(|k| k.to_string()),
                salt: run.salt.to_string(),
                window_ms: run.window.ms(),
                bucket_scheme: BUCKET_SCHEME.into(),
            },
            baseline: part_ref(baseline),
            candidate: part_ref(candidate),
            lists: lists
                .summary()
                .into_iter()
                .map(|(name, path, values)| PartList {
                    name,
                    path: path.display().to_string(),
                    values,
                })
                .collect(),
            rule_ids: [about.baseline.rules.clone(), about.candidate.rules.clone()],
        }
    }

    /// The header of a part over `files`.
    pub fn header(&self, files: Vec<PartFile>) -> Header {
        Header {
            fingerprint: self.fingerprint.clone(),
            baseline: self.baseline.clone(),
            candidate: self.candidate.clone(),
            lists: self.lists.clone(),
            rule_ids: self.rule_ids.clone(),
            files,
            body_bytes: None,
            ids_redacted: false,
        }
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

/// Reads the body as it is decompressed: nothing is held but what it decodes to, so a
/// body that inflates far past its size stops at its first inconsistency, and never
/// reads more than `left` bytes (the size its header declares).
struct Dec<R> {
    r: R,
    left: u64,
}

type DecResult<T> = Result<T, &'static str>;

impl<R: std::io::BufRead> Dec<R> {
    fn byte(&mut self) -> DecResult<u8> {
        if self.left == 0 {
            return Err("ends early");
        }
        let buf = self
            .r
            .fill_buf()
            .map_err(|_| "does not decompress (corrupt zstd data)")?;
        let &b = buf.first().ok_or("ends early")?;
        self.r.consume(1);
        self.left -= 1;
        Ok(b)
    }
    fn u(&mut self) -> DecResult<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
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
        if n > self.left {
            return Err("a length runs past the end");
        }
        usize::try_from(n).map_err(|_| "a length runs past the end")
    }
    fn s(&mut self) -> DecResult<String> {
        let n = self.len()?;
        let mut v = Vec::with_capacity(n.min(1 << 16));
        (&mut self.r)
            .take(n as u64)
            .read_to_end(&mut v)
            .map_err(|_| "does not decompress (corrupt zstd data)")?;
        if v.len() != n {
            return Err("ends early");
        }
        self.left -= n as u64;
        String::from_utf8(v).map_err(|_| "a string is not UTF-8")
    }
    fn pick<T: Copy>(&mut self, all: &[T]) -> DecResult<T> {
        let i = self.u()? as usize;
        all.get(i).copied().ok_or("an enum value is out of range")
    }
    fn example(&mut self) -> DecResult<Example> {
        Ok(Example {
            ts_ms: check_epoch_ms(self.i()?).ok_or("an example's time is out of range")?,
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
    /// True when the stream has no byte left.
    fn at_end(&mut self) -> DecResult<bool> {
        let buf = self
            .r
            .fill_buf()
            .map_err(|_| "does not decompress (corrupt zstd data)")?;
        Ok(buf.is_empty())
    }
}

/// The reasons an evaluation error can have (EvalError names), for decoding.
const ERROR_REASONS: [&str; 9] = [
    "missing_var",
    "type",
    "empty",
    "arity",
    "overflow",
    "budget",
    // OPA paths (SPEC §12).
    "eval",
    "nondeterministic",
    "verdict_type",
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

fn decode_body<R: std::io::BufRead>(
    d: &mut Dec<R>,
    window: WindowLen,
    max_windows: usize,
) -> DecResult<Aggregate> {
    let mut a = Aggregate::new(Bounds {
        examples: usize::try_from(d.u()?).map_err(|_| "a bound is out of range")?,
        rejections: usize::try_from(d.u()?).map_err(|_| "a bound is out of range")?,
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
    let windows = d.len()?;
    if windows > max_windows {
        return Err("holds more windows than --max-windows allows; raise --max-windows");
    }
    // Window starts a report can print: inside RFC 3339's years, on the window grid.
    let first = window.of(MIN_TS_MS).ms();
    for _ in 0..windows {
        let start = d.i()?;
        if !(first..=MAX_TS_MS).contains(&start) || window.of(start).ms() != start {
            return Err("has a window start outside the years 0001-9999 or off the window grid");
        }
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
        check_window(&w)?;
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
    if !d.at_end()? {
        return Err("has bytes after its end");
    }
    check_counts(&a)?;
    Ok(a)
}

/// Sums in checked arithmetic: `None` on overflow.
fn sum<I: IntoIterator<Item = u64>>(it: I) -> Option<u64> {
    it.into_iter().try_fold(0u64, |a, b| a.checked_add(b))
}

/// One window's counts agree: each evaluated record has one shadow verdict, one
/// enforced verdict in its bucket group and one latency bucket, and a group never
/// drifts more than it holds.
fn check_window(w: &WindowAgg) -> DecResult<()> {
    let bad = "has a window whose counts do not add up (more drift than requests, or \
               verdicts that do not sum to its requests)";
    let r = Some(w.requests);
    let enforced = sum(w.enforced_by_pct.iter().flatten().map(|&n| u64::from(n)));
    if sum(w.shadow) != r || enforced != r || sum(w.latency_buckets) != r {
        return Err(bad);
    }
    for p in 0..w.drift_by_pct.len() {
        let held: u64 = w.enforced_by_pct[p].iter().map(|&n| u64::from(n)).sum();
        let drift = u64::from(w.drift_by_pct[p]);
        let split = u64::from(w.new_denials_by_pct[p]) + u64::from(w.missed_denials_by_pct[p]);
        if drift > held || split > drift {
            return Err(bad);
        }
    }
    Ok(())
}

/// The totals a part declares agree with each other and with its windows and inputs,
/// in checked arithmetic, so that a crafted file cannot make the report inconsistent
/// (or wrap a sum around).
fn check_counts(a: &Aggregate) -> DecResult<()> {
    let bad = "its counts do not add up (read = evaluated + rejected + skipped, per input \
               and per window)";
    let rejected = sum(a.rejected).ok_or(bad)?;
    if sum([a.evaluated, a.skipped, rejected]) != Some(a.read)
        || sum(a.skipped_by) != Some(a.skipped)
    {
        return Err(bad);
    }
    let checked = sum(a.fidelity.iter().flatten().copied()).ok_or(bad)?;
    if checked > a.evaluated || a.bucket_key_missing > a.evaluated || a.changed > a.evaluated {
        return Err(bad);
    }
    if sum(a.windows.values().map(|w| w.requests)) != Some(a.evaluated) {
        return Err(bad);
    }
    let files = |f: fn(&FileCounts) -> u64| sum(a.files.values().map(f));
    if files(|f| f.read) != Some(a.read)
        || files(|f| f.evaluated) != Some(a.evaluated)
        || files(|f| f.rejected) != Some(rejected)
        || files(|f| f.skipped) != Some(a.skipped)
        || a.files
            .values()
            .any(|f| sum([f.evaluated, f.rejected, f.skipped]) != Some(f.read))
    {
        return Err(bad);
    }
    let mut shadow = [0u64; 3];
    let mut enforced = [0u64; 3];
    let mut drift = 0u64;
    for w in a.windows.values() {
        // Bounded by the window's requests (checked above), so these cannot overflow.
        for v in 0..3 {
            shadow[v] += w.shadow[v];
            enforced[v] += w
                .enforced_by_pct
                .iter()
                .map(|r| u64::from(r[v]))
                .sum::<u64>();
        }
        drift += w.drift_by_pct.iter().map(|&n| u64::from(n)).sum::<u64>();
    }
    if shadow != a.shadow
        || enforced != a.enforced
        || sum(a.by_kind) != Some(drift)
        || sum(a.by_cause.values().copied()) != Some(drift)
        || a.latency.0.len() != a.evaluated
        || a.eval_errors.values().any(|&n| n > a.evaluated)
    {
        return Err(bad);
    }
    Ok(())
}

/// Encodes a partial. The header declares the body's decompressed size, which bounds
/// what a reader inflates.
pub fn encode(p: &Partial) -> Result<Vec<u8>, ProofError> {
    let raw = encode_body(&p.agg);
    let mut header = p.header.clone();
    header.body_bytes = Some(raw.len() as u64);
    let header = serde_json::to_vec(&header)
        .map_err(|e| ProofError::Encode(format!("partial header: {e}")))?;
    let body = zstd::bulk::compress(&raw, 3)
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
    decode_limited(bytes, name, usize::MAX)
}

fn not_a_partial(name: &str) -> ProofError {
    ProofError::Config {
        path: crate::error::Location::file(Path::new(name)),
        msg: "not a proof partial (no PROOF-PARTIAL header); write one with `proof replay --partial-out FILE`".into(),
    }
}

/// [`decode`], refusing a part of more than `max_windows` windows before it is built.
pub fn decode_limited(bytes: &[u8], name: &str, max_windows: usize) -> Result<Partial, ProofError> {
    let bad = |msg: String| ProofError::Config {
        path: crate::error::Location::file(Path::new(name)),
        msg,
    };
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        if bytes.len() < MAGIC.len() && MAGIC.starts_with(bytes) && !bytes.is_empty() {
            return Err(bad(
                "truncated partial (the file ends early); write it again".into(),
            ));
        }
        return Err(not_a_partial(name));
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
    let take = |r: &mut &[u8]| -> Option<usize> {
        if r.len() < 8 {
            return None;
        }
        let n = u64::from_le_bytes(r[..8].try_into().expect("8 bytes"));
        let n = usize::try_from(n).ok().filter(|&n| n <= r.len() - 8)?;
        *r = &r[8..];
        Some(n)
    };
    let n = take(&mut r).ok_or_else(truncated)?;
    let (header, after) = r.split_at(n);
    r = after;
    let m = take(&mut r).ok_or_else(truncated)?;
    let (body, after) = r.split_at(m);
    r = after;
    if !r.is_empty() || Sha256::digest(content).as_slice() != sum {
        return Err(bad(
            "corrupt or truncated partial (its SHA-256 check does not match); write it again"
                .into(),
        ));
    }
    let header: Header =
        serde_json::from_slice(header).map_err(|e| bad(format!("partial header: {e}")))?;
    if header.fingerprint.schema != SCHEMA {
        return Err(bad(format!(
            "partial schema {}, expected {SCHEMA}",
            header.fingerprint.schema
        )));
    }
    let window = WindowLen::from_ms(header.fingerprint.window_ms).ok_or_else(|| {
        bad(format!(
            "partial header: window_ms {} out of range",
            header.fingerprint.window_ms
        ))
    })?;
    // What is inflated is bounded by the size the header declares (older parts: the
    // zstd frame's own declared size), never by what the data would grow to.
    let declared = header
        .body_bytes
        .or_else(|| zstd::zstd_safe::get_frame_content_size(body).ok().flatten())
        .unwrap_or(MAX_PARTIAL_BYTES)
        .min(MAX_PARTIAL_BYTES);
    let decoder = zstd::stream::read::Decoder::with_buffer(body)
        .map_err(|e| bad(format!("partial body: {e}")))?;
    let mut d = Dec {
        r: std::io::BufReader::new(decoder),
        left: declared,
    };
    let agg =
        decode_body(&mut d, window, max_windows).map_err(|m| bad(format!("partial body {m}")))?;
    if header.body_bytes.is_some() && d.left != 0 {
        return Err(bad(
            "partial body is shorter than its header declares".into()
        ));
    }
    let n_files = header.files.len();
    let origin_ok = |o: &Origin| (o.file as usize) < n_files;
    if agg.files.keys().any(|&k| k as usize >= n_files)
        || !agg.rejection_samples.iter().all(|(o, _)| origin_ok(o))
        || !agg
            .examples
            .iter()
            .chain(&agg.drifts)
            .all(|e| origin_ok(&e.origin))
    {
        return Err(bad("partial body names an input its header lacks".into()));
    }
    Ok(Partial { header, agg })
}

/// Reads and decodes a partial file (`-`: standard input). The 14-byte magic is read
/// and checked first, so a wrong file (a log, `/dev/zero`) is refused at once.
pub fn read(path: &Path, max_windows: usize) -> Result<Partial, ProofError> {
    let name = path.display().to_string();
    let mut src: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path).map_err(|e| ProofError::io(path, e))?)
    };
    let mut bytes = Vec::new();
    (&mut src)
        .take(MAGIC.len() as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| ProofError::io(path, e))?;
    if bytes.len() < MAGIC.len() {
        return decode_limited(&bytes, &name, max_windows);
    }
    if bytes[..] != MAGIC[..] {
        return Err(not_a_partial(&name));
    }
    src.take(MAX_PARTIAL_BYTES + 1 - MAGIC.len() as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| ProofError::io(path, e))?;
    if bytes.len() as u64 > MAX_PARTIAL_BYTES {
        return Err(ProofError::Limit {
            path: crate::error::Location::file(path),
            msg: "a partial larger than 4 GiB is not read (is this the right file?)".into(),
        });
    }
    decode_limited(&bytes, &name, max_windows)
}

/// Expands partial arguments: files as given, directories to their files in name
/// order (hidden files skipped), `-` for standard input. An entry of a directory that
/// is not a regular file (a dangling symlink — a shard not uploaded yet —, a FIFO, a
/// subdirectory) is an error naming it: merging the other shards as if they were all
/// would report part of the traffic as the whole. A file reached twice (named twice,
/// or named and inside a named directory) is read once; the warnings say so.
pub fn expand(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<String>), ProofError> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() != "-" && p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| ProofError::io(p, e))?
                .map(|e| e.map(|e| e.path()).map_err(|e| ProofError::io(p, e)))
                .collect::<Result<_, _>>()?;
            entries.retain(|e| {
                !e.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            });
            entries.sort();
            if entries.is_empty() {
                return Err(ProofError::Usage(format!(
                    "{}: directory holds no partial",
                    p.display()
                )));
            }
            for e in &entries {
                // Follows symlinks: a dangling link is an error naming it.
                let meta = std::fs::metadata(e).map_err(|err| ProofError::io(e, err))?;
                if !meta.is_file() {
                    return Err(ProofError::Usage(format!(
                        "{}: not a regular file ({}); a directory of partials holds partial \
                         files only — remove it, or name a FIFO or device explicitly",
                        e.display(),
                        super::source::file_kind(&meta)
                    )));
                }
            }
            out.extend(entries);
        } else {
            out.push(p.clone());
        }
    }
    let mut warnings = Vec::new();
    let out = super::source::dedupe(out, &mut warnings);
    Ok((out, warnings))
}

/// Merges parts one at a time (read, fold, drop): memory holds the merged counts and
/// one part, never every part at once. The result does not depend on the order of
/// the parts: inputs get their final places (sorted) and samples their canonical
/// order at [`Merger::finish`], and the header kept is the least by content.
pub struct Merger {
    max_windows: usize,
    first: Option<(String, Fingerprint, bool)>,
    header: Option<(Vec<u8>, Header)>,
    files: Vec<PartFile>,
    index: HashMap<PartFile, u32>,
    agg: Aggregate,
    examples: Vec<Example>,
    drifts: Vec<Example>,
    rejection_samples: Vec<(Origin, Reason)>,
    /// Every part kept every drifting record (`--drift-details`); `Some(name)` names
    /// the first that did not.
    without_details: Option<String>,
}

impl Merger {
    /// A merger refusing more than `max_windows` windows in all.
    pub fn new(max_windows: usize) -> Merger {
        Merger {
            max_windows,
            first: None,
            header: None,
            files: Vec::new(),
            index: HashMap::new(),
            agg: Aggregate::default(),
            examples: Vec::new(),
            drifts: Vec::new(),
            rejection_samples: Vec::new(),
            without_details: None,
        }
    }

    /// Folds one part in: refused (naming the field, both values and both parts)
    /// unless its fingerprint matches the first part's, and when a sum would overflow
    /// or the windows exceed the limit.
    pub fn add(&mut self, name: &str, mut p: Partial) -> Result<(), ProofError> {
        let fp = &p.header.fingerprint;
        match &self.first {
            None => self.first = Some((name.to_string(), fp.clone(), p.header.ids_redacted)),
            Some((first_name, first, redacted)) => {
                for ((field, a), (_, b)) in first.fields().into_iter().zip(fp.fields()) {
                    if a != b {
                        return Err(ProofError::Usage(format!(
                            "cannot merge {name} with {first_name}: they differ in {field} ({b} vs {a}); \
                             every part must be replayed with the same policies, selectors, weights, \
                             lists, salt and window"
                        )));
                    }
                }
                if first != fp {
                    return Err(ProofError::Usage(format!(
                        "cannot merge {name} with {first_name}: their engine settings differ \
                         ({:?} vs {:?}); every part must be replayed with the same engine settings",
                        fp.settings, first.settings
                    )));
                }
                if *redacted != p.header.ids_redacted {
                    let says = |r: bool| if r { "redacted" } else { "raw" };
                    return Err(ProofError::Usage(format!(
                        "cannot merge {name} with {first_name}: request ids are {} in one and {} \
                         in the other; write every part with --redact-ids, or none and pass \
                         --redact-ids to merge",
                        says(p.header.ids_redacted),
                        says(*redacted)
                    )));
                }
            }
        }
        if !p.agg.bounds.drift_details && self.without_details.is_none() {
            self.without_details = Some(name.to_string());
        }
        self.check_sums(name, &p.agg)?;
        // Inputs: a part's input already listed (another byte range of one file, as
        // Spark splits it) keeps its place; hashing makes this O(1) per input.
        let to: Vec<u32> = std::mem::take(&mut p.header.files)
            .into_iter()
            .map(|f| match self.index.get(&f) {
                Some(&i) => i,
                None => {
                    let i = self.files.len() as u32;
                    self.index.insert(f.clone(), i);
                    self.files.push(f);
                    i
                }
            })
            .collect();
        renumber(&mut p.agg, |k| to.get(k as usize).copied().unwrap_or(k));
        // Samples are set aside and trimmed once, at the end, in their final order.
        self.examples.append(&mut p.agg.examples);
        self.drifts.append(&mut p.agg.drifts);
        self.rejection_samples.append(&mut p.agg.rejection_samples);
        let key = serde_json::to_vec(&(
            &p.header.baseline,
            &p.header.candidate,
            &p.header.lists,
            &p.header.rule_ids,
        ))
        .unwrap_or_default();
        if self.header.as_ref().is_none_or(|(k, _)| key < *k) {
            self.header = Some((key, p.header));
        }
        self.agg = std::mem::take(&mut self.agg).merge(p.agg);
        if self.agg.windows.len() > self.max_windows {
            return Err(ProofError::Limit {
                path: crate::error::Location::file(Path::new("--max-windows")),
                msg: format!(
                    "more than {} windows in the parts merged so far (last: {name}); merge fewer \
                     parts at a time or raise --max-windows",
                    self.max_windows
                ),
            });
        }
        Ok(())
    }

    /// Refuses a part whose counts would overflow the merged sums.
    fn check_sums(&self, name: &str, p: &Aggregate) -> Result<(), ProofError> {
        let overflow = || {
            ProofError::Usage(format!(
                "{name}: its counts added to the other parts' overflow (a crafted or corrupt \
                 partial?)"
            ))
        };
        // Every other total of a part is bounded by its `read` (checked at decode).
        self.agg.read.checked_add(p.read).ok_or_else(overflow)?;
        for (start, w) in &p.windows {
            let Some(mine) = self.agg.windows.get(start) else {
                continue;
            };
            let u32s =
                |a: &[u32], b: &[u32]| a.iter().zip(b).all(|(x, y)| x.checked_add(*y).is_some());
            let ok = u32s(&mine.drift_by_pct, &w.drift_by_pct)
                && mine
                    .enforced_by_pct
                    .iter()
                    .zip(&w.enforced_by_pct)
                    .all(|(a, b)| u32s(a, b))
                && mine.latency_sum_ns.checked_add(w.latency_sum_ns).is_some();
            if !ok {
                return Err(overflow());
            }
        }
        Ok(())
    }

    /// The merged partial: inputs sorted (their final places), samples in canonical
    /// order and trimmed to the largest bounds the parts kept.
    pub fn finish(self) -> Result<Partial, ProofError> {
        let Some((_, mut header)) = self.header else {
            return Err(ProofError::Usage("no partial to merge".into()));
        };
        let mut agg = self.agg;
        agg.examples = self.examples;
        agg.drifts = self.drifts;
        agg.rejection_samples = self.rejection_samples;
        let mut order: Vec<u32> = (0..self.files.len() as u32).collect();
        order.sort_by(|&a, &b| self.files[a as usize].cmp(&self.files[b as usize]));
        let mut place = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            place[old as usize] = new as u32;
        }
        renumber(&mut agg, |k| place.get(k as usize).copied().unwrap_or(k));
        let mut files = self.files;
        files.sort();
        header.files = files;
        header.body_bytes = None;
        agg.finish();
        Ok(Partial { header, agg })
    }

    /// The first part that did not keep every drifting record, if any.
    pub fn without_drift_details(&self) -> Option<&str> {
        self.without_details.as_deref()
    }
}

/// Merges parts (see [`Merger`]), with no window limit.
pub fn merge(parts: Vec<(String, Partial)>) -> Result<Partial, ProofError> {
    let mut m = Merger::new(usize::MAX);
    for (name, p) in parts {
        m.add(&name, p)?;
    }
    m.finish()
}

/// Moves a part's inputs to their places in the merged list (`to(i)` for input `i`).
/// Inputs that land on one place have their counts added.
fn renumber(a: &mut Aggregate, to: impl Fn(u32) -> u32) {
    let mut files: BTreeMap<u32, FileCounts> = BTreeMap::new();
    for (k, f) in std::mem::take(&mut a.files) {
        let mine = files.entry(to(k)).or_default();
        mine.read += f.read;
        mine.evaluated += f.evaluated;
        mine.rejected += f.rejected;
        mine.skipped += f.skipped;
    }
    a.files = files;
    for (o, _) in &mut a.rejection_samples {
        o.file = to(o.file);
    }
    for e in a.examples.iter_mut().chain(a.drifts.iter_mut()) {
        e.origin.file = to(e.origin.file);
    }
}

/// Replaces the request ids a part carries (examples, drift details) by their keyed
/// hash (`--redact-ids`), so that no raw id leaves the process in a partial.
/// Rejection samples carry origins only.
pub fn redact_ids(p: &mut Partial, key: &[u8]) {
    if p.header.ids_redacted {
        return;
    }
    for e in p.agg.examples.iter_mut().chain(p.agg.drifts.iter_mut()) {
        e.request_id = super::job::redact(key, &e.request_id);
    }
    p.header.ids_redacted = true;
}

/// Writes a part over `inputs` to `path`, atomically; with `redact_key`
/// (`--redact-ids`), request ids are replaced by their keyed hash first.
pub fn write(
    path: &Path,
    id: &Identity,
    inputs: &[Input],
    agg: &Aggregate,
    redact_key: Option<&[u8]>,
) -> Result<(), ProofError> {
    let mut p = Partial {
        header: id.header(part_files(inputs, agg)),
        agg: agg.clone(),
    };
    if let Some(key) = redact_key {
        redact_ids(&mut p, key);
    }
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
    // Ids a part redacted when it was written are shown as they are (never hashed twice).
    let redact_ids = settings.redact_ids || p.header.ids_redacted;
    let hash_here = settings.redact_ids && !p.header.ids_redacted;
    let show_id = |id: &str| {
        if hash_here {
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
        let mut d = Dec {
            r: &e.0[..],
            left: e.0.len() as u64,
        };
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            assert_eq!(d.u().unwrap(), v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, -62_167_219_200_000] {
            assert_eq!(d.i().unwrap(), v);
        }
        assert!(d.u().is_err());
    }
}
