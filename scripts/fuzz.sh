#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 20), seeded with the golden archives
# and the model files of tests/golden. Needs nightly Rust and cargo-fuzz; installs both when
# missing (rustup and crates.io), and skips with a notice where they cannot be had. A crash, a
# leak, a timeout or a memory blow-up fails the run and prints libFuzzer's report.
#
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal || { echo "SKIPPED fuzz: no nightly"; exit 0; }
fi
if ! command -v cargo-fuzz >/dev/null; then
  cargo install cargo-fuzz --locked -q || { echo "SKIPPED fuzz: no cargo-fuzz"; exit 0; }
fi
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
mkdir -p "$seeds"/{archive,solid,header,gguf,safetensors,tokenizer}
cp tests/golden/*.lmz "$seeds/archive/"
cp tests/golden/*.solid*.lmz "$seeds/solid/"
cp tests/golden/*.lmz "$seeds/header/"
# Forged lengths (header chunk size, records' declared lengths; header CRC fixed).
python3 scripts/mutate.py --write-seeds "$seeds/archive" tests/golden/*.lmz
python3 scripts/mutate.py --write-seeds "$seeds/solid" tests/golden/*.solid*.lmz
cp tests/golden/llama-tiny/model.safetensors "$seeds/safetensors/"
cp tests/golden/llama-tiny/tokenizer.json "$seeds/tokenizer/"
printf 'GGUF\3\0\0\0' > "$seeds/gguf/minimal"
cargo +nightly fuzz build -O
log=$seeds/log
for target in archive solid header gguf safetensors tokenizer; do
  if ! cargo +nightly fuzz run -O "$target" "$seeds/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 >"$log" 2>&1; then
    tail -60 "$log"
    echo "FUZZ FAILED: $target"
    exit 1
  fi
  echo "fuzz $target: $(grep -E '^Done [0-9]+ runs' "$log" | tail -1)"
done
