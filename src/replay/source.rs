//! Sources (SPEC §4): expands paths into inputs, detects format and compression, and
//! reads them into chunks for the pipeline: JSONL lines with their line numbers, or
//! Parquet record batches with their row numbers.
//!
//! Reading is sequential (one thread, which also decompresses); parsing happens in
//! the workers. A line longer than the record limit is never held in memory whole.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;

use arrow::record_batch::RecordBatch;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use serde::{Deserialize, Serialize};

use super::record::MAX_RECORD_BYTES;
use crate::error::{Location, ProofError};
pub use crate::panics::contain_panics;

/// Target bytes of line data per chunk.
pub const CHUNK_BYTES: usize = 1 << 20;
/// Most lines per chunk.
pub const CHUNK_LINES: usize = 8192;
/// Rows per Parquet batch.
pub const PARQUET_BATCH: usize = 8192;

/// Input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object a line (optionally .gz or .zst).
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

/// Compression of a JSONL input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Plain text.
    None,
    /// gzip (multi-member streams allowed).
    Gzip,
    /// Zstandard.
    Zstd,
}

/// One input to read.
#[derive(Debug, Clone, Serialize)]
pub struct Input {
    /// The path as given (or `-`).
    pub path: PathBuf,
    /// Format.
    pub format: Format,
    /// Compression (JSONL only).
    pub compression: Compression,
    /// Size on disk, when known.
    pub bytes: Option<u64>,
    /// Size and modification time when the inputs were listed (regular files only):
    /// the file must still look like this after it has been read.
    #[serde(skip)]
    pub stamp: Option<FileStamp>,
}

/// What a regular file looked like at one moment: its size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    /// Size in bytes.
    pub len: u64,
    /// Last modification, where the file system keeps one.
    pub modified: Option<std::time::SystemTime>,
}

impl FileStamp {
    /// The stamp of a file's metadata.
    pub fn of(meta: &std::fs::Metadata) -> FileStamp {
        FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
        }
    }
}

/// How a file differs from the stamp it had when it was listed, or `None` if it looks
/// the same: another size, another modification time, or (`read`, for files read as
/// plain bytes to their end) a byte count other than the listed size. A log truncated,
/// appended to or rewritten while it is read would otherwise give a report over part
/// of it while `inputs.files[].bytes` still shows the old size.
pub fn changed_since(listed: &FileStamp, now: &FileStamp, read: Option<u64>) -> Option<String> {
    let mut what = Vec::new();
    if now.len != listed.len {
        what.push(format!(
            "its size went from {} to {} bytes",
            listed.len, now.len
        ));
    }
    if let Some(n) = read
        && n != listed.len
    {
        what.push(format!("{n} bytes were read of the {} listed", listed.len));
    }
    if now.modified != listed.modified {
        what.push("its modification time changed".to_string());
    }
    (!what.is_empty()).then(|| what.join(", "))
}

/// The error for a file that changed while it was read.
fn changed_error(path: &Path, what: &str) -> ProofError {
    ProofError::Config {
        path: Location::file(path),
        msg: format!(
            "the file changed while it was read ({what}); no report was written, since it \
             would cover only part of the file — replay a copy that is no longer written \
             to (a rotated file, or `cp` it first)"
        ),
    }
}

/// Checks `file` (open on `path`) against the stamp it was listed with.
fn check_stamp(
    path: &Path,
    listed: Option<&FileStamp>,
    file: &File,
    read: Option<u64>,
) -> Result<(), ProofError> {
    let Some(listed) = listed else {
        return Ok(());
    };
    let now = FileStamp::of(&file.metadata().map_err(|e| ProofError::io(path, e))?);
    match changed_since(listed, &now, read) {
        Some(what) => Err(changed_error(path, &what)),
        None => Ok(()),
    }
}

/// A piece of work for the pipeline.
pub enum Chunk {
    /// Consecutive JSONL lines.
    Lines {
        /// Input index.
        file: u32,
        /// Line number of the first line.
        first_line: u64,
        /// Line bytes, back to back.
        data: Vec<u8>,
        /// `(start, end)` of each line in `data`; `TOO_LONG` marks an over-long line.
        spans: Vec<(u32, u32)>,
    },
    /// A Parquet record batch.
    Batch {
        /// Input index.
        file: u32,
        /// Row number of the first row (1-based).
        first_row: u64,
        /// The rows.
        batch: RecordBatch,
    },
}

/// Span marker of a line over the record limit.
pub const TOO_LONG: (u32, u32) = (u32::MAX, u32::MAX);

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

/// Compression told by the magic number at the start of a stream.
fn sniff_compression(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
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
        eprintln!("proof: warning: {w}");
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

/// Counts bytes read from the underlying file: for the progress bar, and per file to
/// check that a file was read to the size it was listed with.
struct Counting<R> {
    inner: R,
    counter: Arc<AtomicU64>,
    this_file: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        self.this_file.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Reads every input in order and sends chunks; stops early if the receiver is gone.
/// A regular file that changed while it was read (or since it was listed) is an error.
pub fn read_all(
    inputs: &[Input],
    tx: &SyncSender<Chunk>,
    bytes_read: &Arc<AtomicU64>,
    columns: Columns<'_>,
) -> Result<(), ProofError> {
    for (i, input) in inputs.iter().enumerate() {
        let file = i as u32;
        match input.format {
            Format::Parquet => read_parquet(input, file, tx, bytes_read, columns)?,
            Format::Jsonl => {
                let stdin = input.path.as_os_str() == "-";
                // A second handle on the open file, to look at it again once read.
                let mut opened: Option<File> = None;
                let raw: Box<dyn Read + Send> = if stdin {
                    Box::new(std::io::stdin())
                } else {
                    let f = File::open(&input.path).map_err(|e| ProofError::io(&input.path, e))?;
                    check_stamp(&input.path, input.stamp.as_ref(), &f, None)?;
                    opened = f.try_clone().ok();
                    Box::new(f)
                };
                let this_file = Arc::new(AtomicU64::new(0));
                let mut counted = BufReader::with_capacity(
                    64 * 1024,
                    Counting {
                        inner: raw,
                        counter: bytes_read.clone(),
                        this_file: this_file.clone(),
                    },
                );
                // A file's compression was sniffed when it was expanded; standard input
                // can only be looked at here, through the buffer, so that
                // `zcat`-less pipes such as `… | gzip | proof replay -` also work.
                let compression = if stdin {
                    let head = counted
                        .fill_buf()
                        .map_err(|e| stream_error(input, Compression::None, 1, e))?;
                    sniff_compression(head)
                } else {
                    input.compression
                };
                let reader: Box<dyn Read + Send> = match compression {
                    Compression::None => Box::new(counted),
                    Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(counted)),
                    Compression::Zstd => Box::new(
                        zstd::stream::read::Decoder::with_buffer(counted)
                            .map_err(|e| ProofError::io(&input.path, e))?,
                    ),
                };
                // SPEC §12: a stream whose first non-blank byte is `[` is a JSON array
                // of records (OPA's decision-log upload body).
                let mut reader = BufReader::with_capacity(1 << 20, reader);
                let head = reader
                    .fill_buf()
                    .map_err(|e| stream_error(input, compression, 1, e))?;
                let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
                if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
                    if !read_array(reader, input, file, tx)? {
                        return Ok(());
                    }
                    continue;
                }
                let whole = read_lines(reader, file, tx).map_err(|(line, e)| {
                    // A stream cut short because the file shrank is told as that.
                    if let Some(f) = &opened
                        && let Err(changed) =
                            check_stamp(&input.path, input.stamp.as_ref(), f, None)
                    {
                        return changed;
                    }
                    stream_error(input, compression, line, e)
                })?;
                if !whole {
                    return Ok(()); // the receiver is gone: the run is ending anyway
                }
                if let Some(f) = &opened {
                    // Plain files are read byte for byte to their end; a decoder may
                    // stop short of trailing bytes, so only their stamp is compared.
                    let read = (compression == Compression::None)
                        .then(|| this_file.load(Ordering::Relaxed));
                    check_stamp(&input.path, input.stamp.as_ref(), f, read)?;
                }
            }
        }
    }
    Ok(())
}

fn stream_error(
    input: &Input,
    compression: Compression,
    line: u64,
    e: std::io::Error,
) -> ProofError {
    let what = match compression {
        Compression::Gzip => "gzip stream is truncated or corrupt",
        Compression::Zstd => "zstd stream is truncated or corrupt",
        Compression::None => "read failed",
    };
    ProofError::Config {
        path: Location::at(&input.path, line, 0),
        msg: format!(
            "{what} at line {line} ({e}); no report was written ({} complete line(s) \
             decoded before it) — repair or re-export the file, or pass only intact files",
            line.saturating_sub(1)
        ),
    }
}

/// Splits a stream into line chunks. Errors carry the line number reached.
///
/// The 16 MiB limit (SPEC §4) applies to the record's bytes: a UTF-8 byte-order mark
/// at the start of the stream and the line ending (`\n` or `\r\n`) are not part of
/// the record, so they neither count against the limit nor stay in the span. At most
/// limit + BOM + CRLF bytes of one line are held; a longer line is `too_long` and the
/// rest of it is skipped unread.
/// Largest JSON array of records read (it is held whole to check that it parses).
pub const MAX_ARRAY_BYTES: u64 = 1 << 30;

/// Reads a JSON array of records (SPEC §12): each element is one record, numbered from
/// 1 like lines, the 16 MiB limit applying per element. An array that does not parse is
/// an input error naming the file and the byte offset.
fn read_array(
    mut reader: impl Read,
    input: &Input,
    file: u32,
    tx: &SyncSender<Chunk>,
) -> Result<bool, ProofError> {
    let mut bytes = Vec::new();
    (&mut reader)
        .take(MAX_ARRAY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| stream_error(input, input.compression, 1, e))?;
    if bytes.len() as u64 > MAX_ARRAY_BYTES {
        return Err(ProofError::Limit {
            path: Location::file(&input.path),
            msg: format!(
                "a JSON array of records over {MAX_ARRAY_BYTES} bytes; split it, or write \
                 one record a line (JSONL)"
            ),
        });
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let offset = bytes.len() - body.len();
    if let Err(e) = serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(body) {
        let at = byte_offset(body, e.line(), e.column()) + offset;
        return Err(ProofError::Config {
            path: Location::file(&input.path),
            msg: format!(
                "the JSON array of records does not parse at byte offset {at}: {e}; nothing \
                 was evaluated"
            ),
        });
    }
    let mut spans = Vec::new();
    for (a, b) in array_elements(body) {
        spans.push(if b - a > MAX_RECORD_BYTES {
            TOO_LONG
        } else {
            ((a + offset) as u32, (b + offset) as u32)
        });
    }
    // One chunk per array: element spans index the whole body (u32 offsets hold up to
    // 4 GiB, above MAX_ARRAY_BYTES).
    Ok(tx
        .send(Chunk::Lines {
            file,
            first_line: 1,
            data: bytes,
            spans,
        })
        .is_ok())
}

/// The byte offset of a 1-based line and column in `text`.
fn byte_offset(text: &[u8], line: usize, column: usize) -> usize {
    let mut at = 0;
    for _ in 1..line {
        match text[at..].iter().position(|&b| b == b'\n') {
            Some(i) => at += i + 1,
            None => return text.len(),
        }
    }
    (at + column.saturating_sub(1)).min(text.len())
}

/// The `(start, end)` of each top-level element of a JSON array that parses: a scan of
/// strings and brackets only (the parse above already checked the grammar).
fn array_elements(text: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    let mut start = None;
    for (i, &b) in text.iter().enumerate() {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => {
                in_str = true;
                if depth == 1 && start.is_none() {
                    start = Some(i);
                }
            }
            b'[' | b'{' => {
                if depth == 1 && start.is_none() {
                    start = Some(i);
                }
                depth += 1;
            }
            b']' | b'}' => {
                depth -= 1;
                if depth == 0
                    && let Some(s) = start.take()
                {
                    out.push((s, trim_end(text, s, i)));
                }
            }
            b',' if depth == 1 => {
                if let Some(s) = start.take() {
                    out.push((s, trim_end(text, s, i)));
                }
            }
            b if depth == 1 && start.is_none() && !b.is_ascii_whitespace() => start = Some(i),
            _ => {}
        }
    }
    out
}

fn trim_end(text: &[u8], start: usize, mut end: usize) -> usize {
    while end > start && text[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    end
}

fn read_lines(
    reader: impl Read,
    file: u32,
    tx: &SyncSender<Chunk>,
) -> Result<bool, (u64, std::io::Error)> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let mut r = BufReader::with_capacity(1 << 20, reader);
    let mut line_no: u64 = 1;
    let mut first_line = 1;
    let mut data = Vec::with_capacity(CHUNK_BYTES + 4096);
    let mut spans = Vec::with_capacity(CHUNK_LINES);
    loop {
        let start = data.len();
        // Room for a whole record plus what is not part of it: "\r\n", and the BOM on
        // the first line. A read that fills this without reaching '\n' is over-long.
        let bom_room = if line_no == 1 { BOM.len() } else { 0 };
        let limit = (MAX_RECORD_BYTES + 2 + bom_room) as u64;
        let n = (&mut r)
            .take(limit)
            .read_until(b'\n', &mut data)
            .map_err(|e| (line_no, e))?;
        if n == 0 {
            break;
        }
        let has_nl = data.last() == Some(&b'\n');
        let cut_short = !has_nl && n as u64 == limit;
        let mut begin = start;
        if line_no == 1 && data[start..].starts_with(BOM) {
            begin += BOM.len();
        }
        let mut end = data.len();
        if has_nl {
            end -= 1;
            if end > begin && data[end - 1] == b'\r' {
                end -= 1;
            }
        }
        if cut_short || end - begin > MAX_RECORD_BYTES {
            data.truncate(start);
            if cut_short {
                skip_to_newline(&mut r).map_err(|e| (line_no, e))?;
            }
            spans.push(TOO_LONG);
        } else {
            // Keep only the record's bytes, so a chunk holds records back to back.
            data.truncate(end);
            data.drain(start..begin);
            spans.push((start as u32, data.len() as u32));
        }
        line_no += 1;
        if data.len() >= CHUNK_BYTES || spans.len() >= CHUNK_LINES {
            let chunk = Chunk::Lines {
                file,
                first_line,
                data: std::mem::replace(&mut data, Vec::with_capacity(CHUNK_BYTES + 4096)),
                spans: std::mem::replace(&mut spans, Vec::with_capacity(CHUNK_LINES)),
            };
            first_line = line_no;
            if tx.send(chunk).is_err() {
                return Ok(false);
            }
        }
    }
    if !spans.is_empty() {
        let sent = tx.send(Chunk::Lines {
            file,
            first_line,
            data,
            spans,
        });
        return Ok(sent.is_ok());
    }
    Ok(true)
}

fn skip_to_newline(r: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(p) = buf.iter().position(|&b| b == b'\n') {
            r.consume(p + 1);
            return Ok(());
        }
        let n = buf.len();
        r.consume(n);
    }
}

/// A Parquet call that may panic on corrupt data, as an error naming file and row.
fn parquet_guarded<T>(
    path: &Path,
    row: u64,
    f: impl FnOnce() -> Result<T, ProofError>,
) -> Result<T, ProofError> {
    contain_panics(f).unwrap_or_else(|why| {
        let place = if row == 0 {
            "Parquet footer or schema is corrupt".to_string()
        } else {
            format!("Parquet data is corrupt near row {row}")
        };
        Err(ProofError::Config {
            path: Location::at(path, row, 0),
            msg: format!(
                "{place}: the Parquet reader gave up ({why}); no report was written — \
                 re-export the file"
            ),
        })
    })
}

fn read_parquet(
    input: &Input,
    file: u32,
    tx: &SyncSender<Chunk>,
    bytes_read: &Arc<AtomicU64>,
    columns: Columns<'_>,
) -> Result<(), ProofError> {
    let path = &input.path;
    // The reader opens the file itself: compare by path, before and after.
    let unchanged = || -> Result<(), ProofError> {
        let Some(listed) = &input.stamp else {
            return Ok(());
        };
        let now = FileStamp::of(&std::fs::metadata(path).map_err(|e| ProofError::io(path, e))?);
        match changed_since(listed, &now, None) {
            Some(what) => Err(changed_error(path, &what)),
            None => Ok(()),
        }
    };
    unchanged()?;
    let builder = parquet_guarded(path, 0, || open_projected(path, columns))
        .map_err(|e| unchanged().err().unwrap_or(e))?;
    // The decoder reads column chunks, not a byte stream: progress advances by the
    // share of rows decoded, in bytes of the file, so the bar and its ETA move.
    let total_rows = builder.metadata().file_metadata().num_rows().max(1) as u64;
    let size = input.bytes.unwrap_or(0);
    let mut credited = 0u64;
    let mut reader = parquet_guarded(path, 0, || {
        builder
            .with_batch_size(PARQUET_BATCH)
            .build()
            .map_err(|e| parquet_error(path, e))
    })?;
    let mut first_row = 1;
    while let Some(batch) = parquet_guarded(path, first_row, || Ok(reader.next()))
        .map_err(|e| unchanged().err().unwrap_or(e))?
    {
        let batch = batch.map_err(|e| {
            unchanged().err().unwrap_or_else(|| ProofError::Config {
                path: Location::at(path, first_row, 0),
                msg: format!("Parquet data is truncated or corrupt near row {first_row}: {e}"),
            })
        })?;
        let n = batch.num_rows() as u64;
        let done = (size as u128 * (first_row - 1 + n).min(total_rows) as u128 / total_rows as u128)
            as u64;
        bytes_read.fetch_add(done.saturating_sub(credited), Ordering::Relaxed);
        credited = done;
        if tx
            .send(Chunk::Batch {
                file,
                first_row,
                batch,
            })
            .is_err()
        {
            return Ok(());
        }
        first_row += n;
    }
    unchanged()
}

/// A Parquet library error as a user-facing error.
pub fn parquet_error(path: &Path, e: impl std::fmt::Display) -> ProofError {
    ProofError::Schema {
        path: Location::file(path),
        msg: format!(
            "cannot read Parquet (truncated, still being written, or not Parquet at all): {e}"
        ),
    }
}

/// An engine's check of a Parquet schema: the root columns it reads, in schema order,
/// or what is wrong (`crate::engine::Engine::check_schema`).
pub type Columns<'a> = &'a (dyn Fn(&arrow::datatypes::Schema) -> Result<Vec<usize>, String> + Sync);

/// Opens a file, checks its schema with an engine's `columns` and projects the columns
/// it reads.
pub fn open_projected(
    path: &Path,
    columns: Columns<'_>,
) -> Result<ParquetRecordBatchReaderBuilder<File>, ProofError> {
    let builder = open_parquet(path)?;
    let roots = columns(builder.schema()).map_err(|msg| ProofError::Schema {
        path: Location::file(path),
        msg,
    })?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots.iter().copied());
    Ok(builder.with_projection(mask))
}

/// Opens a Parquet file for reading batches.
pub fn open_parquet(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, ProofError> {
    let open = || File::open(path).map_err(|e| ProofError::io(path, e));
    match ParquetRecordBatchReaderBuilder::try_new(open()?) {
        Ok(b) => Ok(b),
        // The Arrow schema writers embed (a flatbuffer in the `ARROW:schema` metadata)
        // can be nested past its decoder's depth limit — a context of 60 levels of
        // structs of lists is — while the file itself is fine (issue 24): read it
        // by its Parquet schema instead, which gives the same columns.
        Err(e) if e.to_string().contains("ARROW:schema") => {
            let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
            ParquetRecordBatchReaderBuilder::try_new_with_options(open()?, options).map_err(|e2| {
                ProofError::Schema {
                    path: Location::file(path),
                    msg: format!(
                        "cannot read the Parquet schema: the embedded Arrow schema is \
                         unreadable ({e}) and so is the Parquet one ({e2}); a context \
                         nested this deep is better stored as a JSON string"
                    ),
                }
            })
        }
        Err(e) => Err(parquet_error(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<Option<Vec<u8>>> {
        let (tx, rx) = std::sync::mpsc::sync_channel(100);
        read_lines(input, 0, &tx).unwrap();
        drop(tx);
        let mut out = Vec::new();
        for c in rx {
            let Chunk::Lines {
                data,
                spans,
                first_line,
                ..
            } = c
            else {
                panic!()
            };
            assert_eq!(first_line as usize, out.len() + 1);
            for s in spans {
                out.push((s != TOO_LONG).then(|| data[s.0 as usize..s.1 as usize].to_vec()));
            }
        }
        out
    }

    /// A valid file whose embedded Arrow schema is nested past the flatbuffer
    /// decoder's limit (60 levels of a struct holding a list) is read by its Parquet
    /// schema, not called truncated (issue 24, item 14).
    #[test]
    fn a_deeply_nested_parquet_context_is_read() {
        let mut nested = r#"{"x":[1,2]}"#.to_string();
        for _ in 0..59 {
            nested = format!(r#"{{"a":[{nested}]}}"#);
        }
        let line = format!(
            r#"{{"ts":"2026-11-02T00:00:00Z","request_id":"r-1","context":{{"k":{nested}}}}}"#
        );
        let (schema, _) =
            arrow::json::reader::infer_json_schema(std::io::Cursor::new(line.as_bytes()), None)
                .unwrap();
        let schema = Arc::new(schema);
        let batch = arrow::json::ReaderBuilder::new(schema.clone())
            .build(std::io::Cursor::new(line.as_bytes()))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep.parquet");
        let mut w =
            parquet::arrow::ArrowWriter::try_new(File::create(&path).unwrap(), schema, None)
                .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        // What the default reader says of it: the embedded schema is too deep.
        let plain = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap());
        assert!(plain.unwrap_err().to_string().contains("ARROW:schema"));
        let rows: usize = open_parquet(&path)
            .unwrap()
            .build()
            .unwrap()
            .map(|b| b.unwrap().num_rows())
            .sum();
        assert_eq!(rows, 1);
    }

    #[test]
    fn splits_lines_strips_bom_and_keeps_blank_lines_numbered() {
        let got = lines(b"\xEF\xBB\xBF{\"a\":1}\r\n\n{\"b\":2}");
        assert_eq!(
            got,
            [
                Some(b"{\"a\":1}".to_vec()),
                Some(Vec::new()),
                Some(b"{\"b\":2}".to_vec())
            ]
        );
    }

    #[test]
    fn over_long_line_is_marked_not_buffered() {
        let mut input = vec![b'x'; MAX_RECORD_BYTES + 10];
        input.extend_from_slice(b"\n{}\n");
        let got = lines(&input);
        assert_eq!(got, [None, Some(b"{}".to_vec())]);
    }

    #[test]
    fn the_limit_counts_record_bytes_not_bom_or_line_ending() {
        let rec = vec![b'x'; MAX_RECORD_BYTES];
        let with = |prefix: &[u8], body: &[u8], eol: &[u8]| {
            let mut v = prefix.to_vec();
            v.extend_from_slice(body);
            v.extend_from_slice(eol);
            v.extend_from_slice(b"{}");
            v.extend_from_slice(eol);
            v
        };
        let bom = b"\xEF\xBB\xBF";
        for (prefix, eol) in [
            (&b""[..], &b"\n"[..]),
            (bom, b"\n"),
            (b"", b"\r\n"),
            (bom, b"\r\n"),
        ] {
            let got = lines(&with(prefix, &rec, eol));
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].as_deref(), Some(&rec[..]), "exact limit is a record");
            assert_eq!(got[1].as_deref(), Some(&b"{}"[..]));
            let mut over = rec.clone();
            over.push(b'x');
            assert_eq!(
                lines(&with(prefix, &over, eol)),
                [None, Some(b"{}".to_vec())]
            );
        }
        // Over by more than the room for BOM and CRLF: cut short, the rest skipped.
        let long = vec![b'x'; MAX_RECORD_BYTES + 7];
        assert_eq!(
            lines(&with(bom, &long, b"\r\n")),
            [None, Some(b"{}".to_vec())]
        );
    }

    #[test]
    fn a_file_that_changed_since_it_was_listed_is_told_apart() {
        let t0 = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000);
        let listed = FileStamp {
            len: 1000,
            modified: Some(t0),
        };
        assert_eq!(changed_since(&listed, &listed, Some(1000)), None);
        assert_eq!(changed_since(&listed, &listed, None), None);
        // Truncated while read: it shrank and fewer bytes came out.
        let shrunk = FileStamp {
            len: 400,
            modified: Some(t0 + std::time::Duration::from_millis(3)),
        };
        assert_eq!(
            changed_since(&listed, &shrunk, Some(650)).as_deref(),
            Some(
                "its size went from 1000 to 400 bytes, 650 bytes were read of the 1000 listed, \
                 its modification time changed"
            )
        );
        // Rewritten to the same size: only the time tells.
        let rewritten = FileStamp {
            len: 1000,
            modified: Some(t0 + std::time::Duration::from_nanos(1)),
        };
        assert_eq!(
            changed_since(&listed, &rewritten, Some(1000)).as_deref(),
            Some("its modification time changed")
        );
        // Truncated and grown back within the clock's resolution: the byte count tells.
        assert_eq!(
            changed_since(&listed, &listed, Some(1200)).as_deref(),
            Some("1200 bytes were read of the 1000 listed")
        );
        let e = changed_error(Path::new("logs/a.jsonl"), "its size went from 1 to 0 bytes");
        assert!(
            e.to_string().starts_with(
                "logs/a.jsonl: the file changed while it was read (its size went from 1 to 0 \
                 bytes); no report was written"
            ),
            "{e}"
        );
    }

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
