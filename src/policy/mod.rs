//! Policy IR v1: the model, loading and validation, hashing, and evaluation of
//! expressions and rule ops (SPEC §1). Selection and ordering of rules live in
//! `orchestrator`.

pub mod budget;
pub mod expr;
pub mod hash;
pub mod ir;
pub mod lists;
pub mod locate;
pub mod ops;
pub mod set;
pub mod time;
pub mod value;

pub use ir::{Policy, Rule, RuleOutcome};
pub use lists::{ListSpec, Lists};
