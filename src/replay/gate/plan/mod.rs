//! Rollout plans (SPEC §9): the plan model, reading a plan file, and the window check.
//!
//! One file per plan format, each a pure function from a parsed document to a
//! [`Plan`]: [`proof`] (proof's own `steps` shape), [`argo`] (an Argo Rollouts
//! `kind: Rollout`) and [`flagger`] (a Flagger `kind: Canary`). [`simulate`] runs a
//! plan over the report's windows. Nothing here reads the traffic or writes a report.

mod argo;
mod flagger;
mod proof;
mod simulate;

use std::path::Path;

use serde_json::Value;

use crate::error::ProofError;
use crate::orchestrator::RolloutPercent;
use crate::policy::time::{format_span, parse_span_ms};
use crate::replay::window::{WindowLen, WindowStart};

/// One step: a level held for a duration (the last may be open-ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Rollout level.
    pub rollout: RolloutPercent,
    /// How long, milliseconds; `None` for the open-ended last step.
    pub duration_ms: Option<i64>,
}

/// Where runs start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// At the first window's start.
    First,
    /// At every window start.
    Every,
    /// At `floor(instant / W) × W`; the text as given is kept for the report.
    Instant(i64, String),
}

impl Start {
    /// `"first"`, `"every"` or the instant as given.
    pub fn as_text(&self) -> &str {
        match self {
            Start::First => "first",
            Start::Every => "every",
            Start::Instant(_, s) => s,
        }
    }
}

/// A rollout plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Steps in order, at least one.
    pub steps: Vec<Step>,
    /// Breached windows before rollback, ≥ 1.
    pub failure_limit: u64,
    /// Where runs start.
    pub start: Start,
    /// What the file was: `proof`, `argo` or `flagger`.
    pub source: &'static str,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// Reached the end of its last step.
    Promoted,
    /// Breached windows reached the failure limit.
    RolledBack,
    /// The traffic ended first.
    Incomplete,
}

impl RunOutcome {
    /// Fixed name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Promoted => "promoted",
            RunOutcome::RolledBack => "rolled_back",
            RunOutcome::Incomplete => "incomplete",
        }
    }
}

/// What the judged windows of a run add up to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Impact {
    /// Evaluated records.
    pub requests: u64,
    /// Drifting records at the level of their window's step.
    pub events: u64,
    /// Of those, `ok->fail` and `warn->fail`.
    pub new_denials: u64,
    /// Of those, `fail->ok` and `fail->warn`.
    pub missed_denials: u64,
}

/// One simulated run.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// T0.
    pub start: WindowStart,
    /// How it ended.
    pub outcome: RunOutcome,
    /// Rolled back: the 1-based step and its level.
    pub rolled_back_in: Option<(usize, RolloutPercent)>,
    /// Rolled back: the breaching window's end; promoted: the last step's end.
    pub at_ms: Option<i64>,
    /// Judged windows that breached.
    pub breached_windows: u64,
    /// What it would have hurt.
    pub impact: Impact,
}

/// Outcome counts over all runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    /// Runs.
    pub runs: u64,
    /// Promoted runs.
    pub promoted: u64,
    /// Rolled-back runs.
    pub rolled_back: u64,
    /// Incomplete runs.
    pub incomplete: u64,
    /// Rolled-back runs per step (one entry per step).
    pub rolled_back_by_step: Vec<u64>,
    /// Largest impact.events.
    pub impact_events_max: u64,
    /// Lower median of impact.events.
    pub impact_events_median: u64,
}

/// The simulation's result.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanResult {
    /// The plan simulated.
    pub plan: Plan,
    /// No run rolled back.
    pub passed: bool,
    /// Runs in start order.
    pub runs: Vec<Run>,
    /// Outcome counts.
    pub summary: Summary,
    /// The first run's level per report window (0 once rolled back), for the
    /// "Rollout %" panel and the HTML staircase; windows before its start are absent.
    pub first_run_levels: Vec<(WindowStart, u8)>,
}

impl Plan {
    /// Checks every duration against the window length (SPEC §9: a whole multiple).
    pub fn check_window(&self, w: WindowLen, origin: &str) -> Result<(), ProofError> {
        for (i, s) in self.steps.iter().enumerate() {
            if let Some(d) = s.duration_ms
                && !w.divides(d)
            {
                return Err(ProofError::Usage(format!(
                    "{origin}: step {} (index {i}): duration {} is not a whole multiple of the window {w}; \
                     use a multiple of {w} or change --window",
                    i + 1,
                    format_span(d)
                )));
            }
        }
        Ok(())
    }

    /// Reads a plan file: proof's shape, Argo Rollouts or Flagger, as YAML or JSON. A
    /// YAML file of several documents (a Service, then the Rollout, as manifests are
    /// kept) is read from its one `kind: Rollout` or `kind: Canary` document; the
    /// others are named in a note on stderr.
    pub fn load(path: &Path) -> Result<Plan, ProofError> {
        let bytes = crate::config::read_config(path)?;
        let v = plan_document(&bytes, path)?;
        Plan::from_value(&v).map_err(|msg| ProofError::config(path, 0, msg))
    }

    /// A plan from a parsed document; the error names the step (index and key) and
    /// the allowed range, to be prefixed with the file or scenario key.
    pub fn from_value(v: &Value) -> Result<Plan, String> {
        let obj = v
            .as_object()
            .ok_or("a plan is a mapping with `steps` (or an Argo Rollout / Flagger Canary)")?;
        match obj.get("kind").and_then(Value::as_str) {
            Some("Rollout") => argo::parse(v),
            Some("Canary") => flagger::parse(v),
            Some(k) => Err(format!(
                "kind `{k}`: expected `Rollout` (Argo Rollouts) or `Canary` (Flagger), or no kind"
            )),
            None => proof::parse(obj),
        }
    }
}

/// The plan document of a file's bytes. Plain JSON is read as JSON (a large JSON plan
/// is not a YAML budget matter); YAML may hold several documents, of which the one
/// whose `kind` is `Rollout` or `Canary` is the plan.
fn plan_document(bytes: &[u8], path: &Path) -> Result<Value, ProofError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ProofError::config(path, 0, format!("not valid UTF-8: {e}")))?;
    let body = text.trim_start_matches('\u{feff}').trim_start();
    if body.starts_with('{') || body.starts_with('[') {
        match crate::config::from_json_strict(body.as_bytes(), path) {
            Ok(v) => return Ok(v),
            // `{steps: [...]}` is a YAML flow mapping, not JSON: YAML decides, unless
            // it is quoted like JSON, where JSON's message (line, column) is the useful one.
            Err(e) if body.starts_with("{\"") || body.starts_with('[') => return Err(e),
            Err(_) => {}
        }
    }
    let docs: Vec<Value> = serde_saphyr::from_multiple(body).map_err(|e| {
        let mut msg = e.to_string();
        // serde-saphyr's budgets stop alias bombs and giant documents; say which.
        if msg.contains("budget breached: Alias") || msg.contains("budget breached: Anchor") {
            msg.push_str(
                "\n(the YAML's aliases expand past the reader's fixed budget — an alias bomb? \
                 write the values out instead of aliasing them)",
            );
        } else if msg.contains("budget breached") {
            msg.push_str(
                "\n(the plan is larger than the YAML reader's fixed budget; a plan this size \
                 can be written as JSON, which is read without that budget)",
            );
        }
        ProofError::config(path, 0, msg)
    })?;
    pick_document(docs).map_err(|msg| ProofError::config(path, 0, msg))
}

/// The plan among a file's documents: the only one, or the only `kind: Rollout` /
/// `kind: Canary` among several (the others named in a note).
fn pick_document(mut docs: Vec<Value>) -> Result<Value, String> {
    if docs.len() <= 1 {
        return Ok(docs.pop().unwrap_or(Value::Null));
    }
    let describe = |i: usize, d: &Value| {
        let kind = d.get("kind").and_then(Value::as_str).unwrap_or("no kind");
        match d.pointer("/metadata/name").and_then(Value::as_str) {
            Some(name) => format!("document {} ({kind} {name})", i + 1),
            None => format!("document {} ({kind})", i + 1),
        }
    };
    let is_plan = |d: &Value| {
        matches!(
            d.get("kind").and_then(Value::as_str),
            Some("Rollout" | "Canary")
        )
    };
    let found: Vec<String> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| describe(i, d))
        .collect();
    let plans: Vec<usize> = (0..docs.len()).filter(|&i| is_plan(&docs[i])).collect();
    match plans.as_slice() {
        [i] => {
            let others: Vec<&str> = (0..docs.len())
                .filter(|j| j != i)
                .map(|j| found[j].as_str())
                .collect();
            crate::say!(
                "proof: note: plan read from {}; ignored: {}",
                found[*i],
                others.join(", ")
            );
            Ok(docs.swap_remove(*i))
        }
        [] => Err(format!(
            "{} YAML documents ({}) and none is an Argo `kind: Rollout` or a Flagger \
             `kind: Canary`; a plan file holds one plan",
            docs.len(),
            found.join(", ")
        )),
        several => Err(format!(
            "{} YAML documents ({}) hold {} rollouts; keep the one to simulate in its own file",
            docs.len(),
            found.join(", "),
            several.len()
        )),
    }
}

/// A rollout level: an integer 0..=100.
fn percent(v: &Value) -> Result<RolloutPercent, String> {
    v.as_u64()
        .and_then(|n| u8::try_from(n).ok())
        .and_then(RolloutPercent::new)
        .ok_or_else(|| format!("{v}: an integer 0..=100"))
}

/// A span as for `--window`.
fn span(s: &str) -> Result<i64, String> {
    parse_span_ms(s).ok_or_else(|| {
        format!("'{s}': expected a span such as 30m or 1h (a whole number > 0 with unit ms, s, m, h or d)")
    })
}

/// The open-ended step at 100 % that Argo and Flagger promote to after their steps.
fn promoted() -> Step {
    Step {
        rollout: RolloutPercent::new(100).expect("100 is a level"),
        duration_ms: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn multi_document_yaml_picks_the_rollout_and_names_the_others() {
        let p = Path::new("m.yaml");
        let two = b"apiVersion: v1\nkind: Service\nmetadata: {name: web}\n---\n\
            kind: Rollout\nspec: {strategy: {canary: {steps: [{setWeight: 10}, {pause: {duration: 1m}}]}}}\n";
        let v = plan_document(two, p).unwrap();
        assert_eq!(v["kind"], "Rollout");
        let none = b"kind: Service\n---\nkind: ConfigMap\nmetadata: {name: c}\n";
        let e = plan_document(none, p).unwrap_err().to_string();
        assert!(
            e.contains("2 YAML documents")
                && e.contains("document 1 (Service)")
                && e.contains("document 2 (ConfigMap c)")
                && !e.contains("from_multiple"),
            "{e}"
        );
        let both = b"kind: Rollout\n---\nkind: Canary\n";
        let e = plan_document(both, p).unwrap_err().to_string();
        assert!(e.contains("hold 2 rollouts"), "{e}");
    }

    #[test]
    fn plain_json_is_read_as_json() {
        let steps: Vec<Value> = (0..300_000)
            .map(|_| json!({"rollout": 1, "duration": "1m"}))
            .collect();
        let bytes = serde_json::to_vec(&json!({ "steps": steps })).unwrap();
        let v = plan_document(&bytes, Path::new("big.json")).unwrap();
        assert_eq!(v["steps"].as_array().unwrap().len(), 300_000);
        // A YAML flow mapping is still YAML.
        let v = plan_document(b"{steps: [{rollout: 5}]}", Path::new("p.yaml")).unwrap();
        assert_eq!(v["steps"][0]["rollout"], 5);
    }
}
