//! Expressions of the IR (SPEC §1 "Expressions"): compiled once at load time, then
//! evaluated against a record's context without allocating.
//!
//! Compilation resolves `var` names that are bound lists, so a lookup at run time is
//! either a pointer to the list or a walk through the context object.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::budget::charge;
use super::lists::{ListData, Lists};
use super::value::{EvalError, EvalResult, Temporal, Val, compare, eq_units, json_eq};

/// Functions of the expression language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `now()`: the record's timestamp.
    Now,
    /// `add(a, b)`.
    Add,
    /// `sub(a, b)`.
    Sub,
    /// `max(xs)`.
    Max,
    /// `min(xs)`.
    Min,
    /// `len(x)`.
    Len,
    /// `lt(a, b)`.
    Lt,
    /// `le(a, b)`.
    Le,
    /// `gt(a, b)`.
    Gt,
    /// `ge(a, b)`.
    Ge,
    /// `eq(a, b)`.
    Eq,
    /// `ne(a, b)`.
    Ne,
    /// `and(...)`.
    And,
    /// `or(...)`.
    Or,
    /// `not(x)`.
    Not,
    /// `in(x, xs)`.
    In,
}

impl Func {
    /// Looks a function up by its IR name.
    pub fn parse(name: &str) -> Option<Func> {
        Some(match name {
            "now" => Func::Now,
            "add" => Func::Add,
            "sub" => Func::Sub,
            "max" => Func::Max,
            "min" => Func::Min,
            "len" => Func::Len,
            "lt" => Func::Lt,
            "le" => Func::Le,
            "gt" => Func::Gt,
            "ge" => Func::Ge,
            "eq" => Func::Eq,
            "ne" => Func::Ne,
            "and" => Func::And,
            "or" => Func::Or,
            "not" => Func::Not,
            "in" => Func::In,
            _ => return None,
        })
    }

    /// Required number of arguments; `None` = any.
    fn arity(self) -> Option<usize> {
        match self {
            Func::Now => Some(0),
            Func::Max | Func::Min | Func::Len | Func::Not => Some(1),
            Func::And | Func::Or => None,
            _ => Some(2),
        }
    }
}

/// Where a `var` reads from.
#[derive(Debug, Clone)]
pub enum VarRef {
    /// A bound list (overrides the context).
    List(Arc<ListData>),
    /// A context key: the whole name first, then the dotted path.
    Ctx {
        /// The name as written.
        name: String,
        /// `name` split at dots (empty when there is no dot).
        path: Vec<String>,
        /// Index of `name` in the policy's [`Vars`], for [`Env::vars`].
        id: usize,
    },
}

/// A compiled expression.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A JSON literal.
    Lit(Value),
    /// A string literal that reads as a timestamp or duration, parsed at load time.
    TimeLit(String, Temporal),
    /// `{"var": name}`.
    Var(VarRef),
    /// `{"func": f, "args": [...]}`.
    Call(Func, Vec<Expr>),
}

/// What an expression is evaluated against.
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    /// The record's context object (read when `vars` is `None`).
    pub ctx: &'a Map<String, Value>,
    /// The record's timestamp, epoch milliseconds (`now()`).
    pub now_ms: i64,
    /// The policy's context vars already looked up (replay resolves them once per
    /// record from the values it kept, `replay::extract`). `None`: look each name up
    /// in `ctx`.
    pub vars: Option<&'a Resolved<'a>>,
}

/// One record's context vars for one path, resolved ahead of evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    /// Values indexed by [`Vars`] id (`None` = not found).
    pub values: &'a [Option<&'a Value>],
    /// Results both paths of the record may share.
    pub memo: &'a Memo,
}

/// Per-record results of `max`/`min` over a context array, shared by every rule and
/// predicate of both paths that reads the same array (`max(audit.dates)` is typical:
/// each date string would otherwise be parsed once per use). A result is reused with
/// the budget units its evaluation charged, so each use costs and decides what a
/// fresh evaluation would.
#[derive(Debug, Default)]
pub struct Memo {
    extremes: std::cell::RefCell<smallvec::SmallVec<[Extreme; 4]>>,
}

/// A `max`/`min` result: always a number or a time (`extreme_of`), so it borrows
/// nothing and can be kept.
#[derive(Debug, Clone, Copy)]
struct Extreme {
    array: *const Value,
    len: usize,
    want_max: bool,
    units: usize,
    result: Result<Kept, EvalError>,
}

#[derive(Debug, Clone, Copy)]
enum Kept {
    Num(f64),
    Time(i64),
    Dur(i64),
}

impl Memo {
    fn extreme<'a>(&self, xs: &'a [Value], want_max: bool) -> EvalResult<'a> {
        let back = |r: Result<Kept, EvalError>| {
            r.map(|k| match k {
                Kept::Num(n) => Val::Num(n),
                Kept::Time(t) => Val::Time(t),
                Kept::Dur(d) => Val::Dur(d),
            })
        };
        let found = self
            .extremes
            .borrow()
            .iter()
            .find(|e| {
                std::ptr::eq(e.array, xs.as_ptr()) && e.len == xs.len() && e.want_max == want_max
            })
            .copied();
        if let Some(e) = found {
            if e.units > 0 {
                charge(e.units)?;
            }
            return back(e.result);
        }
        let (result, units) = extreme_counted(&Val::Arr(xs), want_max);
        let kept = match result {
            Ok(Val::Num(n)) => Ok(Kept::Num(n)),
            Ok(Val::Time(t)) => Ok(Kept::Time(t)),
            Ok(Val::Dur(d)) => Ok(Kept::Dur(d)),
            // A refused charge depends on the path's meter, not on the array.
            Err(EvalError::Budget) | Ok(_) => return result,
            Err(e) => Err(e),
        };
        self.extremes.borrow_mut().push(Extreme {
            array: xs.as_ptr(),
            len: xs.len(),
            want_max,
            units,
            result: kept,
        });
        result
    }
}

/// The distinct context `var` names of one policy, in order of first use; a
/// [`VarRef::Ctx`] carries its name's index here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars(Vec<String>);

impl Vars {
    /// The id of `name`, adding it when new.
    pub fn intern(&mut self, name: &str) -> usize {
        match self.0.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                self.0.push(name.to_string());
                self.0.len() - 1
            }
        }
    }

    /// The names, indexed by id.
    pub fn names(&self) -> &[String] {
        &self.0
    }
}

impl Expr {
    /// Compiles the JSON form. `at` names the place for error messages.
    pub fn compile(v: &Value, lists: &Lists, at: &str) -> Result<Expr, String> {
        Expr::compile_in(v, lists, at, &mut Vars::default())
    }

    /// [`Expr::compile`], numbering context vars in the policy's `vars`.
    pub fn compile_in(v: &Value, lists: &Lists, at: &str, vars: &mut Vars) -> Result<Expr, String> {
        let Value::Object(obj) = v else {
            if let Value::String(s) = v
                && let Ok(t) = Val::Str(s).as_temporal()
            {
                return Ok(Expr::TimeLit(s.clone(), t));
            }
            return Ok(Expr::Lit(v.clone()));
        };
        if let Some(var) = obj.get("var") {
            if obj.len() != 1 {
                return Err(format!("{at}: a var object takes only the key \"var\""));
            }
            let Value::String(name) = var else {
                return Err(format!("{at}: var name must be a string, got {var}"));
            };
            if let Some(list) = lists.get(name) {
                return Ok(Expr::Var(VarRef::List(list.clone())));
            }
            let path = if name.contains('.') {
                name.split('.').map(String::from).collect()
            } else {
                Vec::new()
            };
            return Ok(Expr::Var(VarRef::Ctx {
                id: vars.intern(name),
                name: name.clone(),
                path,
            }));
        }
        if let Some(func) = obj.get("func") {
            if obj.keys().any(|k| k != "func" && k != "args") {
                return Err(format!(
                    "{at}: a func object takes only the keys \"func\" and \"args\""
                ));
            }
            let Value::String(fname) = func else {
                return Err(format!("{at}: func name must be a string, got {func}"));
            };
            let f = Func::parse(fname).ok_or_else(|| {
                format!(
                    "{at}: unknown func '{fname}' (known: now add sub max min len lt le gt ge eq ne and or not in)"
                )
            })?;
            let args = match obj.get("args") {
                None => Vec::new(),
                Some(Value::Array(a)) => a
                    .iter()
                    .enumerate()
                    .map(|(i, a)| Expr::compile_in(a, lists, &format!("{at}.args[{i}]"), vars))
                    .collect::<Result<_, _>>()?,
                Some(other) => return Err(format!("{at}: args must be an array, got {other}")),
            };
            return Ok(Expr::Call(f, args));
        }
        Ok(Expr::Lit(v.clone()))
    }

    /// Calls `f` with the name of every context `var` this expression reads (bound
    /// lists excluded), so a reader can keep just those parts of a record.
    pub fn for_each_ctx_var<'e>(&'e self, f: &mut impl FnMut(&'e str)) {
        match self {
            Expr::Var(VarRef::Ctx { name, .. }) => f(name),
            Expr::Call(_, args) => args.iter().for_each(|a| a.for_each_ctx_var(f)),
            Expr::Lit(_) | Expr::TimeLit(..) | Expr::Var(VarRef::List(_)) => {}
        }
    }

    /// True when both expressions compute the same thing on every record: the same
    /// tree of calls over equal literals, the same context names and the same bound
    /// lists. Conservative (`1` and `1.0` differ); used to share work between paths.
    pub fn same_as(&self, other: &Expr) -> bool {
        match (self, other) {
            (Expr::Lit(a), Expr::Lit(b)) => a == b,
            (Expr::TimeLit(a, _), Expr::TimeLit(b, _)) => a == b,
            (Expr::Var(VarRef::List(a)), Expr::Var(VarRef::List(b))) => Arc::ptr_eq(a, b),
            (Expr::Var(VarRef::Ctx { name: a, .. }), Expr::Var(VarRef::Ctx { name: b, .. })) => {
                a == b
            }
            (Expr::Call(f, xs), Expr::Call(g, ys)) => {
                f == g && xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| x.same_as(y))
            }
            _ => false,
        }
    }

    /// Evaluates against a record.
    pub fn eval<'a>(&'a self, env: &Env<'a>) -> EvalResult<'a> {
        self.eval_here(env)
    }

    /// [`Expr::eval`] inlined into its caller: literals and vars (most nodes) are read
    /// in place, and a call goes straight to [`call`], one function call a call node
    /// instead of two and none a leaf.
    #[inline(always)]
    pub fn eval_here<'a>(&'a self, env: &Env<'a>) -> EvalResult<'a> {
        match self {
            Expr::Lit(v) => Ok(Val::from_json(v)),
            Expr::TimeLit(s, t) => Ok(Val::TimeStr(s, *t)),
            Expr::Var(VarRef::List(l)) => Ok(Val::List(l)),
            Expr::Var(VarRef::Ctx { name, path, id }) => match env.vars {
                Some(vars) => vars.values.get(*id).copied().flatten(),
                None => lookup(env.ctx, name, path),
            }
            .map(Val::from_json)
            .ok_or(EvalError::MissingVar),
            Expr::Call(f, args) => call(*f, args, env),
        }
    }
}

/// Looks `name` up in a context as a `var` does (SPEC §1: the whole name, then the
/// dotted walk), bound lists aside.
pub fn lookup_var<'a>(ctx: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    let path: Vec<String> = if name.contains('.') {
        name.split('.').map(String::from).collect()
    } else {
        Vec::new()
    };
    lookup(ctx, name, &path)
}

fn lookup<'a>(ctx: &'a Map<String, Value>, name: &str, path: &[String]) -> Option<&'a Value> {
    if let Some(v) = ctx.get(name) {
        return Some(v);
    }
    let (first, rest) = path.split_first()?;
    let mut cur = ctx.get(first)?;
    for key in rest {
        cur = cur.as_object()?.get(key)?;
    }
    Some(cur)
}

fn call<'a>(f: Func, args: &'a [Expr], env: &Env<'a>) -> EvalResult<'a> {
    // No short-circuit (SPEC): every argument is evaluated, and the first error (in
    // argument order) is the call's. Calls of one or two arguments, nearly all of them,
    // keep their values in an array on the stack; longer `and`/`or` in a small buffer.
    match args {
        [] => apply(f, &[], env),
        [a] => {
            let a = a.eval_here(env)?;
            apply(f, &[a], env)
        }
        [a, b] => {
            let (a, b) = (a.eval_here(env), b.eval_here(env));
            apply(f, &[a?, b?], env)
        }
        _ => {
            let mut vals: smallvec::SmallVec<[Val<'a>; 4]> = smallvec::SmallVec::new();
            let mut first_err = None;
            for a in args {
                match a.eval(env) {
                    Ok(v) => vals.push(v),
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
            match first_err {
                Some(e) => Err(e),
                None => apply(f, &vals, env),
            }
        }
    }
}

/// `f` applied to its evaluated arguments.
fn apply<'a>(f: Func, vals: &[Val<'a>], env: &Env<'a>) -> EvalResult<'a> {
    if let Some(n) = f.arity()
        && vals.len() != n
    {
        return Err(EvalError::Arity);
    }
    match f {
        Func::Now => Ok(Val::Time(env.now_ms)),
        Func::Add => add_sub(&vals[0], &vals[1], false),
        Func::Sub => add_sub(&vals[0], &vals[1], true),
        Func::Max | Func::Min => match (env.vars, vals[0]) {
            (Some(r), Val::Arr(xs)) => r.memo.extreme(xs, f == Func::Max),
            (_, xs) => extreme_counted(&xs, f == Func::Max).0,
        },
        Func::Len => match vals[0].plain() {
            Val::Str(s) => Ok(Val::Num(s.chars().count() as f64)),
            v => v
                .as_array()
                .map(|a| Val::Num(a.len() as f64))
                .ok_or(EvalError::Type),
        },
        Func::Lt => compare(&vals[0], &vals[1]).map(|o| Val::Bool(o.is_lt())),
        Func::Le => compare(&vals[0], &vals[1]).map(|o| Val::Bool(o.is_le())),
        Func::Gt => compare(&vals[0], &vals[1]).map(|o| Val::Bool(o.is_gt())),
        Func::Ge => compare(&vals[0], &vals[1]).map(|o| Val::Bool(o.is_ge())),
        Func::Eq | Func::Ne => {
            charge(eq_units(&vals[0], &vals[1]))?;
            Ok(Val::Bool(json_eq(&vals[0], &vals[1]) == (f == Func::Eq)))
        }
        Func::And | Func::Or => {
            let mut acc = f == Func::And;
            for v in vals {
                let Val::Bool(b) = v else {
                    return Err(EvalError::Type);
                };
                if f == Func::And {
                    acc &= b;
                } else {
                    acc |= b;
                }
            }
            Ok(Val::Bool(acc))
        }
        Func::Not => match vals[0] {
            Val::Bool(b) => Ok(Val::Bool(!b)),
            _ => Err(EvalError::Type),
        },
        Func::In => {
            // One scan of a JSON array (O(m)), one probe of a bound list's index.
            let xs = vals[1].as_array().ok_or(EvalError::Type)?;
            charge(1 + xs.lookup_units())?;
            Ok(Val::Bool(xs.contains(&vals[0])))
        }
    }
}

fn add_sub<'a>(a: &Val<'a>, b: &Val<'a>, sub: bool) -> EvalResult<'a> {
    if let (Val::Num(x), Val::Num(y)) = (a, b) {
        return Ok(Val::Num(if sub { x - y } else { x + y }));
    }
    use Temporal::{Dur, Time};
    let (x, y) = (a.as_temporal()?, b.as_temporal()?);
    let r = match (x, y, sub) {
        (Time(t), Dur(d), false) | (Dur(d), Time(t), false) => t.checked_add(d).map(Time),
        (Time(t), Dur(d), true) => t.checked_sub(d).map(Time),
        (Time(t), Time(u), true) => t.checked_sub(u).map(Dur),
        (Dur(d), Dur(e), false) => d.checked_add(e).map(Dur),
        (Dur(d), Dur(e), true) => d.checked_sub(e).map(Dur),
        _ => return Err(EvalError::Type),
    };
    r.map(Temporal::into_val).ok_or(EvalError::Overflow)
}

/// `max`/`min`, with the budget units it charged (0 when it failed before charging).
fn extreme_counted<'a>(xs: &Val<'a>, want_max: bool) -> (EvalResult<'a>, usize) {
    let Some(arr) = xs.as_array() else {
        return (Err(EvalError::Type), 0);
    };
    if arr.is_empty() {
        return (Err(EvalError::Empty), 0);
    }
    let units = arr.units();
    if let Err(e) = charge(units) {
        return (Err(e), units);
    }
    (extreme_of(&arr, want_max), units)
}

fn extreme_of<'a>(arr: &super::value::ArrView<'a>, want_max: bool) -> EvalResult<'a> {
    let mut best = arr.get(0);
    if !matches!(best, Val::Num(_)) {
        best = best.as_temporal()?.into_val();
    }
    for v in arr.iter().skip(1) {
        let v = if matches!(v, Val::Num(_)) {
            v
        } else {
            v.as_temporal()?.into_val()
        };
        let ord = compare(&v, &best)?;
        if (want_max && ord.is_gt()) || (!want_max && ord.is_lt()) {
            best = v;
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(expr: Value, ctx: Value) -> Result<Value, EvalError> {
        let mut lists = Lists::default();
        lists.insert("bad", vec!["0xbad".into(), "0xevil".into()]);
        let e = Expr::compile(&expr, &lists, "t").unwrap();
        let ctx = ctx.as_object().unwrap().clone();
        let env = Env {
            ctx: &ctx,
            now_ms: 1_793_866_200_000, // 2026-11-05T08:10:00Z
            vars: None,
        };
        e.eval(&env).map(|v| match v {
            Val::Null => Value::Null,
            Val::Bool(b) => json!(b),
            Val::Num(n) => json!(n),
            Val::Str(s) => json!(s),
            Val::Time(t) => json!({"time": t}),
            Val::Dur(d) => json!({"dur": d}),
            other => json!(format!("{other:?}")),
        })
    }

    fn f(name: &str, args: Value) -> Value {
        json!({"func": name, "args": args})
    }

    #[test]
    fn vars_lists_and_dotted_paths() {
        let ctx = json!({"a": {"b": 3}, "a.b": 4, "x": {"y": {"z": "deep"}}});
        assert_eq!(eval(json!({"var": "a.b"}), ctx.clone()), Ok(json!(4.0)));
        assert_eq!(
            eval(json!({"var": "x.y.z"}), ctx.clone()),
            Ok(json!("deep"))
        );
        assert_eq!(
            eval(json!({"var": "x.q"}), ctx.clone()),
            Err(EvalError::MissingVar)
        );
        // A bound list overrides a context key of the same name.
        let c = json!({"bad": ["0xok"]});
        assert_eq!(eval(f("len", json!([{"var": "bad"}])), c), Ok(json!(2.0)));
    }

    #[test]
    fn now_add_sub_and_durations() {
        let ctx = json!({"d": ["2025-06-01", "2026-03-01"]});
        let age = f(
            "sub",
            json!([f("now", json!([])), f("max", json!([{"var": "d"}]))]),
        );
        assert_eq!(
            eval(age.clone(), ctx.clone()),
            Ok(json!({"dur": 1_793_866_200_000_i64 - 1_772_323_200_000_i64}))
        );
        assert_eq!(
            eval(f("gt", json!([age, "P365D"])), ctx.clone()),
            Ok(json!(false))
        );
        assert_eq!(
            eval(f("add", json!(["2026-01-01", "P1D"])), json!({})),
            Ok(json!({"time": 1_767_312_000_000_i64}))
        );
        assert_eq!(eval(f("add", json!([1, 2.5])), json!({})), Ok(json!(3.5)));
        assert_eq!(
            eval(f("sub", json!(["P1D", "2026-01-01"])), json!({})),
            Err(EvalError::Type)
        );
        assert_eq!(
            eval(f("add", json!([1, "x"])), json!({})),
            Err(EvalError::Type)
        );
        assert_eq!(
            eval(f("add", json!(["x", "P1D"])), json!({})),
            Err(EvalError::Type)
        );
    }

    #[test]
    fn max_min_len() {
        assert_eq!(
            eval(f("max", json!([[3, 9, 1]])), json!({})),
            Ok(json!(9.0))
        );
        assert_eq!(
            eval(f("min", json!([[3, 9, 1]])), json!({})),
            Ok(json!(1.0))
        );
        assert_eq!(
            eval(f("max", json!([[]])), json!({})),
            Err(EvalError::Empty)
        );
        assert_eq!(
            eval(f("max", json!([[1, "2026-01-01"]])), json!({})),
            Err(EvalError::Type)
        );
        assert_eq!(eval(f("max", json!([5])), json!({})), Err(EvalError::Type));
        assert_eq!(
            eval(
                f("min", json!([["2026-01-02", "2026-01-01T12:00:00Z"]])),
                json!({})
            ),
            Ok(json!({"time": 1_767_268_800_000_i64}))
        );
        assert_eq!(eval(f("len", json!(["héllo"])), json!({})), Ok(json!(5.0)));
        assert_eq!(eval(f("len", json!([5])), json!({})), Err(EvalError::Type));
    }

    #[test]
    fn comparisons_and_equality() {
        assert_eq!(eval(f("lt", json!([1, 2])), json!({})), Ok(json!(true)));
        assert_eq!(eval(f("le", json!([2, 2])), json!({})), Ok(json!(true)));
        assert_eq!(
            eval(f("gt", json!(["2026-01-02", "2026-01-01"])), json!({})),
            Ok(json!(true))
        );
        assert_eq!(
            eval(f("ge", json!(["PT1H", "PT60M"])), json!({})),
            Ok(json!(true))
        );
        assert_eq!(
            eval(f("lt", json!([1, "2026-01-01"])), json!({})),
            Err(EvalError::Type)
        );
        assert_eq!(eval(f("eq", json!([1, 1.0])), json!({})), Ok(json!(true)));
        assert_eq!(
            eval(f("ne", json!([{"a": [1]}, {"a": [1]}])), json!({})),
            Ok(json!(false))
        );
        assert_eq!(eval(f("eq", json!(["1", 1])), json!({})), Ok(json!(false)));
    }

    #[test]
    fn booleans_in_and_errors() {
        assert_eq!(
            eval(f("and", json!([true, true, false])), json!({})),
            Ok(json!(false))
        );
        assert_eq!(
            eval(f("or", json!([false, true])), json!({})),
            Ok(json!(true))
        );
        assert_eq!(eval(f("and", json!([])), json!({})), Ok(json!(true)));
        assert_eq!(eval(f("or", json!([])), json!({})), Ok(json!(false)));
        assert_eq!(
            eval(f("and", json!([true, 1])), json!({})),
            Err(EvalError::Type)
        );
        assert_eq!(eval(f("not", json!([false])), json!({})), Ok(json!(true)));
        assert_eq!(eval(f("not", json!([0])), json!({})), Err(EvalError::Type));
        assert_eq!(
            eval(f("in", json!(["0xbad", {"var": "bad"}])), json!({})),
            Ok(json!(true))
        );
        assert_eq!(
            eval(f("in", json!([2, [1, 2.0]])), json!({})),
            Ok(json!(true))
        );
        assert_eq!(
            eval(f("in", json!([2, "12"])), json!({})),
            Err(EvalError::Type)
        );
        assert_eq!(
            eval(f("not", json!([true, false])), json!({})),
            Err(EvalError::Arity)
        );
        assert_eq!(eval(f("now", json!([1])), json!({})), Err(EvalError::Arity));
        // No short-circuit: an error in any argument is the call's error.
        assert_eq!(
            eval(f("or", json!([true, {"var": "nope"}])), json!({})),
            Err(EvalError::MissingVar)
        );
    }

    #[test]
    fn same_as_is_structural_and_conservative() {
        let mut lists = Lists::default();
        lists.insert("bad", vec!["0xbad".into()]);
        let other = {
            let mut l = Lists::default();
            l.insert("bad", vec!["0xbad".into()]);
            l
        };
        let c = |v: Value, l: &Lists| Expr::compile(&v, l, "t").unwrap();
        let age = f(
            "sub",
            json!([f("now", json!([])), f("max", json!([{"var": "a.d"}]))]),
        );
        assert!(c(age.clone(), &lists).same_as(&c(age, &lists)));
        assert!(c(json!({"var": "bad"}), &lists).same_as(&c(json!({"var": "bad"}), &lists)));
        // Another binding of the same name may hold other values.
        assert!(!c(json!({"var": "bad"}), &lists).same_as(&c(json!({"var": "bad"}), &other)));
        assert!(!c(json!(1), &lists).same_as(&c(json!(1.0), &lists)));
        assert!(!c(json!("P365D"), &lists).same_as(&c(json!("P730D"), &lists)));
        assert!(
            !c(f("max", json!([{"var": "x"}])), &lists)
                .same_as(&c(f("min", json!([{"var": "x"}])), &lists))
        );
        assert!(!c(json!({"var": "x"}), &lists).same_as(&c(json!("x"), &lists)));
    }

    #[test]
    fn memo_reuses_max_with_its_budget_units() {
        use super::super::budget::metered;
        let lists = Lists::default();
        let mut vars = Vars::default();
        let e = Expr::compile_in(&f("max", json!([{"var": "d"}])), &lists, "t", &mut vars).unwrap();
        let ctx = json!({"d": ["2025-06-01", "2026-03-01", "2024-01-01"]});
        let d = &ctx["d"];
        let memo = Memo::default();
        let values = [Some(d)];
        let r = Resolved {
            values: &values,
            memo: &memo,
        };
        let empty = Map::new();
        let env = Env {
            ctx: &empty,
            now_ms: 0,
            vars: Some(&r),
        };
        let time = |v: EvalResult<'_>| match v {
            Ok(Val::Time(t)) => Ok(t),
            other => Err(format!("{other:?}")),
        };
        // Computed once, then reused: the same value, the same 3 units each time.
        let (both, used) = metered(100, || (time(e.eval(&env)), time(e.eval(&env))));
        assert_eq!(both, (Ok(1_772_323_200_000), Ok(1_772_323_200_000)));
        assert_eq!(used, 6);
        assert_eq!(memo.extremes.borrow().len(), 1);
        // A reuse that does not fit the budget fails as a fresh evaluation would.
        let (r2, _) = metered(4, || (time(e.eval(&env)), time(e.eval(&env))));
        assert_eq!(r2, (Ok(1_772_323_200_000), Err("Err(Budget)".into())));
        // An error of the array itself is kept too, and charges what it charged.
        let bad = json!(["2025-06-01", "not a date"]);
        let values = [Some(&bad)];
        let r = Resolved {
            values: &values,
            memo: &memo,
        };
        let env = Env {
            vars: Some(&r),
            ..env
        };
        let (errs, used) = metered(100, || (time(e.eval(&env)), time(e.eval(&env))));
        assert_eq!(errs, (Err("Err(Type)".into()), Err("Err(Type)".into())));
        assert_eq!(used, 4);
    }

    #[test]
    fn compile_errors() {
        let l = Lists::default();
        assert!(
            Expr::compile(&json!({"func": "exec"}), &l, "p")
                .unwrap_err()
                .contains("unknown func 'exec'")
        );
        assert!(Expr::compile(&json!({"var": 3}), &l, "p").is_err());
        assert!(Expr::compile(&json!({"func": "len", "args": 3}), &l, "p").is_err());
        assert!(matches!(
            Expr::compile(&json!({"other": 1}), &l, "p"),
            Ok(Expr::Lit(_))
        ));
    }
}
