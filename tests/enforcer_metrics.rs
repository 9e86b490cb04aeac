//! The enforcer's metrics, each test on its own registry (no shared global to reset).

mod common;

use prometheus::Registry;
use proof::orchestrator::facade::EngineFiles;
use proof::orchestrator::metrics::{AdaptMetrics, Observation, SlidingWindow, render_registry};
use proof::orchestrator::{
    DecideOptions, EnforceOptions, Request, RolloutPercent, Scratch, SelectorKind, Verdict, decide,
};
use proof::policy::ListSpec;
use serde_json::Value;

/// An observation whose drift flag is given, not derived: these tests check counting
/// and rendering; whether a request drifts is decided by the engine (see
/// `drift_counter_counts_what_the_conformance_case_expects`).
fn obs(applied: bool, shadow: Verdict, enforced: Verdict, drift: bool) -> Observation<'static> {
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
        drift,
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
    m.observe(&obs(false, Verdict::Ok, Verdict::Fail, false));
    m.observe(&obs(false, Verdict::Ok, Verdict::Ok, false));
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
    m.observe(&obs(true, Verdict::Ok, Verdict::Ok, false));
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

/// The conformance traffic decided one request at a time by the real engine, as `adapt`
/// and `serve` do, its observations counted by the metrics.
fn conformance_counts(rollout: u8) -> AdaptMetrics {
    let c = common::conformance();
    let engine = EngineFiles {
        baseline: c.join("demo.v1.ir.json"),
        candidate: Some(c.join("demo.v2.ir.json")),
        selector: SelectorKind::Basic,
        weights: None,
        shadow_selector: SelectorKind::Basic,
        shadow_weights: None,
        salt: None,
        lists: vec![
            ListSpec {
                name: "sanctions".into(),
                path: c.join("sanctions.csv"),
            },
            ListSpec {
                name: "high_risk".into(),
                path: c.join("high_risk.txt"),
            },
        ],
    }
    .load()
    .unwrap();
    let options = EnforceOptions {
        enforce: true,
        rollout_percent: RolloutPercent::new(rollout).unwrap(),
        drift_max_ratio: 0.005,
    };
    let (_r, m) = fresh();
    let mut scratch = Scratch::default();
    let text = std::fs::read_to_string(c.join("traffic.jsonl")).unwrap();
    for line in text.lines() {
        // The records replay evaluates (SPEC §4): an object with an RFC 3339 or epoch
        // millisecond `ts`, a request id, a context, and no other policy's id.
        let Ok(Value::Object(rec)) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let ts = match &rec["ts"] {
            Value::String(s) => proof::policy::time::parse_rfc3339_ms(s),
            t => t.as_i64(),
        };
        let (Some(ts_ms), Some(id), Some(Value::Object(context))) = (
            ts,
            rec.get("request_id").and_then(Value::as_str),
            rec.get("context"),
        ) else {
            continue;
        };
        if id.is_empty() || rec.get("policy_id").is_some_and(|p| p != "demo.v1") {
            continue;
        }
        let (out, latency) = decide(
            &engine,
            DecideOptions {
                enforce: options,
                dry_run: false,
            },
            Request {
                ts_ms,
                request_id: id,
                bucket_key: None,
                context,
            },
            &mut scratch,
        );
        m.observe(&Observation {
            options,
            shadow_policy: "demo.v1",
            enforced_policy: "demo.v2",
            shadow: out.shadow.verdict,
            enforced: out.enforced.verdict,
            applied: out.enforced_applied,
            drift: out.drift,
            latency_seconds: latency,
        });
    }
    m
}

#[test]
fn drift_counter_counts_what_the_conformance_case_expects() {
    // fixtures/conformance/expected_v2_basic_r50.json (an independent implementation):
    // 39 records evaluated; drift events per rollout level 10 → 0, 25 → 1, 50 → 1,
    // 100 → 4; enforced verdicts 7 ok, 32 fail.
    for (rollout, drifts) in [(10, 0), (25, 1), (50, 1), (100, 4)] {
        let m = conformance_counts(rollout);
        let shadow = m.requests.with_label_values(&["shadow", "demo.v1"]).get();
        assert_eq!(shadow, 39, "rollout {rollout}");
        assert_eq!(
            m.drift_events.with_label_values(&["demo.v2"]).get(),
            drifts,
            "rollout {rollout}"
        );
    }
    let m = conformance_counts(100);
    assert_eq!(
        m.requests.with_label_values(&["enforced", "demo.v2"]).get(),
        39
    );
    assert_eq!(m.verdicts.with_label_values(&["enforced", "ok"]).get(), 7);
    assert_eq!(
        m.verdicts.with_label_values(&["enforced", "fail"]).get(),
        32
    );
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
