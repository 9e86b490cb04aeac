#!/usr/bin/env bash
# End to end: proof replay -> metrics.om -> promtool backfill -> a real Prometheus ->
# every panel query of grafana/dashboards/verifier.json, checked against report.json.
# Then the live path: `proof adapt --metrics-out` text, linted by `promtool check
# metrics`, scraped by the same kind of Prometheus, and the panel queries again.
#
# Usage (from anywhere):
#   bash scripts/e2e_prometheus.sh
# Settings (environment):
#   PROOF             proof binary [target/release/proof; built with cargo when missing]
#   E2E_SCENARIO      scenario replayed [fixtures/scenarios/lksg_v2_canary.yaml]
#   E2E_REPLAY_ARGS   replay arguments instead of the scenario (word-split); when the
#                     scenario file is missing, the conformance case is replayed
#   E2E_LIVE          1 = also check the live (scraped) path [1]
#   E2E_TIMEOUT       seconds any single wait may take [60]
#   E2E_KEEP          1 = keep the temporary directory
#   PROMETHEUS_BIN, PROMTOOL_BIN   [prometheus, promtool; apt-get installs them when missing]
# Exit status: 0 when every check passed, 1 when one failed, 2 on a setup error.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PROOF="${PROOF:-$ROOT/target/release/proof}"
E2E_SCENARIO="${E2E_SCENARIO:-fixtures/scenarios/lksg_v2_canary.yaml}"
E2E_LIVE="${E2E_LIVE:-1}"
E2E_TIMEOUT="${E2E_TIMEOUT:-60}"
DASHBOARD="${DASHBOARD:-$ROOT/grafana/dashboards/verifier.json}"
PROMETHEUS_BIN="${PROMETHEUS_BIN:-prometheus}"
PROMTOOL_BIN="${PROMTOOL_BIN:-promtool}"
CONF="fixtures/conformance"

say() { printf 'e2e: %s\n' "$*"; }
die() { printf 'e2e: SETUP ERROR: %s\n' "$*" >&2; exit 2; }

# --- tools -------------------------------------------------------------------
need_prometheus() {
    command -v "$PROMETHEUS_BIN" >/dev/null 2>&1 && command -v "$PROMTOOL_BIN" >/dev/null 2>&1 && return 0
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "installing Debian package prometheus (prometheus + promtool)"
        timeout 600 apt-get update -qq >/dev/null || die "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
            || die "apt-get install prometheus failed"
        # The package may start a system service on :9090; this script never uses that port.
    fi
    command -v "$PROMETHEUS_BIN" >/dev/null 2>&1 || die "prometheus not found (apt-get install prometheus)"
    command -v "$PROMTOOL_BIN" >/dev/null 2>&1 || die "promtool not found (apt-get install prometheus)"
}
need_prometheus
command -v python3 >/dev/null 2>&1 || die "python3 is needed to read the dashboard and query the HTTP API"
command -v curl >/dev/null 2>&1 || die "curl is needed to probe Prometheus readiness"

if [[ ! -x "$PROOF" || "${E2E_BUILD:-0}" == 1 ]]; then
    say "building proof (cargo build --release)"
    cargo build --release --quiet || die "cargo build --release failed"
fi
[[ -x "$PROOF" ]] || die "$PROOF is not an executable"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/proof-e2e.XXXXXX")"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        # Bounded: Prometheus shuts down in well under a second on a tiny TSDB.
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [[ "${E2E_KEEP:-0}" == 1 ]]; then say "kept $TMP"; else rm -rf "$TMP"; fi
}
# Cleanup runs once, on exit; Ctrl-C or SIGTERM exits (130/143) rather than carrying
# on with the next step after cleaning up.
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Starts Prometheus on 127.0.0.1:$1 over TSDB dir $2 with config $3; logs to $4.
start_prometheus() {
    local port="$1" tsdb="$2" config="$3" log="$4"
    "$PROMETHEUS_BIN" \
        --config.file="$config" \
        --storage.tsdb.path="$tsdb" \
        --storage.tsdb.retention.time=100y \
        --web.listen-address="127.0.0.1:$port" \
        --log.level=warn >"$log" 2>&1 &
    PIDS+=("$!")
    local pid="$!" deadline=$((SECONDS + E2E_TIMEOUT))
    until curl -fsS --max-time 2 "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "prometheus exited during start-up"; }
        ((SECONDS < deadline)) || { cat "$log" >&2; die "prometheus not ready after ${E2E_TIMEOUT}s"; }
        sleep 0.2
    done
}

FAILS=0
record() { # record STATUS MESSAGE
    printf '%s %s\n' "$1" "$2"
    [[ "$1" == PASS ]] || FAILS=$((FAILS + 1))
}

# --- 1. replay -----------------------------------------------------------------
OUT="$TMP/out"
if [[ -n "${E2E_REPLAY_ARGS:-}" ]]; then
    read -r -a REPLAY_ARGS <<<"$E2E_REPLAY_ARGS"
elif [[ -f "$E2E_SCENARIO" ]]; then
    REPLAY_ARGS=(--scenario "$E2E_SCENARIO")
else
    say "$E2E_SCENARIO not found; replaying the conformance case instead"
    REPLAY_ARGS=("$CONF/traffic.jsonl" --ir "$CONF/demo.v1.ir.json" --candidate-ir "$CONF/demo.v2.ir.json"
        --list "sanctions=$CONF/sanctions.csv" --list "high_risk=$CONF/high_risk.txt"
        --rollout 50 --max-rejects 3)
fi
say "proof replay ${REPLAY_ARGS[*]} --out $OUT"
set +e
"$PROOF" replay "${REPLAY_ARGS[@]}" --out "$OUT" --quiet
RC=$?
set -e
[[ -f "$OUT/report.json" && -f "$OUT/metrics.om" ]] || die "replay exited $RC without report.json and metrics.om"
GATE_RC="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["gate"]["exit_code"])' "$OUT/report.json")"
if [[ "$RC" == "$GATE_RC" && ("$RC" == 0 || "$RC" == 1) ]]; then
    record PASS "replay exit code $RC = report.json gate.exit_code"
else
    record FAIL "replay exit code $RC, report.json gate.exit_code $GATE_RC (want equal, 0 or 1)"
fi

# --- 2. backfill -----------------------------------------------------------------
TSDB="$TMP/tsdb"
if "$PROMTOOL_BIN" tsdb create-blocks-from openmetrics "$OUT/metrics.om" "$TSDB" >"$TMP/backfill.log" 2>&1; then
    record PASS "promtool tsdb create-blocks-from openmetrics metrics.om"
else
    cat "$TMP/backfill.log" >&2
    record FAIL "promtool tsdb create-blocks-from openmetrics metrics.om"
fi
BLOCKS="$("$PROMTOOL_BIN" tsdb list "$TSDB" 2>/dev/null | tail -n +2 | grep -c . || true)"
if [[ "$BLOCKS" -ge 1 ]]; then
    record PASS "promtool tsdb list: $BLOCKS block(s)"
else
    record FAIL "promtool tsdb list shows no block"
fi
# metrics.om is OpenMetrics (info type, # EOF): `promtool check metrics` parses the
# Prometheus 0.0.4 text format only, so it applies to the live output in step 4.

# --- 3. Prometheus over the backfilled TSDB, every panel query -------------------
printf 'global:\n  evaluation_interval: 1m\nscrape_configs: []\n' >"$TMP/backfill.yml"
PORT="$(free_port)"
start_prometheus "$PORT" "$TSDB" "$TMP/backfill.yml" "$TMP/prometheus-backfill.log"
say "prometheus (backfilled) on 127.0.0.1:$PORT"

cat >"$TMP/panels.py" <<'PY'
"""Evaluates every panel expression of a Grafana dashboard against Prometheus."""
import json, math, re, sys, urllib.parse, urllib.request

mode, base, dashboard = sys.argv[1], sys.argv[2], sys.argv[3]
dash = json.load(open(dashboard))
fails = 0

def out(ok, msg):
    global fails
    print(("PASS " if ok else "FAIL ") + msg)
    fails += 0 if ok else 1

def api(path, **params):
    url = base + path + "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=30) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(body.get("error", body))
    return body["data"]

# Grafana variables: the dashboard's defaults, overridable as NAME=VALUE arguments.
variables = {}
for v in dash.get("templating", {}).get("list", []):
    cur = v.get("current") or {}
    val = cur.get("value") if isinstance(cur.get("value"), str) else None
    if val is None and v.get("type") in ("textbox", "constant"):
        val = v.get("query")
    if val is not None:
        variables[v["name"]] = val
for kv in sys.argv[5:]:
    k, _, val = kv.partition("=")
    variables[k] = val

def substitute(expr):
    def rep(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in variables:
            raise KeyError(f"unknown Grafana variable ${name} in {expr!r}")
        return variables[name]
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)", rep, expr)

# Every query of every panel (rows may nest panels).
def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))

queries = []
for p in panels(dash["panels"]):
    ds = p.get("datasource") or {}
    if p.get("targets") and ds.get("uid") != "${datasource}":
        out(False, f"panel {p['title']!r}: datasource must be the ${{datasource}} variable, not {ds}")
    for t in p.get("targets", []):
        if "expr" in t:
            queries.append((p["title"], t["refId"], t["expr"]))
print(f"{len(queries)} panel queries; variables {variables}")

if mode == "backfill":
    report = json.load(open(sys.argv[4]))
    from datetime import datetime
    def epoch(s):
        return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    start, end = epoch(report["windows"][0]["start"]), epoch(report["windows"][-1]["end"])
    window = epoch(report["windows"][0]["end"]) - epoch(report["windows"][0]["start"])
    # Every evaluation lands on a window end, where the samples are, as long as the
    # step divides the window; stay under Prometheus' 11,000 points per series.
    step = min(window, 60)
    while (end - start) / step > 10000:
        step *= 2
    range_params = dict(start=start, end=end, step=step)
else:
    t = float(sys.argv[4])
    range_params = dict(start=t - 60, end=t, step=1)

results = {}
for title, ref, expr in queries:
    q = substitute(expr)
    live_only = False
    try:
        data = api("/api/v1/query_range", query=q, **range_params)
    except Exception as e:  # a query Prometheus refuses is a failure, not a crash
        out(False, f"[{mode}] {title} / {ref}: {q}: {e}")
        continue
    values = [(float(ts), float(v)) for s in data["result"] for ts, v in s["values"]]
    finite = [v for _, v in values if math.isfinite(v)]
    results[expr] = data["result"]
    # `x unless on(window) (adapt_window_counted == 0)` is x itself live.
    replay_only = ("adapt_whatif_drift_ratio" in expr or "adapt_plan_rollout_percent" in expr
                   or ("adapt_window_" in expr and "unless" not in expr))
    if mode == "live" and replay_only:
        # What-if ratios, the plan's level and the per-window request counts exist
        # only in replays: an empty answer is expected live.
        out(True, f"[live] {title} / {ref}: {q} -> {len(data['result'])} series (replay-only metric)")
        continue
    if mode == "backfill" and "adapt_plan_rollout_percent" in expr and "plan" not in report:
        out(len(data["result"]) == 0, f"[backfill] {title} / {ref}: {q} -> no series without --plan")
        continue
    if mode == "backfill" and "(adapt_window_counted == 0)" in expr and " and " in expr \
            and all(w["requests"] >= report["config"]["min_requests"] for w in report["windows"]):
        out(len(data["result"]) == 0, f"[backfill] {title} / {ref}: {q} -> no series: every window counts")
        continue
    if mode == "live" and "histogram_quantile" in expr:
        # A single constant scrape has no increase: the quantile is NaN, but the
        # series must exist (names and labels match the live registry).
        ok = len(data["result"]) > 0
    else:
        ok = len(finite) > 0
    out(ok, f"[{mode}] {title} / {ref}: {q} -> {len(data['result'])} series, "
            f"{len(finite)} finite points" + ("" if ok else " (no data)"))

def values_of(expr_part):
    for expr, res in results.items():
        if expr == expr_part:
            return [float(v) for s in res for _, v in s["values"]]
    out(False, f"no panel queries {expr_part!r}")
    return []

if mode == "backfill":
    gate = report["gate"]["rollout_percent"]
    level = next(l for l in report["levels"] if l["rollout_percent"] == gate)
    # The drift panel keeps the windows the gate counts apart from the rest: its
    # counted series peaks at the worst counted window, its grey one at the worst of
    # the windows under --min-requests; together they are levels[].max_window_ratio.
    gi = [l["rollout_percent"] for l in report["levels"]].index(gate)
    minr = report["config"]["min_requests"]
    def worst_of(counted):
        return max((w["drift"][gi]["ratio"] for w in report["windows"] if (w["requests"] >= minr) == counted), default=None)
    counted = max(values_of("adapt_drift_ratio unless on(window) (adapt_window_counted == 0)"), default=None)
    out(counted == worst_of(True), f"max counted adapt_drift_ratio {counted} = worst counted window {worst_of(True)}")
    few = max(values_of("adapt_drift_ratio and on(window) (adapt_window_counted == 0)"), default=None)
    out(few == worst_of(False), f"max uncounted adapt_drift_ratio {few} = worst window under --min-requests {worst_of(False)}")
    out(max(x for x in (counted, few) if x is not None) == level["max_window_ratio"],
        f"worst of both = report levels[{gate} %].max_window_ratio {level['max_window_ratio']}")
    # Range queries repeat a sample over the lookback: compare the sets of values.
    reqs = set(values_of("adapt_window_requests"))
    want_reqs = {float(w["requests"]) for w in report["windows"]}
    out(reqs == want_reqs, f"adapt_window_requests takes the {len(want_reqs)} distinct window sizes of report.json")
    if "plan" in report:
        levels = set(values_of("adapt_plan_rollout_percent"))
        steps = {float(s["rollout_percent"]) for s in report["plan"]["steps"]} | {0.0}
        out(levels and levels <= steps, f"adapt_plan_rollout_percent {sorted(levels)} within the plan's levels {sorted(steps)}")
    req = next(e for e in results if "adapt_requests_total{mode=\"shadow\"}" in e)
    last = api("/api/v1/query", query=substitute(req), time=end)["result"]
    got = sum(float(s["value"][1]) for s in last)
    out(got == report["records"]["evaluated"],
        f"last adapt_requests_total{{mode=\"shadow\"}} {got:g} = report records.evaluated {report['records']['evaluated']}")
    roll = set(values_of("adapt_enforce_rollout_percent"))
    out(roll == {float(gate)}, f"adapt_enforce_rollout_percent {sorted(roll)} = gate rollout {gate}")
    drift_total = api("/api/v1/query", query="sum(adapt_drift_events_total)", time=end)["result"]
    got = sum(float(s["value"][1]) for s in drift_total)
    out(got == level["drift_events"],
        f"last adapt_drift_events_total {got:g} = report levels[{gate} %].drift_events {level['drift_events']}")
    # The what-if panel: one series per reported level, each series' worst window = the
    # report's worst counted window (windows under --min-requests are left out, as the
    # gate leaves them out; with --min-requests 1 that is levels[].max_window_ratio).
    whatif = next(e for e in results if "adapt_whatif_drift_ratio" in e)
    by_level = {int(s["metric"]["rollout"]): max(float(v) for _, v in s["values"]) for s in results[whatif]}
    want = {l["rollout_percent"]: max((w["drift"][i]["ratio"] for w in report["windows"] if w["requests"] >= minr), default=0.0)
            for i, l in enumerate(report["levels"])}
    out(by_level == want, f"what-if max per rollout level {by_level} = worst counted window per level {want}")
sys.exit(1 if fails else 0)
PY

# The threshold variables take the replay's own gate settings, as the runbook says.
read -r -a GATE_VARS < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))
print("drift_max=%r rollback_factor=%r" % (r["gate"]["drift_max"], r["config"]["rollback_factor"]))' "$OUT/report.json")
set +e
python3 "$TMP/panels.py" backfill "http://127.0.0.1:$PORT" "$DASHBOARD" "$OUT/report.json" "${GATE_VARS[@]}"
[[ $? == 0 ]] || FAILS=$((FAILS + 1))
set -e

# --- 4. live: adapt --metrics-out, promtool check metrics, scraped --------------
if [[ "$E2E_LIVE" == 1 ]]; then
    LIVE="$TMP/live"
    mkdir -p "$LIVE/www"
    python3 - "$CONF/traffic.jsonl" >"$LIVE/context.json" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if isinstance(o, dict) and isinstance(o.get("context"), dict) and o.get("request_id"):
        print(json.dumps(o))
        break
PY
    "$PROOF" adapt --ir "$CONF/demo.v2.ir.json" --list "sanctions=$CONF/sanctions.csv" \
        --list "high_risk=$CONF/high_risk.txt" --context "$LIVE/context.json" --enforce --rollout 100 \
        --metrics-out "$LIVE/www/metrics" -o "$LIVE/adapt.json" || die "proof adapt failed"
    if LINT="$("$PROMTOOL_BIN" check metrics <"$LIVE/www/metrics" 2>&1)"; then
        record PASS "promtool check metrics on adapt --metrics-out"
    else
        printf '%s\n' "$LINT" >&2
        record FAIL "promtool check metrics on adapt --metrics-out"
    fi
    # A plain HTTP server stands in for node_exporter's textfile collector.
    HPORT="$(free_port)"
    python3 -m http.server "$HPORT" --bind 127.0.0.1 --directory "$LIVE/www" >"$LIVE/http.log" 2>&1 &
    PIDS+=("$!")
    cat >"$LIVE/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: proof
    static_configs:
      - targets: ["127.0.0.1:$HPORT"]
EOF
    LPORT="$(free_port)"
    start_prometheus "$LPORT" "$LIVE/tsdb" "$LIVE/prometheus.yml" "$LIVE/prometheus.log"
    say "prometheus (live, scraping 127.0.0.1:$HPORT every 1s) on 127.0.0.1:$LPORT"
    # rate() needs two samples in its range: wait for at least three scrapes.
    deadline=$((SECONDS + E2E_TIMEOUT))
    until [[ "$(curl -fsS --max-time 2 "http://127.0.0.1:$LPORT/api/v1/query" \
        --data-urlencode 'query=count_over_time(adapt_enforce_rollout_percent[1m]) >= 3' 2>/dev/null \
        | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["result"]))' 2>/dev/null)" == 1 ]]; do
        ((SECONDS < deadline)) || die "no three scrapes of the adapt metrics within ${E2E_TIMEOUT}s"
        sleep 0.5
    done
    NOW="$(python3 -c 'import time; print(time.time())')"
    set +e
    # The seed's 5m rate works on live scrapes: check it literally, beside the panels.
    python3 "$TMP/panels.py" live "http://127.0.0.1:$LPORT" "$DASHBOARD" "$NOW" rate_window=5m
    [[ $? == 0 ]] || FAILS=$((FAILS + 1))
    set -e
fi

if ((FAILS)); then
    echo "e2e_prometheus: FAIL ($FAILS failing check groups)"
    exit 1
fi
echo "e2e_prometheus: PASS"
