//! What the server serves and how it changes: the engine built from the IR, weights
//! and list files, the access map, and the content fingerprints that hot reload
//! compares. Swaps are atomic (`RwLock<Arc<…>>`: a request holds the `Arc` it started
//! with); a change that does not load keeps the previous version.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::sync::{Arc, RwLock};

use super::metrics::{RbacMetrics, ServeMetrics};
use super::rbac::AccessMap;
use crate::error::ProofError;
use crate::files::{self, FileSet, Pinned};
use crate::orchestrator::facade::EngineFiles;
use crate::orchestrator::{EnforceOptions, Engine};
use crate::replay::gate::confidence::Confidence;

/// Everything `proof serve` was started with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The files of both paths (policy ids resolved to paths once, at start), the
    /// selectors and the salt: replay's engine, loaded the same way.
    pub engine: EngineFiles,
    /// Enforcement switches.
    pub options: EnforceOptions,
    /// Answer 503 on /readyz while the 5-minute drift ratio exceeds `drift_max`.
    pub readiness_gate: bool,
    /// `--confidence`: the readiness gate judges the 5-minute window's Wilson lower
    /// bound instead of its point ratio (SPEC §8's breach rule).
    pub confidence: Option<Confidence>,
    /// Access map file.
    pub rbac: Option<PathBuf>,
    /// Reload check period, milliseconds.
    pub reload_interval_ms: u64,
    /// Address to bind.
    pub listen: SocketAddr,
    /// Readiness window scale (1.0 = real minutes; test-only).
    pub window_scale: f64,
    /// Serving threads (each with its own event loop).
    pub threads: usize,
    /// Time a connection has to deliver a request's headers, milliseconds.
    pub header_timeout_ms: u64,
    /// Time a `/v1/adapt` request has to deliver its body, milliseconds.
    pub body_timeout_ms: u64,
    /// Time open requests get after SIGINT/SIGTERM, milliseconds.
    pub shutdown_timeout_ms: u64,
    /// Most connections open at once.
    pub max_connections: usize,
    /// `--bucket-key`: the context value the rollout bucket hashes (SPEC §3), so the
    /// live canary picks the requests replay's does.
    pub bucket_key: Option<crate::engine::KeyPath>,
}

/// SHA-256 over the bytes of a set of files ([`FileSet::fingerprint`]) or over their
/// metadata ([`files::stamp`]).
pub type Fingerprint = files::Fingerprint;

/// The policy side in force: engine plus what identifies it.
#[derive(Debug)]
pub struct Loaded {
    /// Shadow = the baseline under its selector, enforced = the candidate under its.
    pub engine: Engine,
    /// Fingerprint of the bytes of the IR, weights and list files it was built from.
    pub fingerprint: Fingerprint,
    /// This policy's metric series, resolved on first use.
    pub counters: std::sync::OnceLock<super::metrics::PolicyCounters>,
}

impl Loaded {
    /// The candidate (enforced) policy's id.
    pub fn policy_id(&self) -> &str {
        &self.engine.enforced.policy.policy_id
    }

    /// The candidate (enforced) policy's `ir_hash`.
    pub fn ir_hash(&self) -> &str {
        &self.engine.enforced.policy.ir_hash
    }

    /// The baseline (shadow) policy's id.
    pub fn baseline_id(&self) -> &str {
        &self.engine.shadow.policy.policy_id
    }

    /// The baseline (shadow) policy's `ir_hash`.
    pub fn baseline_hash(&self) -> &str {
        &self.engine.shadow.policy.ir_hash
    }

    /// `id hash`, or `baseline id hash, candidate id hash` when the paths differ (for
    /// stderr).
    pub fn describe(&self) -> String {
        if self.baseline_hash() == self.ir_hash() && self.baseline_id() == self.policy_id() {
            format!("{} {}", self.policy_id(), self.ir_hash())
        } else {
            format!(
                "baseline {} {}, candidate {} {}",
                self.baseline_id(),
                self.baseline_hash(),
                self.policy_id(),
                self.ir_hash()
            )
        }
    }

    /// Exports both paths' `adapt_policy_info`.
    pub fn export_info(&self, m: &ServeMetrics) {
        m.adapt
            .set_policy("shadow", self.baseline_id(), self.baseline_hash());
        m.adapt
            .set_policy("enforced", self.policy_id(), self.ir_hash());
    }
}

impl ServeConfig {
    fn policy_files(&self) -> Vec<&Path> {
        self.engine.paths()
    }

    /// Loads lists, both IRs and both weights files through `files` (each read once)
    /// and builds the engine; the fingerprint is that of the bytes loaded.
    pub fn load_policy(&self, files: &FileSet) -> Result<Loaded, ProofError> {
        let engine = self.engine.load_from(files)?;
        Ok(Loaded {
            engine,
            fingerprint: files.fingerprint(),
            counters: Default::default(),
        })
    }

    /// Loads the access map through `files`, if one is configured.
    pub fn load_access(&self, files: &FileSet) -> Result<Option<AccessMap>, ProofError> {
        let Some(p) = &self.rbac else { return Ok(None) };
        let bytes = files.read(p, crate::config::LIMIT)?;
        AccessMap::parse(&bytes, p).map(Some)
    }

    /// Metadata stamp of the policy files (what a reload tick compares first).
    pub fn policy_stamp(&self) -> Fingerprint {
        files::stamp(self.policy_files())
    }

    /// Metadata stamp of the access map file.
    pub fn access_stamp(&self) -> Fingerprint {
        files::stamp(self.rbac.as_deref())
    }
}

/// A value swapped atomically, the metadata stamp of its files last looked at, and
/// its files that were not regular files at start (never read again).
pub struct Swappable<T> {
    current: RwLock<Arc<T>>,
    last_seen: std::sync::Mutex<Fingerprint>,
    pinned: Pinned,
}

impl<T> Swappable<T> {
    /// Starts with `v`, loaded from files whose metadata had stamp `stamp` (taken
    /// before they were read) and of which `pinned` were not regular files.
    pub fn new(v: T, stamp: Fingerprint, pinned: Pinned) -> Self {
        Swappable {
            current: RwLock::new(Arc::new(v)),
            last_seen: std::sync::Mutex::new(stamp),
            pinned,
        }
    }

    /// The version in force.
    pub fn get(&self) -> Arc<T> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, v: T) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(v);
    }

    /// Records `fp` as seen; true when it differs from the previous one.
    fn changed(&self, fp: Fingerprint) -> bool {
        let mut last = self.last_seen.lock().unwrap_or_else(|e| e.into_inner());
        let changed = *last != fp;
        *last = fp;
        changed
    }
}

/// Outcome of one reload check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// Same metadata as last time: nothing was read.
    Unchanged,
    /// The metadata changed but the content is the one in force (read, not swapped).
    SameContent,
    /// New content swapped in.
    Swapped,
    /// New content refused; the message names the file and the problem.
    Refused(String),
}

/// Re-checks the policy files; swaps in a valid change, counts everything. Files are
/// read only when their metadata changed, and never block: a file that is not a
/// regular file is this reload's error (files that were not at start are pinned).
pub fn reload_policy(cfg: &ServeConfig, slot: &Swappable<Loaded>, m: &ServeMetrics) -> Reload {
    m.reload_checks.inc();
    // Stamp first: if a file changes while it is being read, the next tick sees a
    // stamp that differs from this one and reads again.
    if !slot.changed(cfg.policy_stamp()) {
        return Reload::Unchanged;
    }
    match cfg.load_policy(&FileSet::for_reload(slot.pinned.clone())) {
        Ok(new) if new.fingerprint == slot.get().fingerprint => Reload::SameContent,
        Ok(new) => {
            new.export_info(m);
            slot.set(new);
            m.reload_hits.inc();
            Reload::Swapped
        }
        Err(e) => {
            m.reload_errors.inc();
            Reload::Refused(e.to_string())
        }
    }
}

/// Re-checks the access map as [`reload_policy`] does the policy files.
pub fn reload_access(cfg: &ServeConfig, slot: &Swappable<AccessMap>, m: &RbacMetrics) -> Reload {
    if cfg.rbac.is_none() {
        return Reload::Unchanged;
    }
    m.reload_checks.inc();
    if !slot.changed(cfg.access_stamp()) {
        return Reload::Unchanged;
    }
    match cfg.load_access(&FileSet::for_reload(slot.pinned.clone())) {
        Ok(Some(map)) => {
            if map.etag == slot.get().etag {
                return Reload::SameContent;
            }
            m.set_etag(&map.etag);
            slot.set(map);
            m.reload_hits.inc();
            Reload::Swapped
        }
        Ok(None) => Reload::Unchanged,
        Err(e) => {
            m.reload_errors.inc();
            Reload::Refused(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::SelectorKind;

    fn config(dir: &Path) -> ServeConfig {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/conformance");
        let list = dir.join("sanctions.csv");
        std::fs::copy(root.join("sanctions.csv"), &list).unwrap();
        ServeConfig {
            bucket_key: None,
            engine: EngineFiles {
                baseline: root.join("demo.v1.ir.json"),
                candidate: None,
                selector: SelectorKind::Basic,
                weights: None,
                shadow_selector: SelectorKind::Basic,
                shadow_weights: None,
                salt: None,
                lists: vec![
                    format!("sanctions={}", list.display()).parse().unwrap(),
                    format!("high_risk={}", root.join("high_risk.txt").display())
                        .parse()
                        .unwrap(),
                ],
            },
            options: Default::default(),
            readiness_gate: false,
            confidence: None,
            rbac: None,
            reload_interval_ms: 1000,
            listen: "127.0.0.1:0".parse().unwrap(),
            window_scale: 1.0,
            threads: 1,
            header_timeout_ms: 1000,
            body_timeout_ms: 1000,
            shutdown_timeout_ms: 1000,
            max_connections: 1,
        }
    }

    /// Issue 24, item 12: a tick over unchanged files reads nothing (the metadata
    /// stamp is the same); new metadata over the same bytes is read but not swapped.
    #[test]
    fn unchanged_files_are_not_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let m = ServeMetrics::new().unwrap();
        let stamp = cfg.policy_stamp();
        let files = FileSet::new();
        let slot = Swappable::new(cfg.load_policy(&files).unwrap(), stamp, files.pinned());
        for _ in 0..3 {
            assert_eq!(reload_policy(&cfg, &slot, &m), Reload::Unchanged);
        }
        // The same bytes under a new inode: read once, found equal, not swapped.
        let list = dir.path().join("sanctions.csv");
        let tmp = dir.path().join("sanctions.tmp");
        std::fs::copy(&list, &tmp).unwrap();
        std::fs::rename(&tmp, &list).unwrap();
        assert_eq!(reload_policy(&cfg, &slot, &m), Reload::SameContent);
        assert_eq!(reload_policy(&cfg, &slot, &m), Reload::Unchanged);
        // New bytes: swapped.
        let tmp = dir.path().join("sanctions.tmp");
        std::fs::write(&tmp, "supplier_hash\n0xbad9\n").unwrap();
        std::fs::rename(&tmp, &list).unwrap();
        assert_eq!(reload_policy(&cfg, &slot, &m), Reload::Swapped);
        assert_eq!(reload_policy(&cfg, &slot, &m), Reload::Unchanged);
        assert_eq!(m.reload_checks.get(), 7);
        assert_eq!(m.reload_hits.get(), 1);
    }
}
