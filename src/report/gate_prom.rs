//! `gate.prom`: the gate's verdict as a few `proof_gate_*` gauges in the Prometheus
//! text format (0.0.4) **without timestamps**, for node_exporter's textfile collector
//! (`--collector.textfile.directory`), which refuses files whose samples carry
//! timestamps. Copy it there after a replay (see docs/runbook_rollout.md): alert on
//! `proof_gate_passed == 0` and on a stale `proof_gate_traffic_end_timestamp_seconds`.
//! Names and HELP texts come from `metrics::catalogue`; values from the report model.

use std::fmt::Write;

use super::Exporter;
use super::model::Report;
use crate::metrics::{Family, catalogue as C, escape};

/// Writes gate.prom.
pub struct GatePromExporter;

impl Exporter for GatePromExporter {
    fn file_name(&self) -> &'static str {
        "gate.prom"
    }

    fn serialize(&self, r: &Report) -> Result<Vec<u8>, crate::error::ProofError> {
        Ok(render(r).into_bytes())
    }
}

/// A float the way Prometheus parses it back exactly.
fn num(x: f64) -> String {
    serde_json::to_string(&x).unwrap_or_else(|_| x.to_string())
}

/// `# HELP`, `# TYPE` (every proof_gate family is a gauge in the 0.0.4 format, the
/// info family included) and one sample per `(labels, value)`.
fn gauge(o: &mut String, f: &Family, samples: &[(String, String)]) {
    let _ = writeln!(o, "# HELP {} {}", f.sample, escape(f.help));
    let _ = writeln!(o, "# TYPE {} gauge", f.sample);
    for (labels, value) in samples {
        let _ = writeln!(o, "{}{labels} {value}", f.sample);
    }
}

fn one(o: &mut String, f: &Family, value: String) {
    gauge(o, f, &[(String::new(), value)]);
}

/// The gate.prom text of a report.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let g = &r.gate;
    let (b, c) = (&r.inputs.baseline, &r.inputs.candidate);
    gauge(
        &mut o,
        &C::GATE_INFO,
        &[(
            format!(
                "{{baseline=\"{}\",baseline_ir_hash=\"{}\",candidate=\"{}\",candidate_ir_hash=\"{}\",window=\"{}\"}}",
                escape(&b.policy_id),
                escape(&b.ir_hash),
                escape(&c.policy_id),
                escape(&c.ir_hash),
                escape(&r.config.window)
            ),
            "1".into(),
        )],
    );
    one(&mut o, &C::GATE_PASSED, u8::from(g.passed).to_string());
    one(&mut o, &C::GATE_EXIT_CODE, g.exit_code.to_string());
    one(
        &mut o,
        &C::GATE_ROLLOUT_PERCENT,
        g.rollout_percent.to_string(),
    );
    one(&mut o, &C::GATE_DRIFT_MAX, num(g.drift_max));
    one(
        &mut o,
        &C::GATE_MAX_SAFE,
        g.max_safe_rollout_percent.to_string(),
    );
    if let Some(c) = g.confidence {
        one(&mut o, &C::GATE_CONFIDENCE, num(c));
    }
    if let Some(p) = g.proven_safe_rollout_percent {
        one(&mut o, &C::GATE_PROVEN_SAFE, p.to_string());
    }
    if let Some(f) = &r.fidelity {
        one(
            &mut o,
            &C::GATE_UNFAITHFUL_RATIO,
            num(crate::replay::gate::ratio(f.unfaithful, f.checked)),
        );
    }
    one(&mut o, &C::GATE_WINDOWS, r.windows.len().to_string());
    one(
        &mut o,
        &C::GATE_BREACHED_WINDOWS,
        g.breached_windows.len().to_string(),
    );
    let rec = &r.records;
    gauge(
        &mut o,
        &C::GATE_RECORDS,
        &[
            ("read", rec.read),
            ("evaluated", rec.evaluated),
            ("rejected", rec.rejected),
            ("skipped", rec.skipped),
        ]
        .map(|(k, v)| (format!("{{state=\"{k}\"}}"), v.to_string())),
    );
    if let Some(last) = r.series.last() {
        // Whole seconds: windows are whole seconds or longer in practice; keep ms exact.
        one(
            &mut o,
            &C::GATE_TRAFFIC_END,
            if last.end_ms % 1000 == 0 {
                (last.end_ms / 1000).to_string()
            } else {
                format!("{:.3}", last.end_ms as f64 / 1000.0)
            },
        );
    }
    if let Some(p) = &r.plan {
        one(&mut o, &C::GATE_PLAN_PASSED, u8::from(p.passed).to_string());
        let s = &p.summary;
        gauge(
            &mut o,
            &C::GATE_PLAN_RUNS,
            &[
                ("promoted", s.promoted),
                ("rolled_back", s.rolled_back),
                ("incomplete", s.incomplete),
            ]
            .map(|(k, v)| (format!("{{outcome=\"{k}\"}}"), v.to_string())),
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::view::sample;

    #[test]
    fn gate_summary_has_no_timestamps() {
        let text = render(&sample::report());
        // The sample: gate 50 % failed, safe up to 5 %, windows at 0, 1 and 2 min.
        assert!(text.contains("\nproof_gate_passed 0\n"), "{text}");
        assert!(text.contains("\nproof_gate_exit_code 1\n"));
        assert!(text.contains("\nproof_gate_max_safe_rollout_percent 5\n"));
        assert!(text.contains("\nproof_gate_drift_max_ratio 0.1\n"));
        assert!(text.contains("\nproof_gate_breached_windows 2\n"));
        assert!(text.contains("\nproof_gate_traffic_end_timestamp_seconds 180\n"));
        assert!(text.contains("proof_gate_info{baseline=\"p|<x>\","));
        assert!(!text.contains("proof_gate_confidence"));
        // A sample line is `name{labels} value`: exactly one space outside the labels.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let outside = l.rsplit_once('}').map_or(l, |(_, rest)| rest);
            let fields = if outside.len() < l.len() {
                outside.split_whitespace().count()
            } else {
                outside.split_whitespace().count() - 1
            };
            assert_eq!(fields, 1, "a timestamp or junk in {l:?}");
        }
    }
}
