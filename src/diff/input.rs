//! Reading one side of a diff: a `proof replay --out` directory or its report.json,
//! parsed into typed structs that hold only the fields `proof diff` compares.
//! Unknown fields are ignored; SPEC §8/§9 fields (`gate.confidence`,
//! `gate.proven_safe_rollout_percent`, `levels[].passed_windows`, `plan`) are optional,
//! so reports written before and after those sections existed both load.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::error::ProofError;
use crate::report::model::SCHEMA;

/// `records` of report.json.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct Records {
    /// Records read.
    pub read: u64,
    /// Records evaluated on both paths.
    pub evaluated: u64,
    /// Records rejected.
    pub rejected: u64,
    /// Records skipped (another policy).
    pub skipped: u64,
}

/// Verdict counts of one path.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct VerdictCounts {
    /// ok.
    pub ok: u64,
    /// warn.
    pub warn: u64,
    /// fail.
    pub fail: u64,
}

/// `verdicts` of report.json.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Verdicts {
    /// Shadow path.
    pub shadow: VerdictCounts,
    /// Enforced path as at 100 %.
    pub enforced: VerdictCounts,
}

/// One entry of `drift.by_cause`.
#[derive(Debug, Clone, Deserialize)]
pub struct CauseCount {
    /// Rule id, `budget_skip` or `no_active_rules`.
    pub cause: String,
    /// Drift events.
    pub events: u64,
}

/// `drift` of report.json (as at 100 %).
#[derive(Debug, Clone, Deserialize)]
pub struct Drift {
    /// Drifting records.
    pub events: u64,
    /// Non-zero kinds.
    pub by_kind: BTreeMap<String, u64>,
    /// Causes and their events.
    pub by_cause: Vec<CauseCount>,
}

/// One entry of `levels`.
#[derive(Debug, Clone, Deserialize)]
pub struct Level {
    /// Rollout level.
    pub rollout_percent: u8,
    /// Drifting records enforced at this level.
    pub drift_events: u64,
    /// drift_events / evaluated.
    pub drift_ratio: f64,
    /// Largest window ratio.
    pub max_window_ratio: f64,
    /// Breaching windows.
    pub breached_windows: u64,
    /// Rollback windows.
    pub rollback_windows: u64,
    /// Passing windows (SPEC §8); absent in older reports.
    #[serde(default)]
    pub passed_windows: Option<u64>,
}

/// Drift of one window at one level.
#[derive(Debug, Clone, Deserialize)]
pub struct WindowLevel {
    /// Rollout level.
    pub rollout_percent: u8,
    /// Drifting records.
    pub events: u64,
    /// events / requests.
    pub ratio: f64,
}

/// One entry of `windows`.
#[derive(Debug, Clone, Deserialize)]
pub struct Window {
    /// RFC 3339 start.
    pub start: String,
    /// RFC 3339 end.
    pub end: String,
    /// Evaluated records.
    pub requests: u64,
    /// One entry per level.
    pub drift: Vec<WindowLevel>,
}

/// `gate` of report.json.
#[derive(Debug, Clone, Deserialize)]
pub struct Gate {
    /// Gate level.
    pub rollout_percent: u8,
    /// Drift ratio limit.
    pub drift_max: f64,
    /// Whether the gate passed.
    pub passed: bool,
    /// Starts of breaching windows.
    pub breached_windows: Vec<String>,
    /// Largest level at which no window breaches.
    pub max_safe_rollout_percent: u8,
    /// The replay's exit code.
    pub exit_code: i32,
    /// Confidence level (SPEC §8); absent or null when off.
    #[serde(default)]
    pub confidence: Option<f64>,
    /// Proven safe level (SPEC §8); absent or null when none.
    #[serde(default)]
    pub proven_safe_rollout_percent: Option<u8>,
}

/// `plan.summary` (SPEC §9).
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct PlanSummary {
    /// Simulated runs.
    pub runs: u64,
    /// Runs promoted.
    pub promoted: u64,
    /// Runs rolled back.
    pub rolled_back: u64,
    /// Runs that ran out of traffic.
    pub incomplete: u64,
}

/// `plan` (SPEC §9), the parts a diff compares.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Plan {
    /// No run rolled back.
    pub passed: bool,
    /// Run counts.
    pub summary: PlanSummary,
}

/// `fidelity` (SPEC §11): how much of production the replayed baseline reproduced.
#[derive(Debug, Clone, Deserialize)]
pub struct Fidelity {
    /// Evaluated records carrying a recorded verdict.
    pub checked: u64,
    /// Replayed as production answered.
    pub faithful: u64,
    /// Replayed otherwise.
    pub unfaithful: u64,
    /// Unfaithful records by `recorded->replayed`.
    #[serde(default)]
    pub by_kind: BTreeMap<String, u64>,
}

/// The fixed parts of report.json that `proof diff` reads.
#[derive(Debug, Clone, Deserialize)]
pub struct ReplayReport {
    /// `records`.
    pub records: Records,
    /// `verdicts`.
    pub verdicts: Verdicts,
    /// `drift`.
    pub drift: Drift,
    /// `levels`.
    pub levels: Vec<Level>,
    /// `windows`.
    pub windows: Vec<Window>,
    /// `gate`.
    pub gate: Gate,
    /// `plan`, when the replay had one.
    #[serde(default)]
    pub plan: Option<Plan>,
    /// `fidelity` (SPEC §11); null or absent when no record carried a verdict.
    #[serde(default)]
    pub fidelity: Option<Fidelity>,
}

/// An input file as report.json's free-form `inputs.files` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InputFile {
    /// Path as given to the replay.
    pub path: String,
    /// Size in bytes, when known.
    pub bytes: Option<u64>,
}

/// A policy as `inputs.baseline` / `inputs.candidate` name it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PolicyRef {
    /// Policy id.
    pub policy_id: String,
    /// IR hash.
    pub ir_hash: String,
    /// Selector.
    pub selector: String,
}

/// The free-form sections (`inputs`, `config`), read leniently: a field of the
/// wrong shape is treated as absent, since SPEC §6 does not fix them.
#[derive(Debug, Clone, Default)]
pub struct FreeForm {
    /// Input files, when listed.
    pub files: Option<Vec<InputFile>>,
    /// Baseline (shadow) policy.
    pub baseline: Option<PolicyRef>,
    /// Candidate (enforced) policy.
    pub candidate: Option<PolicyRef>,
    /// `config.window` as written (`5m`).
    pub window: Option<String>,
    /// Other settings from `config`, by name, as JSON values.
    pub settings: BTreeMap<&'static str, Value>,
}

/// Largest report.json `proof diff` reads: 256 MiB. Parsed, a report takes about 16
/// times its size in memory, so this bounds one side near 4 GiB.
pub const MAX_REPORT_BYTES: u64 = 256 << 20;

const REPORT_LIMIT: crate::files::Limit = crate::files::Limit {
    bytes: MAX_REPORT_BYTES,
    what: "report",
    why: "diff::input::MAX_REPORT_BYTES, fixed at build time: parsed, a report takes about 16 \
          times its size in memory",
};

/// Settings of `config` compared between the two sides (reported, never refused).
pub const COMPARED_SETTINGS: [&str; 4] = ["min_requests", "rollback_factor", "max_rejects", "salt"];

/// One side of a diff, loaded and checked.
#[derive(Debug, Clone)]
pub struct Side {
    /// The report.json path read.
    pub path: PathBuf,
    /// The argument as given (a directory or a file).
    pub arg: String,
    /// The fixed fields.
    pub report: ReplayReport,
    /// The free-form fields.
    pub free: FreeForm,
    /// Window length in milliseconds, from `config.window` or the first window.
    pub window_ms: Option<i64>,
}

/// Loads BASE or NEW: `arg` is a replay output directory or a report.json file.
/// Errors name the path and what is wrong; nothing is written.
pub fn load(arg: &Path) -> Result<Side, ProofError> {
    let path = if arg.is_dir() {
        let p = arg.join("report.json");
        if !p.is_file() {
            return Err(ProofError::config(
                arg,
                0,
                "no report.json in this directory; give a `proof replay --out DIR` directory \
                 or a report.json file"
                    .into(),
            ));
        }
        p
    } else {
        arg.to_path_buf()
    };
    let bytes = crate::files::read_limited(&path, REPORT_LIMIT)?;
    parse(&path, arg, &bytes)
}

/// Parses report.json bytes read from `path` (`arg` as the user gave it).
pub fn parse(path: &Path, arg: &Path, bytes: &[u8]) -> Result<Side, ProofError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| ProofError::json(path, &e))?;
    let Some(obj) = v.as_object() else {
        return Err(ProofError::config(
            path,
            0,
            "not a report: the top level is not a JSON object".into(),
        ));
    };
    match obj.get("schema") {
        Some(Value::String(s)) if s == SCHEMA => {}
        Some(Value::String(s)) => {
            return Err(ProofError::config(
                path,
                0,
                format!(
                    "schema is \"{s}\", not \"{SCHEMA}\"; proof diff compares {SCHEMA} reports \
                     (rerun proof replay with this version)"
                ),
            ));
        }
        Some(other) => {
            return Err(ProofError::config(
                path,
                0,
                format!("field schema: expected the string \"{SCHEMA}\", found {other}"),
            ));
        }
        None => {
            return Err(ProofError::config(
                path,
                0,
                format!("no schema field; expected a {SCHEMA} report.json from proof replay"),
            ));
        }
    }
    let report: ReplayReport = serde_json::from_value(v.clone())
        .map_err(|e| ProofError::config(path, 0, format!("not a complete {SCHEMA} report: {e}")))?;
    check(path, &report)?;
    let free = free_form(&v);
    let window_ms = free
        .window
        .as_deref()
        .and_then(crate::policy::time::parse_span_ms)
        .or_else(|| {
            let w = report.windows.first()?;
            let s = crate::policy::time::parse_timestamp_ms(&w.start)?;
            let e = crate::policy::time::parse_timestamp_ms(&w.end)?;
            (e > s).then_some(e - s)
        });
    Ok(Side {
        path: path.to_path_buf(),
        arg: arg.display().to_string(),
        report,
        free,
        window_ms,
    })
}

/// Checks what serde cannot: ranges and the level order the comparison relies on.
fn check(path: &Path, r: &ReplayReport) -> Result<(), ProofError> {
    let bad = |msg: String| Err(ProofError::config(path, 0, msg));
    for (i, l) in r.levels.iter().enumerate() {
        if l.rollout_percent > 100 {
            return bad(format!(
                "field levels[{i}].rollout_percent: {} is not in 0..=100",
                l.rollout_percent
            ));
        }
        if i > 0 && r.levels[i - 1].rollout_percent >= l.rollout_percent {
            return bad(format!(
                "field levels[{i}].rollout_percent: levels are not ascending ({} after {})",
                l.rollout_percent,
                r.levels[i - 1].rollout_percent
            ));
        }
    }
    for (name, v) in [
        ("gate.rollout_percent", r.gate.rollout_percent),
        (
            "gate.max_safe_rollout_percent",
            r.gate.max_safe_rollout_percent,
        ),
    ] {
        if v > 100 {
            return bad(format!("field {name}: {v} is not in 0..=100"));
        }
    }
    if let Some(p) = r.gate.proven_safe_rollout_percent
        && p > 100
    {
        return bad(format!(
            "field gate.proven_safe_rollout_percent: {p} is not in 0..=100"
        ));
    }
    Ok(())
}

fn free_form(v: &Value) -> FreeForm {
    let inputs = v.get("inputs");
    let files = inputs
        .and_then(|i| i.get("files"))
        .and_then(Value::as_array)
        .map(|fs| {
            fs.iter()
                .filter_map(|f| {
                    Some(InputFile {
                        path: f.get("path")?.as_str()?.to_string(),
                        bytes: f.get("bytes").and_then(Value::as_u64),
                    })
                })
                .collect()
        });
    let policy = |key: &str| {
        let p = inputs?.get(key)?;
        Some(PolicyRef {
            policy_id: p.get("policy_id")?.as_str()?.to_string(),
            ir_hash: p
                .get("ir_hash")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            selector: p
                .get("selector")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        })
    };
    let config = v.get("config");
    let settings = COMPARED_SETTINGS
        .iter()
        .filter_map(|k| Some((*k, config?.get(*k)?.clone())))
        .collect();
    FreeForm {
        files,
        baseline: policy("baseline"),
        candidate: policy("candidate"),
        window: config
            .and_then(|c| c.get("window"))
            .and_then(Value::as_str)
            .map(str::to_string),
        settings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal(extra_gate: &str) -> String {
        format!(
            r#"{{"schema":"proof.replay/v1","records":{{"read":1,"evaluated":1,"rejected":0,"skipped":0}},
            "verdicts":{{"shadow":{{"ok":1,"warn":0,"fail":0}},"enforced":{{"ok":1,"warn":0,"fail":0}}}},
            "drift":{{"events":0,"ratio":0.0,"by_kind":{{}},"by_cause":[]}},
            "levels":[{{"rollout_percent":100,"drift_events":0,"drift_ratio":0.0,"max_window_ratio":0.0,
              "breached_windows":0,"rollback_windows":0}}],
            "windows":[{{"start":"2026-11-05T08:00:00Z","end":"2026-11-05T08:10:00Z","requests":1,
              "drift":[{{"rollout_percent":100,"events":0,"ratio":0.0}}]}}],
            "gate":{{"rollout_percent":100,"drift_max":0.005,"passed":true,"breached_windows":[],
              "max_safe_rollout_percent":100,"exit_code":0{extra_gate}}},"future_field":[1,2]}}"#
        )
    }

    #[test]
    fn optional_fields_may_be_absent_or_null_and_window_falls_back_to_the_windows() {
        let p = Path::new("r.json");
        let s = parse(p, p, minimal("").as_bytes()).unwrap();
        assert_eq!(s.report.gate.proven_safe_rollout_percent, None);
        assert_eq!(s.report.levels[0].passed_windows, None);
        assert!(s.report.plan.is_none());
        assert_eq!(s.window_ms, Some(600_000));
        let s = parse(
            p,
            p,
            minimal(r#","confidence":null,"proven_safe_rollout_percent":null"#).as_bytes(),
        )
        .unwrap();
        assert_eq!(s.report.gate.confidence, None);
        let s = parse(
            p,
            p,
            minimal(r#","confidence":0.95,"proven_safe_rollout_percent":40"#).as_bytes(),
        )
        .unwrap();
        assert_eq!(s.report.gate.proven_safe_rollout_percent, Some(40));
    }

    #[test]
    fn errors_name_the_file_and_what_is_wrong() {
        let p = Path::new("r.json");
        let e = parse(p, p, b"{\"schema\": \"proof.replay/v1\", \"records\"")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("r.json:1:"), "{e}");
        let e = parse(p, p, br#"{"schema": "proof.replay/v2"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("schema is \"proof.replay/v2\""), "{e}");
        let e = parse(p, p, br#"{"schema": "proof.replay/v1"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `records`"), "{e}");
        let e = parse(p, p, b"[1]").unwrap_err().to_string();
        assert!(e.contains("not a JSON object"), "{e}");
        let bad = minimal("").replace(
            r#""max_safe_rollout_percent":100"#,
            r#""max_safe_rollout_percent":200"#,
        );
        let e = parse(p, p, bad.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("gate.max_safe_rollout_percent: 200"), "{e}");
    }
}
