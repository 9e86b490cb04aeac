"""Shared fixtures: the `proof` binary, the bundled fixture day as plain JSONL and as
Parquet (written once per session), the replay settings both sides use, and one
Spark `local[2]` session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "fixtures"

# The bundled day replayed like the canary scenario (lksg.v1 served, lksg.v2 enforced
# at 10 %), as keyword settings and as the same flags for the CLI.
SETTINGS = {
    "policy": "lksg.v1",
    "candidate_policy": "lksg.v2",
    "policy_dir": str(FIX / "policies"),
    "lists": {
        "sanctions": str(FIX / "lists" / "sanctions.csv"),
        "ubo_watchlist": str(FIX / "lists" / "ubo_watchlist.txt"),
        "high_risk": str(FIX / "lists" / "high_risk_countries.txt"),
    },
    "window": "5m",
    "rollout": 10,
    "drift_max": 0.01,
    "min_requests": 100,
}

# Lines 21..27 of bad_lines.jsonl: malformed, bad_ts, missing_ts, a blank line (not a
# record), missing_request_id, missing_context, malformed (invalid UTF-8).
BAD_LINES = [
    b"not json",
    b'{"ts": "yesterday", "request_id": "b1", "context": {}}',
    b'{"request_id": "b2", "context": {}}',
    b"   ",
    b'{"ts": 1, "context": {}}',
    b'{"ts": 1, "request_id": "b3", "context": [1]}',
    b'{"ts": 1, "request_id": "\xff", "context": {}}',
]

# report.json keys SPEC §6 calls fixed (identical across runs, threads and splits).
FIXED = ("records", "verdicts", "drift", "levels", "windows", "gate")


def proof_bin() -> Path:
    if os.environ.get("PROOF_BIN"):
        return Path(os.environ["PROOF_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / "release" / "proof"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """`proof ARGS…`, output captured."""
    return subprocess.run(
        [str(proof_bin()), *args], capture_output=True, text=True, cwd=ROOT, check=False
    )


def cli_report(log: Path, tmp: Path, **overrides) -> tuple[dict, int]:
    """report.json and exit code of `proof replay LOG` with SETTINGS."""
    import proof_replay as pr

    out = tmp / "cli_out"
    p = run_cli("replay", str(log), *pr.flags({**SETTINGS, **overrides}), "--out", str(out), "-q")
    assert p.returncode in (0, 1, 3), p.stderr
    return json.loads((out / "report.json").read_text()), p.returncode


def fixed(report: dict) -> dict:
    return {k: report[k] for k in FIXED}


@pytest.fixture(scope="session")
def day(tmp_path_factory) -> dict:
    """The fixture day as plain JSONL, as Parquet (JSON-string context, several row
    groups) and as Parquet with a struct context; paths by name."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = tmp_path_factory.mktemp("day")
    jsonl = d / "lksg_day.jsonl"
    with pa.input_stream(str(FIX / "logs" / "lksg_day.jsonl.zst"), compression="zstd") as f:
        jsonl.write_bytes(f.read())
    ts, rid, pid, ctx = [], [], [], []
    for line in jsonl.read_bytes().splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue  # malformed lines have no row in a typed table
        if not (isinstance(r, dict) and isinstance(r.get("ts"), str) and isinstance(r.get("context"), dict)):
            continue
        ts.append(r["ts"])
        rid.append(r.get("request_id"))
        pid.append(r.get("policy_id"))
        ctx.append(json.dumps(r["context"]))
    # `proof gen`'s columns: ts as an RFC 3339 string is allowed by SPEC §4 and keeps
    # the records' own (possibly bad) timestamps for the engine to judge.
    table = pa.table({"ts": ts, "request_id": rid, "policy_id": pid, "context": ctx})
    parquet = d / "lksg_day.parquet"
    pq.write_table(table, parquet, row_group_size=8000)
    # A small file with one line of each rejection reason among good records.
    bad = d / "bad_lines.jsonl"
    head = jsonl.read_bytes().splitlines()[:50]
    bad.write_bytes(b"\n".join(head[:20] + BAD_LINES + head[20:]) + b"\n")
    # The whole day with the bad lines past line 40 000, in a later 4 MiB split.
    day_lines = jsonl.read_bytes().splitlines()
    bad_late = d / "bad_late.jsonl"
    bad_late.write_bytes(b"\n".join(day_lines[:40_000] + BAD_LINES + day_lines[40_000:]) + b"\n")
    no_ctx = d / "no_context.parquet"
    pq.write_table(table.drop_columns(["context"]).slice(0, 100), no_ctx)
    return {"jsonl": jsonl, "parquet": parquet, "no_context": no_ctx, "bad": bad, "bad_late": bad_late}


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    s = (
        SparkSession.builder.master("local[2]")
        .appName("proof-replay-tests")
        .config("spark.ui.enabled", "false")
        # Small splits: the ~20 MB day becomes several tasks, so the driver merges
        # several partials and JSONL lines of later splits need the counting pass.
        .config("spark.sql.files.maxPartitionBytes", str(4 << 20))
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()
