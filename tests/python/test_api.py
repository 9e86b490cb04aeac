"""The Python API without Spark: fold (JSONL lines and pyarrow batches), merge,
report, write_reports, and errors that carry the CLI's message and exit code."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

import proof_replay as pr

from conftest import SETTINGS, cli_report, fixed, run_cli

# Three records in window 10:00-10:05, one in 10:05-10:10, one of another policy,
# one rejected: read 6 = evaluated 4 + rejected 1 + skipped 1.
LINES = [
    '{"ts": "2026-11-02T10:00:00Z", "request_id": "r1", "context": {}}',
    '{"ts": "2026-11-02T10:01:00Z", "request_id": "r2", "context": {}}\n',
    b'{"ts": "2026-11-02T10:04:59.999Z", "request_id": "r3", "context": {}}',
    b'{"ts": 1793613900000, "request_id": "r4", "context": {}}',  # 10:05:00Z
    '{"ts": "2026-11-02T10:02:00Z", "request_id": "r5", "policy_id": "other", "context": {}}',
    "{oops",
]


def test_fold_lines_counts_by_hand():
    part = pr.fold(LINES, source="mem.jsonl", **SETTINGS)
    rep = pr.report(part, max_rejects=1, **SETTINGS)
    assert rep["records"] == {
        "read": 6,
        "evaluated": 4,
        "rejected": 1,
        "skipped": 1,
        "rejected_by_reason": {"malformed": 1},
        "skipped_by_reason": {"other_policy": 1},
        "bucket_key_missing": 0,
    }
    assert [(w["start"], w["requests"]) for w in rep["windows"]] == [
        ("2026-11-02T10:00:00Z", 3),
        ("2026-11-02T10:05:00Z", 1),
    ]
    assert rep["rejections"] == [{"file": "mem.jsonl", "line": 6, "reason": "malformed"}]
    assert rep["gate"]["exit_code"] == 0
    # One more reject than allowed: exit 3, as the CLI.
    assert pr.report(part, max_rejects=0)["gate"]["exit_code"] == 3


def test_batches_and_merge_equal_one_fold(day, tmp_path):
    """Arrow batches of the Parquet day, folded in three parts and merged in another
    order, give the CLI's report on that file."""
    import pyarrow.parquet as pq

    table = pq.read_table(day["parquet"])
    batches = table.to_batches(max_chunksize=7000)
    thirds = [batches[0::3], batches[1::3], batches[2::3]]
    parts = [pr.fold(b, source=f"part{i}", **SETTINGS) for i, b in enumerate(thirds)]
    merged = pr.merge([parts[2], parts[0], parts[1]])
    cli, _ = cli_report(day["parquet"], tmp_path)
    assert fixed(pr.report(merged, **SETTINGS)) == fixed(cli)
    # The merge order does not matter.
    assert pr.merge(parts) == merged
    # A Table folds too, and write_reports returns the gate's exit code.
    code = pr.write_reports(pr.fold(table, **SETTINGS), tmp_path / "out", **SETTINGS)
    assert code == cli["gate"]["exit_code"]
    assert fixed(json.loads((tmp_path / "out" / "report.json").read_text())) == fixed(cli)


def test_bad_setting_raises_the_clis_message():
    with pytest.raises(pr.UsageError) as e:
        pr.fold([], **{**SETTINGS, "drift_max": 2})
    cli = run_cli("replay", "-", "--ir", "x", "--drift-max", "2")
    assert cli.returncode == 2
    assert str(e.value) in cli.stderr
    assert e.value.exit_code == 2
    with pytest.raises(pr.UsageError, match="unexpected argument '--colour'"):
        pr.fold([], colour="red", **SETTINGS)


def test_missing_files_and_ir_errors(tmp_path):
    with pytest.raises(pr.ConfigError) as e:
        pr.fold([], ir="no/such.ir.json")
    assert str(e.value).startswith("no/such.ir.json: ")
    assert e.value.exit_code == 2
    with pytest.raises(pr.IrError):
        # Valid JSON, but no IR.
        (tmp_path / "bad.ir.json").write_text('{"policy_id": "p", "rules": 3}')
        pr.fold([], ir=str(tmp_path / "bad.ir.json"))


def test_a_bare_text_is_refused_not_read_character_by_character():
    text = "\n".join(line if isinstance(line, str) else line.decode() for line in LINES)
    for bare in (text, text.encode()):
        with pytest.raises(pr.UsageError) as e:
            pr.fold(bare, **SETTINGS)
        assert "give an iterable of JSONL lines (such as text.splitlines())" in str(e.value)
        assert e.value.exit_code == 2
    # What the message suggests reads the six records.
    rep = pr.report(pr.fold(text.splitlines(), **SETTINGS), max_rejects=1, **SETTINGS)
    assert rep["records"]["read"] == 6


def test_a_struct_context_nested_past_128_levels_is_a_schema_error():
    def batch(levels):
        v = pa.array([{"x": [1, 2]}])
        for _ in range(levels):
            lists = pa.ListArray.from_arrays(pa.array([0, 1], pa.int32()), v)
            v = pa.StructArray.from_arrays([lists], ["a"])
        return pa.record_batch({"ts": [1793613600000], "request_id": ["r"], "context": v})

    # 2 x 63 + 2 = 128 levels are read; 130 are refused before any row is.
    rep = pr.report(pr.fold([batch(63)], **SETTINGS), **SETTINGS)
    assert rep["records"]["evaluated"] == 1
    with pytest.raises(pr.SchemaError) as e:
        pr.fold([batch(64)], source="deep.parquet", **SETTINGS)
    assert str(e.value).startswith(
        "deep.parquet: schema error: column 'context' nests structs and lists 130 levels "
        "deep; proof reads at most 128"
    )


def test_missing_column_raises_schema_error():
    batch = pa.record_batch({"ts": [1], "request_id": ["r"]})
    with pytest.raises(pr.SchemaError) as e:
        pr.fold([batch], source="mem.parquet", **SETTINGS)
    assert str(e.value) == (
        "mem.parquet: schema error: missing required column 'context' (JSON string or "
        "struct); columns present: ts, request_id"
    )
    assert e.value.exit_code == 2


def test_merge_refuses_other_settings_and_broken_partials():
    a = pr.fold(LINES[:2], **SETTINGS)
    b = pr.fold(LINES[2:], **{**SETTINGS, "salt": "other"})
    with pytest.raises(pr.ProofError, match="salt") as e:
        pr.merge([a, b])
    assert e.value.exit_code == 2
    with pytest.raises(pr.ConfigError, match="truncated|corrupt"):
        pr.merge([a[:-10]])
    with pytest.raises(pr.ConfigError, match="not a proof partial"):
        pr.report(b"hello")


def test_opa_events_fold_as_the_cli_replays_them(tmp_path):
    """OPA decision events (SPEC §12) through the front door: the conformance case's
    47 lines with its two bundles, as `proof replay` counts them; a Parquet schema is
    checked against the OPA event columns when the job spec is an OPA one."""
    from conftest import FIX
    from proof_replay import _native

    opa = FIX / "conformance" / "opa"
    settings = {"bundle": str(opa / "shop-v1"), "candidate_bundle": str(opa / "shop-v2.tar.gz"),
                "rollout": 50, "drift_max": 0.1, "max_rejects": 2, "max_unfaithful_ratio": 0.05}
    lines = (opa / "decisions.jsonl").read_bytes().splitlines()
    rep = pr.report(pr.fold(lines, source="decisions.jsonl", **settings), **settings)
    out = tmp_path / "cli"
    p = run_cli("replay", str(opa / "decisions.jsonl"), *pr.flags(settings), "--out", str(out), "-q")
    cli = json.loads((out / "report.json").read_text())
    assert rep["gate"]["exit_code"] == p.returncode == 1
    assert rep["records"]["read"] == 47 and rep["records"]["evaluated"] == 44
    assert fixed(rep) == fixed(cli)
    assert rep["fidelity"] == cli["fidelity"]
    spec = _native.prepare(pr.flags(settings))
    with pytest.raises(pr.SchemaError) as e:
        _native.check_schema(pa.schema([("decision_id", pa.string())]), "e.parquet", spec)
    assert "missing required column 'timestamp' of an OPA decision event" in str(e.value)


def test_blank_lines_are_the_clis(tmp_path):
    """Only JSON whitespace makes a line blank (not a record), as in the CLI's reader:
    a line holding a form feed is a record, rejected as malformed."""
    lines = [LINES[0], b"  \t\r", b"\x0c", LINES[1]]
    rep = pr.report(pr.fold(lines, source="mem.jsonl", **SETTINGS), max_rejects=5, **SETTINGS)
    log = tmp_path / "blank.jsonl"
    log.write_bytes(b"\n".join(x if isinstance(x, bytes) else x.rstrip("\n").encode() for x in lines) + b"\n")
    cli, _ = cli_report(log, tmp_path, max_rejects=5)
    assert rep["records"] == cli["records"]
    assert rep["records"]["read"] == 3
    assert rep["records"]["rejected_by_reason"] == {"malformed": 1}
    assert [(x["line"], x["reason"]) for x in rep["rejections"]] == [(3, "malformed")]
