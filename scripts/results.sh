#!/usr/bin/env bash
# Regenerate docs/RESULTS.md and docs/results/ on ../shared/data: the paper's Table 1 with the
# shipped models, every measurement, and the plots. About 18 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
# The shipped models by name (the current directory is not in the model search path).
export LMZIP_MODEL_PATH="${LMZIP_MODEL_PATH:+$LMZIP_MODEL_PATH:}$PWD/models"
cargo run --release -- bench --held-out --unchunked --chunks 128 \
    --modality text,images,audio8,random,text:../shared/data/text/wikipedia/enwik8 \
    --model baseline,lmzip-200k,lmzip-800k,lmzip-3.2m -T 2 --report docs/RESULTS.md "$@"
# The tokenization study is slower (scripts/tokenization-study.sh, about 40 minutes); its last
# table is kept in docs/results/tokenization.md and appended here.
if [[ -f docs/results/tokenization.md ]]; then
  { echo; cat docs/results/tokenization.md; } >> docs/RESULTS.md
fi
