//! Fixtures shared by the benchmarks: the bundled lksg policies with their lists.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use proof::orchestrator::{Engine, PathSpec, Planner, SelectorKind};
use proof::policy::{ListSpec, Lists, Policy};

/// A path below the crate root.
pub fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// lksg.v1 and lksg.v2 loaded with the three bundled lists.
pub fn lksg_policies() -> (Arc<Policy>, Arc<Policy>) {
    let specs: Vec<ListSpec> = [
        "sanctions=fixtures/lists/sanctions.csv",
        "ubo_watchlist=fixtures/lists/ubo_watchlist.txt",
        "high_risk=fixtures/lists/high_risk_countries.txt",
    ]
    .iter()
    .map(|s| {
        let mut spec: ListSpec = s.parse().unwrap();
        spec.path = fixture(spec.path.to_str().unwrap());
        spec
    })
    .collect();
    let lists = Lists::load(&specs).unwrap();
    let load = |p: &str| Arc::new(Policy::load(&fixture(p), &lists).unwrap());
    (
        load("fixtures/policies/lksg.v1.ir.json"),
        load("fixtures/policies/lksg.v2.ir.json"),
    )
}

/// lksg.v1 (shadow) → lksg.v2 (enforced), basic selector on both paths, salt lksg.v1:
/// the engine `scripts/bench.sh`'s replay runs.
#[allow(dead_code)] // not every bench uses it
pub fn lksg_engine() -> Engine {
    let (v1, v2) = lksg_policies();
    let path = |p: Arc<Policy>| PathSpec {
        planner: Planner::new(&p, SelectorKind::Basic, None),
        policy: p,
    };
    Engine::new(path(v1), path(v2), "lksg.v1".into())
}
