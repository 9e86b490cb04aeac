//! `proof replay`: replays recorded traffic through the shadow and enforced paths,
//! computes drift per window and rollout level, gates CI with exit codes (SPEC §5)
//! and writes the reports (SPEC §6). Flags override a `--scenario` file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use hmac::{KeyInit, Mac};

use super::{DEFAULT_POLICY_DIRS, resolve_policy};
use crate::error::ProofError;
use crate::orchestrator::{Engine, PathSpec, Planner, RolloutPercent, SelectorKind, Weights};
use crate::policy::time::{format_span, parse_span_ms};
use crate::policy::{ListSpec, Lists, Policy};
use crate::replay::aggregate::Bounds;
use crate::replay::pipeline::{self, Setup};
use crate::replay::scenario::Scenario;
use crate::replay::source::{Compression, Format, Input, expand_inputs};
use crate::report::model::{
    ConfigOut, GateSettings, InputFile, Inputs, LatencyOut, ListRef, PolicyRef, Report,
    ReportContext,
};
use crate::report::{self, Exporter};

/// Default levels reported (SPEC §5).
pub const DEFAULT_LEVELS: &str = "0,1,5,10,25,50,100";

/// Flags of `proof replay` (names fixed by SPEC §6).
#[derive(Debug, Clone, Args, Default)]
pub struct ReplayArgs {
    /// Log files or directories (JSONL, .gz, .zst, Parquet; a directory contributes its
    /// *.jsonl, *.ndjson, *.log, *.parquet, *.pq files); '-' reads standard input (plain,
    /// gzip or zstd, told by its first bytes) [default: the --scenario file's logs; one
    /// of the two is required].
    #[arg(value_name = "LOG")]
    pub logs: Vec<PathBuf>,
    /// Baseline (shadow) policy id such as lksg.v1 (no '/', not starting with '.'), looked
    /// up as <policy-dir>/<ID>.ir.json (one of --policy, --ir or the scenario's is required).
    #[arg(long, value_name = "ID", conflicts_with = "ir")]
    pub policy: Option<String>,
    /// Baseline (shadow) IR file: the policy the records were served under (instead of
    /// --policy; one of --policy, --ir or the scenario's is required).
    #[arg(long, value_name = "FILE")]
    pub ir: Option<PathBuf>,
    /// Directory of <ID>.ir.json files [default: policies/, then fixtures/policies/].
    #[arg(long, value_name = "DIR", env = "PROOF_POLICY_DIR")]
    pub policy_dir: Option<PathBuf>,
    /// Candidate (enforced) IR file [default: the baseline].
    #[arg(long, value_name = "FILE", conflicts_with = "candidate_policy")]
    pub candidate_ir: Option<PathBuf>,
    /// Candidate (enforced) policy id such as lksg.v2, looked up like --policy
    /// [default: the baseline].
    #[arg(long, value_name = "ID")]
    pub candidate_policy: Option<String>,
    /// Selector of the candidate path [default: basic].
    #[arg(long, value_enum)]
    pub selector: Option<SelectorKind>,
    /// Weights file (YAML or JSON) of the candidate path; needs --selector weighted
    /// [default: none: every rule at its op's default cost, no budget].
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Selector of the shadow path [default: basic].
    #[arg(long, value_enum)]
    pub shadow_selector: Option<SelectorKind>,
    /// Weights file of the shadow path; needs --shadow-selector weighted [default: none:
    /// every rule at its op's default cost, no budget].
    #[arg(long, value_name = "FILE")]
    pub shadow_weights: Option<PathBuf>,
    /// Bind a reference list: NAME=FILE (CSV: first column; else one value a line).
    /// Repeatable; adds to the scenario's lists [default: none].
    #[arg(long = "list", value_name = "NAME=FILE")]
    pub lists: Vec<ListSpec>,
    /// Window length > 0: a whole number with unit ms, s, m, h or d (30s, 1m, 5m, 15m, 1h) [default: 5m].
    #[arg(long, value_name = "SPAN")]
    pub window: Option<String>,
    /// Gate level, whole percent 0..=100 [default: 100].
    #[arg(long, value_name = "PERCENT")]
    pub rollout: Option<String>,
    /// A window breaches above this drift ratio, 0.0..=1.0 [default: 0.005].
    #[arg(long, value_name = "RATIO")]
    pub drift_max: Option<String>,
    /// Rollout levels to report: comma-separated whole percents 0..=100; the gate level is always added [default: 0,1,5,10,25,50,100].
    #[arg(long, value_name = "LIST")]
    pub levels: Option<String>,
    /// Windows with fewer evaluated records never breach; whole number ≥ 0 [default: 1].
    #[arg(long, value_name = "N")]
    pub min_requests: Option<u64>,
    /// Rollback line: ratio above FACTOR × drift-max; a number ≥ 1 [default: 2].
    #[arg(long, value_name = "FACTOR")]
    pub rollback_factor: Option<f64>,
    /// Exit 3 when more records than this are rejected; whole number ≥ 0 [default: 0].
    #[arg(long, value_name = "N")]
    pub max_rejects: Option<u64>,
    /// Salt of the rollout hash, any string [default: the baseline policy id].
    #[arg(long, value_name = "S")]
    pub salt: Option<String>,
    /// Input format for every log [default: by extension and content; stdin: jsonl].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Worker threads, 1..=1024 [default: number of CPUs].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Scenario file (YAML) with the same settings; flags override it [default: none].
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Output directory for report.json, windows.csv, metrics.om, report.html, report.md
    /// and junit.xml [default: print report.json]. With $GITHUB_STEP_SUMMARY set, report.md
    /// is also appended to that file.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write every drifting record (ts, request id, verdicts, kind, cause, bucket, source)
    /// to FILE, Parquet or JSONL by its extension (.parquet, .jsonl) [default: none].
    #[arg(long, value_name = "FILE")]
    pub drift_details: Option<PathBuf>,
    /// Replace request ids in outputs by a keyed hash (HMAC-SHA256). Key: $PROOF_REDACT_KEY;
    /// without it the salt, which report.json shows, so ids can be guessed (a warning says so).
    #[arg(long)]
    pub redact_ids: bool,
    /// Drifting records kept as examples in report.json; whole number ≥ 0, 0 keeps none [default: 20].
    #[arg(long, value_name = "N")]
    pub examples: Option<usize>,
    /// Stop with an error beyond this many windows (memory bound); whole number ≥ 0 [default: 100000].
    #[arg(long, value_name = "N")]
    pub max_windows: Option<usize>,
    /// No progress bar and no verdict paragraph on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

fn usage(msg: String) -> ProofError {
    ProofError::Usage(msg)
}

fn parse_levels(s: &str, what: &str) -> Result<Vec<RolloutPercent>, ProofError> {
    s.split(',')
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<RolloutPercent>()
                .map_err(|e| usage(format!("{what}: {e}")))
        })
        .collect()
}

/// Everything the replay needs, resolved from flags, scenario and defaults.
pub struct Resolved {
    /// Input paths.
    pub logs: Vec<PathBuf>,
    /// Shadow and enforced paths.
    pub engine: Engine,
    /// Gate settings.
    pub gate: GateSettings,
    /// Lists bound.
    pub lists: Lists,
    /// Forced format.
    pub format: Option<Format>,
    /// Threads.
    pub threads: usize,
    /// Output directory.
    pub out: Option<PathBuf>,
    /// Inputs section (without files).
    pub baseline: PolicyRef,
    /// Candidate identity.
    pub candidate: PolicyRef,
    /// Config section.
    pub config: ConfigOut,
    /// Examples kept.
    pub examples: usize,
    /// Window limit.
    pub max_windows: usize,
    /// `--drift-details` file (its extension already checked).
    pub drift_details: Option<PathBuf>,
    /// HMAC key of `--redact-ids`: `PROOF_REDACT_KEY` when set and not empty, else the salt.
    pub redact_key: Vec<u8>,
}

/// The environment variable that keys `--redact-ids`.
pub const REDACT_KEY_VAR: &str = "PROOF_REDACT_KEY";

/// Printed when `--redact-ids` runs without [`REDACT_KEY_VAR`].
pub const REDACT_KEY_WARNING: &str = "--redact-ids without PROOF_REDACT_KEY: ids are hashed \
with the salt, which report.json shows; set PROOF_REDACT_KEY to make them unguessable";

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
fn check_drift_details(path: &Path) -> Result<(), ProofError> {
    report::drift_details::DetailsFormat::from_path(path)?;
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

/// Merges flags over the scenario over defaults, and loads policies and lists.
pub fn resolve(args: &ReplayArgs) -> Result<Resolved, ProofError> {
    if let Some(p) = &args.drift_details {
        check_drift_details(p)?;
    }
    let sc = match &args.scenario {
        Some(p) => Scenario::load(p)?,
        None => Scenario::default(),
    };
    let logs = if args.logs.is_empty() {
        sc.logs.clone()
    } else {
        args.logs.clone()
    };
    let policy_dir = args.policy_dir.clone().or(sc.policy_dir.clone());
    let by_id = |id: &str| resolve_policy(id, policy_dir.as_deref());
    let baseline_path = match (&args.ir, &args.policy, &sc.ir, &sc.policy) {
        (Some(p), _, _, _) => p.clone(),
        (None, Some(id), _, _) => by_id(id)?,
        (None, None, Some(p), _) => p.clone(),
        (None, None, None, Some(id)) => by_id(id)?,
        _ => {
            return Err(usage(format!(
                "no baseline policy: give --policy ID (looked up in --policy-dir, default {}) or --ir FILE, or set it in --scenario",
                DEFAULT_POLICY_DIRS.join(", ")
            )));
        }
    };
    let candidate_path = match (&args.candidate_ir, &args.candidate_policy) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(id)) => Some(by_id(id)?),
        _ => match (&sc.candidate_ir, &sc.candidate_policy) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(id)) => Some(by_id(id)?),
            _ => None,
        },
    };

    let mut specs: Vec<ListSpec> = sc
        .lists
        .iter()
        .map(|(n, p)| ListSpec {
            name: n.clone(),
            path: p.clone(),
        })
        .collect();
    specs.extend(args.lists.iter().cloned());
    let lists = Lists::load(&specs)?;

    let baseline = Arc::new(Policy::load(&baseline_path, &lists)?);
    let candidate = match &candidate_path {
        Some(p) => Arc::new(Policy::load(p, &lists)?),
        None => baseline.clone(),
    };

    let selector = args.selector.or(sc.selector).unwrap_or_default();
    let shadow_selector = args
        .shadow_selector
        .or(sc.shadow_selector)
        .unwrap_or_default();
    let weights_path = args.weights.clone().or(sc.weights.clone());
    let shadow_weights_path = args.shadow_weights.clone().or(sc.shadow_weights.clone());
    let weights = load_weights(weights_path.as_ref(), selector, "--weights", "--selector")?;
    let shadow_weights = load_weights(
        shadow_weights_path.as_ref(),
        shadow_selector,
        "--shadow-weights",
        "--shadow-selector",
    )?;
    if let (Some(w), Some(p)) = (&weights, &weights_path) {
        w.check_against(&candidate, p)?;
    }
    if let (Some(w), Some(p)) = (&shadow_weights, &shadow_weights_path) {
        w.check_against(&baseline, p)?;
    }

    let window_s = args
        .window
        .clone()
        .or(sc.window.as_ref().map(|s| s.as_arg()))
        .unwrap_or_else(|| "5m".into());
    let window_ms = parse_span_ms(&window_s).ok_or_else(|| {
        usage(format!(
            "--window '{window_s}': expected a length such as 30s, 1m, 5m, 15m, 1h (units ms, s, m, h, d)"
        ))
    })?;
    let rollout_s = args
        .rollout
        .clone()
        .or(sc.rollout.as_ref().map(|s| s.as_arg()))
        .unwrap_or_else(|| "100".into());
    let rollout: RolloutPercent = rollout_s
        .parse()
        .map_err(|e| usage(format!("--rollout: {e}")))?;
    let drift_s = args
        .drift_max
        .clone()
        .or(sc.drift_max.as_ref().map(|s| s.as_arg()))
        .unwrap_or_else(|| "0.005".into());
    let drift_max = crate::orchestrator::enforcer::parse_ratio(&drift_s)
        .map_err(|e| usage(format!("--drift-max: {e}")))?;
    let levels_s = args.levels.clone().or(sc
        .levels
        .as_ref()
        .map(|v| v.iter().map(|s| s.as_arg()).collect::<Vec<_>>().join(",")));
    let mut levels = parse_levels(levels_s.as_deref().unwrap_or(DEFAULT_LEVELS), "--levels")?;
    levels.push(rollout);
    levels.sort();
    levels.dedup();
    let rollback_factor = args.rollback_factor.or(sc.rollback_factor).unwrap_or(2.0);
    if !rollback_factor.is_finite() || rollback_factor < 1.0 {
        return Err(usage(format!(
            "--rollback-factor {rollback_factor}: must be a number ≥ 1 (the rollback line sits at or above drift-max)"
        )));
    }
    let min_requests = args.min_requests.or(sc.min_requests).unwrap_or(1);
    let max_rejects = args.max_rejects.or(sc.max_rejects).unwrap_or(0);
    let salt = args
        .salt
        .clone()
        .or(sc.salt.clone())
        .unwrap_or_else(|| baseline.policy_id.clone());
    let threads = args
        .threads
        .or(sc.threads)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 || threads > 1024 {
        return Err(usage(format!(
            "--threads {threads}: allowed range is 1..=1024"
        )));
    }
    let examples = args.examples.unwrap_or(20);
    let max_windows = args.max_windows.unwrap_or(100_000);

    let shadow = PathSpec {
        planner: Planner::new(&baseline, shadow_selector, shadow_weights.as_ref()),
        policy: baseline.clone(),
    };
    let enforced = PathSpec {
        planner: Planner::new(&candidate, selector, weights.as_ref()),
        policy: candidate.clone(),
    };
    let baseline_ref = policy_ref(&baseline, &shadow.planner, shadow_weights_path.as_ref());
    let candidate_ref = policy_ref(&candidate, &enforced.planner, weights_path.as_ref());
    let gate = GateSettings {
        rollout,
        drift_max,
        levels: levels.clone(),
        min_requests,
        rollback_factor,
        max_rejects,
        window_ms,
    };
    // An empty key would be no better than the salt, so it counts as unset.
    let redact_key = std::env::var_os(REDACT_KEY_VAR)
        .filter(|k| !k.is_empty())
        .map(|k| k.into_encoded_bytes());
    let config = ConfigOut {
        window: format_span(window_ms),
        rollout,
        drift_max,
        levels,
        min_requests,
        rollback_factor,
        max_rejects,
        salt: salt.clone(),
        redact_ids: args.redact_ids,
        redact_key_set: args.redact_ids && redact_key.is_some(),
        scenario: args.scenario.as_ref().map(|p| p.display().to_string()),
    };
    Ok(Resolved {
        logs,
        engine: Engine {
            shadow,
            enforced,
            salt,
        },
        gate,
        lists,
        format: args.format.or(sc.format),
        threads,
        out: args.out.clone().or(sc.out.clone()),
        baseline: baseline_ref,
        candidate: candidate_ref,
        examples,
        max_windows,
        drift_details: args.drift_details.clone(),
        redact_key: redact_key.unwrap_or_else(|| config.salt.as_bytes().to_vec()),
        config,
    })
}

/// Keyed hash for --redact-ids: HMAC-SHA256, first 16 bytes, hex.
pub fn redact(key: &[u8], id: &str) -> String {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    let tag = mac.finalize().into_bytes();
    format!("hmac:{}", hex::encode(&tag[..16]))
}

fn progress_bar(inputs: &[Input], quiet: bool) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let total: Option<u64> = inputs.iter().map(|i| i.bytes).sum();
    let bar = match total {
        Some(t) => indicatif::ProgressBar::new(t).with_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg} ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        ),
        None => indicatif::ProgressBar::new_spinner().with_style(
            indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bytes} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        ),
    };
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    Some(bar)
}

/// The exporters `replay --out` writes.
pub fn exporters(gate: &GateSettings) -> Vec<Box<dyn Exporter>> {
    vec![
        Box::new(report::json::JsonExporter),
        Box::new(report::csv::CsvExporter { gate: gate.clone() }),
        Box::new(report::openmetrics::OpenMetricsExporter),
        Box::new(report::html::HtmlExporter),
        Box::new(report::markdown::MarkdownExporter),
        Box::new(report::junit::JunitExporter),
    ]
}

/// Runs a replay and returns the report (no files written).
pub fn replay(r: &Resolved, redact_ids: bool, quiet: bool) -> Result<Report, ProofError> {
    let inputs = expand_inputs(&r.logs, r.format)?;
    let setup = Setup {
        engine: r.engine.clone(),
        window_ms: r.gate.window_ms,
        bounds: Bounds {
            examples: r.examples,
            rejections: 100,
            drift_details: r.drift_details.is_some(),
        },
        baseline_id: r.engine.shadow.policy.policy_id.clone(),
        max_windows: r.max_windows,
    };
    let bytes_read = Arc::new(AtomicU64::new(0));
    let records = Arc::new(AtomicU64::new(0));
    let bar = progress_bar(&inputs, quiet);
    let started = Instant::now();
    let agg = std::thread::scope(|s| {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        if let Some(bar) = &bar {
            let (bar, bytes_read, records, done) = (
                bar.clone(),
                bytes_read.clone(),
                records.clone(),
                done.clone(),
            );
            s.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    bar.set_position(bytes_read.load(Ordering::Relaxed));
                    let n = records.load(Ordering::Relaxed);
                    let secs = started.elapsed().as_secs_f64().max(1e-9);
                    bar.set_message(format!("{n} records, {:.0} records/s", n as f64 / secs));
                    std::thread::sleep(Duration::from_millis(100));
                }
                bar.finish_and_clear();
            });
        }
        let agg = pipeline::run(&setup, &inputs, r.threads, &bytes_read, &records);
        done.store(true, Ordering::Relaxed);
        agg
    })?;
    let wall = started.elapsed().as_secs_f64();

    let show_id = |id: &str| {
        if redact_ids {
            redact(&r.redact_key, id)
        } else {
            id.to_string()
        }
    };
    let files = inputs
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
        .collect();
    let lists = r
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
        &agg,
        ReportContext {
            gate: &r.gate,
            inputs: Inputs {
                files,
                baseline: r.baseline.clone(),
                candidate: r.candidate.clone(),
                lists,
            },
            config: r.config.clone(),
            show_id: &show_id,
        },
    );
    let q = |p: f64| agg.latency.0.value_at_quantile(p) as f64 / 1000.0;
    report.latency = LatencyOut {
        selection_p50_us: q(0.50),
        selection_p95_us: q(0.95),
        selection_p99_us: q(0.99),
        selection_max_us: agg.latency.0.max() as f64 / 1000.0,
        threads: r.threads,
        wall_seconds: wall,
        records_per_second: agg.read as f64 / wall.max(1e-9),
    };
    Ok(report)
}

/// Appends report.md to the GitHub Actions job summary file (never truncates it).
fn append_step_summary(path: &Path, report: &Report) -> Result<(), ProofError> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| ProofError::io(path, e))?;
    let md = report::markdown::MarkdownExporter.serialize(report);
    f.write_all(&md)
        .and_then(|()| f.write_all(b"\n"))
        .map_err(|e| ProofError::io(path, e))
}

/// Runs `proof replay`.
pub fn run(args: ReplayArgs) -> anyhow::Result<i32> {
    // Locked (and probed) before anything is read; held until the run ends.
    let out = match (&args.out, &args.scenario) {
        (Some(o), _) => Some(o.clone()),
        (None, Some(p)) => Scenario::load(p)?.out,
        (None, None) => None,
    };
    let lock = out
        .as_deref()
        .map(report::writer::OutputDir::lock)
        .transpose()?;
    let resolved = resolve(&args)?;
    if args.redact_ids && !resolved.config.redact_key_set {
        // Not behind --quiet: the ids in the outputs can be recovered by anyone with
        // report.json and a guess at their format.
        eprintln!("proof: warning: {REDACT_KEY_WARNING}");
    }
    let report = replay(&resolved, args.redact_ids, args.quiet)?;
    let exporters = exporters(&resolved.gate);
    let refs: Vec<&dyn Exporter> = exporters.iter().map(|e| e.as_ref()).collect();
    match &lock {
        Some(lock) => {
            report::write_outputs(lock, &report, &refs)?;
        }
        // A closed stdout drops report.json but keeps the gate's exit code.
        None => super::print(&report::json::JsonExporter.serialize(&report))?,
    }
    if let Some(path) = &resolved.drift_details {
        let rows = report::drift_details::write(path, &report.drift_details)?;
        if !args.quiet {
            eprintln!(
                "proof: {rows} drifting record(s) in {}",
                Path::new(path).display()
            );
        }
    }
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()) {
        // A CI nicety: a failure here is reported but never changes the gate's exit code.
        if let Err(e) = append_step_summary(Path::new(&summary), &report) {
            eprintln!("proof: warning: {e}");
        }
    }
    if !args.quiet {
        eprintln!("proof: {}", report.summary.verdict);
        if let Some(dir) = &resolved.out {
            eprintln!("proof: reports in {}", Path::new(dir).display());
        }
    }
    Ok(report.gate.exit_code)
}
