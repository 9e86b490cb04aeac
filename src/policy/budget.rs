//! The per-record evaluation budget: a cap on the work one path of one record may
//! cost, so that a hostile record makes its verdict `fail` (reason `budget`) instead
//! of stalling a replay worker or a `serve` request (docs/reliability.md).
//!
//! Work is counted in *units*: one per array element (or object key) that a set op,
//! `in`, `eq`/`ne`, `max`/`min` or `threshold` reads. A bound list looked up through
//! its hash index costs nothing; iterating one costs its length. Every op is O(n + m)
//! in its operands (see `policy::set`), so units track time.
//!
//! The meter is a thread-local so that the evaluation API (`Expr::eval`,
//! `Rule::evaluate`) keeps its shape; it only counts inside [`metered`], which
//! `Planner::plan` and `Planner::run` open around one path of one record. Outside a
//! metered scope nothing is counted and nothing is refused.

use std::cell::Cell;

use super::value::EvalError;

/// Work units one path of one record may spend: 4 194 304 (2^22). Two 60 000-element
/// context arrays under `non_intersection` cost 120 000; a record reaches the cap only
/// with dozens of rules over arrays of that size (about 0.3 s of work per path at the
/// 70 ns a unit `benches/set_ops.rs` measures).
pub const EVAL_BUDGET_UNITS: u64 = 1 << 22;

/// The meter of the running scope: (cap, used).
#[derive(Clone, Copy)]
struct Meter {
    cap: u64,
    used: u64,
}

thread_local! {
    static METER: Cell<Option<Meter>> = const { Cell::new(None) };
}

/// Restores the meter of an enclosing scope (or none) when a scope ends, also on unwind.
struct Restore(Option<Option<Meter>>);

impl Drop for Restore {
    fn drop(&mut self) {
        if let Some(prev) = self.0 {
            METER.with(|m| m.set(prev));
        }
    }
}

/// Runs `f` under a meter of `cap` units and returns its result with the units spent.
/// Inside an enclosing metered scope, `f` spends from that scope's meter instead (so
/// a caller may wrap `Planner::run` with a smaller cap, as the tests do), and the
/// units returned are those `f` spent.
pub fn metered<R>(cap: u64, f: impl FnOnce() -> R) -> (R, u64) {
    let outer = METER.with(Cell::get);
    let start = outer.map_or(0, |m| m.used);
    let _restore = match outer {
        Some(_) => Restore(None),
        None => {
            METER.with(|m| m.set(Some(Meter { cap, used: 0 })));
            Restore(Some(None))
        }
    };
    let r = f();
    let used = METER.with(Cell::get).map_or(0, |m| m.used) - start;
    (r, used)
}

/// Spends `units`; `Err(Budget)` once the scope's total would pass its cap. The
/// refused units are counted too, so every later charge of the scope fails as well
/// (fail-closed: the rest of the record's rules error rather than run).
pub fn charge(units: usize) -> Result<(), EvalError> {
    METER.with(|m| match m.get() {
        None => Ok(()),
        Some(mut meter) => {
            meter.used = meter.used.saturating_add(units as u64);
            m.set(Some(meter));
            if meter.used > meter.cap {
                Err(EvalError::Budget)
            } else {
                Ok(())
            }
        }
    })
}

/// The running scope's meter as `(used, cap)`; `None` outside a metered scope.
pub fn meter() -> Option<(u64, u64)> {
    METER.with(|m| m.get().map(|m| (m.used, m.cap)))
}

/// Spends `units` only if the scope stays within its cap (always, outside a scope).
/// A rule outcome computed on one path is reused on the other with this: when the
/// units fit, evaluating again would have charged exactly them and decided the same.
pub fn charge_if_fits(units: u64) -> bool {
    METER.with(|m| match m.get() {
        None => true,
        Some(mut meter) => {
            let used = meter.used.saturating_add(units);
            if used > meter.cap {
                return false;
            }
            meter.used = used;
            m.set(Some(meter));
            true
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_inside_a_scope_and_refuses_past_the_cap() {
        assert_eq!(charge(usize::MAX), Ok(()));
        let ((a, b, c), used) = metered(10, || (charge(4), charge(6), charge(1)));
        assert_eq!((a, b, c), (Ok(()), Ok(()), Err(EvalError::Budget)));
        assert_eq!(used, 11);
        // The scope ended: unmetered again.
        assert_eq!(charge(100), Ok(()));
    }

    #[test]
    fn a_nested_scope_spends_from_the_outer_meter() {
        let ((inner, after), outer_used) = metered(5, || {
            let (r, used) = metered(EVAL_BUDGET_UNITS, || charge(4));
            ((r, used), charge(2))
        });
        assert_eq!(inner, (Ok(()), 4));
        assert_eq!(after, Err(EvalError::Budget));
        assert_eq!(outer_used, 6);
    }

    #[test]
    fn charge_if_fits_spends_only_within_the_cap() {
        assert!(charge_if_fits(u64::MAX));
        assert_eq!(meter(), None);
        let ((a, b, m), used) = metered(10, || (charge_if_fits(7), charge_if_fits(4), meter()));
        assert_eq!((a, b, m), (true, false, Some((7, 10))));
        assert_eq!(used, 7);
    }
}
