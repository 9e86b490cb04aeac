//! Non-deterministic built-ins (SPEC §12): `time.now_ns()` answers the event's
//! `nd_builtin_cache` value, else the event's timestamp in ns (never the wall clock);
//! the others answer the cached value recorded for the same arguments, else the call is
//! an evaluation error (`nondeterministic`). They are regorus *extensions*, which its
//! interpreter looks up before its own built-ins, so they replace them for every call
//! site, `with` included. Each worker installs its own, sharing one [`NdContext`] that
//! is set before each evaluation.
//!
//! `nd_builtin_cache` is OPA's `{"<builtin>": {"<args as a JSON array>": value}}`.
//! A cache of another shape (not an object, an entry not an object, a key that is not
//! a JSON array) is kept with the event and makes every non-deterministic call of that
//! event an evaluation error: the event is not rejected, since what was recorded
//! cannot be known, and failing closed keeps it in every figure.

use std::sync::{Arc, Mutex};

use regorus::Value;
use serde_json::Value as Json;

/// OPA's non-deterministic built-ins and their arity.
const ND: [(&str, u8); 9] = [
    ("time.now_ns", 0),
    ("rand.intn", 2),
    ("uuid.rfc4122", 1),
    ("http.send", 1),
    ("net.lookup_ip_addr", 1),
    ("io.jwt.decode_verify", 2),
    ("io.jwt.encode_sign", 3),
    ("io.jwt.encode_sign_raw", 3),
    ("providers.aws.sign_req", 3),
];

/// The arity of a non-deterministic built-in, `None` for any other name.
pub fn arity(name: &str) -> Option<u8> {
    ND.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
}

/// What the built-ins answer for the event being evaluated.
#[derive(Debug, Default)]
pub struct NdContext {
    now_ns: i128,
    cache: Cache,
    /// Set when a call could not be answered: the evaluation is an error.
    pub(crate) missed: bool,
}

/// Per built-in, its recorded calls: (arguments as an array, value).
type Entries = Vec<(String, Vec<(Value, Value)>)>;

#[derive(Debug, Default)]
enum Cache {
    #[default]
    None,
    Entries(Entries),
    Unusable,
}

impl NdContext {
    /// Prepares for one event.
    pub fn set(&mut self, ts_ns: i128, cache: Option<&Json>) {
        self.now_ns = ts_ns;
        self.missed = false;
        self.cache = match cache {
            None | Some(Json::Null) => Cache::None,
            Some(c) => parse_cache(c).map_or(Cache::Unusable, Cache::Entries),
        };
    }

    fn answer(&mut self, name: &str, args: &[Value]) -> Option<Value> {
        let found = match &self.cache {
            Cache::Unusable => None,
            Cache::None => (name == "time.now_ns").then(|| Value::from(self.now_ns)),
            Cache::Entries(e) => {
                let hit = e
                    .iter()
                    .find(|(n, _)| n == name)
                    .and_then(|(_, calls)| {
                        calls.iter().find(|(a, _)| {
                            a.as_array().is_ok_and(|a| {
                                a.len() == args.len() && a.iter().zip(args).all(|(x, y)| x == y)
                            })
                        })
                    })
                    .map(|(_, v)| v.clone());
                match hit {
                    Some(v) => Some(v),
                    None if name == "time.now_ns" => Some(Value::from(self.now_ns)),
                    None => None,
                }
            }
        };
        if found.is_none() {
            self.missed = true;
        }
        found
    }
}

fn parse_cache(c: &Json) -> Option<Entries> {
    let mut out = Vec::new();
    for (name, calls) in c.as_object()? {
        let mut list = Vec::new();
        for (args, value) in calls.as_object()? {
            let args: Json = serde_json::from_str(args).ok()?;
            if !args.is_array() {
                return None;
            }
            let args: Value = serde_json::from_value(args).ok()?;
            let value: Value = serde_json::from_value(value.clone()).ok()?;
            if name == "time.now_ns" && !matches!(value, Value::Number(_)) {
                return None;
            }
            list.push((args, value));
        }
        out.push((name.clone(), list));
    }
    Some(out)
}

/// Installs the non-deterministic built-ins on `engine`, answering from `ctx`.
pub fn install(engine: &mut regorus::Engine, ctx: &Arc<Mutex<NdContext>>) -> anyhow::Result<()> {
    for (name, nargs) in ND {
        let ctx = ctx.clone();
        engine.add_extension(
            name.to_string(),
            nargs,
            Box::new(move |args: Vec<Value>| {
                let mut c = ctx.lock().unwrap_or_else(|p| p.into_inner());
                match c.answer(name, &args) {
                    Some(v) => Ok(v),
                    None => anyhow::bail!(
                        "{name}: no value recorded for these arguments in the event's \
                         nd_builtin_cache (non-deterministic built-ins are replayed, never called)"
                    ),
                }
            }),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_from_the_cache_else_the_timestamp() {
        let mut c = NdContext::default();
        c.set(42, None);
        assert_eq!(c.answer("time.now_ns", &[]), Some(Value::from(42i128)));
        assert!(!c.missed);
        assert_eq!(
            c.answer("rand.intn", &[Value::from("x"), Value::from(10u64)]),
            None
        );
        assert!(c.missed);

        let cache: Json =
            serde_json::from_str(r#"{"time.now_ns": {"[]": 7}, "rand.intn": {"[\"x\", 10]": 3}}"#)
                .unwrap();
        c.set(42, Some(&cache));
        assert_eq!(c.answer("time.now_ns", &[]), Some(Value::from(7u64)));
        assert_eq!(
            c.answer("rand.intn", &[Value::from("x"), Value::from(10u64)]),
            Some(Value::from(3u64))
        );
        assert!(!c.missed);
        assert_eq!(
            c.answer("rand.intn", &[Value::from("y"), Value::from(10u64)]),
            None
        );
        assert!(c.missed);
    }

    #[test]
    fn a_cache_of_the_wrong_shape_fails_every_call() {
        let mut c = NdContext::default();
        for bad in [
            r#"[1]"#,
            r#""x""#,
            r#"{"time.now_ns": 5}"#,
            r#"{"time.now_ns": {"[]": "soon"}}"#,
            r#"{"rand.intn": {"not json": 1}}"#,
            r#"{"rand.intn": {"{}": 1}}"#,
        ] {
            let cache: Json = serde_json::from_str(bad).unwrap();
            c.set(42, Some(&cache));
            assert_eq!(c.answer("time.now_ns", &[]), None, "{bad}");
            assert!(c.missed);
        }
    }
}
