"""lmzip on Ray (``pip install lmzip[ray]``): many files, one big file, or a model's score over
a data set, on every node of a Ray cluster. No cluster code of lmzip's own: Ray Data reads the
files and maps batches over a pool of actors, each holding one model, and Ray tasks code the
blocks of a big file. Every archive is byte for byte the command line's.

    import ray, lmzip.ray
    ray.init()
    lmzip.ray.compress_files("corpus/", "out/")          # out/<file>.lmz for every file
    lmzip.ray.compress_large("big.bin", "big.bin.lmz")   # == lmzip -c big.bin > big.bin.lmz
    lmzip.ray.score(ray.data.read_binary_files("corpus/"), chunks=True)
"""

from __future__ import annotations

import builtins
import os
from pathlib import Path
from typing import Iterable, List, Optional, Union

import numpy as np
import ray

import lmzip
from lmzip import _lmzip

__all__ = ["compress_files", "compress_large", "score"]



PathLike = Union[str, "os.PathLike[str]"]


def _option_kwargs(model, level, block_size, chunks, chunk_size, threads) -> dict:
    # Plain values, so that Ray can send them to any node.
    return dict(
        model=lmzip._spec(model),
        level=level,
        block_size=block_size,
        chunks=chunks,
        chunk_size=chunk_size,
        threads=threads,
    )


def _inputs(paths_or_dir: Union[PathLike, Iterable[PathLike]]) -> List[tuple]:
    """(input path, output name) pairs: a directory's regular files by their relative paths, or
    the given files by their names (which must then differ)."""
    if isinstance(paths_or_dir, (str, os.PathLike)) and Path(paths_or_dir).is_dir():
        root = Path(paths_or_dir)
        files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
        return [(str(p), str(p.relative_to(root))) for p in files]
    if isinstance(paths_or_dir, (str, os.PathLike)):
        paths_or_dir = [paths_or_dir]
    pairs = [(os.fspath(p), Path(p).name) for p in paths_or_dir]
    names = [n for _, n in pairs]
    if len(set(names)) != len(names):
        raise lmzip.Error("two input files have the same name; give their directory instead")
    return pairs


class _Compressor:
    """A Ray Data actor: one model, loaded once, compressing the files of each batch."""

    def __init__(self, out_dir: str, options: dict, force: bool):
        self.model = lmzip.Model.load(options["model"]) if options["model"] else None
        self.options = dict(options, model=self.model)
        self.out_dir = out_dir
        self.force = force

    def __call__(self, batch: dict) -> dict:
        outs, originals, sizes = [], [], []
        for path, name in zip(batch["path"], batch["name"]):
            out = os.path.join(self.out_dir, name + ".lmz")
            with builtins.open(path, "rb") as f:
                data = f.read()
            archive = lmzip.compress(data, **self.options)
            os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
            tmp = out + ".tmp"
            with builtins.open(tmp, "wb") as f:
                f.write(archive)
            if os.path.exists(out) and not self.force:
                os.remove(tmp)
                raise lmzip.Error(f"{out} already exists (force=True overwrites)")
            os.replace(tmp, out)
            outs.append(out)
            originals.append(len(data))
            sizes.append(len(archive))
        return {"output": outs, "original": originals, "compressed": sizes}


def compress_files(
    paths_or_dir: Union[PathLike, Iterable[PathLike]],
    out_dir: PathLike,
    *,
    workers: Optional[int] = None,
    model=None,
    level: Optional[int] = None,
    block_size: Optional[int] = None,
    chunks: bool = False,
    chunk_size: Optional[int] = None,
    threads: int = 1,
    force: bool = False,
) -> List[dict]:
    """Compress every file (a directory's, recursively, or those listed) into
    ``out_dir/<name>.lmz``, the bytes ``lmzip -c <file>`` writes, with Ray Data over a pool of
    ``workers`` actors (by default as many as the cluster's CPUs hold) of ``threads`` threads
    each. Refuses to overwrite unless ``force``.
    Returns one dict per file: input, output, original and compressed sizes."""
    pairs = _inputs(paths_or_dir)
    out_dir = os.fspath(out_dir)
    if not force:
        for _, name in pairs:
            out = os.path.join(out_dir, name + ".lmz")
            if os.path.exists(out):
                raise lmzip.Error(f"{out} already exists (force=True overwrites)")
    if not pairs:
        return []
    options = _option_kwargs(model, level, block_size, chunks, chunk_size, threads)
    # The actors read their files: a read task would wait for a CPU that the pool may hold.
    ds = ray.data.from_items([dict(path=p, name=n) for p, n in pairs])
    results = ds.map_batches(
        _Compressor,
        fn_constructor_kwargs=dict(out_dir=out_dir, options=options, force=force),
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=workers or _pool_size(threads)),
        num_cpus=threads,
    ).take_all()
    by_output = {r["output"]: r for r in results}
    rows = []
    for path, name in pairs:
        r = by_output[os.path.join(out_dir, name + ".lmz")]
        rows.append(
            dict(input=path, output=r["output"], original=int(r["original"]), compressed=int(r["compressed"]))
        )
    return rows


def _pool_size(threads: int, spare: int = 0) -> int:
    """Actors of ``threads`` CPUs that the cluster holds, less ``spare`` CPUs."""
    cpus = int(ray.cluster_resources().get("CPU", 1)) - spare
    return max(1, cpus // max(1, threads))


@ray.remote
def _code_blocks(data: bytes, block: int, options: dict) -> list:
    opts = _lmzip.Options(**options)
    return [_lmzip.code_block(data[i : i + block], opts) for i in range(0, len(data), block)]


def compress_large(
    path: PathLike,
    out: PathLike,
    *,
    model=None,
    level: Optional[int] = None,
    block_size: Optional[int] = None,
    chunks: bool = False,
    chunk_size: Optional[int] = None,
    threads: int = 1,
    task_bytes: int = 1 << 20,
    force: bool = False,
) -> dict:
    """Compress one big file into ``out`` with its independent blocks (solid mode) or chunks
    coded as Ray tasks on any node, each task at least ``task_bytes`` of whole blocks, then
    joined in order: the archive ``lmzip -c path`` writes on one machine. The whole data's
    CRC-32C is combined from the blocks' ones. Returns the sizes."""
    path, out = os.fspath(path), os.fspath(out)
    if os.path.exists(out) and not force:
        raise lmzip.Error(f"{out} already exists (force=True overwrites)")
    options = _option_kwargs(model, level, block_size, chunks, chunk_size, threads)
    opts = _lmzip.Options(**options)
    block = _lmzip.block_size(opts)
    per_task = block * max(1, task_bytes // block)
    size = os.path.getsize(path)
    refs = []
    with builtins.open(path, "rb") as f:
        while True:
            data = f.read(per_task)
            if not data:
                break
            refs.append(_code_blocks.options(num_cpus=threads).remote(data, block, options))
    tmp = out + ".tmp"
    try:
        writer = _lmzip.BlockWriter(tmp, opts, size)
        for ref in refs:
            for record, length, crc in ray.get(ref):
                writer.push(record, length, crc)
        writer.finish()
        os.replace(tmp, out)
    except BaseException:
        for ref in refs:
            ray.cancel(ref)
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return dict(input=path, output=out, original=size, compressed=os.path.getsize(out), tasks=len(refs))


class _Scorer:
    """A Ray Data actor: the bits a model spends on each file of a batch."""

    def __init__(self, options: dict):
        self.model = lmzip.Model.load(options["model"]) if options["model"] else None
        self.options = dict(options, model=self.model)

    def __call__(self, batch: dict) -> dict:
        bits = [float(lmzip.code_lengths(bytes(d), **self.options).sum()) for d in batch["bytes"]]
        return {"bytes": np.array([len(d) for d in batch["bytes"]]), "bits": np.array(bits)}


def score(
    dataset: "ray.data.Dataset",
    model=None,
    *,
    chunks: bool = True,
    chunk_size: Optional[int] = None,
    level: Optional[int] = None,
    block_size: Optional[int] = None,
    workers: Optional[int] = None,
    threads: int = 1,
) -> dict:
    """Bits per byte of ``model`` over a Ray Dataset of files (a ``bytes`` column, as
    ``ray.data.read_binary_files`` gives): by default the paper's measurement, every 2048-byte
    chunk coded from a cold start; ``chunks=False`` scores solid mode instead. Returns the
    files, bytes, bits, bits per byte and the rate (bits / 8 / bytes)."""
    options = _option_kwargs(model, level, block_size, chunks, chunk_size, threads)
    scored = dataset.select_columns(["bytes"]).map_batches(
        _Scorer,
        fn_constructor_kwargs=dict(options=options),
        batch_size=1,
        # By default one CPU is left to the data set's read tasks.
        compute=ray.data.ActorPoolStrategy(size=workers or _pool_size(threads, spare=1)),
        num_cpus=threads,
    )
    files = n_bytes = 0
    bits = 0.0
    for row in scored.iter_rows():
        files += 1
        n_bytes += int(row["bytes"])
        bits += float(row["bits"])
    return dict(
        files=files,
        bytes=n_bytes,
        bits=bits,
        bits_per_byte=bits / n_bytes if n_bytes else 0.0,
        rate=bits / 8 / n_bytes if n_bytes else 0.0,
    )
