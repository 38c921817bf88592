#!/usr/bin/env bash
# The tests: the Rust workspace, then the Python package in a fresh virtual environment (a wheel
# built from this tree by `pip install .`, with the test and Ray extras), under pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked
venv=target/python-test
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet ".[test,ray]"
LMZIP_BIN="$PWD/target/debug/lmzip" "$venv/bin/python" -m pytest -q python/tests
