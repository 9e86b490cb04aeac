//! `gate.prom`: the gate's verdict as a few `proof_gate_*` gauges in the Prometheus
//! text format (0.0.4) **without timestamps**, for node_exporter's textfile collector
//! (`--collector.textfile.directory`), which refuses files whose samples carry
//! timestamps. Copy it there after a replay (see docs/runbook_rollout.md): alert on
//! `proof_gate_passed == 0` and on a stale `proof_gate_traffic_end_timestamp_seconds`.
//! Names and HELP texts come from `metrics::catalogue`; values from the report model.

use std::fmt::Write;

use super::Exporter;
use super::model::Report;
use crate::metrics::encode::{Value, family_sample};
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

/// `# HELP` and `# TYPE` of a family: every proof_gate family is a gauge in the 0.0.4
/// format that node_exporter's textfile collector reads, the info family included.
fn header(o: &mut String, f: &Family) {
    let _ = writeln!(o, "# HELP {} {}", f.sample, escape(f.help));
    let _ = writeln!(o, "# TYPE {} gauge", f.sample);
}

/// A family of one sample without labels.
fn one(o: &mut String, f: &Family, value: impl Into<Value>) {
    header(o, f);
    family_sample(o, f, &[], value, None);
}

/// A family of one sample per value of its one label (`state`, `outcome`).
fn by_label(o: &mut String, f: &Family, samples: &[(&str, u64)]) {
    header(o, f);
    for (k, v) in samples {
        family_sample(o, f, &[k], *v, None);
    }
}

/// The gate.prom text of a report.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let g = &r.gate;
    let (b, c) = (&r.inputs.baseline, &r.inputs.candidate);
    header(&mut o, &C::GATE_INFO);
    family_sample(
        &mut o,
        &C::GATE_INFO,
        &[
            &b.policy_id,
            &b.ir_hash,
            &c.policy_id,
            &c.ir_hash,
            &r.settings.window.to_string(),
        ],
        1u64,
        None,
    );
    one(&mut o, &C::GATE_PASSED, g.passed);
    one(&mut o, &C::GATE_EXIT_CODE, g.exit_code);
    one(&mut o, &C::GATE_ROLLOUT_PERCENT, g.rollout_percent.get());
    one(&mut o, &C::GATE_DRIFT_MAX, g.drift_max);
    one(&mut o, &C::GATE_MAX_SAFE, g.max_safe_rollout_percent);
    if let Some(c) = g.confidence {
        one(&mut o, &C::GATE_CONFIDENCE, c);
    }
    if let Some(p) = g.proven_safe_rollout_percent {
        one(&mut o, &C::GATE_PROVEN_SAFE, p);
    }
    if let Some(f) = &r.fidelity {
        let share = crate::replay::gate::ratio(f.unfaithful, f.checked);
        one(&mut o, &C::GATE_UNFAITHFUL_RATIO, share);
    }
    one(&mut o, &C::GATE_WINDOWS, r.windows.len());
    one(&mut o, &C::GATE_BREACHED_WINDOWS, g.breached_windows.len());
    let rec = &r.records;
    by_label(
        &mut o,
        &C::GATE_RECORDS,
        &[
            ("read", rec.read),
            ("evaluated", rec.evaluated),
            ("rejected", rec.rejected),
            ("skipped", rec.skipped),
        ],
    );
    if let Some(last) = r.series.last() {
        // A value in seconds (exact to the millisecond), not a sample timestamp:
        // gate.prom carries none.
        one(&mut o, &C::GATE_TRAFFIC_END, last.end_ms as f64 / 1000.0);
    }
    if let Some(p) = &r.plan {
        one(&mut o, &C::GATE_PLAN_PASSED, p.passed);
        let s = &p.summary;
        by_label(
            &mut o,
            &C::GATE_PLAN_RUNS,
            &[
                ("promoted", s.promoted),
                ("rolled_back", s.rolled_back),
                ("incomplete", s.incomplete),
            ],
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
