//! The one place outputs touch the disk.
//!
//! A single file ([`write_atomic`]) goes to a temporary file beside the target, is
//! flushed and renamed over it. An output directory ([`OutputDir::lock`], then
//! `report::write_outputs`) is written as a whole: the new set goes into a fresh
//! sibling directory that is swapped with the old one in one step
//! (`renameat2(RENAME_EXCHANGE)` on Linux), so a reader or a killed run sees the old
//! set or the new set, never a mix. The directory is locked for the whole run (a
//! second run into it exits 2 at once, naming the holder's pid), and what a killed run
//! left beside it is cleared by the next one. Signals are not handled here: see
//! [`crate::signals`].

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::ProofError;
use crate::signals::{forget_on_interrupt, remove_on_interrupt, uninterrupted};

/// Writes `bytes` to `path` atomically (temp file in the same directory + rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ProofError> {
    uninterrupted(|| write_atomic_now(path, bytes))
}

fn write_atomic_now(path: &Path, bytes: &[u8]) -> Result<(), ProofError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".proof-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| ProofError::io(dir, e))?;
    set_readable(tmp.as_file());
    tmp.write_all(bytes).map_err(|e| ProofError::io(path, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| ProofError::io(path, e))?;
    tmp.persist(path)
        .map_err(|e| ProofError::io(path, e.error))?;
    Ok(())
}

/// Temp files are created 0600; outputs are for sharing, so give them the usual 0644.
pub fn set_readable(f: &File) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = f.set_permissions(std::fs::Permissions::from_mode(0o644));
    }
    #[cfg(not(unix))]
    let _ = f;
}

/// How a killed run's leftover new set is told from an old set it swapped out: beside
/// the new set's directory, while it is written and swapped, lies an empty file
/// `.NAME.proof-PID.new-INODE.tmp` naming that directory's inode. A leftover directory
/// with a named inode is a new set (removed whole); any other holds an old set (cleared).
/// The mark is never inside the set, so the directory holds exactly the old set or the
/// new one at every instant, even under SIGKILL.
const NEW_INODE: &str = ".new-";

/// The mark inside a new set written by earlier versions, still recognised in leftovers.
const NEW_MARK: &str = ".proof-new";

/// An output directory, resolved: the directory itself (symlinks followed, made
/// absolute) and where its lock and temporaries live.
#[derive(Debug, Clone)]
pub struct OutputDir {
    /// The path as given, for messages.
    given: PathBuf,
    /// The directory (it may not exist yet).
    dir: PathBuf,
    /// Its parent, which holds the lock file and the temporaries.
    parent: PathBuf,
    /// Its file name.
    name: OsString,
}

/// An output directory held by this run: no other `proof` run writes into it until
/// this is dropped. The lock is `.NAME.proof.lock` beside the directory (the directory
/// itself is swapped, so it cannot hold the lock); it holds the pid and is removed
/// when the run ends.
#[derive(Debug)]
pub struct OutputLock {
    out: OutputDir,
    lock_path: PathBuf,
    _file: File,
}

/// Refuses (exit 2) an output that would overwrite or remove an input, before any
/// input is read: a file output (`--partial-out`, `--drift-details`) that is an input
/// file — the same path once canonicalised, or the same device and inode (a symlink or
/// hard link to it) — or a file inside an input directory; a directory output (`--out`,
/// replaced as a whole) that holds an input. `outputs` are `(flag, path)`; inputs that
/// do not exist (or `-`) are left to the reader to report.
pub fn refuse_clobber(outputs: &[(&str, &Path)], inputs: &[PathBuf]) -> Result<(), ProofError> {
    use std::os::unix::fs::MetadataExt;
    let inputs: Vec<(PathBuf, std::fs::Metadata)> = inputs
        .iter()
        .filter(|p| p.as_os_str() != "-")
        .filter_map(|p| Some((std::fs::canonicalize(p).ok()?, std::fs::metadata(p).ok()?)))
        .collect();
    for &(flag, out) in outputs {
        let Ok(meta) = std::fs::metadata(out) else {
            continue; // nothing there yet: nothing to overwrite
        };
        let Ok(canon) = std::fs::canonicalize(out) else {
            continue;
        };
        let hit = inputs.iter().find(|(p, m)| {
            if meta.is_dir() {
                p.starts_with(&canon)
            } else {
                *p == canon
                    || (m.dev(), m.ino()) == (meta.dev(), meta.ino())
                    || (m.is_dir() && canon.starts_with(p))
            }
        });
        if let Some((p, _)) = hit {
            let what = if meta.is_dir() {
                "holds the input"
            } else if canon.starts_with(p) && canon != *p {
                "is inside the input directory"
            } else {
                "is the input"
            };
            return Err(usage(format!(
                "{flag} {}: {what} {}; writing it would destroy what this run reads. \
                 Give the output another path; nothing was read or written",
                out.display(),
                p.display()
            )));
        }
    }
    Ok(())
}

/// What kind of non-directory `meta` is, for messages.
fn kind(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if meta.is_file() {
        "a regular file"
    } else {
        "not a directory"
    }
}

fn usage(msg: String) -> ProofError {
    ProofError::Usage(msg)
}

impl OutputDir {
    /// Resolves `path`, locks it for this run, clears what killed runs left beside it
    /// and checks that a new set can be created there, all before any input is read.
    ///
    /// Errors (exit 2): `path` exists and is not a directory (a file, `/dev/null`), is
    /// the current directory or holds it, another run holds it (its pid is named), or
    /// its parent is not writable.
    pub fn lock(path: &Path) -> Result<OutputLock, ProofError> {
        let out = OutputDir::resolve(path)?;
        let lock_path = out.sibling("proof.lock");
        let file = take_lock(&out, &lock_path)?;
        let lock = OutputLock {
            out,
            lock_path,
            _file: file,
        };
        // Holding the lock, nothing else writes here: any temporary is a dead run's.
        lock.clear_stale()?;
        lock.probe()?;
        Ok(lock)
    }

    fn resolve(path: &Path) -> Result<OutputDir, ProofError> {
        let expected = "--out takes a directory (created if missing) for report.json, \
                        windows.csv, metrics.om, report.html, report.md and junit.xml";
        if path.as_os_str().is_empty() {
            return Err(usage(format!("--out '': empty path; {expected}")));
        }
        let dir = match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                std::fs::canonicalize(path).map_err(|e| ProofError::io(path, e))?
            }
            Ok(meta) => {
                return Err(usage(format!(
                    "--out {}: exists and is {}, not a directory; {expected}",
                    path.display(),
                    kind(&meta)
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if std::fs::symlink_metadata(path).is_ok() {
                    return Err(usage(format!(
                        "--out {}: a symlink to nothing; {expected}",
                        path.display()
                    )));
                }
                let parent = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                std::fs::create_dir_all(parent).map_err(|e| ProofError::io(parent, e))?;
                let name = path.file_name().ok_or_else(|| {
                    usage(format!(
                        "--out {}: no directory name; {expected}",
                        path.display()
                    ))
                })?;
                std::fs::canonicalize(parent)
                    .map_err(|e| ProofError::io(parent, e))?
                    .join(name)
            }
            Err(e) => return Err(ProofError::io(path, e)),
        };
        if let Ok(cwd) = std::env::current_dir().and_then(std::fs::canonicalize)
            && cwd.starts_with(&dir)
        {
            return Err(usage(format!(
                "--out {}: is the current directory or holds it; proof replaces its output \
                 directory as a whole on every run, so give it a directory of its own \
                 (such as --out out)",
                path.display()
            )));
        }
        let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
            return Err(usage(format!(
                "--out {}: the root directory cannot be replaced; {expected}",
                path.display()
            )));
        };
        Ok(OutputDir {
            given: path.to_path_buf(),
            parent: parent.to_path_buf(),
            name: name.to_os_string(),
            dir,
        })
    }

    /// `PARENT/.NAME.SUFFIX`: a file beside the directory that belongs to it.
    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut n = OsString::from(".");
        n.push(&self.name);
        n.push(".");
        n.push(suffix);
        self.parent.join(n)
    }

    /// Whether `file_name` is one of this directory's temporaries (`.NAME.proof-*.tmp`).
    fn is_temporary(&self, file_name: &OsStr) -> bool {
        let mut prefix = OsString::from(".");
        prefix.push(&self.name);
        prefix.push(".proof-");
        let (Some(f), Some(p)) = (file_name.to_str(), prefix.to_str()) else {
            return false;
        };
        f.starts_with(p) && f.ends_with(".tmp")
    }
}

/// Opens and locks `lock_path` (retrying if another run removed the file between our
/// open and our lock, so two runs can never lock two different files of one name).
fn take_lock(out: &OutputDir, lock_path: &Path) -> Result<File, ProofError> {
    for _ in 0..100 {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(lock_path)
            .map_err(|e| {
                usage(format!(
                    "--out {}: cannot create the lock file {} ({e}); the directory that \
                     holds the output directory must be writable",
                    out.given.display(),
                    lock_path.display()
                ))
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                let holder = if pid.is_empty() {
                    "pid not yet written".to_string()
                } else {
                    format!("pid {pid}")
                };
                return Err(usage(format!(
                    "--out {}: another proof run is writing there ({holder}, lock {}); \
                     wait for it to finish or give another --out",
                    out.given.display(),
                    lock_path.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(ProofError::io(lock_path, e)),
        }
        if same_file(&file, lock_path) {
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| writeln!(file, "{}", std::process::id()))
                .map_err(|e| ProofError::io(lock_path, e))?;
            remove_on_interrupt(lock_path);
            return Ok(file);
        }
        // The holder removed the file as we opened it: lock the one there now.
    }
    Err(usage(format!(
        "--out {}: could not take the lock {} (it keeps being replaced)",
        out.given.display(),
        lock_path.display()
    )))
}

/// Whether the open `file` is the one at `path` now.
fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        path.exists()
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Removed while still locked: a run that opened it meanwhile sees the file is
        // gone when it checks after locking, and locks a fresh one.
        let _ = std::fs::remove_file(&self.lock_path);
        forget_on_interrupt(&self.lock_path);
    }
}

impl OutputLock {
    /// The output directory (absolute, symlinks followed).
    pub fn dir(&self) -> &Path {
        &self.out.dir
    }

    fn staging(&self) -> PathBuf {
        self.out
            .sibling(&format!("proof-{}.tmp", std::process::id()))
    }

    /// Checks now, before the replay, that the new set can be created beside the
    /// directory (an unwritable --out used to be found only after the whole replay).
    fn probe(&self) -> Result<(), ProofError> {
        let probe = self
            .out
            .sibling(&format!("proof-probe-{}.tmp", std::process::id()));
        std::fs::create_dir(&probe)
            .and_then(|()| std::fs::remove_dir(&probe))
            .map_err(|e| {
                usage(format!(
                    "--out {}: cannot create a directory in {} ({e}); the new outputs are \
                     written there and swapped in, so it must be writable",
                    self.out.given.display(),
                    self.out.parent.display()
                ))
            })
    }

    /// Clears the temporaries killed runs left beside the directory: a new set never
    /// swapped in is removed; an old set swapped out is cleared (entries that are not
    /// in the directory now, such as files or subdirectories someone else put there,
    /// are moved back into it; if the directory is missing, the old set is restored).
    fn clear_stale(&self) -> Result<(), ProofError> {
        let Ok(entries) = std::fs::read_dir(&self.out.parent) else {
            return Ok(());
        };
        let stale: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| self.out.is_temporary(&e.file_name()))
            .map(|e| e.path())
            .collect();
        let new_inodes: Vec<u64> = stale
            .iter()
            .filter_map(|p| new_inode(p.file_name()?.to_str()?))
            .collect();
        let is_new =
            |p: &Path| inode(p).is_ok_and(|i| new_inodes.contains(&i)) || p.join(NEW_MARK).exists();
        // A mark an earlier version left in the directory: the set there is complete.
        let _ = std::fs::remove_file(self.out.dir.join(NEW_MARK));
        let (dirs, files): (Vec<PathBuf>, Vec<PathBuf>) =
            stale.into_iter().partition(|p| p.is_dir());
        // New sets first: an old set may then be restored into a missing directory.
        let (new, old): (Vec<PathBuf>, Vec<PathBuf>) = dirs.into_iter().partition(|p| is_new(p));
        for p in new {
            std::fs::remove_dir_all(&p).map_err(|e| ProofError::io(&p, e))?;
        }
        for p in old {
            self.clear_old_set(&p)?;
        }
        // The marks last: until the directories they name are gone, they are needed.
        for p in files {
            let _ = std::fs::remove_file(&p);
        }
        Ok(())
    }

    /// Empties a swapped-out old set at `old` and removes it: what the directory now
    /// holds under the same name supersedes it; anything else is moved back.
    fn clear_old_set(&self, old: &Path) -> Result<(), ProofError> {
        let dir = &self.out.dir;
        if std::fs::symlink_metadata(dir).is_err() {
            return std::fs::rename(old, dir).map_err(|e| ProofError::io(dir, e));
        }
        let mut kept = Vec::new();
        for e in std::fs::read_dir(old).map_err(|e| ProofError::io(old, e))? {
            let e = e.map_err(|e| ProofError::io(old, e))?;
            let from = e.path();
            let to = dir.join(e.file_name());
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            if e.file_name() == NEW_MARK || std::fs::symlink_metadata(&to).is_ok() {
                let r = if is_dir {
                    // Only ours are superseded by name; a directory never is ours.
                    kept.push(e.file_name());
                    Ok(())
                } else {
                    std::fs::remove_file(&from)
                };
                r.map_err(|err| ProofError::io(&from, err))?;
            } else {
                std::fs::rename(&from, &to).map_err(|err| ProofError::io(&to, err))?;
            }
        }
        if kept.is_empty() {
            std::fs::remove_dir(old).map_err(|e| ProofError::io(old, e))?;
        } else {
            crate::say!(
                "proof: warning: kept {}: it holds {} that the new {} also holds under \
                 the same name",
                old.display(),
                kept.iter()
                    .map(|k| k.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(", "),
                dir.display()
            );
        }
        Ok(())
    }

    /// Writes `files` (name, bytes) as the new content of the directory: into a fresh
    /// sibling, flushed, then swapped in one step; the old set is then cleared, keeping
    /// entries that are not outputs (moved into the new directory). Runs with
    /// interrupts deferred, so a signal leaves the old set or the new one.
    pub fn write_set(&self, files: &[(&str, Vec<u8>)]) -> Result<Vec<PathBuf>, ProofError> {
        uninterrupted(|| self.write_set_now(files))
    }

    fn write_set_now(&self, files: &[(&str, Vec<u8>)]) -> Result<Vec<PathBuf>, ProofError> {
        let staging = self.staging();
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(|e| ProofError::io(&staging, e))?;
        }
        std::fs::create_dir(&staging).map_err(|e| ProofError::io(&staging, e))?;
        let staging_inode = inode(&staging).map_err(|e| ProofError::io(&staging, e))?;
        let mark = self.out.sibling(&format!(
            "proof-{}{NEW_INODE}{staging_inode}.tmp",
            std::process::id(),
        ));
        File::create(&mark).map_err(|e| ProofError::io(&mark, e))?;
        sync_dir(&self.out.parent);
        let dir = &self.out.dir;
        let old_meta = std::fs::metadata(dir).ok();
        if let Some(m) = &old_meta {
            // The new directory keeps the old one's permissions.
            let _ = std::fs::set_permissions(&staging, m.permissions());
        }
        let written: Result<(), ProofError> = files.iter().try_for_each(|(name, bytes)| {
            let p = staging.join(name);
            let mut f = File::create(&p).map_err(|e| ProofError::io(&p, e))?;
            set_readable(&f);
            f.write_all(bytes)
                .and_then(|()| f.sync_all())
                .map_err(|e| ProofError::io(&dir.join(name), e))
        });
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&staging);
            let _ = std::fs::remove_file(&mark);
            return Err(e);
        }
        sync_dir(&staging);
        if old_meta.is_some() {
            if let Err(e) = exchange(&staging, dir) {
                // No atomic exchange here (an old kernel, a file system without it):
                // two renames, so the directory is briefly missing, never mixed.
                if !exchange_unsupported(&e) {
                    let _ = std::fs::remove_dir_all(&staging);
                    let _ = std::fs::remove_file(&mark);
                    return Err(ProofError::io(dir, e));
                }
                let old = self
                    .out
                    .sibling(&format!("proof-{}.old.tmp", std::process::id()));
                std::fs::rename(dir, &old).map_err(|e| ProofError::io(dir, e))?;
                std::fs::rename(&staging, dir).map_err(|e| ProofError::io(dir, e))?;
                let _ = std::fs::remove_file(&mark);
                sync_dir(&self.out.parent);
                self.clear_old_set(&old)?;
                return Ok(self.paths(files));
            }
        } else {
            std::fs::rename(&staging, dir).map_err(|e| ProofError::io(dir, e))?;
        }
        let _ = std::fs::remove_file(&mark);
        sync_dir(&self.out.parent);
        if old_meta.is_some() {
            // The staging path now holds the old set.
            self.clear_old_set(&staging)?;
        }
        Ok(self.paths(files))
    }

    fn paths(&self, files: &[(&str, Vec<u8>)]) -> Vec<PathBuf> {
        files.iter().map(|(n, _)| self.out.dir.join(n)).collect()
    }
}

/// The inode of `path` (not following a symlink).
fn inode(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).map(|m| m.ino())
}

/// The inode a new-set mark (`.NAME.proof-PID.new-INODE.tmp`) names.
fn new_inode(file_name: &str) -> Option<u64> {
    let rest = file_name.strip_suffix(".tmp")?;
    let (_, ino) = rest.rsplit_once(NEW_INODE)?;
    ino.parse().ok()
}

/// Flushes a directory's entries (a crash after the swap keeps the swap).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Swaps the directories `a` and `b` atomically.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// Whether `e` says the atomic exchange is not available (rather than failed).
fn exchange_unsupported(e: &std::io::Error) -> bool {
    const EINVAL: i32 = 22;
    const ENOSYS: i32 = 38;
    const EOPNOTSUPP: i32 = 95;
    e.kind() == std::io::ErrorKind::Unsupported
        || matches!(e.raw_os_error(), Some(EINVAL | ENOSYS | EOPNOTSUPP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_file_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r.json");
        write_atomic(&p, b"old").unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        assert!(write_atomic(Path::new("/nonexistent-dir/x"), b"x").is_err());
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_set_replaces_the_old_one_and_keeps_other_entries() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        {
            let lock = OutputDir::lock(&out).unwrap();
            assert!(!out.exists(), "nothing is created before the write");
            lock.write_set(&[("a.json", b"1".to_vec()), ("b.csv", b"1".to_vec())])
                .unwrap();
        }
        // Someone else's file and subdirectory in the output directory.
        std::fs::write(out.join("notes.txt"), "mine").unwrap();
        std::fs::create_dir(out.join("whatif-25")).unwrap();
        std::fs::write(out.join("whatif-25/report.json"), "{}").unwrap();
        {
            let lock = OutputDir::lock(&out).unwrap();
            lock.write_set(&[("a.json", b"2".to_vec()), ("b.csv", b"2".to_vec())])
                .unwrap();
        }
        assert_eq!(names(&out), ["a.json", "b.csv", "notes.txt", "whatif-25"]);
        assert_eq!(std::fs::read(out.join("a.json")).unwrap(), b"2");
        assert_eq!(
            std::fs::read(out.join("whatif-25/report.json")).unwrap(),
            b"{}"
        );
        // No lock file, no temporary left beside it.
        assert_eq!(names(d.path()), ["out"]);
    }

    #[test]
    fn a_second_lock_is_refused_naming_the_pid() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        let _held = OutputDir::lock(&out).unwrap();
        let e = OutputDir::lock(&out).unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "another proof run is writing there (pid {}",
                std::process::id()
            )),
            "{e}"
        );
    }

    #[test]
    fn a_file_or_device_as_out_is_refused_naming_it() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("report.json");
        std::fs::write(&f, "x").unwrap();
        let e = OutputDir::lock(&f).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "--out {}: exists and is a regular file, not a directory; --out takes a directory",
                f.display()
            )),
            "{e}"
        );
        let e = OutputDir::lock(Path::new("/dev/null"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--out /dev/null: exists and is a device, not a directory"),
            "{e}"
        );
    }

    #[test]
    fn leftovers_of_killed_runs_are_cleared() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("a.json"), "current").unwrap();
        // A new set that was never swapped in (killed while writing).
        let new = d.path().join(".out.proof-999999.tmp");
        std::fs::create_dir(&new).unwrap();
        std::fs::write(new.join(NEW_MARK), "").unwrap();
        std::fs::write(new.join("a.json"), "half").unwrap();
        // An old set swapped out but not cleared (killed right after the swap), with a
        // file someone else had put in the directory.
        let old = d.path().join(".out.proof-999998.tmp");
        std::fs::create_dir(&old).unwrap();
        std::fs::write(old.join("a.json"), "previous").unwrap();
        std::fs::write(old.join("notes.txt"), "mine").unwrap();
        drop(OutputDir::lock(&out).unwrap());
        assert_eq!(names(d.path()), ["out"]);
        assert_eq!(names(&out), ["a.json", "notes.txt"]);
        assert_eq!(std::fs::read(out.join("a.json")).unwrap(), b"current");
    }

    /// A run killed at each step of `write_set`: what it leaves, and what the next
    /// lock makes of it. The directory never holds anything but one whole set.
    #[test]
    fn a_kill_at_any_step_leaves_one_set_and_the_next_run_clears_the_rest() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        let lock = OutputDir::lock(&out).unwrap();
        lock.write_set(&[("a.json", b"previous".to_vec())]).unwrap();
        std::fs::write(out.join("notes.txt"), "mine").unwrap();
        drop(lock);
        assert_eq!(
            names(d.path()),
            ["out"],
            "no mark or temporary after a whole run"
        );

        // Killed while writing: the new set and its mark beside the directory.
        let new = d.path().join(".out.proof-999999.tmp");
        std::fs::create_dir(&new).unwrap();
        let mark = |dir: &Path| {
            d.path()
                .join(format!(".out.proof-999999.new-{}.tmp", inode(dir).unwrap()))
        };
        std::fs::write(mark(&new), "").unwrap();
        std::fs::write(new.join("a.json"), "half").unwrap();
        assert_eq!(names(&out), ["a.json", "notes.txt"]);
        drop(OutputDir::lock(&out).unwrap());
        assert_eq!(names(d.path()), ["out"]);
        assert_eq!(std::fs::read(out.join("a.json")).unwrap(), b"previous");

        // Killed just after the swap: the directory holds the new set and nothing
        // else; the old set (with the notes) lies at the staging path.
        let old = d.path().join(".out.proof-999999.tmp");
        std::fs::create_dir(&old).unwrap();
        std::fs::write(old.join("a.json"), "new").unwrap();
        exchange(&old, &out).unwrap();
        std::fs::write(mark(&out), "").unwrap();
        assert_eq!(names(&out), ["a.json"], "the new set, no mark inside");
        drop(OutputDir::lock(&out).unwrap());
        assert_eq!(names(d.path()), ["out"]);
        assert_eq!(names(&out), ["a.json", "notes.txt"]);
        assert_eq!(std::fs::read(out.join("a.json")).unwrap(), b"new");
    }

    #[test]
    fn a_new_set_mark_names_an_inode() {
        assert_eq!(new_inode(".out.proof-12.new-345.tmp"), Some(345));
        assert_eq!(new_inode(".a.new-3.proof-12.tmp"), None);
        assert_eq!(new_inode(".a.new-3.proof-12.new-7.tmp"), Some(7));
        assert_eq!(new_inode(".out.proof-12.old.tmp"), None);
    }
}
