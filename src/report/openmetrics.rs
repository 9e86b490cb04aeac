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

use super::Exporter;
use super::model::{Report, ratio};
use crate::metrics::encode::{family_labels, family_sample, sample};
use crate::metrics::{Family, catalogue as C, openmetrics_header};
use crate::orchestrator::metrics::LATENCY_BUCKETS;
use crate::orchestrator::{DriftKind, Verdict};

/// Writes metrics.om.
pub struct OpenMetricsExporter;

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
    let window = &r.settings.window.to_string();
    let (bid, cid) = (
        r.inputs.baseline.policy_id.as_str(),
        r.inputs.candidate.policy_id.as_str(),
    );
    // Every sample of a window is stamped with the window's end.
    let at = |s: &super::model::WindowSeries| Some(s.end_ms);

    let f = C::ENFORCE_ROLLOUT_PERCENT;
    family(&mut o, &f);
    for s in &r.series {
        family_sample(&mut o, &f, &[], gate.get(), at(s));
    }

    let f = C::REQUESTS;
    family(&mut o, &f);
    let mut n = 0u64;
    for s in &r.series {
        n += s.requests;
        family_sample(&mut o, &f, &["shadow", bid], n, at(s));
    }
    let mut n = 0u64;
    for s in &r.series {
        let e = &s.enforced_at_gate;
        n += e.ok + e.warn + e.fail;
        family_sample(&mut o, &f, &["enforced", cid], n, at(s));
    }

    let f = C::DRIFT_EVENTS;
    family(&mut o, &f);
    let mut n = 0u64;
    for s in &r.series {
        n += s.drift_at(gate);
        family_sample(&mut o, &f, &[cid], n, at(s));
    }

    let f = C::DRIFT_RATIO;
    family(&mut o, &f);
    for s in &r.series {
        let v = ratio(s.drift_at(gate), s.requests);
        family_sample(&mut o, &f, &[window], v, at(s));
    }

    let f = C::WHATIF_DRIFT_RATIO;
    family(&mut o, &f);
    for l in &r.settings.levels {
        let level = l.to_string();
        for s in &r.series {
            let v = ratio(s.drift_at(*l), s.requests);
            family_sample(&mut o, &f, &[window, &level], v, at(s));
        }
    }

    let f = C::VERDICTS;
    family(&mut o, &f);
    for v in Verdict::ALL {
        let mut n = 0u64;
        for s in &r.series {
            n += s.shadow.of(v);
            family_sample(&mut o, &f, &["shadow", v.as_str()], n, at(s));
        }
    }
    for v in Verdict::ALL {
        let mut n = 0u64;
        for s in &r.series {
            n += s.enforced_at_gate.of(v);
            family_sample(&mut o, &f, &["enforced", v.as_str()], n, at(s));
        }
    }

    let f = C::POLICY;
    family(&mut o, &f);
    for (path, p) in [
        ("shadow", &r.inputs.baseline),
        ("enforced", &r.inputs.candidate),
    ] {
        for s in &r.series {
            family_sample(&mut o, &f, &[path, &p.policy_id, &p.ir_hash], 1u64, at(s));
        }
    }

    let f = C::SELECTION_LATENCY;
    family(&mut o, &f);
    let name = f.sample;
    let bucket = format!("{name}_bucket");
    let mut cum = [0u64; LATENCY_BUCKETS.len() + 1];
    let mut sum_ns = 0u64;
    for s in &r.series {
        for (c, b) in cum.iter_mut().zip(&s.latency_buckets) {
            *c += b;
        }
        sum_ns += s.latency_sum_ns;
        // Cumulative buckets, the last one `+Inf`.
        let bounds = LATENCY_BUCKETS
            .iter()
            .map(f64::to_string)
            .chain(["+Inf".to_string()]);
        let mut running = 0u64;
        for (c, le) in cum.iter().zip(bounds) {
            running += c;
            let le = family_labels(&f, &[], Some(("le", &le)));
            sample(&mut o, &bucket, &le, running.into(), at(s));
        }
        sample(&mut o, &format!("{name}_count"), "", running.into(), at(s));
        let sum = sum_ns as f64 * 1e-9;
        sample(&mut o, &format!("{name}_sum"), "", sum.into(), at(s));
    }

    let f = C::WINDOW_REQUESTS;
    family(&mut o, &f);
    for s in &r.series {
        family_sample(&mut o, &f, &[window], s.requests, at(s));
    }

    let f = C::WINDOW_COUNTED;
    family(&mut o, &f);
    for s in &r.series {
        family_sample(&mut o, &f, &[window], s.counted, at(s));
    }

    fidelity(&mut o, r, bid);

    if r.plan_result.is_some() {
        let f = C::PLAN_ROLLOUT_PERCENT;
        family(&mut o, &f);
        for s in &r.series {
            if let Some(l) = s.plan_rollout_percent {
                family_sample(&mut o, &f, &[], l, at(s));
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
    let t = Some(last.end_ms);
    let f = C::FIDELITY_CHECKED;
    family(o, &f);
    family_sample(o, &f, &[bid], fd.checked, t);
    let f = C::FIDELITY_FAITHFUL;
    family(o, &f);
    family_sample(o, &f, &[bid], fd.faithful, t);
    let f = C::FIDELITY_UNFAITHFUL;
    family(o, &f);
    // Every recorded → replayed pair, zeros too, so each series exists in every replay.
    for recorded in Verdict::ALL {
        for replayed in Verdict::ALL {
            let Some(kind) = DriftKind::of(recorded, replayed) else {
                continue;
            };
            let n = fd.by_kind.get(kind.as_str()).copied().unwrap_or(0);
            family_sample(o, &f, &[bid, recorded.as_str(), replayed.as_str()], n, t);
        }
    }
    let f = C::FIDELITY_UNFAITHFUL_RATIO;
    family(o, &f);
    family_sample(o, &f, &[bid], ratio(fd.unfaithful, fd.checked), t);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::view::sample;

    #[test]
    fn timestamps_and_escaping() {
        use crate::metrics::{encode::seconds, escape};
        assert_eq!(seconds(1_793_866_200_000), "1793866200");
        assert_eq!(seconds(1_500), "1.500");
        assert_eq!(seconds(-1_500), "-1.500");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
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
