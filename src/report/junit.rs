//! `junit.xml`: the gate as JUnit XML, for the test views of GitLab, Jenkins and
//! other CI systems. Suite `proof.gate` has one testcase per window at the gate
//! level: a breaching window is a `<failure>` with its numbers, a window below
//! `--min-requests` is `<skipped>`. Suite `proof.records` holds the two input checks
//! behind exit code 3. With `--plan`, suite `proof.plan` has one testcase per
//! simulated run: rolled back is a `<failure>`, incomplete `<skipped>`. Times are 0: the file is identical across runs.

use std::fmt::Write;

use super::Exporter;
use super::model::{Report, pct, ratio};
use super::view::{self, WindowStatus};

/// Writes junit.xml.
pub struct JunitExporter;

/// Escapes text for an XML 1.0 attribute value; characters XML 1.0 cannot carry
/// become U+FFFD, and line breaks stay line breaks (as character references).
pub fn esc(s: &str) -> String {
    escape(s, true)
}

/// Escapes text for XML 1.0 element content (line breaks and tabs kept as is).
pub fn esc_text(s: &str) -> String {
    escape(s, false)
}

fn escape(s: &str, attr: bool) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' if attr => o.push_str("&quot;"),
            '\'' if attr => o.push_str("&apos;"),
            '\n' if attr => o.push_str("&#10;"),
            '\r' => o.push_str("&#13;"),
            '\t' if attr => o.push_str("&#9;"),
            '\n' | '\t' | '"' | '\'' => o.push(c),
            '\u{fffe}' | '\u{ffff}' => o.push('\u{fffd}'),
            c if (c as u32) < 0x20 => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

/// A float the way report.json prints it.
fn num(x: f64) -> String {
    serde_json::to_string(&x).unwrap_or_else(|_| x.to_string())
}

/// How one testcase ended.
enum Outcome {
    Passed,
    Skipped(String),
    Failure {
        ty: &'static str,
        message: String,
        body: String,
    },
}

struct Case {
    name: String,
    outcome: Outcome,
}

fn count(cases: &[Case], f: fn(&Outcome) -> bool) -> usize {
    cases.iter().filter(|c| f(&c.outcome)).count()
}

fn failed(o: &Outcome) -> bool {
    matches!(o, Outcome::Failure { .. })
}

fn skipped(o: &Outcome) -> bool {
    matches!(o, Outcome::Skipped(_))
}

fn suite(o: &mut String, name: &str, props: &[(&str, String)], cases: &[Case]) {
    let _ = writeln!(
        o,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"0\">",
        esc(name),
        cases.len(),
        count(cases, failed),
        count(cases, skipped)
    );
    if !props.is_empty() {
        let _ = writeln!(o, "    <properties>");
        for (k, v) in props {
            let _ = writeln!(
                o,
                "      <property name=\"{}\" value=\"{}\"/>",
                esc(k),
                esc(v)
            );
        }
        let _ = writeln!(o, "    </properties>");
    }
    for c in cases {
        let head = format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"0\"",
            esc(name),
            esc(&c.name)
        );
        match &c.outcome {
            Outcome::Passed => {
                let _ = writeln!(o, "{head}/>");
            }
            Outcome::Skipped(msg) => {
                let _ = writeln!(
                    o,
                    "{head}>\n      <skipped message=\"{}\"/>\n    </testcase>",
                    esc(msg)
                );
            }
            Outcome::Failure { ty, message, body } => {
                let _ = writeln!(
                    o,
                    "{head}>\n      <failure type=\"{ty}\" message=\"{}\">{}</failure>\n    </testcase>",
                    esc(message),
                    esc_text(body)
                );
            }
        }
    }
    let _ = writeln!(o, "  </testsuite>");
}

/// The JUnit XML text.
pub fn render(r: &Report) -> String {
    let g = &r.gate;
    let c = &r.settings;
    let rollback = view::rollback_line(r);
    let gate_cases: Vec<Case> = r
        .windows
        .iter()
        .filter_map(|w| view::at_gate(r, w).map(|d| (w, d)))
        .map(|(w, d)| {
            let name = format!("window {} at {} %", w.start, g.rollout_percent);
            let figures = format!(
                "window {} .. {}\nrollout_percent: {}\nrequests: {}\ndrift_events: {}\n\
                 drift_ratio: {}\ndrift_max: {}\nrollback_line: {}\n",
                w.start,
                w.end,
                g.rollout_percent,
                w.requests,
                d.events,
                num(d.ratio),
                num(c.drift_max),
                num(rollback)
            );
            let what = format!(
                "drift {} ({} of {} requests) at {} % rollout",
                pct(d.ratio),
                d.events,
                w.requests,
                g.rollout_percent
            );
            let outcome = match view::status(r, d.events, w.requests) {
                WindowStatus::Ok => Outcome::Passed,
                WindowStatus::TooFew => Outcome::Skipped(format!(
                    "{} requests, fewer than --min-requests {}: the window cannot breach",
                    w.requests, c.min_requests
                )),
                WindowStatus::Breach => Outcome::Failure {
                    ty: "DriftBreach",
                    message: format!("{what} is above drift-max {}", pct(c.drift_max)),
                    body: figures,
                },
                WindowStatus::Rollback => Outcome::Failure {
                    ty: "DriftRollback",
                    message: format!(
                        "{what} is above the rollback line {} ({} × drift-max {})",
                        pct(rollback),
                        c.rollback_factor,
                        pct(c.drift_max)
                    ),
                    body: figures,
                },
            };
            Case { name, outcome }
        })
        .collect();
    let rec = &r.records;
    let reasons: Vec<String> = rec
        .rejected_by_reason
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    let mut record_cases = vec![
        Case {
            name: format!("rejected records at most --max-rejects {}", c.max_rejects),
            outcome: if !r.gate.failure.too_many_rejects {
                Outcome::Passed
            } else {
                Outcome::Failure {
                    ty: "TooManyRejects",
                    message: format!(
                        "{} records rejected, more than --max-rejects {}",
                        rec.rejected, c.max_rejects
                    ),
                    body: format!(
                        "rejected: {}\nby reason: {}\nfirst: {}\n",
                        rec.rejected,
                        reasons.join(", "),
                        r.rejections
                            .first()
                            .map_or_else(String::new, |x| format!("{}:{}", x.file, x.line))
                    ),
                }
            },
        },
        Case {
            name: "at least one evaluable record".into(),
            outcome: if !r.gate.failure.nothing_evaluated {
                Outcome::Passed
            } else {
                Outcome::Failure {
                    ty: "NoEvaluableRecord",
                    message: format!(
                        "no record was evaluated: {} read, {} rejected, {} skipped",
                        rec.read, rec.rejected, rec.skipped
                    ),
                    body: String::new(),
                }
            },
        },
    ];
    // SPEC §11: only when a record carried production's verdict.
    if let Some(f) = &r.fidelity {
        let max = r.settings.max_unfaithful_ratio;
        let share = ratio(f.unfaithful, f.checked);
        record_cases.push(Case {
            name: format!("replay reproduces production (unfaithful at most --max-unfaithful-ratio {max})"),
            outcome: if !r.gate.failure.unfaithful {
                Outcome::Passed
            } else {
                Outcome::Failure {
                    ty: "UnfaithfulReplay",
                    message: format!(
                        "the replayed baseline answered {} of {} records otherwise than production ({})",
                        f.unfaithful,
                        f.checked,
                        pct(share)
                    ),
                    body: f
                        .by_kind
                        .iter()
                        .map(|(k, n)| format!("{k}: {n}\n"))
                        .collect(),
                }
            },
        });
    }
    let plan_cases = plan_cases(r);
    let total = gate_cases.len() + record_cases.len() + plan_cases.len();
    let failures =
        count(&gate_cases, failed) + count(&record_cases, failed) + count(&plan_cases, failed);
    let skips = count(&gate_cases, skipped) + count(&plan_cases, skipped);

    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<testsuites name=\"{}\" tests=\"{total}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skips}\" time=\"0\">",
        esc(&format!("proof replay: {}", r.summary.headline))
    );
    let b = &r.inputs.baseline;
    let cand = &r.inputs.candidate;
    suite(
        &mut o,
        "proof.gate",
        &[
            ("rollout_percent", g.rollout_percent.to_string()),
            ("drift_max", num(c.drift_max)),
            ("rollback_line", num(rollback)),
            ("min_requests", c.min_requests.to_string()),
            ("window", c.window.to_string()),
            ("passed", g.passed.to_string()),
            (
                "max_safe_rollout_percent",
                g.max_safe_rollout_percent.to_string(),
            ),
            ("exit_code", g.exit_code.to_string()),
            ("baseline", format!("{} {}", b.policy_id, b.ir_hash)),
            ("candidate", format!("{} {}", cand.policy_id, cand.ir_hash)),
        ],
        &gate_cases,
    );
    suite(
        &mut o,
        "proof.records",
        &[
            ("read", rec.read.to_string()),
            ("evaluated", rec.evaluated.to_string()),
            ("rejected", rec.rejected.to_string()),
            ("skipped", rec.skipped.to_string()),
        ],
        &record_cases,
    );
    if let Some(p) = &r.plan {
        suite(
            &mut o,
            "proof.plan",
            &[
                ("start", p.start.clone()),
                ("failure_limit", p.failure_limit.to_string()),
                (
                    "steps",
                    p.steps
                        .iter()
                        .map(|s| s.rollout_percent.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                ("passed", p.passed.to_string()),
            ],
            &plan_cases,
        );
    }
    o.push_str("</testsuites>\n");
    o
}

/// One testcase per simulated run (SPEC §9): rolled back is a failure, incomplete is
/// skipped (the traffic ended before the last step), promoted passes.
fn plan_cases(r: &Report) -> Vec<Case> {
    let Some(p) = &r.plan else {
        return Vec::new();
    };
    p.runs
        .iter()
        .map(|run| {
            let impact = format!(
                "requests: {}\ndrift_events: {}\nnew_denials: {}\nmissed_denials: {}\nbreached_windows: {}\n",
                run.impact.requests,
                run.impact.events,
                run.impact.new_denials,
                run.impact.missed_denials,
                run.breached_windows
            );
            let outcome = match run.outcome {
                "rolled_back" => Outcome::Failure {
                    ty: "RolledBack",
                    message: format!(
                        "rolled back at step {} ({} %) at {} after {} breached window(s): {} drifting decisions, {} new denials",
                        run.step.unwrap_or(0),
                        run.rollout_percent.unwrap_or(0),
                        run.at.as_deref().unwrap_or("?"),
                        run.breached_windows,
                        run.impact.events,
                        run.impact.new_denials
                    ),
                    body: format!("start: {}\nat: {}\n{impact}", run.start, run.at.as_deref().unwrap_or("")),
                },
                "incomplete" => Outcome::Skipped(format!(
                    "the traffic ended before the last step ({} breached window(s) so far)",
                    run.breached_windows
                )),
                _ => Outcome::Passed,
            };
            Case {
                name: format!("plan run from {}", run.start),
                outcome,
            }
        })
        .collect()
}

impl Exporter for JunitExporter {
    fn file_name(&self) -> &'static str {
        "junit.xml"
    }

    fn serialize(&self, report: &Report) -> Result<Vec<u8>, crate::error::ProofError> {
        Ok(render(report).into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_xml_cannot_carry() {
        assert_eq!(
            esc("a<b>&\"c\"'d'\n\u{1}\u{ffff}é"),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;&#10;\u{fffd}\u{fffd}é"
        );
        let doc = format!("<r a=\"{}\">x</r>", esc("x\"<&>\u{7}\ny"));
        let parsed = roxmltree::Document::parse(&doc).unwrap();
        assert_eq!(
            parsed.root_element().attribute("a"),
            Some("x\"<&>\u{fffd}\ny")
        );
    }
}

#[cfg(test)]
mod sample_tests {
    use super::*;

    #[test]
    fn breaches_fail_and_thin_windows_are_skipped() {
        let r = crate::report::view::sample::report();
        let xml = render(&r);
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let gate = doc
            .descendants()
            .find(|n| n.attribute("name") == Some("proof.gate"))
            .unwrap();
        assert_eq!(gate.attribute("tests"), Some("3"));
        assert_eq!(gate.attribute("failures"), Some("2"));
        assert_eq!(gate.attribute("skipped"), Some("1"));
        let kinds: Vec<&str> = gate
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .map(|c| {
                c.children()
                    .find(|n| n.is_element())
                    .map_or("passed", |n| n.attribute("type").unwrap_or("skipped"))
            })
            .collect();
        assert_eq!(kinds, ["DriftRollback", "skipped", "DriftBreach"]);
        let props: Vec<(&str, &str)> = gate
            .descendants()
            .filter(|n| n.has_tag_name("property"))
            .map(|n| (n.attribute("name").unwrap(), n.attribute("value").unwrap()))
            .collect();
        assert!(props.contains(&("rollback_line", "0.2")));
        assert!(props.contains(&("baseline", "p|<x> sha3-256:00")));
        assert_eq!(doc.root_element().attribute("failures"), Some("2"));
    }
}
