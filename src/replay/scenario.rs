//! Scenario files (SPEC §6): the settings of `proof replay` in YAML, so a CI job is one
//! line. Keys are the flag names with `_` (or `-`); paths are relative to the file;
//! flags given on the command line override the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::source::Format;
use crate::error::ProofError;
use crate::orchestrator::SelectorKind;

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
}

impl Scenario {
    /// Reads a scenario and makes its paths relative to the current directory.
    pub fn load(path: &Path) -> Result<Scenario, ProofError> {
        let bytes = crate::config::read_config(path)?;
        let mut s: Scenario = crate::config::from_yaml(&bytes, path)?;
        let base = path.parent().unwrap_or(Path::new(""));
        let fix = |p: &mut PathBuf| {
            if p.is_relative() && p.as_os_str() != "-" {
                *p = base.join(&*p);
            }
        };
        s.logs.iter_mut().for_each(fix);
        for p in [
            &mut s.ir,
            &mut s.policy_dir,
            &mut s.candidate_ir,
            &mut s.weights,
            &mut s.shadow_weights,
            &mut s.out,
        ]
        .into_iter()
        .flatten()
        {
            fix(p);
        }
        s.lists.values_mut().for_each(fix);
        Ok(s)
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
        assert_eq!(s.lists["s"], d.path().join("l.csv"));
        assert_eq!(s.rollout.unwrap().as_arg(), "25");
        assert_eq!(s.drift_max.unwrap().as_arg(), "0.01");
        std::fs::write(&p, "rolout: 25\n").unwrap();
        let e = Scenario::load(&p).unwrap_err().to_string();
        assert!(e.contains("rolout"), "{e}");
    }
}
