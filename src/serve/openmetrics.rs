//! OpenMetrics 1.0 text of a live registry, for scrapers whose `Accept` header asks
//! for `application/openmetrics-text` (the prometheus crate only encodes 0.0.4).
//!
//! Works on the gathered families, not on re-parsed text: counter families are named
//! without `_total` and their samples with it, `*_info` gauges whose samples are all 1
//! become `info` families, histograms get their `+Inf` bucket, `_count` and `_sum`,
//! and `# EOF` ends the exposition. Sample values and `le` labels are formatted as in
//! the 0.0.4 output, so a series keeps its identity whichever format is scraped.
//! Family names and HELP texts come from the registry, which takes them from
//! `metrics::catalogue`; headers and escaping are `metrics`' own.

use std::fmt::Write;

use prometheus::proto::{LabelPair, MetricFamily, MetricType};

use crate::metrics::escape as esc_label;

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

/// `{a="x",b="y"}` plus an optional extra pair (`le`); empty when there is no label.
fn labels(pairs: &[LabelPair], extra: Option<(&str, &str)>) -> String {
    let mut all: Vec<String> = pairs
        .iter()
        .map(|l| format!("{}=\"{}\"", l.name(), esc_label(l.value())))
        .collect();
    if let Some((k, v)) = extra {
        all.push(format!("{k}=\"{}\"", esc_label(v)));
    }
    if all.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", all.join(","))
    }
}

/// Float as in the 0.0.4 encoder, with the OpenMetrics spellings of the specials.
fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        v.to_string()
    }
}

/// The family header, written by the one header writer replay's metrics.om uses too.
fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let unit = ["seconds", "bytes"]
        .into_iter()
        .find(|u| name.ends_with(&format!("_{u}")));
    crate::metrics::openmetrics_header(out, name, kind, unit, help);
}

/// Encodes gathered families as OpenMetrics text, `# EOF` last.
pub fn encode(families: &[MetricFamily]) -> String {
    let mut out = String::new();
    for f in families {
        let name = f.name();
        let metrics = f.get_metric();
        if metrics.is_empty() {
            continue;
        }
        match f.get_field_type() {
            MetricType::COUNTER => {
                let fam = name.strip_suffix("_total").unwrap_or(name);
                header(&mut out, fam, "counter", f.help());
                for m in metrics {
                    let _ = writeln!(
                        out,
                        "{fam}_total{} {}",
                        labels(m.get_label(), None),
                        num(m.get_counter().get_value())
                    );
                }
            }
            MetricType::GAUGE => {
                let is_info = name.ends_with("_info")
                    && metrics.iter().all(|m| m.get_gauge().get_value() == 1.0);
                if is_info {
                    let fam = &name[..name.len() - "_info".len()];
                    header(&mut out, fam, "info", f.help());
                    for m in metrics {
                        let _ = writeln!(out, "{name}{} 1", labels(m.get_label(), None));
                    }
                } else {
                    header(&mut out, name, "gauge", f.help());
                    for m in metrics {
                        let _ = writeln!(
                            out,
                            "{name}{} {}",
                            labels(m.get_label(), None),
                            num(m.get_gauge().get_value())
                        );
                    }
                }
            }
            MetricType::HISTOGRAM => {
                header(&mut out, name, "histogram", f.help());
                for m in metrics {
                    let h = m.get_histogram();
                    let mut has_inf = false;
                    for b in h.get_bucket() {
                        let ub = b.upper_bound();
                        has_inf |= ub == f64::INFINITY;
                        let _ = writeln!(
                            out,
                            "{name}_bucket{} {}",
                            labels(m.get_label(), Some(("le", &num(ub)))),
                            b.cumulative_count()
                        );
                    }
                    if !has_inf {
                        let _ = writeln!(
                            out,
                            "{name}_bucket{} {}",
                            labels(m.get_label(), Some(("le", "+Inf"))),
                            h.get_sample_count()
                        );
                    }
                    let l = labels(m.get_label(), None);
                    let _ = writeln!(out, "{name}_count{l} {}", h.get_sample_count());
                    let _ = writeln!(out, "{name}_sum{l} {}", num(h.get_sample_sum()));
                }
            }
            MetricType::SUMMARY => {
                header(&mut out, name, "summary", f.help());
                for m in metrics {
                    let s = m.get_summary();
                    for q in s.get_quantile() {
                        let _ = writeln!(
                            out,
                            "{name}{} {}",
                            labels(m.get_label(), Some(("quantile", &num(q.quantile())))),
                            num(q.value())
                        );
                    }
                    let l = labels(m.get_label(), None);
                    let _ = writeln!(out, "{name}_count{l} {}", s.sample_count());
                    let _ = writeln!(out, "{name}_sum{l} {}", num(s.sample_sum()));
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
             # UNIT x_latency_seconds seconds\n\
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
        // The same `le` spelling as the 0.0.4 encoder.
        let text = crate::orchestrator::metrics::render_registry(&r);
        assert!(text.contains("x_latency_seconds_bucket{le=\"0.5\"} 1\n"));
        assert!(text.contains("x_latency_seconds_bucket{le=\"1\"} 1\n"));
    }
}
