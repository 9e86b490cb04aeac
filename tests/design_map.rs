//! docs/design.md's "where each SPEC section lives" table names modules that exist:
//! the map stays true when modules move.

use std::path::Path;

#[test]
fn every_module_the_spec_map_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/design.md")).unwrap();
    let start = doc
        .find("## Where each SPEC section lives")
        .expect("docs/design.md has the SPEC map");
    let section = &doc[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut named = 0;
    let mut sections = std::collections::BTreeSet::new();
    for row in section.lines().filter(|l| l.starts_with("| §")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        for s in cells[1].split(',') {
            sections.insert(s.trim().to_string());
        }
        for path in cells[3].split(',') {
            let path = path.trim().trim_matches('`');
            assert!(
                root.join(path).exists(),
                "docs/design.md names {path}, which does not exist"
            );
            named += 1;
        }
    }
    assert!(named >= 20, "only {named} modules named");
    for n in 1..=12 {
        assert!(sections.contains(&format!("§{n}")), "SPEC §{n} has no row");
    }
}

/// The exporters read each gate setting from one place, the typed `Report::settings`
/// the gate judged with; `Report::config` is report.json's echo of them, written once
/// when the report is built.
#[test]
fn exporters_read_gate_settings_from_one_place() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src/report"), &mut files);
    let echo = [
        "drift_max",
        "rollout",
        "levels",
        "min_requests",
        "rollback_factor",
        "max_rejects",
        "max_eval_error_ratio",
        "window",
    ];
    let mut found = Vec::new();
    for f in files
        .iter()
        .filter(|f| !f.ends_with("model/build.rs") && !f.ends_with("model/schema.rs"))
    {
        let code = code_of(&std::fs::read_to_string(f).unwrap());
        for field in echo {
            if code.contains(&format!(".config.{field}")) {
                found.push(format!("{}: .config.{field}", f.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "read r.settings instead:\n{}",
        found.join("\n")
    );
}

// ---------------------------------------------------------------------------------
// Source structure: one home for the breach rule, no import cycles, `cli` on top.

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The code of a Rust file without comments, string and char literal contents, and
/// without its trailing `#[cfg(test)]` module (test code may reach anywhere).
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod ") {
        Some(i) => &text[..i],
        None => text,
    };
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == '/' && b.get(i + 1) == Some(&'/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && b.get(i + 1) == Some(&'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == '*' && b[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == 'r' && matches!(b.get(i + 1), Some('"') | Some('#')) && {
            let mut j = i + 1;
            while b.get(j) == Some(&'#') {
                j += 1;
            }
            b.get(j) == Some(&'"') && (i == 0 || !(b[i - 1].is_alphanumeric() || b[i - 1] == '_'))
        } {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b[j] == '#' {
                hashes += 1;
                j += 1;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}'), else a lifetime.
            if b.get(i + 1) == Some(&'\\') {
                let mut j = i + 2;
                while j < b.len() && b[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
                out.push_str("' '");
            } else if b.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push_str("' '");
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Lines of `code` that compare a drift limit (`drift_max`, `drift_max_ratio`, with
/// any path before it) with `<`, `<=`, `>` or `>=`, on either side.
fn limit_comparisons(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in code.lines() {
        let mut from = 0;
        while let Some(k) = line[from..].find("drift_max") {
            let at = from + k;
            let ident = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
            let start = line[..at].rfind(|c: char| !ident(c)).map_or(0, |i| i + 1);
            let end = line[at..]
                .find(|c: char| !ident(c))
                .map_or(line.len(), |i| at + i);
            let before = line[..start].trim_end();
            let after = line[end..].trim_start();
            let cmp_before =
                (before.ends_with('>') && !before.ends_with("->") && !before.ends_with("=>"))
                    || before.ends_with('<')
                    || before.ends_with(">=")
                    || before.ends_with("<=");
            let cmp_after = (after.starts_with('>') && !after.starts_with(">>"))
                || (after.starts_with('<') && !after.starts_with("<<"));
            // A range check on the setting itself (`drift_max <= 0.0`) is not the rule.
            let operand = after.trim_start_matches(['<', '>', '=']).trim_start();
            let literal = operand.starts_with(|c: char| c.is_ascii_digit());
            let cmp_after = cmp_after && !literal;
            if cmp_before || cmp_after {
                found.push(line.trim().to_string());
            }
            from = end.max(at + 1);
        }
    }
    found
}

#[test]
fn the_breach_comparison_is_written_in_one_file() {
    // The detector itself: these must be found, those not.
    for hit in [
        "breach: counts && r > self.drift_max,",
        "if g.drift_max < lo {",
        "(None, _) => r.drift_ratio_5m > cfg.options.drift_max_ratio,",
        "x.1 <= drift_max",
    ] {
        assert_eq!(limit_comparisons(hit).len(), 1, "{hit}");
    }
    for miss in [
        "drift_max: f64,",
        "rule::breaches(r, self.drift_max)",
        "fn f(drift_max: f64) -> Option<u64> {",
        "let max = g.drift_max;",
        "if drift_max <= 0.0 {",
    ] {
        assert!(limit_comparisons(miss).is_empty(), "{miss}");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let home = root.join("src/replay/gate/rule.rs");
    let home_text = std::fs::read_to_string(&home).unwrap();
    assert!(home_text.contains("figure > drift_max"), "the rule moved");
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut outside = Vec::new();
    for f in files.iter().filter(|f| **f != home) {
        let code = code_of(&std::fs::read_to_string(f).unwrap());
        for line in limit_comparisons(&code) {
            outside.push(format!(
                "{}: {line}",
                f.strip_prefix(root).unwrap().display()
            ));
        }
    }
    assert!(
        outside.is_empty(),
        "drift limit compared outside src/replay/gate/rule.rs (call rule::breaches, \
         rolls_back or passes):\n{}",
        outside.join("\n")
    );
}

type Graph = std::collections::BTreeMap<String, std::collections::BTreeSet<String>>;

/// The module path of a file under src/: `src/replay/gate/mod.rs` → `[replay, gate]`,
/// `src/replay/job.rs` → `[replay, job]`, `src/lib.rs` → `[]`.
fn module_path(src: &Path, f: &Path) -> Vec<String> {
    let rel = f.strip_prefix(src).unwrap();
    let mut v: Vec<String> = rel
        .iter()
        .map(|s| s.to_str().unwrap().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(v.last().map(String::as_str), Some("mod" | "lib")) {
        v.pop();
    }
    v
}

/// Paths named after `crate::`, `super::` or `self::` in `code` (use trees expanded,
/// `r#` dropped), resolved against the module `here`; each is absolute from the crate
/// root. Bare `child::` paths in a `mod.rs`/`lib.rs` are not seen: a parent naming
/// its own children is not an import between siblings.
fn paths_in(code: &str, here: &[String]) -> Vec<Vec<String>> {
    let chars: Vec<char> = code.chars().collect();
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '#';
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts_word = i == 0 || !(word(chars[i - 1]) || chars[i - 1] == ':');
        let rest: String = chars[i..(i + 8).min(chars.len())].iter().collect();
        let base: Option<(Vec<String>, usize)> = if !starts_word {
            None
        } else if rest.starts_with("crate::") {
            Some((Vec::new(), 7))
        } else if rest.starts_with("super::") || rest.starts_with("self::") {
            // `self` is the file's module; each `super` goes one up (a `mod.rs` is its
            // directory's module, a file one below it).
            let mut m = here.to_vec();
            let mut j = i;
            loop {
                let r: String = chars[j..(j + 7).min(chars.len())].iter().collect();
                if r.starts_with("super::") {
                    m.pop();
                    j += 7;
                } else if r.starts_with("self::") {
                    j += 6;
                } else {
                    break;
                }
            }
            Some((m, j - i))
        } else {
            None
        };
        let Some((prefix, skip)) = base else {
            i += 1;
            continue;
        };
        let mut j = i + skip;
        let mut trees = Vec::new();
        parse_tree(&chars, &mut j, prefix, &mut trees);
        out.extend(trees);
        i = j.max(i + 1);
    }
    out
}

/// Parses a use tree (or a plain path) at `chars[*j..]` after `prefix::`.
fn parse_tree(chars: &[char], j: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let skip_ws = |j: &mut usize| {
        while *j < chars.len() && chars[*j].is_whitespace() {
            *j += 1;
        }
    };
    skip_ws(j);
    if chars.get(*j) == Some(&'{') {
        *j += 1;
        loop {
            skip_ws(j);
            match chars.get(*j) {
                None => return,
                Some('}') => {
                    *j += 1;
                    return;
                }
                Some(',') => *j += 1,
                _ => {
                    let before = *j;
                    parse_tree(chars, j, prefix.clone(), out);
                    if *j == before {
                        *j += 1;
                    }
                }
            }
        }
    }
    let start = *j;
    while *j < chars.len() && (chars[*j].is_alphanumeric() || chars[*j] == '_' || chars[*j] == '#')
    {
        *j += 1;
    }
    let seg: String = chars[start..*j].iter().collect();
    let seg = seg.trim_start_matches("r#").to_string();
    let mut path = prefix;
    if !seg.is_empty() && seg != "self" && seg != "super" {
        path.push(seg);
    }
    if chars.get(*j) == Some(&':') && chars.get(*j + 1) == Some(&':') {
        *j += 2;
        parse_tree(chars, j, path, out);
    } else {
        out.push(path);
    }
}

/// `pub use child::{A, B}` / `pub use child::A` in a module file: re-exported name →
/// child, so that `super::A` from a sibling counts as an import of `child`.
fn reexports(code: &str) -> std::collections::BTreeMap<String, String> {
    let mut m = std::collections::BTreeMap::new();
    for stmt in code.split(';') {
        let s = stmt.trim();
        let Some(rest) = s.strip_prefix("pub use ") else {
            continue;
        };
        let rest = rest.trim_start_matches("self::");
        let Some((child, names)) = rest.split_once("::") else {
            continue;
        };
        if child == "crate" || child == "super" || child.contains(char::is_whitespace) {
            continue;
        }
        for n in names.trim_matches(|c| c == '{' || c == '}').split(',') {
            let n = n.trim();
            let n = n
                .rsplit(" as ")
                .next()
                .unwrap()
                .rsplit("::")
                .next()
                .unwrap()
                .trim();
            if !n.is_empty() && n != "*" {
                m.insert(n.to_string(), child.trim_start_matches("r#").to_string());
            }
        }
    }
    m
}

/// A cycle of `g`, if any, as `a → b → … → a`.
fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &Graph,
        state: &mut std::collections::BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|x| x == m).unwrap();
                    let mut c = stack[at..].to_vec();
                    c.push(m.clone());
                    return Some(c);
                }
                0 => {
                    if let Some(c) = visit(m, g, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = std::collections::BTreeMap::new();
    for n in g.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(c) = visit(n, g, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

/// The import graphs of src/: one between the top-level modules (key ""), and one
/// between the files and subdirectories of each directory (key: the directory's module
/// path, `replay::gate`). `mod.rs` is its directory's interface, not a node: its
/// children may use what it defines. Also every `crate::cli` import from outside
/// src/cli and src/bin.
fn import_graphs(root: &Path) -> (std::collections::BTreeMap<String, Graph>, Vec<String>) {
    let src = root.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut exports = std::collections::BTreeMap::new();
    let mut codes = Vec::new();
    for f in &files {
        let code = code_of(&std::fs::read_to_string(f).unwrap());
        let m = module_path(&src, f);
        let name = f.file_name().unwrap().to_str().unwrap();
        if name == "mod.rs" || name == "lib.rs" {
            exports.insert(m.clone(), reexports(&code));
        }
        codes.push((f.clone(), m, code));
    }
    let mut graphs: std::collections::BTreeMap<String, Graph> = Default::default();
    let mut cli_users = Vec::new();
    for (f, here, code) in &codes {
        let rel = f.strip_prefix(root).unwrap().display().to_string();
        if rel.starts_with("src/bin/") {
            continue;
        }
        for path in paths_in(code, here) {
            if path.first().is_some_and(|p| p == "cli") && !rel.starts_with("src/cli/") {
                cli_users.push(format!("{rel}: crate::{}", path.join("::")));
            }
            // Each directory level where the two paths part: an edge between the
            // children of their common parent.
            for k in 0..here.len().min(path.len()) {
                if k > 0 && here[..k] != path[..k] {
                    break;
                }
                if here[k] == path[k] {
                    continue;
                }
                // Is the target a child of this directory, or a name the directory's
                // mod.rs re-exports from one?
                let dir = src.join(here[..k].join("/"));
                let target = &path[k];
                let is_child =
                    dir.join(format!("{target}.rs")).is_file() || dir.join(target).is_dir();
                let child = if is_child {
                    Some(target.clone())
                } else {
                    exports.get(&here[..k]).and_then(|e| e.get(target)).cloned()
                };
                if let Some(child) = child
                    && child != here[k]
                {
                    // A file at the top level of src/ (config.rs) is a module too.
                    graphs
                        .entry(here[..k].join("::"))
                        .or_default()
                        .entry(here[k].clone())
                        .or_default()
                        .insert(child);
                }
                break;
            }
        }
    }
    (graphs, cli_users)
}

#[test]
fn the_import_graph_finder_sees_a_cycle() {
    let code = "use crate::{a::x, b::{y, z}};\nfn f() { super::super::c::d(); }";
    let here = vec!["m".to_string(), "n".to_string(), "o".to_string()];
    let paths = paths_in(&code_of(code), &here);
    let want: Vec<Vec<String>> = [
        vec!["a", "x"],
        vec!["b", "y"],
        vec!["b", "z"],
        vec!["m", "c", "d"],
    ]
    .iter()
    .map(|p| p.iter().map(|s| s.to_string()).collect())
    .collect();
    assert_eq!(paths, want);
    let mut g = Graph::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        g.entry(a.into()).or_default().insert(b.into());
    }
    assert_eq!(find_cycle(&g).unwrap().join(" → "), "a → b → c → a");
    g.get_mut("c").unwrap().remove("a");
    assert_eq!(find_cycle(&g), None);
}

#[test]
fn no_import_cycle_and_only_the_cli_imports_the_cli() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (graphs, cli_users) = import_graphs(root);
    assert!(graphs.contains_key(""), "no top-level edges found");
    assert!(
        graphs[""]
            .get("replay")
            .is_some_and(|s| s.contains("engine")),
        "replay → engine not seen: the finder is broken"
    );
    let mut cycles = Vec::new();
    for (dir, g) in &graphs {
        // Every cycle, one at a time: print one, drop its closing edge, look again.
        let mut g = g.clone();
        while let Some(c) = find_cycle(&g) {
            let dir = if dir.is_empty() { "src" } else { dir };
            cycles.push(format!("{dir}: {}", c.join(" → ")));
            let (a, b) = (&c[c.len() - 2], &c[c.len() - 1]);
            g.get_mut(a).unwrap().remove(b);
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
    assert!(
        cli_users.is_empty(),
        "only src/cli and src/bin may import crate::cli:\n{}",
        cli_users.join("\n")
    );
}
