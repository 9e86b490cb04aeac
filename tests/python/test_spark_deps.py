"""The Spark entry point on a machine without the `spark` extra: one line, exit 2,
before any SparkSession exists (issue 24 item 15). Loads spark.py with a stub native
module, so it runs without a built wheel, pyspark or pandas."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

SPARK_PY = Path(__file__).resolve().parents[2] / "python" / "proof_replay" / "spark.py"


def _load(monkeypatch):
    pkg = types.ModuleType("proof_replay")
    pkg.__path__ = []
    native = types.ModuleType("proof_replay._native")

    def describe(_argv):
        raise AssertionError("the flags were read before the dependency check")

    native.describe = describe
    pkg._native = native
    monkeypatch.setitem(sys.modules, "proof_replay", pkg)
    monkeypatch.setitem(sys.modules, "proof_replay._native", native)
    # pyspark must never be imported: a stub that fails the test if it is.
    monkeypatch.setitem(sys.modules, "pyspark", None)
    spec = importlib.util.spec_from_file_location("proof_replay_spark_under_test", SPARK_PY)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_missing_pandas_is_one_line_exit_2_before_spark(monkeypatch, capsys):
    mod = _load(monkeypatch)
    have = {"pyspark": "3.5.1", "pandas": None, "pyarrow": "15.0.2"}
    monkeypatch.setattr(mod, "_version_of", lambda n: have[n])
    assert mod.main(["traffic.jsonl", "--ir", "x.ir.json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "pandas>=2.2 (not installed)" in err and "'.[spark]'" in err, err


def test_old_pandas_is_named_with_its_version(monkeypatch):
    mod = _load(monkeypatch)
    have = {"pyspark": "3.5.1", "pandas": "1.5.3", "pyarrow": "15.0.2"}
    msg = mod.missing_dependencies(lambda n: have[n])
    assert "pandas>=2.2 (found 1.5.3)" in msg and "pyspark" not in msg.split(";")[0]
    have["pandas"] = "2.2.0"
    assert mod.missing_dependencies(lambda n: have[n]) is None
