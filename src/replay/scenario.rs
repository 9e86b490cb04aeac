//! Scenario files (SPEC §6): the settings of `proof replay` in YAML, so a CI job is one
//! line. Keys are the flag names with `_` (or `-`); paths are relative to the file;
//! flags given on the command line override the file. [`Scenario::load`] returns a
//! typed settings [`Layer`]; a bad value names the file and the key, never a flag.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::gate::{Confidence, Plan};
use super::settings::{Layer, PlanSetting, parse_levels, parse_rollback_factor, parse_threads};
use super::source::Format;
use super::window::WindowLen;
use crate::error::ProofError;
use crate::orchestrator::SelectorKind;
use crate::policy::ListSpec;

/// A rollout level as written in YAML: a number or a string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// 25, 0.005
    Num(f64),
    /// "25", "5m"
    Text(String),
}

impl Scalar {
    /// As the command line would spell it.
    pub fn as_arg(&self) -> String {
        match self {
            Scalar::Num(n) => format!("{n}"),
            Scalar::Text(s) => s.clone(),
        }
    }
}

/// The YAML scenario.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A description for people; ignored.
    #[serde(default)]
    pub description: Option<String>,
    /// Log files or directories.
    #[serde(default)]
    pub logs: Vec<PathBuf>,
    /// Baseline policy id.
    #[serde(default)]
    pub policy: Option<String>,
    /// Baseline IR file.
    #[serde(default)]
    pub ir: Option<PathBuf>,
    /// Where policy ids are looked up.
    #[serde(default, alias = "policy-dir")]
    pub policy_dir: Option<PathBuf>,
    /// Candidate IR file.
    #[serde(default, alias = "candidate-ir")]
    pub candidate_ir: Option<PathBuf>,
    /// Candidate policy id.
    #[serde(default, alias = "candidate-policy")]
    pub candidate_policy: Option<String>,
    /// Candidate selector.
    #[serde(default)]
    pub selector: Option<SelectorKind>,
    /// Candidate weights.
    #[serde(default)]
    pub weights: Option<PathBuf>,
    /// Shadow selector.
    #[serde(default, alias = "shadow-selector")]
    pub shadow_selector: Option<SelectorKind>,
    /// Shadow weights.
    #[serde(default, alias = "shadow-weights")]
    pub shadow_weights: Option<PathBuf>,
    /// Lists: name → file.
    #[serde(default)]
    pub lists: BTreeMap<String, PathBuf>,
    /// Window length.
    #[serde(default)]
    pub window: Option<Scalar>,
    /// Gate level.
    #[serde(default)]
    pub rollout: Option<Scalar>,
    /// Drift ratio limit.
    #[serde(default, alias = "drift-max")]
    pub drift_max: Option<Scalar>,
    /// Levels.
    #[serde(default)]
    pub levels: Option<Vec<Scalar>>,
    /// Minimum requests.
    #[serde(default, alias = "min-requests")]
    pub min_requests: Option<u64>,
    /// Rollback factor.
    #[serde(default, alias = "rollback-factor")]
    pub rollback_factor: Option<f64>,
    /// Rejections tolerated.
    #[serde(default, alias = "max-rejects")]
    pub max_rejects: Option<u64>,
    /// Sampling salt.
    #[serde(default)]
    pub salt: Option<String>,
    /// Input format.
    #[serde(default)]
    pub format: Option<Format>,
    /// Worker threads.
    #[serde(default)]
    pub threads: Option<usize>,
    /// Output directory.
    #[serde(default)]
    pub out: Option<PathBuf>,
    /// Confidence level (SPEC §8).
    #[serde(default)]
    pub confidence: Option<Scalar>,
    /// Rollout plan (SPEC §9): a path relative to this file, or the plan itself.
    #[serde(default)]
    pub plan: Option<serde_json::Value>,
    /// Drift examples kept in report.json.
    #[serde(default)]
    pub examples: Option<usize>,
    /// Window limit.
    #[serde(default, alias = "max-windows")]
    pub max_windows: Option<usize>,
    /// Every drifting record to this file.
    #[serde(default, alias = "drift-details")]
    pub drift_details: Option<PathBuf>,
    /// Redact request ids.
    #[serde(default, alias = "redact-ids")]
    pub redact_ids: Option<bool>,
    /// Exit 3 above this share of records on which one rule errors.
    #[serde(default, alias = "max-eval-error-ratio")]
    pub max_eval_error_ratio: Option<Scalar>,
    /// Write the partial aggregate here (SPEC §10).
    #[serde(default, alias = "partial-out")]
    pub partial_out: Option<PathBuf>,
    /// Rollout key path (SPEC §3).
    #[serde(default, alias = "bucket-key")]
    pub bucket_key: Option<String>,
    /// `recorded` or `recorded=ID` (SPEC §11).
    #[serde(default)]
    pub baseline: Option<String>,
    /// Unfaithful share that fails the run (SPEC §11).
    #[serde(default, alias = "max-unfaithful-ratio")]
    pub max_unfaithful_ratio: Option<Scalar>,
    /// Baseline OPA bundle (SPEC §12).
    #[serde(default)]
    pub bundle: Option<PathBuf>,
    /// Candidate OPA bundle (SPEC §12).
    #[serde(default, alias = "candidate-bundle")]
    pub candidate_bundle: Option<PathBuf>,
    /// OPA decision path (SPEC §12).
    #[serde(default)]
    pub decision: Option<String>,
}

impl Scenario {
    /// Reads a scenario into a settings layer, with paths relative to the file.
    pub fn load(path: &Path) -> Result<Layer, ProofError> {
        let bytes = crate::config::read_config(path)?;
        let s: Scenario = crate::config::from_yaml(&bytes, path)?;
        s.into_layer(path)
    }

    /// Checks and converts every value; errors name the file and the key.
    fn into_layer(self, path: &Path) -> Result<Layer, ProofError> {
        let base = path.parent().unwrap_or(Path::new(""));
        let fix = |p: PathBuf| {
            if p.is_relative() && p.as_os_str() != "-" {
                base.join(p)
            } else {
                p
            }
        };
        let bad = |key: &str, msg: String| {
            ProofError::config(path, 0, format!("scenario key `{key}`: {msg}"))
        };
        let window = self
            .window
            .map(|w| WindowLen::parse(&w.as_arg()).map_err(|e| bad("window", e)))
            .transpose()?;
        let plan = match self.plan {
            None => None,
            Some(serde_json::Value::String(p)) => {
                let file = fix(PathBuf::from(&p));
                Some(PlanSetting {
                    plan: Plan::load(&file)?,
                    origin: format!("plan file {}", file.display()),
                })
            }
            Some(v) => Some(PlanSetting {
                plan: Plan::from_value(&v).map_err(|e| bad("plan", e))?,
                origin: format!("{} (scenario key `plan`)", path.display()),
            }),
        };
        Ok(Layer {
            logs: self.logs.into_iter().map(fix).collect(),
            policy: self.policy,
            ir: self.ir.map(fix),
            policy_dir: self.policy_dir.map(fix),
            candidate_ir: self.candidate_ir.map(fix),
            candidate_policy: self.candidate_policy,
            selector: self.selector,
            weights: self.weights.map(fix),
            shadow_selector: self.shadow_selector,
            shadow_weights: self.shadow_weights.map(fix),
            lists: self
                .lists
                .into_iter()
                .map(|(name, p)| ListSpec { name, path: fix(p) })
                .collect(),
            window,
            rollout: self
                .rollout
                .map(|r| r.as_arg().parse().map_err(|e| bad("rollout", e)))
                .transpose()?,
            drift_max: self
                .drift_max
                .map(|d| {
                    crate::orchestrator::enforcer::parse_ratio(&d.as_arg())
                        .map_err(|e| bad("drift_max", e))
                })
                .transpose()?,
            levels: self
                .levels
                .map(|v| {
                    let joined = v.iter().map(Scalar::as_arg).collect::<Vec<_>>().join(",");
                    parse_levels(&joined).map_err(|e| bad("levels", e))
                })
                .transpose()?,
            min_requests: self.min_requests,
            rollback_factor: self
                .rollback_factor
                .map(|f| {
                    parse_rollback_factor(&f.to_string()).map_err(|e| bad("rollback_factor", e))
                })
                .transpose()?,
            max_rejects: self.max_rejects,
            salt: self.salt,
            format: self.format,
            threads: self
                .threads
                .map(|t| parse_threads(&t.to_string()).map_err(|e| bad("threads", e)))
                .transpose()?,
            out: self.out.map(fix),
            confidence: self
                .confidence
                .map(|c| Confidence::parse(&c.as_arg()).map_err(|e| bad("confidence", e)))
                .transpose()?,
            plan,
            examples: self.examples,
            max_windows: self.max_windows,
            drift_details: self.drift_details.map(fix),
            redact_ids: self.redact_ids,
            max_eval_error_ratio: self
                .max_eval_error_ratio
                .map(|r| {
                    crate::orchestrator::enforcer::parse_ratio(&r.as_arg())
                        .map_err(|e| bad("max_eval_error_ratio", e))
                })
                .transpose()?,
            partial_out: self.partial_out.map(fix),
            bucket_key: self
                .bucket_key
                .map(|k| k.parse().map_err(|e| bad("bucket_key", e)))
                .transpose()?,
            baseline: self
                .baseline
                .map(|b| b.parse().map_err(|e| bad("baseline", e)))
                .transpose()?,
            max_unfaithful_ratio: self
                .max_unfaithful_ratio
                .map(|r| {
                    crate::orchestrator::enforcer::parse_ratio(&r.as_arg())
                        .map_err(|e| bad("max_unfaithful_ratio", e))
                })
                .transpose()?,
            bundle: self.bundle.map(fix),
            candidate_bundle: self.candidate_bundle.map(fix),
            decision: self.decision,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_to_the_file_and_unknown_keys_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.yaml");
        std::fs::write(
            &p,
            "logs: [a.jsonl]\nir: p.ir.json\nrollout: 25\ndrift-max: 0.01\nlevels: [0, 50]\nlists: {s: l.csv}\n",
        )
        .unwrap();
        let s = Scenario::load(&p).unwrap();
        assert_eq!(s.logs, [d.path().join("a.jsonl")]);
        assert_eq!(s.lists[0].path, d.path().join("l.csv"));
        assert_eq!(s.rollout.unwrap().get(), 25);
        assert_eq!(s.drift_max.unwrap(), 0.01);
        std::fs::write(&p, "rolout: 25\n").unwrap();
        let e = Scenario::load(&p).unwrap_err().to_string();
        assert!(e.contains("rolout"), "{e}");
    }

    #[test]
    fn bad_values_name_the_file_and_key_not_a_flag() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.yaml");
        for (yaml, key, range) in [
            ("rollout: 100.5\n", "`rollout`", "0..=100"),
            ("drift_max: 2\n", "`drift_max`", "0.0..=1.0"),
            ("confidence: 0.3\n", "`confidence`", "0.5..=0.9999"),
            ("window: 3000000d\n", "`window`", "1ms..=366d"),
            ("plan: {steps: []}\n", "`plan`", "at least one step"),
        ] {
            std::fs::write(&p, yaml).unwrap();
            let e = Scenario::load(&p).unwrap_err().to_string();
            assert!(
                e.contains("s.yaml") && e.contains(key) && e.contains(range),
                "{yaml}: {e}"
            );
            assert!(!e.contains("--"), "{yaml}: blames a flag: {e}");
        }
        std::fs::write(
            &p,
            "examples: 3\ndrift_details: d.jsonl\nredact_ids: true\nconfidence: 0.95\n\
             plan: {steps: [{rollout: 5, duration: 10m}, {rollout: 100}], start: every}\n",
        )
        .unwrap();
        let s = Scenario::load(&p).unwrap();
        assert_eq!(s.examples, Some(3));
        assert_eq!(s.drift_details, Some(d.path().join("d.jsonl")));
        assert_eq!(s.redact_ids, Some(true));
        assert_eq!(s.plan.unwrap().plan.steps.len(), 2);
    }
}
