//! Parse only what the policies read (issue 15): the context `var`s of both IRs are
//! compiled at load into a [`PathTable`], and a record's context is then read in one
//! pass that builds `serde_json::Value`s only for the keys a lookup can reach.
//!
//! Everything else is still *parsed* — through serde_json's own `deserialize_any`,
//! the path a full `Value` parse takes — but not stored: numbers are converted (so
//! `1e400` is still an error), strings and keys are decoded (escapes, surrogates),
//! and nesting is counted against the same recursion limit. A record is therefore
//! rejected exactly when the full parse would reject it, and every lookup the
//! evaluator makes (SPEC §1: bound lists, the whole key, then the nested walk) finds
//! the same value, because the kept keys are built by the same `Value` code and a
//! key named twice keeps its last value, as `serde_json::Map` does.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::engine::KeyPath;
use crate::orchestrator::Engine;

/// The parts of a context the policies can read: a tree of keys, where a leaf keeps
/// the whole value below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTable {
    root: Node,
    /// Slots for the kept values and each path's var lookups, when the table was
    /// made for an engine ([`PathTable::for_engine`]).
    layout: Option<Box<Layout>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    /// Keep the whole value.
    All,
    /// Keep only these keys of an object (anything that is not an object is read and
    /// dropped: a lookup cannot descend into it).
    Keys(BTreeMap<String, Node>),
}

/// The table that keeps every context whole: what [`crate::engine::ir::record::parse_line`]
/// and the other front doors read.
pub const EVERYTHING: PathTable = PathTable {
    root: Node::All,
    layout: None,
};

impl PathTable {
    /// A table that keeps nothing yet.
    pub fn empty() -> PathTable {
        PathTable {
            root: Node::Keys(BTreeMap::new()),
            layout: None,
        }
    }

    /// Keeps what a lookup of `var` may read: the key named `var` whole and, for a
    /// dotted name, the value at the end of the nested walk.
    pub fn add_var(&mut self, var: &str) {
        self.layout = None;
        insert(&mut self.root, std::iter::once(var));
        if var.contains('.') {
            insert(&mut self.root, var.split('.'));
        }
    }

    /// The table of both paths of an engine, with a slot per kept value and each
    /// path's vars resolved to slots ([`PathTable::layout`]).
    pub fn for_engine(engine: &Engine) -> PathTable {
        PathTable::for_vars([
            engine.shadow.policy.vars.names(),
            engine.enforced.policy.vars.names(),
        ])
    }

    /// The table keeping what two paths' vars (indexed by their ids) can read, with
    /// its slot layout.
    pub fn for_vars(paths: [&[String]; 2]) -> PathTable {
        PathTable::for_vars_and_key(paths, None)
    }

    /// [`PathTable::for_vars`] also keeping the value at a `--bucket-key` path (SPEC
    /// §3: walked segment by segment, no whole-key lookup), found with
    /// [`Layout::key`].
    pub fn for_vars_and_key(paths: [&[String]; 2], key: Option<&KeyPath>) -> PathTable {
        let mut t = PathTable::empty();
        for v in paths.iter().flat_map(|p| p.iter()) {
            t.add_var(v);
        }
        if let Some(k) = key {
            insert(&mut t.root, k.segments());
        }
        let mut n = 0;
        let root = match &t.root {
            Node::Keys(keys) => SlotNode::of(keys, &mut n),
            Node::All => unreachable!("an empty table only gains keys"),
        };
        let plans = paths.map(|p| p.iter().map(|v| VarPlan::of(&root, v)).collect());
        let key = key.map(|k| VarPlan::walk(&root, k));
        t.layout = Some(Box::new(Layout {
            root,
            slots: n,
            plans,
            key,
        }));
        t
    }

    /// The slot layout of a table made by [`PathTable::for_engine`].
    pub fn layout(&self) -> Option<&Layout> {
        self.layout.as_deref()
    }

    /// The seed that reads one context value under this table: an object keeps the
    /// named keys; any other value is read and becomes `null` (a record whose context
    /// is not an object is `missing_context` either way).
    pub fn context_seed(&self) -> ContextSeed<'_> {
        ContextSeed(&self.root)
    }

    /// Reads a JSON text (a Parquet context string) the way `serde_json::from_str`
    /// reads a `Value`, keeping only what the table names.
    pub fn read_str(&self, text: &str) -> Result<Value, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(text);
        let v = self.context_seed().deserialize(&mut de)?;
        de.end()?;
        Ok(v)
    }
}

fn insert<'a>(mut node: &mut Node, segments: impl Iterator<Item = &'a str>) {
    for seg in segments {
        let Node::Keys(keys) = node else {
            return; // already kept whole
        };
        node = keys
            .entry(seg.to_string())
            .or_insert_with(|| Node::Keys(BTreeMap::new()));
    }
    *node = Node::All;
}

/// Reads one value keeping the parts its node names (see [`PathTable::context_seed`]).
#[derive(Debug, Clone, Copy)]
pub struct ContextSeed<'t>(&'t Node);

impl<'de> DeserializeSeed<'de> for ContextSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self.0 {
            Node::All => Value::deserialize(d),
            Node::Keys(keys) => d.deserialize_any(Pruned(keys)),
        }
    }
}

/// Visits a value whose object keys are filtered by `keys`.
struct Pruned<'t>(&'t BTreeMap<String, Node>);

impl<'de, 't> Visitor<'de> for Pruned<'t> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_str<E>(self, _: &str) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Value::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(hit) = map.next_key_seed(KeySeed(self.0))? {
            match hit {
                // `insert` replaces: a key named twice keeps its last value, as in a
                // full parse.
                Some((k, node)) => {
                    let v = map.next_value_seed(ContextSeed(node))?;
                    out.insert(k.clone(), v);
                }
                None => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// Reads an object key and finds it in the table, without allocating.
struct KeySeed<'t>(&'t BTreeMap<String, Node>);

impl<'de, 't> DeserializeSeed<'de> for KeySeed<'t> {
    type Value = Option<(&'t String, &'t Node)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        // serde_json reads every map key (str, any, ignored) through one string parse.
        d.deserialize_str(self)
    }
}

impl<'de, 't> Visitor<'de> for KeySeed<'t> {
    type Value = Option<(&'t String, &'t Node)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, k: &str) -> Result<Self::Value, E> {
        Ok(self.0.get_key_value(k))
    }
}

/// A value read in full through `deserialize_any` (the path of a `Value` parse, so
/// the same inputs are errors) and dropped. Unlike `serde::de::IgnoredAny`, which
/// serde_json skips without converting numbers or counting depth.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Skip, D::Error> {
        d.deserialize_any(Skip)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_none<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_key::<Skip>()?.is_some() {
            map.next_value::<Skip>()?;
        }
        Ok(Skip)
    }
}

/// Reads one value into a slot that held an earlier record's value, reusing its
/// strings, arrays and object keys where the shapes agree (records of one log look
/// alike, so a worker reaches a steady state with few allocations per record). The
/// slot ends up holding exactly what [`ContextSeed`] (with the same node) would build:
/// every string is rewritten, every array and object cut to what this input holds.
pub struct InPlace<'v, 't> {
    slot: &'v mut Value,
    /// `None`: keep the whole value; else only these keys of an object.
    keys: Option<&'t BTreeMap<String, Node>>,
}

impl<'v, 't> InPlace<'v, 't> {
    /// The whole value into `slot` (the SPEC's reading of a JSON value).
    pub fn whole(slot: &'v mut Value) -> InPlace<'v, 't> {
        InPlace { slot, keys: None }
    }

    /// A context into `slot` under `table`.
    pub fn context(slot: &'v mut Value, table: &'t PathTable) -> InPlace<'v, 't> {
        InPlace {
            slot,
            keys: keys_of(&table.root),
        }
    }

    fn set(self, v: Value) {
        // A pruned node keeps objects only (see `Pruned`).
        *self.slot = if self.keys.is_some() { Value::Null } else { v };
    }
}

fn keys_of(node: &Node) -> Option<&BTreeMap<String, Node>> {
    match node {
        Node::All => None,
        Node::Keys(k) => Some(k),
    }
}

impl<'de> DeserializeSeed<'de> for InPlace<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        // `Value::deserialize` is `deserialize_any` with a visitor: the same reading.
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for InPlace<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    // The scalars as serde_json's `Value` visitor builds them.
    fn visit_bool<E>(self, b: bool) -> Result<(), E> {
        self.set(Value::Bool(b));
        Ok(())
    }
    fn visit_i64<E>(self, n: i64) -> Result<(), E> {
        self.set(Value::Number(n.into()));
        Ok(())
    }
    fn visit_u64<E>(self, n: u64) -> Result<(), E> {
        self.set(Value::Number(n.into()));
        Ok(())
    }
    fn visit_f64<E>(self, n: f64) -> Result<(), E> {
        self.set(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number));
        Ok(())
    }
    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        match self.slot {
            Value::String(old) if self.keys.is_none() => {
                old.clear();
                old.push_str(s);
            }
            _ => self.set(Value::String(s.to_owned())),
        }
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.set(Value::Null);
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        self.set(Value::Null);
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.keys.is_some() {
            while seq.next_element::<Skip>()?.is_some() {}
            *self.slot = Value::Null;
            return Ok(());
        }
        let mut items = match std::mem::take(self.slot) {
            Value::Array(v) => v,
            _ => Vec::new(),
        };
        let mut n = 0;
        loop {
            if n < items.len() {
                if seq
                    .next_element_seed(InPlace::whole(&mut items[n]))?
                    .is_none()
                {
                    break;
                }
            } else {
                let mut v = Value::Null;
                if seq.next_element_seed(InPlace::whole(&mut v))?.is_none() {
                    break;
                }
                items.push(v);
            }
            n += 1;
        }
        items.truncate(n);
        *self.slot = Value::Array(items);
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if let Some(filter) = self.keys {
            return pruned_map_in_place(self.slot, filter, map);
        }
        let mut old = match std::mem::take(self.slot) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let mut out = Map::new();
        while let Some(hit) = map.next_key_seed(KeyInPlace {
            keys: self.keys,
            old: &mut old,
            out: &out,
        })? {
            match hit {
                Hit::Skip => {
                    map.next_value::<Skip>()?;
                }
                // Named again: the later value replaces the earlier, as in `Map`.
                Hit::Again(k, keys) => {
                    let slot = out.get_mut(&k).expect("the key was just seen");
                    map.next_value_seed(InPlace { slot, keys })?;
                }
                Hit::First(k, mut v, keys) => {
                    map.next_value_seed(InPlace { slot: &mut v, keys })?;
                    out.insert(k, v);
                }
            }
        }
        *self.slot = Value::Object(out);
        Ok(())
    }
}

/// An object under a pruned node, read into the object already in `slot`: each named
/// key's value is read in place (a key named twice is read twice, so the last value
/// stands), then keys this input did not name are dropped. The table's own key
/// strings tell the keys apart, so the bookkeeping is a few pointer compares.
fn pruned_map_in_place<'de, 't, A: MapAccess<'de>>(
    slot: &mut Value,
    filter: &'t BTreeMap<String, Node>,
    mut map: A,
) -> Result<(), A::Error> {
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    let Value::Object(obj) = slot else {
        unreachable!("just made an object")
    };
    // At most one entry per key of the table, however often the input repeats one.
    let mut seen: smallvec::SmallVec<[&'t String; 16]> = smallvec::SmallVec::new();
    while let Some(hit) = map.next_key_seed(KeySeed(filter))? {
        let Some((k, node)) = hit else {
            map.next_value::<Skip>()?;
            continue;
        };
        if !seen.iter().any(|s| std::ptr::eq(*s, k)) {
            seen.push(k);
        }
        let v = match obj.get_mut(k.as_str()) {
            Some(v) => v,
            None => obj.entry(k.clone()).or_insert(Value::Null),
        };
        map.next_value_seed(InPlace {
            slot: v,
            keys: keys_of(node),
        })?;
    }
    // Every seen key is in `obj`; equal counts mean nothing else is.
    if seen.len() != obj.len() {
        obj.retain(|k, _| seen.iter().any(|s| s.as_str() == k));
    }
    Ok(())
}

/// What to do with the value of an object key read in place.
enum Hit<'t> {
    /// The table does not name it.
    Skip,
    /// Already read in this object.
    Again(String, Option<&'t BTreeMap<String, Node>>),
    /// First time in this object: the key (and the earlier record's value, if any) to
    /// read into.
    First(String, Value, Option<&'t BTreeMap<String, Node>>),
}

struct KeyInPlace<'a, 't> {
    keys: Option<&'t BTreeMap<String, Node>>,
    old: &'a mut Map<String, Value>,
    out: &'a Map<String, Value>,
}

impl<'de, 't> DeserializeSeed<'de> for KeyInPlace<'_, 't> {
    type Value = Hit<'t>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Hit<'t>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, 't> Visitor<'de> for KeyInPlace<'_, 't> {
    type Value = Hit<'t>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, k: &str) -> Result<Hit<'t>, E> {
        let child = match self.keys {
            None => None,
            Some(keys) => match keys.get(k) {
                None => return Ok(Hit::Skip),
                Some(node) => keys_of(node),
            },
        };
        if self.out.contains_key(k) {
            return Ok(Hit::Again(k.to_owned(), child));
        }
        Ok(match self.old.remove_entry(k) {
            Some((k, v)) => Hit::First(k, v, child),
            None => Hit::First(k.to_owned(), Value::Null, child),
        })
    }
}

/// Where the kept parts of a context go when a record is read for an engine: one slot
/// per value the table keeps whole, and for each path's vars the slots a lookup reads.
/// A record is then read without building the context object at all, and a `var` is
/// an index instead of a walk through string-keyed maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: SlotNode,
    slots: usize,
    /// Per path (shadow, enforced): per var id of its policy, where to find it.
    plans: [Vec<VarPlan>; 2],
    /// Where the `--bucket-key` value is, when one was asked for.
    key: Option<VarPlan>,
}

/// An object level of the table: its kept keys, in the table's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SlotNode {
    keys: Vec<(String, SlotKind)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SlotKind {
    /// The whole value goes to this slot.
    Leaf(usize),
    /// An object whose named keys go to the slots `lo..hi` (numbered depth first).
    Inner(SlotNode, usize, usize),
}

impl SlotNode {
    fn of(keys: &BTreeMap<String, Node>, n: &mut usize) -> SlotNode {
        let keys = keys
            .iter()
            .map(|(k, node)| {
                let kind = match node {
                    Node::All => {
                        *n += 1;
                        SlotKind::Leaf(*n - 1)
                    }
                    Node::Keys(inner) => {
                        let lo = *n;
                        let child = SlotNode::of(inner, n);
                        SlotKind::Inner(child, lo, *n)
                    }
                };
                (k.clone(), kind)
            })
            .collect();
        SlotNode { keys }
    }

    fn get(&self, key: &str) -> Option<&SlotKind> {
        self.get_bytes(key.as_bytes())
    }

    /// The kind of a key given as its (unescaped) bytes.
    #[inline]
    pub(super) fn get_bytes(&self, key: &[u8]) -> Option<&SlotKind> {
        // A handful of keys: a scan comparing lengths first beats a tree of string
        // compares.
        self.keys
            .iter()
            .find(|(k, _)| k.len() == key.len() && k.as_bytes() == key)
            .map(|(_, kind)| kind)
    }
}

/// How one var is looked up (SPEC §1): the slot of the key equal to the whole name,
/// else the slot on the dotted walk plus what is left of the walk inside its value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VarPlan {
    whole: Option<usize>,
    nested: Option<(usize, Vec<String>)>,
}

impl VarPlan {
    fn of(root: &SlotNode, var: &str) -> VarPlan {
        let whole = match root.get(var) {
            Some(SlotKind::Leaf(i)) => Some(*i),
            _ => None,
        };
        let mut nested = None;
        if var.contains('.') {
            let segs: Vec<&str> = var.split('.').collect();
            let mut node = root;
            for (i, seg) in segs.iter().enumerate() {
                match node.get(seg) {
                    Some(SlotKind::Leaf(slot)) => {
                        let rest = segs[i + 1..].iter().map(|s| s.to_string()).collect();
                        nested = Some((*slot, rest));
                        break;
                    }
                    Some(SlotKind::Inner(child, ..)) => node = child,
                    None => break,
                }
            }
        }
        VarPlan { whole, nested }
    }

    /// The plan of a `--bucket-key` path: only the segment walk (SPEC §3).
    fn walk(root: &SlotNode, key: &KeyPath) -> VarPlan {
        let plan = VarPlan::of(root, key.as_str());
        if key.as_str().contains('.') {
            VarPlan {
                whole: None,
                ..plan
            }
        } else {
            plan
        }
    }

    fn resolve<'a>(&self, slots: &'a ContextSlots) -> Option<&'a Value> {
        if let Some(i) = self.whole
            && slots.present[i]
        {
            return Some(&slots.values[i]);
        }
        let (i, rest) = self.nested.as_ref()?;
        if !slots.present[*i] {
            return None;
        }
        let mut cur = &slots.values[*i];
        for key in rest {
            cur = cur.as_object()?.get(key)?;
        }
        Some(cur)
    }
}

impl Layout {
    /// The value at the `--bucket-key` path of a record read into `slots`.
    pub fn key<'a>(&self, slots: &'a ContextSlots) -> Option<&'a Value> {
        self.key.as_ref()?.resolve(slots)
    }

    /// The top level of the table.
    pub(super) fn root(&self) -> &SlotNode {
        &self.root
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Looks up every var of one path's policy (`path`: 0 shadow, 1 enforced) in a
    /// record read into `slots`, into `out` (indexed by var id, as
    /// [`crate::policy::expr::Env::vars`] wants them).
    pub fn resolve<'a>(
        &self,
        path: usize,
        slots: &'a ContextSlots,
        out: &mut smallvec::SmallVec<[Option<&'a Value>; 16]>,
    ) {
        out.clear();
        out.extend(self.plans[path].iter().map(|p| p.resolve(slots)));
    }
}

/// One worker's slots: a context read under a [`Layout`]. Values keep their
/// allocations from record to record, as [`InPlace`] does.
#[derive(Debug, Clone, Default)]
pub struct ContextSlots {
    values: Vec<Value>,
    present: Vec<bool>,
    /// Array elements kept for the next record (`scan::take`).
    spare: Vec<Value>,
}

/// Two reads are equal when they hold the same values; the pool is not part of a read.
impl PartialEq for ContextSlots {
    fn eq(&self, other: &ContextSlots) -> bool {
        self.values == other.values && self.present == other.present
    }
}

impl ContextSlots {
    /// Makes room for `layout` and marks every slot absent, before a record is read.
    pub fn reset(&mut self, layout: &Layout) {
        if self.values.len() != layout.slots {
            self.values.resize(layout.slots, Value::Null);
        }
        self.present.clear();
        self.present.resize(layout.slots, false);
    }

    /// The values and their presence flags, for the fast reader (`scan`).
    pub(super) fn parts_mut(&mut self) -> (&mut [Value], &mut [bool], &mut Vec<Value>) {
        (&mut self.values, &mut self.present, &mut self.spare)
    }

    /// The seed that reads one context value into the slots (after [`reset`]); it
    /// yields whether the value was an object (else the record is `missing_context`).
    /// It accepts and rejects exactly the texts [`PathTable::context_seed`] does, and
    /// a var resolved from the slots finds what a lookup in that seed's object finds.
    ///
    /// [`reset`]: ContextSlots::reset
    pub fn seed<'s>(&'s mut self, layout: &'s Layout) -> SlotsSeed<'s> {
        SlotsSeed {
            node: &layout.root,
            slots: self,
        }
    }
}

/// Reads an object level into [`ContextSlots`] (see [`ContextSlots::seed`]).
pub struct SlotsSeed<'s> {
    node: &'s SlotNode,
    slots: &'s mut ContextSlots,
}

impl<'de> DeserializeSeed<'de> for SlotsSeed<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SlotsSeed<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    // Anything but an object is read (and so checked) and leaves its slots absent:
    // a lookup cannot descend into it.
    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_none<E>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(false)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let SlotsSeed { node, slots } = self;
        while let Some(kind) = map.next_key_seed(SlotKey(node))? {
            match kind {
                None => {
                    map.next_value::<Skip>()?;
                }
                // Named twice: the later value replaces the earlier, as in `Map`.
                Some(SlotKind::Leaf(i)) => {
                    slots.present[*i] = true;
                    map.next_value_seed(InPlace::whole(&mut slots.values[*i]))?;
                }
                Some(SlotKind::Inner(child, lo, hi)) => {
                    // A later value of the key replaces everything an earlier one held.
                    slots.present[*lo..*hi].fill(false);
                    map.next_value_seed(SlotsSeed {
                        node: child,
                        slots: &mut *slots,
                    })?;
                }
            }
        }
        Ok(true)
    }
}

/// Reads an object key and finds it in one level of a [`Layout`].
struct SlotKey<'t>(&'t SlotNode);

impl<'de, 't> DeserializeSeed<'de> for SlotKey<'t> {
    type Value = Option<&'t SlotKind>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, 't> Visitor<'de> for SlotKey<'t> {
    type Value = Option<&'t SlotKind>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, k: &str) -> Result<Self::Value, E> {
        Ok(self.0.get(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table(vars: &[&str]) -> PathTable {
        let mut t = PathTable::empty();
        for v in vars {
            t.add_var(v);
        }
        t
    }

    #[test]
    fn keeps_named_keys_whole_and_dotted_walks_only() {
        let t = table(&["a.b", "c"]);
        let text = r#"{"a":{"b":[1,{"x":2}],"z":3},"a.b":4,"c":{"d":5},"e":[6],"f":"g"}"#;
        assert_eq!(
            t.read_str(text).unwrap(),
            json!({"a":{"b":[1,{"x":2}]},"a.b":4,"c":{"d":5}})
        );
        // Nothing named: an empty object, but still an object.
        assert_eq!(PathTable::empty().read_str(text).unwrap(), json!({}));
        // A whole key also named by a longer path stays whole.
        assert_eq!(
            table(&["a.b", "a"]).read_str(text).unwrap(),
            json!({"a":{"b":[1,{"x":2}],"z":3},"a.b":4})
        );
        assert_eq!(EVERYTHING.read_str(text).unwrap(), {
            let v: Value = serde_json::from_str(text).unwrap();
            v
        });
    }

    #[test]
    fn non_objects_read_as_null_and_last_duplicate_wins() {
        let t = table(&["a.b"]);
        assert_eq!(t.read_str("[1,2]").unwrap(), Value::Null);
        assert_eq!(t.read_str(r#"{"a":[1]}"#).unwrap(), json!({"a": null}));
        assert_eq!(
            t.read_str(r#"{"a":{"b":1,"b":2},"a":{"b":3,"q":1,"b":4}}"#)
                .unwrap(),
            json!({"a":{"b":4}})
        );
    }

    #[test]
    fn unread_parts_fail_where_a_full_parse_fails() {
        let t = table(&["k"]);
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(200), "]".repeat(200));
        for bad in [
            r#"{"x":1e400}"#,
            r#"{"x":[-1e999]}"#,
            r#"{"x":"\ud800"}"#,
            r#"{"x":"\q"}"#,
            r#"{"\ud800":1}"#,
            "{\"x\":\"\u{1}\"}",
            r#"{"x":[1,]}"#,
            r#"{"x":01}"#,
            deep.as_str(),
        ] {
            assert!(serde_json::from_str::<Value>(bad).is_err(), "{bad}");
            assert!(t.read_str(bad).is_err(), "{bad}");
        }
        // Depth is counted as a full parse counts it: 127 levels below the top read.
        let ok = format!("{}{}", "[".repeat(127), "]".repeat(127));
        assert!(serde_json::from_str::<Value>(&ok).is_ok());
        assert!(t.read_str(&ok).is_ok());
        let over = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert!(serde_json::from_str::<Value>(&over).is_err());
        assert!(t.read_str(&over).is_err());
    }
}
