//! The adaptive orchestrator: selectors and plans, the shadow/enforced engine with
//! rollout sampling and drift, and the enforcer's Prometheus metrics (SPEC §2–3).

pub mod enforcer;
pub mod metrics;
pub mod selector;

pub use enforcer::{
    Cause, DriftKind, EnforceOptions, Engine, Evaluation, PathSpec, RolloutPercent, Scratch,
};
pub use selector::{PathResult, Plan, Planner, RuleState, SelectorKind, Verdict, Weights};
