//! Building the report from a finished aggregate and the gate's judgement: counts
//! become the schema, nothing is re-judged.

use std::collections::BTreeMap;

use crate::engine::Skip;
use crate::orchestrator::DriftKind;
use crate::policy::time::format_rfc3339_ms;
use crate::replay::aggregate::Aggregate;
use crate::replay::gate::{self, GateResult};
use crate::replay::record::Reason;

use super::prose::{headline, pct, verdict_paragraph};
use super::schema::*;

/// Everything besides the aggregate that the report needs.
pub struct ReportContext<'a> {
    /// Gate settings.
    pub gate: &'a GateSettings,
    /// Inputs section.
    pub inputs: Inputs,
    /// Config section.
    pub config: ConfigOut,
    /// Turns a request id into what the report shows.
    pub show_id: &'a dyn Fn(&str) -> String,
    /// Rule ids of the shadow and the enforced policy, in IR order.
    pub rule_ids: [Vec<String>; 2],
    /// Warnings found before the run (resolving inputs), shown before the report's own.
    pub warnings: Vec<String>,
}

impl Report {
    /// Builds the report from the aggregate.
    pub fn build(agg: &Aggregate, ctx: ReportContext<'_>) -> Report {
        let g = ctx.gate;
        let evaluated = agg.evaluated;
        let rejected = agg.rejected_total();
        let records = Records {
            read: agg.read,
            evaluated,
            rejected,
            skipped: agg.skipped,
            rejected_by_reason: Reason::ALL
                .iter()
                .filter(|r| agg.rejected[r.index()] > 0)
                .map(|r| (r.as_str(), agg.rejected[r.index()]))
                .collect(),
            skipped_by_reason: Skip::ALL
                .iter()
                .filter(|k| agg.skipped_by[k.index()] > 0)
                .map(|k| (k.as_str(), agg.skipped_by[k.index()]))
                .collect(),
            bucket_key_missing: agg.bucket_key_missing,
        };
        let events: u64 = agg.by_kind.iter().sum();
        let mut by_cause: Vec<CauseCount> = agg
            .by_cause
            .iter()
            .map(|(c, n)| CauseCount {
                cause: c.clone(),
                events: *n,
            })
            .collect();
        by_cause.sort_by(|a, b| b.events.cmp(&a.events).then_with(|| a.cause.cmp(&b.cause)));
        let drift = Drift {
            events,
            ratio: ratio(events, evaluated),
            by_kind: DriftKind::ALL
                .iter()
                .filter(|k| agg.by_kind[k.index()] > 0)
                .map(|k| (k.as_str(), agg.by_kind[k.index()]))
                .collect(),
            by_cause,
            changed_values: agg.changed,
        };

        let judged: GateResult = gate::judge(agg, g);
        let mut evaluation_errors: Vec<EvalErrorOut> = agg
            .eval_errors
            .iter()
            .map(|(&(path, rule, reason), &n)| EvalErrorOut {
                path: if path == 0 { "shadow" } else { "enforced" },
                rule: ctx.rule_ids[usize::from(path.min(1))]
                    .get(rule as usize)
                    .cloned()
                    .unwrap_or_else(|| format!("#{rule}")),
                reason,
                records: n,
                ratio: ratio(n, evaluated),
            })
            .collect();
        evaluation_errors.sort_by(|a, b| {
            b.records
                .cmp(&a.records)
                .then_with(|| (a.path, &a.rule, a.reason).cmp(&(b.path, &b.rule, b.reason)))
        });
        let warnings = ctx
            .warnings
            .iter()
            .cloned()
            .chain(evaluation_errors.iter().filter(|e| e.ratio > 0.5).map(|e| {
                let hint = if e.reason == "missing_var" {
                    " — bind its list with --list or check the records' context keys"
                } else {
                    ""
                };
                format!(
                    "rule {}: {} on {} of the {} path's records{hint}",
                    e.rule,
                    e.reason,
                    pct(e.ratio),
                    e.path
                )
            }))
            .collect();
        let windows: Vec<Window> = judged
            .windows
            .iter()
            .map(|w| Window {
                start: w.start.rfc3339(),
                end: w.start.end_rfc3339(g.window),
                requests: w.requests,
                drift: w
                    .levels
                    .iter()
                    .zip(&g.levels)
                    .map(|(j, &l)| WindowLevel {
                        rollout_percent: l,
                        events: j.events,
                        ratio: j.ratio,
                        lower: j.bounds.map(|b| b.0),
                        upper: j.bounds.map(|b| b.1),
                        breach: j.breach,
                        rollback: j.rollback,
                        pass: j.pass,
                    })
                    .collect(),
            })
            .collect();
        let plan_levels: BTreeMap<i64, u8> = judged
            .plan
            .as_ref()
            .map(|p| p.first_run_levels.iter().map(|(w, l)| (w.0, *l)).collect())
            .unwrap_or_default();
        let series = agg
            .windows
            .iter()
            .map(|(&start, w)| WindowSeries {
                start_ms: start,
                end_ms: start.saturating_add(g.window.ms()),
                requests: w.requests,
                counted: w.requests >= g.min_requests,
                shadow: VerdictCounts::from(w.shadow),
                enforced_at_gate: VerdictCounts::from(w.enforced_at(g.rollout)),
                drift_by_percent: gate::cumulative(&w.drift_by_pct).to_vec(),
                latency_buckets: w.latency_buckets.to_vec(),
                latency_sum_ns: w.latency_sum_ns,
                plan_rollout_percent: plan_levels.get(&start).copied(),
            })
            .collect();
        let levels = judged
            .levels
            .iter()
            .map(|l| Level {
                rollout_percent: l.level,
                drift_events: l.drift_events,
                drift_ratio: l.drift_ratio,
                max_window_ratio: l.max_window_ratio,
                breached_windows: l.breached_windows,
                rollback_windows: l.rollback_windows,
                passed_windows: l.passed_windows,
            })
            .collect();
        let worst = judged.worst.map(|w| WorstWindow {
            start: w.start.rfc3339(),
            ratio: w.ratio,
            events: w.events,
            requests: w.requests,
        });
        let rollback_at_gate = judged.rollback.iter().map(|w| w.rfc3339()).collect();
        let gate = Gate {
            rollout_percent: g.rollout,
            drift_max: g.drift_max,
            passed: judged.passed,
            breached_windows: judged.breached.iter().map(|w| w.rfc3339()).collect(),
            max_safe_rollout_percent: judged.max_safe,
            confidence: g.confidence.map(|c| c.level()),
            proven_safe_rollout_percent: judged.proven_safe,
            exit_code: judged.exit_code,
            failure: judged.failure,
        };
        let plan = judged.plan.as_ref().map(PlanOut::from);
        let to_out = |e: &crate::replay::aggregate::Example| ExampleOut {
            ts: format_rfc3339_ms(e.ts_ms),
            request_id: (ctx.show_id)(&e.request_id),
            shadow: e.shadow,
            enforced: e.enforced,
            kind: e.kind.as_str(),
            cause: e.cause.clone(),
            bucket: e.bucket,
            source: format!(
                "{}:{}",
                ctx.inputs
                    .files
                    .get(e.origin.file as usize)
                    .map_or("?", |f| f.path.as_str()),
                e.origin.line
            ),
        };
        let examples = agg.examples.iter().map(to_out).collect();
        let source = |o: &crate::replay::aggregate::Origin| {
            format!(
                "{}:{}",
                ctx.inputs
                    .files
                    .get(o.file as usize)
                    .map_or("?", |f| f.path.as_str()),
                o.line
            )
        };
        let unfaithful_examples = agg
            .unfaithful
            .iter()
            .map(|u| UnfaithfulOut {
                ts: format_rfc3339_ms(u.ts_ms),
                request_id: (ctx.show_id)(&u.request_id),
                recorded: u.recorded.as_str(),
                replayed: u.replayed.as_str(),
                source: source(&u.origin),
            })
            .collect();
        let fidelity = judged.fidelity.map(|f| FidelityOut {
            checked: f.checked,
            faithful: f.faithful,
            unfaithful: f.unfaithful,
            by_kind: DriftKind::ALL
                .iter()
                .filter(|k| f.by_kind[k.index()] > 0)
                .map(|k| (k.as_str(), f.by_kind[k.index()]))
                .collect(),
        });
        let drift_details = agg.drifts.iter().map(|e| (e.ts_ms, to_out(e))).collect();
        let rejections = agg
            .rejection_samples
            .iter()
            .map(|(o, r)| RejectionOut {
                file: ctx
                    .inputs
                    .files
                    .get(o.file as usize)
                    .map_or_else(|| "?".into(), |f| f.path.clone()),
                line: o.line,
                reason: r.as_str(),
            })
            .collect::<Vec<_>>();
        let mut report = Report {
            schema: SCHEMA,
            summary: Summary {
                headline: String::new(),
                verdict: String::new(),
                windows: windows.len(),
                worst_window: worst,
                rollback_windows: rollback_at_gate,
                warnings,
            },
            records,
            verdicts: Verdicts {
                shadow: VerdictCounts::from(agg.shadow),
                enforced: VerdictCounts::from(agg.enforced),
            },
            drift,
            fidelity,
            levels,
            windows,
            gate,
            evaluation_errors,
            plan,
            inputs: ctx.inputs,
            config: ctx.config,
            examples,
            unfaithful_examples,
            rejections,
            latency: LatencyOut::default(),
            series,
            settings: g.clone(),
            plan_result: judged.plan,
            drift_details,
        };
        report.summary.headline = headline(&report);
        report.summary.verdict = verdict_paragraph(&report);
        report
    }
}
