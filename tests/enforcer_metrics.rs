//! The enforcer's metrics, each test on its own registry (no shared global to reset).

use prometheus::Registry;
use proof::orchestrator::metrics::{AdaptMetrics, Observation, SlidingWindow, render_registry};
use proof::orchestrator::{EnforceOptions, RolloutPercent, Verdict};

fn obs(applied: bool, shadow: Verdict, enforced: Verdict) -> Observation<'static> {
    Observation {
        options: EnforceOptions {
            enforce: true,
            rollout_percent: RolloutPercent::new(25).unwrap(),
            drift_max_ratio: 0.005,
        },
        shadow_policy: "lksg.v1",
        enforced_policy: "lksg.v2",
        shadow,
        enforced,
        applied,
        drift: applied && shadow != enforced,
        latency_seconds: 4e-7,
    }
}

fn fresh() -> (Registry, AdaptMetrics) {
    let r = Registry::new();
    let m = AdaptMetrics::register(&r).unwrap();
    (r, m)
}

#[test]
fn metrics_increment_shadow_only() {
    let (r, m) = fresh();
    m.observe(&obs(false, Verdict::Ok, Verdict::Fail));
    m.observe(&obs(false, Verdict::Ok, Verdict::Ok));
    assert_eq!(
        m.requests.with_label_values(&["shadow", "lksg.v1"]).get(),
        2
    );
    assert_eq!(
        m.requests.with_label_values(&["enforced", "lksg.v2"]).get(),
        0
    );
    assert_eq!(m.drift_events.with_label_values(&["lksg.v2"]).get(), 0);
    assert_eq!(m.rollout_percent.get(), 25.0);
    let text = render_registry(&r);
    assert!(
        text.contains("adapt_requests_total{mode=\"shadow\",policy_id=\"lksg.v1\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("adapt_selection_latency_seconds_bucket{le=\"0.0000005\"} 2"),
        "{text}"
    );
}

#[test]
fn metrics_increment_enforced() {
    let (_r, m) = fresh();
    m.observe(&obs(true, Verdict::Ok, Verdict::Ok));
    assert_eq!(
        m.requests.with_label_values(&["shadow", "lksg.v1"]).get(),
        1
    );
    assert_eq!(
        m.requests.with_label_values(&["enforced", "lksg.v2"]).get(),
        1
    );
    assert_eq!(m.verdicts.with_label_values(&["enforced", "ok"]).get(), 1);
}

#[test]
fn drift_event_increments_counter() {
    let (_r, m) = fresh();
    m.observe(&obs(true, Verdict::Ok, Verdict::Fail));
    m.observe(&obs(true, Verdict::Fail, Verdict::Fail));
    m.observe(&obs(false, Verdict::Ok, Verdict::Fail)); // not enforced: no drift
    assert_eq!(m.drift_events.with_label_values(&["lksg.v2"]).get(), 1);
}

#[test]
fn drift_ratio_updates() {
    let (r, m) = fresh();
    let mut w = SlidingWindow::new(300_000, 1000);
    let t0 = 1_793_866_200_000;
    for (i, drift) in [true, false, false, false].into_iter().enumerate() {
        w.record(t0 + i as i64 * 1000, drift, true);
    }
    let g = m.drift_ratio.with_label_values(&["5m"]);
    g.set(w.drift_ratio(t0 + 3000));
    assert_eq!(g.get(), 0.25);
    // Five minutes after the drifting request, only the clean ones remain.
    g.set(w.drift_ratio(t0 + 301_000));
    assert_eq!(g.get(), 0.0);
    assert!(render_registry(&r).contains("adapt_drift_ratio{window=\"5m\"} 0"));
}

#[test]
fn policy_info_keeps_only_the_current_hash() {
    let (r, m) = fresh();
    m.set_policy("enforced", "lksg.v2", "sha3-256:aaa");
    m.set_policy("enforced", "lksg.v2", "sha3-256:bbb");
    let text = render_registry(&r);
    assert!(!text.contains("sha3-256:aaa"), "{text}");
    assert!(
        text.contains(
            "adapt_policy_info{ir_hash=\"sha3-256:bbb\",path=\"enforced\",policy_id=\"lksg.v2\"} 1"
        ),
        "{text}"
    );
}
