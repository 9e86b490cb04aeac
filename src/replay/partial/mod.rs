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

mod codec;
mod merge;

pub use codec::{decode, decode_limited, encode, read};
pub use merge::{Merger, merge, redact_ids};

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::aggregate::Aggregate;
use super::source::{Compression, Format, Input};
use super::window::WindowLen;
use crate::engine::About;
use crate::error::ProofError;
use crate::policy::Lists;

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
    /// The identity of a run of `engine` with `lists`, `window` and the two policies'
    /// references.
    pub fn of(run: Run<'_>, lists: &Lists, baseline: PartRef, candidate: PartRef) -> Identity {
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
            baseline,
            candidate,
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
pub fn part_files(inputs: &[Input]) -> Vec<PartFile> {
    inputs.iter().map(PartFile::of).collect()
}

impl PartFile {
    /// How a part names an expanded input.
    pub fn of(inp: &Input) -> PartFile {
        PartFile {
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
        }
    }
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
