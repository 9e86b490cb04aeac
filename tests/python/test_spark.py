"""The bundled fixture day through a real Spark `local[2]` (not a mock), from JSONL
and from Parquet: report.json's fixed fields must equal the CLI's on the same file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import proof_replay as pr
from proof_replay import spark as prs

from conftest import FIX, ROOT, SETTINGS, cli_report, fixed, run_cli


def test_jsonl_through_spark_equals_cli(spark, day, tmp_path):
    cli, code = cli_report(day["jsonl"], tmp_path)
    rep = prs.replay(spark, [str(day["jsonl"])], out=str(tmp_path / "spark_out"), **SETTINGS)
    assert fixed(rep) == fixed(cli)
    # The day as hand-counted from the file: 60 000 lines, 132 of another policy.
    assert rep["records"]["read"] == 60_000
    assert rep["records"]["skipped"] == 132
    assert rep["gate"]["exit_code"] == code == 0
    # Every report file was written by the driver.
    names = sorted(p.name for p in (tmp_path / "spark_out").iterdir())
    assert names == ["gate.prom", "junit.xml", "metrics.om", "report.html", "report.json", "report.md",
                     "windows.csv"]
    # windows.csv is a pure function of the fixed fields: byte-identical.
    assert (tmp_path / "spark_out" / "windows.csv").read_bytes() == (
        tmp_path / "cli_out" / "windows.csv"
    ).read_bytes()


def test_jsonl_split_into_several_tasks_names_lines(spark, day, tmp_path):
    """The day spans several 4 MiB splits: several partials are merged into one input
    with the CLI's counts, and lines of later splits are named by their line in the
    file."""
    parts = prs.partials(spark, [str(day["bad_late"])], pr.flags({**SETTINGS, "max_rejects": 10}))
    assert len(parts) >= 2
    rep = pr.report(pr.merge(parts), **{**SETTINGS, "max_rejects": 10})
    cli, _ = cli_report(day["bad_late"], tmp_path, max_rejects=10)
    counts = lambda r: [  # noqa: E731
        (f["path"], f["read"], f["evaluated"], f["rejected"], f["skipped"]) for f in r["inputs"]["files"]
    ]
    assert counts(rep) == counts(cli) == [(str(day["bad_late"]), 60_006, 59_868, 6, 132)]
    # The six bad lines follow line 40 000 (the blank one is not a record).
    lines = lambda r: [(x["file"], x["line"], x["reason"]) for x in r["rejections"]]  # noqa: E731
    f = str(day["bad_late"])
    assert lines(rep) == lines(cli) == [
        (f, 40_001, "malformed"), (f, 40_002, "bad_ts"), (f, 40_003, "missing_ts"),
        (f, 40_005, "missing_request_id"), (f, 40_006, "missing_context"), (f, 40_007, "malformed"),
    ]
    assert fixed(rep) == fixed(cli)


def test_files_read_in_one_task_keep_the_clis_samples(spark, tmp_path):
    """Two files packed into one task, the larger (later by name) read first, each with
    more rejections than report.json keeps (100): the samples kept are the CLI's, the
    first 100 lines of the first file, whatever order the task read them in."""
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_bytes(b"oops\n" * 150)
    b.write_bytes(b"not json at all\n" * 150)
    conf = spark.conf
    saved = {k: conf.get(k) for k in ("spark.sql.files.openCostInBytes", "spark.sql.files.maxPartitionBytes")}
    conf.set("spark.sql.files.openCostInBytes", "0")
    conf.set("spark.sql.files.maxPartitionBytes", str(128 << 20))
    try:
        parts = prs.partials(spark, [str(a), str(b)], pr.flags({**SETTINGS, "max_rejects": 1000}))
    finally:
        for k, v in saved.items():
            conf.set(k, v)
    rep = pr.report(pr.merge(parts), **{**SETTINGS, "max_rejects": 1000})
    out = tmp_path / "cli_out"
    p = run_cli("replay", str(a), str(b), *pr.flags({**SETTINGS, "max_rejects": 1000}), "--out", str(out), "-q")
    assert p.returncode == 3, p.stderr
    cli = json.loads((out / "report.json").read_text())
    samples = lambda r: [(x["file"], x["line"], x["reason"]) for x in r["rejections"]]  # noqa: E731
    assert samples(rep) == samples(cli) == [(str(a), n, "malformed") for n in range(1, 101)]
    assert fixed(rep) == fixed(cli)


def test_rejections_and_reasons_are_the_clis(spark, day, tmp_path):
    """Each line goes through proof's own parser: the same reasons, counted the same,
    and named by file and line (the file fits one split, so lines are exact)."""
    cli, code = cli_report(day["bad"], tmp_path, max_rejects=10)
    rep = prs.replay(spark, [str(day["bad"])], **{**SETTINGS, "max_rejects": 10})
    assert fixed(rep) == fixed(cli)
    assert rep["records"]["rejected_by_reason"] == {
        "bad_ts": 1,
        "malformed": 2,
        "missing_context": 1,
        "missing_request_id": 1,
        "missing_ts": 1,
    }
    assert rep["records"]["read"] == 56  # 50 good lines, 6 rejected, the blank one not a record
    lines = lambda r: [(x["line"], x["reason"]) for x in r["rejections"]]  # noqa: E731
    assert lines(rep) == lines(cli) == [
        (21, "malformed"), (22, "bad_ts"), (23, "missing_ts"),
        (25, "missing_request_id"), (26, "missing_context"), (27, "malformed"),
    ]
    assert {x["file"] for x in rep["rejections"]} == {str(day["bad"])}


def test_parquet_through_spark_equals_cli(spark, day, tmp_path):
    cli, code = cli_report(day["parquet"], tmp_path)
    rep = prs.replay(spark, [str(day["parquet"])], **SETTINGS)
    assert fixed(rep) == fixed(cli)
    assert rep["records"]["read"] == cli["records"]["read"] > 59_000
    # Tasks over row groups of one file are listed as that one file, as by the CLI.
    assert [f["path"] for f in rep["inputs"]["files"]] == [str(day["parquet"])]
    assert rep["gate"]["exit_code"] == code


def test_missing_column_is_the_clis_schema_error(spark, day):
    p = run_cli("replay", str(day["no_context"]), *pr.flags(SETTINGS))
    assert p.returncode == 2
    cli_msg = p.stderr.strip().removeprefix("proof: error: ")
    assert "missing required column 'context'" in cli_msg
    with pytest.raises(pr.SchemaError) as e:
        prs.replay(spark, [str(day["no_context"])], **SETTINGS)
    assert str(e.value) == cli_msg
    assert e.value.exit_code == 2


def test_command_line_exit_codes_as_the_cli(day, tmp_path):
    """`python -m proof_replay.spark` end to end in its own Spark: a gate that the
    day breaches (every level, 0.1 %) exits 1 like `proof replay`, reports written."""
    strict = {**SETTINGS, "rollout": 100, "drift_max": 0.001}
    cli, code = cli_report(day["jsonl"], tmp_path, rollout=100, drift_max=0.001)
    assert code == 1
    out = tmp_path / "spark_cli_out"
    p = subprocess.run(
        [sys.executable, "-m", "proof_replay.spark", str(day["jsonl"]), *pr.flags(strict),
         "--master", "local[2]", "--out", str(out)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    assert p.returncode == code, p.stderr
    assert fixed(json.loads((out / "report.json").read_text())) == fixed(cli)
    # A bad flag value fails before Spark starts, with the CLI's message, exit 2.
    bad = subprocess.run(
        [sys.executable, "-m", "proof_replay.spark", str(day["jsonl"]), "--ir", "x.ir.json",
         "--window", "5 minutes"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    assert bad.returncode == 2
    assert "invalid value '5 minutes' for '--window <SPAN>'" in bad.stderr


def test_opa_events_through_spark_equal_cli(spark, tmp_path):
    """OPA decision events (SPEC §12) through two bundles on Spark: the driver ships
    the baseline directory and the candidate tarball as bytes, executors load them
    from their own temporary directory, and report.json equals `proof replay`'s on
    the same file (fixed fields, fidelity and the bundles' identities)."""
    import tarfile

    opa = FIX / "opa"
    cand = tmp_path / "gateway-v2.tar.gz"
    with tarfile.open(cand, "w:gz") as t:
        for p in sorted((opa / "gateway-v2").rglob("*")):
            if p.is_file():
                t.add(p, arcname=str(p.relative_to(opa / "gateway-v2")))
    settings = {
        "bundle": str(opa / "gateway-v1"),
        "candidate_bundle": str(cand),
        "window": "15m",
        "rollout": 10,
        "drift_max": 0.01,
        "bucket_key": "input.tenant",
    }
    day = opa / "day.jsonl"
    out = tmp_path / "cli_opa"
    p = run_cli("replay", str(day), *pr.flags(settings), "--out", str(out), "-q")
    assert p.returncode == 1, p.stderr
    cli = json.loads((out / "report.json").read_text())
    rep = prs.replay(spark, [str(day)], **settings)
    assert fixed(rep) == fixed(cli)
    assert rep["fidelity"] == cli["fidelity"]
    # The bundled day (`proof gen --bundle gateway-v1`): 3000 events, 17 erased, every
    # evaluated result reproduced by gateway-v1.
    assert rep["records"]["read"] == 3000
    assert rep["records"]["skipped_by_reason"] == {"redacted": 17}
    assert rep["fidelity"]["faithful"] == rep["fidelity"]["checked"] == 2983
    assert rep["drift"]["events"] == cli["drift"]["events"] > 0
    assert rep["config"] == cli["config"]
    # The bundles' revisions, digests and the driver's paths, as the CLI names them.
    for side in ("baseline", "candidate"):
        assert rep["inputs"][side] == cli["inputs"][side]
    assert rep["inputs"]["candidate"]["path"] == str(cand)
