#!/usr/bin/env python3
"""Hostile archives against the `lmzip` command: bit flips, truncations and forged lengths.

Makes genuine archives of a few small inputs in every mode (levels 1-9, the paper's chunks with
the default network and with the baseline), then mutates them: single-bit flips anywhere,
truncation at any length, and forgeries that a checksum cannot catch because the header's
CRC-32C is recomputed: the header's chunk size, the header's original length, and every record's
declared original and coded length. Each mutant is decoded with `lmzip -t` (and, when that
succeeds, with `lmzip -dc`, whose output is compared with the original) under a time limit.

Counts, per mode: clean refusals, accepted archives (each must decode to the original bytes),
wrong outputs, panics, deaths by a signal, hangs past the limit, and the slowest run.

    scripts/mutate.py --lmzip target/release/lmzip --count 10000 --timeout 5

Exit status 1 if any run panicked, died by a signal, hung, or decoded to other bytes.

    scripts/mutate.py --write-seeds DIR ARCHIVE...

writes the length forgeries of each ARCHIVE into DIR instead (seeds for scripts/fuzz.sh).
"""

import argparse
import collections
import concurrent.futures
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time

MAGIC = b"\x89LMZ\r\n\x1a\n"


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), bitwise: archives here are small."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varint(data: bytes, pos: int):
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def header_len(archive: bytes) -> int:
    flags, name_len = archive[9], archive[24]
    pos = 25 + name_len
    hash_len = archive[pos]
    pos += 1 + hash_len
    if flags & 1:
        pos += 32
    if flags & 2:
        pos += 1
    return pos + 4


def with_header_crc(archive: bytearray, end=None) -> bytes:
    """The archive with its header's CRC-32C recomputed (the header ending at `end`, or where
    its own fields say)."""
    end = end if end is not None else header_len(archive)
    archive[end - 4 : end] = struct.pack("<I", crc32c(bytes(archive[: end - 4])))
    return bytes(archive)


def records(archive: bytes):
    """(offset, tag, fields) of each chunk record: fields maps 'L' and 'C' to (start, end)
    byte ranges of their varints."""
    pos = header_len(archive)
    out = []
    while pos < len(archive):
        tag = archive[pos]
        if tag == 0:
            break
        start, pos = pos, pos + 1
        fields = {}
        if tag in (3, 4, 6):
            v_start = pos
            _, pos = read_varint(archive, pos)
            fields["L"] = (v_start, pos)
        payload = None
        if tag in (1, 3, 5, 6):
            v_start = pos
            payload, pos = read_varint(archive, pos)
            fields["C"] = (v_start, pos)
        if payload is None:
            chunk_size = struct.unpack_from("<I", archive, 12)[0]
            payload = (
                chunk_size
                if tag == 2
                else read_varint(archive, fields["L"][0])[0]
            )
        pos += 4 + payload
        out.append((start, tag, fields))
    return out


def forge_lengths(archive: bytes, rng: random.Random):
    """Archives whose lengths are edited with the header CRC fixed (records carry CRCs of the
    original data only, so their lengths can be edited freely)."""
    chunk_size = struct.unpack_from("<I", archive, 12)[0]
    for size in (1 << 24, (1 << 24) - 1, chunk_size * 2, chunk_size + 1, max(1, chunk_size // 2), 1):
        forged = bytearray(archive)
        struct.pack_into("<I", forged, 12, size)
        yield "chunk size", with_header_crc(forged)
        # The same with a partial record claiming nearly the whole (forged) chunk.
        for start, tag, fields in records(archive):
            if "L" in fields and size > 1:
                a, b = fields["L"]
                yield "chunk size + record length", with_header_crc(
                    bytearray(forged[:a] + varint(size - 1) + forged[b:])
                )
    for claim in (0, 1, 1 << 40, rng.randrange(1 << 24)):
        forged = bytearray(archive)
        struct.pack_into("<Q", forged, 16, claim)
        yield "original length", with_header_crc(forged)
    for start, tag, fields in records(archive):
        for name, (a, b) in fields.items():
            old = read_varint(archive, a)[0]
            for value in {0, 1, old - 1, old + 1, old * 2, chunk_size - 1, chunk_size, 1 << 24, (1 << 32) - 1, rng.randrange(1, 1 << 24)}:
                if value >= 0:
                    yield f"record {name}", archive[:a] + varint(value) + archive[b:]
        # The tag itself: full <-> partial, coded <-> stored.
        for new_tag in (1, 2, 3, 4, 5, 6):
            if new_tag != tag:
                yield "record tag", archive[:start] + bytes([new_tag]) + archive[start + 1 :]


def mutants(archive: bytes, rng: random.Random, count: int):
    forged = list(forge_lengths(archive, rng))
    rng.shuffle(forged)
    out = forged[: count // 2]
    while len(out) < count:
        kind = rng.random()
        if kind < 0.6:
            data = bytearray(archive)
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
            out.append(("bit flip", bytes(data)))
        elif kind < 0.8:
            out.append(("truncation", archive[: rng.randrange(len(archive))]))
        else:
            # A flip in the header with its CRC fixed: versions, flags, numerics, name.
            data = bytearray(archive)
            end = header_len(archive)
            i = rng.randrange(8, end - 4)
            data[i] ^= 1 << rng.randrange(8)
            out.append(("header field", with_header_crc(data, end)))
    return out


def run(lmzip, path, original, timeout):
    """Decode one mutant; returns (outcome, seconds)."""
    start = time.monotonic()
    try:
        test = subprocess.run(
            [lmzip, "-t", "-T", "1", path], capture_output=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return "hang", timeout
    seconds = time.monotonic() - start
    stderr = test.stderr.decode(errors="replace")
    if "panicked" in stderr:
        return "panic", seconds
    if test.returncode < 0 or test.returncode >= 128:
        return "signal", seconds
    if test.returncode != 0:
        return "refused", seconds
    try:
        out = subprocess.run(
            [lmzip, "-dc", "-T", "1", path], capture_output=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return "hang", timeout
    if out.returncode != 0 or out.stdout != original:
        return "wrong output", seconds
    return "accepted", seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lmzip", default="target/release/lmzip")
    parser.add_argument("--count", type=int, default=10000, help="mutants in all")
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-seeds", metavar="DIR", help="write forgeries of ARCHIVEs here")
    parser.add_argument("archives", nargs="*", metavar="ARCHIVE")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    if args.write_seeds:
        for path in args.archives:
            archive = open(path, "rb").read()
            for i, (_, forged) in enumerate(forge_lengths(archive, rng)):
                name = f"{os.path.basename(path)}.forged{i}"
                with open(os.path.join(args.write_seeds, name), "wb") as f:
                    f.write(forged)
        return
    inputs = {
        "text520": open("samples/pride.txt", "rb").read()[:520],
        "text3k": open("samples/pride.txt", "rb").read()[4000:7000],
        "zeros2k": bytes(2000),
        "binary1k": bytes(rng.randrange(256) if i % 7 else 0xE8 for i in range(1000)),
    }
    modes = {f"-{level}": [f"-{level}"] for level in range(1, 10)}
    modes["--chunks"] = ["--chunks"]
    modes["--chunks baseline"] = ["--chunks", "--model", "baseline"]
    modes["-6 blocks 2048"] = ["-6", "--block-size", "2048"]
    work = tempfile.mkdtemp(prefix="lmzip-mutate-")
    jobs = []
    per_archive = max(1, args.count // (len(modes) * len(inputs)))
    for mode, flags in modes.items():
        for name, data in inputs.items():
            src = os.path.join(work, name)
            with open(src, "wb") as f:
                f.write(data)
            archive = subprocess.run(
                [args.lmzip, "-c", "-T", "1", *flags, src], capture_output=True, check=True
            ).stdout
            for i, (kind, mutant) in enumerate(mutants(archive, rng, per_archive)):
                path = os.path.join(work, f"{mode.replace(' ', '_')}.{name}.{i}.lmz")
                with open(path, "wb") as f:
                    f.write(mutant)
                jobs.append((mode, kind, path, data))
    counts = collections.defaultdict(collections.Counter)
    slowest = collections.defaultdict(lambda: (0.0, ""))
    bad = []
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {
            pool.submit(run, args.lmzip, path, data, args.timeout): (mode, kind, path)
            for mode, kind, path, data in jobs
        }
        for future in concurrent.futures.as_completed(futures):
            mode, kind, path = futures[future]
            outcome, seconds = future.result()
            counts[mode][outcome] += 1
            if seconds > slowest[mode][0]:
                slowest[mode] = (seconds, f"{kind}: {os.path.basename(path)}")
            if outcome in ("panic", "signal", "hang", "wrong output"):
                bad.append((outcome, mode, kind, path))
            else:
                os.remove(path)
    outcomes = ["refused", "accepted", "wrong output", "panic", "signal", "hang"]
    print(f"| mode | mutants | {' | '.join(outcomes)} | slowest (s) | slowest mutant |")
    print("|---" * (len(outcomes) + 4) + "|")
    total = collections.Counter()
    for mode in modes:
        c = counts[mode]
        total.update(c)
        cells = " | ".join(str(c[o]) for o in outcomes)
        print(f"| {mode} | {sum(c.values())} | {cells} | {slowest[mode][0]:.2f} | {slowest[mode][1]} |")
    cells = " | ".join(str(total[o]) for o in outcomes)
    print(f"| all | {sum(total.values())} | {cells} | {max(s for s, _ in slowest.values()):.2f} | |")
    for outcome, mode, kind, path in bad:
        print(f"{outcome}: {mode} {kind} {path}", file=sys.stderr)
    if bad:
        print(f"the mutants above are kept in {work}", file=sys.stderr)
        sys.exit(1)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
