#!/usr/bin/env python3
"""Build the everyday-files training corpus (issue 16) from pinned packages of the package
registries: Debian binary packages (ELF binaries and libraries, C headers, Python/Perl/JS/Rust
sources that Debian ships, HTML/XML/troff documentation, configuration, changelogs), crates
(Rust sources, TOML, JSON) and PyPI source distributions (Python and C sources, CSV and JSON
test data, ChangeLogs).

    scripts/corpus.py [--out ~/.cache/lmzip/corpus] [--kind-mb 40] [--package-mb 3]

Every package is pinned to a version; a version the registry no longer serves is an error, not
a silent substitute. Files are sorted into kinds (source, markup, data, log, binary) by name
and content; gzip-compressed documentation (man pages, changelogs) is stored decompressed.
Each kind gets at most --kind-mb MB and each package at most --package-mb MB of a kind, taken
in a fixed order (a hash of the path), so no package dominates and the result is the same on
every run. The corpus lives outside the repository; `MANIFEST.tsv` beside it lists kind,
registry, package, version, licence, path, bytes, SHA-256 and whether the file is held out.
Each file is stored flat in its kind's folder under a unique name (registry, package, path);
5 % of the files, chosen by `lmzip_data::is_held_out` of that name (the rule that splits
../shared/data), are held out from training: `lmzip train`, `lmzip dataset` and `lmzip bench
--held-out` read the kinds as `corpus-source`, `corpus-markup`, `corpus-data`, `corpus-log`
and `corpus-binary`.
"""

import argparse
import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

# (package, version): Debian bookworm binary packages.
DEBIAN = [
    ("coreutils", "9.1-1"),
    ("bash", "5.2.15-2+b13"),
    ("grep", "3.8-5"),
    ("sed", "4.9-1+deb12u1"),
    ("tar", "1.34+dfsg-1.2+deb12u1"),
    ("openssl", "3.0.22-1~deb12u2"),
    ("curl", "7.88.1-10+deb12u15"),
    ("libsqlite3-0", "3.40.1-2+deb12u2"),
    ("libxml2", "2.9.14+dfsg-1.3~deb12u6"),
    ("git", "1:2.39.5-0+deb12u3"),
    ("python3.11-minimal", "3.11.2-6+deb12u9"),
    ("systemd", "252.39-1~deb12u2"),
    ("libc6-dev", "2.36-9+deb12u14"),
    ("linux-libc-dev", "6.1.192-3"),
    ("libssl-dev", "3.0.22-1~deb12u2"),
    ("libxml2-dev", "2.9.14+dfsg-1.3~deb12u6"),
    ("libsqlite3-dev", "3.40.1-2+deb12u2"),
    ("zlib1g-dev", "1:1.2.13.dfsg-1"),
    ("python3-requests", "2.28.1+dfsg-1"),
    ("python3-urllib3", "1.26.12-1+deb12u4"),
    ("python3-jinja2", "3.1.2-1+deb12u3"),
    ("python3-yaml", "6.0-3+b2"),
    ("python3-pygments", "2.14.0+dfsg-1"),
    ("python3-docutils", "0.19+dfsg-6"),
    ("python3-sklearn", "1.2.1+dfsg-1"),
    ("perl-modules-5.36", "5.36.0-7+deb12u4"),
    ("librust-serde-dev", "1.0.152-2"),
    ("librust-regex-dev", "1.7.1-1"),
    ("librust-syn-dev", "1.0.107-1"),
    ("libjs-jquery", "3.6.1+dfsg+~3.5.14-1"),
    ("node-typescript", "4.8.4+ds1-2"),
    ("nginx-common", "1.22.1-9+deb12u11"),
    ("bash-doc", "5.2.15-2"),
    ("sqlite3-doc", "3.40.1-2+deb12u2"),
    ("libxml2-doc", "2.9.14+dfsg-1.3~deb12u6"),
    ("debian-policy", "4.6.2.0"),
    ("manpages", "6.03-2"),
    ("manpages-dev", "6.03-2"),
    ("git-man", "1:2.39.5-0+deb12u3"),
    ("python3.11-doc", "3.11.2-6+deb12u9"),
    ("libicu72", "72.1-3+deb12u1"),
    ("libpython3.11", "3.11.2-6+deb12u9"),
    ("libperl5.36", "5.36.0-7+deb12u4"),
    ("busybox", "1:1.35.0-4+deb12u1+b1"),
    ("vim-tiny", "2:9.0.1378-2+deb12u2"),
    ("postgresql-client-15", "15.20-0+deb12u1"),
    ("binutils-x86-64-linux-gnu", "2.40-2"),
    ("iso-codes", "4.15.0-1"),
    ("distro-info-data", "0.58+deb12u7"),
    ("node-caniuse-lite", "1.0.30001436+dfsg+~1.0.1-1"),
    ("node-mdn-data", "2.0.30-1"),
    ("publicsuffix", "20230209.2326-1"),
    ("unicode-data", "15.0.0-1"),
]

# (crate, version) from crates.io.
CRATES = [
    ("serde", "1.0.210"),
    ("serde_json", "1.0.128"),
    ("regex", "1.11.0"),
    ("regex-syntax", "0.8.5"),
    ("syn", "2.0.79"),
    ("clap_builder", "4.5.20"),
    ("tokio", "1.40.0"),
    ("rand", "0.8.5"),
    ("toml_edit", "0.22.22"),
    ("chrono", "0.4.38"),
    ("hyper", "1.4.1"),
    ("anyhow", "1.0.89"),
    ("itertools", "0.13.0"),
    ("nom", "7.1.3"),
    ("unicode-normalization", "0.1.24"),
]

# (project, version) source distributions from PyPI.
PYPI = [
    ("requests", "2.32.3"),
    ("click", "8.1.7"),
    ("rich", "13.9.2"),
    ("jsonschema", "4.23.0"),
    ("csvkit", "2.0.1"),
    ("agate", "1.12.0"),
    ("python-dateutil", "2.9.0.post0"),
    ("sqlparse", "0.5.1"),
    ("tabulate", "0.9.0"),
    ("attrs", "24.2.0"),
    ("idna", "3.10"),
    ("simplejson", "3.19.3"),
    ("Faker", "30.3.0"),
]

KINDS = ("source", "markup", "data", "log", "binary")
SOURCE = {
    ".c", ".h", ".cc", ".cpp", ".hpp", ".py", ".pyx", ".rs", ".go", ".js", ".ts", ".mjs", ".pl",
    ".pm", ".sh", ".java", ".rb", ".lua", ".el", ".awk", ".sql", ".s", ".S", ".tcl",
}
MARKUP = {".html", ".htm", ".xml", ".xhtml", ".svg", ".md", ".rst", ".tex", ".texi", ".txt", ".pod", ".adoc", ".xsl", ".css"}
DATA = {".json", ".csv", ".tsv", ".toml", ".yaml", ".yml", ".ini", ".conf", ".cfg", ".service", ".socket", ".rules", ".properties", ".jsonl"}
MAN = re.compile(r"/man/(?:[a-z_A-Z.]+/)?man\d[a-z]*/[^/]+\.\d[a-z]*$")
LOG = re.compile(r"(changelog|ChangeLog|CHANGES|NEWS|HISTORY|\.log)(\.\w+)?$", re.I)

# lmzip_data::HELD_OUT_SALT: the corpus is split by the rule that splits ../shared/data.
SALT = b"lmzip-held-out-14:"


def is_held_out(name: str) -> bool:
    """`lmzip_data::is_held_out`: 1 file in 20, by a salted FNV-1a hash of its file name."""
    h = 0xCBF29CE484222325
    for b in SALT + name.encode():
        h = ((h ^ b) * 0x100000001B3) % (1 << 64)
    return h % 20 == 0


def flat_name(registry: str, package: str, path: str) -> str:
    """A file name unique in the corpus (the held-out rule hashes names): registry, package and
    path joined, shortened with a hash where a file system would refuse it."""
    name = f"{registry}-{package}--" + path.replace("/", "--")
    if len(name.encode()) > 200:
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        name = name.encode()[:150].decode(errors="ignore") + "-" + digest + os.path.splitext(path)[1][:20]
    return name


def order_key(path: str) -> str:
    return hashlib.sha256(b"lmzip-corpus-order:" + path.encode()).hexdigest()


def kind_of(path: str, head: bytes):
    """The file's kind, or None to leave it out (images, archives, unknown binary)."""
    if head.startswith(b"\x7fELF"):
        return "binary"
    name = path.rsplit("/", 1)[-1]
    if LOG.search(name):
        return "log"
    if MAN.search(path):
        return "markup"
    ext = os.path.splitext(name)[1]
    if b"\x00" in head[:4096]:
        return None  # other binary data
    if ext in SOURCE or head.startswith(b"#!"):
        return "source"
    if ext in MARKUP:
        return "markup"
    if ext in DATA or "/etc/" in "/" + path:
        return "data"
    return None


def run(cmd, **kw):
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if done.returncode != 0:
        sys.exit(f"corpus: {' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def files_of_deb(deb: Path, scratch: Path):
    root = scratch / "root"
    shutil.rmtree(root, ignore_errors=True)
    run(["dpkg-deb", "-x", str(deb), str(root)])
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            yield str(p.relative_to(root)), p.read_bytes()


def files_of_tar(path: Path):
    with tarfile.open(path) as tar:
        for m in sorted(tar.getmembers(), key=lambda m: m.name):
            if m.isfile():
                f = tar.extractfile(m)
                if f is not None:
                    yield m.name.split("/", 1)[-1], f.read()


def files_of_zip(path: Path):
    with zipfile.ZipFile(path) as z:
        for name in sorted(z.namelist()):
            if not name.endswith("/"):
                yield name.split("/", 1)[-1], z.read(name)


def licence_of(registry: str, files: dict) -> str:
    if registry == "debian":
        for path, data in files.items():
            if path.endswith("/copyright"):
                m = re.search(rb"^License:\s*(\S.*)$", data, re.M)
                return m.group(1).decode(errors="replace").strip() if m else "see copyright"
        return "unknown"
    for path, data in files.items():
        if path in ("Cargo.toml", "PKG-INFO"):
            for pattern in (rb'^license\s*=\s*"([^"]+)"', rb"^License(?:-Expression)?:\s*(\S.*)$"):
                m = re.search(pattern, data, re.M)
                if m:
                    return m.group(1).decode(errors="replace").strip()[:80]
    return "unknown"


def collect(registry, package, version, files, out: Path, budget: dict, args, manifest):
    files = dict(files)
    licence = licence_of(registry, files)
    taken = {k: 0 for k in KINDS}
    for path in sorted(files, key=order_key):
        data = files[path]
        if path.endswith(".gz"):
            try:
                data = gzip.decompress(data)
                path = path[:-3]
            except OSError:
                continue
        if not data:
            continue
        kind = kind_of(path, data[:8192])
        if kind is None:
            continue
        cut = len(data) > args.file_kb * 1024
        if cut and kind != "binary":
            continue
        # A large binary contributes its first --file-kb KB (headers, code, tables).
        data = data[: args.file_kb * 1024]
        if taken[kind] + len(data) > args.package_mb * 1e6 or budget[kind] + len(data) > args.kind_mb * 1e6:
            continue
        name = flat_name(registry, package, path)
        rel = f"{kind}/{name}"
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        taken[kind] += len(data)
        budget[kind] += len(data)
        manifest.append(
            (kind, registry, package, version, licence, rel, len(data), hashlib.sha256(data).hexdigest(), int(is_held_out(name)), int(cut))
        )
    print(f"{registry} {package} {version}: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in taken.items() if v), file=sys.stderr)


def fetch_debian(scratch: Path):
    """(package, version, .deb path) of every pinned Debian package."""
    debs = scratch / "debs"
    debs.mkdir()
    run(["apt-get", "download", *[f"{p}={v}" for p, v in DEBIAN]], cwd=debs)
    return [(p, v, next(debs.glob(f"{p}_*.deb"))) for p, v in DEBIAN]


def fetch_crates(scratch: Path):
    """(crate, version, .crate path): `cargo fetch` of a project that pins them all."""
    project = scratch / "crates"
    (project / "src").mkdir(parents=True)
    (project / "src" / "lib.rs").write_text("")
    deps = "\n".join(f'{c} = "={v}"' for c, v in CRATES)
    (project / "Cargo.toml").write_text(
        f'[package]\nname = "corpus"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\n{deps}\n'
    )
    home = scratch / "cargo-home"
    run(["cargo", "fetch", "--manifest-path", str(project / "Cargo.toml")], env=dict(os.environ, CARGO_HOME=str(home)))
    return [(c, v, next(home.glob(f"registry/cache/*/{c}-{v}.crate"))) for c, v in CRATES]


def fetch_pypi(scratch: Path):
    """(project, version, sdist path) of every pinned PyPI project."""
    sdists = scratch / "sdists"
    found = []
    for p, v in PYPI:
        dest = sdists / p
        run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:", "-d", str(dest), f"{p}=={v}"])
        (sdist,) = dest.iterdir()
        found.append((p, v, sdist))
    return found


def sdist_files(path: Path):
    return files_of_zip(path) if path.suffix == ".zip" else files_of_tar(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path.home() / ".cache" / "lmzip" / "corpus")
    ap.add_argument("--kind-mb", type=float, default=40)
    ap.add_argument("--package-mb", type=float, default=3)
    ap.add_argument("--file-kb", type=int, default=1024, help="leave out larger files (binaries: keep their start)")
    ap.add_argument("--only", choices=["debian", "crates", "pypi"], action="append")
    args = ap.parse_args()
    out = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    budget = {k: 0 for k in KINDS}
    manifest = []
    only = set(args.only or ["debian", "crates", "pypi"])
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        queues = []
        if "debian" in only:
            queues.append([("debian", p, v, lambda d=d: files_of_deb(d, scratch)) for p, v, d in fetch_debian(scratch)])
        if "crates" in only:
            queues.append([("crates", c, v, lambda f=f: files_of_tar(f)) for c, v, f in fetch_crates(scratch)])
        if "pypi" in only:
            queues.append([("pypi", p, v, lambda f=f: sdist_files(f)) for p, v, f in fetch_pypi(scratch)])
        # One package of each registry in turn, so that no registry takes a kind's budget first.
        for i in range(max(map(len, queues), default=0)):
            for q in queues:
                if i < len(q):
                    registry, package, version, files = q[i]
                    collect(registry, package, version, files(), out, budget, args, manifest)
    with open(out / "MANIFEST.tsv", "w") as f:
        f.write("kind\tregistry\tpackage\tversion\tlicence\tpath\tbytes\tsha256\theld_out\tcut\n")
        for row in manifest:
            f.write("\t".join(str(x).replace("\t", " ") for x in row) + "\n")
    total = sum(budget.values())
    held = sum(r[6] for r in manifest if r[8])
    print(f"corpus: {len(manifest)} files, {total / 1e6:.1f} MB in {out} ({held / 1e6:.1f} MB held out)", file=sys.stderr)
    for k in KINDS:
        print(f"  {k}: {budget[k] / 1e6:.1f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
