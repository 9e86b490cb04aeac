#!/usr/bin/env python3
"""Differential oracle for proof's OPA engine (SPEC §12): OPA's own Go evaluator.

Generates varied decision events for the gateway bundles in fixtures/opa/gateway-v1
and gateway-v2, evaluates each with OPA (the `opa-golib-python-bindings` wheel: OPA
as a shared library behind ctypes) on both bundles, with `time.now_ns` pinned by
`with time.now_ns as N` to the event's nd_builtin_cache value or its timestamp, and
writes one JSON line per event:

  {"event": {...}, "paths": [BASE, CAND], "expected": {"shadow", "enforced",
   "changed", "cause"}}   with BASE/CAND = {"value": v | absent, "package": {...}}

`expected` follows SPEC §12 from OPA's values alone: the verdict reading (and its
`verdict_type` evaluation errors), changed
values, and the cause over a reference graph of the gateway package written out by
hand below (read from the two policies, not from proof). tests/opa_oracle.rs checks
proof against every line.

The wheel declares Python >= 3.14 but its ctypes wrapper loads from older Pythons;
it is downloaded (no install) into target/opa-oracle/ and imported by path.
Exit code 77 = the wheel cannot be fetched (the caller skips, saying so).

Usage: scripts/opa_oracle.py [--events N] [--seed S] [--out FILE]
"""

import argparse
import glob
import json
import os
import random
import subprocess
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, "target", "opa-oracle")
PACKAGE = "gateway.authz"
SKIP = 77

# The gateway package's rules and the package rules each names (head, bodies, else),
# union of v1 and v2; functions marked. Read by eye from fixtures/opa/gateway-v*/.
GRAPH = {
    "allow": ({"deny"}, False),
    "user_roles": (set(), False),
    "is_admin": (set(), True),
    "versioned_api": (set(), False),
    "method_allowed": ({"is_admin", "versioned_api", "user_roles"}, False),
    "tier_limit": (set(), False),
    "within_limit": ({"tier_limit"}, False),
    "token_valid": ({"token_skew_ns"}, False),
    "token_skew_ns": (set(), False),
    "blocked": (set(), False),
    "deny": ({"token_valid", "method_allowed", "within_limit", "blocked"}, False),
    "status": ({"allow", "within_limit"}, False),
    "response": ({"allow", "status", "deny"}, False),
}


def load_opa():
    """Returns the OpaEngine class, fetching the wheel on first use."""
    pkg = os.path.join(CACHE, "pkg")
    if not os.path.exists(os.path.join(pkg, "opa_bindings", "engine.py")):
        wheel_dir = os.path.join(CACHE, "wheel")
        os.makedirs(wheel_dir, exist_ok=True)
        if not glob.glob(os.path.join(wheel_dir, "*.whl")):
            r = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--python-version", "3.14",
                 "--only-binary=:all:", "opa-golib-python-bindings", "-d", wheel_dir],
                capture_output=True, text=True)
            if r.returncode != 0:
                print("opa_oracle: cannot fetch opa-golib-python-bindings:\n" + r.stderr[-2000:],
                      file=sys.stderr)
                sys.exit(SKIP)
        wheel = sorted(glob.glob(os.path.join(wheel_dir, "*.whl")))[-1]
        with zipfile.ZipFile(wheel) as z:
            z.extractall(pkg)
    sys.path.insert(0, pkg)
    from opa_bindings.engine import OpaEngine  # noqa: E402
    return OpaEngine


def bundle_engine(OpaEngine, path):
    e = OpaEngine()
    for dirpath, _, files in os.walk(path):
        for f in sorted(files):
            full = os.path.join(dirpath, f)
            rel = os.path.relpath(full, path)
            if f.endswith(".rego"):
                with open(full) as fh:
                    e.add_policy(rel, fh.read())
            elif f == "data.json":
                with open(full) as fh:
                    e.add_data(json.load(fh), ".".join(os.path.dirname(rel).split(os.sep)) if os.path.dirname(rel) else "")
    return e


def rfc3339(ns):
    import datetime
    s, frac = divmod(ns, 10**9)
    d = datetime.datetime.fromtimestamp(s, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%09dZ" % frac


def gen_events(n, seed):
    rng = random.Random(seed)
    # Weighted toward requests that pass, so that drift has room to show.
    users = ["alice", "bob", "bob", "carol", "dave", "dave", "erin", "mallory"]
    methods = ["GET", "GET", "POST", "DELETE", "DELETE", "PUT"]
    paths = ["/api/v1/orders/17", "/api/v1/orders/17", "/api/v2/orders/9", "/api/v1/reports",
             "/api/v2/reports", "/internal/orders/1", "/api/v1/orders", "/api/v3/orders/x/y"]
    tiers = ["free", "free", "pro", "enterprise", "gold"]
    decisions = ["allow"] * 5 + ["deny"] * 2 + ["response"] * 2 + ["status"]
    t0 = 1794470400 * 10**9
    out = []
    for i in range(n):
        ts = t0 + rng.randrange(0, 86400 * 10**9)
        now = ts
        ev = {"decision_id": "g-%05d" % i, "path": "gateway/authz/" + rng.choice(decisions),
              "timestamp": rfc3339(ts)}
        if rng.random() < 0.15:
            now = ts + rng.randrange(0, 120 * 10**9)
            ev["nd_builtin_cache"] = {"time.now_ns": {"[]": now}}
        if rng.random() < 0.02:
            out.append((ev, now))
            continue
        tier = rng.choice(tiers)
        inp = {"user": rng.choice(users), "method": rng.choice(methods), "path": rng.choice(paths),
               "tier": tier, "ip": "10.6.6.6" if rng.random() < 0.08 else "10.0.0.%d" % rng.randrange(256)}
        limit = {"free": 100, "pro": 1000, "enterprise": 10000}.get(tier, 100)
        inp["requests_this_minute"] = rng.choice([rng.randrange(0, 50), rng.randrange(40, 110),
                                                  rng.randrange(0, limit + 20), limit])
        if rng.random() < 0.9:
            ahead = rng.choice([rng.randrange(-60, 90), rng.randrange(31, 3600)])
            inp["token"] = {"exp_ns": now + ahead * 10**9 + rng.randrange(10**9)}
        ev["input"] = inp
        out.append((ev, now))
    return out


def query(engine, ref, inp, now):
    """`ref` with the event's input and time.now_ns pinned. OPA prepares each distinct
    query string once, so both come in through a wrapper input and the query text stays
    fixed; without input (undefined) the pinned value is written into the query."""
    if inp is None:
        return engine.eval_query("x := %s with time.now_ns as %d" % (ref, now))
    return engine.eval_query("x := %s with input as input.i with time.now_ns as input.n" % ref,
                             {"i": inp, "n": now})


def same(a, b):
    """JSON equality with numbers numerically but booleans never equal to numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


UNDEF = object()


def same_or_undef(a, b):
    if a is UNDEF or b is UNDEF:
        return a is b
    return same(a, b)


def verdict(v):
    if v is UNDEF or v is False:
        return "fail"
    if v is True:
        return "ok"
    if isinstance(v, dict):
        for k in ("allowed", "allow"):
            if isinstance(v.get(k), bool):
                return "ok" if v[k] else "fail"
        return "fail"
    if isinstance(v, list):
        return "ok" if not v else "fail"
    return "fail"


def verdict_errors(v):
    """§12: a value with no verdict reading counts an evaluation error `verdict_type`."""
    if v is UNDEF or isinstance(v, (bool, list)):
        return []
    if isinstance(v, dict) and any(isinstance(v.get(k), bool) for k in ("allowed", "allow")):
        return []
    return ["verdict_type"]


def expand(rule):
    out, seen, stack = set(), set(), [rule]
    while stack:
        for n in GRAPH.get(stack.pop(), (set(), False))[0]:
            if GRAPH.get(n, (set(), False))[1]:
                if n not in seen:
                    seen.add(n)
                    stack.append(n)
            else:
                out.add(n)
    return out


def reachable(decision):
    d, stack = set(), [decision]
    while stack:
        for n in expand(stack.pop()):
            if n != decision and n not in d:
                d.add(n)
                stack.append(n)
    return d


def cause(decision, pkgs):
    if any(p is None for p in pkgs):
        return "(error)"
    def differs(r):
        return not same_or_undef(pkgs[0].get(r, UNDEF), pkgs[1].get(r, UNDEF))
    for r in sorted(reachable(decision)):
        if differs(r) and not any(differs(x) for x in expand(r)):
            return r
    return "(decision)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--out", default=os.path.join(CACHE, "oracle.jsonl"))
    ap.add_argument("--day", help="also write the events as a decision log, each with the "
                    "result OPA gives under gateway-v1 (the bundled example)")
    args = ap.parse_args()
    OpaEngine = load_opa()
    engines = [bundle_engine(OpaEngine, os.path.join(ROOT, "fixtures", "opa", b))
               for b in ("gateway-v1", "gateway-v2")]
    tmp = args.out + ".tmp"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    day = open(args.day + ".tmp", "w") if args.day else None
    with open(tmp, "w") as out:
        for ev, now in gen_events(args.events, args.seed):
            rule = ev["path"].rsplit("/", 1)[1]
            inp = ev.get("input")
            paths, values, pkgs = [], [], []
            for e in engines:
                rs = query(e, "data.%s.%s" % (PACKAGE, rule), inp, now)
                value = rs[0]["x"] if rs else UNDEF
                pkg = query(e, "data." + PACKAGE, inp, now)[0]["x"]
                p = {"package": pkg}
                if value is not UNDEF:
                    p["value"] = value
                paths.append(p)
                values.append(value)
                pkgs.append(pkg)
            v = [verdict(x) for x in values]
            exp = {"shadow": v[0], "enforced": v[1],
                   "changed": v[0] == v[1] and not same_or_undef(values[0], values[1]),
                   "cause": cause(rule, pkgs) if v[0] != v[1] else None,
                   "errors": [verdict_errors(x) for x in values]}
            out.write(json.dumps({"event": ev, "paths": paths, "expected": exp}) + "\n")
            if day:
                logged = dict(ev, labels={"app": "gateway"},
                              bundles={"gateway": {"revision": "gw-1"}})
                if values[0] is not UNDEF:
                    logged["result"] = values[0]
                day.write(json.dumps(logged, separators=(",", ":")) + "\n")
    os.replace(tmp, args.out)
    if day:
        day.close()
        os.replace(args.day + ".tmp", args.day)
    print("opa_oracle: %d events → %s" % (args.events, os.path.relpath(args.out, ROOT)))


if __name__ == "__main__":
    main()
