#!/usr/bin/env bash
# Whole-run throughput of `proof replay` next to the parse-only floor, and peak RSS as
# the input grows. Prints a Markdown table for docs/performance.md.
#   scripts/bench.sh            # 1 M records (generated once into target/bench/)
#   N=200000 scripts/bench.sh   # smaller
#   BIG=1 scripts/bench.sh      # also peak RSS on a >= 2 GB JSONL log (4.5 M records)
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
gen "$B/t$N.jsonl" "$N"
gen "$B/t$N.jsonl.zst" "$N"
gen "$B/t$N.struct.parquet" "$N" --parquet-context struct
gen "$B/t$N.jsonctx.parquet" "$N" --parquet-context json
Q=$((N / 4))
gen "$B/t$Q.jsonl" "$Q"
gen "$B/t$Q.struct.parquet" "$Q" --parquet-context struct

LISTS=(--list sanctions=fixtures/lists/sanctions.csv --list ubo_watchlist=fixtures/lists/ubo_watchlist.txt
       --list high_risk=fixtures/lists/high_risk_countries.txt)
RAW=$(stat -c %s "$B/t$N.jsonl")

# run CMD… → prints "seconds maxrss_kb"
measure() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
dt = time.perf_counter() - t
if rc not in (0, 1):
    sys.exit(f"exit {rc}: {' '.join(sys.argv[1:])}")
print(f"{dt:.3f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
PY
}

row() { # label seconds rss records
  awk -v l="$1" -v s="$2" -v r="$3" -v n="$4" -v raw="$RAW" \
    'BEGIN { printf "| %s | %.2f | %.0f | %.1f | %.0f |\n", l, s, n / s, raw / s / 1e6, r / 1024 }'
}

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
