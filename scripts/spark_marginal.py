#!/usr/bin/env python3
"""Marginal cost of a replay on Spark ``local[2]`` against the CLI (issue 25, item 4).

Usage: scripts/spark_marginal.py --proof target/release/proof --input BIG.jsonl
       [--rounds 3]

Both replay lksg.v1 -> lksg.v2 with the three fixture lists and ``--rollout 25``, on a
1 000-line head of the input (tiny) and on the whole input. The CLI runs as whole
commands (``--threads 2``); Spark runs inside one warm session (``proof_replay.spark.
replay``), so JVM and session start are left out. Marginal = big - tiny, best of the
rounds, in wall time and in CPU time of the whole process tree (driver, JVM, Python
workers, read from /proc). Needs the package installed (``pip install '.[spark]'``).
A benchmark, not a test: it prints, it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures"
TICK = os.sysconf("SC_CLK_TCK")


def settings() -> dict:
    return {
        "policy_dir": str(FIX / "policies"),
        "policy": "lksg.v1",
        "candidate_policy": "lksg.v2",
        "lists": {
            "sanctions": FIX / "lists/sanctions.csv",
            "ubo_watchlist": FIX / "lists/ubo_watchlist.txt",
            "high_risk": FIX / "lists/high_risk_countries.txt",
        },
        "rollout": 25,
    }


def tree_cpu(root: int) -> float:
    """CPU seconds of `root` and its descendants, alive or reaped."""
    stats = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            raw = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        stats[int(d)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
        todo += [p for p, (ppid, _) in stats.items() if ppid == pid]
    return total / TICK


def cli(proof: str, path: Path, out: Path) -> tuple[float, float]:
    argv = [proof, "replay", str(path), "--threads", "2", "-q", "--out", str(out)]
    s = settings()
    argv += ["--policy-dir", s["policy_dir"], "--policy", s["policy"]]
    argv += ["--candidate-policy", s["candidate_policy"], "--rollout", "25"]
    for name, p in s["lists"].items():
        argv += ["--list", f"{name}={p}"]
    t0, r0 = time.perf_counter(), os.times()
    subprocess.run(argv, check=False, stdout=subprocess.DEVNULL)
    r1 = os.times()
    return time.perf_counter() - t0, (r1.children_user - r0.children_user) + (
        r1.children_system - r0.children_system
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--proof", required=True)
    ap.add_argument("--input", required=True, type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()

    from pyspark.sql import SparkSession

    from proof_replay import spark as ps

    with tempfile.TemporaryDirectory() as tmp:
        tiny = Path(tmp) / "tiny.jsonl"
        with a.input.open("rb") as f, tiny.open("wb") as t:
            for _, line in zip(range(1000), f):
                t.write(line)
        out = Path(tmp) / "out"

        best = {}
        for _ in range(a.rounds):
            for name, path in (("tiny", tiny), ("big", a.input)):
                w, c = cli(a.proof, path, out)
                old = best.get(("cli", name), (9e9, 9e9))
                best[("cli", name)] = (min(old[0], w), min(old[1], c))

        session = (
            SparkSession.builder.master("local[2]")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        me = os.getpid()
        ps.replay(session, [str(tiny)], **settings())  # warm-up
        ps.replay(session, [str(a.input)], **settings())
        for _ in range(a.rounds):
            for name, path in (("tiny", tiny), ("big", a.input)):
                c0, t0 = tree_cpu(me), time.perf_counter()
                ps.replay(session, [str(path)], **settings())
                w, c = time.perf_counter() - t0, tree_cpu(me) - c0
                old = best.get(("spark", name), (9e9, 9e9))
                best[("spark", name)] = (min(old[0], w), min(old[1], c))
        session.stop()

    load = os.getloadavg()
    print(f"{a.input.name}, best of {a.rounds}; load average {load[0]:.2f} at the end")
    print("| run | tiny wall | big wall | marginal wall | marginal CPU |")
    print("|---|---|---|---|---|")
    for who in ("cli", "spark"):
        (tw, tc), (bw, bc) = best[(who, "tiny")], best[(who, "big")]
        label = "CLI `--threads 2` (whole command)" if who == "cli" else "Spark `local[2]` (warm session)"
        print(f"| {label} | {tw:.2f} s | {bw:.2f} s | {bw - tw:.2f} s | {bc - tc:.2f} s |")
    (tw, _), (bw, _) = best[("cli", "tiny")], best[("cli", "big")]
    (sw, _), (sb, _) = best[("spark", "tiny")], best[("spark", "big")]
    print(f"Spark's marginal wall time / the CLI's: {(sb - sw) / (bw - tw):.2f}x")


if __name__ == "__main__":
    main()
