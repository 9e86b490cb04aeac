//! The server's metrics and its real-time readiness windows. Every family lives on a
//! registry owned by one server instance (never the global default), so several
//! servers — tests, say — can run in one process.
//!
//! Labels carry only loaded policy ids and hashes, window names, route paths and the
//! access map's hash: never request ids, tokens or context values.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use prometheus::{GaugeVec, Histogram, IntCounter, IntCounterVec, Opts, Registry};

use crate::orchestrator::Verdict;
use crate::orchestrator::metrics::{AdaptMetrics, Observation, SlidingWindow};

/// Reload and readiness families beside the `adapt_*` ones of `proof adapt`.
#[derive(Clone)]
pub struct ServeMetrics {
    /// The registry everything below is registered on.
    pub registry: Registry,
    /// Every metric of `proof adapt`.
    pub adapt: AdaptMetrics,
    /// `adapt_policy_reload_checks_total`: reload ticks that looked at the files.
    pub reload_checks: IntCounter,
    /// `adapt_policy_reload_hits_total`: changed, valid content swapped in.
    pub reload_hits: IntCounter,
    /// `adapt_policy_reload_errors_total`: changed content refused (old one kept).
    pub reload_errors: IntCounter,
    /// `adapt_readyz_success_ratio{window}`.
    pub readyz_success: GaugeVec,
    /// `adapt_http_responses_total{route, code}`.
    pub responses: IntCounterVec,
    /// The `{route="/v1/adapt", code="200"}` child, resolved once.
    adapt_ok: IntCounter,
}

fn counter(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntCounter> {
    let c = IntCounter::new(name, help)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

impl ServeMetrics {
    /// Creates a fresh registry with every serve family on it.
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let adapt = AdaptMetrics::register(&registry)?;
        let readyz_success = GaugeVec::new(
            Opts::new(
                "adapt_readyz_success_ratio",
                "Share of /v1/adapt requests answered 2xx in a sliding window (1.0 when empty).",
            ),
            &["window"],
        )?;
        registry.register(Box::new(readyz_success.clone()))?;
        let responses = counter_vec(
            &registry,
            "adapt_http_responses_total",
            "HTTP responses, by route and status code.",
            &["route", "code"],
        )?;
        Ok(ServeMetrics {
            reload_checks: counter(
                &registry,
                "adapt_policy_reload_checks_total",
                "Reload ticks that re-read the IR, weights and list files.",
            )?,
            reload_hits: counter(
                &registry,
                "adapt_policy_reload_hits_total",
                "Changed, valid policy content swapped in.",
            )?,
            reload_errors: counter(
                &registry,
                "adapt_policy_reload_errors_total",
                "Changed policy content refused as invalid; the previous version kept serving.",
            )?,
            adapt_ok: responses.with_label_values(&["/v1/adapt", "200"]),
            responses,
            readyz_success,
            adapt,
            registry,
        })
    }
}

impl ServeMetrics {
    /// Counts one response of `route`.
    pub fn count_response(&self, route: &str, status: u16) {
        if status == 200 && route == "/v1/adapt" {
            self.adapt_ok.inc();
        } else {
            let code = status.to_string();
            self.responses.with_label_values(&[route, &code]).inc();
        }
    }
}

/// The `adapt_*` series of one loaded policy, resolved once so that a request does
/// not hash label values: the same counts as `AdaptMetrics::observe`.
#[derive(Debug)]
pub struct PolicyCounters {
    requests: [IntCounter; 2],
    verdicts: [[IntCounter; 3]; 2],
    drift: IntCounter,
    latency: Histogram,
}

impl PolicyCounters {
    /// Resolves the series of a baseline (shadow path) and a candidate (enforced path;
    /// drift events count under its id, as in `AdaptMetrics::observe`).
    pub fn new(m: &AdaptMetrics, shadow_policy: &str, enforced_policy: &str) -> Self {
        let modes = [("shadow", shadow_policy), ("enforced", enforced_policy)];
        PolicyCounters {
            requests: modes.map(|(mode, id)| m.requests.with_label_values(&[mode, id])),
            verdicts: modes.map(|(mode, _)| {
                Verdict::ALL.map(|v| m.verdicts.with_label_values(&[mode, v.as_str()]))
            }),
            drift: m.drift_events.with_label_values(&[enforced_policy]),
            latency: m.selection_latency.clone(),
        }
    }

    /// Counts one request's outcome.
    pub fn observe(&self, o: &Observation<'_>) {
        self.requests[0].inc();
        self.verdicts[0][o.shadow.index()].inc();
        if o.applied {
            self.requests[1].inc();
            self.verdicts[1][o.enforced.index()].inc();
        }
        if o.drift {
            self.drift.inc();
        }
        self.latency.observe(o.latency_seconds);
    }
}

/// The `rbac_*` families, registered only when `--rbac` is given.
#[derive(Clone)]
pub struct RbacMetrics {
    /// `rbac_allowed_total{route}`.
    pub allowed: IntCounterVec,
    /// `rbac_forbidden_total{route, reason="unauthenticated|missing_scope"}` (401 and 403).
    pub forbidden: IntCounterVec,
    /// `rbac_route_matches_total{route}`: requests to a protected route checked against the map.
    pub route_matches: IntCounterVec,
    /// `rbac_reload_checks_total`.
    pub reload_checks: IntCounter,
    /// `rbac_reload_hits_total`.
    pub reload_hits: IntCounter,
    /// `rbac_reload_errors_total`.
    pub reload_errors: IntCounter,
    /// `rbac_map_info{etag}`: SHA-256 of the access map in force.
    pub map_info: GaugeVec,
    current: std::sync::Arc<Mutex<Option<String>>>,
}

impl RbacMetrics {
    /// Registers the families on `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let map_info = GaugeVec::new(
            Opts::new(
                "rbac_map_info",
                "Access map in force (value 1); etag = hex SHA-256 of the file.",
            ),
            &["etag"],
        )?;
        registry.register(Box::new(map_info.clone()))?;
        Ok(RbacMetrics {
            allowed: counter_vec(
                registry,
                "rbac_allowed_total",
                "Requests let through by the access map.",
                &["route"],
            )?,
            forbidden: counter_vec(
                registry,
                "rbac_forbidden_total",
                "Requests refused by the access map: 401 (unauthenticated) or 403 (missing_scope).",
                &["route", "reason"],
            )?,
            route_matches: counter_vec(
                registry,
                "rbac_route_matches_total",
                "Requests to a protected route, checked against the access map.",
                &["route"],
            )?,
            reload_checks: counter(
                registry,
                "rbac_reload_checks_total",
                "Reload ticks that re-read the access map.",
            )?,
            reload_hits: counter(
                registry,
                "rbac_reload_hits_total",
                "Changed, valid access maps swapped in.",
            )?,
            reload_errors: counter(
                registry,
                "rbac_reload_errors_total",
                "Changed access maps refused as invalid; the previous map kept in force.",
            )?,
            map_info,
            current: Default::default(),
        })
    }

    /// Exports `etag` as the only `rbac_map_info` series.
    pub fn set_etag(&self, etag: &str) {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = cur.as_deref() {
            let _ = self.map_info.remove_label_values(&[old]);
        }
        self.map_info.with_label_values(&[etag]).set(1.0);
        *cur = Some(etag.to_string());
    }
}

/// Evaluated and drifting requests in the five-minute window at one instant (the
/// counts behind `drift_ratio_5m`, for the Wilson bounds of `--confidence`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriftCounts {
    /// Evaluated requests (answered 200).
    pub evaluated: u64,
    /// Drifting ones among them.
    pub drifting: u64,
}

/// The readiness ratios at one instant.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Ratios {
    /// Answered 2xx over answered, last minute (1.0 when empty).
    pub success_ratio_1m: f64,
    /// Same over five minutes.
    pub success_ratio_5m: f64,
    /// Drifting over evaluated requests, last minute (0.0 when empty).
    pub drift_ratio_1m: f64,
    /// Same over five minutes.
    pub drift_ratio_5m: f64,
}

/// Real-time sliding windows of 1 and 5 minutes (one-second slots) over
/// `/v1/adapt`: every answer (for the success ratio) and every evaluated request
/// (for the drift ratio).
pub struct Windows {
    start: Instant,
    /// Virtual milliseconds per real millisecond (1.0 outside tests).
    speed: f64,
    inner: Mutex<WindowSet>,
}

struct WindowSet {
    answered: [SlidingWindow; 2],
    evaluated: [SlidingWindow; 2],
}

/// Names and lengths of the two windows.
pub const WINDOWS: [(&str, i64); 2] = [("1m", 60_000), ("5m", 300_000)];

impl Windows {
    /// Windows on the real clock scaled by `scale` (1.0 = real time; 0.01 makes the
    /// five-minute window last three seconds — for tests only).
    pub fn new(scale: f64) -> Self {
        let mk = || WINDOWS.map(|(_, len)| SlidingWindow::new(len, 1000));
        Windows {
            start: Instant::now(),
            speed: 1.0 / scale,
            inner: Mutex::new(WindowSet {
                answered: mk(),
                evaluated: mk(),
            }),
        }
    }

    fn now_ms(&self) -> i64 {
        (self.start.elapsed().as_secs_f64() * 1000.0 * self.speed) as i64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WindowSet> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one answer to `/v1/adapt`; `evaluated` = `Some(drift)` when the engine ran.
    pub fn record(&self, success: bool, evaluated: Option<bool>) {
        let now = self.now_ms();
        let mut w = self.lock();
        for a in &mut w.answered {
            a.record(now, false, success);
        }
        if let Some(drift) = evaluated {
            for e in &mut w.evaluated {
                e.record(now, drift, true);
            }
        }
    }

    /// The four ratios now.
    pub fn ratios(&self) -> Ratios {
        self.snapshot().0
    }

    /// The four ratios and the five-minute window's counts, at one instant.
    pub fn snapshot(&self) -> (Ratios, DriftCounts) {
        let now = self.now_ms();
        let mut w = self.lock();
        let (n, k, _) = w.evaluated[1].totals(now);
        let counts = DriftCounts {
            evaluated: n,
            drifting: k,
        };
        let [a1, a5] = &mut w.answered;
        let (s1, s5) = (a1.success_ratio(now), a5.success_ratio(now));
        let [e1, e5] = &mut w.evaluated;
        let r = Ratios {
            success_ratio_1m: s1,
            success_ratio_5m: s5,
            drift_ratio_1m: e1.drift_ratio(now),
            drift_ratio_5m: e5.drift_ratio(now),
        };
        (r, counts)
    }
}

/// Copies the ratios into their gauges.
pub fn export_ratios(m: &ServeMetrics, r: &Ratios) {
    let pairs: BTreeMap<&str, (f64, f64)> = [
        ("1m", (r.success_ratio_1m, r.drift_ratio_1m)),
        ("5m", (r.success_ratio_5m, r.drift_ratio_5m)),
    ]
    .into_iter()
    .collect();
    for (w, (s, d)) in pairs {
        m.readyz_success.with_label_values(&[w]).set(s);
        m.adapt.drift_ratio.with_label_values(&[w]).set(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_windows_read_success_one_drift_zero() {
        let w = Windows::new(1.0);
        let r = w.ratios();
        assert_eq!(
            (
                r.success_ratio_1m,
                r.success_ratio_5m,
                r.drift_ratio_1m,
                r.drift_ratio_5m
            ),
            (1.0, 1.0, 0.0, 0.0)
        );
        w.record(true, Some(true));
        w.record(true, Some(false));
        w.record(false, None);
        w.record(true, Some(false));
        let r = w.ratios();
        assert_eq!(r.success_ratio_1m, 0.75);
        assert_eq!(r.success_ratio_5m, 0.75);
        // The failure (a 5xx) is not an evaluated request: 1 drift over 3.
        assert!((r.drift_ratio_5m - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn two_servers_two_registries() {
        let a = ServeMetrics::new().unwrap();
        let b = ServeMetrics::new().unwrap();
        a.reload_hits.inc();
        assert_eq!(b.reload_hits.get(), 0);
        RbacMetrics::register(&a.registry).unwrap();
        assert!(RbacMetrics::register(&b.registry).is_ok());
    }
}
