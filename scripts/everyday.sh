#!/usr/bin/env bash
# Build the everyday-files benchmark set from what a Debian machine has (none of it is in
# ../shared/data): JSON lines, CSV and SQLite made from the package database, system logs, a
# crate's source as a tar, C headers, man pages (troff), an ELF binary, a shared library, a PDF,
# and the held-out text, image-patch and 8-bit speech chunks of ../shared/data as whole streams.
# Each file is cut to SIZE bytes (default 409600, the size of the issue's table).
#
# usage: scripts/everyday.sh [OUT] [SIZE]      (OUT: ~/.cache/lmzip/everyday)
# Writes OUT/MANIFEST.tsv (file, bytes, sha256, source). The files differ between machines
# (they are what this machine has installed); the manifest says which bytes were measured.
set -eu  # no pipefail: `head` ends producers early (SIGPIPE) on purpose
out=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/lmzip/everyday}
size=${2:-409600}
root=$(cd "$(dirname "$0")/.." && pwd)
data=${LMZIP_DATA:-$root/../shared/data}
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cut_to() { head -c "$size" > "$out/$1"; }
declare -A source

python3 - "$tmp" <<'PY'
import csv, json, sqlite3, sys
tmp = sys.argv[1]
packages, cur = [], {}
for line in open('/var/lib/dpkg/status', encoding='utf-8', errors='replace'):
    line = line.rstrip('\n')
    if not line:
        if cur: packages.append(cur)
        cur = {}
    elif line[0] in ' \t':
        if last: cur[last] += '\n' + line.strip()
    elif ':' in line:
        last, value = line.split(':', 1)
        cur[last] = value.strip()
if cur: packages.append(cur)
with open(f'{tmp}/packages.jsonl', 'w') as f:
    for p in packages:
        f.write(json.dumps(p, sort_keys=True) + '\n')
fields = ['Package', 'Version', 'Architecture', 'Installed-Size', 'Priority', 'Section', 'Maintainer', 'Depends']
with open(f'{tmp}/packages.csv', 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(fields)
    for p in packages:
        w.writerow([p.get(k, '') for k in fields])
db = sqlite3.connect(f'{tmp}/packages.sqlite')
db.execute('PRAGMA page_size=4096')
db.execute('CREATE TABLE package (name TEXT, version TEXT, arch TEXT, size INTEGER, depends TEXT, description TEXT)')
db.executemany('INSERT INTO package VALUES (?,?,?,?,?,?)', [
    (p.get('Package'), p.get('Version'), p.get('Architecture'), int(p.get('Installed-Size', '0') or 0),
     p.get('Depends', ''), p.get('Description', '')) for p in packages])
db.commit()
db.close()
PY
cut_to json < "$tmp/packages.jsonl"; source[json]="/var/lib/dpkg/status as JSON lines"
cut_to csv < "$tmp/packages.csv"; source[csv]="/var/lib/dpkg/status as CSV"
cut_to sqlite < "$tmp/packages.sqlite"; source[sqlite]="/var/lib/dpkg/status as an SQLite database"
cat /var/log/dpkg.log /var/log/apt/term.log /var/log/apt/history.log 2>/dev/null | cut_to log
source[log]="/var/log/dpkg.log, apt/term.log, apt/history.log"
crate=$(ls -d "$HOME"/.cargo/registry/src/*/serde_json-* | sort | head -1)
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$(dirname "$crate")" \
    -cf - "$(basename "$crate")" | cut_to source.tar
source[source.tar]="$(basename "$crate") (crates.io) as a tar"
find /usr/include -maxdepth 1 -name '*.h' | sort | xargs cat 2>/dev/null | cut_to headers.h
source[headers.h]="/usr/include/*.h, concatenated"
find /usr/share/man/man1 -name '*.1.gz' | sort | head -400 | xargs zcat 2>/dev/null | cut_to man.troff
source[man.troff]="/usr/share/man/man1/*.1.gz, decompressed and concatenated"
cut_to bash.elf < /usr/bin/bash; source[bash.elf]="/usr/bin/bash (ELF x86-64 executable)"
libc=$(ls /usr/lib/*-linux-gnu/libc.so.6 | head -1)
cut_to libc.so < "$libc"; source[libc.so]="$libc"
pdf=$(find /usr/share/doc -name '*.pdf' -size +100k | sort | head -1)
if [ -n "$pdf" ]; then cut_to doc.pdf < "$pdf"; source[doc.pdf]="$pdf"; fi

cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p lmzip-cli
"$root/target/release/lmzip" dataset "$tmp/ds" --data "$data" --modality text,images,audio8 -f >/dev/null 2>&1
for m in text images audio8; do
    cut_to "held-out-$m" < "$tmp/ds/$m.held-out"
    source[held-out-$m]="../shared/data held-out $m chunks (lmzip dataset), as one stream"
done

{
    printf 'file\tbytes\tsha256\tsource\n'
    for f in $(printf '%s\n' "${!source[@]}" | sort); do
        printf '%s\t%s\t%s\t%s\n' "$f" "$(stat -c %s "$out/$f")" \
            "$(sha256sum "$out/$f" | cut -d' ' -f1)" "${source[$f]}"
    done
} > "$out/MANIFEST.tsv"
echo "$out"
