"""The Python package: round trips, the command line's archives, files, code lengths,
hostile archives and the benchmark."""

import io
import os
import random
import threading

import numpy as np
import pytest

import lmzip

FAST = dict(level=1)  # the adaptive models alone: fast enough for every test


@pytest.mark.parametrize("data", [b"", b"x", b"\x00" * 3, bytes(range(256))])
@pytest.mark.parametrize("options", [{}, FAST, dict(chunks=True), dict(chunks=True, model="baseline")])
def test_round_trips_small(data, options):
    archive = lmzip.compress(data, **options)
    assert archive.startswith(b"\x89LMZ")
    assert lmzip.decompress(archive) == data


def test_round_trips_real_and_random(prose):
    rng = random.Random(7)
    noise = bytes(rng.getrandbits(8) for _ in range(70_000))
    for data in (prose, noise, prose[:5000] + noise[:5000]):
        for threads in (1, 2, 3):
            archive = lmzip.compress(data, level=1, block_size=65536, threads=threads)
            assert lmzip.decompress(archive, threads=threads) == data
    assert len(lmzip.compress(prose, **FAST)) < len(prose) // 2
    # Random data is stored: 5 bytes per block plus header and trailer.
    assert len(lmzip.compress(noise, **FAST)) < len(noise) + 200


def test_bytes_like_inputs():
    data = b"abc" * 1000
    expected = lmzip.compress(data, **FAST)
    assert lmzip.compress(bytearray(data), **FAST) == expected
    assert lmzip.compress(memoryview(data), **FAST) == expected
    assert lmzip.decompress(bytearray(expected)) == data


@pytest.mark.parametrize(
    "flags, options",
    [
        ([], {}),
        (["-1"], dict(level=1)),
        (["-3"], dict(level=3)),
        (["-1", "--block-size", "65536"], dict(level=1, block_size=65536)),
        (["--chunks"], dict(chunks=True)),
        (["--chunks", "--model", "baseline"], dict(chunks=True, model="baseline")),
        (["--chunk-size", "1000", "--model", "baseline"], dict(chunk_size=1000, model="baseline")),
    ],
)
def test_archives_are_the_command_lines(cli, text_files, tmp_path, flags, options):
    path = text_files[0]
    data = path.read_bytes()
    if not flags or flags == ["--chunks"]:
        data = data[:6000]  # the Transformer: keep it short
        path = tmp_path / "short"
        path.write_bytes(data)
    assert lmzip.compress(data, **options) == cli("-c", *flags, path)
    assert lmzip.compress(data, threads=1, **options) == cli("-c", "-T", "1", *flags, path)


def test_archives_of_the_command_line_decode(cli, text_files):
    data = text_files[1].read_bytes()
    assert lmzip.decompress(cli("-c", "-1", text_files[1])) == data


def test_open_writes_and_reads_in_small_and_large_pieces(cli, prose, tmp_path):
    data = prose[:150_000]
    # A stream's length is unknown when its header is written: the command line's archive of
    # standard input.
    expected = cli("-c", "-1", input=data)
    assert lmzip.decompress(expected) == data
    for piece in (1, 7, 4096, len(data)):
        path = tmp_path / f"w{piece}.lmz"
        with lmzip.open(path, "wb", **FAST) as f:
            for i in range(0, len(data), piece if piece > 1 else 1):
                if piece == 1 and i > 3000:  # byte by byte for a start, then the rest
                    f.write(data[i:])
                    break
                f.write(data[i : i + piece])
        assert path.read_bytes() == expected
    path = tmp_path / "w4096.lmz"
    for piece in (1, 1000, 65536, -1):
        with lmzip.open(path) as f:
            if piece == -1:
                got = f.read()
            else:
                parts = []
                while True:
                    part = f.read(piece)
                    if not part:
                        break
                    assert len(part) <= piece
                    parts.append(part)
                    if piece == 1 and len(parts) > 2000:
                        parts.append(f.read())
                        break
                got = b"".join(parts)
        assert got == data


def test_open_file_objects_text_mode_and_exclusive(cli, prose, tmp_path):
    buf = io.BytesIO()
    with lmzip.open(buf, "wb", **FAST) as f:
        f.write(prose[:20_000])
    assert buf.getvalue() == cli("-c", "-1", input=prose[:20_000])
    buf.seek(0)
    with lmzip.open(buf) as f:
        assert f.read() == prose[:20_000]
    text = "line one\nzwei ünd drei\n" * 500
    path = tmp_path / "t.lmz"
    with lmzip.open(path, "wt", encoding="utf-8", **FAST) as f:
        f.write(text)
    with lmzip.open(path, "rt", encoding="utf-8") as f:
        lines = list(f)
    assert "".join(lines) == text and len(lines) == 1000
    with pytest.raises(FileExistsError):
        lmzip.open(path, "xb")
    with lmzip.open(path, "rb") as f:
        with pytest.raises(io.UnsupportedOperation):
            f.write(b"x")
    with pytest.raises(ValueError):
        lmzip.open(path, "ab")


def test_code_lengths_sum_to_the_coded_bits(prose):
    data = prose[:40_000]
    settings = [
        dict(level=1, block_size=65536),
        dict(level=3),
        dict(chunks=True, model="baseline"),
        dict(chunks=True),
    ]
    for options in settings:
        sample = data if options.get("model") == "baseline" or options.get("level") else data[:8192]
        bits = lmzip.code_lengths(sample, **options)
        assert isinstance(bits, np.ndarray) and bits.dtype == np.float64
        assert bits.shape == (len(sample),) and (bits > 0).all()
        info = lmzip.info(lmzip.compress(sample, **options))
        assert info["stored_chunks"] == 0
        coded_chunks = info["chunks"]
        # The range coder spends the code length plus at most a few bytes per chunk.
        assert bits.sum() / 8 <= info["coded_bytes"] + 1
        assert info["coded_bytes"] <= bits.sum() / 8 + 4 * coded_chunks, options


def test_code_lengths_by_chunk_start_cold(prose):
    bits = lmzip.code_lengths(prose[:8192], "baseline", chunks=True)
    # Every 2048-byte chunk starts cold: its first bytes cost more than the chunk's average.
    per_chunk = bits.reshape(4, 2048)
    assert (per_chunk[:, :64].mean(axis=1) > per_chunk.mean(axis=1)).all()


def test_hostile_archives_raise_lmzip_error(prose):
    archive = lmzip.compress(prose[:3000], level=1)
    cases = [b"", b"junk", b"\x89LMZ\r\n\x1a\n"]
    cases += [archive[:n] for n in range(0, len(archive), 7)]
    for i in range(0, len(archive), 3):
        for flip in (0x01, 0x80):
            cases.append(archive[:i] + bytes([archive[i] ^ flip]) + archive[i + 1 :])
    for bad in cases:
        with pytest.raises(lmzip.Error):
            lmzip.decompress(bad)
    with pytest.raises(lmzip.Error):
        with lmzip.open(io.BytesIO(archive[:-3])) as f:
            f.read()
    assert issubclass(lmzip.Error, ValueError)


def test_memory_limit(prose):
    """Decoding checks its memory before it takes any: fewer threads, or a clear refusal."""
    archive = lmzip.compress(prose[:3000], level=9)
    assert lmzip.decompress(archive, memory="2G") == prose[:3000]
    assert lmzip.decompress(archive, threads=4, memory=400 << 20) == prose[:3000]
    for too_little in ("10M", 1 << 20):
        with pytest.raises(lmzip.Error, match="memory limit"):
            lmzip.decompress(archive, memory=too_little)
        with pytest.raises(lmzip.Error, match="memory limit"):
            with lmzip.open(io.BytesIO(archive), memory=too_little) as f:
                f.read()
    with pytest.raises(lmzip.Error, match="not a size"):
        lmzip.decompress(archive, memory="lots")


def test_bad_options_raise_lmzip_error():
    for options in (
        dict(level=0),
        dict(level=10),
        dict(level=2**40),
        dict(block_size=100),
        dict(chunk_size=0),
        dict(chunks=True, block_size=65536),
        dict(model="no-such-model"),
        dict(model="/no/such/dir"),
        dict(threads=-1),
    ):
        with pytest.raises(lmzip.Error):
            lmzip.compress(b"abc", **options)
    with pytest.raises(lmzip.Error, match="unknown model"):
        lmzip.Model.load("no-such-model")


def test_model_load():
    m = lmzip.Model.load(lmzip.DEFAULT_MODEL)
    assert m.kind == "transformer" and m.parameters > 100_000 and len(m.sha256) == 64
    data = b"the model object is accepted wherever a name is " * 20
    assert lmzip.compress(data, model=m, chunks=True) == lmzip.compress(data, chunks=True)
    assert lmzip.Model.load("baseline").parameters == 0


def test_coding_releases_the_gil(prose):
    data = prose[:100_000]
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(1)

    t = threading.Thread(target=count)
    t.start()
    try:
        before = len(ticks)
        lmzip.compress(data, level=3, threads=1)
        during = len(ticks) - before
    finally:
        stop.set()
        t.join()
    # With the GIL held for the whole call the counter would stand still.
    assert during > 1000


def test_bench_rows(data_dir):
    rows = lmzip.bench(data=data_dir, modality=["text"], chunks=4, models=["baseline"], frame=False)
    names = {r["compressor"] for r in rows}
    assert "lmzip baseline" in names and "gzip -9" in names
    for r in rows:
        assert r["chunks"] == 4 and 0 < r["rate"] < 1.5
    pandas = pytest.importorskip("pandas")
    df = lmzip.bench(data=data_dir, modality=["text"], chunks=4, models=["baseline"])
    assert isinstance(df, pandas.DataFrame) and len(df) == len(rows)
    assert os.path.isdir(data_dir)
