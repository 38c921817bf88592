#!/usr/bin/env python3
"""Whole files, coded whole: lmzip's solid mode beside xz -9e, zstd -19 --long, brotli -q 11 and
zpaq -m5, in one run, on the everyday set (scripts/everyday.sh).

usage: scripts/solid_bench.py [--dir DIR] [--out docs/SOLID.md] [--lmzip='-1;-6 --model baseline']
($LMZIP: the lmzip binary to measure, by default target/release/lmzip)

Every lmzip archive is decompressed and compared with the original; speeds are wall-clock KB/s
(1 KB = 1000 bytes) at -T 2 on this machine. Rates are compressed / original size in percent.
"""
import argparse, os, shutil, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LMZIP = os.environ.get('LMZIP', os.path.join(ROOT, 'target', 'release', 'lmzip'))

CLASSIC = {
    'xz -9e': (['xz', '-9e', '-c'], None),
    'zstd -19 --long': (['zstd', '-19', '--long=27', '-q', '-c'], None),
    'brotli -q 11': (['brotli', '-q', '11', '-w', '24', '-c'], None),
    'zpaq -m5': (None, 'zpaq'),
}

def timed(cmd, stdin_path, stdout_path):
    with open(stdin_path, 'rb') as i, open(stdout_path, 'wb') as o:
        start = time.perf_counter()
        subprocess.run(cmd, stdin=i, stdout=o, stderr=subprocess.PIPE, check=True)
        return time.perf_counter() - start

def zpaq_size(path, tmp):
    archive = os.path.join(tmp, 'a.zpaq')
    if os.path.exists(archive):
        os.remove(archive)
    start = time.perf_counter()
    subprocess.run(['zpaq', 'a', archive, os.path.basename(path), '-m5'], cwd=os.path.dirname(path),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return os.path.getsize(archive), time.perf_counter() - start

def main():
    p = argparse.ArgumentParser()
    p.add_argument('--dir', default=os.path.expanduser('~/.cache/lmzip/everyday'))
    p.add_argument('--out', default=os.path.join(ROOT, 'docs', 'SOLID.md'))
    p.add_argument('--lmzip', default='-1;-6 --model baseline;--chunks;-6',
                   help="lmzip option sets separated by ';' (pass as --lmzip='...')")
    p.add_argument('--files', nargs='*')
    a = p.parse_args()
    files = a.files or sorted(f for f in os.listdir(a.dir) if f != 'MANIFEST.tsv')
    tmp = tempfile.mkdtemp()
    rows = []
    for name in files:
        path = os.path.join(a.dir, name)
        n = os.path.getsize(path)
        row = {'file': name, 'bytes': n}
        for label, (cmd, kind) in CLASSIC.items():
            if kind == 'zpaq':
                if shutil.which('zpaq') is None:
                    continue
                size, secs = zpaq_size(path, tmp)
            else:
                out = os.path.join(tmp, 'c')
                secs = timed(cmd, path, out)
                size = os.path.getsize(out)
            row[label] = (size, secs, None)
        for opts in a.lmzip.split(';'):
            out, back = os.path.join(tmp, 'c.lmz'), os.path.join(tmp, 'back')
            csecs = timed([LMZIP, '-c', '-T', '2'] + opts.split(), path, out)
            dsecs = timed([LMZIP, '-dc', '-T', '2'], out, back)
            if open(back, 'rb').read() != open(path, 'rb').read():
                sys.exit(f'lmzip {opts} did not round-trip {name}')
            row['lmzip ' + opts] = (os.path.getsize(out), csecs, dsecs)
        rows.append(row)
        print(name, {k: v[0] for k, v in row.items() if isinstance(v, tuple)}, flush=True)
    write_table(a, rows)

def write_table(a, rows):
    labels = [k for k in rows[0] if k not in ('file', 'bytes')]
    lines = ['| file | bytes | ' + ' | '.join(labels) + ' |',
             '|---|---:|' + '---:|' * len(labels)]
    for r in rows:
        cells = []
        best_classic = min(r[k][0] for k in CLASSIC if k in r)
        for k in labels:
            size = r[k][0]
            cell = f'{100 * size / max(r["bytes"], 1):.2f}'
            if k.startswith('lmzip') and size < best_classic:
                cell = f'**{cell}**'
            cells.append(cell)
        lines.append(f'| {r["file"]} | {r["bytes"]} | ' + ' | '.join(cells) + ' |')
    total = sum(r['bytes'] for r in rows)
    speed = ['', '| speed (KB/s, compress / decompress) | ' + f'{total} | ' + ' | '.join(
        (f'{total / 1000 / sum(r[k][1] for r in rows):.0f}' +
         (f' / {total / 1000 / sum(r[k][2] for r in rows):.0f}' if rows[0][k][2] is not None else ''))
        for k in labels) + ' |']
    table = '\n'.join(lines + speed[1:]) + '\n'
    with open(a.out + '.table', 'w') as f:
        f.write(table)
    print(table)

if __name__ == '__main__':
    main()
