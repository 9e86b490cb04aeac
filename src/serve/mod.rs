//! `proof serve`: the shadow/enforced engine of `proof adapt` (baseline and candidate
//! IR, as `replay` builds it) behind HTTP, with Prometheus metrics, readiness windows,
//! hot reload and bearer-token access control.
//!
//! This module holds the server instance ([`App`]: what it serves, its metrics and
//! windows, the readiness answer); the concerns live beside it:
//!
//! - `lifecycle`: bind, serving threads, acceptor, signals, graceful shutdown;
//! - `routes`: the router, `/v1/adapt`, `/metrics`, `/healthz`, `/readyz`;
//! - `body`: reading a `/v1/adapt` body as replay reads a record (and its limit);
//! - `auth`: bearer-token checks before a body is read (`rbac` parses the map);
//! - `reload`: the periodic reload of policy files and access map (`state` swaps);
//! - `conn`: connections, their deadlines and the hand-off to serving threads;
//! - `metrics`, `openmetrics`: families and the OpenMetrics encoder.
//!
//! Decisions come from `orchestrator::facade::decide` so a record gets the same
//! answer from `adapt`, `replay` and `serve`. Never logs request bodies, request ids,
//! tokens or context values.

mod auth;
pub mod body;
pub mod conn;
mod lifecycle;
pub mod metrics;
pub mod openmetrics;
pub mod rbac;
mod reload;
mod response;
mod routes;
pub mod state;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::error::ProofError;
use crate::replay::gate::rule;
pub use body::{BodyError, MAX_BODY_BYTES, parse_body};
pub use lifecycle::run;
pub use metrics::{Ratios, RbacMetrics, ServeMetrics, Windows};
use rbac::AccessMap;
pub use routes::router;
pub use state::ServeConfig;
use state::{Loaded, Swappable};

/// Shared state of one server instance.
pub struct App {
    cfg: ServeConfig,
    policy: Swappable<Loaded>,
    access: Option<(Swappable<AccessMap>, RbacMetrics)>,
    metrics: ServeMetrics,
    windows: Windows,
    /// Requests being handled now (head read, answer not yet written).
    in_flight: AtomicUsize,
    /// Places in the evaluation pool (`--threads` of them) for bodies too large to
    /// evaluate on a serving thread.
    eval_slots: tokio::sync::Semaphore,
}

impl App {
    /// Loads everything the configuration names; errors are exit code 2.
    pub fn new(cfg: ServeConfig) -> Result<Arc<App>, ProofError> {
        // Stamps before reads (see `state::reload_policy`); each file is read once.
        let (policy_stamp, access_stamp) = (cfg.policy_stamp(), cfg.access_stamp());
        let files = crate::files::FileSet::new();
        let loaded = cfg.load_policy(&files)?;
        let metrics = ServeMetrics::new().map_err(metrics_err)?;
        loaded.export_info(&metrics);
        metrics
            .adapt
            .rollout_percent
            .set(f64::from(cfg.options.rollout_percent.get()));
        let access_files = crate::files::FileSet::new();
        let access = match cfg.load_access(&access_files)? {
            Some(map) => {
                let rm = RbacMetrics::register(&metrics.registry).map_err(metrics_err)?;
                rm.set_etag(&map.etag);
                let pinned = access_files.pinned();
                Some((Swappable::new(map, access_stamp, pinned), rm))
            }
            None => None,
        };
        // A pipe or device cannot be read twice: what it gave now stays in force.
        for (p, kind) in files.streams().into_iter().chain(access_files.streams()) {
            crate::say!(
                "proof serve: {} is {kind}, not a regular file: read once at start and not \
                 reloadable (hot reload keeps these bytes; restart to change it)",
                p.display()
            );
        }
        let pinned = files.pinned();
        Ok(Arc::new(App {
            windows: Windows::new(cfg.window_scale),
            in_flight: AtomicUsize::new(0),
            eval_slots: tokio::sync::Semaphore::new(cfg.threads.max(1)),
            policy: Swappable::new(loaded, policy_stamp, pinned),
            access,
            metrics,
            cfg,
        }))
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &ServeMetrics {
        &self.metrics
    }

    /// Requests being handled now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The readiness answer: status code and JSON body. Without `--confidence` the gate
    /// compares the 5-minute point ratio with `drift_max`; with it, the window's
    /// one-sided Wilson lower bound (SPEC §8's breach rule, so `/readyz` and replay's
    /// gate judge a window alike).
    pub fn readiness(&self) -> (StatusCode, Value) {
        let (r, counts) = self.windows.snapshot();
        let max = self.cfg.options.drift_max_ratio;
        let bounds = match self.cfg.confidence {
            Some(c) if counts.evaluated > 0 => Some(c.wilson(counts.drifting, counts.evaluated)),
            _ => None,
        };
        // Replay's breach rule (`replay::gate::rule`), on the judged figure.
        let breach = self.cfg.readiness_gate
            && match (self.cfg.confidence, bounds) {
                (None, _) => rule::breaches(r.drift_ratio_5m, max),
                (Some(_), Some((lower, _))) => rule::breaches(lower, max),
                (Some(_), None) => false,
            };
        let mut body = json!({
            "status": if breach { "not_ready" } else { "ready" },
            "success_ratio_1m": r.success_ratio_1m,
            "success_ratio_5m": r.success_ratio_5m,
            "drift_ratio_1m": r.drift_ratio_1m,
            "drift_ratio_5m": r.drift_ratio_5m,
            "drift_max": max,
            "readiness_gate": self.cfg.readiness_gate,
        });
        if let Some(c) = self.cfg.confidence {
            body["confidence"] = json!(c.level());
            body["requests_5m"] = json!(counts.evaluated);
            body["drift_events_5m"] = json!(counts.drifting);
            body["drift_lower_5m"] = json!(bounds.map(|b| b.0));
            body["drift_upper_5m"] = json!(bounds.map(|b| b.1));
        }
        if breach {
            let reason = match (self.cfg.confidence, bounds) {
                (Some(c), Some((lower, _))) => format!(
                    "drift_lower_5m {lower} > drift_max {max} at confidence {} ({} of {} requests drifting)",
                    c.level(),
                    counts.drifting,
                    counts.evaluated
                ),
                _ => format!("drift_ratio_5m {} > drift_max {max}", r.drift_ratio_5m),
            };
            body["reason"] = Value::String(reason);
            (StatusCode::SERVICE_UNAVAILABLE, body)
        } else {
            (StatusCode::OK, body)
        }
    }
}

fn metrics_err(e: prometheus::Error) -> ProofError {
    ProofError::Internal(format!("registering metrics: {e}"))
}
