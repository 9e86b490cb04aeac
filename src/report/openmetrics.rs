//! `metrics.om`: the replay as OpenMetrics text that `promtool tsdb
//! create-blocks-from openmetrics` backfills (SPEC §6). One sample per series per
//! window, timestamped at the window end (seconds); families contiguous; `# EOF` last.
//! Counters are cumulative over the replay; the drift gauges are per window.

use std::fmt::Write;

use super::Exporter;
use super::model::{Report, ratio};
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

/// Escapes a label value (backslash, quote, newline).
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str, unit: Option<&str>) {
    let _ = writeln!(out, "# TYPE {name} {kind}");
    if let Some(u) = unit {
        let _ = writeln!(out, "# UNIT {name} {u}");
    }
    let _ = writeln!(out, "# HELP {name} {help}");
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

    family(
        &mut o,
        "adapt_enforce_rollout_percent",
        "gauge",
        "Share of requests the candidate path decides for, in percent (replay gate level).",
        None,
    );
    for s in &r.series {
        let _ = writeln!(o, "adapt_enforce_rollout_percent {} {}", gate, ts(s.end_ms));
    }

    family(
        &mut o,
        "adapt_requests",
        "counter",
        "Requests evaluated, by path.",
        None,
    );
    let mut n = 0u64;
    for s in &r.series {
        n += s.agg.requests;
        let _ = writeln!(
            o,
            "adapt_requests_total{{mode=\"shadow\",policy_id=\"{bid}\"}} {n} {}",
            ts(s.end_ms)
        );
    }
    let mut n = 0u64;
    for s in &r.series {
        n += s.agg.enforced_at(gate).iter().sum::<u64>();
        let _ = writeln!(
            o,
            "adapt_requests_total{{mode=\"enforced\",policy_id=\"{cid}\"}} {n} {}",
            ts(s.end_ms)
        );
    }

    family(
        &mut o,
        "adapt_drift_events",
        "counter",
        "Enforced requests whose verdict differs from shadow, at the gate level.",
        None,
    );
    let mut n = 0u64;
    for s in &r.series {
        n += s.agg.drift_at(gate);
        let _ = writeln!(
            o,
            "adapt_drift_events_total{{policy_id=\"{cid}\"}} {n} {}",
            ts(s.end_ms)
        );
    }

    family(
        &mut o,
        "adapt_drift_ratio",
        "gauge",
        "Drift events over requests in the window, at the gate level.",
        None,
    );
    for s in &r.series {
        let v = ratio(s.agg.drift_at(gate), s.agg.requests);
        let _ = writeln!(
            o,
            "adapt_drift_ratio{{window=\"{window}\"}} {v} {}",
            ts(s.end_ms)
        );
    }

    family(
        &mut o,
        "adapt_whatif_drift_ratio",
        "gauge",
        "Drift ratio in the window if the candidate were enforced at this rollout level.",
        None,
    );
    for l in &r.config.levels {
        for s in &r.series {
            let v = ratio(s.agg.drift_at(*l), s.agg.requests);
            let _ = writeln!(
                o,
                "adapt_whatif_drift_ratio{{window=\"{window}\",rollout=\"{l}\"}} {v} {}",
                ts(s.end_ms)
            );
        }
    }

    family(
        &mut o,
        "adapt_verdicts",
        "counter",
        "Verdicts by path (enforced: requests enforced at the gate level).",
        None,
    );
    for v in Verdict::ALL {
        let mut n = 0u64;
        for s in &r.series {
            n += s.agg.shadow[v.index()];
            let _ = writeln!(
                o,
                "adapt_verdicts_total{{mode=\"shadow\",verdict=\"{}\"}} {n} {}",
                v.as_str(),
                ts(s.end_ms)
            );
        }
    }
    for v in Verdict::ALL {
        let mut n = 0u64;
        for s in &r.series {
            n += s.agg.enforced_at(gate)[v.index()];
            let _ = writeln!(
                o,
                "adapt_verdicts_total{{mode=\"enforced\",verdict=\"{}\"}} {n} {}",
                v.as_str(),
                ts(s.end_ms)
            );
        }
    }

    family(
        &mut o,
        "adapt_policy",
        "info",
        "Policies of the replay's shadow and enforced paths.",
        None,
    );
    for (path, p) in [("shadow", base), ("enforced", cand)] {
        for s in &r.series {
            let _ = writeln!(
                o,
                "adapt_policy_info{{path=\"{path}\",policy_id=\"{}\",ir_hash=\"{}\"}} 1 {}",
                esc(&p.policy_id),
                esc(&p.ir_hash),
                ts(s.end_ms)
            );
        }
    }

    family(
        &mut o,
        "adapt_selection_latency_seconds",
        "histogram",
        "Time to select, plan and run the rules of one request (both paths).",
        Some("seconds"),
    );
    let mut cum = [0u64; LATENCY_BUCKETS.len() + 1];
    let mut sum_ns = 0u64;
    for s in &r.series {
        for (c, b) in cum.iter_mut().zip(&s.agg.latency_buckets) {
            *c += b;
        }
        sum_ns += s.agg.latency_sum_ns;
        let t = ts(s.end_ms);
        let mut running = 0u64;
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            running += cum[i];
            let _ = writeln!(
                o,
                "adapt_selection_latency_seconds_bucket{{le=\"{le}\"}} {running} {t}"
            );
        }
        running += cum[LATENCY_BUCKETS.len()];
        let _ = writeln!(
            o,
            "adapt_selection_latency_seconds_bucket{{le=\"+Inf\"}} {running} {t}"
        );
        let _ = writeln!(o, "adapt_selection_latency_seconds_count {running} {t}");
        let _ = writeln!(
            o,
            "adapt_selection_latency_seconds_sum {} {t}",
            sum_ns as f64 * 1e-9
        );
    }
    o.push_str("# EOF\n");
    o.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_escaping() {
        assert_eq!(ts(1_793_866_200_000), "1793866200");
        assert_eq!(ts(1_500), "1.500");
        assert_eq!(ts(-1_500), "-1.500");
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
