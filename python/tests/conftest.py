"""Shared fixtures: the lmzip command (to compare archives with) and the shared data."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _cli() -> str:
    for candidate in (
        os.environ.get("LMZIP_BIN"),
        ROOT / "target" / "release" / "lmzip",
        ROOT / "target" / "debug" / "lmzip",
        shutil.which("lmzip"),
    ):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    pytest.fail("no lmzip command: build it (cargo build --release) or set LMZIP_BIN")


@pytest.fixture(scope="session")
def cli():
    """Run the lmzip command; return its standard output."""
    binary = _cli()

    def run(*args, input=None):
        done = subprocess.run([binary, *map(str, args)], input=input, capture_output=True)
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout

    return run


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = Path(os.environ.get("LMZIP_DATA", ROOT.parent / "shared" / "data"))
    if not d.is_dir():
        pytest.fail(f"{d} is missing (the tests read real data from it)")
    return d


@pytest.fixture(scope="session")
def text_files(data_dir):
    """A few real text files of different sizes (up to 120 KB), sorted."""
    files = sorted(p for p in (data_dir / "text").rglob("*") if p.is_file() and p.suffix != ".md")
    files = [p for p in files if 0 < p.stat().st_size <= 120_000 and p.name != "MANIFEST.tsv"]
    assert len(files) >= 4
    return files[:: max(1, len(files) // 4)][:4]


@pytest.fixture(scope="session")
def prose(text_files):
    return b"".join(p.read_bytes() for p in text_files)
