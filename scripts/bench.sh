#!/usr/bin/env bash
# Whole-run throughput of `proof replay` next to the parse-only floor, and peak RSS as
# the input grows. Prints a Markdown table for docs/performance.md.
#   scripts/bench.sh            # 1 M records (generated once into target/bench/)
#   N=200000 scripts/bench.sh   # smaller
#   BIG=1 scripts/bench.sh      # also peak RSS on a >= 2 GB JSONL log (4.5 M records)
#   RUNS=1 scripts/bench.sh     # one run per row instead of the best of three
#   DUCKDB=1 scripts/bench.sh   # also proof vs the same job in DuckDB SQL (scripts/duckdb/):
#                               # pip-installs duckdb into target/duckdb-venv, skips if it can't
#   CALLGRIND=1 scripts/bench.sh  # only: instructions of one 20 000-record replay, 1 thread,
#                               # under valgrind's callgrind, per function in target/bench/callgrind.out.
#                               # Repeatable to the instruction where CPU seconds on a shared VM
#                               # move by +-5 %: how each step of issue 25 was decided.
# The floor is one thread reading every line into a full serde_json::Value record
# (`parse_line`); replay reads only what the policies name (replay::extract), so it
# can beat the floor. The DuckDB comparison (DUCKDB=1) checks that DuckDB's per-window
# result equals windows.csv before it times anything; the project does not depend on it.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
B=target/bench
P=target/release/proof
mkdir -p "$B"
cargo build --release --quiet --bin proof --example parse_floor
FLOOR=target/release/examples/parse_floor

gen() { # file records [gen flags…]
  [ -s "$1" ] || "$P" gen --records "$2" --seed 7 "${@:3}" -o "$1"
}
LISTS=(--list sanctions=fixtures/lists/sanctions.csv --list ubo_watchlist=fixtures/lists/ubo_watchlist.txt
       --list high_risk=fixtures/lists/high_risk_countries.txt)
if [ -n "${CALLGRIND:-}" ]; then
  command -v valgrind >/dev/null || { echo "CALLGRIND=1 needs valgrind (apt-get install valgrind)" >&2; exit 2; }
  gen "$B/t20000.jsonl" 20000
  valgrind --tool=callgrind --callgrind-out-file="$B/callgrind.out" "$P" replay "$B/t20000.jsonl" \
    --policy lksg.v1 --candidate-policy lksg.v2 "${LISTS[@]}" --rollout 25 --threads 1 -q \
    --out "$B/out-callgrind" 2>"$B/callgrind.log" || [ $? -eq 1 ]
  ir=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$B/callgrind.log")
  echo "callgrind, 20000 records of --seed 7, 1 thread, lksg.v1 -> lksg.v2: $ir instructions" \
    "(per function: callgrind_annotate $B/callgrind.out)"
  exit 0
fi
gen "$B/t$N.jsonl" "$N"
gen "$B/t$N.jsonl.zst" "$N"
gen "$B/t$N.struct.parquet" "$N" --parquet-context struct
gen "$B/t$N.jsonctx.parquet" "$N" --parquet-context json
Q=$((N / 4))
gen "$B/t$Q.jsonl" "$Q"
gen "$B/t$Q.struct.parquet" "$Q" --parquet-context struct

RAW=$(stat -c %s "$B/t$N.jsonl")

# run CMD… → prints "seconds maxrss_kb": the best wall time of $RUNS runs (default 3;
# the machine is shared, so the minimum is the least disturbed run) and the peak RSS.
RUNS=${RUNS:-3}
measure() {
  python3 - "$RUNS" "$@" <<'PY'
import resource, subprocess, sys, time
best = None
for _ in range(int(sys.argv[1])):
    t = time.perf_counter()
    rc = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    dt = time.perf_counter() - t
    if rc not in (0, 1):
        sys.exit(f"exit {rc}: {' '.join(sys.argv[2:])}")
    best = dt if best is None else min(best, dt)
print(f"{best:.3f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
PY
}

row() { # label seconds rss records
  awk -v l="$1" -v s="$2" -v r="$3" -v n="$4" -v raw="$RAW" \
    'BEGIN { printf "| %s | %.2f | %.0f | %.1f | %.0f |\n", l, s, n / s, raw / s / 1e6, r / 1024 }'
}

echo "Load average at the start: $(cut -d' ' -f1-3 /proc/loadavg) (best of $RUNS runs per row)"
echo
echo "| run ($N records, $(numfmt --to=iec "$RAW") JSONL) | seconds | records/s | MB/s (uncompressed JSON) | peak RSS MB |"
echo "|---|---|---|---|---|"
read -r s r < <(measure "$FLOOR" "$B/t$N.jsonl")
row "floor: parse only, 1 thread (JSONL)" "$s" "$r" "$N"
for f in jsonl jsonl.zst struct.parquet jsonctx.parquet; do
  for t in 1 2; do
    read -r s r < <(measure "$P" replay "$B/t$N.$f" --policy lksg.v1 --candidate-policy lksg.v2 "${LISTS[@]}" \
      --rollout 25 --threads "$t" -q --out "$B/out-$f-$t")
    row "replay $f, $t thread(s)" "$s" "$r" "$N"
  done
done
rss() { # file → peak RSS MB of a 2-thread replay
  read -r _ r < <(measure "$P" replay "$1" --policy lksg.v1 --candidate-policy lksg.v2 "${LISTS[@]}" \
    --rollout 25 --threads 2 -q --out "$B/out-rss")
  echo $((r / 1024))
}
echo
echo "Peak RSS as input grows (2 threads): JSONL $Q records $(rss "$B/t$Q.jsonl") MB," \
  "$N records $(rss "$B/t$N.jsonl") MB; Parquet (struct) $Q records $(rss "$B/t$Q.struct.parquet") MB," \
  "$N records $(rss "$B/t$N.struct.parquet") MB."
if [ -n "${BIG:-}" ]; then
  G=4500000
  gen "$B/t$G.jsonl" "$G"
  echo "Peak RSS on $(numfmt --to=iec "$(stat -c %s "$B/t$G.jsonl")") of JSONL ($G records):" \
    "$(rss "$B/t$G.jsonl") MB."
fi
if [ -n "${DUCKDB:-}" ]; then
  V=target/duckdb-venv
  DUCKDB_VERSION=${DUCKDB_VERSION:-2.0.1}
  if { [ -x "$V/bin/python" ] || python3 -m venv "$V"; } &&
     "$V/bin/pip" install -q --disable-pip-version-check --timeout 20 --retries 1 "duckdb==$DUCKDB_VERSION"; then
    echo
    "$V/bin/python" scripts/duckdb/compare.py --proof "$P" --input "$B/t$N.jsonl" \
      --parquet "$B/t$N.jsonctx.parquet" --runs "$RUNS" --threads 2
  else
    echo
    echo "DuckDB comparison skipped: could not pip-install duckdb==$DUCKDB_VERSION into $V"
  fi
fi
