//! JSONL streams (SPEC §4, §12): a file or standard input, plain, gzip (multi-member)
//! or zstd, split into line chunks with their line numbers, or read as a JSON array of
//! records (the upload body). A line longer than the record limit is never held in
//! memory whole.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;

use super::{CHUNK_BYTES, CHUNK_LINES, Chunk, Compression, Input, TOO_LONG};
use super::{check_stamp, sniff_compression};
use crate::error::{Location, ProofError};
use crate::replay::record::MAX_RECORD_BYTES;

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
        return read_array(reader, input, file, tx);
    }
    let whole = read_lines(reader, file, tx).map_err(|(line, e)| {
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

/// Splits a stream into line chunks. Errors carry the line number reached.
///
/// The 16 MiB limit (SPEC §4) applies to the record's bytes: a UTF-8 byte-order mark
/// at the start of the stream and the line ending (`\n` or `\r\n`) are not part of
/// the record, so they neither count against the limit nor stay in the span. At most
/// limit + BOM + CRLF bytes of one line are held; a longer line is `too_long` and the
/// rest of it is skipped unread.
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
