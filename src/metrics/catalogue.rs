//! Every metric family proof exports, once: the live `adapt_*` families that `adapt`
//! and `serve` register (`orchestrator::metrics`), the per-window families replay
//! backfills in `metrics.om` (`report::openmetrics`), and the `proof_gate_*` summary
//! of `gate.prom` for node_exporter's textfile collector (`report::gate_prom`).
//!
//! `help` is the live registry's HELP text (serve's exposition uses it verbatim);
//! `replay_help` is what metrics.om says of the same family, where the replay's
//! figure differs (per window, at the gate level). docs/reports.md lists them all.

/// The OpenMetrics type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A value that goes up and down.
    Gauge,
    /// A cumulative count; samples end in `_total`.
    Counter,
    /// Constant labels of value 1; samples end in `_info`.
    Info,
    /// Buckets, `_count` and `_sum`.
    Histogram,
}

impl Kind {
    /// The OpenMetrics `# TYPE` word.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Info => "info",
            Kind::Histogram => "histogram",
        }
    }
}

/// One metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// Family name (`# TYPE` line), without `_total` / `_info`.
    pub name: &'static str,
    /// Sample name: the name a registry registers and a query selects.
    pub sample: &'static str,
    /// Type.
    pub kind: Kind,
    /// OpenMetrics unit, if any.
    pub unit: Option<&'static str>,
    /// Label names, in the order they are written.
    pub labels: &'static [&'static str],
    /// HELP text of the live registry (and of the replay where it says the same).
    pub help: &'static str,
    /// HELP text in replay's metrics.om, where the replay's figure differs.
    pub replay_help: &'static str,
}

impl Family {
    /// The HELP text metrics.om writes.
    pub fn replay_help(&self) -> &'static str {
        if self.replay_help.is_empty() {
            self.help
        } else {
            self.replay_help
        }
    }
}

/// `adapt_enforce_rollout_percent` (SPEC §6).
pub const ENFORCE_ROLLOUT_PERCENT: Family = Family {
    name: "adapt_enforce_rollout_percent",
    sample: "adapt_enforce_rollout_percent",
    kind: Kind::Gauge,
    unit: None,
    labels: &[],
    help: "Share of requests the candidate path decides for, in percent.",
    replay_help: "Share of requests the candidate path decides for, in percent (replay gate level).",
};

/// `adapt_requests_total{mode, policy_id}` (SPEC §6).
pub const REQUESTS: Family = Family {
    name: "adapt_requests",
    sample: "adapt_requests_total",
    kind: Kind::Counter,
    unit: None,
    labels: &["mode", "policy_id"],
    help: "Requests evaluated, by path.",
    replay_help: "",
};

/// `adapt_drift_events_total{policy_id}` (SPEC §6).
pub const DRIFT_EVENTS: Family = Family {
    name: "adapt_drift_events",
    sample: "adapt_drift_events_total",
    kind: Kind::Counter,
    unit: None,
    labels: &["policy_id"],
    help: "Enforced requests whose verdict differs from shadow.",
    replay_help: "Enforced requests whose verdict differs from shadow, at the gate level.",
};

/// `adapt_drift_ratio{window}` (SPEC §6).
pub const DRIFT_RATIO: Family = Family {
    name: "adapt_drift_ratio",
    sample: "adapt_drift_ratio",
    kind: Kind::Gauge,
    unit: None,
    labels: &["window"],
    help: "Drift events over requests in a sliding window.",
    replay_help: "Drift events over requests in the window, at the gate level.",
};

/// `adapt_whatif_drift_ratio{window, rollout}` (SPEC §6; replay only).
pub const WHATIF_DRIFT_RATIO: Family = Family {
    name: "adapt_whatif_drift_ratio",
    sample: "adapt_whatif_drift_ratio",
    kind: Kind::Gauge,
    unit: None,
    labels: &["window", "rollout"],
    help: "Drift ratio in the window if the candidate were enforced at this rollout level.",
    replay_help: "",
};

/// `adapt_verdicts_total{mode, verdict}` (SPEC §6).
pub const VERDICTS: Family = Family {
    name: "adapt_verdicts",
    sample: "adapt_verdicts_total",
    kind: Kind::Counter,
    unit: None,
    labels: &["mode", "verdict"],
    help: "Verdicts, by path.",
    replay_help: "Verdicts by path (enforced: requests enforced at the gate level).",
};

/// `adapt_policy_info{path, policy_id, ir_hash}` (SPEC §6).
pub const POLICY: Family = Family {
    name: "adapt_policy",
    sample: "adapt_policy_info",
    kind: Kind::Info,
    unit: None,
    labels: &["path", "policy_id", "ir_hash"],
    help: "Loaded policy (value 1).",
    replay_help: "Policies of the replay's shadow and enforced paths.",
};

/// `adapt_selection_latency_seconds` (SPEC §6).
pub const SELECTION_LATENCY: Family = Family {
    name: "adapt_selection_latency_seconds",
    sample: "adapt_selection_latency_seconds",
    kind: Kind::Histogram,
    unit: Some("seconds"),
    labels: &[],
    help: "Time to select, plan and run the rules of one request.",
    replay_help: "Time to select, plan and run the rules of one request (both paths).",
};

/// `adapt_plan_rollout_percent` (replay with `--plan`): the first run's level per window.
pub const PLAN_ROLLOUT_PERCENT: Family = Family {
    name: "adapt_plan_rollout_percent",
    sample: "adapt_plan_rollout_percent",
    kind: Kind::Gauge,
    unit: None,
    labels: &[],
    help: "Simulated rollout level of the plan's first run in the window, in percent (0 once rolled back).",
    replay_help: "",
};

/// `adapt_window_requests{window}` (replay): evaluated records per window.
pub const WINDOW_REQUESTS: Family = Family {
    name: "adapt_window_requests",
    sample: "adapt_window_requests",
    kind: Kind::Gauge,
    unit: None,
    labels: &["window"],
    help: "Evaluated requests in the window.",
    replay_help: "",
};

/// `adapt_window_counted{window}` (replay): 1 when the window counts for the gate.
pub const WINDOW_COUNTED: Family = Family {
    name: "adapt_window_counted",
    sample: "adapt_window_counted",
    kind: Kind::Gauge,
    unit: None,
    labels: &["window"],
    help: "1 if the window has at least --min-requests requests (the gate judges it), else 0.",
    replay_help: "",
};

/// `adapt_fidelity_checked_total{policy_id}` (replay, SPEC §11): records compared with
/// production's verdict.
pub const FIDELITY_CHECKED: Family = Family {
    name: "adapt_fidelity_checked",
    sample: "adapt_fidelity_checked_total",
    kind: Kind::Counter,
    unit: None,
    labels: &["policy_id"],
    help: "Evaluated records carrying production's verdict, compared with the replayed baseline's.",
    replay_help: "",
};

/// `adapt_fidelity_faithful_total{policy_id}` (replay, SPEC §11).
pub const FIDELITY_FAITHFUL: Family = Family {
    name: "adapt_fidelity_faithful",
    sample: "adapt_fidelity_faithful_total",
    kind: Kind::Counter,
    unit: None,
    labels: &["policy_id"],
    help: "Records the replayed baseline answered as production did.",
    replay_help: "",
};

/// `adapt_fidelity_unfaithful_total{policy_id, recorded, replayed}` (replay, SPEC §11).
pub const FIDELITY_UNFAITHFUL: Family = Family {
    name: "adapt_fidelity_unfaithful",
    sample: "adapt_fidelity_unfaithful_total",
    kind: Kind::Counter,
    unit: None,
    labels: &["policy_id", "recorded", "replayed"],
    help: "Records the replayed baseline answered otherwise than production, by production's (recorded) and the replay's verdict.",
    replay_help: "",
};

/// `adapt_fidelity_unfaithful_ratio{policy_id}` (replay, SPEC §11).
pub const FIDELITY_UNFAITHFUL_RATIO: Family = Family {
    name: "adapt_fidelity_unfaithful_ratio",
    sample: "adapt_fidelity_unfaithful_ratio",
    kind: Kind::Gauge,
    unit: None,
    labels: &["policy_id"],
    help: "Unfaithful over checked records (--max-unfaithful-ratio is its limit).",
    replay_help: "",
};

/// `proof_gate_info{baseline, baseline_ir_hash, candidate, candidate_ir_hash, window}`.
pub const GATE_INFO: Family = Family {
    name: "proof_gate",
    sample: "proof_gate_info",
    kind: Kind::Info,
    unit: None,
    labels: &[
        "baseline",
        "baseline_ir_hash",
        "candidate",
        "candidate_ir_hash",
        "window",
    ],
    help: "The policies and window length of the last replay (value 1).",
    replay_help: "",
};

/// `proof_gate_passed`.
pub const GATE_PASSED: Family = gauge(
    "proof_gate_passed",
    "1 if no window breached at the gate level, else 0.",
);
/// `proof_gate_exit_code`.
pub const GATE_EXIT_CODE: Family = gauge(
    "proof_gate_exit_code",
    "Exit code of the replay: 0 passed, 1 breached (or plan rolled back), 3 input failure.",
);
/// `proof_gate_rollout_percent`.
pub const GATE_ROLLOUT_PERCENT: Family =
    gauge("proof_gate_rollout_percent", "Gate level, in percent.");
/// `proof_gate_drift_max_ratio`.
pub const GATE_DRIFT_MAX: Family = gauge(
    "proof_gate_drift_max_ratio",
    "Drift ratio limit (--drift-max).",
);
/// `proof_gate_max_safe_rollout_percent`.
pub const GATE_MAX_SAFE: Family = gauge(
    "proof_gate_max_safe_rollout_percent",
    "Largest whole percent at which no window breaches.",
);
/// `proof_gate_proven_safe_rollout_percent` (with `--confidence`, when there is one).
pub const GATE_PROVEN_SAFE: Family = gauge(
    "proof_gate_proven_safe_rollout_percent",
    "Largest whole percent proven safe at the --confidence level.",
);
/// `proof_gate_confidence` (with `--confidence`).
pub const GATE_CONFIDENCE: Family = gauge(
    "proof_gate_confidence",
    "Confidence level of the Wilson bounds (--confidence).",
);
/// `proof_gate_unfaithful_ratio` (when a record carried a recorded verdict, SPEC §11).
pub const GATE_UNFAITHFUL_RATIO: Family = gauge(
    "proof_gate_unfaithful_ratio",
    "Share of the records carrying production's verdict that the replayed baseline answered otherwise.",
);
/// `proof_gate_windows`.
pub const GATE_WINDOWS: Family = gauge(
    "proof_gate_windows",
    "Windows with at least one evaluated record.",
);
/// `proof_gate_breached_windows`.
pub const GATE_BREACHED_WINDOWS: Family = gauge(
    "proof_gate_breached_windows",
    "Windows that breach at the gate level.",
);
/// `proof_gate_records{state}`.
pub const GATE_RECORDS: Family = Family {
    name: "proof_gate_records",
    sample: "proof_gate_records",
    kind: Kind::Gauge,
    unit: None,
    labels: &["state"],
    help: "Records of the replay: read, evaluated, rejected, skipped.",
    replay_help: "",
};
/// `proof_gate_traffic_end_timestamp_seconds`: when the replayed traffic ends.
pub const GATE_TRAFFIC_END: Family = gauge(
    "proof_gate_traffic_end_timestamp_seconds",
    "End of the last replayed window, Unix seconds (how fresh the verdict is).",
);
/// `proof_gate_plan_passed` (with `--plan`).
pub const GATE_PLAN_PASSED: Family = gauge(
    "proof_gate_plan_passed",
    "1 if no run of the rollout plan rolled back, else 0.",
);
/// `proof_gate_plan_runs{outcome}` (with `--plan`).
pub const GATE_PLAN_RUNS: Family = Family {
    name: "proof_gate_plan_runs",
    sample: "proof_gate_plan_runs",
    kind: Kind::Gauge,
    unit: None,
    labels: &["outcome"],
    help: "Simulated runs of the rollout plan, by outcome (promoted, rolled_back, incomplete).",
    replay_help: "",
};

const fn gauge(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        sample: name,
        kind: Kind::Gauge,
        unit: None,
        labels: &[],
        help,
        replay_help: "",
    }
}

/// Every family, for docs and the uniqueness test.
pub const ALL: &[Family] = &[
    ENFORCE_ROLLOUT_PERCENT,
    REQUESTS,
    DRIFT_EVENTS,
    DRIFT_RATIO,
    WHATIF_DRIFT_RATIO,
    VERDICTS,
    POLICY,
    SELECTION_LATENCY,
    PLAN_ROLLOUT_PERCENT,
    WINDOW_REQUESTS,
    WINDOW_COUNTED,
    FIDELITY_CHECKED,
    FIDELITY_FAITHFUL,
    FIDELITY_UNFAITHFUL,
    FIDELITY_UNFAITHFUL_RATIO,
    GATE_INFO,
    GATE_PASSED,
    GATE_EXIT_CODE,
    GATE_ROLLOUT_PERCENT,
    GATE_DRIFT_MAX,
    GATE_MAX_SAFE,
    GATE_PROVEN_SAFE,
    GATE_CONFIDENCE,
    GATE_UNFAITHFUL_RATIO,
    GATE_WINDOWS,
    GATE_BREACHED_WINDOWS,
    GATE_RECORDS,
    GATE_TRAFFIC_END,
    GATE_PLAN_PASSED,
    GATE_PLAN_RUNS,
];

/// The family of that name (`# TYPE` name, as `adapt_requests`), if proof exports it.
pub fn by_name(name: &str) -> Option<&'static Family> {
    ALL.iter().find(|f| f.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_samples_follow_the_type() {
        for (i, a) in ALL.iter().enumerate() {
            for b in &ALL[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.sample, b.sample);
            }
            let want = match a.kind {
                Kind::Counter => format!("{}_total", a.name),
                Kind::Info => format!("{}_info", a.name),
                Kind::Gauge | Kind::Histogram => a.name.to_string(),
            };
            assert_eq!(a.sample, want);
            assert_eq!(
                a.unit.is_some(),
                a.name.ends_with("_seconds") && a.kind == Kind::Histogram
            );
        }
    }
}
