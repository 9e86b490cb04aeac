#!/usr/bin/env python3
"""proof replay against the same job in hand-written DuckDB SQL (issue 15).

    python3 scripts/duckdb/compare.py --proof target/release/proof --input FILE.jsonl \
        [--parquet FILE.parquet] [--runs 3] [--threads 2] [--jsonl-reader ndjson|text]

For each input, runs `proof replay` (lksg.v1 shadow, lksg.v2 candidate, the three
fixture lists, --rollout 25, 5m windows) and scripts/duckdb/lksg.sql, checks that
DuckDB's per-window rows equal proof's windows.csv digit for digit (and that the
verdict, drift-kind and drift-cause totals equal report.json's), then times both,
alternating, and prints a Markdown table of the best of --runs runs.

Installs nothing: run it with a Python that has the `duckdb` package (scripts/bench.sh
with DUCKDB=1 makes a venv under target/). Exit 1 names the first differing window
and column; exit 2 for usage errors or a missing duckdb module.
"""

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
LISTS = {
    "sanctions": ROOT / "fixtures/lists/sanctions.csv",
    "ubo_watchlist": ROOT / "fixtures/lists/ubo_watchlist.txt",
    "high_risk": ROOT / "fixtures/lists/high_risk_countries.txt",
}
WINDOW_MS = 300_000  # proof replay's default --window 5m
SALT = "lksg.v1"  # proof replay's default --salt: the baseline policy id
CSV_COLUMNS = [
    "window_start",
    "window_end",
    "rollout_percent",
    "requests",
    "drift_events",
    "drift_ratio",
    "breach",
]
CAUSES = ["audit_recency", "audit_score_min", "controls_threshold", "ubo_screened"]


def sql_str(s):
    """A SQL string literal."""
    return "'" + str(s).replace("'", "''") + "'"


def json_number(x):
    """A float as proof writes it (serde_json, i.e. ryu): shortest round-trip digits,
    positional between 1e-5 and 1e16, `0.0` for zero, else `1e-7` / `1.5e20`."""
    if x == 0:
        return "-0.0" if str(x).startswith("-") else "0.0"
    sign, digits, exp = Decimal(repr(x)).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0")
    exp += len(digits) - len(ds)
    n, kk = len(ds), len(ds) + exp
    if 0 <= exp and kk <= 16:
        s = ds + "0" * exp + ".0"
    elif 0 < kk <= 16:
        s = ds[:kk] + "." + ds[kk:]
    elif -5 < kk <= 0:
        s = "0." + "0" * -kk + ds
    elif n == 1:
        s = f"{ds}e{kk - 1}"
    else:
        s = f"{ds[0]}.{ds[1:]}e{kk - 1}"
    return ("-" if sign else "") + s


def duckdb_script(source_sql, path):
    """The statements for one input: settings, the source view, lists, the query."""
    source = source_sql.replace("@INPUT@", sql_str(path))
    main = (HERE / "lksg.sql").read_text()
    for name, file in LISTS.items():
        main = main.replace("@" + name.upper() + "@", sql_str(file))
    main = main.replace("@SALT@", sql_str(SALT)).replace("@WINDOW_MS@", str(WINDOW_MS))
    return source, main


def cpu(who):
    """User + system CPU seconds so far of this process or of its waited-for children."""
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def run_duckdb(duckdb, source, main, threads):
    """One DuckDB run from a fresh in-memory database, in this process; returns
    (seconds, CPU seconds, rows, column names)."""
    c = cpu(resource.RUSAGE_SELF)
    t = time.perf_counter()
    con = duckdb.connect(config={"threads": threads})
    con.execute("SET TimeZone = 'UTC'")
    con.execute(source)
    cur = con.execute(main)
    rows = cur.fetchall()
    names = [d[0] for d in cur.description]
    con.close()
    return time.perf_counter() - t, cpu(resource.RUSAGE_SELF) - c, rows, names


def proof_cmd(proof, path, threads, out):
    """The job scripts/bench.sh times."""
    cmd = [str(proof), "replay", str(path), "--policy", "lksg.v1",
           "--candidate-policy", "lksg.v2"]
    for name, file in LISTS.items():
        cmd += ["--list", f"{name}={file}"]
    return cmd + ["--rollout", "25", "--threads", str(threads), "-q", "--out", str(out)]


def run_proof(cmd):
    """One proof run; returns (seconds, CPU seconds); exit 1, a breached gate, is a
    result."""
    c = cpu(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    rc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL).returncode
    dt = time.perf_counter() - t
    if rc not in (0, 1):
        sys.exit(f"proof exited {rc}: {' '.join(cmd)}")
    return dt, cpu(resource.RUSAGE_CHILDREN) - c


def check(label, rows, names, out):
    """DuckDB's rows against proof's windows.csv and report.json; exits 1 on the
    first difference."""
    with open(out / "windows.csv", newline="") as f:
        want = list(csv.reader(f))
    if want[0] != CSV_COLUMNS:
        sys.exit(f"{label}: windows.csv header {want[0]} is not {CSV_COLUMNS}")
    want = want[1:]
    ix = {n: i for i, n in enumerate(names)}
    got = []
    for r in rows:
        cells = []
        for c in CSV_COLUMNS:
            v = r[ix[c]]
            if c == "drift_ratio":
                cells.append(json_number(v))
            elif c == "breach":
                cells.append("true" if v else "false")
            else:
                cells.append(str(v))
        got.append(cells)
    for n, (g, w) in enumerate(zip(got, want)):
        if g != w:
            col = next(c for c, a, b in zip(CSV_COLUMNS, g, w) if a != b)
            sys.exit(
                f"{label}: windows.csv row {n + 2} (window {w[0]}, level {w[2]}) differs "
                f"in {col}: proof {w[CSV_COLUMNS.index(col)]}, "
                f"DuckDB {g[CSV_COLUMNS.index(col)]}"
            )
    if len(got) != len(want):
        who, extra = ("proof", want) if len(want) > len(got) else ("DuckDB", got)
        row = extra[min(len(got), len(want))]
        sys.exit(f"{label}: proof has {len(want)} windows.csv rows, DuckDB {len(got)}; "
                 f"the first row only {who} has: window {row[0]}, level {row[2]}")

    # Totals: every window row of a level repeats the per-window sums, so take level 0.
    first = [r for r in rows if r[ix["rollout_percent"]] == 0]
    total = {n: sum(r[ix[n]] for r in first) for n in names[7:]}
    requests = sum(r[ix["requests"]] for r in first)
    rep = json.loads((out / "report.json").read_text())
    cause = {c["cause"]: c["events"] for c in rep["drift"]["by_cause"]}
    kind = rep["drift"]["by_kind"]
    pairs = [
        ("records.evaluated", rep["records"]["evaluated"], requests),
        ("verdicts.shadow.fail", rep["verdicts"]["shadow"]["fail"], total["shadow_fail"]),
        ("verdicts.shadow.ok", rep["verdicts"]["shadow"]["ok"], requests - total["shadow_fail"]),
        ("verdicts.enforced.fail", rep["verdicts"]["enforced"]["fail"], total["enforced_fail"]),
        ("verdicts.enforced.ok", rep["verdicts"]["enforced"]["ok"],
         requests - total["enforced_fail"]),
        ("verdicts.shadow.warn", rep["verdicts"]["shadow"]["warn"], 0),
        ("verdicts.enforced.warn", rep["verdicts"]["enforced"]["warn"], 0),
        ("drift.by_kind.ok->fail", kind.get("ok->fail", 0), total["ok_to_fail"]),
        ("drift.by_kind.fail->ok", kind.get("fail->ok", 0), total["fail_to_ok"]),
        ("drift.by_kind (other kinds)",
         sum(v for k, v in kind.items() if k not in ("ok->fail", "fail->ok")), 0),
        ("drift.by_cause (causes outside lksg.sql)",
         sum(v for k, v in cause.items() if k not in CAUSES), total["c_none"]),
    ] + [(f"drift.by_cause.{c}", cause.get(c, 0), total["c_" + c]) for c in CAUSES]
    for what, p, d in pairs:
        if p != d:
            sys.exit(f"{label}: report.json {what}: proof {p}, DuckDB {d}")
    return len(want), requests


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--proof", required=True, help="proof binary")
    ap.add_argument("--input", required=True, help="JSONL log (proof gen)")
    ap.add_argument("--parquet", help="the same records as Parquet, context a JSON string")
    ap.add_argument("--runs", type=int, default=3, help="alternating runs per tool (best kept)")
    ap.add_argument("--threads", type=int, default=2, help="threads for both tools")
    ap.add_argument("--jsonl-reader", choices=["ndjson", "text"], default="ndjson",
                    help="DuckDB reads JSONL with read_ndjson (explicit columns) or as "
                    "lines of text parsed by from_json")
    args = ap.parse_args()
    try:
        import duckdb
    except ImportError:
        print("compare.py: no `duckdb` module in this Python; install it into a venv "
              "(scripts/bench.sh with DUCKDB=1 does)", file=sys.stderr)
        sys.exit(2)
    if args.runs < 1 or args.threads < 1:
        sys.exit("compare.py: --runs and --threads must be at least 1")
    proof = Path(args.proof).resolve()
    jsonl_sql = "source_jsonl.sql" if args.jsonl_reader == "ndjson" else "source_jsonl_text.sql"
    inputs = [("JSONL", Path(args.input).resolve(), jsonl_sql)]
    if args.parquet:
        inputs.append(("Parquet, JSON-string context", Path(args.parquet).resolve(),
                       "source_parquet.sql"))
    table = []
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="proof-duckdb-") as tmp:
        for label, path, source_file in inputs:
            out = Path(tmp) / f"out-{len(table)}"
            cmd = proof_cmd(proof, path, args.threads, out)
            source, sql = duckdb_script((HERE / source_file).read_text(), path)
            best = None  # (proof s, DuckDB s, proof CPU s, DuckDB CPU s), each the minimum
            for i in range(args.runs):
                p, p_cpu = run_proof(cmd)
                d, d_cpu, rows, names = run_duckdb(duckdb, source, sql, args.threads)
                if i == 0:
                    n_rows, requests = check(f"{label} ({path.name})", rows, names, out)
                    print(f"{label}: {path.name}: DuckDB equals proof on {n_rows} windows.csv "
                          f"rows ({requests} evaluated records) and the report.json totals",
                          file=sys.stderr, flush=True)
                now = (p, d, p_cpu, d_cpu)
                best = now if best is None else tuple(map(min, best, now))
            table.append((label, *best))
    load_end = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"DuckDB {duckdb.__version__}, {args.threads} threads each, best of {args.runs} "
          f"alternating runs; load average {load_start} at the start, {load_end} at the end")
    print()
    print("| input | proof | DuckDB | ratio | proof CPU | DuckDB CPU | CPU ratio |")
    print("|---|---|---|---|---|---|---|")
    for label, p, d, pc, dc in table:
        print(f"| {label} | {p:.2f} s | {d:.2f} s | {d / p:.1f}× "
              f"| {pc:.2f} s | {dc:.2f} s | {dc / pc:.1f}× |")


if __name__ == "__main__":
    main()
