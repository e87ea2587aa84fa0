#!/usr/bin/env bash
# Set up everything the project needs on a fresh Debian/Ubuntu machine, idempotently:
# system packages (sandbox, graph pictures, browser for the playground test, compilers
# for llama.cpp), then a virtual environment in .venv with the project installed.
# Re-running is cheap: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(bubblewrap util-linux graphviz libgraphviz-dev build-essential cmake chromium)
PYTHON=${PYTHON:-python3}
VENV=.venv
EXTRAS="png,bench,dev,llamacpp"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV" >&2
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi

# Reinstall only when the dependency list changed.
stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages (the first time compiles llama.cpp: several minutes)" >&2
  # torch is pinned to the CPU build that these machines carry; install it first so that
  # nothing else pulls a multi-GB CUDA build.
  "$VENV/bin/pip" install -q "torch==2.13.0"
  CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
    "$VENV/bin/pip" install -q -e ".[$EXTRAS]"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
