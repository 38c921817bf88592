#!/usr/bin/env bash
# The first law across machines: lmzip built for plain x86-64, x86-64-v3 (AVX2 + FMA), this
# CPU (-C target-cpu=native) and aarch64 (run under qemu-user) must write byte-identical
# archives with a Transformer, an LLM, and in solid mode (the mixer, with and without a
# Transformer), and decode each other's. Each x86-64 build also runs with its
# kernels capped at the portable version (LMZIP_ISA=portable).
#
# Usage: scripts/cross-isa.sh [--no-aarch64]
# Needs for aarch64: rustup target aarch64-unknown-linux-gnu, Debian's gcc-aarch64-linux-gnu
# and qemu-user (installed here when missing and apt-get is available).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
shared=$root/../shared/data
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
aarch64=1
[[ "${1:-}" == "--no-aarch64" ]] && aarch64=0

log() { printf '\n== %s\n' "$*"; }

# Builds: name -> binary (and how to run it).
declare -A bin run
# Only the native build needs the lab commands (init-model, tokenizer make the test models);
# the others are built without them (no benchmark, plotting or training dependencies), which
# halves their build time.
for cpu in x86-64 x86-64-v3 native; do
  log "build for target-cpu=$cpu"
  features=(--no-default-features); [[ $cpu == native ]] && features=()
  RUSTFLAGS="-C target-cpu=$cpu" cargo build --locked -q --profile cross -p lmzip-cli \
    "${features[@]}" --target-dir "target/cross-$cpu"
  bin[$cpu]=$root/target/cross-$cpu/cross/lmzip
  run[$cpu]=""
done
# The aarch64 leg needs a download of Rust's aarch64 standard library and two Debian packages;
# where they cannot be had, it is skipped with a notice (the x86-64 legs still run).
if (( aarch64 )); then
  if ! command -v qemu-aarch64 >/dev/null || ! command -v aarch64-linux-gnu-gcc >/dev/null; then
    log "install qemu-user and gcc-aarch64-linux-gnu"
    sudo_cmd=""; [[ $(id -u) -ne 0 ]] && sudo_cmd=sudo
    { $sudo_cmd apt-get update -q && \
      $sudo_cmd apt-get install -y -q qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross; } \
      >/dev/null 2>&1 || { echo "SKIPPED aarch64: cannot install qemu-user / gcc-aarch64-linux-gnu"; aarch64=0; }
  fi
fi
if (( aarch64 )) && ! rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1; then
  echo "SKIPPED aarch64: cannot install the aarch64-unknown-linux-gnu standard library"
  aarch64=0
fi
if (( aarch64 )); then
  log "build for aarch64-unknown-linux-gnu"
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
    cargo build --locked -q --profile cross -p lmzip-cli --no-default-features \
    --target aarch64-unknown-linux-gnu \
    --target-dir target/cross-aarch64
  bin[aarch64]=$root/target/cross-aarch64/aarch64-unknown-linux-gnu/cross/lmzip
  run[aarch64]="qemu-aarch64 -L /usr/aarch64-linux-gnu"
fi

# Models: the specialised head widths 16 and 32, a generic one (8), and post-LN.
cd "$work"
native=${bin[native]}
$native init-model m16 --d-model 64 --layers 2 --heads 4 --seed 11 >/dev/null
$native init-model m32 --d-model 64 --layers 2 --heads 2 --seed 12 --post-ln >/dev/null
$native init-model m8 --d-model 32 --layers 1 --heads 4 --seed 13 --context 1024 >/dev/null
# A token-level LLM: a Llama-shaped random model (RMSNorm, SwiGLU, grouped-query attention)
# with a byte-level BPE of 400 tokens trained on a book.
$native tokenizer tok.json --vocab 400 --from "$shared/text/canterbury/alice29.txt" 2>/dev/null
$native init-model llm --preset llama-tiny --tokenizer tok.json --seed 14 >/dev/null
# Inputs: prose, C and HTML (coded by these random models, which favour English bytes) and a
# spreadsheet (incompressible for them: stored chunks).
c=$shared/text/canterbury
head -c 5000 "$c/alice29.txt" > text.bin
head -c 3000 "$c/fields.c" > code.bin
tail -c 2500 "$c/cp.html" > html.bin
head -c 2100 "$c/kennedy.xls" > binary.bin
# The shipped default model (trained weights) on a short held-out text: the x86-64 baseline
# build computes every product through the C library's correctly rounded fmaf, and aarch64 runs
# under emulation, so this input is kept small.
cp -r "$root/models/lmzip-800k" lmzip-800k
head -c 400 "$shared/text/books/pg1342_pride_and_prejudice.txt" > book.bin
declare -A inputs=(
  [m16]="text.bin code.bin html.bin binary.bin"
  [m32]="text.bin code.bin html.bin binary.bin"
  [m8]="text.bin code.bin html.bin binary.bin"
  [lmzip-800k]="book.bin"
  [llm]="text.bin code.bin binary.bin"
)

# x86 machine code (solid blocks take the E8/E9 transform) for the adaptive models.
head -c 30000 /usr/bin/bash > elf.bin

status=0
# check LABEL INPUT OPTIONS...: every build writes the same archive and decodes the reference.
check() {
  local label=$1 input=$2; shift 2
  local ref="" build isa out
  for build in "${!bin[@]}"; do
    for isa in default portable; do
      [[ $build == aarch64 && $isa == portable ]] && continue
      out="$input.$label.$build.$isa.lmz"
      env_isa=(); [[ $isa == portable ]] && env_isa=(env LMZIP_ISA=portable)
      "${env_isa[@]}" ${run[$build]} "${bin[$build]}" -c -T 2 "$@" "$input" > "$out"
      if [[ -z $ref ]]; then ref=$out; elif ! cmp -s "$ref" "$out"; then
        echo "DIFFERENT ARCHIVE: $out vs $ref"; status=1
      fi
    done
  done
  # Every build decodes the reference archive.
  for build in "${!bin[@]}"; do
    if ! ${run[$build]} "${bin[$build]}" -dc -T 3 "$@" "$ref" | cmp -s - "$input"; then
      echo "DECODE FAILED: $build on $ref"; status=1
    fi
  done
  printf '%-16s %-10s %6d -> %6d bytes, %s; identical on: %s\n' "$label" "$input" \
    "$(stat -c %s "$input")" "$(stat -c %s "$ref")" \
    "$($native info "$ref" | sed -n 's/^ *\(chunks\|mode\): *//p' | paste -sd' ')" "${!bin[*]}"
}

# The paper's independent chunks, each model alone.
for model in m16 m32 m8 lmzip-800k llm; do
  for input in ${inputs[$model]}; do
    check "$model" "$input" --chunks --chunk-size 1024 --model "./$model"
  done
done
# Solid mode: the mixer with a Transformer (restarting every 1024 bytes for m8), and the
# adaptive models alone at levels 1 and 9 (with the x86 transform on machine code).
for model in m16 m8 lmzip-800k; do
  for input in ${inputs[$model]% *}; do
    check "solid-$model" "$input" -6 --block-size 65536 --model "./$model"
  done
done
for input in text.bin binary.bin elf.bin; do
  check solid-adaptive-1 "$input" -1
  check solid-adaptive-9 "$input" -9 --model baseline
done
exit $status
