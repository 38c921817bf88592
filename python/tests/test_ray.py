"""lmzip.ray on a local Ray cluster of two CPUs: the command line's archives, file by file and
for one big file coded as tasks, and a model's score over a Ray Dataset."""

import pytest

ray = pytest.importorskip("ray")

import lmzip  # noqa: E402
import lmzip.ray as lray  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def cluster():
    # A local cluster on the loopback address only.
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()


def test_compress_files_gives_the_command_lines_bytes(cli, text_files, tmp_path):
    rows = lray.compress_files(text_files, tmp_path / "out", level=1)
    assert [r["input"] for r in rows] == [str(p) for p in text_files]
    for path, row in zip(text_files, rows):
        archive = (tmp_path / "out" / (path.name + ".lmz")).read_bytes()
        assert archive == cli("-c", "-1", path), path
        assert row["compressed"] == len(archive) and row["original"] == path.stat().st_size
    with pytest.raises(lmzip.Error, match="exists"):
        lray.compress_files(text_files, tmp_path / "out", level=1)


def test_compress_files_of_a_directory(cli, text_files, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(text_files[0].read_bytes())
    (src / "sub" / "b.txt").write_bytes(text_files[1].read_bytes()[:5000])
    (src / "empty").write_bytes(b"")
    lray.compress_files(src, tmp_path / "out", chunks=True, model="baseline")
    for name in ("a.txt", "sub/b.txt", "empty"):
        got = (tmp_path / "out" / (name + ".lmz")).read_bytes()
        assert got == cli("-c", "--chunks", "--model", "baseline", src / name), name


@pytest.mark.parametrize(
    "flags, options",
    [
        (["-1", "--block-size", "65536"], dict(level=1, block_size=65536, task_bytes=65536)),
        (["--chunks", "--model", "baseline"], dict(chunks=True, model="baseline", task_bytes=40_000)),
    ],
)
def test_compress_large_gives_the_command_lines_archive(cli, prose, tmp_path, flags, options):
    data = (prose * 3)[:300_001]  # five blocks of 64 KiB and a partial one
    path = tmp_path / "big"
    path.write_bytes(data)
    out = tmp_path / "big.lmz"
    result = lray.compress_large(path, out, **options)
    assert result["tasks"] > 1
    assert out.read_bytes() == cli("-c", *flags, path)
    assert lmzip.decompress(out.read_bytes()) == data


def test_compress_large_of_an_empty_file(cli, tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    lray.compress_large(path, tmp_path / "e.lmz", level=1)
    assert (tmp_path / "e.lmz").read_bytes() == cli("-c", "-1", path)


def test_score_is_the_sum_of_code_lengths(text_files):
    ds = ray.data.read_binary_files([str(p) for p in text_files])
    result = lray.score(ds, "baseline", chunks=True)
    expected = sum(float(lmzip.code_lengths(p.read_bytes(), "baseline", chunks=True).sum()) for p in text_files)
    total = sum(p.stat().st_size for p in text_files)
    assert result["files"] == len(text_files) and result["bytes"] == total
    assert result["bits"] == pytest.approx(expected, rel=1e-12)
    assert 0 < result["bits_per_byte"] < 8
