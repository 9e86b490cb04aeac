#!/usr/bin/env bash
# Runs every check and test of proof. Installs what the tests need when it is missing
# (Debian packages: prometheus for promtool and the end-to-end Prometheus test, chromium
# for the HTML report test, bsdutils' `script` for the progress-bar test, strace for
# the kill-at-every-step test). Used as-is by
# .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v script >/dev/null 2>&1 || need+=(bsdutils)  # a pseudo-terminal for tests/progress.rs
command -v strace >/dev/null 2>&1 || need+=(strace)  # SIGKILL at every file-system step, tests/kill.rs
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)  # Spark for tests/python
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
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
echo "== cargo clippy --lib --features python -- -D warnings (the Python front door)"
cargo clippy --lib --features python -- -D warnings
echo "== cargo test --release (unit, integration, fuzz-style properties: ${PROOF_FUZZ_SECONDS:-15} s each)"
PROOF_FUZZ_SECONDS=${PROOF_FUZZ_SECONDS:-15} cargo test --release
echo "== conformance case (fixtures/conformance, SPEC reading by an independent implementation)"
python3 fixtures/conformance/check.py target/release/proof
echo "== Python package and Spark (tests/python: fixture day through Spark local[2])"
# pyspark's mapInArrow needs pandas >= 2.2 and pyarrow; pyspark 4 warns on pandas 3.
export PIP_BREAK_SYSTEM_PACKAGES=1  # a Debian python3 refuses installs outside a venv otherwise
py_need=()
python3 -c 'import pyspark' 2>/dev/null || py_need+=(pyspark)
python3 -c 'import pandas, sys; sys.exit(not ((2, 2) <= tuple(map(int, pandas.__version__.split(".")[:2])) < (3, 0)))' 2>/dev/null \
  || py_need+=('pandas>=2.2,<3')
python3 -c 'import pyarrow' 2>/dev/null || py_need+=(pyarrow)
python3 -c 'import pytest' 2>/dev/null || py_need+=(pytest)
if [ ${#py_need[@]} -gt 0 ]; then
  echo "== pip installing: ${py_need[*]}"
  python3 -m pip install -q "${py_need[@]}"
fi
# The wheel is built once (pip runs maturin in-tree, into the same target directory, so
# the crates compiled above are reused) and installed; the tests import it and run
# `proof` from target/release.
python3 -m pip install -q --force-reinstall --no-deps .
python3 -m pytest -q -p no:cacheprovider tests/python
echo "== Prometheus end to end (promtool backfill + real server + every dashboard query)"
bash scripts/e2e_prometheus.sh
echo "== OPA engine against OPA's own Go evaluator (scripts/opa_oracle.py; wheel cached in target/opa-oracle)"
cargo test --release --test opa_oracle -- --nocapture
echo "== all checks passed"
