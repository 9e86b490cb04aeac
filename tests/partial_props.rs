//! SPEC §10 as a property: the conformance traffic split at random into k parts (rows
//! dealt to parts in any pattern), each part folded into its own partial, the parts
//! encoded, decoded and merged in a random order, gives the report of one run over all
//! the records — every field SPEC §6 fixes, plan and confidence included; and over the
//! traffic with recorded verdicts (SPEC §11) and a bucket key (§3), the fidelity counts,
//! the unfaithful examples and `records.bucket_key_missing` as well.

use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};

use proof::engine::{Engine, Worker};
use proof::policy::ListSpec;
use proof::replay::aggregate::{Aggregate, Origin};
use proof::replay::gate::{Confidence, Plan};
use proof::replay::partial::{self, PartFile, Partial};
use proof::replay::pipeline::absorb;
use proof::replay::settings::{Layer, PlanSetting, Settings};
use proof::replay::window::WindowLen;
use proof::run::job::Job;

fn conf(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/conformance")
        .join(rel)
}

fn settings() -> Settings {
    Layer {
        ir: Some(conf("demo.v1.ir.json")),
        candidate_ir: Some(conf("demo.v2.ir.json")),
        lists: vec![
            ListSpec {
                name: "sanctions".into(),
                path: conf("sanctions.csv"),
            },
            ListSpec {
                name: "high_risk".into(),
                path: conf("high_risk.txt"),
            },
        ],
        window: WindowLen::from_ms(60_000),
        drift_max: Some(0.05),
        confidence: Confidence::new(0.6),
        max_rejects: Some(3),
        plan: Some(PlanSetting {
            plan: Plan::load(&conf("plan.yaml")).unwrap(),
            origin: "plan.yaml".into(),
        }),
        examples: Some(5),
        ..Layer::default()
    }
    .finish()
}

/// Folds the lines whose index `keep` accepts into one aggregate (line numbers global).
fn fold(job: &Job, lines: &[&str], keep: impl Fn(usize) -> bool) -> Aggregate {
    let setup = job.setup();
    let mut acc = Aggregate::new(setup.bounds);
    proof::with_engine!(&job.engine, e => {
        let mut worker = e.worker();
        for (i, line) in lines.iter().enumerate() {
            if keep(i) && !line.trim().is_empty() {
                let origin = Origin {
                    file: 0,
                    line: i as u64 + 1,
                };
                absorb(&mut acc, &setup, origin, worker.line(line.as_bytes()));
            }
        }
    });
    acc.finish();
    acc
}

fn fixed(r: &proof::report::model::Report) -> serde_json::Value {
    let v = serde_json::to_value(r).unwrap();
    let keys = [
        "records", "verdicts", "drift", "levels", "windows", "gate", "plan",
    ];
    keys.iter().map(|k| (k.to_string(), v[k].clone())).collect()
}

fn samples(r: &proof::report::model::Report) -> serde_json::Value {
    let v = serde_json::to_value(r).unwrap();
    serde_json::json!([v["inputs"]["files"], v["rejections"], v["examples"]])
}

#[test]
fn any_split_merged_in_any_order_equals_one_run() {
    let job = Job::resolve(settings()).unwrap();
    let text = std::fs::read_to_string(conf("traffic.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let file = PartFile {
        path: "traffic.jsonl".into(),
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
    let one = fixed(&one_report);
    // Sanity: the single run is the conformance case (4 drift events, rolled back).
    assert_eq!(one["drift"]["events"], 4);
    assert_eq!(one["plan"]["passed"], false);

    let n = lines.len();
    let strategy = (1usize..6).prop_flat_map(move |k| {
        (
            Just(k),
            prop::collection::vec(0..k, n),
            Just((0..k).collect::<Vec<_>>()).prop_shuffle(),
        )
    });
    let secs = std::env::var("PROOF_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(3.0);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let config = Config {
        cases: 32,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    };
    let mut master = TestRunner::new(config.clone());
    loop {
        let mut round = TestRunner::new_with_rng(config.clone(), master.new_rng());
        round
            .run(&strategy, |(k, owner, order)| {
                let parts: Vec<(String, Partial)> = order
                    .iter()
                    .map(|&p| {
                        let agg = fold(&job, &lines, |i| owner[i] == p);
                        let part = Partial {
                            header: id.header(vec![file.clone()]),
                            agg,
                        };
                        // Through the file format, as proof merge reads it.
                        let bytes = partial::encode(&part).unwrap();
                        (format!("p{p}"), partial::decode(&bytes, "p").unwrap())
                    })
                    .collect();
                let merged = partial::merge(parts).unwrap();
                // Every part read (rows of) the same file: it stays one input.
                prop_assert_eq!(merged.header.files.len(), 1, "{} parts", k);
                let report = proof::run::merge::report(&merged, &job.settings).unwrap();
                prop_assert_eq!(fixed(&report), one.clone());
                // The free-form fields a run writes the same way every time, too: the
                // input with its counts, the rejection samples with their lines, the
                // drift examples.
                prop_assert_eq!(samples(&report), samples(&one_report));
                Ok(())
            })
            .unwrap();
        if Instant::now() >= deadline {
            break;
        }
    }
}

/// The fourth conformance command line (SPEC §11, §3): traffic_verdicts.jsonl, buckets
/// keyed by `audit.score`, 10-minute windows.
fn fidelity_settings() -> Settings {
    Layer {
        ir: Some(conf("demo.v1.ir.json")),
        candidate_ir: Some(conf("demo.v2.ir.json")),
        lists: vec![
            ListSpec {
                name: "sanctions".into(),
                path: conf("sanctions.csv"),
            },
            ListSpec {
                name: "high_risk".into(),
                path: conf("high_risk.txt"),
            },
        ],
        window: WindowLen::from_ms(600_000),
        rollout: proof::orchestrator::RolloutPercent::new(25),
        drift_max: Some(0.1),
        max_rejects: Some(4),
        bucket_key: Some("audit.score".parse().unwrap()),
        max_unfaithful_ratio: Some(0.1),
        examples: Some(1),
        ..Layer::default()
    }
    .finish()
}

#[test]
fn fidelity_and_bucket_key_counts_of_merged_parts_equal_one_run() {
    let job = Job::resolve(fidelity_settings()).unwrap();
    let text = std::fs::read_to_string(conf("traffic_verdicts.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let file = PartFile {
        path: "traffic_verdicts.jsonl".into(),
        format: "jsonl".into(),
        compression: "none".into(),
        bytes: None,
    };
    let id = job.identity();
    let report_of = |agg: Aggregate| {
        let whole = Partial {
            header: id.header(vec![file.clone()]),
            agg,
        };
        proof::run::merge::report(&whole, &job.settings).unwrap()
    };
    let view = |r: &proof::report::model::Report| {
        let v = serde_json::to_value(r).unwrap();
        serde_json::json!([
            v["fidelity"],
            v["unfaithful_examples"],
            v["records"],
            v["levels"]
        ])
    };
    let one = view(&report_of(fold(&job, &lines, |_| true)));
    // Sanity: the conformance case (expected_v2_fidelity_score_r25.json): 37 of 39
    // faithful, one record without a score; with --examples 1 only the earlier of the
    // two unfaithful records is kept, so a part that lacks it must not leak the other.
    assert_eq!(one[0]["faithful"], 37);
    assert_eq!(one[0]["unfaithful"], 2);
    assert_eq!(one[2]["bucket_key_missing"], 1);
    assert_eq!(one[1].as_array().unwrap().len(), 1);

    let n = lines.len();
    let strategy = (1usize..6).prop_flat_map(move |k| {
        (
            Just(k),
            prop::collection::vec(0..k, n),
            Just((0..k).collect::<Vec<_>>()).prop_shuffle(),
        )
    });
    let config = Config {
        cases: 24,
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
            let report = proof::run::merge::report(&merged, &job.settings).unwrap();
            prop_assert_eq!(view(&report), one.clone(), "{} parts", k);
            Ok(())
        })
        .unwrap();
}
