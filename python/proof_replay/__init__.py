"""proof's replay engine on Arrow data (and, in :mod:`proof_replay.spark`, on Spark).

Fold records into a *partial aggregate* (bytes, SPEC §10), merge partials, and turn
one into the reports ``proof replay`` writes::

    import proof_replay as pr
    part = pr.fold(batches, ir="base.ir.json", candidate_ir="cand.ir.json")
    rep = pr.report(pr.merge([part, other]), rollout=10, drift_max=0.01)
    code = pr.write_reports(part, "out/", rollout=10)   # 0, 1 or 3, like the CLI

Settings are keyword arguments named like the flags of ``proof replay``
(``candidate_ir=`` for ``--candidate-ir``) and are parsed by the CLI's own parsers,
so they accept the same values and fail with the same messages. ``lists`` takes a
dict ``{name: path}``, ``levels`` a list or ``"0,1,5"``, ``redact_ids`` a bool.
OPA decision events (SPEC §12) take ``bundle=`` and ``candidate_bundle=`` (a directory
or a ``.tar.gz``) instead of the policy settings: ``pr.fold(lines, bundle="v1/",
candidate_bundle="v2.tar.gz")``; on Spark the driver ships the bundles' files to the
executors.

Errors raise :class:`ProofError` subclasses carrying the CLI's message and its
``exit_code`` (2: usage, config, IR, schema). Gate outcomes are not errors: the
report's ``gate.exit_code`` (and :func:`write_reports`' return value) is 0, 1 or 3.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Mapping

from . import _native
from ._native import (
    ConfigError,
    IrError,
    LimitError,
    ProofError,
    SchemaError,
    UsageError,
)

__all__ = [
    "ConfigError",
    "IrError",
    "LimitError",
    "ProofError",
    "SchemaError",
    "UsageError",
    "flags",
    "fold",
    "merge",
    "report",
    "write_reports",
]

__version__ = _native.VERSION

# Class-level default, so `except ProofError as e: e.exit_code` works on any of them.
for _cls in (ProofError, UsageError, ConfigError, IrError, SchemaError, LimitError):
    _cls.exit_code = 2

# Lines handed to the engine per call: large enough that the call overhead vanishes,
# small enough that a generator's memory stays bounded.
_LINES_PER_CALL = 8192


def flags(settings: Mapping[str, Any]) -> list[str]:
    """Keyword settings as the flags of ``proof replay`` (``drift_max=0.01`` ->
    ``["--drift-max", "0.01"]``). ``None`` and ``False`` leave a flag out."""
    argv: list[str] = []
    for key, value in settings.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if key == "lists":
            items = value.items() if isinstance(value, Mapping) else None
            if items is None:
                # Already NAME=FILE strings.
                for spec in value:
                    argv += ["--list", os.fspath(spec)]
            else:
                for name, path in items:
                    argv += ["--list", f"{name}={os.fspath(path)}"]
        elif value is True:
            argv.append(flag)
        elif key == "levels" and not isinstance(value, str):
            argv += [flag, ",".join(str(int(v)) for v in value)]
        elif isinstance(value, os.PathLike):
            argv += [flag, os.fspath(value)]
        else:
            argv += [flag, str(value)]
    return argv


def _is_batch(item: Any) -> bool:
    return hasattr(item, "__arrow_c_array__") or type(item).__name__ == "RecordBatch"


def feed(folder: "_native.Folder", data: Any, source: str | None = None) -> None:
    """Folds ``data`` into ``folder``: a pyarrow RecordBatch, Table or
    RecordBatchReader, or an iterable of batches or of JSONL lines (bytes or str, one
    record each, a trailing newline allowed)."""
    if isinstance(data, (str, bytes, bytearray, memoryview)):
        # Iterated, a bare text is characters or byte values: every one of them would be
        # rejected as a malformed record, and the real records never read.
        raise UsageError(
            f"cannot fold a bare {type(data).__name__}: give an iterable of JSONL lines "
            "(such as text.splitlines()) or pyarrow RecordBatches"
        )
    if hasattr(data, "to_batches"):  # pyarrow.Table
        data = data.to_batches()
    elif _is_batch(data):
        data = [data]
    lines: list[bytes] = []

    def flush() -> None:
        if lines:
            folder.add_lines(lines, source or "<lines>")
            lines.clear()

    for item in data:
        if isinstance(item, str):
            lines.append(item.encode("utf-8", "surrogateescape"))
        elif isinstance(item, (bytes, bytearray, memoryview)):
            lines.append(bytes(item))
        elif hasattr(item, "to_batches"):
            flush()
            for b in item.to_batches():
                folder.add_batch(b, source or "<arrow>")
        elif _is_batch(item):
            flush()
            folder.add_batch(item, source or "<arrow>")
        else:
            raise UsageError(
                f"cannot fold a {type(item).__name__}: give pyarrow RecordBatches or "
                "JSONL lines (bytes or str)"
            )
        if len(lines) >= _LINES_PER_CALL:
            flush()
    flush()


def fold(data: Any, *, source: str | None = None, **settings: Any) -> bytes:
    """Replays ``data`` (see :func:`feed`) under the settings of ``proof replay``
    (``ir=`` or ``policy=`` is required) and returns the partial aggregate (bytes).

    Rejections name ``source`` (default ``<arrow>`` for batches, ``<lines>`` for
    lines) and the 1-based row or line within it."""
    folder = _native.Folder(flags(settings))
    feed(folder, data, source)
    return folder.partial()


def merge(partials: Iterable[bytes]) -> bytes:
    """Merges partials into one; refused (ConfigError/UsageError, exit code 2,
    naming the differing field) unless they were replayed with the same policies,
    selectors, weights, lists, salt and window."""
    return _native.merge([bytes(p) for p in partials])


def report(partial: bytes, **gate: Any) -> dict:
    """report.json of a partial, as a dict, under the gate settings of ``proof
    merge`` (``rollout=``, ``drift_max=``, ``levels=``, ``min_requests=``,
    ``rollback_factor=``, ``max_rejects=``, ``confidence=``, ``plan=``)."""
    return json.loads(_native.report_json(bytes(partial), flags(gate)))


def write_reports(partial: bytes, out_dir: str | os.PathLike, **gate: Any) -> int:
    """Writes report.json, windows.csv, metrics.om, report.html, report.md and
    junit.xml into ``out_dir`` (and ``drift_details=FILE`` if given); returns the
    gate's exit code (0 passed, 1 breached, 3 rejects / nothing evaluable)."""
    return _native.write_reports(bytes(partial), os.fspath(out_dir), flags(gate))
