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
LLAMA_CPP_VERSION=$(sed -n 's/.*"llama-cpp-python\[server\]==\([0-9.]*\)".*/\1/p' pyproject.toml)

# CMake options for llama.cpp's CPU code: the reported x86 features, never AMX.
llama_cmake_args() {
  if [ "$(uname -m)" != "x86_64" ]; then echo "-DGGML_NATIVE=ON"; return; fi
  local flags args="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
  flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  has() { [[ "$flags" == *" $1 "* ]]; }
  has sse4_2 && args+=" -DGGML_SSE42=ON"
  has avx && args+=" -DGGML_AVX=ON"
  has avx2 && args+=" -DGGML_AVX2=ON"
  has fma && args+=" -DGGML_FMA=ON"
  has f16c && args+=" -DGGML_F16C=ON"
  has bmi2 && args+=" -DGGML_BMI2=ON"
  has avx_vnni && args+=" -DGGML_AVX_VNNI=ON"
  has avx512f && has avx512bw && has avx512vl && args+=" -DGGML_AVX512=ON"
  has avx512_vnni && args+=" -DGGML_AVX512_VNNI=ON"
  has avx512vbmi && args+=" -DGGML_AVX512_VBMI=ON"
  has avx512_bf16 && args+=" -DGGML_AVX512_BF16=ON"
  echo "$args"
}
export CMAKE_ARGS="${CMAKE_ARGS:-$(llama_cmake_args)}"

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

# Reinstall only when the dependency list or this script changed.
stamp="$VENV/.installed-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages (the first time compiles llama.cpp: several minutes)" >&2
  # torch is pinned to the CPU build that these machines carry; install it first so that
  # nothing else pulls a multi-GB CUDA build.
  "$VENV/bin/pip" install -q "torch==2.13.0"
  # llama.cpp is compiled here. A native build (-march=native) uses every instruction
  # the CPU reports, AMX included, and AMX tiles crash (SIGSEGV on the first token) in
  # virtual machines whose kernel does not grant them. So build for the x86 features
  # that are reported, without AMX, and never reuse a wheel cached with other flags.
  "$VENV/bin/pip" install -q --no-cache-dir "llama-cpp-python[server]==$LLAMA_CPP_VERSION"
  CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
    "$VENV/bin/pip" install -q -e ".[$EXTRAS]"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
