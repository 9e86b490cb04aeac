//! The fast path of the JSONL and JSON-string readers (issue 25): one pass over the
//! bytes that checks the JSON syntax of a record and finds where the values the
//! policies read are, without going through serde's visitors for the rest.
//!
//! It is a *filter*, not a second reading of JSON: it only says "this text is one
//! I am sure about, and here are its kept values", and the kept values themselves are
//! still converted by serde_json (strings without escapes are copied as they are, the
//! one conversion that cannot differ). Whenever the text is anything else — a syntax
//! error, text that is not UTF-8 (checked once for the whole line by
//! `str::from_utf8` before the scan, so strings need no check of their own), an
//! escape in a key, a `\u` surrogate, nesting deeper than [`MAX_DEPTH`], a
//! number whose magnitude could reach f64's limit, a record field named twice, a
//! context that is not an object — it answers `None` and the caller reads the line
//! with the serde path (`record::RecordBuf`, `extract::SlotsSeed`), which then
//! accepts or rejects it for the reason it always did. So a record is accepted by the
//! fast path only if the serde path accepts it, with the same kept values; the
//! differential fuzz property (tests/fuzz.rs) checks both against a full parse.

use serde::de::DeserializeSeed;
use serde_json::Value;

use super::extract::{ContextSlots, InPlace, Layout, SlotKind, SlotNode};

/// Deepest nesting the fast path reads (the record object is level 1); deeper texts go
/// to serde_json, whose limit is 127 levels. Far below it, so a kept value converted
/// on its own cannot pass a limit the whole text would not.
pub const MAX_DEPTH: u32 = 64;

/// Largest decimal magnitude of a number the fast path accepts (digits before the
/// point plus the exponent): below it no f64 conversion can overflow, so `1e400`
/// (an error in serde_json) and its neighbours go to the serde path.
const MAX_MAGNITUDE: i64 = 300;

/// A fast-path miss: read the text with the serde path.
pub struct Miss;

type R<T> = Result<T, Miss>;

/// A cursor over a text (UTF-8 checked once, as a whole, before the scan starts).
pub struct Cursor<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `text`. Its UTF-8 is valid already, so a string's
    /// bytes need no check of their own, and a kept string is a slice of `text`
    /// between two quotes (always character boundaries); a non-ASCII byte outside a
    /// string is a syntax error, as anywhere else.
    pub fn new(text: &'a str) -> Cursor<'a> {
        Cursor {
            s: text,
            b: text.as_bytes(),
            i: 0,
        }
    }

    /// The text from `start` to the cursor (both at ASCII bytes the scan stopped at).
    #[inline]
    fn text_from(&self, start: usize) -> R<&'a str> {
        self.s.get(start..self.i).ok_or(Miss)
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            // Every JSON whitespace byte is at most b' ': one compare settles the usual
            // case (no whitespace between tokens of a compact log).
            if c > b' ' || !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                break;
            }
            self.i += 1;
        }
    }

    #[inline]
    fn peek(&self) -> R<u8> {
        self.b.get(self.i).copied().ok_or(Miss)
    }

    #[inline]
    fn eat(&mut self, c: u8) -> R<()> {
        if self.peek()? == c {
            self.i += 1;
            Ok(())
        } else {
            Err(Miss)
        }
    }

    /// Only whitespace is left.
    pub fn end(mut self) -> R<()> {
        self.ws();
        if self.i == self.b.len() {
            Ok(())
        } else {
            Err(Miss)
        }
    }

    /// A string at the cursor (opening quote included): its raw content, and whether
    /// it holds an escape. Always inlined: keys and values are most of a record's
    /// tokens, and the call (registers saved, the pair returned through memory) cost
    /// about a sixth of the scan (callgrind: 557.7 M -> 532.5 M for 20 000 records).
    #[inline(always)]
    fn string(&mut self) -> R<(&'a [u8], bool)> {
        self.eat(b'"')?;
        let start = self.i;
        let mut escaped = false;
        loop {
            // Plain bytes in bulk: anything but a quote, a backslash or a control byte
            // (non-ASCII bytes are parts of characters the whole-text check passed).
            self.i += plain_run(&self.b[self.i..]);
            match *self.b.get(self.i).ok_or(Miss)? {
                b'"' => {
                    let s = &self.b[start..self.i];
                    self.i += 1;
                    return Ok((s, escaped));
                }
                b'\\' => {
                    escaped = true;
                    self.i += 1;
                    match self.peek()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                        b'u' => {
                            let hex = self.b.get(self.i + 1..self.i + 5).ok_or(Miss)?;
                            let mut cp = 0u32;
                            for &h in hex {
                                cp = cp * 16 + (h as char).to_digit(16).ok_or(Miss)?;
                            }
                            // Surrogates (paired or not) are left to serde_json.
                            if (0xD800..=0xDFFF).contains(&cp) {
                                return Err(Miss);
                            }
                            self.i += 5;
                        }
                        _ => return Err(Miss),
                    }
                }
                _ => return Err(Miss), // a control byte
            }
        }
    }

    /// A number in JSON's grammar whose f64 conversion cannot overflow.
    #[inline]
    fn number(&mut self) -> R<()> {
        if self.peek()? == b'-' {
            self.i += 1;
        }
        let int_start = self.i;
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return Err(Miss),
        }
        let int_digits = (self.i - int_start) as i64;
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            let d = self.i;
            self.digits();
            if self.i == d {
                return Err(Miss);
            }
        }
        let mut magnitude = int_digits;
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            let negative = match self.b.get(self.i) {
                Some(b'-') => {
                    self.i += 1;
                    true
                }
                Some(b'+') => {
                    self.i += 1;
                    false
                }
                _ => false,
            };
            let d = self.i;
            self.digits();
            let exp = &self.b[d..self.i];
            if exp.is_empty() || exp.len() > 4 {
                return Err(Miss);
            }
            let e = exp.iter().fold(0i64, |a, &c| a * 10 + i64::from(c - b'0'));
            if !negative {
                magnitude += e;
            }
        }
        if magnitude > MAX_MAGNITUDE {
            return Err(Miss);
        }
        Ok(())
    }

    #[inline]
    fn digits(&mut self) {
        while matches!(self.b.get(self.i), Some(b'0'..=b'9')) {
            self.i += 1;
        }
    }

    #[inline]
    fn literal(&mut self, word: &[u8]) -> R<()> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Miss)
        }
    }

    /// Checks one value at the cursor (after whitespace) at nesting `depth` (of the
    /// value's container).
    fn skip(&mut self, depth: u32) -> R<()> {
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'{' => {
                let depth = enter(depth)?;
                self.i += 1;
                self.ws();
                if self.peek()? == b'}' {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.string()?;
                    self.colon()?;
                    self.skip(depth)?;
                    if self.next_member(b'}')? {
                        return Ok(());
                    }
                    self.ws();
                }
            }
            b'[' => {
                let depth = enter(depth)?;
                self.i += 1;
                self.ws();
                if self.peek()? == b']' {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.skip(depth)?;
                    if self.next_member(b']')? {
                        return Ok(());
                    }
                    self.ws();
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    /// `ws : ws` between a key and its value.
    #[inline]
    fn colon(&mut self) -> R<()> {
        self.ws();
        self.eat(b':')?;
        self.ws();
        Ok(())
    }

    /// After a member: `,` (false) or the closing bracket (true).
    #[inline]
    fn next_member(&mut self, close: u8) -> R<bool> {
        self.ws();
        let c = self.peek()?;
        self.i += 1;
        if c == b',' {
            Ok(false)
        } else if c == close {
            Ok(true)
        } else {
            Err(Miss)
        }
    }
}

/// Length of the run of bytes at the start of `b` that a string holds as they are
/// (not `"`, `\\`, or a control byte), eight bytes at a time.
#[inline]
fn plain_run(b: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 8) {
        let x = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let zero = |y: u64| y.wrapping_sub(ONES) & !y & HIGH;
        // Bytes equal to '"' or '\\', or below 0x20 (a byte at or above 0x80 is not
        // flagged: `& !x` clears it): the lowest flagged byte is exact (borrows only
        // run upwards).
        let stop = zero(x ^ (ONES * u64::from(b'"')))
            | zero(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x & HIGH);
        if stop != 0 {
            return i + (stop.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            break;
        }
        i += 1;
    }
    i
}

#[inline]
fn enter(depth: u32) -> R<u32> {
    if depth >= MAX_DEPTH {
        Err(Miss)
    } else {
        Ok(depth + 1)
    }
}

/// Checks one value at the cursor and reads it into `slot` as serde_json's `Value`
/// reading does (`extract::InPlace::whole`), reusing the slot's allocations. Strings
/// without escapes, literals, small integers and arrays are built here; anything
/// else (escapes, fractions, exponents, `-0`, objects) is checked and then converted
/// by serde_json from its own text.
///
/// Array elements come from and go back to `spare`: an array shorter than the same
/// slot's array of the record before gives its extra elements (with their string
/// buffers) to the pool instead of dropping them, and a longer one takes them back, so
/// arrays whose length varies from record to record do not allocate per element.
fn take(c: &mut Cursor<'_>, depth: u32, slot: &mut Value, spare: &mut Vec<Value>) -> R<()> {
    let start = c.i;
    match c.peek()? {
        b'"' => take_string(c, slot),
        b'[' => {
            let depth = enter(depth)?;
            c.i += 1;
            if !slot.is_array() {
                *slot = Value::Array(Vec::new());
            }
            let Value::Array(items) = slot else {
                return Err(Miss); // just made an array
            };
            let mut n = 0;
            c.ws();
            if c.peek()? == b']' {
                c.i += 1;
            } else {
                loop {
                    if n == items.len() {
                        items.push(spare.pop().unwrap_or(Value::Null));
                    }
                    // Strings (dates, hashes, countries) are most elements: read here,
                    // without a recursive call each.
                    if c.peek()? == b'"' {
                        take_string(c, &mut items[n])?;
                    } else {
                        take(c, depth, &mut items[n], spare)?;
                    }
                    n += 1;
                    if c.next_member(b']')? {
                        break;
                    }
                    c.ws();
                }
            }
            if items.len() > n {
                let room = SPARE_MAX.saturating_sub(spare.len());
                spare.extend(items.drain(n..).take(room));
            }
            Ok(())
        }
        b'{' => {
            c.skip(depth)?;
            by_serde(c.text_from(start)?, slot)
        }
        b't' => {
            c.literal(b"true")?;
            set_bool(slot, true);
            Ok(())
        }
        b'f' => {
            c.literal(b"false")?;
            set_bool(slot, false);
            Ok(())
        }
        b'n' => {
            c.literal(b"null")?;
            set_null(slot);
            Ok(())
        }
        _ => {
            c.number()?;
            let raw = c.text_from(start)?;
            // An integer of up to 18 digits fits i64 and u64: serde_json makes it a u64
            // (no sign) or an i64 (a sign, not `-0`, which it reads as a float).
            let (neg, digits) = match raw.as_bytes() {
                [b'-', d @ ..] => (true, d),
                d => (false, d),
            };
            if digits.len() <= 18 && digits.iter().all(u8::is_ascii_digit) {
                let n = digits
                    .iter()
                    .fold(0u64, |a, &d| a * 10 + u64::from(d - b'0'));
                let v = match (neg, n) {
                    (false, n) => n.into(),
                    (true, 0) => return by_serde(raw, slot),
                    (true, n) => (-(n as i64)).into(),
                };
                set_number(slot, v);
                return Ok(());
            }
            by_serde(raw, slot)
        }
    }
}

/// Puts a boolean into `slot`. Most slots hold a value of the same type from the
/// record before; writing over it in place spares the out-of-line drop of whatever the
/// slot held, which the compiler cannot see is trivial (also [`set_number`], [`set_null`]).
#[inline]
fn set_bool(slot: &mut Value, b: bool) {
    match slot {
        Value::Bool(old) => *old = b,
        _ => *slot = Value::Bool(b),
    }
}

#[inline]
fn set_number(slot: &mut Value, n: serde_json::Number) {
    match slot {
        Value::Number(old) => *old = n,
        _ => *slot = Value::Number(n),
    }
}

#[inline]
fn set_null(slot: &mut Value) {
    if !slot.is_null() {
        *slot = Value::Null;
    }
}

/// A string at the cursor into `slot`, reusing the slot's buffer ([`take`]).
#[inline(always)]
fn take_string(c: &mut Cursor<'_>, slot: &mut Value) -> R<()> {
    let start = c.i;
    let (_, escaped) = c.string()?;
    if escaped {
        return by_serde(c.text_from(start)?, slot);
    }
    // Between the quotes (both ASCII, so character boundaries).
    let s = c.s.get(start + 1..c.i - 1).ok_or(Miss)?;
    match slot {
        Value::String(old) => {
            old.clear();
            old.push_str(s);
        }
        _ => *slot = Value::String(s.to_owned()),
    }
    Ok(())
}

/// At most this many array elements wait in a pool for the next record (`take`): the
/// common case is a few, and a record with a huge array leaves no more than this behind.
const SPARE_MAX: usize = 1024;

/// Converts a checked value's text with serde_json, into `slot` in place.
fn by_serde(text: &str, slot: &mut Value) -> R<()> {
    let mut de = serde_json::Deserializer::from_str(text);
    InPlace::whole(slot)
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|_| Miss)
}

/// Reads a context object at the cursor into `slots` (already reset for `node`'s
/// layout) as `extract::SlotsSeed` does; a context that is not an object is a miss.
pub(super) fn context(
    c: &mut Cursor<'_>,
    node: &SlotNode,
    slots: &mut ContextSlots,
    depth: u32,
) -> R<()> {
    if c.peek()? != b'{' {
        return Err(Miss);
    }
    object(c, node, slots, depth)
}

/// An object level under `node` (cursor on `{`).
fn object(c: &mut Cursor<'_>, node: &SlotNode, slots: &mut ContextSlots, depth: u32) -> R<()> {
    let depth = enter(depth)?;
    c.i += 1;
    c.ws();
    if c.peek()? == b'}' {
        c.i += 1;
        return Ok(());
    }
    loop {
        let (key, escaped) = c.string()?;
        if escaped {
            // The key must be decoded to be matched: serde's business.
            return Err(Miss);
        }
        c.colon()?;
        match node.get_bytes(key) {
            None => c.skip(depth)?,
            Some(SlotKind::Leaf(i)) => {
                // Named twice: the later value replaces the earlier, as in `Map`.
                let (values, present, spare) = slots.parts_mut();
                take(c, depth, &mut values[*i], spare)?;
                present[*i] = true;
            }
            Some(SlotKind::Inner(child, lo, hi)) => {
                // A later value of the key replaces everything an earlier one held.
                slots.parts_mut().1[*lo..*hi].fill(false);
                if c.peek()? == b'{' {
                    object(c, child, slots, depth)?;
                } else {
                    c.skip(depth)?;
                }
            }
        }
        if c.next_member(b'}')? {
            return Ok(());
        }
        c.ws();
    }
}

/// The record fields of a JSONL line.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `ts`
    Ts,
    /// `request_id`
    RequestId,
    /// `policy_id`
    PolicyId,
    /// `context`
    Context,
    /// `verdict`
    Verdict,
}

/// Walks a record object (`text`, a whole line): for each
/// record field, `field` is called with the cursor on its value (it must read it);
/// other keys are checked and skipped. A field named twice is a miss (the serde path
/// calls it `malformed`).
pub fn record(text: &str, mut field: impl FnMut(Field, &mut Cursor<'_>) -> R<()>) -> R<()> {
    let mut c = Cursor::new(text);
    c.ws();
    c.eat(b'{')?;
    c.ws();
    let mut seen = 0u8;
    if c.peek()? == b'}' {
        c.i += 1;
        return c.end();
    }
    loop {
        let (key, escaped) = c.string()?;
        if escaped {
            return Err(Miss);
        }
        c.colon()?;
        let f = match key {
            b"ts" => Some(Field::Ts),
            b"request_id" => Some(Field::RequestId),
            b"policy_id" => Some(Field::PolicyId),
            b"context" => Some(Field::Context),
            b"verdict" => Some(Field::Verdict),
            _ => None,
        };
        match f {
            None => c.skip(1)?,
            Some(f) => {
                let bit = 1 << f as u8;
                if seen & bit != 0 {
                    return Err(Miss);
                }
                seen |= bit;
                field(f, &mut c)?;
            }
        }
        if c.next_member(b'}')? {
            return c.end();
        }
        c.ws();
    }
}

/// Reads a record field's value at the cursor into `slot`.
pub fn field_value(c: &mut Cursor<'_>, slot: &mut Value) -> R<()> {
    // Record fields are rarely arrays: no pool of their own.
    take(c, 1, slot, &mut Vec::new())
}

/// Reads a JSON text holding one context (a Parquet string) into `slots` (reset for
/// `layout`).
pub fn context_text(text: &str, layout: &Layout, slots: &mut ContextSlots) -> R<()> {
    let mut c = Cursor::new(text);
    c.ws();
    context(&mut c, layout.root(), slots, 0)?;
    c.end()
}

/// The JSON-string Parquet context: the fast path first, serde for the rest (here,
/// not in `extract`, so that `extract` does not import `scan`).
impl Layout {
    /// Reads a JSON text (a Parquet context string) into `slots`, accepting and
    /// rejecting what [`super::extract::PathTable::read_str`] does; `Ok(false)`: not an object.
    pub fn read_str(
        &self,
        text: &str,
        slots: &mut ContextSlots,
    ) -> Result<bool, serde_json::Error> {
        slots.reset(self);
        // The fast path first; anything it is not sure about is read by serde below.
        if context_text(text, self, slots).is_ok() {
            return Ok(true);
        }
        let mut de = serde_json::Deserializer::from_str(text);
        slots.reset(self);
        let object = slots.seed(self).deserialize(&mut de)?;
        de.end()?;
        Ok(object)
    }
}
