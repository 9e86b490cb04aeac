//! The Python extension module `proof_replay._native` (feature `python`, built by
//! maturin from pyproject.toml). It owns only the crossing: settings given as the
//! flags of `proof replay` (parsed by the CLI's own clap struct, so values, ranges and
//! messages are the CLI's), record batches taken from pyarrow through the Arrow C data
//! interface (no copy, no JSON round trip), JSONL lines into the CLI's record parser,
//! and partials (SPEC §10) out as bytes. Replay, merge and reports are the library's
//! (`run::job`, `replay::pipeline`, `replay::partial`, `report`); the Python side
//! (`python/proof_replay/`) adds iteration and Spark.
//!
//! A [`Folder`] can also be built from a *spec*: the job's policies, weights and lists
//! read on the Spark driver and shipped as bytes, so executors need none of the files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::pyarrow::PyArrowType;
use arrow::record_batch::RecordBatch;
use clap::Parser;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use serde::{Deserialize, Serialize};

use crate::cli::replay::ReplayArgs;
use crate::engine::{Engine, Worker};
use crate::error::ProofError;
use crate::orchestrator::SelectorKind;
use crate::policy::ListSpec;
use crate::replay::aggregate::{Aggregate, Origin};
use crate::replay::partial::{self, PartFile, Partial};
use crate::replay::pipeline::{Setup, absorb};
use crate::replay::record::{MAX_RECORD_BYTES, Reason};
use crate::replay::scenario::Scenario;
use crate::replay::settings::{Layer, Settings};
use crate::replay::window::WindowLen;
use crate::report::{self, Exporter};
use crate::run::job::Job;

create_exception!(
    _native,
    ProofError_,
    PyException,
    "Base class of proof errors; `exit_code` is the CLI's exit code for it (2)."
);
create_exception!(
    _native,
    UsageError,
    ProofError_,
    "Settings that do not fit together or are out of range (CLI exit 2)."
);
create_exception!(
    _native,
    ConfigError,
    ProofError_,
    "A file that cannot be read or does not parse: lists, weights, plans, partials (exit 2)."
);
create_exception!(
    _native,
    IrError,
    ProofError_,
    "An invalid policy IR or a wrong ir_hash (exit 2)."
);
create_exception!(
    _native,
    SchemaError,
    ProofError_,
    "Input lacking a required column or with one of an unusable type (exit 2)."
);
create_exception!(
    _native,
    LimitError,
    ProofError_,
    "A resource limit was reached (exit 2)."
);

/// The Python exception for a library error: same message as the CLI, `exit_code` 2.
fn py_err(e: ProofError) -> PyErr {
    let msg = e.to_string();
    let err = match &e {
        ProofError::Usage(_) => UsageError::new_err(msg),
        ProofError::Io { .. } | ProofError::Config { .. } => ConfigError::new_err(msg),
        ProofError::Ir { .. } | ProofError::HashMismatch { .. } => IrError::new_err(msg),
        ProofError::Schema { .. } => SchemaError::new_err(msg),
        ProofError::Limit { .. } => LimitError::new_err(msg),
        ProofError::Encode(_) | ProofError::Internal(_) => ProofError_::new_err(msg),
    };
    Python::attach(|py| {
        // Setting an int attribute on a fresh exception instance cannot fail.
        let _ = err.value(py).setattr("exit_code", 2);
    });
    err
}

fn usage(msg: String) -> PyErr {
    py_err(ProofError::Usage(msg))
}

/// The flags of `proof replay`, parsed by the CLI's clap struct.
#[derive(Debug, Parser)]
#[command(name = "proof replay", no_binary_name = true, disable_help_flag = true)]
struct Flags {
    #[command(flatten)]
    args: ReplayArgs,
}

fn parse_flags(argv: Vec<String>) -> PyResult<ReplayArgs> {
    Flags::try_parse_from(argv).map(|f| f.args).map_err(|e| {
        // clap's first line is the message ("error: invalid value …"); the usage
        // lines after it name the CLI, not the Python call.
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default();
        usage(first.strip_prefix("error: ").unwrap_or(first).to_string())
    })
}

/// Flags over the scenario (if any) over defaults.
fn settings_of(args: &ReplayArgs) -> Result<Settings, ProofError> {
    let scenario = match &args.scenario {
        Some(p) => Scenario::load(p)?,
        None => Layer::default(),
    };
    Ok(args.layer()?.combine(scenario).finish())
}

/// A file the driver read for the executors.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Shipped {
    /// The path as the driver named it (shown in the reports).
    display: String,
    /// Its content, hex (IR, weights and list files are small next to the logs).
    data: String,
}

impl Shipped {
    fn read(path: &Path) -> Result<Shipped, ProofError> {
        let bytes = std::fs::read(path).map_err(|e| ProofError::io(path, e))?;
        Ok(Shipped {
            display: path.display().to_string(),
            data: hex::encode(bytes),
        })
    }

    /// Writes the content under `dir` keeping the file name (its extension tells
    /// CSV from text lists and YAML from JSON weights).
    fn materialise(&self, dir: &Path, slot: &str) -> Result<PathBuf, ProofError> {
        let name = Path::new(&self.display)
            .file_name()
            .map_or_else(|| "file".into(), |n| n.to_os_string());
        let sub = dir.join(slot);
        std::fs::create_dir_all(&sub).map_err(|e| ProofError::io(&sub, e))?;
        let path = sub.join(name);
        let bytes = hex::decode(&self.data)
            .map_err(|e| ProofError::Usage(format!("job spec: {} is not hex: {e}", slot)))?;
        std::fs::write(&path, bytes).map_err(|e| ProofError::io(&path, e))?;
        Ok(path)
    }
}

/// An OPA bundle read on the driver (SPEC §12): its files, hex, as `Bundle::load`
/// reads them from a directory or a `.tar.gz`, and the name its id falls back to.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ShippedBundle {
    /// The path as the driver named it (shown in the reports).
    display: String,
    /// The file or directory name without `.tar.gz`.
    name: String,
    /// Path inside the bundle → content, hex.
    files: Vec<(String, String)>,
}

impl ShippedBundle {
    fn read(path: &Path) -> Result<ShippedBundle, ProofError> {
        let (name, files) = crate::engine::opa::bundle::read_files(path)?;
        Ok(ShippedBundle {
            display: path.display().to_string(),
            name,
            files: files
                .into_iter()
                .map(|(p, b)| (p, hex::encode(b)))
                .collect(),
        })
    }

    /// Writes the bundle as a directory `dir/slot/<name>` (the same files, so the same
    /// digest and id as on the driver).
    fn materialise(&self, dir: &Path, slot: &str) -> Result<PathBuf, ProofError> {
        let files = self
            .files
            .iter()
            .map(|(p, h)| {
                hex::decode(h)
                    .map(|b| (p.clone(), b))
                    .map_err(|e| ProofError::Usage(format!("job spec: {slot} {p} is not hex: {e}")))
            })
            .collect::<Result<std::collections::BTreeMap<_, _>, _>>()?;
        if Path::new(&self.name).components().count() != 1 || self.name.starts_with('.') {
            return Err(ProofError::Usage(format!(
                "job spec: bundle name {:?} is not a plain name",
                self.name
            )));
        }
        let root = dir.join(slot).join(&self.name);
        std::fs::create_dir_all(&root).map_err(|e| ProofError::io(&root, e))?;
        crate::engine::opa::bundle::write_files(&root, &files)?;
        Ok(root)
    }
}

/// The OPA part of a spec: both bundles (the baseline absent with `--baseline
/// recorded`) and `--decision`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OpaSpec {
    bundle: Option<ShippedBundle>,
    candidate_bundle: ShippedBundle,
    decision: Option<String>,
}

/// Everything an executor needs to fold records exactly as the driver's job would.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Spec {
    /// The IR engine's baseline (absent for OPA bundles and a recorded baseline).
    baseline: Option<Shipped>,
    candidate: Option<Shipped>,
    selector: SelectorKind,
    weights: Option<Shipped>,
    shadow_selector: SelectorKind,
    shadow_weights: Option<Shipped>,
    lists: Vec<(String, Shipped)>,
    window: String,
    salt: String,
    examples: usize,
    max_windows: usize,
    drift_details: bool,
    /// `replayed`, `recorded` or `recorded=ID` (SPEC §11).
    #[serde(default)]
    baseline_mode: Option<String>,
    /// `--bucket-key` (SPEC §3).
    #[serde(default)]
    bucket_key: Option<String>,
    /// OPA bundles (SPEC §12) instead of IR policies.
    #[serde(default)]
    opa: Option<OpaSpec>,
}

impl Spec {
    fn of(job: &Job) -> Result<Spec, ProofError> {
        let s = &job.settings;
        let common = |opa| Spec {
            baseline: None,
            candidate: None,
            selector: s.selector,
            weights: None,
            shadow_selector: s.shadow_selector,
            shadow_weights: None,
            lists: Vec::new(),
            window: s.window.to_string(),
            salt: job.engine.salt().to_string(),
            examples: s.examples,
            max_windows: s.max_windows,
            drift_details: s.drift_details.is_some(),
            baseline_mode: Some(s.baseline.to_string()),
            bucket_key: s.bucket_key.as_ref().map(|k| k.to_string()),
            opa,
        };
        let ir = match &job.engine {
            crate::engine::Loaded::Ir(ir) => ir,
            crate::engine::Loaded::Opa(_) => {
                let candidate = s.candidate_bundle.as_deref().ok_or_else(|| {
                    ProofError::Internal("an OPA job without --candidate-bundle".into())
                })?;
                return Ok(common(Some(OpaSpec {
                    bundle: s.bundle.as_deref().map(ShippedBundle::read).transpose()?,
                    candidate_bundle: ShippedBundle::read(candidate)?,
                    decision: s.decision.clone(),
                })));
            }
        };
        let shadow = &ir.paths.shadow.policy;
        let enforced = &ir.paths.enforced.policy;
        let same = Arc::ptr_eq(shadow, enforced);
        Ok(Spec {
            baseline: Some(Shipped::read(&shadow.path)?),
            candidate: if same {
                None
            } else {
                Some(Shipped::read(&enforced.path)?)
            },
            selector: s.selector,
            weights: s.weights.as_deref().map(Shipped::read).transpose()?,
            shadow_selector: s.shadow_selector,
            shadow_weights: s.shadow_weights.as_deref().map(Shipped::read).transpose()?,
            lists: s
                .lists
                .iter()
                .map(|l| Ok((l.name.clone(), Shipped::read(&l.path)?)))
                .collect::<Result<_, ProofError>>()?,
            window: s.window.to_string(),
            salt: job.engine.salt().to_string(),
            examples: s.examples,
            max_windows: s.max_windows,
            drift_details: s.drift_details.is_some(),
            baseline_mode: Some(s.baseline.to_string()),
            bucket_key: s.bucket_key.as_ref().map(|k| k.to_string()),
            opa: None,
        })
    }

    /// The job on an executor: files written to `dir`, paths mapped back for reports.
    fn resolve(&self, dir: &Path) -> Result<(Job, HashMap<String, String>), ProofError> {
        let mut shown = HashMap::new();
        let mut put = |f: &Shipped, slot: &str| -> Result<PathBuf, ProofError> {
            let p = f.materialise(dir, slot)?;
            shown.insert(p.display().to_string(), f.display.clone());
            Ok(p)
        };
        let baseline_mode: crate::replay::settings::Baseline = self
            .baseline_mode
            .as_deref()
            .unwrap_or("replayed")
            .parse()
            .map_err(ProofError::Usage)?;
        let bucket_key = self
            .bucket_key
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(ProofError::Usage)?;
        let window = Some(WindowLen::parse(&self.window).map_err(ProofError::Usage)?);
        if let Some(opa) = &self.opa {
            let mut put_bundle = |b: &ShippedBundle, slot: &str| -> Result<PathBuf, ProofError> {
                let p = b.materialise(dir, slot)?;
                shown.insert(p.display().to_string(), b.display.clone());
                Ok(p)
            };
            let layer = Layer {
                bundle: opa
                    .bundle
                    .as_ref()
                    .map(|b| put_bundle(b, "bundle"))
                    .transpose()?,
                candidate_bundle: Some(put_bundle(&opa.candidate_bundle, "candidate_bundle")?),
                decision: opa.decision.clone(),
                baseline: Some(baseline_mode),
                bucket_key,
                window,
                salt: Some(self.salt.clone()),
                examples: Some(self.examples),
                max_windows: Some(self.max_windows),
                threads: Some(1),
                ..Layer::default()
            };
            return Ok((Job::resolve(layer.finish())?, shown));
        }
        let recorded = baseline_mode != crate::replay::settings::Baseline::Replayed;
        let baseline = self
            .baseline
            .as_ref()
            .ok_or_else(|| ProofError::Usage("job spec: no baseline policy".into()))?;
        let first = put(baseline, "baseline")?;
        let candidate = self
            .candidate
            .as_ref()
            .map(|c| put(c, "candidate"))
            .transpose()?;
        // A recorded baseline replays no policy of its own: the shipped file is the
        // candidate.
        let (ir, candidate_ir) = if recorded {
            (None, candidate.or(Some(first)))
        } else {
            (Some(first), candidate)
        };
        let layer = Layer {
            ir,
            candidate_ir,
            baseline: Some(baseline_mode),
            bucket_key,
            selector: Some(self.selector),
            weights: self
                .weights
                .as_ref()
                .map(|w| put(w, "weights"))
                .transpose()?,
            shadow_selector: Some(self.shadow_selector),
            shadow_weights: self
                .shadow_weights
                .as_ref()
                .map(|w| put(w, "shadow_weights"))
                .transpose()?,
            lists: self
                .lists
                .iter()
                .enumerate()
                .map(|(i, (name, f))| {
                    Ok(ListSpec {
                        name: name.clone(),
                        path: put(f, &format!("list{i}"))?,
                    })
                })
                .collect::<Result<_, ProofError>>()?,
            window,
            salt: Some(self.salt.clone()),
            examples: Some(self.examples),
            max_windows: Some(self.max_windows),
            threads: Some(1),
            ..Layer::default()
        };
        Ok((Job::resolve(layer.finish())?, shown))
    }
}

/// Parses the flags of `proof replay` (without LOG, --out …: those are the caller's)
/// and resolves the job on this machine; returns the spec executors fold with.
#[pyfunction]
fn prepare(py: Python<'_>, argv: Vec<String>) -> PyResult<Py<PyBytes>> {
    let args = parse_flags(argv)?;
    let job = settings_of(&args).and_then(Job::resolve).map_err(py_err)?;
    let spec = Spec::of(&job).map_err(py_err)?;
    let json = serde_json::to_vec(&spec).map_err(|e| usage(format!("job spec: {e}")))?;
    Ok(PyBytes::new(py, &json).unbind())
}

/// What the flags say about inputs and outputs (the Spark command line's business):
/// JSON `{logs, out, format, quiet}`, logs from the flags or else the scenario.
#[pyfunction]
fn describe(argv: Vec<String>) -> PyResult<String> {
    let args = parse_flags(argv)?;
    let s = settings_of(&args).map_err(py_err)?;
    let path = |p: &PathBuf| p.display().to_string();
    let v = serde_json::json!({
        "logs": s.logs.iter().map(path).collect::<Vec<_>>(),
        "out": s.out.as_ref().map(path),
        "format": s.format.map(|f| match f {
            crate::replay::source::Format::Jsonl => "jsonl",
            crate::replay::source::Format::Parquet => "parquet",
        }),
        "quiet": args.quiet,
    });
    Ok(v.to_string())
}

/// A Parquet-like batch schema resolved once: the root columns the engine reads.
struct Resolved {
    schema: SchemaRef,
    roots: Vec<usize>,
}

/// Resolves the record columns of `schema` with the CLI's Parquet schema check, so
/// a missing or mistyped column fails with the CLI's message, naming `source`.
fn resolve_schema(
    engine: &crate::engine::Loaded,
    schema: &SchemaRef,
    source: &str,
) -> Result<Resolved, ProofError> {
    let roots = engine
        .check_schema(schema)
        .map_err(|msg| crate::engine::schema_error(Path::new(source), msg))?;
    Ok(Resolved {
        schema: schema.clone(),
        roots,
    })
}

/// Checks a batch schema as the CLI checks a Parquet file's (the Spark driver calls it
/// on the DataFrame's schema before any task runs): the columns of OPA decision events
/// (SPEC §12) when `spec` (from [`prepare`]) is an OPA job, else §4's.
#[pyfunction]
#[pyo3(signature = (schema, source, spec=None))]
fn check_schema(
    schema: PyArrowType<arrow::datatypes::Schema>,
    source: &str,
    spec: Option<&[u8]>,
) -> PyResult<()> {
    let opa = match spec {
        Some(b) => serde_json::from_slice::<Spec>(b)
            .map_err(|e| usage(format!("job spec does not parse: {e}")))?
            .opa
            .is_some(),
        None => false,
    };
    if opa {
        return crate::engine::opa::parquet::roots(&schema.0)
            .map(drop)
            .map_err(|msg| py_err(crate::engine::schema_error(Path::new(source), msg)));
    }
    crate::replay::parquet::ParquetColumns::from_schema(&schema.0, Path::new(source))
        .map(drop)
        .map_err(py_err)
}

/// One JSONL line (a trailing newline allowed) into `agg`, as the CLI's reader and
/// pipeline treat it: too long, blank (not a record) or parsed.
fn fold_line<W: Worker>(
    agg: &mut Aggregate,
    setup: &Setup,
    worker: &mut W,
    origin: Origin,
    line: &[u8],
) {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    if line.len() > MAX_RECORD_BYTES {
        return agg.reject(origin, Reason::TooLong);
    }
    if line
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        return; // blank lines (JSON whitespace only, as the CLI's pipeline: a form feed is not) are not records
    }
    absorb(agg, setup, origin, worker.line(line));
}

/// Folds records into one partial aggregate.
#[pyclass(module = "proof_replay._native")]
struct Folder {
    job: Job,
    setup: Setup,
    agg: Aggregate,
    files: Vec<PartFile>,
    index: HashMap<String, u32>,
    next_line: Vec<u64>,
    schemas: Vec<Resolved>,
    shown: HashMap<String, String>,
    // Kept so the shipped files live as long as the folder.
    _dir: Option<tempfile::TempDir>,
}

impl Folder {
    fn of(job: Job, shown: HashMap<String, String>, dir: Option<tempfile::TempDir>) -> Folder {
        let mut setup = job.setup();
        if job.settings.drift_details.is_some() {
            setup.bounds.drift_details = true;
        }
        Folder {
            agg: Aggregate::new(setup.bounds),
            setup,
            job,
            files: Vec::new(),
            index: HashMap::new(),
            next_line: Vec::new(),
            schemas: Vec::new(),
            shown,
            _dir: dir,
        }
    }

    fn file(&mut self, source: &str, format: &str) -> u32 {
        if let Some(&i) = self.index.get(source) {
            return i;
        }
        let i = self.files.len() as u32;
        self.files.push(PartFile {
            path: source.to_string(),
            format: format.to_string(),
            compression: "none".into(),
            bytes: None,
        });
        self.index.insert(source.to_string(), i);
        self.next_line.push(1);
        i
    }

    fn resolved(&mut self, schema: &SchemaRef, source: &str) -> Result<usize, ProofError> {
        if let Some(i) = self.schemas.iter().position(|r| &r.schema == schema) {
            return Ok(i);
        }
        self.schemas
            .push(resolve_schema(&self.job.engine, schema, source)?);
        Ok(self.schemas.len() - 1)
    }
}

#[pymethods]
impl Folder {
    /// A folder for the job the flags of `proof replay` describe (files read here).
    #[new]
    fn new(argv: Vec<String>) -> PyResult<Folder> {
        let args = parse_flags(argv)?;
        let job = settings_of(&args).and_then(Job::resolve).map_err(py_err)?;
        Ok(Folder::of(job, HashMap::new(), None))
    }

    /// A folder for a spec from [`prepare`]: its files are written to a private
    /// temporary directory, and reports show the driver's paths.
    #[staticmethod]
    fn from_spec(spec: &[u8]) -> PyResult<Folder> {
        let spec: Spec = serde_json::from_slice(spec)
            .map_err(|e| usage(format!("job spec does not parse: {e}")))?;
        let dir = tempfile::Builder::new()
            .prefix("proof-spec-")
            .tempdir()
            .map_err(|e| py_err(ProofError::io(Path::new("temporary directory"), e)))?;
        let (job, shown) = spec.resolve(dir.path()).map_err(py_err)?;
        Ok(Folder::of(job, shown, Some(dir)))
    }

    /// Folds JSONL lines (bytes, one record each, a trailing newline allowed) from
    /// `source`, numbered from `first_line` (default: after this source's last line).
    #[pyo3(signature = (lines, source, first_line=None))]
    fn add_lines(
        &mut self,
        py: Python<'_>,
        lines: Vec<Vec<u8>>,
        source: &str,
        first_line: Option<u64>,
    ) -> PyResult<()> {
        let file = self.file(source, "jsonl");
        let start = first_line.unwrap_or(self.next_line[file as usize]);
        let (agg, setup, engine) = (&mut self.agg, &self.setup, &self.job.engine);
        py.detach(|| {
            crate::with_engine!(engine, e => {
                let mut worker = e.worker();
                for (k, line) in lines.iter().enumerate() {
                    let origin = Origin {
                        file,
                        line: start + k as u64,
                    };
                    fold_line(agg, setup, &mut worker, origin, line);
                }
            })
        });
        self.next_line[file as usize] = start + lines.len() as u64;
        Ok(())
    }

    /// Folds JSONL lines held in an Arrow string or binary array (Spark's text reader
    /// hands them over this way: no Python object per line), numbered like
    /// [`Folder::add_lines`]. Null entries count as blank lines.
    #[pyo3(signature = (lines, source, first_line=None))]
    fn add_text(
        &mut self,
        py: Python<'_>,
        lines: PyArrowType<arrow::array::ArrayData>,
        source: &str,
        first_line: Option<u64>,
    ) -> PyResult<()> {
        use arrow::array::{Array, AsArray};
        use arrow::datatypes::DataType;
        let array = arrow::array::make_array(lines.0);
        let n = array.len();
        fn all<'a>(
            n: usize,
            valid: impl Fn(usize) -> bool,
            v: impl Fn(usize) -> &'a [u8],
        ) -> Vec<&'a [u8]> {
            (0..n)
                .map(|i| if valid(i) { v(i) } else { &[][..] })
                .collect()
        }
        let rows: Vec<&[u8]> = match array.data_type() {
            DataType::Utf8 => {
                let a = array.as_string::<i32>();
                all(n, |i| a.is_valid(i), |i| a.value(i).as_bytes())
            }
            DataType::LargeUtf8 => {
                let a = array.as_string::<i64>();
                all(n, |i| a.is_valid(i), |i| a.value(i).as_bytes())
            }
            DataType::Utf8View => {
                let a = array.as_string_view();
                all(n, |i| a.is_valid(i), |i| a.value(i).as_bytes())
            }
            DataType::Binary => {
                let a = array.as_binary::<i32>();
                all(n, |i| a.is_valid(i), |i| a.value(i))
            }
            DataType::LargeBinary => {
                let a = array.as_binary::<i64>();
                all(n, |i| a.is_valid(i), |i| a.value(i))
            }
            d => {
                return Err(usage(format!(
                    "{source}: lines must be a string or binary array, not {d}"
                )));
            }
        };
        let file = self.file(source, "jsonl");
        let start = first_line.unwrap_or(self.next_line[file as usize]);
        let (agg, setup, engine) = (&mut self.agg, &self.setup, &self.job.engine);
        py.detach(|| {
            crate::with_engine!(engine, e => {
                let mut worker = e.worker();
                for (i, line) in rows.iter().enumerate() {
                    let origin = Origin {
                        file,
                        line: start + i as u64,
                    };
                    fold_line(agg, setup, &mut worker, origin, line);
                }
            })
        });
        self.next_line[file as usize] = start + n as u64;
        Ok(())
    }

    /// Folds the rows of a record batch with the §4 columns (a pyarrow.RecordBatch or
    /// anything with `__arrow_c_array__`), rows numbered from `first_row` (default:
    /// after this source's last row). A missing required column raises SchemaError.
    /// `format` is what `inputs.files` shows (`parquet` for rows of a Parquet file).
    #[pyo3(signature = (batch, source, first_row=None, format="arrow"))]
    fn add_batch(
        &mut self,
        py: Python<'_>,
        batch: PyArrowType<RecordBatch>,
        source: &str,
        first_row: Option<u64>,
        format: &str,
    ) -> PyResult<()> {
        let batch = batch.0;
        let r = self.resolved(&batch.schema(), source).map_err(py_err)?;
        let projected = batch
            .project(&self.schemas[r].roots)
            .map_err(|e| usage(format!("{source}: {e}")))?;
        let file = self.file(source, format);
        let start = first_row.unwrap_or(self.next_line[file as usize]);
        let rows = projected.num_rows() as u64;
        let (agg, setup, engine) = (&mut self.agg, &self.setup, &self.job.engine);
        py.detach(|| {
            crate::with_engine!(engine, e => {
                let mut worker = e.worker();
                let mut line = start;
                worker.batch(&projected, &mut |read| {
                    absorb(agg, setup, Origin { file, line }, read);
                    line += 1;
                });
            })
        });
        self.next_line[file as usize] = start + rows;
        Ok(())
    }

    /// Records read so far.
    fn records(&self) -> u64 {
        self.agg.read
    }

    /// The partial of everything folded so far, and a fresh start: the records folded
    /// next go into an empty aggregate and their inputs are numbered anew (the Spark
    /// job takes one partial per input split, so that each holds one input).
    fn take(&mut self, py: Python<'_>) -> PyResult<Py<PyBytes>> {
        let part = self.partial(py)?;
        self.agg = Aggregate::new(self.setup.bounds);
        self.files.clear();
        self.index.clear();
        self.next_line.clear();
        Ok(part)
    }

    /// The partial aggregate of everything folded so far (SPEC §10 bytes).
    fn partial(&self, py: Python<'_>) -> PyResult<Py<PyBytes>> {
        let mut agg = self.agg.clone();
        agg.finish();
        let job = &self.job;
        let id = job.identity();
        let mut header = id.header(self.files.clone());
        // Shipped files were written to a temporary directory: show the driver's paths.
        let show = |p: &mut String| {
            if let Some(d) = self.shown.get(p.as_str()) {
                *p = d.clone();
            }
        };
        for r in [&mut header.baseline, &mut header.candidate] {
            show(&mut r.path);
            if let Some(w) = r.weights.as_mut() {
                show(w);
            }
        }
        for l in &mut header.lists {
            show(&mut l.path);
        }
        let mut part = Partial { header, agg };
        if job.settings.redact_ids {
            partial::redact_ids(&mut part, &job.redact_key);
        }
        let bytes = partial::encode(&part).map_err(py_err)?;
        Ok(PyBytes::new(py, &bytes).unbind())
    }
}

fn decode_all(parts: &[Vec<u8>]) -> Result<Vec<(String, Partial)>, ProofError> {
    parts
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let name = format!("partial #{i}");
            partial::decode(b, &name).map(|p| (name, p))
        })
        .collect()
}

/// Adds `by` to the line (or row) of every origin a partial names: a part folded
/// with its lines numbered from 1 (a Spark split of a JSONL file, whose first line in
/// the file is known only once every split is counted) renamed to its lines in the
/// file. The order of the part's samples is kept, so its bounded samples stay the
/// earliest.
#[pyfunction]
fn shift_lines(py: Python<'_>, part: &[u8], by: u64) -> PyResult<Py<PyBytes>> {
    let mut p = partial::decode(part, "partial").map_err(py_err)?;
    for o in p.agg.origins_mut() {
        o.line = o
            .line
            .checked_add(by)
            .ok_or_else(|| usage(format!("line {} + {by} overflows", o.line)))?;
    }
    let bytes = partial::encode(&p).map_err(py_err)?;
    Ok(PyBytes::new(py, &bytes).unbind())
}

/// Merges partials (bytes) into one; refused unless their fingerprints match.
#[pyfunction]
fn merge(py: Python<'_>, parts: Vec<Vec<u8>>) -> PyResult<Py<PyBytes>> {
    let parts = decode_all(&parts).map_err(py_err)?;
    // partial::merge lists an input read by several parts (Spark tasks over row
    // groups of one Parquet file) once, with their counts added.
    let merged = partial::merge(parts).map_err(py_err)?;
    let bytes = partial::encode(&merged).map_err(py_err)?;
    Ok(PyBytes::new(py, &bytes).unbind())
}

fn report_of(part: &[u8], argv: Vec<String>) -> PyResult<(Settings, report::model::Report)> {
    let args = parse_flags(argv)?;
    let settings = settings_of(&args).map_err(py_err)?;
    let p = partial::decode(part, "partial").map_err(py_err)?;
    let report = crate::run::merge::report(&p, &settings).map_err(py_err)?;
    Ok((settings, report))
}

/// report.json of a partial under the gate flags of `argv`, as text.
#[pyfunction]
fn report_json(part: &[u8], argv: Vec<String>) -> PyResult<String> {
    let (_, report) = report_of(part, argv)?;
    let bytes = report::json::JsonExporter
        .serialize(&report)
        .map_err(py_err)?;
    String::from_utf8(bytes).map_err(|e| usage(format!("report.json: {e}")))
}

/// Writes the report set of a partial into `out` (and --drift-details if set);
/// returns the gate's exit code (0, 1 or 3), as `proof merge` would exit.
#[pyfunction]
fn write_reports(part: &[u8], out: PathBuf, argv: Vec<String>) -> PyResult<i32> {
    let (settings, report) = report_of(part, argv)?;
    let exporters = report::exporters();
    let refs: Vec<&dyn Exporter> = exporters.iter().map(|e| e.as_ref()).collect();
    let lock = report::writer::OutputDir::lock(&out).map_err(py_err)?;
    report::write_outputs(&lock, &report, &refs).map_err(py_err)?;
    if let Some(path) = &settings.drift_details {
        report::drift_details::write(path, &report.drift_details).map_err(py_err)?;
    }
    Ok(report.gate.exit_code)
}

/// The module `proof_replay._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ProofError", py.get_type::<ProofError_>())?;
    m.add("UsageError", py.get_type::<UsageError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("IrError", py.get_type::<IrError>())?;
    m.add("SchemaError", py.get_type::<SchemaError>())?;
    m.add("LimitError", py.get_type::<LimitError>())?;
    m.add("VERSION", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Folder>()?;
    m.add_function(wrap_pyfunction!(prepare, m)?)?;
    m.add_function(wrap_pyfunction!(describe, m)?)?;
    m.add_function(wrap_pyfunction!(check_schema, m)?)?;
    m.add_function(wrap_pyfunction!(merge, m)?)?;
    m.add_function(wrap_pyfunction!(shift_lines, m)?)?;
    m.add_function(wrap_pyfunction!(report_json, m)?)?;
    m.add_function(wrap_pyfunction!(write_reports, m)?)?;
    Ok(())
}
