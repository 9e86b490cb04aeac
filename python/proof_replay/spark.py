"""``proof replay`` on Apache Spark.

    python -m proof_replay.spark LOG... [the flags of proof replay] [--master URL] --out DIR

The driver parses the flags with the CLI's parsers and loads the policies, weights
and lists (errors exit 2 before any task runs); their bytes travel to the executors
in a broadcast, so executors need no file but the logs. Parquet logs go through
``mapInArrow`` (Arrow batches straight into the engine); JSONL logs through Spark's
text reader, each line into proof's own record parser, so rejections and their
reasons are the CLI's. Every task yields one partial aggregate (SPEC §10, a binary
column); the driver merges them and writes the reports, and the process exits as
``proof replay`` would (0, 1, 2 or 3).

Origins: a Parquet row is named by its file and 1-based row (Spark's
``_metadata.row_index``), a JSONL line by its file and 1-based line, as the CLI
names them. Spark does not tell how many lines come before a split of a large JSONL
file, so each split is folded into a partial of its own with its lines numbered from
1 and its line count; the driver adds the lines of the splits before it in the same
file (one pass over the text, no counting pass). Parts of one file merge into one
input, as in one run over the file.

From a notebook: ``proof_replay.spark.replay(spark, paths, **settings)`` returns
the report dict (and writes the reports when ``out=`` is given).
"""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Iterator, Sequence
from urllib.parse import unquote, urlparse

import proof_replay as pr
from proof_replay import _native

_PARTIAL_SCHEMA = "partial binary"
_PARQUET_EXT = (".parquet", ".pq")


def _shown(uri: str) -> str:
    """A local file's path as the user would write it; other URIs as they are."""
    u = urlparse(uri)
    return unquote(u.path) if u.scheme == "file" else uri


def _runs(column: Any) -> list[tuple[int, int]]:
    """[start, end) runs of equal consecutive values in an Arrow array."""
    import pyarrow.compute as pc

    n = len(column)
    if n == 0:
        return []
    if n == 1:
        return [(0, 1)]
    change = pc.not_equal(column.slice(1), column.slice(0, n - 1))
    cuts = [i + 1 for i in pc.indices_nonzero(change.fill_null(True)).to_pylist()]
    bounds = [0] + cuts + [n]
    return list(zip(bounds[:-1], bounds[1:]))


def _partial_batch(part: bytes) -> Any:
    import pyarrow as pa

    return pa.RecordBatch.from_arrays([pa.array([part], pa.binary())], names=["partial"])


def _fold_parquet(spec: Any) -> Any:
    def fold(batches: Iterator[Any]) -> Iterator[Any]:
        folder = _native.Folder.from_spec(spec.value)
        current = None
        for b in batches:
            files, rows = b.column("__proof_file"), b.column("__proof_row")
            for start, end in _runs(files):
                file = files[start].as_py()
                if current is not None and file != current:
                    # One partial per file: its bounded samples are the earliest of
                    # that file, whatever order the task read its files in.
                    yield _partial_batch(folder.take())
                current = file
                folder.add_batch(
                    b.slice(start, end - start),
                    _shown(file),
                    first_row=rows[start].as_py() + 1,
                    format="parquet",
                )
        yield _partial_batch(folder.take())

    return fold


_SPLIT_SCHEMA = "file string, start long, lines long, partial binary"


def _fold_text(spec: Any) -> Any:
    """Folds each split of a task into a partial of its own, its lines numbered from
    1: rows (file, split start, lines in the split, partial). A split's lines come in
    one run (Spark reads a task's splits one after the other), in one or more batches."""

    def fold(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa
        import pyarrow.compute as pc

        folder = _native.Folder.from_spec(spec.value)
        split, lines = None, 0

        def done() -> Any:
            part = folder.take()
            return pa.RecordBatch.from_arrays(
                [
                    pa.array([split[0]], pa.string()),
                    pa.array([split[1]], pa.int64()),
                    pa.array([lines], pa.int64()),
                    pa.array([part], pa.binary()),
                ],
                names=["file", "start", "lines", "partial"],
            )

        for b in batches:
            n = b.num_rows
            if n == 0:
                continue
            files, starts = b.column("__proof_file"), b.column("__proof_start")
            values = b.column("value")
            first = (files[0].as_py(), starts[0].as_py())
            if first == (files[n - 1].as_py(), starts[n - 1].as_py()):
                runs = [(0, n, first)]  # one split (splits do not come back)
            else:
                key = pc.binary_join_element_wise(files, pc.cast(starts, "string"), "@")
                runs = [(s, e, (files[s].as_py(), starts[s].as_py())) for s, e in _runs(key)]
            for start, end, key in runs:
                if key != split:
                    if split is not None:
                        yield done()
                    split, lines = key, 0
                folder.add_text(
                    values.slice(start, end - start), _shown(key[0]), first_line=lines + 1
                )
                lines += end - start
        if split is not None:
            yield done()

    return fold


def _first_lines(splits: Iterable[tuple[str, int, int]]) -> dict:
    """{(file, split start): the split's first 1-based line}: the lines of the splits
    before it in the same file, plus one."""
    by_file: dict = {}
    for file, start, n in splits:
        by_file.setdefault(file, []).append((start, n))
    first = {}
    for file, parts in by_file.items():
        line = 1
        for start, n in sorted(parts):
            first[(file, start)] = line
            line += n
    return first


def _is_parquet(path: str, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt == "parquet"
    return path.rstrip("/").lower().endswith(_PARQUET_EXT)


def _schema_source(paths: Sequence[str]) -> str:
    return paths[0] if len(paths) == 1 else ", ".join(paths)


def _arrow_schema(schema: Any) -> Any:
    """A Spark schema as a pyarrow schema (only the column types matter here)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    try:
        return to_arrow_schema(schema, timezone="UTC")
    except TypeError:  # pyspark 3.5 converts timestamps without a zone argument
        return to_arrow_schema(schema)


def partials(spark: Any, paths: Sequence[str], argv: Sequence[str], fmt: str | None = None) -> list[bytes]:
    """Runs the fold on Spark and returns the partials (driver-side list): one per
    JSONL split and one per Parquet file of a task, each naming lines and rows as the
    CLI does."""
    from pyspark.sql import functions as F
    spec = spark.sparkContext.broadcast(_native.prepare(list(argv)))
    parquet = [p for p in paths if _is_parquet(p, fmt)]
    text = [p for p in paths if not _is_parquet(p, fmt)]
    parts: list[bytes] = []
    if parquet:
        df = spark.read.parquet(*parquet)
        # The CLI's schema check, on the driver, before any task runs.
        _native.check_schema(_arrow_schema(df.schema), _schema_source(parquet), spec.value)
        df = df.select(
            "*",
            F.col("_metadata.file_path").alias("__proof_file"),
            F.col("_metadata.row_index").alias("__proof_row"),
        )
        parts += [bytes(r.partial) for r in df.mapInArrow(_fold_parquet(spec), _PARTIAL_SCHEMA).collect()]
    if text:
        # lineSep "\n": the CLI splits lines at \n only (a lone \r is not a line end).
        # As binary: a line that is not UTF-8 reaches the parser as its bytes (and is
        # rejected as malformed there), not as an invalid Arrow string.
        df = spark.read.option("lineSep", "\n").text(text).select(
            F.col("value").cast("binary").alias("value"),
            F.col("_metadata.file_path").alias("__proof_file"),
            F.col("_metadata.file_block_start").alias("__proof_start"),
        )
        rows = df.mapInArrow(_fold_text(spec), _SPLIT_SCHEMA).collect()
        first = _first_lines((r.file, r.start, r.lines) for r in rows)
        for r in rows:
            by = first[(r.file, r.start)] - 1
            part = bytes(r.partial)
            parts.append(_native.shift_lines(part, by) if by else part)
    if not parts:
        # No task ran (empty inputs): the part of no records.
        parts.append(_native.Folder.from_spec(spec.value).partial())
    return parts


def replay(spark: Any, paths: Iterable[str] | str, *, out: str | None = None, **settings: Any) -> dict:
    """Replays ``paths`` (files or directories Spark can read: local, ``s3a://``,
    ``hdfs://``...) on ``spark`` under the settings of ``proof replay`` given as
    keyword arguments (see :mod:`proof_replay`) and returns report.json as a dict;
    with ``out=DIR`` also writes the report set there. ``format="parquet"`` or
    ``"jsonl"`` applies to every path (default: by extension, ``.parquet``/``.pq``
    is Parquet)."""
    if isinstance(paths, str):
        paths = [paths]
    paths = list(paths)
    argv = pr.flags(settings)
    merged = pr.merge(partials(spark, paths, argv, settings.get("format")))
    if out is not None:
        pr.write_reports(merged, out, **settings)
    return pr.report(merged, **settings)


def _split_master(argv: Sequence[str]) -> tuple[str | None, list[str]]:
    master, rest, it = None, [], iter(argv)
    for a in it:
        if a == "--master":
            master = next(it, None)
            if master is None:
                raise pr.UsageError("--master needs a value (a Spark master URL such as local[2])")
        elif a.startswith("--master="):
            master = a.split("=", 1)[1]
        else:
            rest.append(a)
    return master, rest


USAGE = """usage: python -m proof_replay.spark LOG... [flags of proof replay] [--master URL] [--out DIR]

Runs `proof replay` on a SparkSession (--master default: spark-submit's, else local[*]). Every flag of
`proof replay` applies (see `proof replay --help`); --threads is Spark's business
and ignored. Without --out, report.json is printed. Exit codes as `proof replay`."""


# What the job itself needs beyond the package (pyproject.toml's `spark` extra): Spark
# runs pandas UDF machinery and Arrow on the driver and every executor.
_NEEDS = (("pyspark", (3, 5)), ("pandas", (2, 2)), ("pyarrow", (14, 0)))


def _version_of(name: str) -> str | None:
    """The installed version of a distribution, or None."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _release(v: str) -> tuple[int, int]:
    """(major, minor) of a version string such as 2.2.3 or 3.5.1.post1."""
    import re

    m = re.match(r"(\d+)(?:\.(\d+))?", v)
    return (int(m.group(1)), int(m.group(2) or 0)) if m else (0, 0)


def missing_dependencies(version_of=None) -> str | None:
    """One line naming what the Spark job lacks (missing or too old), or None; checked
    before Spark starts, so a fresh machine is told at once, not after a whole job."""
    version_of = version_of or _version_of
    problems = []
    for name, need in _NEEDS:
        have = version_of(name)
        want = f"{name}>={need[0]}.{need[1]}"
        if have is None:
            problems.append(f"{want} (not installed)")
        elif _release(have) < need:
            problems.append(f"{want} (found {have})")
    if not problems:
        return None
    return (
        "the Spark job needs " + ", ".join(problems)
        + "; install the package with its spark extra: pip install 'proof-replay[spark]' "
        + "(from a checkout: pip install '.[spark]')"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    missing = missing_dependencies()
    if missing is not None:
        print(f"proof: error: {missing}", file=sys.stderr)
        return 2
    try:
        master, rest = _split_master(argv)
        info = json.loads(_native.describe(rest))
        paths = info["logs"]
        if not paths:
            raise pr.UsageError(
                "no input: give LOG files or directories, or set logs in --scenario"
            )
        from pyspark.sql import SparkSession

        builder = SparkSession.builder.appName("proof replay")
        if master is None:
            from pyspark import SparkConf

            # Under spark-submit the master is already set; on its own, local[*].
            if not SparkConf().contains("spark.master"):
                master = "local[*]"
        if master is not None:
            builder = builder.master(master)
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
        try:
            merged = pr.merge(partials(spark, paths, rest, info["format"]))
        finally:
            spark.stop()
        out = info["out"]
        text = _native.report_json(merged, rest)
        rep = json.loads(text)
        if out is None:
            sys.stdout.write(text)
            code = rep["gate"]["exit_code"]
        else:
            code = _native.write_reports(merged, out, rest)
        if not info["quiet"]:
            verdict = rep.get("summary", {}).get("verdict", f"gate exit code {code}")
            print(f"proof: {verdict}", file=sys.stderr)
            if out is not None:
                print(f"proof: reports in {out}", file=sys.stderr)
        return code
    except pr.ProofError as e:
        print(f"proof: error: {e}", file=sys.stderr)
        return e.exit_code
    except Exception as e:  # noqa: BLE001 - a failed Spark job is reported, exit 2
        msg = str(e)
        for cls in ("SchemaError", "ConfigError", "IrError", "UsageError", "LimitError"):
            # An executor's proof error arrives inside Spark's exception text.
            marker = f"_native.{cls}: "
            if marker in msg:
                line = msg.split(marker, 1)[1].splitlines()[0]
                print(f"proof: error: {line}", file=sys.stderr)
                return 2
        print(f"proof: error: Spark job failed: {msg or repr(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
