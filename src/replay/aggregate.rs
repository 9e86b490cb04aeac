//! Mergeable replay state (SPEC §5): per-window counts with drift by sampling bucket,
//! so every rollout level comes from one pass, plus record accounting, verdict mix,
//! drift kinds and causes, a bounded sample of examples and selection latency.
//!
//! `merge` is associative and commutative with `Aggregate::default()` as identity,
//! which is what makes results identical across thread counts and input splits.

use std::collections::BTreeMap;

use serde::Serialize;

use super::record::Reason;
use super::window::WindowStart;
use crate::engine::{BucketKey, Decision, Skip};
use crate::orchestrator::metrics::LATENCY_BUCKETS;
use crate::orchestrator::{DriftKind, RolloutPercent, Verdict};

/// Number of whole-percent bucket groups (bucket / 100).
pub const PERCENTS: usize = 100;

/// Where a record came from: input index and 1-based line (or row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Origin {
    /// Index into the input list.
    pub file: u32,
    /// 1-based line (JSONL) or row (Parquet).
    pub line: u64,
}

/// Counts for one window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowAgg {
    /// Evaluated records.
    pub requests: u64,
    /// Drifting records by `bucket / 100`.
    pub drift_by_pct: [u32; PERCENTS],
    /// Of those, new denials (`ok->fail`, `warn->fail`), for plan impact (SPEC §9).
    pub new_denials_by_pct: [u32; PERCENTS],
    /// Of those, missed denials (`fail->ok`, `fail->warn`).
    pub missed_denials_by_pct: [u32; PERCENTS],
    /// Enforced verdicts by `bucket / 100` (for gate-level counters).
    pub enforced_by_pct: [[u32; 3]; PERCENTS],
    /// Shadow verdicts.
    pub shadow: [u64; 3],
    /// Selection latency histogram, `LATENCY_BUCKETS` plus +Inf (not cumulative).
    pub latency_buckets: [u64; LATENCY_BUCKETS.len() + 1],
    /// Sum of selection latencies, nanoseconds.
    pub latency_sum_ns: u64,
}

impl Default for WindowAgg {
    fn default() -> Self {
        WindowAgg {
            requests: 0,
            drift_by_pct: [0; PERCENTS],
            new_denials_by_pct: [0; PERCENTS],
            missed_denials_by_pct: [0; PERCENTS],
            enforced_by_pct: [[0; 3]; PERCENTS],
            shadow: [0; 3],
            latency_buckets: [0; LATENCY_BUCKETS.len() + 1],
            latency_sum_ns: 0,
        }
    }
}

impl WindowAgg {
    /// Drifting records with `bucket < level × 100`.
    pub fn drift_at(&self, level: RolloutPercent) -> u64 {
        self.drift_by_pct[..usize::from(level.get())]
            .iter()
            .map(|&n| u64::from(n))
            .sum()
    }

    /// Records enforced at `level`.
    pub fn enforced_at(&self, level: RolloutPercent) -> [u64; 3] {
        let mut v = [0u64; 3];
        for row in &self.enforced_by_pct[..usize::from(level.get())] {
            for (a, &b) in v.iter_mut().zip(row) {
                *a += u64::from(b);
            }
        }
        v
    }

    fn merge(&mut self, o: &WindowAgg) {
        self.requests += o.requests;
        for (mine, theirs) in [
            (&mut self.drift_by_pct, &o.drift_by_pct),
            (&mut self.new_denials_by_pct, &o.new_denials_by_pct),
            (&mut self.missed_denials_by_pct, &o.missed_denials_by_pct),
        ] {
            for (a, b) in mine.iter_mut().zip(theirs) {
                *a += b;
            }
        }
        for (a, b) in self.enforced_by_pct.iter_mut().zip(&o.enforced_by_pct) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        for (a, b) in self.shadow.iter_mut().zip(&o.shadow) {
            *a += b;
        }
        for (a, b) in self.latency_buckets.iter_mut().zip(&o.latency_buckets) {
            *a += b;
        }
        self.latency_sum_ns += o.latency_sum_ns;
    }
}

/// A drifting record kept as an example (no context values).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Example {
    /// Record time.
    pub ts_ms: i64,
    /// Where it was read.
    pub origin: Origin,
    /// Request id (redacted later if asked).
    pub request_id: String,
    /// Sampling bucket.
    pub bucket: u16,
    /// Shadow verdict.
    pub shadow: Verdict,
    /// Enforced verdict.
    pub enforced: Verdict,
    /// Drift kind.
    pub kind: DriftKind,
    /// Cause.
    pub cause: String,
}

/// A record whose replayed baseline disagreed with what production answered.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unfaithful {
    /// Record time.
    pub ts_ms: i64,
    /// Where it was read.
    pub origin: Origin,
    /// Request id (redacted later if asked).
    pub request_id: String,
    /// What production answered.
    pub recorded: Verdict,
    /// What the replayed baseline answered.
    pub replayed: Verdict,
}

/// Per-input counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FileCounts {
    /// Records read (blank lines are not records).
    pub read: u64,
    /// Evaluated.
    pub evaluated: u64,
    /// Rejected.
    pub rejected: u64,
    /// Skipped (another policy).
    pub skipped: u64,
}

/// Everything a replay accumulates.
#[derive(Debug, Clone, Default)]
pub struct Aggregate {
    /// Sample sizes kept (examples, rejection samples, drift details).
    pub bounds: Bounds,
    /// Records read.
    pub read: u64,
    /// Records evaluated.
    pub evaluated: u64,
    /// Records skipped.
    pub skipped: u64,
    /// Skips by reason, indexed like `Skip::ALL`.
    pub skipped_by: [u64; 4],
    /// Rejections by reason, indexed like `Reason::ALL`.
    pub rejected: [u64; 8],
    /// Evaluated records whose `--bucket-key` value was missing (SPEC §3).
    pub bucket_key_missing: u64,
    /// Records whose verdicts agree but whose decision values differ (SPEC §12).
    pub changed: u64,
    /// Fidelity (SPEC §11): records with a recorded verdict, by recorded × replayed
    /// shadow verdict (indexed like `Verdict::ALL`).
    pub fidelity: [[u64; 3]; 3],
    /// Unfaithful records kept as examples, the earliest (ts, origin) kept.
    pub unfaithful: Vec<Unfaithful>,
    /// First rejections by origin (bounded).
    pub rejection_samples: Vec<(Origin, Reason)>,
    /// Per-window state by window start.
    pub windows: BTreeMap<i64, WindowAgg>,
    /// Shadow verdicts.
    pub shadow: [u64; 3],
    /// Enforced verdicts as at 100 %.
    pub enforced: [u64; 3],
    /// Drift by kind as at 100 %.
    pub by_kind: [u64; 6],
    /// Drift by cause as at 100 %.
    pub by_cause: BTreeMap<String, u64>,
    /// Drift examples, the earliest (ts, origin) kept.
    pub examples: Vec<Example>,
    /// Every drifting record, collected only with `Bounds::drift_details`
    /// (`--drift-details`); in (ts, origin) order after [`Aggregate::finish`].
    pub drifts: Vec<Example>,
    /// Per-input counts.
    pub files: BTreeMap<u32, FileCounts>,
    /// Selection latency, nanoseconds.
    pub latency: Latency,
    /// Records on which a rule errored: (path 0 shadow / 1 enforced, rule index,
    /// reason) → records.
    pub eval_errors: BTreeMap<(u8, u32, &'static str), u64>,
}

/// Sample bounds of an [`Aggregate`]. The default keeps nothing, which makes
/// `Aggregate::default()` the identity of `merge` (bounds merge by their maximum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bounds {
    /// Examples kept.
    pub examples: usize,
    /// Rejection samples kept.
    pub rejections: usize,
    /// Keep every drifting record (`--drift-details`), not only the examples.
    pub drift_details: bool,
}

/// Selection latency histogram (HDR, nanoseconds), mergeable.
#[derive(Debug, Clone)]
pub struct Latency(pub hdrhistogram::Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        // 1 ns .. 60 s at 2 significant digits; fixed bounds so merges never fail.
        Latency(
            hdrhistogram::Histogram::new_with_bounds(1, 60_000_000_000, 2)
                .expect("static histogram bounds are valid"),
        )
    }
}

/// The per-record samples an aggregate keeps, borrowed together
/// ([`Aggregate::samples_mut`]).
struct Samples<'a> {
    rejection_samples: &'a mut Vec<(Origin, Reason)>,
    examples: &'a mut Vec<Example>,
    drifts: &'a mut Vec<Example>,
    unfaithful: &'a mut Vec<Unfaithful>,
}

impl Aggregate {
    /// The fields that hold origins and request ids. Every field of the aggregate is
    /// named, none with `..`: a field added later does not compile here until it is
    /// placed, so [`Aggregate::origins_mut`] and [`Aggregate::request_ids_mut`] miss
    /// nothing.
    fn samples_mut(&mut self) -> Samples<'_> {
        let Aggregate {
            bounds: _,
            read: _,
            evaluated: _,
            skipped: _,
            skipped_by: _,
            rejected: _,
            bucket_key_missing: _,
            changed: _,
            fidelity: _,
            unfaithful,
            rejection_samples,
            windows: _,
            shadow: _,
            enforced: _,
            by_kind: _,
            by_cause: _,
            examples,
            drifts,
            files: _,
            latency: _,
            eval_errors: _,
        } = self;
        Samples {
            rejection_samples,
            examples,
            drifts,
            unfaithful,
        }
    }

    /// Every origin the aggregate keeps: rejection samples, drift examples, drift
    /// details and unfaithful records. Where a part's inputs are renumbered (merge),
    /// its lines shifted (the Spark job) or its origins checked (partial decoding).
    pub fn origins_mut(&mut self) -> impl Iterator<Item = &mut Origin> {
        let s = self.samples_mut();
        s.rejection_samples
            .iter_mut()
            .map(|(o, _)| o)
            .chain(s.examples.iter_mut().map(|e| &mut e.origin))
            .chain(s.drifts.iter_mut().map(|e| &mut e.origin))
            .chain(s.unfaithful.iter_mut().map(|u| &mut u.origin))
    }

    /// Every request id the aggregate keeps (drift examples, drift details, unfaithful
    /// records), for `--redact-ids`; rejection samples keep origins only.
    pub fn request_ids_mut(&mut self) -> impl Iterator<Item = &mut String> {
        let s = self.samples_mut();
        s.examples
            .iter_mut()
            .chain(s.drifts.iter_mut())
            .map(|e| &mut e.request_id)
            .chain(s.unfaithful.iter_mut().map(|u| &mut u.request_id))
    }

    /// An empty aggregate that keeps samples up to `bounds`.
    pub fn new(bounds: Bounds) -> Aggregate {
        Aggregate {
            bounds,
            ..Aggregate::default()
        }
    }

    /// Counts a rejected record.
    pub fn reject(&mut self, origin: Origin, reason: Reason) {
        self.read += 1;
        self.rejected[reason.index()] += 1;
        let f = self.files.entry(origin.file).or_default();
        f.read += 1;
        f.rejected += 1;
        let keep = self.bounds.rejections;
        if self.rejection_samples.len() < keep {
            self.rejection_samples.push((origin, reason));
        } else if let Some(last) = self.rejection_samples.last()
            && (origin, reason) < *last
        {
            self.rejection_samples.push((origin, reason));
            self.rejection_samples.sort();
            self.rejection_samples.truncate(keep);
        }
    }

    /// Counts a skipped record.
    pub fn skip(&mut self, origin: Origin, why: Skip) {
        self.read += 1;
        self.skipped += 1;
        self.skipped_by[why.index()] += 1;
        let f = self.files.entry(origin.file).or_default();
        f.read += 1;
        f.skipped += 1;
    }

    /// Counts an evaluated record, placed in its window and rollout bucket.
    pub fn add(&mut self, origin: Origin, window: WindowStart, bucket: u16, d: &Decision<'_>) {
        self.read += 1;
        self.evaluated += 1;
        let f = self.files.entry(origin.file).or_default();
        f.read += 1;
        f.evaluated += 1;
        self.shadow[d.shadow.index()] += 1;
        self.enforced[d.enforced.index()] += 1;
        if d.key == BucketKey::Missing {
            self.bucket_key_missing += 1;
        }
        if d.changed {
            self.changed += 1;
        }
        if let Some(recorded) = d.recorded {
            self.fidelity[recorded.index()][d.shadow.index()] += 1;
            if recorded != d.shadow && self.bounds.examples > 0 {
                self.unfaithful.push(Unfaithful {
                    ts_ms: d.ts_ms,
                    origin,
                    request_id: d.request_id.to_string(),
                    recorded,
                    replayed: d.shadow,
                });
                if self.unfaithful.len() >= 2 * self.bounds.examples {
                    self.trim_examples(self.bounds.examples);
                }
            }
        }
        let pct = usize::from(bucket / 100);
        let w = self.windows.entry(window.ms()).or_default();
        w.requests += 1;
        w.shadow[d.shadow.index()] += 1;
        w.enforced_by_pct[pct][d.enforced.index()] += 1;
        let secs = d.latency_ns as f64 * 1e-9;
        let slot = LATENCY_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(LATENCY_BUCKETS.len());
        w.latency_buckets[slot] += 1;
        w.latency_sum_ns += d.latency_ns;
        let _ = self.latency.0.record(d.latency_ns.clamp(1, 60_000_000_000));
        for e in d.errors {
            *self
                .eval_errors
                .entry((e.path, e.rule, e.reason))
                .or_default() += 1;
        }
        let Some((kind, cause)) = d.drift else {
            return;
        };
        w.drift_by_pct[pct] += 1;
        if kind.is_new_denial() {
            w.new_denials_by_pct[pct] += 1;
        } else if kind.is_missed_denial() {
            w.missed_denials_by_pct[pct] += 1;
        }
        self.by_kind[kind.index()] += 1;
        match self.by_cause.get_mut(cause) {
            Some(n) => *n += 1,
            None => {
                self.by_cause.insert(cause.to_string(), 1);
            }
        }
        let b = self.bounds;
        if b.examples > 0 || b.drift_details {
            let ex = Example {
                ts_ms: d.ts_ms,
                origin,
                request_id: d.request_id.to_string(),
                bucket,
                shadow: d.shadow,
                enforced: d.enforced,
                kind,
                cause: cause.to_string(),
            };
            if b.drift_details {
                self.drifts.push(ex.clone());
            }
            if b.examples > 0 {
                self.examples.push(ex);
                if self.examples.len() >= 2 * b.examples {
                    self.trim_examples(b.examples);
                }
            }
        }
    }

    /// Keeps the `n` earliest examples (by time, then origin).
    pub fn trim_examples(&mut self, n: usize) {
        if self.examples.len() > n {
            self.examples.sort();
            self.examples.truncate(n);
        }
        if self.unfaithful.len() > n {
            self.unfaithful.sort();
            self.unfaithful.truncate(n);
        }
    }

    /// Applies the sample bounds and puts the samples in their canonical (ts, origin)
    /// order, so that nothing depends on how chunks were split across threads.
    /// Origins are unique, so the order is total.
    pub fn finish(&mut self) {
        self.trim_examples(self.bounds.examples);
        self.examples.sort_unstable();
        self.unfaithful.sort_unstable();
        self.drifts.sort_unstable();
        self.rejection_samples.sort();
        self.rejection_samples.truncate(self.bounds.rejections);
    }

    /// Merges another aggregate into this one: associative and commutative, with
    /// `Aggregate::new(bounds)` as identity. Samples stay bounded (by the larger of
    /// the two bounds) and are ordered in [`Aggregate::finish`].
    pub fn merge(mut self, o: Aggregate) -> Aggregate {
        let bounds = Bounds {
            examples: self.bounds.examples.max(o.bounds.examples),
            rejections: self.bounds.rejections.max(o.bounds.rejections),
            drift_details: self.bounds.drift_details || o.bounds.drift_details,
        };
        self.bounds = bounds;
        self.read += o.read;
        self.evaluated += o.evaluated;
        self.skipped += o.skipped;
        for (a, b) in self.skipped_by.iter_mut().zip(o.skipped_by) {
            *a += b;
        }
        for (a, b) in self.rejected.iter_mut().zip(o.rejected) {
            *a += b;
        }
        self.bucket_key_missing += o.bucket_key_missing;
        self.changed += o.changed;
        for (a, b) in self.fidelity.iter_mut().zip(o.fidelity) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        self.unfaithful.extend(o.unfaithful);
        self.rejection_samples.extend(o.rejection_samples);
        self.rejection_samples.sort();
        self.rejection_samples.truncate(bounds.rejections);
        for (k, w) in o.windows {
            match self.windows.get_mut(&k) {
                Some(mine) => mine.merge(&w),
                None => {
                    self.windows.insert(k, w);
                }
            }
        }
        for (a, b) in self.shadow.iter_mut().zip(o.shadow) {
            *a += b;
        }
        for (a, b) in self.enforced.iter_mut().zip(o.enforced) {
            *a += b;
        }
        for (a, b) in self.by_kind.iter_mut().zip(o.by_kind) {
            *a += b;
        }
        for (c, n) in o.by_cause {
            *self.by_cause.entry(c).or_default() += n;
        }
        self.examples.extend(o.examples);
        self.trim_examples(bounds.examples);
        self.drifts.extend(o.drifts);
        for (k, f) in o.files {
            let mine = self.files.entry(k).or_default();
            mine.read += f.read;
            mine.evaluated += f.evaluated;
            mine.rejected += f.rejected;
            mine.skipped += f.skipped;
        }
        let _ = self.latency.0.add(&o.latency.0);
        for (k, n) in o.eval_errors {
            *self.eval_errors.entry(k).or_default() += n;
        }
        self
    }

    /// Total rejected records.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(drift_details: bool) -> Bounds {
        Bounds {
            examples: 2,
            rejections: 10,
            drift_details,
        }
    }

    /// Feeds record `i` (ts descending, so input order is not the output order).
    fn feed(acc: &mut Aggregate, i: u64) {
        let origin = Origin { file: 0, line: i };
        let ts = 1_000_000 - (i as i64 % 7) * 1000;
        let drifting = !i.is_multiple_of(3);
        let (shadow, enforced) = if drifting {
            (Verdict::Ok, Verdict::Fail)
        } else {
            (Verdict::Ok, Verdict::Ok)
        };
        let id = format!("r-{i}");
        acc.add(
            origin,
            WindowStart(0),
            (i * 37 % 10_000) as u16,
            &Decision {
                ts_ms: ts,
                request_id: &id,
                key: BucketKey::RequestId,
                shadow,
                enforced,
                recorded: Some(if i.is_multiple_of(5) {
                    Verdict::Fail
                } else {
                    shadow
                }),
                drift: drifting.then_some((DriftKind::OkToFail, "rule_a")),
                changed: false,
                errors: &[],
                latency_ns: 10,
            },
        );
    }

    #[test]
    fn drift_details_are_complete_and_split_independent() {
        let b = bounds(true);
        let mut whole = Aggregate::new(b);
        for i in 1..=30 {
            feed(&mut whole, i);
        }
        whole.finish();
        let (mut x, mut y) = (Aggregate::new(b), Aggregate::new(b));
        for i in 1..=30 {
            feed(if i % 4 == 0 { &mut x } else { &mut y }, i);
        }
        let mut merged = y.merge(x).merge(Aggregate::default());
        merged.finish();
        assert_eq!(whole.drifts, merged.drifts);
        // 30 records, every third one does not drift.
        assert_eq!(whole.drifts.len(), 20);
        assert!(
            whole
                .drifts
                .windows(2)
                .all(|p| (p[0].ts_ms, p[0].origin) < (p[1].ts_ms, p[1].origin))
        );
        assert_eq!(whole.examples, merged.examples);
        assert_eq!(whole.examples, whole.drifts[..2].to_vec());
        // Every fifth record was recorded `fail` against a replayed `ok`.
        assert_eq!(whole.fidelity, merged.fidelity);
        assert_eq!(
            whole.fidelity[Verdict::Fail.index()][Verdict::Ok.index()],
            6
        );
        assert_eq!(whole.fidelity[Verdict::Ok.index()][Verdict::Ok.index()], 24);
        assert_eq!(whole.unfaithful, merged.unfaithful);
        assert_eq!(whole.unfaithful.len(), 2);
    }

    #[test]
    fn drift_details_off_keeps_nothing() {
        let mut a = Aggregate::new(bounds(false));
        for i in 1..=30 {
            feed(&mut a, i);
        }
        assert!(a.drifts.is_empty());
        assert_eq!(a.by_kind[DriftKind::OkToFail.index()], 20);
        // Every drift here is a new denial, counted by percent for plan impact.
        let w = &a.windows[&0];
        assert_eq!(w.new_denials_by_pct.iter().sum::<u32>(), 20);
        assert_eq!(w.missed_denials_by_pct.iter().sum::<u32>(), 0);
        assert_eq!(w.drift_by_pct, w.new_denials_by_pct);
    }
}
