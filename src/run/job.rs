//! A replay job: effective [`Settings`] resolved into loaded policies, lists, the
//! engine and the gate settings ([`Job::resolve`]), run over the inputs into a
//! finished [`Aggregate`] ([`Job::aggregate`]), and turned into the report model
//! ([`Job::report`]). The CLI, `proof merge`, the Python package and the Spark job all
//! go through here, so they agree to the digit.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use crate::engine::Loaded;
use crate::engine::ir::{IrEngine, IrOptions, lists_digest};
use crate::error::ProofError;
use crate::orchestrator::facade::{EngineOptions, PathChoice, build_engine};
use crate::orchestrator::{Planner, SelectorKind, Weights};
use crate::policy::locate::{DEFAULT_POLICY_DIRS, resolve_policy};
use crate::policy::{Lists, Policy};
use crate::replay::aggregate::{Aggregate, Bounds};
use crate::replay::gate::GateSettings;
use crate::replay::partial::{self, PartRef};
use crate::replay::pipeline::{self, Setup};
use crate::replay::redact::redact;
use crate::replay::settings::{Baseline, Settings};
use crate::replay::source::{Compression, Format, Input, expand_inputs};
use crate::report::model::{
    ConfigOut, InputFile, Inputs, LatencyOut, ListRef, PolicyRef, Report, ReportContext,
};

/// The environment variable that keys `--redact-ids`.
pub const REDACT_KEY_VAR: &str = "PROOF_REDACT_KEY";

/// Printed when `--redact-ids` runs without [`REDACT_KEY_VAR`].
pub const REDACT_KEY_WARNING: &str = "--redact-ids without PROOF_REDACT_KEY: ids are hashed \
with the salt, which report.json shows; set PROOF_REDACT_KEY to make them unguessable";

/// Everything a replay needs, resolved and loaded.
#[derive(Debug, Clone)]
pub struct Job {
    /// The effective settings.
    pub settings: Settings,
    /// The policy engine (the seam, `crate::engine`).
    pub engine: Loaded,
    /// Gate settings.
    pub gate: GateSettings,
    /// Lists bound.
    pub lists: Lists,
    /// Shadow identity.
    pub baseline: PolicyRef,
    /// Candidate identity.
    pub candidate: PolicyRef,
    /// Config section of report.json.
    pub config: ConfigOut,
    /// HMAC key of `--redact-ids`: `PROOF_REDACT_KEY` when set and not empty, else the salt.
    pub redact_key: Vec<u8>,
    /// Problems found while resolving that do not stop the run (shown in the verdict
    /// and report.json's summary.warnings).
    pub warnings: Vec<String>,
}

fn usage(msg: String) -> ProofError {
    ProofError::Usage(msg)
}

fn load_weights(
    path: Option<&PathBuf>,
    selector: SelectorKind,
    flag: &str,
    selector_flag: &str,
) -> Result<Option<Weights>, ProofError> {
    match path {
        Some(p) if selector != SelectorKind::Weighted => Err(usage(format!(
            "{flag} {} given, but {selector_flag} is {}; weights only apply to the weighted selector",
            p.display(),
            selector.as_str()
        ))),
        Some(p) => Weights::load(p).map(Some),
        None => Ok(None),
    }
}

fn policy_ref(p: &Policy, planner: &Planner, weights: Option<&PathBuf>) -> PolicyRef {
    PolicyRef {
        policy_id: p.policy_id.clone(),
        ir_hash: p.ir_hash.clone(),
        path: p.path.display().to_string(),
        selector: planner.kind.as_str(),
        weights: weights.map(|w| w.display().to_string()),
        budget: planner.budget,
    }
}

/// Checks a `--drift-details` path before any input is read: the extension names a
/// format, and the file can be created where it is to go (its directory exists and
/// takes a new file). Otherwise a bad path would surface only after the whole replay,
/// after --out was written, and its exit code 2 would replace the gate's.
pub fn check_drift_details(path: &Path) -> Result<(), ProofError> {
    crate::report::drift_details::DetailsFormat::from_path(path)?;
    let bad = |why: String| {
        ProofError::Usage(format!(
            "--drift-details {}: {why}; nothing was read or written",
            path.display()
        ))
    };
    if path.is_dir() {
        return Err(bad("is a directory".into()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(bad(format!("directory {} does not exist", dir.display())));
        }
        Err(e) => return Err(bad(format!("directory {}: {e}", dir.display()))),
        Ok(m) if !m.is_dir() => {
            return Err(bad(format!("{} is not a directory", dir.display())));
        }
        Ok(_) => {}
    }
    // The file is written as a temporary file in that directory and renamed, so
    // creating one there is the test that matters (permission bits alone do not tell:
    // root, ACLs, read-only mounts). The probe is removed when dropped.
    tempfile::Builder::new()
        .prefix(".proof-probe-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| {
            bad(format!(
                "cannot create a file in directory {}: {e}",
                dir.display()
            ))
        })
}

impl Job {
    /// Loads policies, weights and lists named by the settings and builds the engine.
    pub fn resolve(settings: Settings) -> Result<Job, ProofError> {
        let s = &settings;
        if let Some(p) = &s.drift_details {
            check_drift_details(p)?;
        }
        if let Some(p) = &s.plan {
            p.plan.check_window(s.window, &p.origin)?;
        }
        let opa = s.bundle.is_some() || s.candidate_bundle.is_some();
        let (engine, lists, baseline, candidate, warnings) =
            if opa { resolve_opa(s)? } else { resolve_ir(s)? };
        let salt = engine.salt().to_string();
        let gate = s.gate();
        // An empty key would be no better than the salt, so it counts as unset.
        let redact_key = std::env::var_os(REDACT_KEY_VAR)
            .filter(|k| !k.is_empty())
            .map(|k| k.into_encoded_bytes());
        let config = ConfigOut {
            window: s.window.to_string(),
            rollout: s.rollout,
            drift_max: s.drift_max,
            levels: s.levels.clone(),
            min_requests: s.min_requests,
            rollback_factor: s.rollback_factor,
            max_rejects: s.max_rejects,
            salt,
            redact_ids: s.redact_ids,
            redact_key_set: s.redact_ids && redact_key.is_some(),
            scenario: None,
            max_eval_error_ratio: s.max_eval_error_ratio,
        };
        Ok(Job {
            engine,
            gate,
            lists,
            baseline,
            candidate,
            redact_key: redact_key.unwrap_or_else(|| config.salt.as_bytes().to_vec()),
            config,
            settings,
            warnings,
        })
    }

    /// What identifies this job's partials (SPEC §10).
    pub fn identity(&self) -> partial::Identity {
        partial::Identity::of(
            partial::Run {
                about: self.engine.about(),
                salt: self.engine.salt(),
                window: self.gate.window,
                baseline: &self.settings.baseline,
                bucket_key: self.settings.bucket_key.as_ref(),
            },
            &self.lists,
            part_ref(&self.baseline),
            part_ref(&self.candidate),
        )
    }

    /// The sample bounds this job keeps.
    pub fn bounds(&self) -> Bounds {
        Bounds {
            examples: self.settings.examples,
            rejections: 100,
            drift_details: self.settings.drift_details.is_some(),
        }
    }

    /// What the workers need besides the engine.
    pub fn setup(&self) -> Setup {
        Setup {
            salt: self.engine.salt().to_string(),
            window: self.gate.window,
            bounds: self.bounds(),
            max_windows: self.settings.max_windows,
        }
    }

    /// The inputs the settings name, expanded (Parquet schemas checked against the
    /// engine's columns).
    pub fn inputs(&self) -> Result<Vec<Input>, ProofError> {
        let columns = |schema: &arrow::datatypes::Schema| self.engine.check_schema(schema);
        expand_inputs(&self.settings.logs, self.settings.format, &columns)
    }

    /// Replays `inputs` into a finished aggregate, counting bytes and records into
    /// `progress` as it goes (the CLI draws its bar from them). Returns the aggregate
    /// and the wall-clock seconds.
    pub fn aggregate(
        &self,
        inputs: &[Input],
        progress: &Progress,
    ) -> Result<(Aggregate, f64), ProofError> {
        let setup = self.setup();
        let started = Instant::now();
        let threads = self.settings.threads;
        let agg = crate::with_engine!(&self.engine, e => {
            pipeline::run(e, &setup, inputs, threads, &progress.bytes_read, &progress.records)
        })?;
        Ok((agg, started.elapsed().as_secs_f64()))
    }

    /// The report model of a finished aggregate. `files` describes the inputs in the
    /// order of the aggregate's origins.
    pub fn report(&self, agg: &Aggregate, files: Vec<InputFile>, wall: f64) -> Report {
        let redact_ids = self.settings.redact_ids;
        let show_id = |id: &str| {
            if redact_ids {
                redact(&self.redact_key, id)
            } else {
                id.to_string()
            }
        };
        let lists = self
            .lists
            .summary()
            .into_iter()
            .map(|(name, path, values)| ListRef {
                name,
                path: path.display().to_string(),
                values,
            })
            .collect();
        let mut report = Report::build(
            agg,
            ReportContext {
                gate: &self.gate,
                inputs: Inputs {
                    files,
                    baseline: self.baseline.clone(),
                    candidate: self.candidate.clone(),
                    lists,
                },
                config: self.config.clone(),
                show_id: &show_id,
                warnings: self.warnings.clone(),
                rule_ids: [
                    self.engine.about().baseline.rules.clone(),
                    self.engine.about().candidate.rules.clone(),
                ],
            },
        );
        let q = |p: f64| agg.latency.0.value_at_quantile(p) as f64 / 1000.0;
        report.latency = LatencyOut {
            selection_p50_us: q(0.50),
            selection_p95_us: q(0.95),
            selection_p99_us: q(0.99),
            selection_max_us: agg.latency.0.max() as f64 / 1000.0,
            threads: self.settings.threads,
            wall_seconds: wall,
            records_per_second: agg.read as f64 / wall.max(1e-9),
        };
        report
    }

    /// Replays `inputs` (from [`Job::inputs`]), writes the partial if `--partial-out`
    /// asks for it, and builds the report.
    pub fn run(
        &self,
        inputs: &[Input],
        progress: &Progress,
    ) -> Result<(Aggregate, Report), ProofError> {
        let (agg, wall) = self.aggregate(inputs, progress)?;
        if let Some(p) = &self.settings.partial_out {
            let id = self.identity();
            let key = self
                .settings
                .redact_ids
                .then_some(self.redact_key.as_slice());
            write_partial(p, &id, inputs, &agg, key)?;
        }
        let report = self.report(&agg, input_files(inputs, &agg), wall);
        Ok((agg, report))
    }
}

/// What resolving an engine gives: the engine, the lists bound, both identities and
/// warnings.
type Resolved = (Loaded, Lists, PolicyRef, PolicyRef, Vec<String>);

/// Resolves the OPA engine (SPEC §12, with §3 and §11) from the settings.
fn resolve_opa(s: &Settings) -> Result<Resolved, ProofError> {
    use crate::engine::opa::{Bundle, DecisionPath, OpaEngine, OpaOptions, OpaReplay};
    let ir_flags = [
        ("--policy", s.policy.is_some()),
        ("--ir", s.ir.is_some()),
        ("--candidate-policy", s.candidate_policy.is_some()),
        ("--candidate-ir", s.candidate_ir.is_some()),
        ("--weights", s.weights.is_some()),
        ("--shadow-weights", s.shadow_weights.is_some()),
        ("--list", !s.lists.is_empty()),
        (
            "--selector",
            s.selector != SelectorKind::Basic || s.shadow_selector != SelectorKind::Basic,
        ),
    ];
    if let Some((flag, _)) = ir_flags.iter().find(|(_, set)| *set) {
        return Err(usage(format!(
            "{flag} belongs to proof's IR engine and cannot be mixed with --bundle or \
             --candidate-bundle (SPEC §12)"
        )));
    }
    let recorded = match &s.baseline {
        Baseline::Replayed => None,
        Baseline::Recorded(id) => Some(id.clone()),
    };
    let candidate_path = s.candidate_bundle.as_ref().ok_or_else(|| {
        usage("--candidate-bundle is required: the bundle to test (SPEC §12)".into())
    })?;
    let baseline = match (&s.bundle, &recorded) {
        (Some(_), Some(_)) => {
            return Err(usage(
                "--baseline recorded takes the shadow verdicts from the events' results: give \
                 no --bundle"
                    .into(),
            ));
        }
        (Some(p), None) => Some(Bundle::load(p)?),
        (None, Some(_)) => None,
        (None, None) => {
            return Err(usage(
                "no baseline: give --bundle (the bundle production ran) or --baseline recorded"
                    .into(),
            ));
        }
    };
    let candidate = Bundle::load(candidate_path)?;
    let decision = match &s.decision {
        Some(d) => Some(DecisionPath::parse(d).ok_or_else(|| {
            usage(format!(
                "--decision '{d}' names no rule: give a decision path such as \
                 http/authz/allow"
            ))
        })?),
        None => None,
    };
    let mut warnings = Vec::new();
    for b in baseline.iter().chain(std::iter::once(&candidate)) {
        // time.now_ns always has an answer (the cache, else the event's timestamp).
        for c in b.nd_calls().iter().filter(|c| c.name != "time.now_ns") {
            let w = format!(
                "{}:{}:{}: {} is not deterministic; it is replayed from each event's \
                 nd_builtin_cache, and an event without it there is an evaluation error",
                c.file, c.line, c.col, c.name
            );
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
    }
    let engine = OpaEngine::new(baseline, candidate);
    // A worker compiles both bundles' engines with proof's built-ins: try it once here,
    // so a failure is a config error before any event is read.
    engine.worker()?;
    let replay = OpaReplay::new(
        engine,
        OpaOptions {
            decision,
            bucket_key: s.bucket_key.clone(),
            recorded,
            salt: s.salt.clone(),
        },
    );
    let about = replay.about();
    let r = |p: &crate::engine::PathAbout| PolicyRef {
        policy_id: p.policy_id.clone(),
        ir_hash: p.hash.clone(),
        path: p.path.clone(),
        selector: "opa",
        weights: None,
        budget: None,
    };
    let (baseline_ref, candidate_ref) = (r(&about.baseline), r(&about.candidate));
    Ok((
        Loaded::Opa(replay),
        Lists::default(),
        baseline_ref,
        candidate_ref,
        warnings,
    ))
}

/// Resolves the IR engine (SPEC §1–§3, §11) from the settings.
fn resolve_ir(s: &Settings) -> Result<Resolved, ProofError> {
    let by_id = |id: &str| resolve_policy(id, s.policy_dir.as_deref());
    let recorded = match &s.baseline {
        Baseline::Replayed => None,
        Baseline::Recorded(id) => Some(id.clone()),
    };
    let baseline_path = match (&s.ir, &s.policy, &recorded) {
        (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
            return Err(usage(
                "--baseline recorded takes the shadow verdicts from the records: give the \
                 policy to test as --candidate-ir or --candidate-policy, and no --ir or --policy"
                    .into(),
            ));
        }
        (Some(p), _, None) => Some(p.clone()),
        (None, Some(id), None) => Some(by_id(id)?),
        (None, None, Some(_)) => None,
        (None, None, None) => {
            return Err(usage(format!(
                "no baseline policy: give --policy ID (looked up in --policy-dir, default {}) \
                 or --ir FILE, --baseline recorded with a candidate, or set it in --scenario",
                DEFAULT_POLICY_DIRS.join(", ")
            )));
        }
    };
    let candidate_path = match (&s.candidate_ir, &s.candidate_policy) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(id)) => Some(by_id(id)?),
        _ => None,
    };
    let lists = Lists::load(&s.lists)?;
    let candidate = match &candidate_path {
        Some(p) => Some(Arc::new(Policy::load(p, &lists)?)),
        None => None,
    };
    let baseline = match (&baseline_path, &candidate) {
        (Some(p), _) => Arc::new(Policy::load(p, &lists)?),
        // A recorded baseline: the shadow path evaluates nothing of its own; the
        // candidate stands in so both paths share every rule.
        (None, Some(c)) => c.clone(),
        (None, None) => {
            return Err(usage(
                "--baseline recorded needs the policy to test: give --candidate-ir FILE or \
                 --candidate-policy ID"
                    .into(),
            ));
        }
    };
    let candidate = candidate.unwrap_or_else(|| baseline.clone());
    let mut warnings = Vec::new();
    // `--policy ID` finds a file by name; if the file says it is another policy,
    // every record naming ID would be skipped without a word.
    for (flag, id, p) in [
        ("--policy", &s.policy, &baseline),
        ("--candidate-policy", &s.candidate_policy, &candidate),
    ] {
        if let Some(id) = id
            && *id != p.policy_id
            && (flag == "--policy" && s.ir.is_none()
                || flag == "--candidate-policy" && s.candidate_ir.is_none())
        {
            warnings.push(format!(
                "{flag} {id} resolved to {}, whose policy_id is {}; records are matched \
                 against {} (records naming {id} are skipped)",
                p.path.display(),
                p.policy_id,
                p.policy_id
            ));
        }
    }
    let weights = load_weights(s.weights.as_ref(), s.selector, "--weights", "--selector")?;
    let shadow_weights = load_weights(
        s.shadow_weights.as_ref(),
        s.shadow_selector,
        "--shadow-weights",
        "--shadow-selector",
    )?;
    // SPEC §11: against a recorded baseline the salt defaults to the production
    // policy's id when given, else the candidate's.
    let salt = s.salt.clone().or_else(|| match &recorded {
        Some(Some(id)) => Some(id.clone()),
        Some(None) => Some(candidate.policy_id.clone()),
        None => None,
    });
    let (shadow_choice, shadow_w) = match recorded {
        Some(_) => (
            PathChoice {
                selector: s.selector,
                weights: weights.as_ref().zip(s.weights.as_deref()),
            },
            s.weights.as_ref(),
        ),
        None => (
            PathChoice {
                selector: s.shadow_selector,
                weights: shadow_weights.as_ref().zip(s.shadow_weights.as_deref()),
            },
            s.shadow_weights.as_ref(),
        ),
    };
    let paths = build_engine(EngineOptions {
        baseline: baseline.clone(),
        candidate: candidate.clone(),
        shadow: shadow_choice,
        enforced: PathChoice {
            selector: s.selector,
            weights: weights.as_ref().zip(s.weights.as_deref()),
        },
        salt,
    })?;
    let mut baseline_ref = policy_ref(&baseline, &paths.shadow.planner, shadow_w);
    if let Some(id) = &recorded {
        baseline_ref = PolicyRef {
            policy_id: id.clone().unwrap_or_else(|| "recorded".into()),
            ir_hash: String::new(),
            path: "(recorded verdicts)".into(),
            selector: "recorded",
            weights: None,
            budget: None,
        };
    }
    let candidate_ref = policy_ref(&candidate, &paths.enforced.planner, s.weights.as_ref());
    let policy_filter = match &recorded {
        None => Some(baseline.policy_id.clone()),
        Some(id) => id.clone(),
    };
    let engine = IrEngine::new(
        paths,
        IrOptions {
            policy_filter,
            bucket_key: s.bucket_key.clone(),
            recorded_baseline: recorded.is_some(),
            lists_digest: lists_digest(&lists),
        },
        [
            baseline.path.display().to_string(),
            candidate.path.display().to_string(),
        ],
    );
    Ok((
        Loaded::Ir(engine),
        lists,
        baseline_ref,
        candidate_ref,
        warnings,
    ))
}

/// The `inputs.files` entries of expanded inputs, with their counts.
pub fn input_files(inputs: &[Input], agg: &Aggregate) -> Vec<InputFile> {
    inputs
        .iter()
        .enumerate()
        .map(|(i, inp)| InputFile {
            path: inp.path.display().to_string(),
            format: match inp.format {
                Format::Jsonl => "jsonl".into(),
                Format::Parquet => "parquet".into(),
            },
            compression: match inp.compression {
                Compression::None => "none".into(),
                Compression::Gzip => "gzip".into(),
                Compression::Zstd => "zstd".into(),
            },
            bytes: inp.bytes,
            counts: agg.files.get(&(i as u32)).copied().unwrap_or_default(),
        })
        .collect()
}

/// What a running replay has done so far: bytes read and records seen, updated by the
/// workers as they go.
#[derive(Debug, Default)]
pub struct Progress {
    /// Input bytes read.
    pub bytes_read: Arc<AtomicU64>,
    /// Records read.
    pub records: Arc<AtomicU64>,
}

/// How a partial names a policy (SPEC §10).
pub fn part_ref(r: &PolicyRef) -> PartRef {
    PartRef {
        policy_id: r.policy_id.clone(),
        ir_hash: r.ir_hash.clone(),
        path: r.path.clone(),
        selector: r.selector.to_string(),
        weights: r.weights.clone(),
        budget: r.budget,
    }
}

/// How a report names the policy a partial names.
pub fn part_policy_ref(r: &PartRef) -> PolicyRef {
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

/// Writes a part over `inputs` to `path`, atomically; with `redact_key`
/// (`--redact-ids`), request ids are replaced by their keyed hash first.
pub fn write_partial(
    path: &Path,
    id: &partial::Identity,
    inputs: &[Input],
    agg: &Aggregate,
    redact_key: Option<&[u8]>,
) -> Result<(), ProofError> {
    let mut p = partial::Partial {
        header: id.header(partial::part_files(inputs)),
        agg: agg.clone(),
    };
    if let Some(key) = redact_key {
        partial::redact_ids(&mut p, key);
    }
    crate::report::writer::write_atomic(path, &partial::encode(&p)?)
}
