//! What the server serves and how it changes: the engine built from the IR, weights
//! and list files, the access map, and the content fingerprints that hot reload
//! compares. Swaps are atomic (`RwLock<Arc<…>>`: a request holds the `Arc` it started
//! with); a change that does not load keeps the previous version.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};

use super::metrics::{RbacMetrics, ServeMetrics};
use super::rbac::AccessMap;
use crate::error::ProofError;
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
}

/// SHA-256 over the bytes of a set of files (or over the error that kept one from
/// being read, so an unreadable file is one stable state, refused once).
pub type Fingerprint = [u8; 32];

fn fingerprint<'a>(files: impl IntoIterator<Item = &'a Path>) -> Fingerprint {
    let mut h = Sha256::new();
    for p in files {
        let os = p.as_os_str().as_encoded_bytes();
        h.update((os.len() as u64).to_be_bytes());
        h.update(os);
        match std::fs::read(p) {
            Ok(b) => {
                h.update([1]);
                h.update((b.len() as u64).to_be_bytes());
                h.update(&b);
            }
            Err(e) => {
                h.update([0]);
                h.update(e.kind().to_string().as_bytes());
            }
        }
    }
    h.finalize().into()
}

/// The policy side in force: engine plus what identifies it.
#[derive(Debug)]
pub struct Loaded {
    /// Shadow = the baseline under its selector, enforced = the candidate under its.
    pub engine: Engine,
    /// Fingerprint of the IR, weights and list files it was built from.
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

    /// Loads lists, both IRs and both weights files and builds the engine.
    pub fn load_policy(&self) -> Result<Loaded, ProofError> {
        // Fingerprint first: if a file changes while it is being loaded, the next
        // tick sees a fingerprint that differs from this one and loads again.
        let fingerprint = fingerprint(self.policy_files());
        let engine = self.engine.load()?;
        Ok(Loaded {
            engine,
            fingerprint,
            counters: Default::default(),
        })
    }

    /// Loads the access map, if one is configured.
    pub fn load_access(&self) -> Result<Option<AccessMap>, ProofError> {
        let Some(p) = &self.rbac else { return Ok(None) };
        let bytes = std::fs::read(p).map_err(|e| ProofError::io(p, e))?;
        AccessMap::parse(&bytes, p).map(Some)
    }
}

/// A value swapped atomically, plus the fingerprint last looked at.
pub struct Swappable<T> {
    current: RwLock<Arc<T>>,
    last_seen: std::sync::Mutex<Fingerprint>,
}

impl<T> Swappable<T> {
    /// Starts with `v`, whose content has fingerprint `fp`.
    pub fn new(v: T, fp: Fingerprint) -> Self {
        Swappable {
            current: RwLock::new(Arc::new(v)),
            last_seen: std::sync::Mutex::new(fp),
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
    /// Same content as last time.
    Unchanged,
    /// New content swapped in.
    Swapped,
    /// New content refused; the message names the file and the problem.
    Refused(String),
}

/// Re-checks the policy files; swaps in a valid change, counts everything.
pub fn reload_policy(cfg: &ServeConfig, slot: &Swappable<Loaded>, m: &ServeMetrics) -> Reload {
    m.reload_checks.inc();
    let fp = fingerprint(cfg.policy_files());
    if !slot.changed(fp) || fp == slot.get().fingerprint {
        return Reload::Unchanged;
    }
    match cfg.load_policy() {
        Ok(new) => {
            new.export_info(m);
            // If the files moved on while loading, remember what was loaded so the
            // next tick loads the newer content.
            let loaded_fp = new.fingerprint;
            slot.changed(loaded_fp);
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

/// Re-checks the access map; swaps in a valid change, counts everything.
pub fn reload_access(cfg: &ServeConfig, slot: &Swappable<AccessMap>, m: &RbacMetrics) -> Reload {
    let Some(p) = &cfg.rbac else {
        return Reload::Unchanged;
    };
    m.reload_checks.inc();
    let fp = fingerprint([p.as_path()]);
    if !slot.changed(fp) {
        return Reload::Unchanged;
    }
    match cfg.load_access() {
        Ok(Some(map)) => {
            if map.etag == slot.get().etag {
                return Reload::Unchanged;
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

/// Fingerprint of the access map file as loaded at start.
pub fn access_fingerprint(cfg: &ServeConfig) -> Fingerprint {
    match &cfg.rbac {
        Some(p) => fingerprint([p.as_path()]),
        None => [0; 32],
    }
}
