#!/usr/bin/env bash
# The recipe of the GPU-trained models in models/ (see models/README.md).
#
#   scripts/train-default-gpu.sh prepare      # here: data from ../shared/data into .gpu/carry
#   scripts/train-default-gpu.sh train OUT    # on the GPU machine: two models side by side
#
# `prepare` writes the chunks `lmzip train` uses (`lmzip dataset`: same preprocessing, same
# held-out files) and xz-compresses them; the image training chunks are thinned to every other
# chunk and the held-out image chunks to every fourth, so that everything fits the 64 MiB that
# travels to the GPU machine. `train` trains the 3.2M and the 800K shapes (context 2048) for
# MINUTES (default 6.5) each, at the same time on one GPU, with scripts/train_gpu.py.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
prepare)
    cargo run --release -- dataset -f .gpu/data
    mkdir -p .gpu/carry
    python3 - <<'PY'
import numpy as np
for name, step in (("images.train", 2), ("images.held-out", 4)):
    a = np.fromfile(f".gpu/data/{name}", dtype=np.uint8).reshape(-1, 2048)
    a[::step].tofile(f".gpu/data/{name}.thin")
PY
    for f in text.train text.held-out audio8.train audio8.held-out; do
        xz -T2 -6 -c ".gpu/data/$f" > ".gpu/carry/$f.xz"
    done
    for f in images.train images.held-out; do
        xz -T2 -6 -c ".gpu/data/$f.thin" > ".gpu/carry/$f.xz"
    done
    ls -l .gpu/carry
    ;;
train)
    out=${2:?usage: train OUT [MINUTES]}
    minutes=${3:-6.5}
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
    python3 -c 'import torch; print("torch", torch.__version__)'
    export PYTHONUNBUFFERED=1
    python3 scripts/train_gpu.py --data .gpu/carry --out "$out/gpu-3.2m" --preset 3.2m \
        --minutes "$minutes" --batch 128 --lr 1.5e-3 --eval-every 90 --compile \
        > "$out/3.2m.log" 2>&1 &
    big=$!
    python3 scripts/train_gpu.py --data .gpu/carry --out "$out/gpu-800k" --preset 800k \
        --minutes "$minutes" --batch 128 --lr 2e-3 --eval-every 90 --compile \
        > "$out/800k.log" 2>&1 &
    small=$!
    status=0
    wait $big || status=1
    wait $small || status=1
    tail -n 6 "$out/3.2m.log" "$out/800k.log"
    exit $status
    ;;
*)
    sed -n '2,11p' "$0"
    exit 2
    ;;
esac
