//! Merging of partials (SPEC §10): parts with one fingerprint folded into one, their
//! inputs renumbered, and request ids redacted on demand.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::{Fingerprint, Header, PartFile, Partial};
use crate::error::ProofError;
use crate::replay::aggregate::{Aggregate, Example, FileCounts, Origin};
use crate::replay::record::Reason;

/// Merges parts one at a time (read, fold, drop): memory holds the merged counts and
/// one part, never every part at once. The result does not depend on the order of
/// the parts: inputs get their final places (sorted) and samples their canonical
/// order at [`Merger::finish`], and the header kept is the least by content.
pub struct Merger {
    max_windows: usize,
    first: Option<(String, Fingerprint, bool)>,
    header: Option<(Vec<u8>, Header)>,
    files: Vec<PartFile>,
    index: HashMap<PartFile, u32>,
    agg: Aggregate,
    examples: Vec<Example>,
    drifts: Vec<Example>,
    rejection_samples: Vec<(Origin, Reason)>,
    /// Every part kept every drifting record (`--drift-details`); `Some(name)` names
    /// the first that did not.
    without_details: Option<String>,
}

impl Merger {
    /// A merger refusing more than `max_windows` windows in all.
    pub fn new(max_windows: usize) -> Merger {
        Merger {
            max_windows,
            first: None,
            header: None,
            files: Vec::new(),
            index: HashMap::new(),
            agg: Aggregate::default(),
            examples: Vec::new(),
            drifts: Vec::new(),
            rejection_samples: Vec::new(),
            without_details: None,
        }
    }

    /// Folds one part in: refused (naming the field, both values and both parts)
    /// unless its fingerprint matches the first part's, and when a sum would overflow
    /// or the windows exceed the limit.
    pub fn add(&mut self, name: &str, mut p: Partial) -> Result<(), ProofError> {
        let fp = &p.header.fingerprint;
        match &self.first {
            None => self.first = Some((name.to_string(), fp.clone(), p.header.ids_redacted)),
            Some((first_name, first, redacted)) => {
                for ((field, a), (_, b)) in first.fields().into_iter().zip(fp.fields()) {
                    if a != b {
                        return Err(ProofError::Usage(format!(
                            "cannot merge {name} with {first_name}: they differ in {field} ({b} vs {a}); \
                             every part must be replayed with the same policies, selectors, weights, \
                             lists, salt and window"
                        )));
                    }
                }
                if first != fp {
                    return Err(ProofError::Usage(format!(
                        "cannot merge {name} with {first_name}: their engine settings differ \
                         ({:?} vs {:?}); every part must be replayed with the same engine settings",
                        fp.settings, first.settings
                    )));
                }
                if *redacted != p.header.ids_redacted {
                    let says = |r: bool| if r { "redacted" } else { "raw" };
                    return Err(ProofError::Usage(format!(
                        "cannot merge {name} with {first_name}: request ids are {} in one and {} \
                         in the other; write every part with --redact-ids, or none and pass \
                         --redact-ids to merge",
                        says(p.header.ids_redacted),
                        says(*redacted)
                    )));
                }
            }
        }
        if !p.agg.bounds.drift_details && self.without_details.is_none() {
            self.without_details = Some(name.to_string());
        }
        self.check_sums(name, &p.agg)?;
        // Inputs: a part's input already listed (another byte range of one file, as
        // Spark splits it) keeps its place; hashing makes this O(1) per input.
        let to: Vec<u32> = std::mem::take(&mut p.header.files)
            .into_iter()
            .map(|f| match self.index.get(&f) {
                Some(&i) => i,
                None => {
                    let i = self.files.len() as u32;
                    self.index.insert(f.clone(), i);
                    self.files.push(f);
                    i
                }
            })
            .collect();
        renumber(&mut p.agg, |k| to.get(k as usize).copied().unwrap_or(k));
        // Samples are set aside and trimmed once, at the end, in their final order.
        self.examples.append(&mut p.agg.examples);
        self.drifts.append(&mut p.agg.drifts);
        self.rejection_samples.append(&mut p.agg.rejection_samples);
        let key = serde_json::to_vec(&(
            &p.header.baseline,
            &p.header.candidate,
            &p.header.lists,
            &p.header.rule_ids,
        ))
        .unwrap_or_default();
        if self.header.as_ref().is_none_or(|(k, _)| key < *k) {
            self.header = Some((key, p.header));
        }
        self.agg = std::mem::take(&mut self.agg).merge(p.agg);
        if self.agg.windows.len() > self.max_windows {
            return Err(ProofError::Limit {
                path: crate::error::Location::file(Path::new("--max-windows")),
                msg: format!(
                    "more than {} windows in the parts merged so far (last: {name}); merge fewer \
                     parts at a time or raise --max-windows",
                    self.max_windows
                ),
            });
        }
        Ok(())
    }

    /// Refuses a part whose counts would overflow the merged sums.
    fn check_sums(&self, name: &str, p: &Aggregate) -> Result<(), ProofError> {
        let overflow = || {
            ProofError::Usage(format!(
                "{name}: its counts added to the other parts' overflow (a crafted or corrupt \
                 partial?)"
            ))
        };
        // Every other total of a part is bounded by its `read` (checked at decode).
        self.agg.read.checked_add(p.read).ok_or_else(overflow)?;
        for (start, w) in &p.windows {
            let Some(mine) = self.agg.windows.get(start) else {
                continue;
            };
            let u32s =
                |a: &[u32], b: &[u32]| a.iter().zip(b).all(|(x, y)| x.checked_add(*y).is_some());
            let ok = u32s(&mine.drift_by_pct, &w.drift_by_pct)
                && mine
                    .enforced_by_pct
                    .iter()
                    .zip(&w.enforced_by_pct)
                    .all(|(a, b)| u32s(a, b))
                && mine.latency_sum_ns.checked_add(w.latency_sum_ns).is_some();
            if !ok {
                return Err(overflow());
            }
        }
        Ok(())
    }

    /// The merged partial: inputs sorted (their final places), samples in canonical
    /// order and trimmed to the largest bounds the parts kept.
    pub fn finish(self) -> Result<Partial, ProofError> {
        let Some((_, mut header)) = self.header else {
            return Err(ProofError::Usage("no partial to merge".into()));
        };
        let mut agg = self.agg;
        agg.examples = self.examples;
        agg.drifts = self.drifts;
        agg.rejection_samples = self.rejection_samples;
        let mut order: Vec<u32> = (0..self.files.len() as u32).collect();
        order.sort_by(|&a, &b| self.files[a as usize].cmp(&self.files[b as usize]));
        let mut place = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            place[old as usize] = new as u32;
        }
        renumber(&mut agg, |k| place.get(k as usize).copied().unwrap_or(k));
        let mut files = self.files;
        files.sort();
        header.files = files;
        header.body_bytes = None;
        agg.finish();
        Ok(Partial { header, agg })
    }

    /// The first part that did not keep every drifting record, if any.
    pub fn without_drift_details(&self) -> Option<&str> {
        self.without_details.as_deref()
    }
}

/// Merges parts (see [`Merger`]), with no window limit.
pub fn merge(parts: Vec<(String, Partial)>) -> Result<Partial, ProofError> {
    let mut m = Merger::new(usize::MAX);
    for (name, p) in parts {
        m.add(&name, p)?;
    }
    m.finish()
}

/// Moves a part's inputs to their places in the merged list (`to(i)` for input `i`).
/// Inputs that land on one place have their counts added.
fn renumber(a: &mut Aggregate, to: impl Fn(u32) -> u32) {
    let mut files: BTreeMap<u32, FileCounts> = BTreeMap::new();
    for (k, f) in std::mem::take(&mut a.files) {
        let mine = files.entry(to(k)).or_default();
        mine.read += f.read;
        mine.evaluated += f.evaluated;
        mine.rejected += f.rejected;
        mine.skipped += f.skipped;
    }
    a.files = files;
    for o in a.origins_mut() {
        o.file = to(o.file);
    }
}

/// Replaces the request ids a part carries (examples, drift details, unfaithful
/// records) by their keyed hash (`--redact-ids`), so that no raw id leaves the process
/// in a partial. Rejection samples carry origins only.
pub fn redact_ids(p: &mut Partial, key: &[u8]) {
    if p.header.ids_redacted {
        return;
    }
    for id in p.agg.request_ids_mut() {
        *id = crate::replay::redact::redact(key, id);
    }
    p.header.ids_redacted = true;
}
