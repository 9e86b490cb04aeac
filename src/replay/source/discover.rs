//! Finding the inputs (SPEC §4): files and directories expanded into inputs (a
//! directory recursively, in name order, log names only), a file reached twice read
//! once, format and compression sniffed from the magic number or the name, and every
//! Parquet schema checked before any work starts.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::parquet::{open_projected, parquet_guarded};
use super::{Columns, Compression, FileStamp, Format, Input, sniff_compression};
use crate::error::ProofError;

fn is_log_name(name: &str) -> bool {
    let base = name
        .strip_suffix(".gz")
        .or_else(|| name.strip_suffix(".zst"))
        .unwrap_or(name);
    // Not `.json`: a directory of logs often holds policies (`*.ir.json`) and other
    // JSON documents beside them; a `.json` log can still be named explicitly.
    [".jsonl", ".ndjson", ".log", ".parquet", ".pq"]
        .iter()
        .any(|e| base.ends_with(e))
}

/// Walks `dir` in name order. Symlinked directories are followed once each (a link
/// back to an ancestor would otherwise recurse until the path is too long, and two
/// such links make the walk exponential); entries that are neither regular files nor
/// directories (FIFOs, sockets, devices) are refused rather than opened, because
/// opening a FIFO without a writer blocks forever.
fn walk(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    seen: &mut std::collections::HashSet<PathBuf>,
) -> Result<(), ProofError> {
    let real = std::fs::canonicalize(dir).map_err(|e| ProofError::io(dir, e))?;
    if !seen.insert(real) {
        return Ok(()); // already walked through another path: read each file once
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| ProofError::io(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|e| ProofError::io(dir, e)))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            walk(&p, out, seen)?;
        } else if is_log_name(name) {
            // Follows symlinks: a dangling or looping link is an error naming it.
            let meta = std::fs::metadata(&p).map_err(|e| ProofError::io(&p, e))?;
            if !meta.is_file() {
                return Err(ProofError::Usage(format!(
                    "{}: not a regular file ({}); a directory expands to regular files only — \
                     pass a FIFO or device explicitly to read it as a stream",
                    p.display(),
                    file_kind(&meta)
                )));
            }
            out.push(p);
        }
    }
    Ok(())
}

/// What kind of file a non-regular file is, for messages.
pub(crate) fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
    }
    if meta.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

fn sniff(path: &Path) -> Result<[u8; 4], ProofError> {
    let mut f = File::open(path).map_err(|e| ProofError::io(path, e))?;
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match f.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(ProofError::io(path, e)),
        }
    }
    Ok(magic)
}

/// Expands files and directories (recursively, in name order) into inputs, detects
/// format and compression, and checks every Parquet schema before any work starts.
/// A file reached twice is read once; the warning saying so goes to stderr.
pub fn expand_inputs(
    paths: &[PathBuf],
    forced: Option<Format>,
    columns: Columns<'_>,
) -> Result<Vec<Input>, ProofError> {
    let (inputs, warnings) = expand_inputs_with_warnings(paths, forced, columns)?;
    for w in warnings {
        // Not behind --quiet: the run reads fewer files than it was given.
        crate::say!("proof: warning: {w}");
    }
    Ok(inputs)
}

/// The identity of a file for "was it given twice": device and inode where the OS
/// has them (so symlinks and hard links count as the same file), else its canonical
/// path. `None` when it cannot be looked at; opening it later reports why.
fn file_identity(path: &Path) -> Option<(u64, u64, PathBuf)> {
    if path.as_os_str() == "-" {
        return Some((0, 0, path.to_path_buf()));
    }
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((meta.dev(), meta.ino(), PathBuf::new()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Some((0, 0, std::fs::canonicalize(path).ok()?))
    }
}

/// Drops every file that is the same file as an earlier one (named twice, through a
/// symlink, or both named and inside a named directory), keeping the first, and says
/// which were dropped.
pub(crate) fn dedupe(files: Vec<PathBuf>, warnings: &mut Vec<String>) -> Vec<PathBuf> {
    let mut first: std::collections::HashMap<(u64, u64, PathBuf), PathBuf> =
        std::collections::HashMap::new();
    let mut kept = Vec::with_capacity(files.len());
    for f in files {
        match file_identity(&f) {
            Some(id) => match first.get(&id) {
                Some(earlier) => warnings.push(format!(
                    "{} is the same file as {} (named twice, or inside a directory also \
                     given); it is read once",
                    f.display(),
                    earlier.display()
                )),
                None => {
                    first.insert(id, f.clone());
                    kept.push(f);
                }
            },
            None => kept.push(f),
        }
    }
    kept
}

/// [`expand_inputs`], returning the warnings instead of printing them.
pub fn expand_inputs_with_warnings(
    paths: &[PathBuf],
    forced: Option<Format>,
    columns: Columns<'_>,
) -> Result<(Vec<Input>, Vec<String>), ProofError> {
    let mut warnings = Vec::new();
    let mut files = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for p in paths {
        if p.as_os_str() == "-" {
            files.push(p.clone());
        } else if p.is_dir() {
            let before = files.len();
            walk(p, &mut files, &mut seen)?;
            if files.len() == before {
                return Err(ProofError::Usage(format!(
                    "{}: directory holds no log files (*.jsonl, *.ndjson, *.log, *.parquet, *.pq, optionally .gz/.zst); name other files explicitly",
                    p.display()
                )));
            }
        } else {
            files.push(p.clone());
        }
    }
    let files = dedupe(files, &mut warnings);
    let mut inputs = Vec::with_capacity(files.len());
    for path in files {
        if path.as_os_str() == "-" {
            let format = forced.unwrap_or(Format::Jsonl);
            if format == Format::Parquet {
                return Err(ProofError::Usage(
                    "Parquet cannot be read from standard input (it needs to seek); pass the file"
                        .into(),
                ));
            }
            inputs.push(Input {
                path,
                format,
                compression: Compression::None,
                bytes: None,
                stamp: None,
            });
            continue;
        }
        let meta = std::fs::metadata(&path).map_err(|e| ProofError::io(&path, e))?;
        // Only regular files are sniffed: reading the magic number from a pipe (a FIFO,
        // or `<(zcat …)`) would consume bytes the reader never sees again. Streams are
        // typed by name. An empty file holds no records whatever its name says, so it
        // is not fed to a decompressor (which would call it truncated).
        let magic = if meta.is_file() && meta.len() > 0 {
            sniff(&path)?
        } else {
            [0; 4]
        };
        let name = path.to_string_lossy().to_lowercase();
        let compression = if meta.is_file() && meta.len() == 0 {
            Compression::None
        } else {
            match sniff_compression(&magic) {
                Compression::None if name.ends_with(".gz") => Compression::Gzip,
                Compression::None if name.ends_with(".zst") => Compression::Zstd,
                c => c,
            }
        };
        let format = if meta.is_file() && meta.len() == 0 {
            Format::Jsonl // no bytes, no records, whatever the name or --format says
        } else {
            forced.unwrap_or(
                if &magic == b"PAR1" || name.ends_with(".parquet") || name.ends_with(".pq") {
                    Format::Parquet
                } else {
                    Format::Jsonl
                },
            )
        };
        if format == Format::Parquet {
            if !meta.is_file() {
                return Err(ProofError::Usage(format!(
                    "{}: Parquet must be a regular file (it needs to seek), not {}",
                    path.display(),
                    file_kind(&meta)
                )));
            }
            parquet_guarded(&path, 0, || open_projected(&path, columns))?;
        }
        inputs.push(Input {
            path,
            format,
            compression,
            bytes: Some(meta.len()),
            stamp: meta.is_file().then(|| FileStamp::of(&meta)),
        });
    }
    if inputs.is_empty() {
        return Err(ProofError::Usage(
            "no input logs: pass LOG files or directories, '-' for stdin, or a scenario with logs"
                .into(),
        ));
    }
    Ok((inputs, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_names() {
        assert!(
            is_log_name("a.jsonl.gz") && is_log_name("b.parquet") && is_log_name("c.ndjson.zst")
        );
        assert!(!is_log_name("README.md") && !is_log_name("x.csv"));
        // Policies and other JSON documents beside the logs are not logs.
        assert!(!is_log_name("lksg.v1.ir.json") && !is_log_name("a.json.gz"));
    }
}
