//! Reference lists bound with `--list NAME=FILE` (sanctions, high-risk countries, …).
//!
//! A `.csv` file contributes its first column below a header row; any other file one
//! value per line (surrounding white space trimmed, blank lines ignored). Values are
//! strings; a list overrides a context key of the same name (SPEC §1).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::ProofError;
use crate::files::{FileSet, Limit};

/// The hasher of a list's index: foldhash's fixed-seed fast hasher instead of std's
/// SipHash, a few times cheaper per probe of a short string (docs/performance.md,
/// "Issue 25: evaluation"). Hash flooding is not a concern here: the values inserted
/// come from the operator's list files, and record values are only looked up, never
/// inserted, so a record cannot grow a bucket chain. (Indexes built over record arrays,
/// `policy::set`, keep their randomly keyed SipHash.)
pub type ListHasher = foldhash::fast::FixedState;

/// One loaded list: values in file order plus a hash index for membership.
#[derive(Debug, Default)]
pub struct ListData {
    /// Values in file order (duplicates kept, as in the file).
    pub values: Vec<String>,
    /// Index for membership tests.
    pub set: HashSet<String, ListHasher>,
}

impl ListData {
    /// Builds a list from values.
    pub fn new(values: Vec<String>) -> Self {
        let set = values.iter().cloned().collect();
        ListData { values, set }
    }
}

/// Named lists, as bound on the command line or in a scenario.
#[derive(Debug, Default, Clone)]
pub struct Lists {
    map: BTreeMap<String, (PathBuf, Arc<ListData>)>,
}

/// A `NAME=FILE` binding as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSpec {
    /// Variable name the list binds.
    pub name: String,
    /// File it is read from.
    pub path: PathBuf,
}

impl std::str::FromStr for ListSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, path) = s
            .split_once('=')
            .ok_or_else(|| format!("expected NAME=FILE, got '{s}'"))?;
        if name.is_empty() || path.is_empty() {
            return Err(format!("expected NAME=FILE, got '{s}'"));
        }
        Ok(ListSpec {
            name: name.to_string(),
            path: PathBuf::from(path),
        })
    }
}

impl Lists {
    /// Loads every binding; the last binding of a name wins. A file bound to several
    /// names is read once (a pipe has no second read).
    pub fn load(specs: &[ListSpec]) -> Result<Lists, ProofError> {
        Lists::load_from(specs, &FileSet::new())
    }

    /// [`Lists::load`] through a set of files read once each (`serve`, `adapt`).
    pub fn load_from(specs: &[ListSpec], files: &FileSet) -> Result<Lists, ProofError> {
        let mut lists = Lists::default();
        for spec in specs {
            let data = parse_list(&files.read(&spec.path, LIST_LIMIT)?, &spec.path)?;
            lists
                .map
                .insert(spec.name.clone(), (spec.path.clone(), Arc::new(data)));
        }
        Ok(lists)
    }

    /// Binds an in-memory list (tests, generators).
    pub fn insert(&mut self, name: &str, values: Vec<String>) {
        self.map.insert(
            name.to_string(),
            (PathBuf::new(), Arc::new(ListData::new(values))),
        );
    }

    /// The list bound to `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<ListData>> {
        self.map.get(name).map(|(_, d)| d)
    }

    /// `(name, path, number of values)` for each binding, by name.
    pub fn summary(&self) -> Vec<(String, PathBuf, usize)> {
        self.map
            .iter()
            .map(|(n, (p, d))| (n.clone(), p.clone(), d.values.len()))
            .collect()
    }
}

/// Largest list file read: 512 MiB (a sanctions list of a few million entries is tens
/// of MiB; a list is held in memory twice, in file order and as a hash index).
pub const MAX_LIST_BYTES: u64 = 512 << 20;

/// [`MAX_LIST_BYTES`] as the limit of every list read.
pub const LIST_LIMIT: Limit = Limit {
    bytes: MAX_LIST_BYTES,
    what: "list file",
    why: "policy::lists::MAX_LIST_BYTES, fixed at build time: a list is held in memory",
};

/// Reads one list file.
pub fn load_list(path: &Path) -> Result<ListData, ProofError> {
    parse_list(&crate::files::read_limited(path, LIST_LIMIT)?, path)
}

/// Parses the bytes of a list file; `path` decides the format and names errors.
pub fn parse_list(bytes: &[u8], path: &Path) -> Result<ListData, ProofError> {
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    // UTF-8 first, for both formats: the csv crate reports bad bytes at the line its
    // record starts on (line 1 for bad bytes on line 2), so count the line here.
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        ProofError::config(path, line as u64, "not valid UTF-8".to_string())
    })?;
    let mut values = Vec::new();
    if is_csv {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(bytes);
        for rec in rdr.records() {
            let rec = rec.map_err(|e| {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                ProofError::config(path, line, format!("bad CSV: {e}"))
            })?;
            if let Some(v) = rec.get(0) {
                let v = v.trim();
                if !v.is_empty() {
                    values.push(v.to_string());
                }
            }
        }
    } else {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        values.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from),
        );
    }
    Ok(ListData::new(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_text_lists() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("s.csv");
        std::fs::write(&csv, "supplier_hash,name\n0xbad1,Acme\n0xbad2,Foo\n").unwrap();
        let txt = dir.path().join("c.txt");
        std::fs::write(&txt, "KP\r\n\n IR \nSY").unwrap();
        let l = Lists::load(
            &[
                "sanctions=".to_string() + csv.to_str().unwrap(),
                "high_risk=".to_string() + txt.to_str().unwrap(),
            ]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect::<Vec<_>>(),
        )
        .unwrap();
        assert_eq!(l.get("sanctions").unwrap().values, ["0xbad1", "0xbad2"]);
        assert_eq!(l.get("high_risk").unwrap().values, ["KP", "IR", "SY"]);
        assert!("noequals".parse::<ListSpec>().is_err());
    }

    #[test]
    fn bad_bytes_name_their_line() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["s.csv", "s.txt"] {
            let p = dir.path().join(name);
            std::fs::write(&p, b"supplier_hash,name\n0xbad\xff,Acme\n0xok,Foo\n").unwrap();
            let e = load_list(&p).unwrap_err().to_string();
            assert_eq!(e, format!("{}:2: not valid UTF-8", p.display()));
        }
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = load_list(Path::new("/nonexistent/list.txt")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/list.txt"));
    }
}
