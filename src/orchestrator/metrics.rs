//! The `adapt_*` Prometheus metrics of the enforcer (seed B1), registered into a
//! registry the caller owns, and the sliding windows behind `adapt_drift_ratio`.
//!
//! Labels carry only policy ids, modes, windows and hashes: never request ids or
//! context values.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounterVec, Opts, Registry, TextEncoder,
};

use super::enforcer::EnforceOptions;
use super::selector::Verdict;
use crate::metrics::catalogue as C;

/// Buckets of `adapt_selection_latency_seconds`: selection takes about a microsecond,
/// so the low end is sub-microsecond.
pub const LATENCY_BUCKETS: [f64; 14] = [
    1e-7, 2.5e-7, 5e-7, 1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2, 1e-1,
];

/// Counts over a sliding time window, in fixed slots (e.g. 300 one-second slots).
#[derive(Debug, Clone)]
pub struct SlidingWindow {
    window_ms: i64,
    slot_ms: i64,
    /// `(slot start, requests, drifts, successes)`, oldest first.
    slots: VecDeque<(i64, u64, u64, u64)>,
}

impl SlidingWindow {
    /// A window of `window_ms` made of slots of `slot_ms`.
    pub fn new(window_ms: i64, slot_ms: i64) -> Self {
        SlidingWindow {
            window_ms,
            slot_ms: slot_ms.max(1),
            slots: VecDeque::new(),
        }
    }

    fn evict(&mut self, now_ms: i64) {
        let oldest_kept = now_ms - self.window_ms;
        while let Some(&(start, ..)) = self.slots.front() {
            if start + self.slot_ms <= oldest_kept {
                self.slots.pop_front();
            } else {
                break;
            }
        }
    }

    /// Counts one request at `now_ms`.
    pub fn record(&mut self, now_ms: i64, drift: bool, success: bool) {
        self.evict(now_ms);
        let start = now_ms.div_euclid(self.slot_ms) * self.slot_ms;
        match self.slots.back_mut() {
            Some(last) if last.0 == start => {
                last.1 += 1;
                last.2 += u64::from(drift);
                last.3 += u64::from(success);
            }
            // Out-of-order times go into the newest slot rather than being lost.
            Some(last) if last.0 > start => {
                last.1 += 1;
                last.2 += u64::from(drift);
                last.3 += u64::from(success);
            }
            _ => self
                .slots
                .push_back((start, 1, u64::from(drift), u64::from(success))),
        }
    }

    /// `(requests, drifts, successes)` within the window ending at `now_ms`.
    pub fn totals(&mut self, now_ms: i64) -> (u64, u64, u64) {
        self.evict(now_ms);
        self.slots
            .iter()
            .fold((0, 0, 0), |a, s| (a.0 + s.1, a.1 + s.2, a.2 + s.3))
    }

    /// Drift ratio in the window; 0.0 when empty.
    pub fn drift_ratio(&mut self, now_ms: i64) -> f64 {
        let (n, d, _) = self.totals(now_ms);
        if n == 0 { 0.0 } else { d as f64 / n as f64 }
    }

    /// Success ratio in the window; 1.0 when empty.
    pub fn success_ratio(&mut self, now_ms: i64) -> f64 {
        let (n, _, s) = self.totals(now_ms);
        if n == 0 { 1.0 } else { s as f64 / n as f64 }
    }
}

/// The enforcer's metric families, registered on one registry.
#[derive(Clone)]
pub struct AdaptMetrics {
    /// `adapt_enforce_rollout_percent`.
    pub rollout_percent: Gauge,
    /// `adapt_requests_total{mode, policy_id}`.
    pub requests: IntCounterVec,
    /// `adapt_drift_events_total{policy_id}`.
    pub drift_events: IntCounterVec,
    /// `adapt_drift_ratio{window}`.
    pub drift_ratio: GaugeVec,
    /// `adapt_verdicts_total{mode, verdict}`.
    pub verdicts: IntCounterVec,
    /// `adapt_selection_latency_seconds`.
    pub selection_latency: Histogram,
    /// `adapt_policy_info{path, policy_id, ir_hash}`.
    pub policy_info: GaugeVec,
    registry: Registry,
    info_current: Arc<Mutex<BTreeMap<String, (String, String)>>>,
}

impl AdaptMetrics {
    /// Creates the families and registers them on `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let m = AdaptMetrics {
            rollout_percent: Gauge::new(
                C::ENFORCE_ROLLOUT_PERCENT.sample,
                C::ENFORCE_ROLLOUT_PERCENT.help,
            )?,
            requests: IntCounterVec::new(
                Opts::new(C::REQUESTS.sample, C::REQUESTS.help),
                C::REQUESTS.labels,
            )?,
            drift_events: IntCounterVec::new(
                Opts::new(C::DRIFT_EVENTS.sample, C::DRIFT_EVENTS.help),
                C::DRIFT_EVENTS.labels,
            )?,
            drift_ratio: GaugeVec::new(
                Opts::new(C::DRIFT_RATIO.sample, C::DRIFT_RATIO.help),
                C::DRIFT_RATIO.labels,
            )?,
            verdicts: IntCounterVec::new(
                Opts::new(C::VERDICTS.sample, C::VERDICTS.help),
                C::VERDICTS.labels,
            )?,
            selection_latency: Histogram::with_opts(
                HistogramOpts::new(C::SELECTION_LATENCY.sample, C::SELECTION_LATENCY.help)
                    .buckets(LATENCY_BUCKETS.to_vec()),
            )?,
            policy_info: GaugeVec::new(
                Opts::new(C::POLICY.sample, C::POLICY.help),
                C::POLICY.labels,
            )?,
            registry: registry.clone(),
            info_current: Arc::default(),
        };
        registry.register(Box::new(m.rollout_percent.clone()))?;
        registry.register(Box::new(m.requests.clone()))?;
        registry.register(Box::new(m.drift_events.clone()))?;
        registry.register(Box::new(m.drift_ratio.clone()))?;
        registry.register(Box::new(m.verdicts.clone()))?;
        registry.register(Box::new(m.selection_latency.clone()))?;
        registry.register(Box::new(m.policy_info.clone()))?;
        Ok(m)
    }

    /// Sets the info series for one path, removing the older hash of that path so
    /// only the current one is exported.
    pub fn set_policy(&self, path: &str, policy_id: &str, ir_hash: &str) {
        let mut cur = self.info_current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((id, hash)) = cur.get(path) {
            let _ = self.policy_info.remove_label_values(&[path, id, hash]);
        }
        cur.insert(
            path.to_string(),
            (policy_id.to_string(), ir_hash.to_string()),
        );
        self.policy_info
            .with_label_values(&[path, policy_id, ir_hash])
            .set(1.0);
    }

    /// Counts one request's outcome.
    pub fn observe(&self, o: &Observation<'_>) {
        self.rollout_percent
            .set(f64::from(o.options.rollout_percent.get()));
        self.requests
            .with_label_values(&["shadow", o.shadow_policy])
            .inc();
        self.verdicts
            .with_label_values(&["shadow", o.shadow.as_str()])
            .inc();
        if o.applied {
            self.requests
                .with_label_values(&["enforced", o.enforced_policy])
                .inc();
            self.verdicts
                .with_label_values(&["enforced", o.enforced.as_str()])
                .inc();
        }
        // Touch the drift series so it exists (at 0) before the first event.
        let drift = self.drift_events.with_label_values(&[o.enforced_policy]);
        if o.drift {
            drift.inc();
        }
        self.selection_latency.observe(o.latency_seconds);
    }

    /// Prometheus text format 0.0.4 of everything in the registry.
    pub fn render(&self) -> String {
        render_registry(&self.registry)
    }
}

/// One request's outcome, as the metrics see it.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// Enforcement switches in force.
    pub options: EnforceOptions,
    /// Baseline policy id.
    pub shadow_policy: &'a str,
    /// Candidate policy id.
    pub enforced_policy: &'a str,
    /// Shadow verdict.
    pub shadow: Verdict,
    /// Enforced verdict.
    pub enforced: Verdict,
    /// Whether enforcement applied to this request.
    pub applied: bool,
    /// Applied and the verdicts differ.
    pub drift: bool,
    /// Selection time.
    pub latency_seconds: f64,
}

/// Prometheus text format 0.0.4 of a registry.
pub fn render_registry(registry: &Registry) -> String {
    let mut buf = Vec::new();
    // Encoding into a Vec cannot fail for well-formed families.
    let _ = TextEncoder::new().encode(&registry.gather(), &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_window_evicts_old_slots() {
        let mut w = SlidingWindow::new(300_000, 1000);
        assert_eq!(w.drift_ratio(0), 0.0);
        assert_eq!(w.success_ratio(0), 1.0);
        w.record(1_000, true, false);
        w.record(1_500, false, true);
        w.record(2_000, false, true);
        assert!((w.drift_ratio(2_000) - 1.0 / 3.0).abs() < 1e-12);
        assert!((w.success_ratio(2_000) - 2.0 / 3.0).abs() < 1e-12);
        // 5 minutes after its slot ended, the first slot has left the window.
        assert_eq!(w.totals(301_999), (3, 1, 2));
        assert_eq!(w.totals(302_000), (1, 0, 1));
        assert_eq!(w.totals(303_000), (0, 0, 0));
    }
}
