//! `metrics.om`: the replay as OpenMetrics text that `promtool tsdb
//! create-blocks-from openmetrics` backfills (SPEC §6). One sample per series per
//! window, timestamped at the window end (seconds); families contiguous; `# EOF` last.
//! Counters are cumulative over the replay; the drift gauges are per window. Beyond
//! SPEC §6: `adapt_window_requests` and `adapt_window_counted` (so dashboards can show
//! what the gate counts under `--min-requests`) and, with `--plan`,
//! `adapt_plan_rollout_percent` (the first run's simulated level). Family names and
//! HELP texts come from `metrics::catalogue`; the figures from the report model's
//! per-window series, never from the aggregate.

use std::fmt::Write;

use super::Exporter;
use super::model::{Report, ratio};
use crate::metrics::{Family, catalogue as C, escape as esc, openmetrics_header};
use crate::orchestrator::Verdict;
use crate::orchestrator::metrics::LATENCY_BUCKETS;

/// Writes metrics.om.
pub struct OpenMetricsExporter;

fn ts(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{}", ms / 1000)
    } else {
        // Exact for any millisecond count below 2^53.
        format!("{:.3}", ms as f64 / 1000.0)
    }
}

fn family(out: &mut String, f: &Family) {
    openmetrics_header(out, f.name, f.kind.as_str(), f.unit, f.replay_help());
}

impl Exporter for OpenMetricsExporter {
    fn file_name(&self) -> &'static str {
        "metrics.om"
    }

    fn serialize(&self, r: &Report) -> Result<Vec<u8>, crate::error::ProofError> {
        Ok(render(r))
    }
}

/// The metrics.om text of a report.
fn render(r: &Report) -> Vec<u8> {
    let mut o = String::new();
    let gate = r.gate.rollout_percent;
    let window = esc(&r.config.window);
    let base = &r.inputs.baseline;
    let cand = &r.inputs.candidate;
    let (bid, cid) = (esc(&base.policy_id), esc(&cand.policy_id));

    let f = C::ENFORCE_ROLLOUT_PERCENT;
    family(&mut o, &f);
    for s in &r.series {
        let _ = writeln!(o, "{} {} {}", f.sample, gate, ts(s.end_ms));
    }

    let f = C::REQUESTS;
    family(&mut o, &f);
    let mut n = 0u64;
    for s in &r.series {
        n += s.requests;
        let _ = writeln!(
            o,
            "{}{{mode=\"shadow\",policy_id=\"{bid}\"}} {n} {}",
            f.sample,
            ts(s.end_ms)
        );
    }
    let mut n = 0u64;
    for s in &r.series {
        let e = &s.enforced_at_gate;
        n += e.ok + e.warn + e.fail;
        let _ = writeln!(
            o,
            "{}{{mode=\"enforced\",policy_id=\"{cid}\"}} {n} {}",
            f.sample,
            ts(s.end_ms)
        );
    }

    let f = C::DRIFT_EVENTS;
    family(&mut o, &f);
    let mut n = 0u64;
    for s in &r.series {
        n += s.drift_at(gate);
        let _ = writeln!(
            o,
            "{}{{policy_id=\"{cid}\"}} {n} {}",
            f.sample,
            ts(s.end_ms)
        );
    }

    let f = C::DRIFT_RATIO;
    family(&mut o, &f);
    for s in &r.series {
        let v = ratio(s.drift_at(gate), s.requests);
        let _ = writeln!(
            o,
            "{}{{window=\"{window}\"}} {v} {}",
            f.sample,
            ts(s.end_ms)
        );
    }

    let f = C::WHATIF_DRIFT_RATIO;
    family(&mut o, &f);
    for l in &r.config.levels {
        for s in &r.series {
            let v = ratio(s.drift_at(*l), s.requests);
            let _ = writeln!(
                o,
                "{}{{window=\"{window}\",rollout=\"{l}\"}} {v} {}",
                f.sample,
                ts(s.end_ms)
            );
        }
    }

    let f = C::VERDICTS;
    family(&mut o, &f);
    for v in Verdict::ALL {
        let mut n = 0u64;
        for s in &r.series {
            n += s.shadow.of(v);
            let _ = writeln!(
                o,
                "{}{{mode=\"shadow\",verdict=\"{}\"}} {n} {}",
                f.sample,
                v.as_str(),
                ts(s.end_ms)
            );
        }
    }
    for v in Verdict::ALL {
        let mut n = 0u64;
        for s in &r.series {
            n += s.enforced_at_gate.of(v);
            let _ = writeln!(
                o,
                "{}{{mode=\"enforced\",verdict=\"{}\"}} {n} {}",
                f.sample,
                v.as_str(),
                ts(s.end_ms)
            );
        }
    }

    let f = C::POLICY;
    family(&mut o, &f);
    for (path, p) in [("shadow", base), ("enforced", cand)] {
        for s in &r.series {
            let _ = writeln!(
                o,
                "{}{{path=\"{path}\",policy_id=\"{}\",ir_hash=\"{}\"}} 1 {}",
                f.sample,
                esc(&p.policy_id),
                esc(&p.ir_hash),
                ts(s.end_ms)
            );
        }
    }

    let f = C::SELECTION_LATENCY;
    family(&mut o, &f);
    let name = f.sample;
    let mut cum = [0u64; LATENCY_BUCKETS.len() + 1];
    let mut sum_ns = 0u64;
    for s in &r.series {
        for (c, b) in cum.iter_mut().zip(&s.latency_buckets) {
            *c += b;
        }
        sum_ns += s.latency_sum_ns;
        let t = ts(s.end_ms);
        let mut running = 0u64;
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            running += cum[i];
            let _ = writeln!(o, "{name}_bucket{{le=\"{le}\"}} {running} {t}");
        }
        running += cum[LATENCY_BUCKETS.len()];
        let _ = writeln!(o, "{name}_bucket{{le=\"+Inf\"}} {running} {t}");
        let _ = writeln!(o, "{name}_count {running} {t}");
        let _ = writeln!(o, "{name}_sum {} {t}", sum_ns as f64 * 1e-9);
    }

    let f = C::WINDOW_REQUESTS;
    family(&mut o, &f);
    for s in &r.series {
        let _ = writeln!(
            o,
            "{}{{window=\"{window}\"}} {} {}",
            f.sample,
            s.requests,
            ts(s.end_ms)
        );
    }

    let f = C::WINDOW_COUNTED;
    family(&mut o, &f);
    for s in &r.series {
        let _ = writeln!(
            o,
            "{}{{window=\"{window}\"}} {} {}",
            f.sample,
            u8::from(s.counted),
            ts(s.end_ms)
        );
    }

    if r.plan_result.is_some() {
        let f = C::PLAN_ROLLOUT_PERCENT;
        family(&mut o, &f);
        for s in &r.series {
            if let Some(l) = s.plan_rollout_percent {
                let _ = writeln!(o, "{} {l} {}", f.sample, ts(s.end_ms));
            }
        }
    }
    o.push_str("# EOF\n");
    o.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::view::sample;

    #[test]
    fn timestamps_and_escaping() {
        assert_eq!(ts(1_793_866_200_000), "1793866200");
        assert_eq!(ts(1_500), "1.500");
        assert_eq!(ts(-1_500), "-1.500");
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn window_requests_and_counted_flags_follow_min_requests() {
        // The sample: windows of 4, 1 and 10 requests with --min-requests 2.
        let text = String::from_utf8(render(&sample::report())).unwrap();
        let lines = |name: &str| -> Vec<String> {
            text.lines()
                .filter(|l| {
                    l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} "))
                })
                .map(str::to_string)
                .collect()
        };
        assert_eq!(
            lines("adapt_window_requests"),
            [
                "adapt_window_requests{window=\"1m\"} 4 60",
                "adapt_window_requests{window=\"1m\"} 1 120",
                "adapt_window_requests{window=\"1m\"} 10 180"
            ]
        );
        assert_eq!(
            lines("adapt_window_counted"),
            [
                "adapt_window_counted{window=\"1m\"} 1 60",
                "adapt_window_counted{window=\"1m\"} 0 120",
                "adapt_window_counted{window=\"1m\"} 1 180"
            ]
        );
        // At the gate level (50 %): window 0 has buckets 500 (5 %) drifting → 1 of 4.
        assert_eq!(
            lines("adapt_drift_ratio")[0],
            "adapt_drift_ratio{window=\"1m\"} 0.25 60"
        );
        // No plan: no plan family.
        assert!(!text.contains("adapt_plan_rollout_percent"));
        assert!(text.ends_with("# EOF\n"));
    }
}
