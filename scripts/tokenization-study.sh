#!/usr/bin/env bash
# The paper's tokenization study (its Table 2) at small scale: Llama-shaped token models of one
# size (d 64, 2 layers, 2 heads: 0.1M parameters outside the embedding), each trained for the
# same wall-clock budget on the same training text (an equal-compute comparison), with byte tokens (a 257-token vocabulary: the
# bytes and <|endoftext|>) and byte-level BPE vocabularies of 1K, 2K, 5K, 10K and 20K tokens
# trained by `lmzip tokenizer`; then `lmzip bench` on held-out text.
#
# Usage: scripts/tokenization-study.sh [MINUTES_PER_MODEL] [OUT]   (default 5, models/study)
# Needs python3 with torch and numpy. Writes OUT/<vocab>/ (model directories with their
# training logs), OUT/bench.md and docs/results/tokenization.md (the table and the computed
# finding, which scripts/results.sh appends to docs/RESULTS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
# The shipped models by name (the current directory is not in the model search path).
export LMZIP_MODEL_PATH="${LMZIP_MODEL_PATH:+$LMZIP_MODEL_PATH:}$PWD/models"
minutes=${1:-5}
out=${2:-models/study}
mkdir -p "$out"
cargo build --release -q -p lmzip-cli
lmzip=target/release/lmzip
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
models=()
for vocab in 257 1024 2048 5120 10240 20480; do
  name=$([[ $vocab == 257 ]] && echo bytes || echo "bpe-$((vocab / 1024))k")
  $lmzip tokenizer -f "$work/$name.json" --vocab $vocab 2>&1
  $lmzip dataset -f "$work/$name" --modality text --tokenizer "$work/$name.json" 2>&1
  held_out_bytes=$(stat -c %s "$work/$name/text.held-out")
  python3 scripts/train_llama.py --tokens "$work/$name/text.train.tokens" \
    --held-out "$work/$name/text.held-out.tokens" --held-out-bytes "$held_out_bytes" \
    --tokenizer "$work/$name.json" --out "$out/$name" --minutes "$minutes" \
    --d 64 --layers 2 --heads 2 --batch 16 --lr 3e-3 \
    | tee "$work/$name.log"
  cp "$work/$name.log" "$out/$name/train.log"
  models+=("$out/$name")
done
list=$(IFS=,; echo "${models[*]}")
$lmzip bench --held-out --chunks 64 --modality text --model "$list" -T 2 | tee "$out/bench.md"
python3 - "$out" "$minutes" > docs/results/tokenization.md <<'PY'
import re, sys, os
out, minutes = sys.argv[1], sys.argv[2]
rows = {}
for line in open(os.path.join(out, "bench.md")):
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) == 9 and cells[3].startswith("lmzip " + out):
        rows[os.path.basename(cells[3])] = cells
print("## The tokenization study (the paper's Table 2, small scale)\n")
print(f"`scripts/tokenization-study.sh {minutes}`: one Llama-shaped token model (d 64, 2 layers, 2 heads)"
      f" per vocabulary, each trained for {minutes} minutes of 2 CPU cores (equal compute) with"
      " `scripts/train_llama.py` on the training text, the byte-level BPE trained by `lmzip tokenizer`"
      " on the same text; rates by `lmzip bench --held-out --chunks 64 --modality text` (2048-byte"
      " chunks, every chunk decoded and checked). Adjusted: 2 bytes per parameter over 1 GB, as the"
      " paper's Table 2.\n")
print("| vocabulary | parameters | tokens trained on | bytes per token | PyTorch held-out rate % | lmzip rate % | adjusted rate (1 GB) % | compress KB/s | decompress KB/s |")
print("|---|---|---|---|---|---|---|---|---|")
best = []
for name, cells in rows.items():
    log = open(os.path.join(out, name, "train.log")).read()
    params = int(re.search(r"(\d+) parameters", log).group(1))
    tokens = re.search(r"trained \d+ steps, (\d+) tokens", log).group(1)
    total = re.search(r"(\d+) chunks, (\d+) tokens", log)
    bpt = 2048 * int(total.group(1)) / int(total.group(2))
    torch_rate = re.search(r"held-out: [\d.]+ bits/byte \(([\d.]+) % rate", log).group(1)
    rate = float(cells[4])
    adjusted = rate + 100 * 2 * params / 1e9
    best.append((rate, name))
    print(f"| {name} | {params} | {tokens} | {bpt:.2f} | {torch_rate} | {rate:.2f} | {adjusted:.2f} |"
          f" {float(cells[7]) * 1000:.1f} | {float(cells[8]) * 1000:.2f} |")
best.sort()
by = {n: r for r, n in best}
print()
print(f"Finding (computed): at equal training compute the lowest rate is {best[0][1]} ({best[0][0]:.2f} %)"
      f" and the highest {best[-1][1]} ({best[-1][0]:.2f} %); byte tokens: {by.get('bytes', float('nan')):.2f} %."
      " At this scale the comparison is of what each tokenization lets a small model learn in the"
      " same compute (larger vocabularies see more bytes per token but spend more of each step in"
      " the output layer), not of converged models.")
PY
cat docs/results/tokenization.md
