//! The adaptive orchestrator: selectors and plans, the shadow/enforced engine with
//! rollout sampling and drift, the single-request facade of `adapt` and `serve`
//! (`facade`), and the enforcer's Prometheus metrics (SPEC §2–3, §7).

pub mod compiled;
pub mod enforcer;
pub mod facade;
pub mod metrics;
pub mod selector;

pub use enforcer::{
    Cause, DriftKind, EnforceOptions, Engine, Evaluation, PathSpec, RolloutPercent, Scratch,
};
pub use facade::{DecideOptions, Decision, EngineOptions, Request, build_engine, decide};
pub use selector::{
    Kept, PathResult, Plan, Planner, RuleState, SelectorKind, Share, Verdict, Weights,
};
