//! OPA bundles (SPEC §12): a directory or a `.tar.gz`/`.tgz`, read into memory (a
//! tarball is never unpacked to disk), checked and compiled once. Owns the file
//! listing and its digest, `.manifest` (revision, rego_version), the placement of
//! `data.json`/`data.yaml` under `data`, the checks that turn a bad bundle into a
//! `ProofError` naming the file and line (syntax and compile errors, a built-in the
//! engine lacks, data that collides with a rule, unsafe tar paths, a size bound), and
//! a prepared regorus engine that workers clone. It does not evaluate events.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use super::nd;
use super::refs::{self, Call, Graph};
use crate::error::{Location, ProofError};

/// Largest bundle read, uncompressed: a bound on memory, not a policy.
pub const MAX_BUNDLE_BYTES: u64 = 256 * 1024 * 1024;

/// A loaded, compiled bundle.
#[derive(Clone)]
pub struct Bundle {
    id: String,
    digest: String,
    source: PathBuf,
    rego_v0: bool,
    engine: regorus::Engine,
    graph: Graph,
    nd_calls: Vec<Call>,
}

impl fmt::Debug for Bundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bundle")
            .field("id", &self.id)
            .field("digest", &self.digest)
            .field("source", &self.source)
            .field("rego_v0", &self.rego_v0)
            .finish_non_exhaustive()
    }
}

impl Bundle {
    /// Loads a bundle directory or `.tar.gz`/`.tgz` file.
    pub fn load(path: &Path) -> Result<Bundle, ProofError> {
        let (name, files) = read_files(path)?;
        Bundle::from_files(path, &name, files)
    }

    /// Builds a bundle from its files (path inside the bundle → bytes). `source` is
    /// what error messages name; `name` is the id when `.manifest` has no revision.
    pub fn from_files(
        source: &Path,
        name: &str,
        files: BTreeMap<String, Vec<u8>>,
    ) -> Result<Bundle, ProofError> {
        let digest = digest(&files);
        let at = |rel: &str| source.join(rel);
        let cfg = |rel: &str, msg: String| ProofError::Config {
            path: Location::file(&at(rel)),
            msg,
        };

        let mut revision = None;
        let mut rego_v0 = false;
        if let Some(bytes) = files.get(".manifest") {
            let m: Json = serde_json::from_slice(bytes)
                .map_err(|e| ProofError::json(&at(".manifest"), &e))?;
            let Some(m) = m.as_object() else {
                return Err(cfg(
                    ".manifest",
                    "a bundle manifest must be a JSON object".into(),
                ));
            };
            match m.get("revision") {
                None | Some(Json::Null) => {}
                Some(Json::String(s)) => revision = Some(s.clone()).filter(|s| !s.is_empty()),
                Some(_) => return Err(cfg(".manifest", "`revision` must be a string".into())),
            }
            match m.get("rego_version") {
                None | Some(Json::Null) => {}
                Some(v) if v.as_u64() == Some(0) => rego_v0 = true,
                Some(v) if v.as_u64() == Some(1) => {}
                Some(v) => {
                    return Err(cfg(
                        ".manifest",
                        format!("`rego_version` must be 0 or 1, not {v}"),
                    ));
                }
            }
        }

        let mut engine = regorus::Engine::new();
        engine.set_rego_v0(rego_v0);
        let mut data = Json::Object(serde_json::Map::new());
        let mut data_files: Vec<(Vec<String>, String, Json)> = Vec::new();
        for (rel, bytes) in &files {
            let file_name = rel.rsplit('/').next().unwrap_or(rel);
            if rel.ends_with(".rego") {
                let text = String::from_utf8(bytes.clone())
                    .map_err(|_| cfg(rel, "not UTF-8 text".into()))?;
                engine
                    .add_policy(rel.clone(), text)
                    .map_err(|e| located(source, rel, &e))?;
            } else if matches!(file_name, "data.json" | "data.yaml" | "data.yml") {
                let value: Json = if file_name == "data.json" {
                    serde_json::from_slice(bytes).map_err(|e| ProofError::json(&at(rel), &e))?
                } else {
                    let text = std::str::from_utf8(bytes)
                        .map_err(|_| cfg(rel, "not UTF-8 text".into()))?;
                    serde_saphyr::from_str(text).map_err(|e| cfg(rel, e.to_string()))?
                };
                let dir: Vec<String> = rel
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>();
                let dir = dir[..dir.len() - 1].to_vec();
                if dir.is_empty() && !value.is_object() {
                    return Err(cfg(
                        rel,
                        "a top-level data file must hold a JSON object".into(),
                    ));
                }
                merge_at(&mut data, &dir, value.clone())
                    .map_err(|p| cfg(rel, format!("data.{p} is also set by another data file")))?;
                data_files.push((dir, rel.clone(), value));
            }
        }

        let scan = refs::scan(engine.get_modules());
        // A rule and a data document at the same path: OPA refuses the bundle too.
        for (pkg, rules) in &scan.graph {
            for rule in rules.keys() {
                let rule_path: Vec<String> = pkg.iter().chain([rule]).cloned().collect();
                for (dir, rel, value) in &data_files {
                    if collides(dir, value, &rule_path) {
                        return Err(cfg(
                            rel,
                            format!(
                                "data.{} conflicts with rule `{rule}` of package {}; a path \
                                 is either data or a rule, rename one",
                                rule_path.join("."),
                                pkg.join(".")
                            ),
                        ));
                    }
                }
            }
        }
        let mut nd_calls = Vec::new();
        for call in scan.calls {
            if nd::arity(&call.name).is_some() {
                nd_calls.push(call);
            } else if call.name != "print"
                && !regorus::unstable::BUILTINS.contains_key(call.name.as_str())
            {
                return Err(ProofError::Config {
                    path: Location::at(&at(&call.file), call.line.into(), call.col.into()),
                    msg: format!(
                        "built-in `{}` is not available in proof's Rego engine (regorus, \
                         with the built-in groups listed in Cargo.toml); rewrite the rule \
                         without it",
                        call.name
                    ),
                });
            }
        }

        let data_value: regorus::Value = serde_json::from_value(data)
            .map_err(|e| cfg("data.json", format!("data cannot be loaded: {e}")))?;
        engine
            .add_data(data_value)
            .map_err(|e| cfg("data.json", format!("data cannot be loaded: {e}")))?;
        // Compile now (regorus prepares lazily): errors belong to load time, exit 2.
        engine
            .eval_query("true".to_string(), false)
            .map_err(|e| located(source, "", &e))?;

        Ok(Bundle {
            id: revision.unwrap_or_else(|| name.to_string()),
            digest,
            source: source.to_path_buf(),
            rego_v0,
            engine,
            graph: scan.graph,
            nd_calls,
        })
    }

    /// The policy id: `.manifest` `revision`, else the file or directory name without
    /// `.tar.gz`/`.tgz`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `sha256:` + hex over the sorted listing of the files read (for partials, §10).
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The path it was loaded from.
    pub fn path(&self) -> &Path {
        &self.source
    }

    /// Whether `.manifest` asked for Rego v0.
    pub fn rego_v0(&self) -> bool {
        self.rego_v0
    }

    /// Calls of non-deterministic built-ins (`time.now_ns`, `http.send` …) with their
    /// place: replayed from `nd_builtin_cache`, so worth a note to the user.
    pub fn nd_calls(&self) -> &[Call] {
        &self.nd_calls
    }

    pub(crate) fn engine(&self) -> &regorus::Engine {
        &self.engine
    }

    pub(crate) fn graph(&self) -> &Graph {
        &self.graph
    }
}

/// Turns a regorus error (`--> file:line:col` … `error: msg`) into a config error on the
/// bundle's file; without a position, the error names `rel` (or the bundle).
fn located(source: &Path, rel: &str, e: &anyhow::Error) -> ProofError {
    let text = format!("{e:#}");
    let pos = text.lines().find_map(|l| {
        let rest = l.trim_start().strip_prefix("--> ")?;
        let mut it = rest.rsplitn(3, ':');
        let col: u64 = it.next()?.trim().parse().ok()?;
        let line: u64 = it.next()?.trim().parse().ok()?;
        Some((it.next()?.to_string(), line, col))
    });
    let msg = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let msg = msg.strip_prefix("error: ").unwrap_or(msg).to_string();
    match pos {
        Some((file, line, col)) => ProofError::Config {
            path: Location::at(&source.join(file), line, col),
            msg: format!("Rego error: {msg}"),
        },
        None => ProofError::Config {
            path: Location::file(&if rel.is_empty() {
                source.to_path_buf()
            } else {
                source.join(rel)
            }),
            msg: format!("Rego error: {msg}"),
        },
    }
}

/// Places `value` at `dir` under `root`, merging objects; on two values for one path,
/// returns that path (dotted).
fn merge_at(root: &mut Json, dir: &[String], value: Json) -> Result<(), String> {
    let mut cur = root;
    for (i, seg) in dir.iter().enumerate() {
        let Json::Object(map) = cur else {
            return Err(dir[..i].join("."));
        };
        cur = map
            .entry(seg.clone())
            .or_insert_with(|| Json::Object(serde_json::Map::new()));
    }
    merge(cur, value, &mut dir.to_vec())
}

fn merge(into: &mut Json, value: Json, at: &mut Vec<String>) -> Result<(), String> {
    match (into, value) {
        (Json::Object(a), Json::Object(b)) => {
            for (k, v) in b {
                at.push(k.clone());
                match a.get_mut(&k) {
                    Some(existing) => merge(existing, v, at)?,
                    None => {
                        a.insert(k, v);
                    }
                }
                at.pop();
            }
            Ok(())
        }
        (slot @ Json::Object(_), v) if slot.as_object().is_some_and(|m| m.is_empty()) => {
            *slot = v;
            Ok(())
        }
        _ => Err(at.join(".")),
    }
}

/// Whether the data file placed at `dir` with `value` puts anything at `rule` or makes
/// a non-object of one of its prefixes.
fn collides(dir: &[String], value: &Json, rule: &[String]) -> bool {
    if dir.len() >= rule.len() {
        // Placed at or below the rule itself.
        return dir[..rule.len()] == *rule;
    }
    if rule[..dir.len()] != *dir {
        return false;
    }
    let mut cur = value;
    for seg in &rule[dir.len()..] {
        match cur {
            Json::Object(m) => match m.get(seg) {
                Some(v) => cur = v,
                None => return false,
            },
            _ => return true,
        }
    }
    true
}

/// `sha256:` over each file's path, a NUL, its length (u64 BE) and its bytes, in path order.
fn digest(files: &BTreeMap<String, Vec<u8>>) -> String {
    let mut h = Sha256::new();
    for (p, b) in files {
        h.update(p.as_bytes());
        h.update([0u8]);
        h.update((b.len() as u64).to_be_bytes());
        h.update(b);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// Whether a file matters to a bundle (the rest is not read).
fn wanted(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    rel.ends_with(".rego") || matches!(name, "data.json" | "data.yaml" | "data.yml" | ".manifest")
}

fn read_dir(root: &Path) -> Result<BTreeMap<String, Vec<u8>>, ProofError> {
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    let mut stack = vec![(root.to_path_buf(), String::new(), 0usize)];
    while let Some((dir, prefix, depth)) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| ProofError::io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| ProofError::io(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = format!("{prefix}{name}");
            let path = entry.path();
            let ft = entry.file_type().map_err(|e| ProofError::io(&path, e))?;
            if ft.is_dir() {
                // Symlinked directories are not followed: no loops.
                if depth >= 64 {
                    return Err(ProofError::Limit {
                        path: Location::file(&path),
                        msg: "bundle directories nested more than 64 deep".into(),
                    });
                }
                stack.push((path, format!("{rel}/"), depth + 1));
            } else if wanted(&rel) {
                let bytes = std::fs::read(&path).map_err(|e| ProofError::io(&path, e))?;
                total += bytes.len() as u64;
                if total > MAX_BUNDLE_BYTES {
                    return Err(too_big(root));
                }
                files.insert(rel, bytes);
            }
        }
    }
    Ok(files)
}

/// A bundle's files as [`Bundle::load`] reads them (path inside the bundle → bytes),
/// and the name its id falls back to (the file or directory name without
/// `.tar.gz`/`.tgz`): what is shipped to read the same bundle elsewhere (Spark
/// executors, see [`write_files`]).
pub fn read_files(path: &Path) -> Result<(String, BTreeMap<String, Vec<u8>>), ProofError> {
    let meta = std::fs::metadata(path).map_err(|e| ProofError::io(path, e))?;
    let files = if meta.is_dir() {
        read_dir(path)?
    } else {
        read_tar_gz(path)?
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let name = ["tar.gz", "tgz"]
        .iter()
        .find_map(|ext| name.strip_suffix(&format!(".{ext}")))
        .map(str::to_string)
        .unwrap_or(name);
    Ok((name, files))
}

/// Writes `files` (from [`read_files`]) under `dir` as a bundle directory that loads
/// as the same bundle (same digest); a path with `..` or an absolute one is refused,
/// so nothing is written outside `dir`.
pub fn write_files(dir: &Path, files: &BTreeMap<String, Vec<u8>>) -> Result<(), ProofError> {
    for (rel, bytes) in files {
        let safe = safe_rel(rel)
            .filter(|r| r == rel && !r.is_empty())
            .ok_or_else(|| ProofError::Config {
                path: Location::file(dir),
                msg: format!("bundle file path {rel:?} is not a plain relative path"),
            })?;
        let path = dir.join(safe);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ProofError::io(parent, e))?;
        }
        std::fs::write(&path, bytes).map_err(|e| ProofError::io(&path, e))?;
    }
    Ok(())
}

fn too_big(path: &Path) -> ProofError {
    ProofError::Limit {
        path: Location::file(path),
        msg: format!(
            "bundle larger than {} MiB uncompressed; proof reads bundles into memory",
            MAX_BUNDLE_BYTES / (1024 * 1024)
        ),
    }
}

/// Counts bytes out of the decompressor and stops past the bound.
struct Bounded<R> {
    inner: R,
    read: u64,
    over: std::rc::Rc<std::cell::Cell<bool>>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > MAX_BUNDLE_BYTES {
            self.over.set(true);
            return Err(std::io::Error::other("bundle size bound reached"));
        }
        Ok(n)
    }
}

fn read_tar_gz(path: &Path) -> Result<BTreeMap<String, Vec<u8>>, ProofError> {
    let file = std::fs::File::open(path).map_err(|e| ProofError::io(path, e))?;
    let over = std::rc::Rc::new(std::cell::Cell::new(false));
    let gz = flate2::read::GzDecoder::new(std::io::BufReader::new(file));
    let mut archive = tar::Archive::new(Bounded {
        inner: gz,
        read: 0,
        over: over.clone(),
    });
    let corrupt = |e: std::io::Error, over: bool| {
        if over {
            too_big(path)
        } else {
            ProofError::Config {
                path: Location::file(path),
                msg: format!(
                    "not a readable .tar.gz bundle (truncated or corrupt): {e}; \
                     rebuild it with `opa build` or `tar czf`"
                ),
            }
        }
    };
    let mut files = BTreeMap::new();
    {
        let entries = archive.entries().map_err(|e| corrupt(e, over.get()))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| corrupt(e, over.get()))?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let kind = entry.header().entry_type();
            let rel = safe_rel(&raw).ok_or_else(|| ProofError::Config {
                path: Location::file(path),
                msg: format!("bundle entry `{raw}` leaves the bundle (`..`); refusing it"),
            })?;
            if kind.is_dir() || kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
                continue;
            }
            if !kind.is_file() {
                return Err(ProofError::Config {
                    path: Location::file(path),
                    msg: format!(
                        "bundle entry `{raw}` is a link or special file; bundles hold plain files"
                    ),
                });
            }
            if rel.is_empty() || !wanted(&rel) {
                continue;
            }
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| corrupt(e, over.get()))?;
            if files.insert(rel.clone(), bytes).is_some() {
                return Err(ProofError::Config {
                    path: Location::file(path),
                    msg: format!("bundle entry `{rel}` appears twice"),
                });
            }
        }
    }
    // Read to the gzip trailer: a stream cut after the tar end blocks is still caught.
    std::io::copy(&mut archive.into_inner(), &mut std::io::sink())
        .map_err(|e| corrupt(e, over.get()))?;
    Ok(files)
}

/// A tar path made bundle-relative: `./a/b`, `/a/b` (as `opa build` writes) → `a/b`;
/// `None` when a `..` segment would leave the bundle or the path is not portable.
fn safe_rel(raw: &str) -> Option<String> {
    if raw.contains('\\') || raw.contains('\0') || raw.as_bytes().get(1) == Some(&b':') {
        return None;
    }
    let mut segs = Vec::new();
    for s in raw.split('/') {
        match s {
            "" | "." => {}
            ".." => return None,
            s => segs.push(s),
        }
    }
    Some(segs.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        list.iter()
            .map(|(p, b)| (p.to_string(), b.as_bytes().to_vec()))
            .collect()
    }

    fn err(list: &[(&str, &str)]) -> String {
        Bundle::from_files(Path::new("b"), "b", files(list))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn safe_paths() {
        assert_eq!(safe_rel("./a/b.rego").as_deref(), Some("a/b.rego"));
        assert_eq!(safe_rel("/data.json").as_deref(), Some("data.json"));
        assert_eq!(safe_rel("../x"), None);
        assert_eq!(safe_rel("a/../../x"), None);
        assert_eq!(safe_rel("C:/x"), None);
        assert_eq!(safe_rel("a\\..\\x"), None);
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        let e = err(&[("p/x.rego", "package p\n\nallow if {\n  input.a ==\n}\n")]);
        assert!(e.starts_with("b/p/x.rego:5:1: Rego error"), "{e}");
        // a compile (not parse) error: an unsafe variable
        let e = err(&[("p/y.rego", "package p\n\nallow if { x > 1 }\n")]);
        assert!(e.starts_with("b/p/y.rego:3:"), "{e}");
    }

    #[test]
    fn unknown_builtins_fail_at_load() {
        let e = err(&[(
            "p/x.rego",
            "package p\n\nallow if {\n  net.cidr_contains(\"10.0.0.0/8\", input.ip)\n}\n",
        )]);
        assert!(
            e.starts_with("b/p/x.rego:4:3: built-in `net.cidr_contains`"),
            "{e}"
        );
        let e = err(&[("p/x.rego", "package p\n\nallow if no_such_fn(1)\n")]);
        assert!(e.contains("`no_such_fn`"), "{e}");
        // network built-ins are known: replayed from nd_builtin_cache
        let b = Bundle::from_files(
            Path::new("b"),
            "b",
            files(&[(
                "p/x.rego",
                "package p\n\nallow if http.send({\"method\": \"GET\", \"url\": input.u}).status_code == 200\n",
            )]),
        )
        .unwrap();
        assert_eq!(b.nd_calls()[0].name, "http.send");
        assert_eq!(b.nd_calls()[0].line, 3);
    }

    #[test]
    fn data_conflicting_with_a_rule_is_refused() {
        let e = err(&[
            ("p/x.rego", "package p\n\nallow := true\n"),
            ("p/data.json", r#"{"allow": false}"#),
        ]);
        assert!(
            e.starts_with("b/p/data.json: data.p.allow conflicts with rule `allow`"),
            "{e}"
        );
        let e = err(&[
            ("p/x.rego", "package p.q\n\nallow := true\n"),
            ("data.json", r#"{"p": {"q": 1}}"#),
        ]);
        assert!(e.contains("conflicts with rule `allow`"), "{e}");
        let e = err(&[("p/q/data.json", "{}"), ("p/data.json", r#"{"q": 3}"#)]);
        assert!(e.contains("data.p.q is also set"), "{e}");
        // siblings are fine
        Bundle::from_files(
            Path::new("b"),
            "b",
            files(&[
                ("p/x.rego", "package p\n\nallow := data.p.roles.admin\n"),
                ("p/roles/data.yaml", "admin: true\n"),
            ]),
        )
        .unwrap();
    }

    #[test]
    fn manifest_revision_and_rego_v0() {
        let b = Bundle::from_files(
            Path::new("b"),
            "b",
            files(&[
                (".manifest", r#"{"revision": "r1", "rego_version": 0}"#),
                ("x.rego", "package p\n\nallow { input.a }\n"),
            ]),
        )
        .unwrap();
        assert_eq!(b.id(), "r1");
        assert!(b.rego_v0());
        let e = err(&[("x.rego", "package p\n\nallow { input.a }\n")]);
        assert!(e.starts_with("b/x.rego:3:"), "{e}");
    }

    /// A .tar.gz of `entries`, names written raw (so `../x` can be made at all).
    fn tgz(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, body) in entries {
            let mut h = tar::Header::new_old();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_cksum();
            b.append(&h, body.as_bytes()).unwrap();
        }
        let tar = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        gz.finish().unwrap()
    }

    const POLICY: &str = "package p\n\nallow if input.ok\n";

    #[test]
    fn tarballs_load_in_memory_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("gw.tgz");
        std::fs::write(
            &good,
            tgz(&[("/p/x.rego", POLICY), ("./p/data.json", "{}")]),
        )
        .unwrap();
        let b = Bundle::load(&good).unwrap();
        assert_eq!(b.id(), "gw");

        let evil = dir.path().join("evil.tar.gz");
        std::fs::write(
            &evil,
            tgz(&[("p/x.rego", POLICY), ("../../escape.rego", POLICY)]),
        )
        .unwrap();
        let e = Bundle::load(&evil).unwrap_err().to_string();
        assert!(e.contains("`../../escape.rego` leaves the bundle"), "{e}");

        let bytes = tgz(&[("p/x.rego", POLICY), ("p/data.json", r#"{"a": 1}"#)]);
        for cut in [bytes.len() / 2, bytes.len() - 4, 10] {
            let t = dir.path().join("cut.tar.gz");
            std::fs::write(&t, &bytes[..cut]).unwrap();
            let e = Bundle::load(&t).unwrap_err().to_string();
            assert!(
                e.contains("cut.tar.gz: not a readable .tar.gz bundle (truncated or corrupt)"),
                "{cut}: {e}"
            );
        }
        // nothing was unpacked next to the tarballs
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["cut.tar.gz", "evil.tar.gz", "gw.tgz"]);
        assert!(!dir.path().parent().unwrap().join("escape.rego").exists());
    }

    #[test]
    fn shipped_files_load_as_the_same_bundle_and_never_leave_their_directory() {
        let dir = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/opa/gateway-v2");
        let (name, read) = read_files(&src).unwrap();
        assert_eq!(name, "gateway-v2");
        let out = dir.path().join("slot").join(&name);
        write_files(&out, &read).unwrap();
        let (a, b) = (Bundle::load(&src).unwrap(), Bundle::load(&out).unwrap());
        assert_eq!((a.id(), a.digest()), (b.id(), b.digest()));
        assert_eq!(a.id(), "gw-2");
        for bad in ["../escape.rego", "/abs.rego", "a/../../b.rego"] {
            let e = write_files(&dir.path().join("y"), &files(&[(bad, POLICY)]));
            assert!(e.is_err(), "{bad}");
        }
        assert!(!dir.path().join("escape.rego").exists());
        assert!(!dir.path().join("b.rego").exists());
    }
}
