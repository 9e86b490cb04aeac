//! The report model of a replay (SPEC §5–6): built once from the aggregate and the
//! settings, then handed to every exporter. Field names marked fixed in the SPEC are
//! the serde names here; everything is derived from integer counts, so the model is
//! identical across runs and thread counts (except `latency`). `schema` is what
//! report.json holds, `build` turns an aggregate into it, `prose` writes its
//! sentences.

mod build;
mod prose;
mod schema;

pub use build::ReportContext;
pub use prose::{headline, pct, plan_words, verdict_paragraph};
pub use schema::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::view::sample;

    /// The sample report (gate 50 % failed, safe up to 5 %) with `rejected` records
    /// rejected as malformed (2 of them, if any) and bad_ts, and --max-rejects `max`.
    fn with_rejects(rejected: u64, max: u64) -> Report {
        let mut r = sample::report();
        r.records.rejected = rejected;
        r.records.read += rejected;
        r.records.rejected_by_reason.clear();
        if rejected > 0 {
            r.records
                .rejected_by_reason
                .insert("bad_ts", rejected - rejected.min(2));
            r.records
                .rejected_by_reason
                .insert("malformed", rejected.min(2));
            r.records.rejected_by_reason.retain(|_, n| *n > 0);
            r.rejections = vec![RejectionOut {
                file: "traffic.jsonl".into(),
                line: 7,
                reason: "malformed",
            }];
        }
        r.settings.max_rejects = max;
        if rejected > max {
            r.gate.exit_code = 3;
            r.gate.failure.too_many_rejects = true;
        }
        r.summary.headline = headline(&r);
        r.summary.verdict = verdict_paragraph(&r);
        r
    }

    #[test]
    fn exit_code_3_leads_the_verdict_and_the_headline() {
        let r = with_rejects(3, 0);
        assert!(
            r.summary.verdict.starts_with(
                "run FAILED: 3 records rejected, more than --max-rejects 0 \
                 (malformed: 2, bad_ts: 1, first at traffic.jsonl:7); gate FAILED at 50 %: "
            ),
            "{}",
            r.summary.verdict
        );
        assert_eq!(
            r.summary.headline,
            "Run FAILED: 3 records rejected, more than --max-rejects 0; \
             gate FAILED at 50 %: safe up to 5 % rollout"
        );
        // Said once: the record counts at the end do not repeat the reasons.
        assert_eq!(r.summary.verdict.matches("malformed: 2").count(), 1);
    }

    #[test]
    fn rejects_within_the_limit_trail_the_gate() {
        let r = with_rejects(3, 5);
        assert_eq!(r.gate.exit_code, 1);
        assert!(r.summary.verdict.starts_with("gate FAILED at 50 %: "));
        assert!(
            r.summary.verdict.contains(
                "; 3 rejected (malformed: 2, bad_ts: 1, first at traffic.jsonl:7), within --max-rejects 5"
            ),
            "{}",
            r.summary.verdict
        );
        assert_eq!(
            r.summary.headline,
            "Gate FAILED at 50 %: safe up to 5 % rollout"
        );
    }

    #[test]
    fn no_evaluable_record_leads_too() {
        let mut r = with_rejects(0, 0);
        r.records.evaluated = 0;
        r.gate.exit_code = 3;
        r.gate.failure.nothing_evaluated = true;
        r.summary.worst_window = None;
        assert!(
            verdict_paragraph(&r)
                .starts_with("run FAILED: no evaluable record; the gate checked nothing; "),
            "{}",
            verdict_paragraph(&r)
        );
        assert_eq!(
            headline(&r),
            "Run FAILED: no evaluable record, nothing was checked"
        );
    }
}
