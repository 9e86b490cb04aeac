//! Replay settings: every setting of `proof replay` (and of `merge`, the Python package
//! and the Spark job) as one typed [`Layer`] of optional values, and the one merge
//! `flags ⊕ scenario ⊕ defaults` into [`Settings`] (uv's `combine` style). Values are
//! parsed and range-checked where they are read — clap names the flag, the scenario
//! loader names the file and key — so a new setting is one field here and one line in
//! each reader.

use std::path::{Path, PathBuf};

use crate::engine::KeyPath;
use crate::orchestrator::{RolloutPercent, SelectorKind};
use crate::policy::ListSpec;
use crate::replay::gate::{Confidence, Plan};
use crate::replay::source::Format;
use crate::replay::window::WindowLen;

/// Default levels reported (SPEC §5).
pub const DEFAULT_LEVELS: [u8; 7] = [0, 1, 5, 10, 25, 50, 100];

/// Default drift ratio limit (SPEC §5).
pub const DEFAULT_DRIFT_MAX: f64 = 0.005;

/// Default rollback factor (SPEC §5).
pub const DEFAULT_ROLLBACK_FACTOR: f64 = 2.0;

/// Default number of drift examples in report.json.
pub const DEFAULT_EXAMPLES: usize = 20;

/// Default window limit.
pub const DEFAULT_MAX_WINDOWS: usize = 100_000;

/// Where a plan came from, for messages: `--plan FILE` or `scenario.yaml: plan`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanSetting {
    /// The parsed plan (durations not yet checked against the window).
    pub plan: Plan,
    /// `--plan FILE`, `FILE (scenario key plan)` …: who to blame.
    pub origin: String,
}

/// One layer of settings; `None` (or empty) means "not set here".
#[derive(Debug, Clone, Default)]
pub struct Layer {
    /// Log files or directories.
    pub logs: Vec<PathBuf>,
    /// Baseline policy id.
    pub policy: Option<String>,
    /// Baseline IR file.
    pub ir: Option<PathBuf>,
    /// Where policy ids are looked up.
    pub policy_dir: Option<PathBuf>,
    /// Candidate IR file.
    pub candidate_ir: Option<PathBuf>,
    /// Candidate policy id.
    pub candidate_policy: Option<String>,
    /// Candidate selector.
    pub selector: Option<SelectorKind>,
    /// Candidate weights file.
    pub weights: Option<PathBuf>,
    /// Shadow selector.
    pub shadow_selector: Option<SelectorKind>,
    /// Shadow weights file.
    pub shadow_weights: Option<PathBuf>,
    /// Lists (the layers' lists add up; a later layer's name wins).
    pub lists: Vec<ListSpec>,
    /// Window length.
    pub window: Option<WindowLen>,
    /// Gate level.
    pub rollout: Option<RolloutPercent>,
    /// Drift ratio limit.
    pub drift_max: Option<f64>,
    /// Levels reported.
    pub levels: Option<Vec<RolloutPercent>>,
    /// Minimum requests for a window to count.
    pub min_requests: Option<u64>,
    /// Rollback factor.
    pub rollback_factor: Option<f64>,
    /// Rejections tolerated.
    pub max_rejects: Option<u64>,
    /// Sampling salt.
    pub salt: Option<String>,
    /// Input format.
    pub format: Option<Format>,
    /// Worker threads.
    pub threads: Option<usize>,
    /// Output directory.
    pub out: Option<PathBuf>,
    /// Confidence level (SPEC §8).
    pub confidence: Option<Confidence>,
    /// Rollout plan (SPEC §9).
    pub plan: Option<PlanSetting>,
    /// Drift examples kept.
    pub examples: Option<usize>,
    /// Window limit.
    pub max_windows: Option<usize>,
    /// Every drifting record to this file.
    pub drift_details: Option<PathBuf>,
    /// Redact request ids.
    pub redact_ids: Option<bool>,
    /// Exit 3 above this share of records on which one rule errors.
    pub max_eval_error_ratio: Option<f64>,
    /// Write the partial aggregate here (SPEC §10).
    pub partial_out: Option<PathBuf>,
    /// `--bucket-key` (SPEC §3).
    pub bucket_key: Option<KeyPath>,
    /// `--baseline` (SPEC §11).
    pub baseline: Option<Baseline>,
    /// `--max-unfaithful-ratio` (SPEC §11).
    pub max_unfaithful_ratio: Option<f64>,
    /// `--bundle` (SPEC §12).
    pub bundle: Option<PathBuf>,
    /// `--candidate-bundle` (SPEC §12).
    pub candidate_bundle: Option<PathBuf>,
    /// `--decision` (SPEC §12).
    pub decision: Option<String>,
}

/// The effective settings: flags over scenario over defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Log files or directories.
    pub logs: Vec<PathBuf>,
    /// Baseline policy id.
    pub policy: Option<String>,
    /// Baseline IR file (wins over `policy`).
    pub ir: Option<PathBuf>,
    /// Where policy ids are looked up.
    pub policy_dir: Option<PathBuf>,
    /// Candidate IR file.
    pub candidate_ir: Option<PathBuf>,
    /// Candidate policy id.
    pub candidate_policy: Option<String>,
    /// Candidate selector.
    pub selector: SelectorKind,
    /// Candidate weights file.
    pub weights: Option<PathBuf>,
    /// Shadow selector.
    pub shadow_selector: SelectorKind,
    /// Shadow weights file.
    pub shadow_weights: Option<PathBuf>,
    /// Lists.
    pub lists: Vec<ListSpec>,
    /// Window length.
    pub window: WindowLen,
    /// Gate level.
    pub rollout: RolloutPercent,
    /// Drift ratio limit.
    pub drift_max: f64,
    /// Levels reported: ascending, deduplicated, the gate level included.
    pub levels: Vec<RolloutPercent>,
    /// Minimum requests for a window to count.
    pub min_requests: u64,
    /// Rollback factor.
    pub rollback_factor: f64,
    /// Rejections tolerated.
    pub max_rejects: u64,
    /// Sampling salt (default: the baseline policy id, known once it is loaded).
    pub salt: Option<String>,
    /// Input format.
    pub format: Option<Format>,
    /// Worker threads.
    pub threads: usize,
    /// Output directory.
    pub out: Option<PathBuf>,
    /// Confidence level.
    pub confidence: Option<Confidence>,
    /// Rollout plan.
    pub plan: Option<PlanSetting>,
    /// Drift examples kept.
    pub examples: usize,
    /// Window limit.
    pub max_windows: usize,
    /// Every drifting record to this file.
    pub drift_details: Option<PathBuf>,
    /// Redact request ids.
    pub redact_ids: bool,
    /// Exit 3 above this share of records on which one rule errors.
    pub max_eval_error_ratio: Option<f64>,
    /// Write the partial aggregate here.
    pub partial_out: Option<PathBuf>,
    /// `--bucket-key` (SPEC §3).
    pub bucket_key: Option<KeyPath>,
    /// What the shadow path is (SPEC §11).
    pub baseline: Baseline,
    /// Exit 3 above this share of unfaithful records (SPEC §11).
    pub max_unfaithful_ratio: f64,
    /// Baseline OPA bundle (SPEC §12).
    pub bundle: Option<PathBuf>,
    /// Candidate OPA bundle (SPEC §12).
    pub candidate_bundle: Option<PathBuf>,
    /// Only OPA events of this decision path (SPEC §12).
    pub decision: Option<String>,
}

/// Default `--max-unfaithful-ratio` (SPEC §11).
pub const DEFAULT_MAX_UNFAITHFUL_RATIO: f64 = 0.001;

/// What the shadow path of a replay is (SPEC §11).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Baseline {
    /// The baseline policy (or bundle), replayed.
    #[default]
    Replayed,
    /// What production answered, as the records carry it; with `=ID`, the production
    /// policy's id (or bundle revision).
    Recorded(Option<String>),
}

impl std::str::FromStr for Baseline {
    type Err = String;

    fn from_str(s: &str) -> Result<Baseline, String> {
        match s.split_once('=') {
            None if s == "recorded" => Ok(Baseline::Recorded(None)),
            None if s == "replayed" => Ok(Baseline::Replayed),
            Some(("recorded", id)) if !id.is_empty() => Ok(Baseline::Recorded(Some(id.into()))),
            _ => Err(format!(
                "'{s}' is not a baseline: give recorded (the verdicts the records carry) or \
                 recorded=ID (the production policy's id or bundle revision)"
            )),
        }
    }
}

impl std::fmt::Display for Baseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Baseline::Replayed => f.write_str("replayed"),
            Baseline::Recorded(None) => f.write_str("recorded"),
            Baseline::Recorded(Some(id)) => write!(f, "recorded={id}"),
        }
    }
}

impl Layer {
    /// `self` where set, else `other` (lists: `other`'s first, then `self`'s).
    pub fn combine(self, other: Layer) -> Layer {
        let mut lists = other.lists;
        lists.extend(self.lists);
        let own_baseline = self.ir.is_some()
            || self.policy.is_some()
            || self.bundle.is_some()
            || self.baseline.is_some();
        let own_candidate = self.candidate_ir.is_some()
            || self.candidate_policy.is_some()
            || self.candidate_bundle.is_some();
        Layer {
            logs: if self.logs.is_empty() {
                other.logs
            } else {
                self.logs
            },
            // The baseline is one choice: a layer that names it by id or file wins whole.
            policy: if own_baseline {
                self.policy
            } else {
                other.policy
            },
            ir: if own_baseline { self.ir } else { other.ir },
            candidate_policy: if own_candidate {
                self.candidate_policy
            } else {
                other.candidate_policy
            },
            candidate_ir: if own_candidate {
                self.candidate_ir
            } else {
                other.candidate_ir
            },
            policy_dir: self.policy_dir.or(other.policy_dir),
            selector: self.selector.or(other.selector),
            weights: self.weights.or(other.weights),
            shadow_selector: self.shadow_selector.or(other.shadow_selector),
            shadow_weights: self.shadow_weights.or(other.shadow_weights),
            lists,
            window: self.window.or(other.window),
            rollout: self.rollout.or(other.rollout),
            drift_max: self.drift_max.or(other.drift_max),
            levels: self.levels.or(other.levels),
            min_requests: self.min_requests.or(other.min_requests),
            rollback_factor: self.rollback_factor.or(other.rollback_factor),
            max_rejects: self.max_rejects.or(other.max_rejects),
            salt: self.salt.or(other.salt),
            format: self.format.or(other.format),
            threads: self.threads.or(other.threads),
            out: self.out.or(other.out),
            confidence: self.confidence.or(other.confidence),
            plan: self.plan.or(other.plan),
            examples: self.examples.or(other.examples),
            max_windows: self.max_windows.or(other.max_windows),
            drift_details: self.drift_details.or(other.drift_details),
            redact_ids: self.redact_ids.or(other.redact_ids),
            max_eval_error_ratio: self.max_eval_error_ratio.or(other.max_eval_error_ratio),
            partial_out: self.partial_out.or(other.partial_out),
            bucket_key: self.bucket_key.or(other.bucket_key),
            baseline: if own_baseline {
                self.baseline
            } else {
                other.baseline
            },
            max_unfaithful_ratio: self.max_unfaithful_ratio.or(other.max_unfaithful_ratio),
            bundle: if own_baseline {
                self.bundle
            } else {
                other.bundle
            },
            candidate_bundle: if own_candidate {
                self.candidate_bundle
            } else {
                other.candidate_bundle
            },
            decision: self.decision.or(other.decision),
        }
    }

    /// Fills in the defaults.
    pub fn finish(self) -> Settings {
        let rollout = self.rollout.unwrap_or(RolloutPercent::FULL);
        let mut levels = self.levels.unwrap_or_else(|| {
            DEFAULT_LEVELS
                .iter()
                .filter_map(|&p| RolloutPercent::new(p))
                .collect()
        });
        levels.push(rollout);
        levels.sort();
        levels.dedup();
        Settings {
            logs: self.logs,
            policy: self.policy,
            ir: self.ir,
            policy_dir: self.policy_dir,
            candidate_ir: self.candidate_ir,
            candidate_policy: self.candidate_policy,
            selector: self.selector.unwrap_or_default(),
            weights: self.weights,
            shadow_selector: self.shadow_selector.unwrap_or_default(),
            shadow_weights: self.shadow_weights,
            lists: self.lists,
            window: self.window.unwrap_or_default(),
            rollout,
            drift_max: self.drift_max.unwrap_or(DEFAULT_DRIFT_MAX),
            levels,
            min_requests: self.min_requests.unwrap_or(1),
            rollback_factor: self.rollback_factor.unwrap_or(DEFAULT_ROLLBACK_FACTOR),
            max_rejects: self.max_rejects.unwrap_or(0),
            salt: self.salt,
            format: self.format,
            threads: self
                .threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            out: self.out,
            confidence: self.confidence,
            plan: self.plan,
            examples: self.examples.unwrap_or(DEFAULT_EXAMPLES),
            max_windows: self.max_windows.unwrap_or(DEFAULT_MAX_WINDOWS),
            drift_details: self.drift_details,
            redact_ids: self.redact_ids.unwrap_or(false),
            max_eval_error_ratio: self.max_eval_error_ratio,
            partial_out: self.partial_out,
            bucket_key: self.bucket_key,
            baseline: self.baseline.unwrap_or_default(),
            max_unfaithful_ratio: self
                .max_unfaithful_ratio
                .unwrap_or(DEFAULT_MAX_UNFAITHFUL_RATIO),
            bundle: self.bundle,
            candidate_bundle: self.candidate_bundle,
            decision: self.decision,
        }
    }
}

impl Settings {
    /// The files this run reads (logs, IRs, weights, lists) and the outputs it writes
    /// as `(flag, path)`: what `report::writer::refuse_clobber` compares.
    pub fn io_paths(&self) -> (Vec<PathBuf>, Vec<(&'static str, &Path)>) {
        let by_id = |id: &Option<String>| {
            id.as_deref().and_then(|id| {
                crate::policy::locate::resolve_policy(id, self.policy_dir.as_deref()).ok()
            })
        };
        let mut inputs = self.logs.clone();
        inputs.extend(self.ir.iter().chain(&self.candidate_ir).cloned());
        inputs.extend(
            by_id(&self.policy)
                .into_iter()
                .chain(by_id(&self.candidate_policy)),
        );
        inputs.extend(self.weights.iter().chain(&self.shadow_weights).cloned());
        inputs.extend(self.lists.iter().map(|l| l.path.clone()));
        let outputs = [
            ("--out", &self.out),
            ("--partial-out", &self.partial_out),
            ("--drift-details", &self.drift_details),
        ]
        .into_iter()
        .filter_map(|(flag, p)| p.as_deref().map(|p| (flag, p)))
        .collect();
        (inputs, outputs)
    }

    /// The gate settings these settings describe.
    pub fn gate(&self) -> crate::replay::gate::GateSettings {
        crate::replay::gate::GateSettings {
            rollout: self.rollout,
            drift_max: self.drift_max,
            levels: self.levels.clone(),
            min_requests: self.min_requests,
            rollback_factor: self.rollback_factor,
            max_rejects: self.max_rejects,
            window: self.window,
            confidence: self.confidence,
            plan: self.plan.as_ref().map(|p| p.plan.clone()),
            max_eval_error_ratio: self.max_eval_error_ratio,
            max_unfaithful_ratio: self.max_unfaithful_ratio,
        }
    }
}

/// Parses comma-separated whole percents (`0,1,5,10`).
pub fn parse_levels(s: &str) -> Result<Vec<RolloutPercent>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<RolloutPercent>())
        .collect()
}

/// Parses a rollback factor: a finite number ≥ 1.
pub fn parse_rollback_factor(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(f) if f.is_finite() && f >= 1.0 => Ok(f),
        _ => Err(format!(
            "'{s}': must be a number ≥ 1 (the rollback line sits at or above drift-max)"
        )),
    }
}

/// Parses a thread count, 1..=1024.
pub fn parse_threads(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err(format!("'{s}': allowed range is 1..=1024")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_over_scenario_over_defaults() {
        let flags = Layer {
            rollout: RolloutPercent::new(25),
            ..Layer::default()
        };
        let scenario = Layer {
            rollout: RolloutPercent::new(10),
            drift_max: Some(0.01),
            ir: Some("a.ir.json".into()),
            ..Layer::default()
        };
        let s = flags.combine(scenario).finish();
        assert_eq!(s.rollout.get(), 25);
        assert_eq!(s.drift_max, 0.01);
        assert_eq!(s.min_requests, 1);
        assert_eq!(s.ir, Some("a.ir.json".into()));
        let levels: Vec<u8> = s.levels.iter().map(|l| l.get()).collect();
        assert_eq!(levels, [0, 1, 5, 10, 25, 50, 100]);
        // A flag naming the baseline by id replaces the scenario's file.
        let flags = Layer {
            policy: Some("p".into()),
            ..Layer::default()
        };
        let scenario = Layer {
            ir: Some("a.ir.json".into()),
            ..Layer::default()
        };
        let s = flags.combine(scenario).finish();
        assert_eq!((s.policy.as_deref(), s.ir), (Some("p"), None));
    }

    #[test]
    fn value_parsers_state_their_range() {
        assert!(parse_rollback_factor("0.5").unwrap_err().contains("≥ 1"));
        assert!(parse_threads("0").unwrap_err().contains("1..=1024"));
        assert!(parse_levels("0,101").unwrap_err().contains("0..=100"));
        assert_eq!(parse_levels("5, 1,").unwrap().len(), 2);
    }
}
