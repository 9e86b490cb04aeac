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
use crate::orchestrator::{
    EnforceOptions, Engine, EngineOptions, SelectorKind, Weights, build_engine,
};
use crate::policy::{ListSpec, Lists, Policy};

/// Everything `proof serve` was started with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The IR file (resolved from `--policy` once, at start).
    pub ir: PathBuf,
    /// Selector of the enforced path.
    pub selector: SelectorKind,
    /// Weights file for `--selector weighted`.
    pub weights: Option<PathBuf>,
    /// `--list` bindings.
    pub lists: Vec<ListSpec>,
    /// Enforcement switches.
    pub options: EnforceOptions,
    /// Answer 503 on /readyz while the 5-minute drift ratio exceeds `drift_max`.
    pub readiness_gate: bool,
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
    /// Shadow = IR under basic, enforced = IR under the chosen selector.
    pub engine: Engine,
    /// Fingerprint of the IR, weights and list files it was built from.
    pub fingerprint: Fingerprint,
    /// This policy's metric series, resolved on first use.
    pub counters: std::sync::OnceLock<super::metrics::PolicyCounters>,
}

impl Loaded {
    /// The loaded policy's id.
    pub fn policy_id(&self) -> &str {
        &self.engine.enforced.policy.policy_id
    }

    /// The loaded policy's `ir_hash`.
    pub fn ir_hash(&self) -> &str {
        &self.engine.enforced.policy.ir_hash
    }
}

impl ServeConfig {
    fn policy_files(&self) -> Vec<&Path> {
        let mut v = vec![self.ir.as_path()];
        v.extend(self.weights.as_deref());
        v.extend(self.lists.iter().map(|l| l.path.as_path()));
        v
    }

    /// Loads lists, IR and weights and builds the engine.
    pub fn load_policy(&self) -> Result<Loaded, ProofError> {
        // Fingerprint first: if a file changes while it is being loaded, the next
        // tick sees a fingerprint that differs from this one and loads again.
        let fingerprint = fingerprint(self.policy_files());
        let lists = Lists::load(&self.lists)?;
        let policy = Arc::new(Policy::load(&self.ir, &lists)?);
        let weights = match &self.weights {
            Some(p) => Some((Weights::load(p)?, p.clone())),
            None => None,
        };
        let engine = build_engine(EngineOptions {
            policy,
            selector: self.selector,
            weights: weights.as_ref().map(|(w, p)| (w, p.as_path())),
        })?;
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
            for path in ["shadow", "enforced"] {
                m.adapt.set_policy(path, new.policy_id(), new.ir_hash());
            }
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
