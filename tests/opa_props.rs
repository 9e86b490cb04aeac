//! SPEC §10 for OPA replays (§12) as a property: the OPA conformance events
//! (fixtures/conformance/opa: 47 lines, one broken, one without a path, one erased)
//! dealt into 2 or 3 shards in any pattern, each shard folded into its own partial,
//! the partials written as `--partial-out` bytes, read back and merged in any order,
//! give report.json of one run over every event: every field but the run's timing.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};

use proof::engine::{Engine, Worker};
use proof::replay::aggregate::{Aggregate, Origin};
use proof::replay::partial::{self, PartFile, Partial};
use proof::replay::pipeline::absorb;
use proof::replay::settings::Layer;
use proof::run::job::Job;

fn conf(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/conformance/opa")
        .join(rel)
}

fn job() -> Job {
    Job::resolve(
        Layer {
            bundle: Some(conf("shop-v1")),
            candidate_bundle: Some(conf("shop-v2.tar.gz")),
            rollout: Some("50".parse().unwrap()),
            drift_max: Some(0.1),
            max_rejects: Some(2),
            max_unfaithful_ratio: Some(0.05),
            bucket_key: Some("input.user".parse().unwrap()),
            examples: Some(5),
            ..Layer::default()
        }
        .finish(),
    )
    .unwrap()
}

/// Folds the lines whose index `keep` accepts (line numbers global).
fn fold(job: &Job, lines: &[&str], keep: impl Fn(usize) -> bool) -> Aggregate {
    let setup = job.setup();
    let mut acc = Aggregate::new(setup.bounds);
    proof::with_engine!(&job.engine, e => {
        let mut worker = e.worker();
        for (i, line) in lines.iter().enumerate() {
            if keep(i) && !line.trim().is_empty() {
                let origin = Origin { file: 0, line: i as u64 + 1 };
                absorb(&mut acc, &setup, origin, worker.line(line.as_bytes()));
            }
        }
    });
    acc.finish();
    acc
}

/// report.json without what depends on the run's clock and speed (`latency`, the one
/// field SPEC §6 calls not reproducible).
fn untimed(r: &proof::report::model::Report) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap();
    v.as_object_mut().unwrap().remove("latency");
    v
}

#[test]
fn opa_shards_merged_in_any_order_equal_one_run() {
    let job = job();
    let text = std::fs::read_to_string(conf("decisions.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let file = PartFile {
        path: "decisions.jsonl".into(),
        format: "jsonl".into(),
        compression: "none".into(),
        bytes: None,
    };
    let id = job.identity();
    let whole = Partial {
        header: id.header(vec![file.clone()]),
        agg: fold(&job, &lines, |_| true),
    };
    let one_report = proof::run::merge::report(&whole, &job.settings).unwrap();
    let one = untimed(&one_report);
    // Sanity: the conformance counts (47 lines: 1 malformed, 1 missing_path, 1 redacted).
    assert_eq!(one["records"]["read"], 47);
    assert_eq!(one["records"]["evaluated"], 44);
    assert!(one["drift"]["events"].as_u64().unwrap() > 0);

    let n = lines.len();
    let strategy = (2usize..=3).prop_flat_map(move |k| {
        (
            Just(k),
            prop::collection::vec(0..k, n),
            Just((0..k).collect::<Vec<_>>()).prop_shuffle(),
        )
    });
    let config = Config {
        cases: 16,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    };
    TestRunner::new(config)
        .run(&strategy, |(k, owner, order)| {
            let parts: Vec<(String, Partial)> = order
                .iter()
                .map(|&p| {
                    let part = Partial {
                        header: id.header(vec![file.clone()]),
                        agg: fold(&job, &lines, |i| owner[i] == p),
                    };
                    let bytes = partial::encode(&part).unwrap();
                    (format!("p{p}"), partial::decode(&bytes, "p").unwrap())
                })
                .collect();
            let merged = partial::merge(parts).unwrap();
            prop_assert_eq!(merged.header.files.len(), 1, "{} parts", k);
            let report = proof::run::merge::report(&merged, &job.settings).unwrap();
            prop_assert_eq!(untimed(&report), one.clone());
            Ok(())
        })
        .unwrap();
}
