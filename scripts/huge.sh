#!/usr/bin/env bash
# A huge input streamed through lmzip in bounded memory: SIZE bytes of generated log lines
# (default 4G) are compressed from standard input with the fastest model (the weightless
# baseline), decompressed again in the same pipe and compared byte for byte with the generator's
# output; prints throughput and each side's peak resident memory. A benchmark, not a test (4 GB
# takes about an hour on two cores).
#
# Usage: scripts/huge.sh [SIZE]      (SIZE as head -c takes it: 256M, 4G, ...)
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-4G}
cargo build --release --locked -q -p lmzip-cli
lmzip=$PWD/target/release/lmzip
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
generate() (
  # Log-like lines with counters, so the data is neither constant nor random. awk ends on
  # SIGPIPE when head has enough: expected, so not a pipeline failure here.
  set +o pipefail
  awk 'BEGIN { for (i = 0; ; i++) printf "2026-11-30T%02d:%02d:%02d host%d sshd[%d]: session %x opened for user u%d\n", i/3600%24, i/60%60, i%60, i%7, 1000+i%977, i*2654435761%4294967296, i%113 }' |
    head -c "$size"
)
start=$(date +%s.%N)
generate |
  /usr/bin/time -f "compress:   peak RSS %M KiB" -o "$work/c.time" "$lmzip" --model baseline -T 2 -c |
  tee >(wc -c > "$work/archive.len") |
  /usr/bin/time -f "decompress: peak RSS %M KiB" -o "$work/d.time" "$lmzip" -d -T 2 -c |
  cmp - <(generate)
end=$(date +%s.%N)
bytes=$(generate | wc -c)
sleep 1
echo "size: $bytes bytes -> $(cat "$work/archive.len") bytes archived, round trip identical"
python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'time: {s:.0f} s, {int(sys.argv[3])/s/1e6:.2f} MB/s through compress and decompress at once')" "$start" "$end" "$bytes"
cat "$work/c.time" "$work/d.time"
