//! Both paths of an engine compiled once into typed steps over the vars replay
//! resolves per record (issue 25, item 2).
//!
//! The generic evaluation (`Expr::eval`, `Rule::evaluate`, `Planner::run_sharing_into`)
//! walks expression trees, returns every intermediate value through memory, meters each
//! op against the record's budget and keeps or reuses shared outcomes through the
//! planner. Here each rule and predicate of the two policies is compiled to a step of
//! a few fixed shapes (a var, a literal, a bound list, `now()`, `len(var)`,
//! `max`/`min(var)`, `add`/`sub` of those) and evaluated with plain typed code.
//!
//! It is a *fast path*, not a second semantics: it answers only when every value it
//! meets has the shape the generic evaluation would read without an error — a var
//! present, numbers compared with numbers, times with times, list probes with strings,
//! non-empty arrays where `max` or `threshold` need them — and when the budget units the
//! generic path would charge stay within [`EVAL_BUDGET_UNITS`] on each path (so no charge
//! could have been refused). Anything else (a missing var, a type error, a date that
//! does not parse, an overflow, a path over budget) makes it answer `None`, and the
//! record is evaluated by the generic path from scratch, which then errors, fails or
//! passes as it always did. A policy with a rule or predicate outside these shapes, or
//! with more than six predicates, is not compiled at all. Its plans are:
//! the selector's walk does not read outcomes, so the plan for every combination of
//! predicate results is made once, when the engine is built. The differential test (`tests` below, and the fuzz properties
//! through replay) checks states, plans and verdicts against the generic path.

use std::sync::Arc;

use serde_json::Value;

use super::selector::{Kept, PathResult, Planner, RuleState, Verdict};
use crate::policy::budget::EVAL_BUDGET_UNITS;
use crate::policy::expr::{Expr, Func, VarRef};
use crate::policy::lists::ListData;
use crate::policy::ops::Op;
use crate::policy::time::{parse_duration_ms, parse_timestamp_ms};
use crate::policy::value::Temporal;
use crate::policy::{Policy, RuleOutcome};

/// An operand, compiled.
#[derive(Debug, Clone)]
enum Arg {
    /// A context var (its id in the policy's `Vars`).
    Var(usize),
    /// A number literal.
    Num(f64),
    /// A boolean literal.
    Bool(bool),
    /// A string literal that is not a time or duration.
    Str(Arc<str>),
    /// `null`.
    Null,
    /// A string literal that reads as a time or duration (`Expr::TimeLit`).
    TimeLit(Arc<str>, Temporal),
    /// A bound list.
    List(Arc<ListData>),
    /// `now()`.
    Now,
    /// `len(var)`.
    Len(usize),
    /// `max(var)` (true) or `min(var)`.
    Extreme(usize, bool),
    /// `add(a, b)` (false) or `sub(a, b)` (true).
    Shift(Box<Arg>, Box<Arg>, bool),
}

/// A value met while evaluating a compiled step.
#[derive(Debug, Clone, Copy)]
enum V<'a> {
    Num(f64),
    Bool(bool),
    Str(&'a str),
    Null,
    Time(i64),
    Dur(i64),
    /// A time or duration literal: a string for `eq`, a time for comparisons.
    TimeLit(&'a str, Temporal),
    Arr(&'a [Value]),
    /// A bound list (read only by `Step::Set`).
    List,
}

/// A predicate, compiled: a boolean.
#[derive(Debug, Clone)]
enum Cond {
    /// `lt`/`le`/`gt`/`ge` (as the op of the same name) or `eq`/`ne`.
    Cmp(Op, Arg, Arg),
    /// An order comparison of a number and a number literal.
    NumCmp(NumArg, Op, f64),
    /// A time comparison of one of the [`TimeCmp`] shapes.
    Time(TimeCmp),
    /// `and` (true) or `or` of every argument (all evaluated).
    All(Vec<Cond>, bool),
    /// `not(x)`.
    Not(Box<Cond>),
    /// A boolean literal.
    Lit(bool),
    /// A var holding a boolean.
    Var(usize),
}

/// A number a comparison reads: a var holding one, or `len(var)`.
#[derive(Debug, Clone, Copy)]
enum NumArg {
    Var(usize),
    Len(usize),
}

/// How recent a var's newest (or oldest) time is, in the two shapes policies write it:
/// `op(max(var), sub(now(), "P730D"))` and `op(sub(now(), max(var)), "P365D")`.
#[derive(Debug, Clone, Copy)]
enum TimeCmp {
    /// `op(max|min(var), now() -|+ dur)`: (var, want_max, op, dur ms, sub).
    Since(usize, bool, Op, i64, bool),
    /// `op(now() - max|min(var), dur)`: (var, want_max, op, dur ms).
    Age(usize, bool, Op, i64),
}

/// A rule, compiled: the common shapes with their operands fixed, then any op over
/// compiled operands.
#[derive(Debug, Clone)]
enum Step {
    /// `membership`/`non_membership` (`Some(want_in)`) or `non_intersection` (`None`)
    /// of a var against a bound list.
    Set(usize, Arc<ListData>, Option<bool>),
    /// `eq` (true) or `ne` of a var and a boolean literal.
    BoolEq(usize, bool, bool),
    /// An order op of a number and a number literal.
    NumCmp(NumArg, Op, f64),
    /// `threshold` of a var and a number literal.
    Threshold(usize, f64),
    /// A time comparison of one of the [`TimeCmp`] shapes.
    Time(TimeCmp),
    /// Any op over compiled operands.
    Any(Op, Arg, Arg),
}

/// One path's policy, compiled.
#[derive(Debug, Clone)]
struct PathProgram {
    rules: Vec<Step>,
    predicates: Vec<Cond>,
    /// The plan for each combination of predicate results (bit `k` = predicate `k`
    /// holds): the selector's walk does not read outcomes, so it is done here once.
    plans: Vec<PlanTemplate>,
}

/// A plan with the states it leaves before any rule runs.
#[derive(Debug, Clone)]
struct PlanTemplate {
    taken: Vec<(usize, u64)>,
    skipped: Vec<usize>,
    /// `Inactive` or `Skipped` per rule; taken rules get `Ran` when they run.
    states: Vec<RuleState>,
}

/// Most predicates a compiled policy has: its plans are computed for every
/// combination of their results (2^6 = 64 plans).
const MAX_PREDICATES: usize = 6;

/// Both paths, compiled, and which enforced rules the shadow path decides too.
#[derive(Debug, Clone)]
pub struct Compiled {
    paths: [PathProgram; 2],
    /// Per enforced rule: the shadow rule with the same op and operands.
    from: Vec<Option<usize>>,
}

/// Per-record state of one evaluation: budget units per path and the `max`/`min`
/// results already computed (by array, as the generic memo keys them).
struct Run<'a> {
    now: i64,
    units: u64,
    extremes: [(usize, usize, bool, Option<V<'a>>, u64); 4],
    n_extremes: usize,
}

impl Compiled {
    /// Compiles both policies; `None` when a rule or predicate of either has a shape
    /// outside the compiled ones (the engine then always evaluates generically).
    pub fn of(
        [shadow, enforced]: [(&Policy, &Planner); 2],
        from: &[Option<usize>],
    ) -> Option<Compiled> {
        Some(Compiled {
            paths: [
                PathProgram::of(shadow.0, shadow.1)?,
                PathProgram::of(enforced.0, enforced.1)?,
            ],
            from: from.to_vec(),
        })
    }

    /// Evaluates both paths on one record whose vars are resolved (`vars`, per path
    /// indexed by its policy's var ids) into `out`; `false` when the record needs the
    /// generic path (then `out` holds anything).
    pub fn run<'a>(
        &'a self,
        vars: [&[Option<&'a Value>]; 2],
        now: i64,
        kept: &mut Vec<Option<Kept>>,
        out: [&mut PathResult; 2],
    ) -> bool {
        let [shadow_out, enforced_out] = out;
        kept.clear();
        kept.resize(self.paths[0].rules.len(), None);
        let mut run = Run {
            now,
            units: 0,
            extremes: [(0, 0, false, None, 0); 4],
            n_extremes: 0,
        };
        if self.paths[0]
            .run(
                vars[0],
                &mut run,
                shadow_out,
                |i, outcome, units| kept[i] = Some(Kept { outcome, units }),
                |_| None,
            )
            .is_none()
        {
            return false;
        }
        run.units = 0;
        let from = &self.from;
        self.paths[1]
            .run(
                vars[1],
                &mut run,
                enforced_out,
                |_, _, _| {},
                |i| from.get(i).copied().flatten().and_then(|j| kept[j]),
            )
            .is_some()
    }
}

impl PathProgram {
    fn of(policy: &Policy, planner: &Planner) -> Option<PathProgram> {
        let rules = policy
            .rules
            .iter()
            .map(|r| Step::of(r.op, Arg::of(&r.lhs)?, Arg::of(&r.rhs)?))
            .collect::<Option<Vec<_>>>()?;
        let predicates = policy
            .predicates
            .iter()
            .map(|p| Cond::of(&p.expr))
            .collect::<Option<Vec<_>>>()?;
        if predicates.len() > MAX_PREDICATES {
            return None;
        }
        let plans = (0..1u64 << predicates.len())
            .map(|holds| {
                let active: Vec<bool> = policy
                    .activators
                    .iter()
                    .map(|a| a.is_empty() || a.iter().any(|&p| holds >> p & 1 == 1))
                    .collect();
                let (mut taken, mut skipped) = (Vec::new(), Vec::new());
                planner.walk(&active, &mut taken, &mut skipped);
                let mut states = vec![RuleState::Inactive; rules.len()];
                for &i in &skipped {
                    states[i] = RuleState::Skipped;
                }
                PlanTemplate {
                    taken,
                    skipped,
                    states,
                }
            })
            .collect();
        Some(PathProgram {
            rules,
            predicates,
            plans,
        })
    }

    /// One path: predicates, plan, the taken rules (an outcome from `reuse` when the
    /// other path decided the same rule), states and verdict, as
    /// `Planner::run_sharing_into` leaves them. `keep` hears every rule evaluated here.
    fn run<'a>(
        &'a self,
        vars: &[Option<&'a Value>],
        run: &mut Run<'a>,
        out: &mut PathResult,
        mut keep: impl FnMut(usize, RuleOutcome, u64),
        reuse: impl Fn(usize) -> Option<Kept>,
    ) -> Option<()> {
        let mut holds = 0usize;
        for (k, p) in self.predicates.iter().enumerate() {
            holds |= usize::from(p.eval(vars, run)?) << k;
        }
        let plan = &self.plans[holds];
        out.taken.clear();
        out.taken.extend_from_slice(&plan.taken);
        out.skipped.clear();
        out.skipped.extend_from_slice(&plan.skipped);
        out.states.clear();
        out.states.extend_from_slice(&plan.states);
        let mut failed = false;
        for &(i, _) in &plan.taken {
            let outcome = match reuse(i) {
                Some(k) => {
                    run.units += k.units;
                    k.outcome
                }
                None => {
                    let before = run.units;
                    let o = if self.rules[i].eval(vars, run)? {
                        RuleOutcome::Pass
                    } else {
                        RuleOutcome::Fail
                    };
                    keep(i, o, run.units - before);
                    o
                }
            };
            failed |= outcome.is_bad();
            out.states[i] = RuleState::Ran(outcome);
        }
        if run.units > EVAL_BUDGET_UNITS {
            return None;
        }
        out.verdict = Verdict::of_path(failed, &out.skipped, &out.taken);
        Some(())
    }
}

impl Arg {
    fn of(e: &Expr) -> Option<Arg> {
        Some(match e {
            Expr::Lit(Value::Number(n)) => Arg::Num(n.as_f64()?),
            Expr::Lit(Value::Bool(b)) => Arg::Bool(*b),
            Expr::Lit(Value::String(s)) => Arg::Str(s.as_str().into()),
            Expr::Lit(Value::Null) => Arg::Null,
            Expr::Lit(_) => return None,
            Expr::TimeLit(s, t) => Arg::TimeLit(s.as_str().into(), *t),
            Expr::Var(VarRef::List(l)) => Arg::List(l.clone()),
            Expr::Var(VarRef::Ctx { id, .. }) => Arg::Var(*id),
            Expr::Call(Func::Now, args) if args.is_empty() => Arg::Now,
            Expr::Call(Func::Len, args) => match args.as_slice() {
                [Expr::Var(VarRef::Ctx { id, .. })] => Arg::Len(*id),
                _ => return None,
            },
            Expr::Call(f @ (Func::Max | Func::Min), args) => match args.as_slice() {
                [Expr::Var(VarRef::Ctx { id, .. })] => Arg::Extreme(*id, *f == Func::Max),
                _ => return None,
            },
            Expr::Call(f @ (Func::Add | Func::Sub), args) => match args.as_slice() {
                [a, b] => Arg::Shift(
                    Box::new(Arg::of(a)?),
                    Box::new(Arg::of(b)?),
                    *f == Func::Sub,
                ),
                _ => return None,
            },
            Expr::Call(..) => return None,
        })
    }

    /// The operand's value; `None`: the generic path must decide (an error there).
    fn eval<'a>(&'a self, vars: &[Option<&'a Value>], run: &mut Run<'a>) -> Option<V<'a>> {
        Some(match self {
            Arg::Var(id) => from_json(vars.get(*id).copied().flatten()?)?,
            Arg::Num(x) => V::Num(*x),
            Arg::Bool(b) => V::Bool(*b),
            Arg::Str(s) => V::Str(s),
            Arg::Null => V::Null,
            Arg::TimeLit(s, t) => V::TimeLit(s, *t),
            Arg::List(_) => V::List,
            Arg::Now => V::Time(run.now),
            Arg::Len(id) => match vars.get(*id).copied().flatten()? {
                Value::String(s) => V::Num(s.chars().count() as f64),
                Value::Array(a) => V::Num(a.len() as f64),
                _ => return None,
            },
            Arg::Extreme(id, want_max) => {
                let Value::Array(xs) = vars.get(*id).copied().flatten()? else {
                    return None;
                };
                run.extreme(xs, *want_max)?
            }
            Arg::Shift(a, b, sub) => {
                let (x, y) = (a.eval(vars, run)?, b.eval(vars, run)?);
                shift(x, y, *sub)?
            }
        })
    }
}

impl<'a> Run<'a> {
    /// `max`/`min` of a non-empty array of numbers, times or durations, computed once
    /// per record and array and charged on every use, as the generic memo does.
    fn extreme(&mut self, xs: &'a [Value], want_max: bool) -> Option<V<'a>> {
        let key = (xs.as_ptr() as usize, xs.len(), want_max);
        for e in &self.extremes[..self.n_extremes] {
            if (e.0, e.1, e.2) == key {
                self.units += e.4;
                return e.3;
            }
        }
        if xs.is_empty() {
            return None;
        }
        let units = xs.len() as u64;
        let found = extreme_of(xs, want_max);
        if self.n_extremes < self.extremes.len() {
            self.extremes[self.n_extremes] = (key.0, key.1, key.2, found, units);
            self.n_extremes += 1;
        }
        self.units += units;
        found
    }
}

/// `extreme_of` of the generic path: elements are numbers, or strings read as times
/// (or durations), and all of one kind.
fn extreme_of<'a>(xs: &[Value], want_max: bool) -> Option<V<'a>> {
    let element = |x: &Value| -> Option<V<'a>> {
        match x {
            Value::Number(n) => Some(V::Num(n.as_f64()?)),
            Value::String(s) => Some(match temporal(V::Str(s))? {
                Temporal::Time(t) => V::Time(t),
                Temporal::Dur(d) => V::Dur(d),
            }),
            _ => None,
        }
    };
    let (first, rest) = xs.split_first()?;
    let mut best = element(first)?;
    for x in rest {
        let v = element(x)?;
        let o = compare(v, best)?;
        if (want_max && o.is_gt()) || (!want_max && o.is_lt()) {
            best = v;
        }
    }
    Some(best)
}

/// `add`/`sub` as the generic `add_sub` computes it; `None` for its errors.
fn shift<'a>(a: V<'a>, b: V<'a>, sub: bool) -> Option<V<'a>> {
    if let (V::Num(x), V::Num(y)) = (a, b) {
        return Some(V::Num(if sub { x - y } else { x + y }));
    }
    use Temporal::{Dur, Time};
    let r = match (temporal(a)?, temporal(b)?, sub) {
        (Time(t), Dur(d), false) | (Dur(d), Time(t), false) => t.checked_add(d).map(Time),
        (Time(t), Dur(d), true) => t.checked_sub(d).map(Time),
        (Time(t), Time(u), true) => t.checked_sub(u).map(Dur),
        (Dur(d), Dur(e), false) => d.checked_add(e).map(Dur),
        (Dur(d), Dur(e), true) => d.checked_sub(e).map(Dur),
        _ => return None,
    }?;
    Some(match r {
        Time(t) => V::Time(t),
        Dur(d) => V::Dur(d),
    })
}

/// A value as `Val::as_temporal` reads it.
fn temporal(v: V<'_>) -> Option<Temporal> {
    match v {
        V::Time(t) => Some(Temporal::Time(t)),
        V::Dur(d) => Some(Temporal::Dur(d)),
        V::TimeLit(_, t) => Some(t),
        V::Str(s) if s.starts_with('P') => parse_duration_ms(s).map(Temporal::Dur),
        V::Str(s) => parse_timestamp_ms(s).map(Temporal::Time),
        _ => None,
    }
}

/// A context value as `Val::from_json` reads it (objects are the generic path's).
fn from_json(v: &Value) -> Option<V<'_>> {
    Some(match v {
        Value::Null => V::Null,
        Value::Bool(b) => V::Bool(*b),
        Value::Number(n) => V::Num(n.as_f64()?),
        Value::String(s) => V::Str(s),
        Value::Array(a) => V::Arr(a),
        Value::Object(_) => return None,
    })
}

/// `compare` of two values: numbers with numbers, else times with times or durations
/// with durations.
fn compare(a: V<'_>, b: V<'_>) -> Option<std::cmp::Ordering> {
    if let (V::Num(x), V::Num(y)) = (a, b) {
        return x.partial_cmp(&y);
    }
    match (temporal(a)?, temporal(b)?) {
        (Temporal::Time(x), Temporal::Time(y)) | (Temporal::Dur(x), Temporal::Dur(y)) => {
            Some(x.cmp(&y))
        }
        _ => None,
    }
}

/// `json_eq` of two scalars (strings, numbers, booleans, null; a time literal as its
/// string). Times, durations, arrays and lists are the generic path's.
fn scalar_eq(a: V<'_>, b: V<'_>) -> Option<bool> {
    fn plain(v: V<'_>) -> Option<V<'_>> {
        match v {
            V::TimeLit(s, _) => Some(V::Str(s)),
            V::Time(_) | V::Dur(_) | V::Arr(_) | V::List => None,
            v => Some(v),
        }
    }
    Some(match (plain(a)?, plain(b)?) {
        (V::Null, V::Null) => true,
        (V::Bool(x), V::Bool(y)) => x == y,
        (V::Num(x), V::Num(y)) => x == y,
        (V::Str(x), V::Str(y)) => x == y,
        _ => false,
    })
}

/// The order an op or comparison function asks for.
fn ordered(op: Op, o: std::cmp::Ordering) -> bool {
    match op {
        Op::Lt => o.is_lt(),
        Op::Le | Op::RangeMax => o.is_le(),
        Op::Gt => o.is_gt(),
        _ => o.is_ge(),
    }
}

/// Every element a string (`None` otherwise): `f` of each.
fn each_str<'a>(xs: &'a [Value], mut f: impl FnMut(&'a str) -> bool) -> Option<bool> {
    let mut all = true;
    for x in xs {
        let Value::String(s) = x else {
            return None;
        };
        all &= f(s);
    }
    Some(all)
}

impl Step {
    fn of(op: Op, lhs: Arg, rhs: Arg) -> Option<Step> {
        let ordered = matches!(
            op,
            Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::RangeMin | Op::RangeMax
        );
        Some(match (op, lhs, rhs) {
            (Op::Membership | Op::NonMembership, Arg::Var(v), Arg::List(l)) => {
                Step::Set(v, l, Some(op == Op::Membership))
            }
            (Op::NonIntersection, Arg::Var(v), Arg::List(l))
            | (Op::NonIntersection, Arg::List(l), Arg::Var(v)) => Step::Set(v, l, None),
            // Set ops read a bound list on their list side; anything else there (a
            // JSON array var) is the generic path's.
            (Op::Membership | Op::NonMembership | Op::NonIntersection, ..) => return None,
            (Op::Eq | Op::Ne, Arg::Var(v), Arg::Bool(b)) => Step::BoolEq(v, b, op == Op::Eq),
            (_, Arg::Var(v), Arg::Num(x)) if ordered => Step::NumCmp(NumArg::Var(v), op, x),
            (_, Arg::Len(v), Arg::Num(x)) if ordered => Step::NumCmp(NumArg::Len(v), op, x),
            (Op::Threshold, Arg::Var(v), Arg::Num(x)) => Step::Threshold(v, x),
            (op, lhs, rhs) if ordered => match TimeCmp::of(op, &lhs, &rhs) {
                Some(t) => Step::Time(t),
                None => Step::Any(op, lhs, rhs),
            },
            (op, lhs, rhs) => Step::Any(op, lhs, rhs),
        })
    }

    /// The rule's outcome, `true` = pass; `None`: the generic path must decide.
    fn eval<'a>(&'a self, vars: &[Option<&'a Value>], run: &mut Run<'a>) -> Option<bool> {
        match self {
            Step::Set(v, set, want_in) => match (var(vars, *v)?, want_in) {
                (Value::Array(xs), Some(want_in)) => {
                    run.units += xs.len() as u64;
                    each_str(xs, |s| set.set.contains(s) == *want_in)
                }
                (Value::String(s), Some(want_in)) => {
                    run.units += 1;
                    Some(set.set.contains(s.as_str()) == *want_in)
                }
                (Value::Array(xs), None) => {
                    run.units += xs.len() as u64;
                    each_str(xs, |s| !set.set.contains(s))
                }
                _ => None,
            },
            // `json_eq` of any value and a boolean: equal only to that boolean.
            Step::BoolEq(v, b, eq) => {
                Some(matches!(var(vars, *v)?, Value::Bool(x) if x == b) == *eq)
            }
            Step::NumCmp(a, op, x) => num(vars, *a)?.partial_cmp(x).map(|o| ordered(*op, o)),
            Step::Threshold(v, min) => match var(vars, *v)? {
                Value::Array(xs) => threshold(xs, *min, run),
                _ => None,
            },
            Step::Time(t) => t.eval(vars, run),
            Step::Any(op, lhs, rhs) => {
                let (a, b) = (lhs.eval(vars, run)?, rhs.eval(vars, run)?);
                any_op(*op, a, b, run)
            }
        }
    }
}

impl TimeCmp {
    /// The shape of `op(lhs, rhs)`, if it is one of the two.
    fn of(op: Op, lhs: &Arg, rhs: &Arg) -> Option<TimeCmp> {
        let dur = |a: &Arg| match a {
            Arg::TimeLit(_, Temporal::Dur(d)) => Some(*d),
            _ => None,
        };
        match (lhs, rhs) {
            (Arg::Extreme(v, m), Arg::Shift(now, d, sub)) if matches!(**now, Arg::Now) => {
                Some(TimeCmp::Since(*v, *m, op, dur(d)?, *sub))
            }
            (Arg::Shift(now, x, true), d) if matches!(**now, Arg::Now) => match **x {
                Arg::Extreme(v, m) => Some(TimeCmp::Age(v, m, op, dur(d)?)),
                _ => None,
            },
            _ => None,
        }
    }

    /// As `compare` over `add_sub` decides it: the extreme must be a time (a number or
    /// a duration there is a type error), and an overflow is the generic path's.
    fn eval<'a>(&self, vars: &[Option<&'a Value>], run: &mut Run<'a>) -> Option<bool> {
        let newest = |v: usize, m: bool, run: &mut Run<'a>| match var(vars, v)? {
            Value::Array(xs) => match run.extreme(xs, m)? {
                V::Time(t) => Some(t),
                _ => None,
            },
            _ => None,
        };
        match *self {
            TimeCmp::Since(v, m, op, d, sub) => {
                let t = newest(v, m, run)?;
                let bound = if sub {
                    run.now.checked_sub(d)?
                } else {
                    run.now.checked_add(d)?
                };
                Some(ordered(op, t.cmp(&bound)))
            }
            TimeCmp::Age(v, m, op, d) => {
                let t = newest(v, m, run)?;
                Some(ordered(op, run.now.checked_sub(t)?.cmp(&d)))
            }
        }
    }
}

/// A var's value (`None` when missing: `missing_var` on the generic path).
#[inline]
fn var<'a>(vars: &[Option<&'a Value>], id: usize) -> Option<&'a Value> {
    vars.get(id).copied().flatten()
}

/// The number a [`NumArg`] reads (`None` for anything but a number).
#[inline]
fn num(vars: &[Option<&Value>], a: NumArg) -> Option<f64> {
    match a {
        NumArg::Var(v) => match var(vars, v)? {
            Value::Number(n) => n.as_f64(),
            _ => None,
        },
        NumArg::Len(v) => match var(vars, v)? {
            Value::String(s) => Some(s.chars().count() as f64),
            Value::Array(a) => Some(a.len() as f64),
            _ => None,
        },
    }
}

/// `threshold`: the share of `true` in a non-empty array of booleans, at least `min`.
fn threshold(xs: &[Value], min: f64, run: &mut Run<'_>) -> Option<bool> {
    if xs.is_empty() {
        return None;
    }
    run.units += xs.len() as u64;
    let mut yes = 0usize;
    for x in xs {
        match x {
            Value::Bool(true) => yes += 1,
            Value::Bool(false) => {}
            _ => return None,
        }
    }
    Some(yes as f64 / xs.len() as f64 >= min)
}

/// Any op over two compiled operands' values, as `Op::apply` decides it.
fn any_op(op: Op, a: V<'_>, b: V<'_>, run: &mut Run<'_>) -> Option<bool> {
    match op {
        Op::Eq => scalar_eq(a, b),
        Op::Ne => scalar_eq(a, b).map(|e| !e),
        Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::RangeMin | Op::RangeMax => {
            compare(a, b).map(|o| ordered(op, o))
        }
        Op::Threshold => match (a, b) {
            (V::Arr(xs), V::Num(min)) => threshold(xs, min, run),
            _ => None,
        },
        // Set ops are compiled only against a bound list (`Step::Set`).
        Op::Membership | Op::NonMembership | Op::NonIntersection => None,
    }
}

impl Cond {
    fn of(e: &Expr) -> Option<Cond> {
        Some(match e {
            Expr::Lit(Value::Bool(b)) => Cond::Lit(*b),
            Expr::Var(VarRef::Ctx { id, .. }) => Cond::Var(*id),
            Expr::Call(f, args) => {
                let op = match f {
                    Func::Lt => Op::Lt,
                    Func::Le => Op::Le,
                    Func::Gt => Op::Gt,
                    Func::Ge => Op::Ge,
                    Func::Eq => Op::Eq,
                    Func::Ne => Op::Ne,
                    Func::And | Func::Or => {
                        return Some(Cond::All(
                            args.iter().map(Cond::of).collect::<Option<_>>()?,
                            *f == Func::And,
                        ));
                    }
                    Func::Not => {
                        let [x] = args.as_slice() else {
                            return None;
                        };
                        return Some(Cond::Not(Box::new(Cond::of(x)?)));
                    }
                    _ => return None,
                };
                let [a, b] = args.as_slice() else {
                    return None;
                };
                match (op, Arg::of(a)?, Arg::of(b)?) {
                    (Op::Eq | Op::Ne, a, b) => Cond::Cmp(op, a, b),
                    (op, Arg::Var(v), Arg::Num(x)) => Cond::NumCmp(NumArg::Var(v), op, x),
                    (op, Arg::Len(v), Arg::Num(x)) => Cond::NumCmp(NumArg::Len(v), op, x),
                    (op, a, b) => match TimeCmp::of(op, &a, &b) {
                        Some(t) => Cond::Time(t),
                        None => Cond::Cmp(op, a, b),
                    },
                }
            }
            _ => return None,
        })
    }

    /// The predicate's boolean; `None`: the generic path must decide (an error or a
    /// non-boolean there makes the predicate hold).
    fn eval<'a>(&'a self, vars: &[Option<&'a Value>], run: &mut Run<'a>) -> Option<bool> {
        match self {
            Cond::Lit(b) => Some(*b),
            Cond::Var(id) => match vars.get(*id).copied().flatten()? {
                Value::Bool(b) => Some(*b),
                _ => None,
            },
            Cond::Cmp(op @ (Op::Eq | Op::Ne), a, b) => {
                let (x, y) = (a.eval(vars, run)?, b.eval(vars, run)?);
                scalar_eq(x, y).map(|e| e == (*op == Op::Eq))
            }
            Cond::Cmp(op, a, b) => {
                let (x, y) = (a.eval(vars, run)?, b.eval(vars, run)?);
                compare(x, y).map(|o| ordered(*op, o))
            }
            Cond::NumCmp(a, op, x) => num(vars, *a)?.partial_cmp(x).map(|o| ordered(*op, o)),
            Cond::Time(t) => t.eval(vars, run),
            Cond::All(xs, and) => {
                let mut acc = *and;
                for x in xs {
                    let v = x.eval(vars, run)?;
                    if *and {
                        acc &= v;
                    } else {
                        acc |= v;
                    }
                }
                Some(acc)
            }
            Cond::Not(x) => x.eval(vars, run).map(|v| !v),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use super::super::enforcer::{Engine, PathSpec, Scratch};
    use super::super::selector::{Planner, SelectorKind, Weights};
    use crate::policy::expr::{Env, Memo, Resolved, lookup_var};
    use crate::policy::{Lists, Policy};

    fn lists() -> Lists {
        let mut l = Lists::default();
        l.insert("sanctions", vec!["0xbad".into(), "0xevil".into()]);
        l.insert("high_risk", vec!["KP".into(), "IR".into()]);
        l.insert("ubo_watchlist", vec!["0xwatch".into()]);
        l
    }

    fn policy(v: Value, lists: &Lists) -> Policy {
        Policy::from_value(&v, Path::new("t.ir.json"), lists).unwrap()
    }

    fn fixture(name: &str, lists: &Lists) -> Policy {
        let p =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/policies/{name}.ir.json"));
        Policy::from_value(
            &serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap(),
            Path::new(name),
            lists,
        )
        .unwrap()
    }

    /// Rules and predicates of every compiled shape, and a weighted selector whose
    /// budget skips some of them.
    fn wide(lists: &Lists) -> Policy {
        policy(
            json!({
                "ir_version": "1.0", "policy_id": "wide.v1",
                "rules": [
                    {"id": "a_eq_str", "op": "eq", "lhs": {"var": "tier"}, "rhs": "gold"},
                    {"id": "b_ne_num", "op": "ne", "lhs": {"var": "score"}, "rhs": 7},
                    {"id": "c_eq_null", "op": "eq", "lhs": {"var": "flag"}, "rhs": null},
                    {"id": "d_lt_num", "op": "lt", "lhs": {"var": "score"}, "rhs": 90.5},
                    {"id": "e_le_date", "op": "le", "lhs": {"var": "since"}, "rhs": "2026-06-01"},
                    {"id": "f_gt_dur", "op": "gt", "lhs": {"var": "grace"}, "rhs": "P2D"},
                    {"id": "g_max", "op": "range_max", "lhs": {"func": "min", "args": [{"var": "dates"}]},
                     "rhs": {"func": "add", "args": [{"func": "now", "args": []}, "PT1H"]}},
                    {"id": "h_member", "op": "membership", "lhs": {"var": "country"}, "rhs": {"var": "high_risk"}},
                    {"id": "i_nonmember", "op": "non_membership", "lhs": {"var": "hashes"}, "rhs": {"var": "sanctions"}},
                    {"id": "j_disjoint", "op": "non_intersection", "lhs": {"var": "ubo_watchlist"}, "rhs": {"var": "hashes"}},
                    {"id": "k_threshold", "op": "threshold", "lhs": {"var": "controls"}, "rhs": 0.5},
                    {"id": "l_len", "op": "range_min", "lhs": {"func": "len", "args": [{"var": "tier"}]}, "rhs": 3},
                    {"id": "m_max_num", "op": "ge", "lhs": {"func": "max", "args": [{"var": "scores"}]}, "rhs": 10},
                    {"id": "n_since", "op": "lt", "lhs": {"func": "sub", "args": [{"func": "now", "args": []}, {"var": "since"}]}, "rhs": "P400D"}
                ],
                "adaptivity": {
                    "predicates": [
                        {"id": "p_and", "expr": {"func": "and", "args": [{"var": "flag"}, {"func": "gt", "args": [{"var": "score"}, 50]}]}},
                        {"id": "p_or", "expr": {"func": "or", "args": [{"func": "not", "args": [{"var": "flag"}]}, {"func": "eq", "args": [{"var": "tier"}, "gold"]}]}},
                        {"id": "p_old", "expr": {"func": "gt", "args": [{"func": "sub", "args": [{"func": "now", "args": []}, {"func": "max", "args": [{"var": "dates"}]}]}, "P365D"]}}
                    ],
                    "activations": [
                        {"when": "p_and", "rules": ["d_lt_num", "k_threshold"]},
                        {"when": "p_or", "rules": ["h_member"]},
                        {"when": "p_old", "rules": ["g_max", "k_threshold"]}
                    ]
                }
            }),
            lists,
        )
    }

    fn engine(shadow: Policy, enforced: Policy, weighted: bool) -> Engine {
        let spec = |p: Policy, weighted: bool| {
            let weights: Weights =
                serde_json::from_value(json!({"weights": {}, "budget": 40})).unwrap();
            let planner = if weighted {
                Planner::new(&p, SelectorKind::Weighted, Some(&weights))
            } else {
                Planner::new(&p, SelectorKind::Basic, None)
            };
            PathSpec {
                policy: std::sync::Arc::new(p),
                planner,
            }
        };
        Engine::new(spec(shadow, false), spec(enforced, weighted), "salt".into())
    }

    /// A value of any JSON type, biased to the shapes the rules read (and their
    /// neighbours that the compiled path must hand to the generic one).
    fn any_value() -> impl Strategy<Value = Value> {
        let scalar = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            num(),
            prop_oneof![
                Just("gold"),
                Just("KP"),
                Just("DE"),
                Just("0xbad"),
                Just("0xwatch"),
                Just("0xok"),
                Just("2024-01-31"),
                Just("2026-05-30"),
                Just("2026-02-30"),
                Just("2026-07-01T10:00:00Z"),
                Just("P1D"),
                Just("P3D"),
                Just("PT5M"),
                Just(""),
                Just("Ünïcode")
            ]
            .prop_map(|s| json!(s)),
        ];
        let element = scalar.clone();
        prop_oneof![
            4 => scalar,
            3 => proptest::collection::vec(element, 0..5).prop_map(Value::Array),
            1 => Just(json!({"k": 1})),
        ]
    }

    /// A var's value: usually of the type its rules read (so the compiled path
    /// answers), sometimes missing or of any type (so it must hand over).
    fn var(typed: BoxedStrategy<Value>) -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            18 => typed.prop_map(Some),
            1 => Just(None),
            1 => any_value().prop_map(Some),
        ]
    }

    fn strs(items: &'static [&'static str], min: usize) -> BoxedStrategy<Value> {
        proptest::collection::vec(proptest::sample::select(items), min..5)
            .prop_map(|v| json!(v))
            .boxed()
    }

    fn one(items: &'static [&'static str]) -> BoxedStrategy<Value> {
        proptest::sample::select(items)
            .prop_map(|s| json!(s))
            .boxed()
    }

    fn num() -> BoxedStrategy<Value> {
        prop_oneof![
            (-5i64..200).prop_map(|x| json!(x)),
            prop_oneof![
                Just(-0.0),
                Just(7.0),
                Just(50.0),
                Just(90.5),
                Just(1e300),
                Just(-3.25)
            ]
            .prop_map(|x| json!(x)),
        ]
        .boxed()
    }

    const DATES: &[&str] = &[
        "2024-01-31",
        "2025-06-30",
        "2026-05-30",
        "2026-07-01T10:00:00Z",
    ];
    const HASHES: &[&str] = &["0xbad", "0xevil", "0xwatch", "0x1", "0x2"];

    fn context() -> impl Strategy<Value = Map<String, Value>> {
        let bools = || any::<bool>().prop_map(Value::Bool).boxed();
        let typed: Vec<(&str, BoxedStrategy<Value>)> = vec![
            ("tier", one(&["gold", "silver", "ab", ""])),
            ("score", num()),
            ("flag", bools()),
            ("since", one(DATES)),
            ("grace", one(&["P1D", "P3D", "PT5M"])),
            ("dates", strs(DATES, 0)),
            ("country", one(&["KP", "DE", "IR"])),
            ("hashes", strs(HASHES, 0)),
            (
                "controls",
                proptest::collection::vec(any::<bool>(), 0..6)
                    .prop_map(|v| json!(v))
                    .boxed(),
            ),
            (
                "scores",
                proptest::collection::vec(-5i64..40, 0..4)
                    .prop_map(|v| json!(v))
                    .boxed(),
            ),
            ("supplier_hashes", strs(HASHES, 0)),
            ("ubo_hashes", strs(HASHES, 0)),
            ("countries", strs(&["KP", "DE", "IR", "FR"], 0)),
            ("risk_assessment.completed", bools()),
            ("grievance_mechanism", bools()),
            ("audit.dates", strs(DATES, 0)),
            ("audit.score", num()),
            ("spend_eur", num()),
        ];
        let (names, gens): (Vec<&str>, Vec<_>) = typed.into_iter().unzip();
        gens.into_iter()
            .map(var)
            .collect::<Vec<_>>()
            .prop_map(move |vals| {
                let mut m = Map::new();
                for (n, v) in names.iter().zip(vals) {
                    let Some(v) = v else { continue };
                    match n.split_once('.') {
                        Some((outer, inner)) => {
                            let o = m.entry(outer).or_insert_with(|| json!({}));
                            if let Value::Object(o) = o {
                                o.insert(inner.to_string(), v);
                            }
                        }
                        None => {
                            m.insert(n.to_string(), v);
                        }
                    }
                }
                m
            })
    }

    /// The compiled path's answer and the generic path's, on one context.
    fn both(
        e: &Engine,
        ctx: &Map<String, Value>,
        now: i64,
    ) -> (Option<super::super::Evaluation>, super::super::Evaluation) {
        let resolve = |p: &Policy| -> Vec<Option<&Value>> {
            p.vars.names().iter().map(|n| lookup_var(ctx, n)).collect()
        };
        let (sv, ev) = (resolve(&e.shadow.policy), resolve(&e.enforced.policy));
        let memo = Memo::default();
        let (rs, re) = (
            Resolved {
                values: &sv,
                memo: &memo,
            },
            Resolved {
                values: &ev,
                memo: &memo,
            },
        );
        let empty = Map::new();
        let mk = |r| Env {
            ctx: &empty,
            now_ms: now,
            vars: Some(r),
        };
        let (es, ee) = (mk(&rs), mk(&re));
        let mut scratch = Scratch::default();
        let fast = e
            .evaluate_compiled(&es, &ee, &mut scratch)
            .then(|| scratch.evaluation().clone());
        let mut scratch = Scratch::default();
        let generic = e.evaluate_generic(&es, &ee, &mut scratch).clone();
        (fast, generic)
    }

    #[test]
    fn the_fixture_policies_and_the_wide_one_compile() {
        let l = lists();
        assert!(engine(fixture("lksg.v1", &l), fixture("lksg.v2", &l), false).is_compiled());
        assert!(engine(wide(&l), wide(&l), true).is_compiled());
        // `in` is not a compiled shape: such a policy is evaluated generically.
        let with_in = policy(
            json!({"ir_version": "1.0", "policy_id": "x", "rules": [
                {"id": "r", "op": "eq", "lhs": {"func": "in", "args": [{"var": "a"}, {"var": "high_risk"}]}, "rhs": true}
            ]}),
            &l,
        );
        assert!(!engine(with_in.clone(), with_in, false).is_compiled());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Whenever the compiled path answers, it answers what the generic path does:
        /// verdicts, every rule's state, the plan taken and skipped, on both paths.
        #[test]
        fn compiled_equals_generic(ctx in context(), now_days in 20_000i64..20_800) {
            let l = lists();
            let now = now_days * 86_400_000 + 3_600_000;
            for e in [
                engine(fixture("lksg.v1", &l), fixture("lksg.v2", &l), false),
                engine(wide(&l), wide(&l), true),
                engine(fixture("lksg.v2", &l), wide(&l), false),
            ] {
                let (fast, generic) = both(&e, &ctx, now);
                if let Some(fast) = fast {
                    prop_assert_eq!(fast, generic);
                }
            }
        }
    }

    /// The property above is not vacuous: on well-formed contexts the compiled path
    /// answers, and it hands a missing var to the generic path.
    #[test]
    fn well_formed_records_take_the_compiled_path() {
        let l = lists();
        let e = engine(fixture("lksg.v1", &l), fixture("lksg.v2", &l), false);
        let ctx: Map<String, Value> = serde_json::from_value(json!({
            "audit": {"dates": ["2024-12-17", "2025-12-17"], "score": 71},
            "controls": [true, true, false, true],
            "countries": ["DE", "KP"],
            "grievance_mechanism": true,
            "risk_assessment": {"completed": true},
            "spend_eur": 2000000,
            "supplier_hashes": ["0xbad", "0x1"],
            "ubo_hashes": ["0xwatch"]
        }))
        .unwrap();
        let now = 20_400 * 86_400_000;
        let (fast, generic) = both(&e, &ctx, now);
        assert_eq!(fast.as_ref(), Some(&generic));
        assert_eq!(generic.shadow.verdict, super::super::Verdict::Fail);
        let mut missing = ctx.clone();
        missing.remove("grievance_mechanism");
        assert_eq!(both(&e, &missing, now).0, None);

        let e = engine(wide(&l), wide(&l), true);
        let ctx: Map<String, Value> = serde_json::from_value(json!({
            "tier": "gold", "score": 60, "flag": true, "since": "2025-06-30", "grace": "P3D",
            "dates": ["2025-06-30", "2026-05-30"], "country": "KP", "hashes": ["0x1", "0xwatch"],
            "controls": [true, false, true], "scores": [3, 12]
        }))
        .unwrap();
        let (fast, generic) = both(&e, &ctx, now);
        assert_eq!(fast.as_ref(), Some(&generic));
        // The weighted budget (40) leaves rules out: the plan walk is the planner's.
        assert!(!generic.enforced.skipped.is_empty());
    }
}
