//! Reading the files a run is configured with — IR, lists, weights, access maps,
//! contexts, reports — as opposed to the logs (`replay::source`) and the outputs
//! (`report::writer`).
//!
//! Every read is bounded: [`read_limited`] reads at most the file kind's [`Limit`] + 1
//! bytes, so `/dev/zero` or a wrong path to a multi-gigabyte log is an exit-2 error
//! naming the file and the limit, never an allocation failure.
//!
//! A [`FileSet`] reads each path once and fingerprints exactly the bytes it handed
//! out: a pipe (`--list sanctions=<(cat s.csv)`) has no second read, so what is
//! hashed is what is loaded. Hot reload reads through a set in reload mode: regular
//! files only, opened without blocking (a FIFO put in a watched path is that reload's
//! error, not a hang), and what was not a regular file at start is served from the
//! bytes read then ([`Pinned`]). [`stamp`] is the cheap check that comes first: file
//! metadata only, so an unchanged file is not read again.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::{File, Metadata};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::error::{Location, ProofError};

/// The size limit of one kind of input file.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Most bytes read.
    pub bytes: u64,
    /// What the file is, as the message says it ("IR file").
    pub what: &'static str,
    /// Where the limit is set and why it is where it is (for the message).
    pub why: &'static str,
}

impl Limit {
    /// The error for a file of `size` bytes (`None`: more than the limit, from a
    /// stream whose size was unknown).
    pub fn exceeded(&self, path: &Path, size: Option<u64>) -> ProofError {
        let size = match size {
            Some(n) => n.to_string(),
            None => format!("more than {}", self.bytes),
        };
        let mib = match self.bytes >> 20 {
            0 => String::new(),
            m => format!("{m} MiB, "),
        };
        ProofError::Limit {
            path: Location::file(path),
            msg: format!(
                "{} is {size} bytes; the limit is {} bytes ({mib}{})",
                self.what, self.bytes, self.why
            ),
        }
    }
}

/// SHA-256 of what a set of files held (or of their metadata, for [`stamp`]).
pub type Fingerprint = [u8; 32];

/// Reads `path` whole, at most `limit.bytes`; a larger file or stream is
/// [`ProofError::Limit`] naming the file and the limit. A regular file over the
/// limit is refused before a byte is read.
pub fn read_limited(path: &Path, limit: Limit) -> Result<Vec<u8>, ProofError> {
    let f = File::open(path).map_err(|e| ProofError::io(path, e))?;
    let meta = f.metadata().map_err(|e| ProofError::io(path, e))?;
    read_open(f, &meta, path, limit)
}

fn read_open(f: File, meta: &Metadata, path: &Path, limit: Limit) -> Result<Vec<u8>, ProofError> {
    if meta.is_file() && meta.len() > limit.bytes {
        return Err(limit.exceeded(path, Some(meta.len())));
    }
    let hint = if meta.is_file() { meta.len() } else { 0 };
    let mut bytes = Vec::with_capacity(hint as usize);
    f.take(limit.bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ProofError::io(path, e))?;
    if bytes.len() as u64 > limit.bytes {
        return Err(limit.exceeded(path, None));
    }
    Ok(bytes)
}

/// Files that were not regular files when first read (pipes, `/dev/fd/N`, devices):
/// they cannot be read again, so their first bytes stand for them from then on.
pub type Pinned = Arc<BTreeMap<PathBuf, Arc<Vec<u8>>>>;

/// How a [`FileSet`] opens files.
#[derive(Debug, Clone)]
enum Mode {
    /// At start: any file, read once (blocking on a pipe until its writer is done).
    Start,
    /// During hot reload: regular files only, opened without blocking; pinned paths
    /// are served from memory.
    Reload(Pinned),
}

/// Files read at most once each, in the order first asked for.
#[derive(Debug)]
pub struct FileSet {
    mode: Mode,
    read: RefCell<Vec<Entry>>,
}

#[derive(Debug)]
struct Entry {
    path: PathBuf,
    bytes: Arc<Vec<u8>>,
    /// Not a regular file: cannot be read again.
    stream: Option<&'static str>,
}

impl Default for FileSet {
    fn default() -> Self {
        FileSet::new()
    }
}

impl FileSet {
    /// A set for a first load: any kind of file, each read once.
    pub fn new() -> Self {
        FileSet {
            mode: Mode::Start,
            read: RefCell::new(Vec::new()),
        }
    }

    /// A set for hot reload: regular files only, never blocking; `pinned` paths give
    /// the bytes read at start.
    pub fn for_reload(pinned: Pinned) -> Self {
        FileSet {
            mode: Mode::Reload(pinned),
            read: RefCell::new(Vec::new()),
        }
    }

    /// The bytes of `path`: read (bounded by `limit`) the first time, the same bytes
    /// every later time.
    pub fn read(&self, path: &Path, limit: Limit) -> Result<Arc<Vec<u8>>, ProofError> {
        if let Some(e) = self.read.borrow().iter().find(|e| e.path == path) {
            return Ok(e.bytes.clone());
        }
        let (bytes, stream) = match &self.mode {
            Mode::Reload(pinned) => match pinned.get(path) {
                Some(b) => (b.clone(), None),
                None => (Arc::new(read_regular_nonblocking(path, limit)?), None),
            },
            Mode::Start => {
                let f = File::open(path).map_err(|e| ProofError::io(path, e))?;
                let meta = f.metadata().map_err(|e| ProofError::io(path, e))?;
                let stream = (!meta.is_file()).then(|| kind(&meta));
                (Arc::new(read_open(f, &meta, path, limit)?), stream)
            }
        };
        self.read.borrow_mut().push(Entry {
            path: path.to_path_buf(),
            bytes: bytes.clone(),
            stream,
        });
        Ok(bytes)
    }

    /// SHA-256 over the paths and bytes handed out, in the order first read.
    pub fn fingerprint(&self) -> Fingerprint {
        let mut h = Sha256::new();
        for e in self.read.borrow().iter() {
            let os = e.path.as_os_str().as_encoded_bytes();
            h.update((os.len() as u64).to_be_bytes());
            h.update(os);
            h.update((e.bytes.len() as u64).to_be_bytes());
            h.update(e.bytes.as_slice());
        }
        h.finalize().into()
    }

    /// The files read that were not regular files, with what they were ("a FIFO"),
    /// in the order read.
    pub fn streams(&self) -> Vec<(PathBuf, &'static str)> {
        self.read
            .borrow()
            .iter()
            .filter_map(|e| e.stream.map(|k| (e.path.clone(), k)))
            .collect()
    }

    /// The set's pinned files: those of a reload set, or, for a first load, the
    /// files read that were not regular files.
    pub fn pinned(&self) -> Pinned {
        match &self.mode {
            Mode::Reload(p) => p.clone(),
            Mode::Start => Arc::new(
                self.read
                    .borrow()
                    .iter()
                    .filter(|e| e.stream.is_some())
                    .map(|e| (e.path.clone(), e.bytes.clone()))
                    .collect(),
            ),
        }
    }
}

/// What a non-regular file is, for messages.
fn kind(meta: &Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_fifo() {
        "a FIFO (pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Reads a regular file for hot reload. A path that is something else is an error
/// before it is opened; the file is opened with `O_NONBLOCK` and checked again on the
/// open descriptor, so a FIFO swapped in between cannot block the reload either.
fn read_regular_nonblocking(path: &Path, limit: Limit) -> Result<Vec<u8>, ProofError> {
    let not_regular = |meta: &Metadata| {
        ProofError::config(
            path,
            0,
            format!(
                "is {}, not a regular file; hot reload reads regular files only \
                 (replace the file with a regular one; the version in force is kept)",
                kind(meta)
            ),
        )
    };
    let meta = std::fs::metadata(path).map_err(|e| ProofError::io(path, e))?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    let f = opts.open(path).map_err(|e| ProofError::io(path, e))?;
    let meta = f.metadata().map_err(|e| ProofError::io(path, e))?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    read_open(f, &meta, path, limit)
}

/// SHA-256 over the metadata of `paths` (device, inode, size, modification and
/// change times of regular files; the kind of anything else; the error of a path
/// that cannot be looked up): what hot reload compares before reading anything.
/// Nothing is opened, so a FIFO cannot block it.
pub fn stamp<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Fingerprint {
    use std::os::unix::fs::MetadataExt;
    let mut h = Sha256::new();
    for p in paths {
        let os = p.as_os_str().as_encoded_bytes();
        h.update((os.len() as u64).to_be_bytes());
        h.update(os);
        match std::fs::metadata(p) {
            Ok(m) if m.is_file() => {
                h.update([1]);
                for v in [
                    m.dev(),
                    m.ino(),
                    m.len(),
                    m.mtime() as u64,
                    m.mtime_nsec() as u64,
                    m.ctime() as u64,
                    m.ctime_nsec() as u64,
                ] {
                    h.update(v.to_be_bytes());
                }
            }
            // A pipe's times change as it is written: only its kind counts.
            Ok(m) => {
                h.update([2]);
                h.update(kind(&m).as_bytes());
            }
            Err(e) => {
                h.update([0]);
                h.update(e.kind().to_string().as_bytes());
            }
        }
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: Limit = Limit {
        bytes: 8,
        what: "test file",
        why: "a test",
    };

    #[test]
    fn reads_are_bounded_for_files_and_devices() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"12345678").unwrap();
        assert_eq!(read_limited(&p, TINY).unwrap(), b"12345678");
        std::fs::write(&p, b"123456789").unwrap();
        let e = read_limited(&p, TINY).unwrap_err().to_string();
        assert!(
            e.contains("test file is 9 bytes; the limit is 8 bytes"),
            "{e}"
        );
        let e = read_limited(Path::new("/dev/zero"), TINY)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/dev/zero: test file is more than 8 bytes; the limit is 8 bytes (a test)"
        );
    }

    #[test]
    fn a_set_reads_each_path_once_and_fingerprints_what_it_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"one").unwrap();
        let set = FileSet::new();
        assert_eq!(*set.read(&p, TINY).unwrap(), b"one");
        std::fs::write(&p, b"two").unwrap();
        // The same path again: the bytes already read, not the file's new ones.
        assert_eq!(*set.read(&p, TINY).unwrap(), b"one");
        let again = FileSet::new();
        again.read(&p, TINY).unwrap();
        assert_ne!(set.fingerprint(), again.fingerprint());
        assert!(set.streams().is_empty() && set.pinned().is_empty());
    }

    #[test]
    fn reload_refuses_a_fifo_without_blocking_and_serves_pinned_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let ok = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(ok.success());
        // No writer: opening it for reading would block; reload must not.
        let set = FileSet::for_reload(Arc::default());
        let e = set.read(&fifo, TINY).unwrap_err().to_string();
        assert!(e.contains("is a FIFO (pipe), not a regular file"), "{e}");
        let pinned: Pinned = Arc::new([(fifo.clone(), Arc::new(b"kept".to_vec()))].into());
        let set = FileSet::for_reload(pinned);
        assert_eq!(*set.read(&fifo, TINY).unwrap(), b"kept");
    }

    #[test]
    fn stamp_changes_with_metadata_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"one").unwrap();
        let a = stamp([p.as_path()]);
        assert_eq!(a, stamp([p.as_path()]));
        // Replaced as an operator should (write a sibling, rename): a new inode.
        let tmp = dir.path().join("f.tmp");
        std::fs::write(&tmp, b"one").unwrap();
        std::fs::rename(&tmp, &p).unwrap();
        assert_ne!(a, stamp([p.as_path()]));
        std::fs::remove_file(&p).unwrap();
        let gone = stamp([p.as_path()]);
        assert_eq!(gone, stamp([p.as_path()]));
    }
}
