#!/usr/bin/env bash
# Bounded loopback load on `proof serve`: starts the server on 127.0.0.1 (free port)
# with lksg.v2 and its lists, enforcing at 10 %, generates lksg.v2 records with
# `proof gen`, drives them with the serve_load example (keep-alive connections, one
# request in flight each) and prints requests/s and latency quantiles.
#   scripts/load.sh [SECONDS=10] [CONNECTIONS=16]
# SERVE_THREADS (default 1) sets `proof serve --threads`: on a 2-core machine the
# client needs a core of its own, or the measurement is of CPU contention.
# Falls back to the conformance case when fixtures/policies/lksg.v2.ir.json is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
conns="${2:-16}"
threads="${SERVE_THREADS:-1}"

cargo build --release --quiet --bin proof --example serve_load
bin=target/release/proof
work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ -f fixtures/policies/lksg.v2.ir.json ]; then
  "$bin" gen --records 5000 --policy-id lksg.v2 --other-policy-rate 0 --seed 7 -o "$work/records.jsonl"
  policy=(--ir fixtures/policies/lksg.v2.ir.json
    --list sanctions=fixtures/lists/sanctions.csv
    --list ubo_watchlist=fixtures/lists/ubo_watchlist.txt
    --list high_risk=fixtures/lists/high_risk_countries.txt)
  what="lksg.v2, 5000 generated records"
else
  grep '"request_id"' fixtures/conformance/traffic.jsonl | grep -v 'not a time' > "$work/records.jsonl"
  policy=(--ir fixtures/conformance/demo.v1.ir.json
    --list sanctions=fixtures/conformance/sanctions.csv
    --list high_risk=fixtures/conformance/high_risk.txt)
  what="demo.v1, conformance records"
fi

"$bin" serve "${policy[@]}" --enforce --rollout 10 --listen 127.0.0.1:0 --threads "$threads" 2>"$work/serve.log" &
server_pid=$!
addr=""
for _ in $(seq 1 200); do
  addr="$(sed -n 's/^proof serve: listening on //p' "$work/serve.log" | head -n1)"
  [ -n "$addr" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 2; }
  sleep 0.05
done
[ -n "$addr" ] || { echo "server did not start" >&2; cat "$work/serve.log" >&2; exit 2; }

echo "== proof serve on $addr ($what), $threads serving thread(s), $conns connections, ${secs}s, $(nproc) cores"
steal() { awk '/^cpu /{print $9 + 0; exit}' /proc/stat 2>/dev/null || echo 0; }
s0="$(steal)"
target/release/examples/serve_load "$addr" "$work/records.jsonl" --connections "$conns" --seconds "$secs"
s1="$(steal)"
# On a VM, time the host gives to others ("steal") inflates the tail: report it.
echo "cpu steal during the run: $((s1 - s0)) ticks of $(( $(getconf CLK_TCK) * $(nproc) * secs )) ($(nproc) cores x ${secs}s)"
