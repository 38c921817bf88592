"""lmzip: lossless compression with a language model driving an arithmetic coder.

The interface of ``gzip``, ``lzma`` and ``zstandard``::

    import lmzip
    archive = lmzip.compress(b"hello " * 100)
    assert lmzip.decompress(archive) == b"hello " * 100
    with lmzip.open("notes.txt.lmz", "wb") as f:
        f.write(b"...")

plus what the paper *Language Modeling Is Compression* measures: :func:`code_lengths`, the
bits a model spends on each byte, and :func:`bench`, the command line's benchmark rows.
Archives are byte for byte those of the ``lmzip`` command for the same input and options.
Every error is an :class:`Error`, a ``ValueError`` carrying lmzip's message. Coding releases
the GIL. The default model (``lmzip-800k-everyday``) is inside the extension, as it is inside
the command, with ``lmzip-800k``, the default before it.
"""

from __future__ import annotations

import builtins
import io
import json
import os
from typing import Any, Iterable, Optional, Union

import numpy as np

from . import _lmzip
from ._lmzip import DEFAULT_MODEL, NUMERICS_VERSION, Error

__all__ = [
    "DEFAULT_MODEL",
    "NUMERICS_VERSION",
    "Error",
    "LmzipFile",
    "Model",
    "bench",
    "code_lengths",
    "compress",
    "decompress",
    "info",
    "open",
]


class Model:
    """A model lmzip can code with: ``baseline`` (weightless), ``lmzip-800k-everyday`` (the
    compiled-in default), ``lmzip-800k`` (the previous default, compiled in), a model
    directory, a GGUF file, or a name in the model search path.

    ``Model.load`` checks that the model loads and describes it; the extension loads it again
    for each call (the default takes about 15 ms).
    """

    def __init__(self, spec: str, info: dict):
        self.spec = spec
        self.name: str = info["name"]
        self.kind: str = info["kind"]
        self.parameters: int = info["parameters"]
        self.sha256: Optional[str] = info["sha256"]
        self.context: Optional[int] = info["context"]

    @classmethod
    def load(cls, name_or_path: Union[str, "os.PathLike[str]"]) -> "Model":
        """Load a model by name or path; raise :class:`Error` if it cannot be had."""
        spec = os.fspath(name_or_path)
        return cls(spec, _lmzip.model_info(spec))

    def __repr__(self) -> str:
        return f"Model({self.name!r}, kind={self.kind!r}, parameters={self.parameters})"


ModelLike = Union[None, str, "os.PathLike[str]", Model]


def _spec(model: ModelLike) -> Optional[str]:
    if model is None:
        return None
    if isinstance(model, Model):
        return model.spec
    return os.fspath(model)


def _options(model: ModelLike, level, block_size, chunks, chunk_size, threads) -> Any:
    return _lmzip.Options(
        model=_spec(model),
        level=level,
        block_size=block_size,
        chunks=bool(chunks),
        chunk_size=chunk_size,
        threads=threads,
    )


def _bytes(data) -> bytes:
    return data if isinstance(data, bytes) else bytes(memoryview(data))


def compress(
    data,
    *,
    model: ModelLike = None,
    level: Optional[int] = None,
    threads: int = 0,
    block_size: Optional[int] = None,
    chunks: bool = False,
    chunk_size: Optional[int] = None,
) -> bytes:
    """Compress a bytes-like object into an lmzip archive.

    The options are the command line's: ``level`` 1-9 (default 6; 1-3 run the adaptive models
    alone), ``block_size`` of solid mode, ``chunks=True`` (or a ``chunk_size``) for the paper's
    independent chunks, ``threads`` (0: one per core; the archive never depends on it).
    """
    opts = _options(model, level, block_size, chunks, chunk_size, threads)
    return _lmzip.compress(_bytes(data), opts)


def decompress(data, *, model: ModelLike = None, threads: int = 0, memory=None) -> bytes:
    """Decompress a whole archive, with the model it names (or ``model``).

    ``memory`` limits what decoding takes (bytes, or a size such as ``"800M"``; default: half
    the physical memory and of ``ulimit -v``): fewer threads are used to fit, and an archive
    that needs more on one thread raises :class:`Error`.
    """
    return _lmzip.decompress(_bytes(data), model=_spec(model), threads=threads, memory=memory)


def info(data) -> dict:
    """What an archive holds, read without decoding (as ``lmzip info``): model, level (None
    for the paper's chunks), chunk or block size, lengths, chunks, stored chunks, coded bytes."""
    return _lmzip.info(_bytes(data))


def code_lengths(
    data,
    model: ModelLike = None,
    *,
    level: Optional[int] = None,
    chunks: bool = False,
    chunk_size: Optional[int] = None,
    block_size: Optional[int] = None,
    threads: int = 0,
) -> np.ndarray:
    """The bits each byte of ``data`` costs: a float64 array of ``len(data)`` values.

    With ``chunks=True`` (the paper's setting) every 2048-byte chunk (or ``chunk_size``) is coded
    from a cold start by the model alone; by default (solid mode, as :func:`compress`) each
    block is coded by the model mixed with adaptive models. A token's bits are spread evenly
    over its bytes. An archive's coded payloads spend this plus a few bytes per chunk.
    """
    opts = _options(model, level, block_size, chunks, chunk_size, threads)
    raw = _lmzip.code_lengths(_bytes(data), opts)
    return np.frombuffer(raw, dtype="<f8")


def bench(
    *,
    data: Union[str, "os.PathLike[str]"] = "../shared/data",
    modality: Iterable[str] = ("text", "images", "audio8"),
    chunks: int = 500,
    held_out: bool = False,
    seed: int = 0,
    models: Iterable[str] = ("baseline", DEFAULT_MODEL),
    threads: int = 0,
    unchunked: bool = False,
    frame: Optional[bool] = None,
):
    """``lmzip bench``: each model beside gzip, xz, zstd, bzip2, brotli, PNG and FLAC on the
    paper's 2048-byte chunks. Returns the rows as a pandas DataFrame (``frame=True``, or by
    default when pandas is installed) or as a list of dicts."""
    args = [
        "--data", os.fspath(data),
        "--modality", ",".join(modality),
        "--chunks", str(chunks),
        "--seed", str(seed),
        "--model", ",".join(_spec(m) for m in models),
        "--threads", str(threads),
    ]
    if held_out:
        args.append("--held-out")
    if unchunked:
        args.append("--unchunked")
    rows = json.loads(_lmzip.bench(args))["results"]
    if frame is False:
        return rows
    try:
        import pandas
    except ImportError:
        if frame:
            raise
        return rows
    return pandas.DataFrame(rows)


class _RawReader(io.RawIOBase):
    """The decoded bytes of an archive, for ``io.BufferedReader``."""

    def __init__(self, fileobj, model, threads, memory):
        self._decoder = _lmzip.Reader(fileobj, model=model, threads=threads, memory=memory)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        view = memoryview(b).cast("B")
        data = self._decoder.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._decoder.close()
        super().close()


class LmzipFile(io.BufferedIOBase):
    """A binary file object over an lmzip archive, as ``gzip.GzipFile`` is over a gzip file:
    reading decompresses, writing compresses (the archive is complete on :meth:`close`)."""

    def __init__(
        self,
        filename,
        mode: str = "rb",
        *,
        model: ModelLike = None,
        level: Optional[int] = None,
        threads: int = 0,
        block_size: Optional[int] = None,
        chunks: bool = False,
        chunk_size: Optional[int] = None,
        memory=None,
    ):
        mode = mode.replace("b", "")
        if mode not in ("r", "w", "x"):
            raise ValueError(f"invalid mode {mode!r}: lmzip files open with r, w or x")
        self._own = isinstance(filename, (str, bytes)) or hasattr(filename, "__fspath__")
        self._fileobj = builtins.open(filename, mode + "b") if self._own else filename
        self._mode = mode
        try:
            if mode == "r":
                self._raw = _RawReader(self._fileobj, _spec(model), threads, memory)
                self._buffer = io.BufferedReader(self._raw, buffer_size=1 << 16)
                self._writer = None
            else:
                opts = _options(model, level, block_size, chunks, chunk_size, threads)
                self._writer = _lmzip.Writer(self._fileobj, opts)
        except BaseException:
            if self._own:
                self._fileobj.close()
            raise

    def readable(self) -> bool:
        return self._mode == "r"

    def writable(self) -> bool:
        return self._mode != "r"

    def _check(self, reading: bool) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        if reading != (self._mode == "r"):
            raise io.UnsupportedOperation("read" if reading else "write")

    def read(self, size: Optional[int] = -1) -> bytes:
        self._check(True)
        return self._buffer.read(size)

    def read1(self, size: int = -1) -> bytes:
        self._check(True)
        return self._buffer.read1(size)

    def readinto(self, b) -> int:
        self._check(True)
        return self._buffer.readinto(b)

    def peek(self, size: int = 0) -> bytes:
        self._check(True)
        return self._buffer.peek(size)

    def readline(self, size: Optional[int] = -1) -> bytes:
        self._check(True)
        return self._buffer.readline(size)

    def write(self, data) -> int:
        self._check(False)
        return self._writer.write(_bytes(data))

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._writer is not None:
                self._writer.close()
            else:
                self._buffer.close()
        finally:
            try:
                if self._own:
                    self._fileobj.close()
            finally:
                super().close()


def open(
    filename,
    mode: str = "rb",
    *,
    model: ModelLike = None,
    level: Optional[int] = None,
    threads: int = 0,
    block_size: Optional[int] = None,
    chunks: bool = False,
    chunk_size: Optional[int] = None,
    memory=None,
    encoding: Optional[str] = None,
    errors: Optional[str] = None,
    newline: Optional[str] = None,
):
    """Open an lmzip archive, as ``gzip.open`` and ``lzma.open`` do: binary modes ``rb``,
    ``wb``, ``xb`` give an :class:`LmzipFile`; text modes (``rt``, ``wt``, ``xt``) wrap it in an
    ``io.TextIOWrapper``. ``filename`` is a path or a binary file object."""
    text = "t" in mode
    if text and "b" in mode:
        raise ValueError(f"invalid mode {mode!r}")
    binary = LmzipFile(
        filename,
        mode.replace("t", ""),
        model=model,
        level=level,
        threads=threads,
        block_size=block_size,
        chunks=chunks,
        chunk_size=chunk_size,
        memory=memory,
    )
    if text:
        return io.TextIOWrapper(binary, encoding, errors, newline)
    return binary
