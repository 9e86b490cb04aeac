//! OpenMetrics 1.0 text of a live registry, for scrapers whose `Accept` header asks
//! for `application/openmetrics-text` (the prometheus crate only encodes 0.0.4).
//!
//! Works on the gathered families, not on re-parsed text: counter families are named
//! without `_total` and their samples with it, `*_info` gauges whose samples are all 1
//! become `info` families, histograms get their `+Inf` bucket, `_count` and `_sum`,
//! and `# EOF` ends the exposition. Sample values and `le` labels are formatted as in
//! the 0.0.4 output, so a series keeps its identity whichever format is scraped.
//! Family names and HELP texts come from the registry, which takes them from
//! `metrics::catalogue`, units from the catalogue itself; headers, sample lines, the
//! float format and escaping are `metrics`' own (`metrics::encode`).

use prometheus::proto::{LabelPair, MetricFamily, MetricType};

use crate::metrics::encode::{self, num, sample};

/// Content type of the OpenMetrics exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether an `Accept` header value asks for OpenMetrics (a media range of that type
/// with a non-zero quality).
pub fn wants_openmetrics(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case("application/openmetrics-text") {
            return false;
        }
        // A range with q=0 means "not acceptable".
        !parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f64>().ok())
                .is_some_and(|q| q <= 0.0)
        })
    })
}

/// `{a="x",b="y"}` of a registry's label pairs plus an optional extra pair (`le`),
/// written by the one sample encoder; empty when there is no label.
fn labels(pairs: &[LabelPair], extra: Option<(&str, &str)>) -> String {
    encode::labels(pairs.iter().map(|l| (l.name(), l.value())).chain(extra))
}

/// The family header, written by the one header writer replay's metrics.om uses too,
/// with the unit the catalogue gives the family (none for a family it does not name).
fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let unit = crate::metrics::catalogue::by_name(name).and_then(|f| f.unit);
    crate::metrics::openmetrics_header(out, name, kind, unit, help);
}

/// Encodes gathered families as OpenMetrics text, `# EOF` last.
pub fn encode(families: &[MetricFamily]) -> String {
    let mut out = String::new();
    let o = &mut out;
    for f in families {
        let name = f.name();
        let metrics = f.get_metric();
        if metrics.is_empty() {
            continue;
        }
        match f.get_field_type() {
            MetricType::COUNTER => {
                let fam = name.strip_suffix("_total").unwrap_or(name);
                header(o, fam, "counter", f.help());
                let total = format!("{fam}_total");
                for m in metrics {
                    let v = m.get_counter().get_value().into();
                    sample(o, &total, &labels(m.get_label(), None), v, None);
                }
            }
            MetricType::GAUGE => {
                let is_info = name.ends_with("_info")
                    && metrics.iter().all(|m| m.get_gauge().get_value() == 1.0);
                if is_info {
                    let fam = &name[..name.len() - "_info".len()];
                    header(o, fam, "info", f.help());
                    for m in metrics {
                        sample(o, name, &labels(m.get_label(), None), 1u64.into(), None);
                    }
                } else {
                    header(o, name, "gauge", f.help());
                    for m in metrics {
                        let v = m.get_gauge().get_value().into();
                        sample(o, name, &labels(m.get_label(), None), v, None);
                    }
                }
            }
            MetricType::HISTOGRAM => {
                header(o, name, "histogram", f.help());
                let bucket = format!("{name}_bucket");
                for m in metrics {
                    let h = m.get_histogram();
                    let mut has_inf = false;
                    for b in h.get_bucket() {
                        let ub = b.upper_bound();
                        has_inf |= ub == f64::INFINITY;
                        let l = labels(m.get_label(), Some(("le", &num(ub))));
                        sample(o, &bucket, &l, b.cumulative_count().into(), None);
                    }
                    if !has_inf {
                        let l = labels(m.get_label(), Some(("le", "+Inf")));
                        sample(o, &bucket, &l, h.get_sample_count().into(), None);
                    }
                    let l = labels(m.get_label(), None);
                    let (count, sum) = (h.get_sample_count(), h.get_sample_sum());
                    sample(o, &format!("{name}_count"), &l, count.into(), None);
                    sample(o, &format!("{name}_sum"), &l, sum.into(), None);
                }
            }
            MetricType::SUMMARY => {
                header(o, name, "summary", f.help());
                for m in metrics {
                    let s = m.get_summary();
                    for q in s.get_quantile() {
                        let l = labels(m.get_label(), Some(("quantile", &num(q.quantile()))));
                        sample(o, name, &l, q.value().into(), None);
                    }
                    let l = labels(m.get_label(), None);
                    let (count, sum) = (s.sample_count(), s.sample_sum());
                    sample(o, &format!("{name}_count"), &l, count.into(), None);
                    sample(o, &format!("{name}_sum"), &l, sum.into(), None);
                }
            }
            // Nothing registers untyped metrics here (and their accessors are
            // deprecated in the plain model); leave them out rather than guess a type.
            MetricType::UNTYPED => {}
        }
    }
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Gauge, GaugeVec, Histogram, HistogramOpts, IntCounterVec, Opts, Registry};

    #[test]
    fn accept_negotiation() {
        assert!(wants_openmetrics(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ));
        assert!(wants_openmetrics("Application/OpenMetrics-Text"));
        assert!(!wants_openmetrics("text/plain;version=0.0.4"));
        assert!(!wants_openmetrics("*/*"));
        assert!(!wants_openmetrics("application/openmetrics-text;q=0"));
    }

    #[test]
    fn families_in_openmetrics_form() {
        let r = Registry::new();
        let c = IntCounterVec::new(
            Opts::new("x_requests_total", "Requests \"seen\".\nSecond line."),
            &["mode"],
        )
        .unwrap();
        let info = GaugeVec::new(Opts::new("x_policy_info", "Policy."), &["id"]).unwrap();
        let g = Gauge::new("x_ratio", "A ratio.").unwrap();
        let h = Histogram::with_opts(
            HistogramOpts::new("x_latency_seconds", "Latency.").buckets(vec![0.5, 1.0]),
        )
        .unwrap();
        r.register(Box::new(c.clone())).unwrap();
        r.register(Box::new(info.clone())).unwrap();
        r.register(Box::new(g.clone())).unwrap();
        r.register(Box::new(h.clone())).unwrap();
        c.with_label_values(&["a\"b"]).inc_by(3);
        info.with_label_values(&["p.v1"]).set(1.0);
        g.set(0.25);
        h.observe(0.25);
        h.observe(2.0);
        let om = encode(&r.gather());
        assert_eq!(
            om,
            "# TYPE x_latency_seconds histogram\n\
             # HELP x_latency_seconds Latency.\n\
             x_latency_seconds_bucket{le=\"0.5\"} 1\n\
             x_latency_seconds_bucket{le=\"1\"} 1\n\
             x_latency_seconds_bucket{le=\"+Inf\"} 2\n\
             x_latency_seconds_count 2\n\
             x_latency_seconds_sum 2.25\n\
             # TYPE x_policy info\n\
             # HELP x_policy Policy.\n\
             x_policy_info{id=\"p.v1\"} 1\n\
             # TYPE x_ratio gauge\n\
             # HELP x_ratio A ratio.\n\
             x_ratio 0.25\n\
             # TYPE x_requests counter\n\
             # HELP x_requests Requests \\\"seen\\\".\\nSecond line.\n\
             x_requests_total{mode=\"a\\\"b\"} 3\n\
             # EOF\n"
        );
        // Units come from the catalogue, not from a name's suffix: the family above
        // is not proof's and has none; proof's latency histogram has its unit.
        let lat = Histogram::with_opts(HistogramOpts::new(
            crate::metrics::catalogue::SELECTION_LATENCY.sample,
            "Latency.",
        ))
        .unwrap();
        let r2 = Registry::new();
        r2.register(Box::new(lat.clone())).unwrap();
        lat.observe(0.001);
        assert!(encode(&r2.gather()).starts_with(
            "# TYPE adapt_selection_latency_seconds histogram\n\
             # UNIT adapt_selection_latency_seconds seconds\n"
        ));
        // The same `le` spelling as the 0.0.4 encoder.
        let text = crate::orchestrator::metrics::render_registry(&r);
        assert!(text.contains("x_latency_seconds_bucket{le=\"0.5\"} 1\n"));
        assert!(text.contains("x_latency_seconds_bucket{le=\"1\"} 1\n"));
    }
}
