//! `metrics.om`: the replay as OpenMetrics text that `promtool tsdb
//! create-blocks-from openmetrics` backfills (SPEC §6). One sample per series per
//! window, timestamped at the window end (seconds); families contiguous; `# EOF` last.
//! Counters are cumulative over the replay; the drift gauges are per window. Beyond
//! SPEC §6: `adapt_window_requests` and `adapt_window_counted` (so dashboards can show
//! what the gate counts under `--min-requests`) and, with `--plan`,
//! `adapt_plan_rollout_percent` (the first run's simulated level) and, when records
//! carried production's verdict (SPEC §11), the `adapt_fidelity_*` families. Family names and
//! HELP texts come from `metrics::catalogue`; the figures from the report model's
//! per-window series, never from the aggregate.

use std::fmt::Write;

use super::Exporter;
use super::model::{Report, ratio};
use crate::metrics::{Family, catalogue as C, escape as esc, openmetrics_header};
use crate::orchestrator::metrics::LATENCY_BUCKETS;
use crate::orchestrator::{DriftKind, Verdict};

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

    fidelity(&mut o, r, &bid);

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

/// The fidelity families (SPEC §11), when a record carried production's verdict: one
/// sample each at the end of the last window, since the check covers the whole replay
/// (the aggregate keeps no per-window fidelity). Labels: the baseline's policy id and
/// verdicts only.
fn fidelity(o: &mut String, r: &Report, bid: &str) {
    let (Some(fd), Some(last)) = (&r.fidelity, r.series.last()) else {
        return;
    };
    let t = ts(last.end_ms);
    let f = C::FIDELITY_CHECKED;
    family(o, &f);
    let _ = writeln!(o, "{}{{policy_id=\"{bid}\"}} {} {t}", f.sample, fd.checked);
    let f = C::FIDELITY_FAITHFUL;
    family(o, &f);
    let _ = writeln!(o, "{}{{policy_id=\"{bid}\"}} {} {t}", f.sample, fd.faithful);
    let f = C::FIDELITY_UNFAITHFUL;
    family(o, &f);
    // Every recorded → replayed pair, zeros too, so each series exists in every replay.
    for recorded in Verdict::ALL {
        for replayed in Verdict::ALL {
            let Some(kind) = DriftKind::of(recorded, replayed) else {
                continue;
            };
            let n = fd.by_kind.get(kind.as_str()).copied().unwrap_or(0);
            let _ = writeln!(
                o,
                "{}{{policy_id=\"{bid}\",recorded=\"{}\",replayed=\"{}\"}} {n} {t}",
                f.sample,
                recorded.as_str(),
                replayed.as_str()
            );
        }
    }
    let f = C::FIDELITY_UNFAITHFUL_RATIO;
    family(o, &f);
    let _ = writeln!(
        o,
        "{}{{policy_id=\"{bid}\"}} {} {t}",
        f.sample,
        ratio(fd.unfaithful, fd.checked)
    );
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

    #[test]
    fn fidelity_families_carry_the_whole_replay_at_its_end() {
        let mut r = sample::report();
        let text = String::from_utf8(render(&r)).unwrap();
        assert!(
            !text.contains("adapt_fidelity"),
            "no verdicts recorded: no family"
        );
        // 15 records checked, 2 recorded fail replayed ok, 1 recorded ok replayed warn.
        r.fidelity = Some(crate::report::model::FidelityOut {
            checked: 15,
            faithful: 12,
            unfaithful: 3,
            by_kind: [("fail->ok", 2), ("ok->warn", 1)].into_iter().collect(),
        });
        let text = String::from_utf8(render(&r)).unwrap();
        let fam: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("adapt_fidelity"))
            .collect();
        assert_eq!(
            fam,
            [
                "# TYPE adapt_fidelity_checked counter",
                "# HELP adapt_fidelity_checked Evaluated records carrying production's verdict, compared with the replayed baseline's.",
                "adapt_fidelity_checked_total{policy_id=\"p|<x>\"} 15 180",
                "# TYPE adapt_fidelity_faithful counter",
                "# HELP adapt_fidelity_faithful Records the replayed baseline answered as production did.",
                "adapt_fidelity_faithful_total{policy_id=\"p|<x>\"} 12 180",
                "# TYPE adapt_fidelity_unfaithful counter",
                "# HELP adapt_fidelity_unfaithful Records the replayed baseline answered otherwise than production, by production's (recorded) and the replay's verdict.",
                "adapt_fidelity_unfaithful_total{policy_id=\"p|<x>\",recorded=\"ok\",replayed=\"warn\"} 1 180",
                "adapt_fidelity_unfaithful_total{policy_id=\"p|<x>\",recorded=\"ok\",replayed=\"fail\"} 0 180",
                "adapt_fidelity_unfaithful_total{policy_id=\"p|<x>\",recorded=\"warn\",replayed=\"ok\"} 0 180",
                "adapt_fidelity_unfaithful_total{policy_id=\"p|<x>\",recorded=\"warn\",replayed=\"fail\"} 0 180",
                "adapt_fidelity_unfaithful_total{policy_id=\"p|<x>\",recorded=\"fail\",replayed=\"ok\"} 2 180",
                "adapt_fidelity_unfaithful_total{policy_id=\"p|<x>\",recorded=\"fail\",replayed=\"warn\"} 0 180",
                "# TYPE adapt_fidelity_unfaithful_ratio gauge",
                "# HELP adapt_fidelity_unfaithful_ratio Unfaithful over checked records (--max-unfaithful-ratio is its limit).",
                "adapt_fidelity_unfaithful_ratio{policy_id=\"p|<x>\"} 0.2 180",
            ]
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
