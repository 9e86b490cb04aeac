//! Production's answers for generated traffic (`proof gen --verdicts`, SPEC §11): each
//! record of the generated policy gets the `verdict` the baseline IR gives it on
//! replay's shadow path (basic selector, the bound lists, `now` = the record's time),
//! so replaying the log checks fidelity. With a flip ratio R an exact share of those
//! records, spread evenly over them in time order (the k-th flipped where
//! ⌊(k+1)·R⌋ > ⌊k·R⌋, so ⌊n·R⌋ of n), gets another verdict, as if production had
//! answered otherwise (a list changed since, a field not logged). The other verdict is
//! drawn from a stream of its own, so the records themselves are the same bytes with or
//! without `--verdicts`.

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::orchestrator::{Engine, Scratch, Verdict};
use crate::policy::expr::Env;
use crate::replay::record::Record;

/// Writes the baseline's verdict into records, flipping a share of them.
#[derive(Debug)]
pub struct Stamp {
    engine: Engine,
    scratch: Scratch,
    policy_id: String,
    flip_ratio: f64,
    rng: Pcg64Mcg,
    stamped: u64,
    flipped: u64,
}

impl Stamp {
    /// Stamps records naming `policy_id` with `engine`'s shadow verdict; `flip_ratio`
    /// (0.0..=1.0) of them get another one, chosen from `seed`.
    pub fn new(engine: Engine, policy_id: String, flip_ratio: f64, seed: u64) -> Stamp {
        Stamp {
            engine,
            scratch: Scratch::default(),
            policy_id,
            flip_ratio,
            rng: Pcg64Mcg::seed_from_u64(seed ^ 0x00F1_1DE1_17E5),
            stamped: 0,
            flipped: 0,
        }
    }

    /// The record with its verdict (records of another policy are left without one:
    /// what their policy answered is not the baseline's to say).
    pub fn apply(&mut self, mut r: Record) -> Record {
        if r.policy_id.as_deref() != Some(self.policy_id.as_str()) {
            return r;
        }
        let env = Env {
            ctx: &r.context,
            now_ms: r.ts_ms,
            vars: None,
        };
        let v = self.engine.evaluate(&env, &mut self.scratch).shadow.verdict;
        let k = self.stamped as f64;
        self.stamped += 1;
        let flip = ((k + 1.0) * self.flip_ratio).floor() > (k * self.flip_ratio).floor();
        r.verdict = Some(if flip {
            self.flipped += 1;
            let others: Vec<Verdict> = Verdict::ALL.into_iter().filter(|&o| o != v).collect();
            others[self.rng.random_range(0..others.len())]
        } else {
            v
        });
        r
    }

    /// Records stamped so far, and how many of them were flipped.
    pub fn counts(&self) -> (u64, u64) {
        (self.stamped, self.flipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::facade::{EngineOptions, PathChoice, build_engine};
    use crate::policy::{Lists, Policy};
    use serde_json::json;
    use std::sync::Arc;

    fn stamp(ratio: f64) -> Stamp {
        // One rule: audit.score ≥ 50.
        let ir = json!({"ir_version": "1.0", "policy_id": "t.v1", "rules": [
            {"id": "score", "op": "range_min", "lhs": {"var": "audit.score"}, "rhs": 50}
        ]});
        let p = Arc::new(
            Policy::parse(
                ir.to_string().as_bytes(),
                std::path::Path::new("t.ir.json"),
                &Lists::default(),
            )
            .unwrap(),
        );
        let engine = build_engine(EngineOptions {
            baseline: p.clone(),
            candidate: p,
            shadow: PathChoice::BASIC,
            enforced: PathChoice::BASIC,
            salt: None,
        })
        .unwrap();
        Stamp::new(engine, "t.v1".into(), ratio, 1)
    }

    fn record(i: u64, score: i64, policy: &str) -> Record {
        Record {
            ts_ms: i as i64,
            request_id: format!("r{i}"),
            policy_id: Some(policy.into()),
            context: json!({"audit": {"score": score}})
                .as_object()
                .unwrap()
                .clone(),
            verdict: None,
        }
    }

    #[test]
    fn verdicts_are_the_baselines_and_an_exact_share_is_flipped() {
        let mut s = stamp(0.0);
        assert_eq!(s.apply(record(0, 80, "t.v1")).verdict, Some(Verdict::Ok));
        assert_eq!(s.apply(record(1, 20, "t.v1")).verdict, Some(Verdict::Fail));
        assert_eq!(s.apply(record(2, 20, "other")).verdict, None);
        assert_eq!(s.counts(), (2, 0));
        // 0.25 of 10 stamped records: the 4th and the 8th (⌊2.5⌋ = 2) get another verdict.
        let mut s = stamp(0.25);
        let got: Vec<(Verdict, bool)> = (0..11)
            .filter(|&i| i != 5)
            .map(|i| record(i, 80, "t.v1"))
            .chain([record(5, 80, "other")])
            .filter_map(|r| s.apply(r).verdict)
            .map(|v| (v, v != Verdict::Ok))
            .collect();
        let flipped: Vec<usize> = got
            .iter()
            .enumerate()
            .filter(|(_, (_, f))| *f)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(flipped, [3, 7]);
        assert_eq!(s.counts(), (10, 2));
    }
}
