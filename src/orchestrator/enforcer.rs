//! Shadow and enforced paths (SPEC §3): rollout sampling, the verdict pair of one
//! record, drift and its kind and cause.
//!
//! The [`Engine`] holds both paths; `adapt`, `replay` and `serve` all evaluate
//! records through it, so a record gets the same answer whichever command asks.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::compiled::Compiled;
use super::selector::{Kept, PathResult, Planner, RuleState, Share, Verdict};
use crate::policy::Policy;
use crate::policy::budget;
use crate::policy::expr::Env;

/// Number of sampling buckets; a bucket is in `0..BUCKETS`.
pub const BUCKETS: u16 = 10_000;

/// `u64_be(SHA-256(salt + ":" + request_id)[0..8]) mod 10000` (SPEC §3, fixed).
pub fn bucket(salt: &str, request_id: &str) -> u16 {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(b":");
    h.update(request_id.as_bytes());
    let d = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    (u64::from_be_bytes(first) % u64::from(BUCKETS)) as u16
}

/// A rollout level in whole percent, 0..=100, checked when parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct RolloutPercent(u8);

impl RolloutPercent {
    /// 100 %.
    pub const FULL: RolloutPercent = RolloutPercent(100);

    /// A level, if in range.
    pub fn new(p: u8) -> Option<Self> {
        (p <= 100).then_some(RolloutPercent(p))
    }

    /// The percentage.
    pub fn get(self) -> u8 {
        self.0
    }

    /// Buckets below this are enforced: `round(r × 100)`.
    pub fn threshold(self) -> u16 {
        u16::from(self.0) * 100
    }

    /// Whether a record in `bucket` is enforced at this level.
    pub fn covers(self, bucket: u16) -> bool {
        bucket < self.threshold()
    }
}

impl FromStr for RolloutPercent {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.trim()
            .parse::<u8>()
            .ok()
            .and_then(RolloutPercent::new)
            .ok_or_else(|| {
                format!("'{s}' is not a rollout level: allowed range is 0..=100 (whole percent)")
            })
    }
}

impl fmt::Display for RolloutPercent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Parses a drift ratio limit in 0.0..=1.0.
pub fn parse_ratio(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        // `+ 0.0` turns -0 into 0, so `--drift-max=-0` is reported as 0.0, not -0.0.
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x + 0.0),
        _ => Err(format!(
            "'{s}' is not a drift ratio: allowed range is 0.0..=1.0 (0.005 = 0.5 %)"
        )),
    }
}

/// The enforcement switches of `adapt` and `serve` (seed B1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EnforceOptions {
    /// Whether the candidate path may decide at all.
    pub enforce: bool,
    /// Share of requests (by bucket) it decides for.
    pub rollout_percent: RolloutPercent,
    /// Drift ratio above which a window breaches.
    pub drift_max_ratio: f64,
}

impl Default for EnforceOptions {
    fn default() -> Self {
        EnforceOptions {
            enforce: false,
            rollout_percent: RolloutPercent(0),
            drift_max_ratio: 0.005,
        }
    }
}

impl EnforceOptions {
    /// Whether enforcement applies to a record in `bucket`.
    pub fn applies(&self, bucket: u16) -> bool {
        self.enforce && self.rollout_percent.covers(bucket)
    }
}

/// The six drift kinds (SPEC §3, fixed names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DriftKind {
    /// New denial.
    OkToFail,
    /// New denial.
    WarnToFail,
    /// Missed denial.
    FailToOk,
    /// Missed denial.
    FailToWarn,
    /// Newly incomplete.
    OkToWarn,
    /// Newly complete.
    WarnToOk,
}

impl DriftKind {
    /// All kinds in report order.
    pub const ALL: [DriftKind; 6] = [
        DriftKind::OkToFail,
        DriftKind::WarnToFail,
        DriftKind::FailToOk,
        DriftKind::FailToWarn,
        DriftKind::OkToWarn,
        DriftKind::WarnToOk,
    ];

    /// The kind for a verdict pair, `None` when equal.
    pub fn of(shadow: Verdict, enforced: Verdict) -> Option<DriftKind> {
        use Verdict::*;
        Some(match (shadow, enforced) {
            (Ok, Fail) => DriftKind::OkToFail,
            (Warn, Fail) => DriftKind::WarnToFail,
            (Fail, Ok) => DriftKind::FailToOk,
            (Fail, Warn) => DriftKind::FailToWarn,
            (Ok, Warn) => DriftKind::OkToWarn,
            (Warn, Ok) => DriftKind::WarnToOk,
            _ => return None,
        })
    }

    /// Fixed name, e.g. `ok->fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::OkToFail => "ok->fail",
            DriftKind::WarnToFail => "warn->fail",
            DriftKind::FailToOk => "fail->ok",
            DriftKind::FailToWarn => "fail->warn",
            DriftKind::OkToWarn => "ok->warn",
            DriftKind::WarnToOk => "warn->ok",
        }
    }

    /// Index into `ALL`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// `ok->fail` or `warn->fail`: the candidate denies what production allowed.
    pub fn is_new_denial(self) -> bool {
        matches!(self, DriftKind::OkToFail | DriftKind::WarnToFail)
    }

    /// `fail->ok` or `fail->warn`: the candidate allows what production denied.
    pub fn is_missed_denial(self) -> bool {
        matches!(self, DriftKind::FailToOk | DriftKind::FailToWarn)
    }
}

/// The cause of a drift (SPEC §3): a rule, or one of the two fixed names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cause<'a> {
    /// The first rule bad on one path and not on the other.
    Rule(&'a str),
    /// No such rule, and a path skipped rules.
    BudgetSkip,
    /// No such rule, and no path skipped any.
    NoActiveRules,
}

impl<'a> Cause<'a> {
    /// The rule id, `budget_skip` or `no_active_rules`.
    pub fn as_str(self) -> &'a str {
        match self {
            Cause::Rule(id) => id,
            Cause::BudgetSkip => "budget_skip",
            Cause::NoActiveRules => "no_active_rules",
        }
    }
}

/// One path: a policy and its selector.
#[derive(Debug, Clone)]
pub struct PathSpec {
    /// The policy.
    pub policy: Arc<Policy>,
    /// Its selector.
    pub planner: Planner,
}

/// Shadow and enforced paths plus the sampling salt.
#[derive(Debug, Clone)]
pub struct Engine {
    /// What production does today.
    pub shadow: PathSpec,
    /// The candidate.
    pub enforced: PathSpec,
    /// Salt of the rollout hash (default: the baseline policy id).
    pub salt: String,
    /// Rules both paths have (same op and operands), found once at construction.
    share: Sharing,
    /// Both paths compiled (`None`: a rule or predicate outside the compiled shapes).
    compiled: Option<Arc<Compiled>>,
}

/// Which rules of the two paths decide the same on every record.
#[derive(Debug, Clone, Default)]
struct Sharing {
    /// Per shadow rule: the enforced path has it too.
    keep: Vec<bool>,
    /// Per enforced rule: the shadow rule with the same op and operands.
    from: Vec<Option<usize>>,
}

impl Sharing {
    fn of(shadow: &Policy, enforced: &Policy) -> Sharing {
        let from: Vec<Option<usize>> = enforced
            .rules
            .iter()
            .map(|e| shadow.rules.iter().position(|s| s.same_as(e)))
            .collect();
        let mut keep = vec![false; shadow.rules.len()];
        for j in from.iter().flatten() {
            keep[*j] = true;
        }
        Sharing { keep, from }
    }
}

/// Both paths' results for one record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// Shadow path.
    pub shadow: PathResult,
    /// Enforced path (as if enforcement applied).
    pub enforced: PathResult,
}

/// Scratch buffers reused across records by one thread.
#[derive(Debug, Default)]
pub struct Scratch {
    active: Vec<bool>,
    kept: Vec<Option<Kept>>,
    ev: Evaluation,
}

impl Scratch {
    /// The result the last evaluation into this scratch left there.
    pub fn evaluation(&self) -> &Evaluation {
        &self.ev
    }
}

impl Engine {
    /// Both paths and the rollout salt. Rules the two policies have in common (same
    /// op and operands, whatever their ids) are found here, so that a record
    /// evaluates each of them once.
    pub fn new(shadow: PathSpec, enforced: PathSpec, salt: String) -> Engine {
        let share = Sharing::of(&shadow.policy, &enforced.policy);
        let compiled = Compiled::of(
            [
                (&shadow.policy, &shadow.planner),
                (&enforced.policy, &enforced.planner),
            ],
            &share.from,
        )
        .map(Arc::new);
        Engine {
            shadow,
            enforced,
            salt,
            share,
            compiled,
        }
    }

    /// Number of enforced-path rules whose outcome is taken from the shadow path's
    /// identical rule when the shadow path ran it.
    pub fn shared_rules(&self) -> usize {
        self.share.from.iter().flatten().count()
    }

    /// Evaluates both paths on one record. A rule both paths have is evaluated once
    /// (on the shadow path, when it runs there) and its outcome reused, charging the
    /// same evaluation budget: the results are those of two separate runs.
    pub fn evaluate(&self, env: &Env<'_>, scratch: &mut Scratch) -> Evaluation {
        self.evaluate_in(env, env, scratch).clone()
    }

    /// [`Engine::evaluate`] with one environment per path: the same record, with each
    /// path's context vars resolved for its own policy ([`Env::vars`]).
    pub fn evaluate_pair(
        &self,
        shadow_env: &Env<'_>,
        enforced_env: &Env<'_>,
        scratch: &mut Scratch,
    ) -> Evaluation {
        self.evaluate_in(shadow_env, enforced_env, scratch).clone()
    }

    /// [`Engine::evaluate_pair`] into the scratch's result, which the next call
    /// replaces (what replay does per record: no result is built or moved).
    pub fn evaluate_in<'s>(
        &self,
        shadow_env: &Env<'_>,
        enforced_env: &Env<'_>,
        scratch: &'s mut Scratch,
    ) -> &'s Evaluation {
        if self.evaluate_compiled(shadow_env, enforced_env, scratch) {
            return &scratch.ev;
        }
        self.evaluate_generic(shadow_env, enforced_env, scratch)
    }

    /// Whether both policies compiled (`orchestrator::compiled`).
    pub fn is_compiled(&self) -> bool {
        self.compiled.is_some()
    }

    /// [`Engine::evaluate_in`] through the compiled program only, when there is one and
    /// the record is read into slots (`Env::vars`); `false`: the record needs the
    /// generic path ([`Scratch::evaluation`] then holds anything).
    pub fn evaluate_compiled(
        &self,
        shadow_env: &Env<'_>,
        enforced_env: &Env<'_>,
        scratch: &mut Scratch,
    ) -> bool {
        let (Some(c), Some(sv), Some(ev)) = (&self.compiled, shadow_env.vars, enforced_env.vars)
        else {
            return false;
        };
        // A caller's own meter (a smaller cap) is the generic path's business.
        if shadow_env.now_ms != enforced_env.now_ms || budget::meter().is_some() {
            return false;
        }
        let Scratch { kept, ev: out, .. } = scratch;
        c.run(
            [sv.values, ev.values],
            shadow_env.now_ms,
            kept,
            [&mut out.shadow, &mut out.enforced],
        )
    }

    /// [`Engine::evaluate_in`] through the generic evaluation only (every rule walked
    /// as an expression tree, metered op by op).
    pub fn evaluate_generic<'s>(
        &self,
        shadow_env: &Env<'_>,
        enforced_env: &Env<'_>,
        scratch: &'s mut Scratch,
    ) -> &'s Evaluation {
        let Scratch { active, kept, ev } = scratch;
        kept.clear();
        kept.resize(self.shadow.policy.rules.len(), None);
        self.shadow.planner.run_sharing_into(
            &self.shadow.policy,
            shadow_env,
            active,
            Share::Keep {
                keep: &self.share.keep,
                out: kept,
            },
            &mut ev.shadow,
        );
        self.enforced.planner.run_sharing_into(
            &self.enforced.policy,
            enforced_env,
            active,
            Share::Reuse {
                from: &self.share.from,
                kept,
            },
            &mut ev.enforced,
        );
        ev
    }

    /// The record's sampling bucket.
    pub fn bucket(&self, request_id: &str) -> u16 {
        bucket(&self.salt, request_id)
    }

    /// Drift kind and cause when the verdicts differ (as if enforcement applied).
    pub fn drift<'a>(&'a self, ev: &Evaluation) -> Option<(DriftKind, &'a str)> {
        self.drift_cause(ev).map(|(k, c)| (k, c.as_str()))
    }

    /// Drift kind and typed cause when the verdicts differ.
    pub fn drift_cause<'a>(&'a self, ev: &Evaluation) -> Option<(DriftKind, Cause<'a>)> {
        let kind = DriftKind::of(ev.shadow.verdict, ev.enforced.verdict)?;
        Some((kind, self.cause_of(ev)))
    }

    /// The cause of a drift (SPEC §3): the first rule bad on one path and not on
    /// the other, scanning the enforced order (taken, then skipped), then the shadow
    /// path's remaining rules; else `budget_skip` or `no_active_rules`.
    pub fn cause<'a>(&'a self, ev: &Evaluation) -> &'a str {
        self.cause_of(ev).as_str()
    }

    /// [`Engine::cause`] as a type.
    pub fn cause_of<'a>(&'a self, ev: &Evaluation) -> Cause<'a> {
        let (sp, ep) = (&*self.shadow.policy, &*self.enforced.policy);
        let state_in = |p: &Policy, r: &PathResult, id: &str| {
            p.rule_index(id)
                .map(|i| r.states[i])
                .unwrap_or(RuleState::Inactive)
        };
        let e_order = ev
            .enforced
            .taken
            .iter()
            .map(|(i, _)| *i)
            .chain(ev.enforced.skipped.iter().copied());
        for i in e_order {
            let id = &ep.rules[i].id;
            if ev.enforced.states[i].is_bad() != state_in(sp, &ev.shadow, id).is_bad() {
                return Cause::Rule(id);
            }
        }
        let s_order = ev
            .shadow
            .taken
            .iter()
            .map(|(i, _)| *i)
            .chain(ev.shadow.skipped.iter().copied());
        for i in s_order {
            let id = &sp.rules[i].id;
            let e_state = state_in(ep, &ev.enforced, id);
            // Rules the enforced scan already saw are not "remaining".
            if matches!(e_state, RuleState::Ran(_) | RuleState::Skipped) {
                continue;
            }
            if ev.shadow.states[i].is_bad() != e_state.is_bad() {
                return Cause::Rule(id);
            }
        }
        if !ev.shadow.skipped.is_empty() || !ev.enforced.skipped.is_empty() {
            Cause::BudgetSkip
        } else {
            Cause::NoActiveRules
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lksg(candidate: Option<&str>) -> Engine {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let at = |p: &str| root.join(p);
        super::super::facade::EngineFiles {
            baseline: at("fixtures/policies/lksg.v1.ir.json"),
            candidate: candidate.map(at),
            selector: super::super::SelectorKind::Basic,
            weights: None,
            shadow_selector: super::super::SelectorKind::Basic,
            shadow_weights: None,
            salt: None,
            lists: [
                "sanctions=fixtures/lists/sanctions.csv",
                "high_risk=fixtures/lists/high_risk_countries.txt",
            ]
            .iter()
            .map(|s| {
                let mut l: crate::policy::ListSpec = s.parse().unwrap();
                l.path = at(l.path.to_str().unwrap());
                l
            })
            .collect(),
        }
        .load()
        .unwrap()
    }

    #[test]
    fn rules_both_paths_have_are_found_once() {
        // lksg.v2 keeps five of lksg.v1's seven rules as they are (the two set rules
        // over bound lists among them); audit_recency and audit_score_min changed
        // their constants, and ubo_screened / controls_threshold are new.
        assert_eq!(
            lksg(Some("fixtures/policies/lksg.v2.ir.json")).shared_rules(),
            5
        );
        // Without a candidate both paths are one policy: every rule is shared.
        assert_eq!(lksg(None).shared_rules(), 7);
    }

    #[test]
    fn known_answer_buckets_from_the_conformance_page() {
        assert_eq!(bucket("demo.v1", "req-0000"), 7626);
        assert_eq!(bucket("demo.v1", "req-0001"), 9238);
        assert_eq!(bucket("demo.v1", "req-0002"), 5203);
        assert_eq!(bucket("lksg.v1", "r-000001"), 934);
    }

    #[test]
    fn rollout_levels() {
        assert_eq!("25".parse::<RolloutPercent>().unwrap().threshold(), 2500);
        assert!(
            "101"
                .parse::<RolloutPercent>()
                .unwrap_err()
                .contains("0..=100")
        );
        assert!("-1".parse::<RolloutPercent>().is_err());
        assert!("2.5".parse::<RolloutPercent>().is_err());
        let r = RolloutPercent::new(25).unwrap();
        assert!(r.covers(2499) && !r.covers(2500));
        assert!(!RolloutPercent::new(0).unwrap().covers(0));
        assert!(RolloutPercent::FULL.covers(9999));
        assert!(parse_ratio("1.5").unwrap_err().contains("0.0..=1.0"));
        assert_eq!(parse_ratio("0.005"), Ok(0.005));
        assert!(parse_ratio("NaN").is_err());
    }

    #[test]
    fn enforce_options_gate_on_enforce_and_bucket() {
        let mut o = EnforceOptions::default();
        assert!(!o.applies(0));
        o.enforce = true;
        assert!(!o.applies(0));
        o.rollout_percent = RolloutPercent::new(25).unwrap();
        assert!(o.applies(934) && !o.applies(7626));
    }

    #[test]
    fn drift_kinds() {
        use Verdict::*;
        assert_eq!(DriftKind::of(Ok, Ok), None);
        let names: Vec<_> = [
            (Ok, Fail),
            (Warn, Fail),
            (Fail, Ok),
            (Fail, Warn),
            (Ok, Warn),
            (Warn, Ok),
        ]
        .iter()
        .map(|(a, b)| DriftKind::of(*a, *b).unwrap().as_str())
        .collect();
        assert_eq!(
            names,
            [
                "ok->fail",
                "warn->fail",
                "fail->ok",
                "fail->warn",
                "ok->warn",
                "warn->ok"
            ]
        );
    }
}
