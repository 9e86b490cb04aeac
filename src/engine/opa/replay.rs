//! The OPA engine behind the replay seam (SPEC §12 with §3 and §11): decision events
//! read by [`parse_event`], both bundles evaluated by an [`eval::Worker`], and the
//! answer turned into a [`Decision`] — the recorded `result` as the fidelity check's
//! verdict (or, with `--baseline recorded`, as the shadow verdict), the rollout key
//! from `decision_id` or a `--bucket-key` path read from the event itself.

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;

use super::eval::{self, OpaEngine};
use super::event::{self, DecisionPath, Event, parse_event};
use crate::engine::Reason;
use crate::engine::key::{BucketKey, KeyPath};
use crate::engine::{About, Decision, EvalError, PathAbout, Read, Skip};
use crate::orchestrator::DriftKind;

/// The rule name evaluation errors of an OPA path point at: the decision queried.
pub const DECISION_RULE: &str = "(decision)";

/// How events are matched and keyed.
#[derive(Debug, Clone, Default)]
pub struct OpaOptions {
    /// `--decision`: only events of this path are evaluated (`other_decision`).
    pub decision: Option<DecisionPath>,
    /// `--bucket-key`, read from the event (`input.user`).
    pub bucket_key: Option<KeyPath>,
    /// `--baseline recorded[=ID]`: `Some(id)`; the baseline bundle is then absent.
    pub recorded: Option<Option<String>>,
    /// `--salt`.
    pub salt: Option<String>,
}

/// Both bundles and the options: an [`crate::engine::Engine`].
#[derive(Debug, Clone)]
pub struct OpaReplay {
    engine: OpaEngine,
    opts: OpaOptions,
    about: About,
    salt: String,
}

impl OpaReplay {
    /// Wraps the paired bundles.
    pub fn new(engine: OpaEngine, opts: OpaOptions) -> OpaReplay {
        let path_of = |b: &super::Bundle| PathAbout {
            policy_id: b.id().to_string(),
            hash: b.digest().to_string(),
            path: b.path().display().to_string(),
            rules: vec![DECISION_RULE.to_string()],
        };
        let candidate = path_of(engine.candidate());
        let baseline = match engine.baseline() {
            Some(b) => path_of(b),
            None => PathAbout {
                policy_id: opts
                    .recorded
                    .clone()
                    .flatten()
                    .unwrap_or_else(|| "recorded".into()),
                hash: String::new(),
                path: "(recorded results)".into(),
                rules: vec![DECISION_RULE.to_string()],
            },
        };
        // SPEC §3, §11, §12: the baseline's id; with a recorded baseline, its ID or
        // the candidate's.
        let salt = opts.salt.clone().unwrap_or_else(|| match &opts.recorded {
            Some(Some(id)) => id.clone(),
            Some(None) => candidate.policy_id.clone(),
            None => baseline.policy_id.clone(),
        });
        let about = About {
            engine: "opa",
            baseline,
            candidate,
            recorded_baseline: opts.recorded.is_some(),
            settings: vec![(
                "decision",
                opts.decision
                    .as_ref()
                    .map_or_else(|| "(every)".into(), |d| d.to_string()),
            )],
        };
        OpaReplay {
            engine,
            opts,
            about,
            salt,
        }
    }

    /// What the engine says about itself.
    pub fn about(&self) -> &About {
        &self.about
    }

    /// The rollout salt.
    pub fn salt(&self) -> &str {
        &self.salt
    }

    /// The paired bundles.
    pub fn engine(&self) -> &OpaEngine {
        &self.engine
    }
}

impl crate::engine::Engine for OpaReplay {
    type Worker<'e> = OpaWorker<'e>;

    fn worker(&self) -> OpaWorker<'_> {
        OpaWorker {
            replay: self,
            // Building a worker clones compiled engines; it fails only if regorus
            // refuses an extension, which `resolve` already tried once.
            worker: self.engine.worker().map_err(|e| e.to_string()),
            event: None,
            key: String::new(),
            cause: String::new(),
            errors: Vec::new(),
        }
    }

    fn check_schema(&self, schema: &Schema) -> Result<Vec<usize>, String> {
        super::parquet::roots(schema)
    }
}

/// One thread's reader and evaluator.
pub struct OpaWorker<'e> {
    replay: &'e OpaReplay,
    worker: Result<eval::Worker, String>,
    event: Option<Box<Event>>,
    key: String,
    cause: String,
    errors: Vec<EvalError>,
}

impl OpaWorker<'_> {
    /// Reads and decides one event given as JSON bytes.
    fn decide(&mut self, bytes: &[u8]) -> Read<'_> {
        let r = self.replay;
        let ev = match parse_event(bytes, r.opts.decision.as_ref()) {
            event::Read::Event(e) => e,
            event::Read::Rejected(why) => return Read::Rejected(reason(why.as_str())),
            event::Read::Skipped(why) => {
                return Read::Skipped(Skip::from_name(why.as_str()).unwrap_or(Skip::Redacted));
            }
        };
        // §11: against `--baseline recorded=ID`, an event that names its bundles and
        // none of them at revision ID was served by another policy.
        if let Some(Some(id)) = &r.opts.recorded
            && !ev.has_revision(id)
        {
            return Read::Skipped(Skip::OtherPolicy);
        }
        let t0 = std::time::Instant::now();
        self.errors.clear();
        let out = match &mut self.worker {
            Ok(w) => w.evaluate(&ev),
            Err(_) => eval::OpaEval {
                shadow: crate::orchestrator::Verdict::Fail,
                enforced: crate::orchestrator::Verdict::Fail,
                shadow_value: None,
                enforced_value: None,
                changed: false,
                cause: None,
                errors: [vec!["eval"], vec!["eval"]],
            },
        };
        let latency_ns = t0.elapsed().as_nanos() as u64;
        for (path, errs) in out.errors.iter().enumerate() {
            for e in errs {
                self.errors.push(EvalError {
                    path: path as u8,
                    rule: 0,
                    reason: e,
                });
            }
        }
        self.cause.clear();
        if let Some(c) = &out.cause {
            self.cause.push_str(c);
        }
        let recorded = match r.opts.recorded {
            Some(_) => None,
            None => Some(eval::recorded_verdict(&ev)),
        };
        self.key.clear();
        let has_key = match &r.opts.bucket_key {
            None => None,
            Some(p) => match event::event_key(&ev, p.as_str()) {
                Some(k) => {
                    self.key = k;
                    Some(true)
                }
                None => Some(false),
            },
        };
        let ev = self.event.insert(ev);
        let key = match has_key {
            None => BucketKey::RequestId,
            Some(true) => BucketKey::Value(&self.key),
            Some(false) => BucketKey::Missing,
        };
        Read::Evaluated(Decision {
            ts_ms: ev.ts_ms,
            request_id: &ev.decision_id,
            key,
            shadow: out.shadow,
            enforced: out.enforced,
            recorded,
            drift: DriftKind::of(out.shadow, out.enforced).map(|k| (k, self.cause.as_str())),
            changed: out.changed,
            errors: &self.errors,
            latency_ns,
        })
    }
}

impl crate::engine::Worker for OpaWorker<'_> {
    fn line(&mut self, line: &[u8]) -> Read<'_> {
        self.decide(line)
    }

    fn batch(&mut self, batch: &RecordBatch, each: &mut dyn FnMut(Read<'_>)) {
        let mut buf = Vec::new();
        for i in 0..batch.num_rows() {
            buf.clear();
            match super::parquet::row_json(batch, i, &mut buf) {
                Ok(()) => {
                    let read = self.decide(&buf);
                    each(read);
                }
                Err(why) => each(Read::Rejected(why)),
            }
        }
    }
}

/// The record reason of a fixed rejection name.
fn reason(name: &str) -> Reason {
    Reason::ALL
        .into_iter()
        .find(|r| r.as_str() == name)
        .unwrap_or(Reason::Malformed)
}
