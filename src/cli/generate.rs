//! `proof gen`: writes deterministic, realistic LkSG traffic (JSONL, .gz, .zst or
//! Parquet) and, on request, the reference lists it refers to, production's verdicts
//! (`--verdicts`, some flipped) and tenants (`--tenants`).

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use clap::Args;

use crate::error::ProofError;
use crate::r#gen::parquet::ContextLayout;
use crate::r#gen::verdicts::Stamp;
use crate::r#gen::{GenConfig, Generator, lists, to_jsonl};
use crate::orchestrator::SelectorKind;
use crate::orchestrator::facade::EngineFiles;
use crate::policy::ListSpec;
use crate::policy::time::{MAX_TS_MS, format_rfc3339_ms, parse_rfc3339_ms, parse_span_ms};
use crate::replay::source::Format;
use crate::replay::window::WindowLen;

/// Earliest `--start`: generated contexts hold audit dates years before their
/// timestamps, and traffic before the Unix epoch is of no use to anyone.
pub const MIN_START: &str = "1970-01-01T00:00:00Z";
/// Last instant replay reads (years 0001 to 9999); a generated record must also fall
/// in a window of [`DEFAULT_WINDOW_MS`] that ends by then.
pub const MAX_END: &str = "9999-12-31T23:59:59.999Z";
/// Replay's default window (5 minutes): the one generated records must fit.
pub const DEFAULT_WINDOW_MS: i64 = 300_000;

/// Flags of `proof gen`.
#[derive(Debug, Clone, Args)]
pub struct GenArgs {
    /// Number of records, whole number ≥ 0 (0 writes an empty output).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub records: u64,
    /// First instant: an RFC 3339 date-time, 1970-01-01T00:00:00Z or later (the records
    /// also have to end by 9999-12-31T23:54:59.999Z, see --duration).
    #[arg(long, value_name = "TIME", default_value = "2026-11-02T00:00:00Z")]
    pub start: String,
    /// Time span the records cover, from --start: a whole number > 0 with unit ms, s, m,
    /// h or d (6h, 1d, 30d); the day's traffic profile is scaled to spans under a day;
    /// --start + --duration must not pass 9999-12-31T23:55:00Z (the last 5-minute
    /// window replay can report ends at 23:55).
    #[arg(long, value_name = "SPAN", default_value = "1d")]
    pub duration: String,
    /// Seed of the pseudo-random generator, any whole number 0..=18446744073709551615;
    /// the same seed (and flags) give the same bytes.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub seed: u64,
    /// Policy id written into records, any string.
    #[arg(long, value_name = "ID", default_value = "lksg.v1")]
    pub policy_id: String,
    /// Share of records naming another policy (replay skips them), 0.0..=1.0.
    #[arg(long, value_name = "RATIO", default_value_t = 0.002, value_parser = super::parse_ratio)]
    pub other_policy_rate: f64,
    /// Share of records with a missing or empty input, 0.0..=1.0.
    #[arg(long, value_name = "RATIO", default_value_t = 0.004, value_parser = super::parse_ratio)]
    pub missing_rate: f64,
    /// Output format [default: parquet for *.parquet, else jsonl].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Output file (.jsonl, .jsonl.gz, .jsonl.zst, .parquet) [default: JSONL on stdout].
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// How Parquet output stores the context: `struct` (a typed struct column, schema
    /// inferred from the first 65 536 records) or `json` (a JSON string per row).
    #[arg(long, value_enum, default_value_t = ContextLayout::Struct)]
    pub parquet_context: ContextLayout,
    /// zstd level for *.zst outputs, 1..=22.
    #[arg(long, value_name = "N", default_value_t = 9, value_parser = clap::value_parser!(i32).range(1..=22))]
    pub zstd_level: i32,
    /// Also write sanctions.csv, ubo_watchlist.txt and high_risk_countries.txt into DIR
    /// (created if missing) [default: none, no lists written].
    #[arg(long, value_name = "DIR")]
    pub lists_dir: Option<PathBuf>,
    /// Write OPA decision-log events instead (SPEC §12): API-gateway requests whose
    /// `result` is this bundle's answer (a directory or a .tar.gz), JSONL only; the
    /// events carry their own recorded answer, so not with --verdicts or --tenants
    /// [default: none: LkSG records].
    #[arg(long, value_name = "FILE", conflicts_with_all = ["lists_dir", "format", "verdicts", "tenants"])]
    pub bundle: Option<PathBuf>,
    /// With --bundle: the decision path each event asks for, such as
    /// gateway/authz/allow; repeatable, picked uniformly [default: the gateway
    /// example's allow, deny, response and status, 5:2:2:1].
    #[arg(long, value_name = "PATH", requires = "bundle")]
    pub decision: Vec<String>,
    /// Recorded verdicts and tenants (SPEC §11, §3).
    #[command(flatten)]
    pub fidelity: FidelityArgs,
}

/// `proof gen` flags for replay fidelity and sticky rollouts.
#[derive(Debug, Clone, Args)]
pub struct FidelityArgs {
    /// Write each record's `verdict` (SPEC §11): what the baseline IR in FILE answers
    /// for it, evaluated as replay's shadow path does (basic selector, the --list
    /// bindings, `now` = the record's time); records naming another policy get none
    /// [default: no verdicts].
    #[arg(long, value_name = "FILE")]
    pub verdicts: Option<PathBuf>,
    /// With --verdicts: bind a reference list the IR reads, NAME=FILE as replay's
    /// (CSV: first column; else one value a line). Repeatable [default: none].
    #[arg(long = "list", value_name = "NAME=FILE", requires = "verdicts")]
    pub lists: Vec<ListSpec>,
    /// With --verdicts: share of those records written with another verdict than the
    /// baseline's, 0.0..=1.0: exactly ⌊n × RATIO⌋ of n, spread evenly in time, so a replay
    /// finds that many unfaithful.
    #[arg(long, value_name = "RATIO", default_value_t = 0.0, value_parser = super::parse_ratio, requires = "verdicts")]
    pub flip_ratio: f64,
    /// Give each context a tenant, `tenant.id` = `t-0001` … of N tenants (Zipf-skewed:
    /// a few large ones, a long tail), for `replay --bucket-key tenant.id`; 1..=1000000
    /// [default: no tenant].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub tenants: Option<u64>,
}

/// Runs `proof gen`.
pub fn run(args: GenArgs) -> anyhow::Result<i32> {
    let start_ms = parse_rfc3339_ms(&args.start)
        .filter(|&ms| ms >= 0)
        .ok_or_else(|| {
            ProofError::Usage(format!(
                "--start '{}': expected an RFC 3339 date-time in {MIN_START}..={MAX_END}",
                args.start
            ))
        })?;
    let duration_ms = parse_span_ms(&args.duration).ok_or_else(|| {
        ProofError::Usage(format!(
            "--duration '{}': expected a whole number > 0 with unit ms, s, m, h or d (e.g. 1d, 6h, 30m)",
            args.duration
        ))
    })?;
    // Records lie in [start, start + duration); the last one must still be readable,
    // and its window under replay's default --window must be writable as RFC 3339 (a
    // window ending in year 10000 is not, and replay rejects its records as bad_ts).
    let last = start_ms.checked_add(duration_ms - 1);
    let w = WindowLen::DEFAULT;
    if last.is_none_or(|last| last > MAX_TS_MS || !w.of(last).fits(w)) {
        let last_ok = w.of(MAX_TS_MS - w.ms()).end(w) - 1;
        return Err(ProofError::Usage(format!(
            "--start {} --duration {}: the records would run past {}, the last instant \
             whose 5-minute window (replay's default --window) ends by {MAX_END}; start \
             earlier or shorten the duration",
            args.start,
            args.duration,
            format_rfc3339_ms(last_ok)
        ))
        .into());
    }
    if let Some(bundle) = &args.bundle {
        return run_opa(&args, bundle, start_ms, duration_ms);
    }
    let cfg = GenConfig {
        records: args.records,
        start_ms,
        duration_ms,
        seed: args.seed,
        policy_id: args.policy_id.clone(),
        other_policy_rate: args.other_policy_rate,
        missing_input_rate: args.missing_rate,
        tenants: args.fidelity.tenants.unwrap_or(0),
    };
    if let Some(dir) = &args.lists_dir {
        std::fs::create_dir_all(dir).map_err(|e| ProofError::io(dir, e))?;
        for (name, text) in lists() {
            crate::report::writer::write_atomic(&dir.join(name), text.as_bytes())?;
        }
    }
    let mut stamp = match &args.fidelity.verdicts {
        Some(ir) => Some(Stamp::new(
            EngineFiles {
                baseline: ir.clone(),
                candidate: None,
                selector: SelectorKind::Basic,
                weights: None,
                shadow_selector: SelectorKind::Basic,
                shadow_weights: None,
                salt: None,
                lists: args.fidelity.lists.clone(),
            }
            .load()?,
            args.policy_id.clone(),
            args.fidelity.flip_ratio,
            args.seed,
        )),
        None => None,
    };
    let records = Generator::new(cfg).map(move |r| match stamp.as_mut() {
        Some(s) => s.apply(r),
        None => r,
    });
    let Some(path) = &args.output else {
        let mut out = BufWriter::new(std::io::stdout().lock());
        let written = records
            .into_iter()
            .try_for_each(|r| writeln!(out, "{}", to_jsonl(&r)))
            .and_then(|()| out.flush());
        return match written {
            // `proof gen | head`: stop generating once the reader is gone.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
            Err(e) => Err(e.into()),
            Ok(()) => Ok(0),
        };
    };
    let name = path.to_string_lossy().to_lowercase();
    let format = args.format.unwrap_or(if name.ends_with(".parquet") {
        Format::Parquet
    } else {
        Format::Jsonl
    });
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Stream into a temporary file beside the target, then rename: never half a file.
    let tmp = tempfile::Builder::new()
        .prefix(".proof-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| ProofError::io(&dir, e))?;
    crate::report::writer::set_readable(tmp.as_file());
    match format {
        Format::Parquet => {
            crate::r#gen::parquet::write_records(
                tmp.path(),
                records,
                parquet::basic::Compression::ZSTD(Default::default()),
                args.parquet_context,
            )?;
        }
        Format::Jsonl => {
            let file = tmp.reopen().map_err(|e| ProofError::io(path, e))?;
            crate::r#gen::jsonl::write_records(file, path, &name, args.zstd_level, records)?;
        }
    }
    tmp.persist(path)
        .map_err(|e| ProofError::io(path, e.error))?;
    Ok(0)
}

/// `proof gen --bundle`: OPA decision events (SPEC §12) filled by evaluating the bundle.
fn run_opa(
    args: &GenArgs,
    bundle: &std::path::Path,
    start_ms: i64,
    duration_ms: i64,
) -> anyhow::Result<i32> {
    use crate::engine::opa::{Bundle, DecisionPath};
    use crate::r#gen::opa::{OpaGenConfig, OpaGenerator, write};
    let decisions = args
        .decision
        .iter()
        .map(|d| {
            DecisionPath::parse(d).ok_or_else(|| {
                ProofError::Usage(format!(
                    "--decision '{d}' names no rule: give a decision path such as \
                     gateway/authz/allow"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let cfg = OpaGenConfig {
        records: args.records,
        start_ms,
        duration_ms,
        seed: args.seed,
        decisions,
    };
    let events = OpaGenerator::new(cfg, Bundle::load(bundle)?)?;
    write(events, args.output.as_deref(), args.zstd_level)?;
    Ok(0)
}
