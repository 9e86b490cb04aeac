//! Encoding and decoding of the partial format (SPEC §10): the varint body, the
//! header, the SHA-256 check and the limits on what a reader inflates.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{FORMAT_VERSION, Header, MAGIC, MAX_PARTIAL_BYTES, Partial, SCHEMA};
use crate::error::ProofError;
use crate::orchestrator::{DriftKind, Verdict};
use crate::policy::time::{MAX_TS_MS, MIN_TS_MS, check_epoch_ms};
use crate::replay::aggregate::{
    Aggregate, Bounds, Example, FileCounts, Origin, Unfaithful, WindowAgg,
};
use crate::replay::record::Reason;
use crate::replay::window::WindowLen;

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
    let mut agg =
        decode_body(&mut d, window, max_windows).map_err(|m| bad(format!("partial body {m}")))?;
    if header.body_bytes.is_some() && d.left != 0 {
        return Err(bad(
            "partial body is shorter than its header declares".into()
        ));
    }
    let n_files = header.files.len();
    let origin_ok = |o: &Origin| (o.file as usize) < n_files;
    if agg.files.keys().any(|&k| k as usize >= n_files) || !agg.origins_mut().all(|o| origin_ok(o))
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
