//! JSONL streams (SPEC §4, §12): a file or standard input, plain, gzip (multi-member)
//! or zstd, split into line chunks with their line numbers, or read as a JSON array of
//! records (the upload body). A line longer than the record limit is never held in
//! memory whole.
//!
//! How lines are read: the stream (the file, or the decoder's output) is read in
//! 256 KiB blocks straight into the buffer of the chunk being filled; `memchr` finds
//! the newlines there and each line becomes a span of that buffer, without its BOM or
//! line ending (which stay between the spans). When the buffer holds `CHUNK_BYTES`, or
//! `CHUNK_LINES` lines have ended, the chunk is sent and only the unfinished line is
//! copied to a new buffer. So a plain file's bytes are copied once, by the kernel's
//! read, and a decoder writes into the chunk; short reads (pipes, decoders) are fine.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;

use super::{CHUNK_BYTES, CHUNK_LINES, Chunk, Compression, Input, TOO_LONG};
use super::{check_stamp, sniff_compression};
use crate::error::{Location, ProofError};
use crate::replay::record::MAX_RECORD_BYTES;

/// Bytes read from the underlying file: for the progress bar, and per file to check
/// that a file was read to the size it was listed with.
#[derive(Clone)]
struct Counters {
    total: Arc<AtomicU64>,
    this_file: Arc<AtomicU64>,
}

impl Counters {
    fn add(&self, n: usize) {
        self.total.fetch_add(n as u64, Ordering::Relaxed);
        self.this_file.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Counts the bytes read through it. Only where something else stands between the
/// file and the line reader (a decoder, standard input's sniffing): a `Read` that
/// implements only `read` makes std zero every block handed to it first, so a plain
/// file is counted by [`read_lines`] instead.
struct Counting<R> {
    inner: R,
    counters: Counters,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counters.add(n);
        Ok(n)
    }
}

/// Reads one JSONL input (a file or standard input) and sends its chunks; `Ok(false)`
/// when the receiver is gone. A regular file that changed while it was read (or since
/// it was listed) is an error.
pub(super) fn read_jsonl(
    input: &Input,
    file: u32,
    tx: &SyncSender<Chunk>,
    bytes_read: &Arc<AtomicU64>,
) -> Result<bool, ProofError> {
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
    let counters = Counters {
        total: bytes_read.clone(),
        this_file: this_file.clone(),
    };
    // A plain file's blocks go from the file straight into the chunks (`read_lines`
    // counts them); anything else is counted on its way in.
    let plain = !stdin && input.compression == Compression::None;
    let raw: Box<dyn Read + Send> = if plain {
        raw
    } else {
        Box::new(Counting {
            inner: raw,
            counters: counters.clone(),
        })
    };
    let mut counted = BufReader::with_capacity(64 * 1024, raw);
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
        if plain {
            let counted = Counting {
                inner: reader,
                counters,
            };
            return read_array(counted, input, file, tx);
        }
        return read_array(reader, input, file, tx);
    }
    // The lines are read in blocks straight into each chunk, past this buffer: only
    // what it already holds is copied out of it.
    let head = std::io::Cursor::new(reader.buffer().to_vec());
    let stream = head.chain(reader.into_inner());
    let count = plain.then_some(&counters);
    let whole = read_lines(stream, file, tx, count).map_err(|(line, e)| {
        // A stream cut short because the file shrank is told as that.
        if let Some(f) = &opened
            && let Err(changed) = check_stamp(&input.path, input.stamp.as_ref(), f, None)
        {
            return changed;
        }
        stream_error(input, compression, line, e)
    })?;
    if !whole {
        return Ok(false); // the receiver is gone: the run is ending anyway
    }
    if let Some(f) = &opened {
        // Plain files are read byte for byte to their end; a decoder may
        // stop short of trailing bytes, so only their stamp is compared.
        let read = (compression == Compression::None).then(|| this_file.load(Ordering::Relaxed));
        check_stamp(&input.path, input.stamp.as_ref(), f, read)?;
    }
    Ok(true)
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

/// Bytes asked of the stream by one read: large enough that a read is a few syscalls'
/// worth of work (and passes straight through the `BufReader`s beneath, whose buffers
/// are no larger), small enough that the block is still in this core's L2 cache while
/// its newlines are found.
const READ_BLOCK: usize = 256 * 1024;

/// Capacity of a fresh chunk buffer: a chunk is sent once it holds `CHUNK_BYTES`, so
/// there is always room for one more whole block before that.
const CHUNK_BUFFER: usize = CHUNK_BYTES + READ_BLOCK;

/// Splits a stream into line chunks. Errors carry the line number reached.
///
/// Blocks of the stream are read straight into the chunk's buffer and split there, with
/// `memchr`: the spans of a chunk index its buffer, which keeps each line's ending
/// (and the BOM) between the records. Only the unfinished last line of a chunk is
/// copied, to the start of the next chunk's buffer. A plain file is thus copied once,
/// by the kernel; a decoder writes its output into the chunk.
///
/// The 16 MiB limit (SPEC §4) applies to the record's bytes: a UTF-8 byte-order mark
/// at the start of the stream and the line ending (`\n` or `\r\n`) are not part of
/// the record, so they neither count against the limit nor stay in the span. At most
/// limit + BOM + CR bytes of an unfinished line (plus one block) are held; a line that
/// grows past that is `too_long`, and the rest of it is read block by block and
/// dropped until its newline.
fn read_lines(
    reader: impl Read,
    file: u32,
    tx: &SyncSender<Chunk>,
    count: Option<&Counters>,
) -> Result<bool, (u64, std::io::Error)> {
    let mut s = Splitter {
        file,
        tx,
        line_no: 1,
        first_line: 1,
        data: Vec::with_capacity(CHUNK_BUFFER),
        spans: Vec::with_capacity(CHUNK_LINES),
        line_start: 0,
        skipping: false,
    };
    let mut reader = reader;
    loop {
        s.make_room();
        // Into the buffer's spare capacity, which `read_to_end` hands to the reader
        // without zeroing it first (a plain file writes into it directly); it retries
        // interrupted reads and stops after one block or at the end of the stream. What
        // it read before an error is split first, so the error names the line reached.
        let scan = s.data.len();
        let read = reader
            .by_ref()
            .take(READ_BLOCK as u64)
            .read_to_end(&mut s.data);
        if let Some(c) = count {
            c.add(s.data.len() - scan);
        }
        if !s.split(scan) {
            return Ok(false);
        }
        s.bound_unfinished_line();
        match read {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err((s.line_no, e)),
        }
        if s.data.len() >= CHUNK_BYTES && !s.spans.is_empty() && !s.send() {
            return Ok(false);
        }
    }
    // The last line may have no newline.
    if s.skipping || s.line_start < s.data.len() {
        s.end_line(s.data.len(), false);
    }
    if !s.spans.is_empty() {
        return Ok(s.send());
    }
    Ok(true)
}

/// The state of [`read_lines`]: the chunk being filled and the line being read.
struct Splitter<'a> {
    file: u32,
    tx: &'a SyncSender<Chunk>,
    /// Number of the line being read (the next span's).
    line_no: u64,
    /// Number of the chunk's first line.
    first_line: u64,
    /// The chunk's buffer: what was read so far; its spare capacity is room for the
    /// next block.
    data: Vec<u8>,
    spans: Vec<(u32, u32)>,
    /// Where the unfinished line starts in `data`.
    line_start: usize,
    /// The unfinished line is over-long: its bytes are dropped until its newline.
    skipping: bool,
}

impl Splitter<'_> {
    const BOM: &'static [u8] = b"\xEF\xBB\xBF";

    /// Makes room for one block after what was read (capacity, not zeroed bytes: see
    /// `read_lines`). Only an unfinished line longer than a chunk outgrows the
    /// buffer's capacity (a chunk is sent once it holds `CHUNK_BYTES`); then it grows,
    /// up to the longest line held (see `bound_unfinished_line`) plus a block or two.
    fn make_room(&mut self) {
        let len = self.data.len() + READ_BLOCK;
        if len > self.data.capacity() {
            let most = MAX_RECORD_BYTES + Self::BOM.len() + 1 + 2 * READ_BLOCK;
            let cap = (2 * self.data.capacity()).min(most).max(len);
            self.data.reserve_exact(cap - self.data.len());
        }
    }

    /// Splits the lines ended by newlines in `data[scan..]`; `false` when the
    /// receiver is gone.
    fn split(&mut self, mut scan: usize) -> bool {
        while let Some(i) = memchr::memchr(b'\n', &self.data[scan..]) {
            let nl = scan + i;
            self.end_line(nl, true);
            scan = nl + 1;
            if self.spans.len() >= CHUNK_LINES {
                if !self.send() {
                    return false;
                }
                scan = 0; // the rest of the block now starts the new buffer
            }
        }
        true
    }

    /// Ends the unfinished line at `end` (its newline, or the end of the stream).
    fn end_line(&mut self, end: usize, newline: bool) {
        if self.skipping {
            self.skipping = false;
            self.spans.push(TOO_LONG);
        } else {
            let mut begin = self.line_start;
            if self.line_no == 1 && self.data[begin..end].starts_with(Self::BOM) {
                begin += Self::BOM.len();
            }
            let mut stop = end;
            if newline && stop > begin && self.data[stop - 1] == b'\r' {
                stop -= 1;
            }
            self.spans.push(if stop - begin > MAX_RECORD_BYTES {
                TOO_LONG
            } else {
                (begin as u32, stop as u32)
            });
        }
        self.line_no += 1;
        self.line_start = if newline { end + 1 } else { end };
    }

    /// Drops the unfinished line once it is certainly over the limit: longer than a
    /// record, the BOM and a CR. Its bytes up to its newline are then dropped as they
    /// are read, so the read goes on into the same room.
    fn bound_unfinished_line(&mut self) {
        let bom = if self.line_no == 1 {
            Self::BOM.len()
        } else {
            0
        };
        if self.skipping || self.data.len() - self.line_start > MAX_RECORD_BYTES + bom + 1 {
            self.skipping = true;
            self.data.truncate(self.line_start);
        }
    }

    /// Sends the finished lines as a chunk and moves the unfinished line to the start
    /// of a new buffer; `false` when the receiver is gone.
    fn send(&mut self) -> bool {
        let carry = self.data.len() - self.line_start;
        let mut next = Vec::with_capacity(CHUNK_BUFFER.max(carry + READ_BLOCK));
        next.extend_from_slice(&self.data[self.line_start..]);
        let mut data = std::mem::replace(&mut self.data, next);
        data.truncate(self.line_start);
        let chunk = Chunk::Lines {
            file: self.file,
            first_line: self.first_line,
            data,
            spans: std::mem::replace(&mut self.spans, Vec::with_capacity(CHUNK_LINES)),
        };
        self.first_line = self.line_no;
        self.line_start = 0;
        self.tx.send(chunk).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<Option<Vec<u8>>> {
        lines_of(input)
    }

    /// The lines read from `reader`, checking each chunk's first line number and size.
    fn lines_of(reader: impl Read) -> Vec<Option<Vec<u8>>> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1000);
        assert!(read_lines(reader, 0, &tx, None).unwrap());
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
            assert!(!spans.is_empty() && spans.len() <= CHUNK_LINES);
            let held = spans.iter().filter(|s| **s != TOO_LONG);
            assert!(held.map(|s| s.1 - s.0).max().unwrap_or(0) as usize <= MAX_RECORD_BYTES);
            for s in spans {
                out.push((s != TOO_LONG).then(|| data[s.0 as usize..s.1 as usize].to_vec()));
            }
        }
        out
    }

    /// The lines of `input` as the SPEC reads them: split at `\n`, a CR before it and
    /// the BOM of line 1 dropped, no line after a final newline.
    fn expected(input: &[u8]) -> Vec<Option<Vec<u8>>> {
        let body = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
        let mut parts: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
        if parts.last().is_some_and(|p| p.is_empty()) {
            parts.pop();
        }
        let n = parts.len();
        parts
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let ended = i + 1 < n || body.ends_with(b"\n");
                let p = if ended {
                    p.strip_suffix(b"\r").unwrap_or(p)
                } else {
                    p
                };
                (p.len() <= MAX_RECORD_BYTES).then(|| p.to_vec())
            })
            .collect()
    }

    /// A stream that hands out at most `step` bytes a read, and `fail` once its bytes
    /// are out when set (a truncated compressed stream).
    struct Trickle<'a> {
        rest: &'a [u8],
        step: usize,
        fail: bool,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.rest.is_empty() && self.fail {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "cut",
                ));
            }
            let n = self.step.min(buf.len()).min(self.rest.len());
            buf[..n].copy_from_slice(&self.rest[..n]);
            self.rest = &self.rest[n..];
            Ok(n)
        }
    }

    fn trickle(rest: &[u8], step: usize) -> Trickle<'_> {
        Trickle {
            rest,
            step,
            fail: false,
        }
    }

    /// Records of `len` bytes (`len` ≥ 2) with the line ending `eol`, up to `total` bytes.
    fn records(len: usize, eol: &[u8], total: usize) -> Vec<u8> {
        let mut v = Vec::new();
        let mut i = 0u64;
        while v.len() < total {
            let mut rec = format!("{{{i}");
            rec.extend(std::iter::repeat_n('x', len.saturating_sub(rec.len() + 1)));
            rec.push('}');
            v.extend_from_slice(rec.as_bytes());
            v.extend_from_slice(eol);
            i += 1;
        }
        v
    }

    #[test]
    fn lines_crossing_blocks_and_chunks_are_whole_and_numbered() {
        // Record lengths that do not divide the block, so lines straddle every block
        // and chunk boundary; one with CRLF.
        for (len, eol) in [(473, &b"\n"[..]), (1000, b"\r\n"), (READ_BLOCK + 17, b"\n")] {
            let input = records(len, eol, 3 * CHUNK_BUFFER + 5);
            let got = lines(&input);
            assert_eq!(got, expected(&input), "len {len}");
        }
        // A line ending exactly at a block's end, and one ending in its first byte.
        for len in [READ_BLOCK - 1, READ_BLOCK] {
            let input = records(len, b"\n", 2 * READ_BLOCK + 2);
            assert_eq!(lines(&input), expected(&input), "len {len}");
        }
    }

    #[test]
    fn a_crlf_split_across_blocks_is_one_line_ending() {
        // '\r' is the last byte of the first block, '\n' the first of the next.
        let mut input = vec![b'x'; READ_BLOCK - 1];
        input.extend_from_slice(b"\r\n{}\r\n");
        let got = lines(&input);
        assert_eq!(
            got,
            [Some(vec![b'x'; READ_BLOCK - 1]), Some(b"{}".to_vec())]
        );
        // A lone CR at the very end (no newline) stays in the record, as before.
        assert_eq!(
            lines(b"{}\r\n\r"),
            [Some(b"{}".to_vec()), Some(b"\r".to_vec())]
        );
    }

    #[test]
    fn a_stream_read_one_byte_at_a_time_splits_the_same() {
        let mut input = b"\xEF\xBB\xBF{\"a\":1}\r\n\n\r\n  \n{\"b\":2}\r\n".to_vec();
        input.extend_from_slice(&records(300, b"\r\n", 20_000));
        input.extend_from_slice(b"{\"last\":true}");
        let want = expected(&input);
        assert_eq!(
            want[..3],
            [Some(b"{\"a\":1}".to_vec()), Some(vec![]), Some(vec![])]
        );
        assert_eq!(lines_of(trickle(&input, 1)), want);
        assert_eq!(lines_of(trickle(&input, 7)), want);
        // The BOM split over reads too, and a stream of only a BOM.
        assert_eq!(
            lines_of(trickle(b"\xEF\xBB\xBF{}", 1)),
            [Some(b"{}".to_vec())]
        );
        assert_eq!(lines_of(trickle(b"\xEF\xBB\xBF", 1)), [Some(vec![])]);
        assert!(lines_of(trickle(b"", 1)).is_empty());
    }

    #[test]
    fn an_over_long_line_over_many_blocks_is_dropped_and_the_next_keeps_its_number() {
        let mut input = b"{}\n\n".to_vec();
        input.extend(std::iter::repeat_n(
            b'x',
            MAX_RECORD_BYTES + 3 * READ_BLOCK + 5,
        ));
        input.extend_from_slice(b"\r\n{\"a\":1}\n");
        input.extend(std::iter::repeat_n(b'y', MAX_RECORD_BYTES + 1)); // last, no newline
        let want = [
            Some(b"{}".to_vec()),
            Some(vec![]),
            None,
            Some(b"{\"a\":1}".to_vec()),
            None,
        ];
        assert_eq!(lines(&input), want);
        assert_eq!(lines_of(trickle(&input, 4093)), want);
        // Line 3 was never held: no buffer grew past a record plus some blocks. (Line 5
        // is, being one byte over: a line is dropped once it is certainly over.)
        let (tx, rx) = std::sync::mpsc::sync_channel(1000);
        read_lines(&input[..], 0, &tx, None).unwrap();
        drop(tx);
        for c in rx {
            let Chunk::Lines { data, .. } = c else {
                panic!()
            };
            assert!(data.capacity() <= MAX_RECORD_BYTES + 3 * READ_BLOCK);
        }
    }

    #[test]
    fn chunks_hold_at_most_chunk_lines_lines() {
        // Blank lines: the line count, not the bytes, ends each chunk.
        let input = vec![b'\n'; 3 * CHUNK_LINES + 1];
        let (tx, rx) = std::sync::mpsc::sync_channel(1000);
        read_lines(&input[..], 0, &tx, None).unwrap();
        drop(tx);
        let sizes: Vec<(u64, usize)> = rx
            .into_iter()
            .map(|c| match c {
                Chunk::Lines {
                    first_line, spans, ..
                } => (first_line, spans.len()),
                Chunk::Batch { .. } => panic!(),
            })
            .collect();
        let n = CHUNK_LINES as u64;
        assert_eq!(
            sizes,
            [
                (1, CHUNK_LINES),
                (n + 1, CHUNK_LINES),
                (2 * n + 1, CHUNK_LINES),
                (3 * n + 1, 1)
            ]
        );
    }

    #[test]
    fn a_read_error_names_the_line_reached() {
        let input = records(100, b"\n", 3 * CHUNK_BUFFER);
        for cut in [0, 50, 101, input.len() / 2, input.len()] {
            let (tx, _rx) = std::sync::mpsc::sync_channel(1000);
            let r = Trickle {
                rest: &input[..cut],
                step: 5000,
                fail: true,
            };
            let (line, e) = read_lines(r, 0, &tx, None).unwrap_err();
            let done = input[..cut].iter().filter(|&&b| b == b'\n').count() as u64;
            assert_eq!(line, done + 1, "cut at {cut}");
            assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
        }
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
}
