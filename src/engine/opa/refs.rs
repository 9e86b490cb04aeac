//! What a bundle's Rego names, read once at load time from regorus's parsed modules
//! (its AST is public under `regorus::unstable`): per package, which of the package's
//! rules each rule names (§12's cause graph), and every function call, so a built-in
//! the engine lacks fails at load with its file and line instead of once per record,
//! and non-deterministic built-ins can be listed. It does not evaluate anything.

use std::collections::{BTreeMap, BTreeSet};

use regorus::unstable::{Expr, Literal, LiteralStmt, Module, Query, Rule, RuleHead};

/// A call found in a policy, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Dotted name as written after resolving import aliases (`http.send`, `f`).
    pub name: String,
    /// The .rego file (as named inside the bundle).
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
}

/// One rule (all its definitions merged) of a package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleRefs {
    /// A function (`f(x) := …`): it has no value of its own in the package document.
    pub function: bool,
    /// Names of rules of the same package it names anywhere (head, bodies, else).
    pub names: BTreeSet<String>,
}

/// Package (its `data` path segments) → rule name → what it names.
pub type Graph = BTreeMap<Vec<String>, BTreeMap<String, RuleRefs>>;

/// What [`scan`] found.
#[derive(Debug, Default)]
pub struct Scan {
    /// The reference graph.
    pub graph: Graph,
    /// Every call whose callee is not a rule or function of the bundle.
    pub calls: Vec<Call>,
}

/// Reads the graph and the calls of `modules`.
pub fn scan(modules: &[regorus::unstable::Ref<Module>]) -> Scan {
    let mut out = Scan::default();
    // Pass 1: every package's rule names, so pass 2 can tell a rule from a local.
    let mut defined: BTreeMap<Vec<String>, BTreeMap<String, bool>> = BTreeMap::new();
    for m in modules {
        let pkg = package_of(m);
        let rules = defined.entry(pkg).or_default();
        for r in &m.policy {
            if let Some((name, func)) = rule_name(r) {
                *rules.entry(name).or_default() |= func;
            }
        }
    }
    for m in modules {
        let pkg = package_of(m);
        let names = defined.get(&pkg).cloned().unwrap_or_default();
        let aliases = aliases_of(m);
        let file = m.package.span.source.get_path().clone();
        for r in &m.policy {
            let Some((name, func)) = rule_name(r) else {
                continue;
            };
            let mut w = Walker {
                pkg: &pkg,
                names: &names,
                aliases: &aliases,
                file: &file,
                found: BTreeSet::new(),
                calls: &mut out.calls,
            };
            w.rule(r);
            let entry = out
                .graph
                .entry(pkg.clone())
                .or_default()
                .entry(name)
                .or_default();
            entry.function |= func;
            entry.names.extend(w.found);
        }
    }
    out
}

fn package_of(m: &Module) -> Vec<String> {
    static_path(&m.package.refr)
        .map(|mut p| {
            if p.first().map(String::as_str) == Some("data") {
                p.remove(0);
            }
            p
        })
        .unwrap_or_default()
}

/// `import data.a.b as c` → `c` → `[a, b]` (alias defaults to the last segment).
fn aliases_of(m: &Module) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for i in &m.imports {
        let Some(path) = static_path(&i.refr) else {
            continue;
        };
        if path.first().map(String::as_str) != Some("data") || path.len() < 2 {
            continue;
        }
        let alias = match &i.r#as {
            Some(s) => s.text().to_string(),
            None => path[path.len() - 1].clone(),
        };
        out.insert(alias, path[1..].to_vec());
    }
    out
}

/// A rule's name (the first segment of its head) and whether it is a function.
fn rule_name(r: &Rule) -> Option<(String, bool)> {
    let (refr, func) = match r {
        Rule::Spec { head, .. } => match head {
            RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. } => (refr, false),
            RuleHead::Func { refr, .. } => (refr, true),
        },
        Rule::Default { refr, args, .. } => (refr, !args.is_empty()),
    };
    static_path(refr)
        .and_then(|p| p.into_iter().next())
        .map(|n| (n, func))
}

/// `a.b["c"].d` → `[a, b, c, d]`; `None` when a segment is not static.
fn static_path(e: &Expr) -> Option<Vec<String>> {
    match e {
        Expr::Var { span, .. } => Some(vec![span.text().to_string()]),
        Expr::RefDot { refr, field, .. } => {
            let mut p = static_path(refr)?;
            p.push(field.0.text().to_string());
            Some(p)
        }
        Expr::RefBrack { refr, index, .. } => {
            let mut p = static_path(refr)?;
            match index.as_ref() {
                Expr::String { value, .. } | Expr::RawString { value, .. } => {
                    p.push(value.as_string().ok()?.to_string());
                    Some(p)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// The longest static prefix of a reference (`data.x[i].y` → `[data, x]`).
fn static_prefix(e: &Expr) -> Vec<String> {
    match e {
        Expr::Var { span, .. } => vec![span.text().to_string()],
        Expr::RefDot { refr, field, .. } => {
            let mut p = static_prefix(refr);
            if p.len() == depth(refr) {
                p.push(field.0.text().to_string());
            }
            p
        }
        Expr::RefBrack { refr, index, .. } => {
            let mut p = static_prefix(refr);
            if p.len() == depth(refr)
                && let Expr::String { value, .. } | Expr::RawString { value, .. } = index.as_ref()
                && let Ok(s) = value.as_string()
            {
                p.push(s.to_string());
            }
            p
        }
        _ => Vec::new(),
    }
}

/// Where a reference starts (its root variable), for messages.
fn root_span(e: &Expr) -> &regorus::unstable::Span {
    match e {
        Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } => root_span(refr),
        other => other.span(),
    }
}

fn depth(e: &Expr) -> usize {
    match e {
        Expr::Var { .. } => 1,
        Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } => depth(refr) + 1,
        _ => usize::MAX,
    }
}

struct Walker<'a> {
    pkg: &'a [String],
    names: &'a BTreeMap<String, bool>,
    aliases: &'a BTreeMap<String, Vec<String>>,
    file: &'a str,
    found: BTreeSet<String>,
    calls: &'a mut Vec<Call>,
}

impl Walker<'_> {
    fn rule(&mut self, r: &Rule) {
        match r {
            Rule::Spec { head, bodies, .. } => {
                match head {
                    RuleHead::Compr { assign, .. } => {
                        if let Some(a) = assign {
                            self.expr(&a.value);
                        }
                    }
                    RuleHead::Set { key, .. } => {
                        if let Some(k) = key {
                            self.expr(k);
                        }
                    }
                    RuleHead::Func { args, assign, .. } => {
                        for a in args {
                            self.expr(a);
                        }
                        if let Some(a) = assign {
                            self.expr(&a.value);
                        }
                    }
                }
                for b in bodies {
                    if let Some(a) = &b.assign {
                        self.expr(&a.value);
                    }
                    self.query(&b.query);
                }
            }
            Rule::Default { args, value, .. } => {
                for a in args {
                    self.expr(a);
                }
                self.expr(value);
            }
        }
    }

    fn query(&mut self, q: &Query) {
        for s in &q.stmts {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &LiteralStmt) {
        match &s.literal {
            Literal::SomeVars { .. } => {}
            Literal::SomeIn {
                key,
                value,
                collection,
                ..
            } => {
                if let Some(k) = key {
                    self.expr(k);
                }
                self.expr(value);
                self.expr(collection);
            }
            Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => self.expr(expr),
            Literal::Every { domain, query, .. } => {
                self.expr(domain);
                self.query(query);
            }
        }
        for w in &s.with_mods {
            // `with data.p.r as v` names r; `with f as g` names both.
            self.expr(&w.refr);
            self.expr(&w.r#as);
        }
    }

    /// Records a static reference: a bare package rule, `data.<pkg>.<rule>`, or an
    /// import alias that resolves to the package.
    fn reference(&mut self, path: &[String]) {
        let Some(first) = path.first() else {
            return;
        };
        let full: Vec<String> = if first == "data" {
            path[1..].to_vec()
        } else if let Some(target) = self.aliases.get(first) {
            target.iter().chain(&path[1..]).cloned().collect()
        } else {
            if self.names.contains_key(first) {
                self.found.insert(first.clone());
            }
            return;
        };
        if full.len() > self.pkg.len() && full[..self.pkg.len()] == *self.pkg {
            let name = &full[self.pkg.len()];
            if self.names.contains_key(name) {
                self.found.insert(name.clone());
            }
        } else if full.len() < self.pkg.len() + 1 && self.pkg.starts_with(&full) {
            // `data.shop` or `data.shop.orders` itself: names every rule of the package.
            self.found.extend(self.names.keys().cloned());
        }
    }

    fn call(&mut self, fcn: &Expr) {
        let Some(path) = static_path(fcn) else {
            return;
        };
        let first = &path[0];
        // A call of the bundle's own rules or functions is not a built-in.
        let own =
            first == "data" || self.aliases.contains_key(first) || self.names.contains_key(first);
        if own {
            return;
        }
        let span = root_span(fcn);
        self.calls.push(Call {
            name: path.join("."),
            file: self.file.to_string(),
            line: span.line,
            col: span.col,
        });
    }

    fn expr(&mut self, e: &Expr) {
        match e {
            Expr::String { .. }
            | Expr::RawString { .. }
            | Expr::Number { .. }
            | Expr::Bool { .. }
            | Expr::Null { .. } => {}
            Expr::Var { span, .. } => self.reference(&[span.text().to_string()]),
            Expr::RefDot { refr, .. } => {
                self.reference(&static_prefix(e));
                self.expr_inner_ref(refr);
            }
            Expr::RefBrack { refr, index, .. } => {
                self.reference(&static_prefix(e));
                self.expr_inner_ref(refr);
                self.expr(index);
            }
            Expr::Array { items, .. } | Expr::Set { items, .. } => {
                for i in items {
                    self.expr(i);
                }
            }
            Expr::Object { fields, .. } => {
                for (_, k, v) in fields {
                    self.expr(k);
                    self.expr(v);
                }
            }
            Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
                self.expr(term);
                self.query(query);
            }
            Expr::ObjectCompr {
                key, value, query, ..
            } => {
                self.expr(key);
                self.expr(value);
                self.query(query);
            }
            Expr::Call { fcn, params, .. } => {
                self.call(fcn);
                self.expr(fcn);
                for p in params {
                    self.expr(p);
                }
            }
            Expr::UnaryExpr { expr, .. } => self.expr(expr),
            Expr::BinExpr { lhs, rhs, .. }
            | Expr::BoolExpr { lhs, rhs, .. }
            | Expr::ArithExpr { lhs, rhs, .. }
            | Expr::AssignExpr { lhs, rhs, .. } => {
                self.expr(lhs);
                self.expr(rhs);
            }
            Expr::Membership {
                key,
                value,
                collection,
                ..
            } => {
                if let Some(k) = key {
                    self.expr(k);
                }
                self.expr(value);
                self.expr(collection);
            }
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }

    /// The inner part of a reference chain: its static prefix was recorded by the
    /// outermost link; only dynamic indexes below it need a visit.
    fn expr_inner_ref(&mut self, e: &Expr) {
        match e {
            Expr::RefDot { refr, .. } => self.expr_inner_ref(refr),
            Expr::RefBrack { refr, index, .. } => {
                self.expr_inner_ref(refr);
                self.expr(index);
            }
            Expr::Var { .. } => {}
            other => self.expr(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_src(srcs: &[&str]) -> Scan {
        let mut e = regorus::Engine::new();
        for (i, s) in srcs.iter().enumerate() {
            e.add_policy(format!("p{i}.rego"), s.to_string()).unwrap();
        }
        scan(e.get_modules())
    }

    fn names(s: &Scan, pkg: &[&str], rule: &str) -> Vec<String> {
        let pkg: Vec<String> = pkg.iter().map(|s| s.to_string()).collect();
        s.graph[&pkg][rule].names.iter().cloned().collect()
    }

    #[test]
    fn shop_policy_graph() {
        let src = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/conformance/opa/shop-v1/shop/orders/policy.rego"
        ))
        .unwrap();
        let s = scan_src(&[&src]);
        let p = ["shop", "orders"];
        assert_eq!(
            names(&s, &p, "allow"),
            ["is_owner", "is_support", "token_fresh", "within_limit"]
        );
        assert_eq!(names(&s, &p, "response"), ["allow"]);
        assert_eq!(names(&s, &p, "deny"), ["token_fresh", "within_limit"]);
        assert!(names(&s, &p, "is_owner").is_empty());
        // data.limits.* and input.* are no rules; time.now_ns is a built-in call.
        assert_eq!(
            s.calls.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["time.now_ns"]
        );
        assert_eq!((s.calls[0].line, s.calls[0].col), (21, 37));
    }

    #[test]
    fn qualified_names_aliases_functions_and_else() {
        let s = scan_src(&[r#"package a.b
import data.a.b as me
f(x) := y if { y := x + lim }
lim := 3
r := 1 if { data.a.b.q } else := me.z
q if { f(1) > 2 }
z := data.a.b["w"]
w := [x | some x in other.list]
other := {"list": [1]}
"#]);
        let p = ["a", "b"];
        assert_eq!(names(&s, &p, "r"), ["q", "z"]);
        assert_eq!(names(&s, &p, "q"), ["f"]);
        assert_eq!(names(&s, &p, "f"), ["lim"]);
        assert!(s.graph[&vec!["a".to_string(), "b".to_string()]]["f"].function);
        assert_eq!(names(&s, &p, "z"), ["w"]);
        assert_eq!(names(&s, &p, "w"), ["other"]);
        assert!(s.calls.is_empty(), "{:?}", s.calls);
    }
}
