//! OPA decision-log events (SPEC §12): one JSON object → [`Read`] (an [`Event`], a
//! rejection or a skip), in §4's check order. Owns the event's fields, RFC 3339
//! timestamps with every nanosecond digit, decision-path normalisation and the sticky
//! bucket key walk of §3. It does not read files, split lines or enforce the 16 MiB
//! limit (`too_long`): the record reader does that before calling [`parse_event`].

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value as Json;

/// One read of an event: evaluated, rejected or skipped, with the reason.
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    /// A well-formed event to evaluate.
    Event(Box<Event>),
    /// Broke §4/§12's rules; the reason is one of §4's fixed names.
    Rejected(Reject),
    /// Well-formed but not replayable here; counted by reason.
    Skipped(Skip),
}

/// Why an event was rejected (§4's names, in check order; `too_long` is the reader's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reject {
    /// Not JSON, not an object, or a top-level key given twice.
    Malformed,
    /// No `timestamp` (absent or null).
    MissingTs,
    /// `timestamp` is not an RFC 3339 date-time string (years 1–9999).
    BadTs,
    /// `decision_id` absent, null, not a string or empty.
    MissingRequestId,
    /// `path` absent, not a string, or empty once normalised.
    MissingPath,
}

impl Reject {
    /// The fixed reason name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::Malformed => "malformed",
            Reject::MissingTs => "missing_ts",
            Reject::BadTs => "bad_ts",
            Reject::MissingRequestId => "missing_request_id",
            Reject::MissingPath => "missing_path",
        }
    }
}

/// Why an event was skipped (§12's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// Its path is not the `--decision` asked for.
    OtherDecision,
    /// `erased`/`masked` names `/input` or `/result` or a path under either.
    Redacted,
}

impl Skip {
    /// The fixed reason name.
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::OtherDecision => "other_decision",
            Skip::Redacted => "redacted",
        }
    }
}

/// A decision path, normalised: `/shop//orders/allow` → `["shop", "orders", "allow"]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DecisionPath(Vec<String>);

impl DecisionPath {
    /// Splits on `/` and drops empty segments; `None` when nothing is left.
    pub fn parse(path: &str) -> Option<DecisionPath> {
        let segs: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        (!segs.is_empty()).then_some(DecisionPath(segs))
    }

    /// The segments.
    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// The package: every segment but the last (empty for a one-segment decision).
    pub fn package(&self) -> &[String] {
        &self.0[..self.0.len() - 1]
    }

    /// The decision rule's name (the last segment).
    pub fn rule(&self) -> &str {
        &self.0[self.0.len() - 1]
    }

    /// The Rego query for the decision: `data.shop.orders.allow`, `data["my-app"].allow`.
    pub fn query(&self) -> String {
        ref_query(&self.0)
    }

    /// The Rego query for the decision's package (`data` for a one-segment decision).
    pub fn package_query(&self) -> String {
        ref_query(self.package())
    }
}

impl fmt::Display for DecisionPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("/"))
    }
}

/// `data` followed by each segment, dotted when it is a Rego identifier that is no
/// keyword, else bracketed as a JSON string.
pub(crate) fn ref_query(segs: &[String]) -> String {
    let mut q = String::from("data");
    for s in segs {
        if is_identifier(s) {
            q.push('.');
            q.push_str(s);
        } else {
            q.push('[');
            q.push_str(&Json::String(s.clone()).to_string());
            q.push(']');
        }
    }
    q
}

const KEYWORDS: [&str; 15] = [
    "as", "contains", "default", "else", "every", "false", "if", "import", "in", "not", "null",
    "package", "some", "true", "with",
];

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !KEYWORDS.contains(&s)
}

/// The `revision` a bundle had when production made the decision (`bundles` of the event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleInfo {
    /// The bundle's revision, if the event names one.
    pub revision: Option<String>,
}

/// One decision event, ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `decision_id` (the request id).
    pub decision_id: String,
    /// `timestamp` in ns since the epoch, every digit kept (years 1–9999 overflow i64).
    pub ts_ns: i128,
    /// `floor(ts_ns / 10⁶)`: what windows are computed from.
    pub ts_ms: i64,
    /// The normalised decision path.
    pub path: DecisionPath,
    /// `input`; `None` when absent or null (evaluated without input).
    pub input: Option<Json>,
    /// `result`, the value production returned; `None` = undefined.
    pub result: Option<Json>,
    /// `nd_builtin_cache` as recorded (shape checked at evaluation, see `nd.rs`).
    pub nd_builtin_cache: Option<Json>,
    /// `bundles`: bundle name → revision (for §11's `--baseline recorded=ID`).
    pub bundles: Option<BTreeMap<String, BundleInfo>>,
    /// The whole event object, for [`event_key`].
    pub raw: serde_json::Map<String, Json>,
}

impl Event {
    /// Whether any of the event's bundles has revision `id` (events without `bundles`
    /// are kept, as §11 says: `true`).
    pub fn has_revision(&self, id: &str) -> bool {
        match &self.bundles {
            None => true,
            Some(b) => b.values().any(|i| i.revision.as_deref() == Some(id)),
        }
    }
}

/// Parses one event (one JSONL line or one array element) in §4's check order.
/// `decision`: the normalised `--decision`, when given.
pub fn parse_event(bytes: &[u8], decision: Option<&DecisionPath>) -> Read {
    let Ok(Entries(entries)) = serde_json::from_slice::<Entries>(bytes) else {
        return Read::Rejected(Reject::Malformed);
    };
    let mut raw = serde_json::Map::new();
    for (k, v) in entries {
        if raw.contains_key(&k) {
            return Read::Rejected(Reject::Malformed);
        }
        raw.insert(k, v);
    }
    let present = |k: &str| raw.get(k).filter(|v| !v.is_null());

    let Some(ts) = present("timestamp") else {
        return Read::Rejected(Reject::MissingTs);
    };
    let Some(ts_ns) = ts.as_str().and_then(parse_rfc3339_ns) else {
        return Read::Rejected(Reject::BadTs);
    };
    let decision_id = match present("decision_id").and_then(Json::as_str) {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => return Read::Rejected(Reject::MissingRequestId),
    };
    let Some(path) = present("path")
        .and_then(Json::as_str)
        .and_then(DecisionPath::parse)
    else {
        return Read::Rejected(Reject::MissingPath);
    };

    if decision.is_some_and(|d| *d != path) {
        return Read::Skipped(Skip::OtherDecision);
    }
    if ["erased", "masked"]
        .iter()
        .any(|k| present(k).is_some_and(names_redacted))
    {
        return Read::Skipped(Skip::Redacted);
    }

    let bundles = present("bundles").and_then(Json::as_object).map(|m| {
        m.iter()
            .map(|(name, b)| {
                let revision = b.get("revision").and_then(Json::as_str).map(str::to_string);
                (name.clone(), BundleInfo { revision })
            })
            .collect()
    });
    let ts_ms = ts_ns.div_euclid(1_000_000) as i64;
    Read::Event(Box::new(Event {
        decision_id,
        ts_ns,
        ts_ms,
        path,
        input: present("input").cloned(),
        // `result: null` is a recorded null, not undefined: only absence is undefined.
        result: raw.get("result").cloned(),
        nd_builtin_cache: present("nd_builtin_cache").cloned(),
        bundles,
        raw,
    }))
}

/// Whether an `erased`/`masked` list names `/input` or `/result` or a path under either,
/// by whole segments. Entries that are not strings (OPA writes strings) are ignored.
fn names_redacted(list: &Json) -> bool {
    let Some(items) = list.as_array() else {
        return false;
    };
    items.iter().filter_map(Json::as_str).any(|p| {
        let first = p.split('/').find(|s| !s.is_empty());
        matches!(first, Some("input" | "result"))
    })
}

/// §3's bucket key at dotted `path` (e.g. `input.user`), walked segment by segment from
/// the event object: a string as it is, a boolean as `true`/`false`, a number in its
/// RFC 8785 form; missing, null, an array or an object → `None`.
pub fn event_key(event: &Event, path: &str) -> Option<String> {
    let mut segs = path.split('.');
    let mut cur = event.raw.get(segs.next()?)?;
    for s in segs {
        cur = cur.as_object()?.get(s)?;
    }
    match cur {
        Json::String(s) => Some(s.clone()),
        Json::Bool(b) => Some(b.to_string()),
        Json::Number(_) => serde_json_canonicalizer::to_string(cur).ok(),
        _ => None,
    }
}

/// Top-level entries in file order, so duplicate keys can be seen (serde_json's map
/// keeps the last silently). Anything but an object fails to deserialize.
struct Entries(Vec<(String, Json)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Entries, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, Json>()? {
                    out.push((k, v));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// RFC 3339 date-time (`T`/`t`, `Z`/`z` or `±hh:mm`) → ns since the epoch. Fraction
/// digits past the ninth are dropped (ns is the unit); years 1–9999; second 60 refused
/// (as Go's time.Parse, which wrote the log, does).
pub fn parse_rfc3339_ns(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let d = b.get(r)?;
        d.iter()
            .all(u8::is_ascii_digit)
            .then(|| d.iter().fold(0i64, |acc, c| acc * 10 + i64::from(c - b'0')))
    };
    let sep = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if year < 1 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    let mut i = 19;
    let mut frac_ns: i128 = 0;
    if sep(i, b".") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 9 {
                frac_ns = frac_ns * 10 + i128::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..9 {
            frac_ns *= 10;
        }
    }
    let offset_s: i64 = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        c @ (b'+' | b'-') if i + 6 == b.len() && sep(i + 3, b":") => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *c == b'-' { -o } else { o }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_s;
    Some(i128::from(secs) * 1_000_000_000 + frac_ns)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(s: &str) -> Event {
        match parse_event(s.as_bytes(), None) {
            Read::Event(e) => *e,
            other => panic!("not an event: {other:?}"),
        }
    }

    #[test]
    fn timestamps_keep_every_digit_and_any_offset() {
        // 2026-11-12T08:00:10Z = 1794470410 s (hand-checked: 20769 days * 86400 + 28810).
        assert_eq!(days_from_civil(2026, 11, 12), 20_769);
        assert_eq!(
            parse_rfc3339_ns("2026-11-12T08:00:10.161973069Z"),
            Some(1_794_470_410_161_973_069)
        );
        assert_eq!(
            parse_rfc3339_ns("2026-11-12T09:00:10.161973069+01:00"),
            Some(1_794_470_410_161_973_069)
        );
        assert_eq!(
            parse_rfc3339_ns("2026-11-12t08:00:10.5z"),
            Some(1_794_470_410_500_000_000)
        );
        // digits past the ninth are below the unit
        assert_eq!(parse_rfc3339_ns("1970-01-01T00:00:00.0000000019Z"), Some(1));
        assert_eq!(
            parse_rfc3339_ns("1969-12-31T23:59:59.999Z"),
            Some(-1_000_000)
        );
        assert_eq!(
            parse_rfc3339_ns("0001-01-01T00:00:00Z"),
            Some(-62_135_596_800 * 1_000_000_000)
        );
        assert!(parse_rfc3339_ns("9999-12-31T23:59:59.999999999Z").is_some());
        for bad in [
            "2026-11-12",
            "2026-11-12T08:00:10",
            "2026-02-29T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "2026-11-12T24:00:00Z",
            "2026-11-12T08:00:60Z",
            "2026-11-12T08:00:10.Z",
            "2026-11-12T08:00:10+0100",
            "2026-11-12T08:00:10Zjunk",
            "2026-11-12 08:00:10Z",
            "+2026-11-12T08:00:10Z",
        ] {
            assert_eq!(parse_rfc3339_ns(bad), None, "{bad}");
        }
        assert!(parse_rfc3339_ns("2024-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn window_millisecond_floors_negative_times() {
        let e =
            ev(r#"{"decision_id":"d","path":"a/b","timestamp":"1969-12-31T23:59:59.9999999Z"}"#);
        assert_eq!(e.ts_ns, -100);
        assert_eq!(e.ts_ms, -1);
    }

    #[test]
    fn check_order_names_the_first_failure() {
        let r = |s: &str| parse_event(s.as_bytes(), None);
        assert_eq!(r("{"), Read::Rejected(Reject::Malformed));
        assert_eq!(r("[1]"), Read::Rejected(Reject::Malformed));
        assert_eq!(r(r#"{"a":1,"a":2}"#), Read::Rejected(Reject::Malformed));
        assert_eq!(r(r#"{"path":"a"}"#), Read::Rejected(Reject::MissingTs));
        assert_eq!(
            r(r#"{"timestamp":null,"path":"a"}"#),
            Read::Rejected(Reject::MissingTs)
        );
        assert_eq!(r(r#"{"timestamp":12}"#), Read::Rejected(Reject::BadTs));
        let ts = r#""timestamp":"2026-11-12T08:00:10Z""#;
        assert_eq!(
            r(&format!("{{{ts}}}")),
            Read::Rejected(Reject::MissingRequestId)
        );
        assert_eq!(
            r(&format!(r#"{{{ts},"decision_id":""}}"#)),
            Read::Rejected(Reject::MissingRequestId)
        );
        assert_eq!(
            r(&format!(r#"{{{ts},"decision_id":7}}"#)),
            Read::Rejected(Reject::MissingRequestId)
        );
        assert_eq!(
            r(&format!(r#"{{{ts},"decision_id":"d","path":"//"}}"#)),
            Read::Rejected(Reject::MissingPath)
        );
        assert_eq!(
            r(&format!(r#"{{{ts},"decision_id":"d","path":3}}"#)),
            Read::Rejected(Reject::MissingPath)
        );
    }

    #[test]
    fn skips_other_decisions_and_redacted_events() {
        let d = DecisionPath::parse("/shop/orders/allow").unwrap();
        let base = r#""decision_id":"d","timestamp":"2026-11-12T08:00:10Z""#;
        let r = |rest: &str| parse_event(format!("{{{base},{rest}}}").as_bytes(), Some(&d));
        assert_eq!(
            r(r#""path":"shop/orders/deny""#),
            Read::Skipped(Skip::OtherDecision)
        );
        assert!(matches!(
            r(r#""path":"shop//orders/allow/""#),
            Read::Event(_)
        ));
        let p = r#""path":"shop/orders/allow""#;
        for (list, redacted) in [
            (r#"["/input/user"]"#, true),
            (r#"["/input"]"#, true),
            (r#"["/result"]"#, true),
            (r#"["/inputs"]"#, false),
            (r#"["/results/x"]"#, false),
            (r#"["/labels/x"]"#, false),
        ] {
            for key in ["erased", "masked"] {
                let got = r(&format!(r#"{p},"{key}":{list}"#));
                assert_eq!(
                    got == Read::Skipped(Skip::Redacted),
                    redacted,
                    "{key} {list}"
                );
            }
        }
    }

    #[test]
    fn fields_and_queries() {
        let e = ev(
            r#"{"decision_id":"d","path":"/my-app/v1/allow","timestamp":"2026-11-12T08:00:10Z",
                "input":null,"bundles":{"authz":{"revision":"r7"}},
                "nd_builtin_cache":{"time.now_ns":{"[]":5}}}"#,
        );
        assert_eq!(e.input, None);
        assert_eq!(e.result, None);
        assert_eq!(e.path.query(), r#"data["my-app"].v1.allow"#);
        assert_eq!(e.path.package_query(), r#"data["my-app"].v1"#);
        assert_eq!(e.path.rule(), "allow");
        assert!(e.has_revision("r7"));
        assert!(!e.has_revision("r8"));
        assert_eq!(
            DecisionPath::parse("pkg/if/x").unwrap().query(),
            r#"data.pkg["if"].x"#
        );
        let e = ev(
            r#"{"decision_id":"d","path":"a/b","timestamp":"2026-11-12T08:00:10Z","result":null}"#,
        );
        assert_eq!(e.result, Some(Json::Null));
        assert!(e.has_revision("anything"));
    }

    #[test]
    fn bucket_keys_follow_section_3() {
        let e = ev(
            r#"{"decision_id":"d","path":"a/b","timestamp":"2026-11-12T08:00:10Z",
                "input":{"user":"ann","n":1.0,"m":-0,"f":1.5,"b":true,"z":null,"a":[1],"o":{},
                "input.user":"whole"}}"#,
        );
        let k = |p: &str| event_key(&e, p);
        assert_eq!(k("input.user").as_deref(), Some("ann"));
        assert_eq!(k("input.n").as_deref(), Some("1"));
        assert_eq!(k("input.m").as_deref(), Some("0"));
        assert_eq!(k("input.f").as_deref(), Some("1.5"));
        assert_eq!(k("input.b").as_deref(), Some("true"));
        assert_eq!(k("decision_id").as_deref(), Some("d"));
        for missing in [
            "input.z",
            "input.a",
            "input.o",
            "input.nope",
            "input.user.x",
            "nope",
        ] {
            assert_eq!(k(missing), None, "{missing}");
        }
    }
}
