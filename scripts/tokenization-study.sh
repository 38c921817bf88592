#!/usr/bin/env bash
# The paper's tokenization study (its Table 2) at small scale: Llama-shaped token models of one
# size (d 128, 4 layers: 0.8M parameters outside the embedding), trained for the same
# wall-clock budget on the same training text, with byte tokens (a 257-token vocabulary: the
# bytes and <|endoftext|>) and byte-level BPE vocabularies of 1K, 2K, 5K, 10K and 20K tokens
# trained by `lmzip tokenizer`; then `lmzip bench` on held-out text.
#
# Usage: scripts/tokenization-study.sh [MINUTES_PER_MODEL] [OUT]   (default 6, models/study)
# Needs python3 with torch and numpy. Writes OUT/<vocab>/ (model directories with their
# training logs) and OUT/bench.md.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-6}
out=${2:-models/study}
mkdir -p "$out"
cargo build --release -q -p lmzip-cli
lmzip=target/release/lmzip
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
models=()
for vocab in 257 1024 2048 5120 10240 20480; do
  name=$([[ $vocab == 257 ]] && echo bytes || echo "bpe-$((vocab / 1024))k")
  $lmzip tokenizer -f "$work/$name.json" --vocab $vocab
  $lmzip dataset -f "$work/$name" --modality text --tokenizer "$work/$name.json"
  held_out_bytes=$(stat -c %s "$work/$name/text.held-out")
  python3 scripts/train_llama.py --tokens "$work/$name/text.train.tokens" \
    --held-out "$work/$name/text.held-out.tokens" --held-out-bytes "$held_out_bytes" \
    --tokenizer "$work/$name.json" --out "$out/$name" --minutes "$minutes" \
    | tee "$work/$name.log"
  cp "$work/$name.log" "$out/$name/train.log"
  models+=("$out/$name")
done
list=$(IFS=,; echo "${models[*]}")
$lmzip bench --held-out --chunks 64 --modality text --model "$list" -T 2 | tee "$out/bench.md"
