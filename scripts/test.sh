#!/usr/bin/env bash
# Runs every check and test of proof. Installs what the tests need when it is missing
# (Debian packages: prometheus for promtool and the end-to-end Prometheus test, chromium
# for the HTML report test, bsdutils' `script` for the progress-bar test). Used as-is by
# .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v script >/dev/null 2>&1 || need+=(bsdutils)  # a pseudo-terminal for tests/progress.rs
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing: ${need[*]}"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
fi

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings
echo "== cargo test --release (unit, integration, fuzz-style properties: ${PROOF_FUZZ_SECONDS:-40} s each)"
PROOF_FUZZ_SECONDS=${PROOF_FUZZ_SECONDS:-40} cargo test --release
echo "== conformance case (fixtures/conformance, SPEC reading by an independent implementation)"
python3 fixtures/conformance/check.py target/release/proof
if [ -f scripts/e2e_prometheus.sh ]; then
  echo "== Prometheus end to end (promtool backfill + real server + every dashboard query)"
  bash scripts/e2e_prometheus.sh
fi
echo "== all checks passed"
