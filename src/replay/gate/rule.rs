//! The SPEC's pass/fail arithmetic, written once (SPEC §5, §8, §9, §11): a window
//! counts, breaches, calls for rollback or passes; a run fails with exit code 3, 1 or
//! passes with 0. Replay's gate, the plan simulation, `serve`'s `/readyz` and the
//! reports all ask these functions; `tests/design_map.rs` fails if a comparison with
//! the drift limit is written anywhere else.

/// Whether a window of `requests` evaluated records is judged at all (SPEC §5:
/// windows with fewer than `--min-requests` never breach, nor pass; an empty window
/// has nothing to judge).
pub fn counts(requests: u64, min_requests: u64) -> bool {
    requests >= min_requests && requests > 0
}

/// Whether the judged figure (the point ratio, or the Wilson lower bound with
/// `--confidence`) breaches `drift_max` (SPEC §5, §8): strictly above it.
pub fn breaches(figure: f64, drift_max: f64) -> bool {
    figure > drift_max
}

/// Whether the judged figure calls for rollback: strictly above
/// `rollback_factor × drift_max` (SPEC §5).
pub fn rolls_back(figure: f64, drift_max: f64, rollback_factor: f64) -> bool {
    figure > rollback_factor * drift_max
}

/// Whether a window passes (SPEC §8, with `--confidence`): its Wilson upper bound is
/// at most `drift_max`. Also the test of "proven safe" on the pooled counts.
pub fn passes(upper: f64, drift_max: f64) -> bool {
    upper <= drift_max
}

/// Why a run exits 3 (SPEC §5, §11, and `--max-eval-error-ratio`), decided once by
/// the gate and carried into the report, so that exporters only read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunFailure {
    /// More rejected records than `--max-rejects`.
    pub too_many_rejects: bool,
    /// No evaluable record.
    pub nothing_evaluated: bool,
    /// A rule errored on more records of a path than `--max-eval-error-ratio`.
    pub eval_errors: bool,
    /// The replayed baseline did not reproduce production (SPEC §11).
    pub unfaithful: bool,
}

impl RunFailure {
    /// Whether the run fails with exit code 3.
    pub fn any(self) -> bool {
        self.too_many_rejects || self.nothing_evaluated || self.eval_errors || self.unfaithful
    }
}

/// Whether `share` (a ratio of records) is over a `--max-…-ratio` limit: strictly
/// above it, as for drift.
pub fn over(share: f64, max: f64) -> bool {
    share > max
}

/// Whether `rejected` records are more than `--max-rejects` allows.
pub fn too_many_rejects(rejected: u64, max_rejects: u64) -> bool {
    rejected > max_rejects
}

/// The process's exit code (SPEC §5, §9): 3 when the run failed, whatever the gate
/// says; else 1 when the gate (or, with a plan, the plan) fails; else 0.
pub fn exit_code(failure: RunFailure, gate_fails: bool) -> i32 {
    if failure.any() {
        3
    } else if gate_fails {
        1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_strict_and_pass_is_inclusive() {
        assert!(!breaches(0.05, 0.05));
        assert!(breaches(0.050_000_1, 0.05));
        assert!(!rolls_back(0.1, 0.05, 2.0));
        assert!(rolls_back(0.11, 0.05, 2.0));
        assert!(passes(0.05, 0.05));
        assert!(!passes(0.051, 0.05));
        assert!(!counts(0, 0));
        assert!(counts(5, 5) && !counts(4, 5));
        assert!(!too_many_rejects(3, 3) && too_many_rejects(4, 3));
    }

    #[test]
    fn exit_code_3_wins_over_the_gate() {
        let fail = RunFailure {
            unfaithful: true,
            ..RunFailure::default()
        };
        assert_eq!(exit_code(fail, false), 3);
        assert_eq!(exit_code(fail, true), 3);
        assert_eq!(exit_code(RunFailure::default(), true), 1);
        assert_eq!(exit_code(RunFailure::default(), false), 0);
    }
}
