#!/usr/bin/env python3
"""Python beside the command line, and Ray with 1 and 2 workers (docs/PYTHON.md).

Run with the package installed (pip install ".[ray]") and the command built:

    LMZIP_BIN=target/release/lmzip python scripts/python_bench.py [--data ../shared/data]

1. The same 1 MB of held-out text compressed and decompressed by `lmzip` (a process) and by
   `lmzip.compress`/`lmzip.decompress` in this process, at several settings, best of 3; the
   archives must be identical.
2. `lmzip.ray.compress_files` over N files on a local cluster with 1 and 2 workers, beside the
   same files coded in a loop in this process: the speed-up and the overhead per file.
3. `lmzip.ray.compress_large` of one multi-block file with 1 and 2 CPUs' worth of tasks.
Prints markdown tables.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lmzip


def is_held_out(path: Path) -> bool:
    """`lmzip_data::is_held_out`: a salted FNV-1a hash of the file name, 1 file in 20."""
    h = 0xCBF29CE484222325
    for b in b"lmzip-held-out-14:" + os.fsencode(path.name):
        h = ((h ^ b) * 0x100000001B3) % (1 << 64)
    return h % 20 == 0


def held_out_text(data: Path, size: int) -> bytes:
    """`size` bytes of the held-out text files (never trained on), concatenated."""
    out = b""
    for p in sorted((data / "text").rglob("*")):
        if p.is_file() and p.suffix not in (".md", ".tsv") and is_held_out(p):
            out += p.read_bytes()
        if len(out) >= size:
            break
    if len(out) < size:
        sys.exit(f"only {len(out)} bytes of held-out text under {data}")
    return out[:size]


def best(f, repeat=3):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        result = f()
        times.append(time.perf_counter() - t)
    return min(times), result


def cli_vs_python(binary: str, data: bytes, settings):
    print(f"\n### Python beside the command line: {len(data)} bytes, best of 3\n")
    print("| setting | CLI compress s | Python compress s | overhead | CLI decompress s | Python decompress s | overhead | identical |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "input"
        src.write_bytes(data)
        for flags, options in settings:
            t_cli, archive_cli = best(lambda: subprocess.run([binary, "-c", *flags, src], check=True, capture_output=True).stdout)
            t_py, archive_py = best(lambda: lmzip.compress(data, **options))
            arc = Path(d) / "a.lmz"
            arc.write_bytes(archive_cli)
            td_cli, back_cli = best(lambda: subprocess.run([binary, "-dc", arc], check=True, capture_output=True).stdout)
            td_py, back_py = best(lambda: lmzip.decompress(archive_py))
            assert back_cli == data and back_py == data
            print(
                f"| `{' '.join(flags)}` | {t_cli:.3f} | {t_py:.3f} | {100 * (t_py / t_cli - 1):+.1f} % "
                f"| {td_cli:.3f} | {td_py:.3f} | {100 * (td_py / td_cli - 1):+.1f} % | {archive_cli == archive_py} |"
            )


def ray_files(files, options, scratch: Path):
    import lmzip.ray as lray

    total = sum(len(f.read_bytes()) for f in files)
    print(f"\n### Ray Data: {len(files)} files, {total} bytes, {options}\n")
    t, _ = best(lambda: [lmzip.compress(f.read_bytes(), threads=1, **options) for f in files], repeat=1)
    tiny = []
    for i in range(2):
        p = scratch / f"tiny{i}"
        p.write_bytes(b"x")
        tiny.append(p)
    print("| run | seconds | speed-up over the loop | fixed cost s (a warm run on 2 one-byte files) | overhead per file ms |")
    print("|---|---:|---:|---:|---:|")
    print(f"| loop in this process, 1 thread | {t:.2f} | 1.00 | | |")
    for workers in (1, 2):
        for _ in range(2):  # the first run warms Ray Data up; the second is the fixed cost
            with tempfile.TemporaryDirectory() as out:
                start = time.perf_counter()
                lray.compress_files(tiny, out, workers=workers, threads=1, **options)
                fixed = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            lray.compress_files(files, out, workers=workers, threads=1, **options)
            elapsed = time.perf_counter() - start
        per_file = (elapsed - fixed - t / workers) / len(files) * 1000
        print(f"| compress_files, {workers} worker(s) | {elapsed:.2f} | {t / elapsed:.2f} | {fixed:.2f} | {per_file:.0f} |")


def ray_large(path: Path, options):
    import lmzip.ray as lray

    data = path.read_bytes()
    print(f"\n### compress_large: {len(data)} bytes, {options}\n")
    t, archive = best(lambda: lmzip.compress(data, threads=1, **options), repeat=1)
    print("| run | seconds | speed-up | identical to lmzip.compress |")
    print("|---|---:|---:|---|")
    print(f"| lmzip.compress, 1 thread | {t:.2f} | 1.00 | |")
    for task_bytes in (len(data), len(data) // 2):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            r = lray.compress_large(path, Path(out) / "x.lmz", task_bytes=task_bytes, **options)
            elapsed = time.perf_counter() - start
            same = (Path(out) / "x.lmz").read_bytes() == archive
        print(f"| compress_large, {r['tasks']} task(s) | {elapsed:.2f} | {t / elapsed:.2f} | {same} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--size", type=int, default=1 << 20)
    ap.add_argument("--files", type=int, default=16)
    args = ap.parse_args()
    binary = os.environ.get("LMZIP_BIN", "target/release/lmzip")
    data = held_out_text(args.data, args.size)
    print(f"lmzip {lmzip.NUMERICS_VERSION=}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    cli_vs_python(
        binary,
        data,
        [
            (["-1"], dict(level=1)),
            (["-3"], dict(level=3)),
            (["--chunks", "--model", "baseline"], dict(chunks=True, model="baseline")),
        ],
    )
    import ray

    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    with tempfile.TemporaryDirectory() as d:
        files = []
        piece = len(data) // args.files
        for i in range(args.files):
            f = Path(d) / f"f{i:03}"
            f.write_bytes(data[i * piece : (i + 1) * piece])
            files.append(f)
        ray_files(files, dict(level=3), Path(d))
        big = Path(d) / "big"
        big.write_bytes(data)
        ray_large(big, dict(level=3, block_size=1 << 18))
    ray.shutdown()


if __name__ == "__main__":
    main()
