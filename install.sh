#!/usr/bin/env bash
# Install Souverain into ./.venv:   ./install.sh         (to run it)
#                                   ./install.sh test    (with the test extras)
#
# llama-cpp-python compiles llama.cpp from source. CMAKE_ARGS keeps that build small
# and safe to run anywhere:
#   LLAVA_BUILD=OFF  skip the multimodal library (Souverain does not use it);
#   GGML_NATIVE=OFF + AVX2/FMA/F16C/BMI2  target x86-64-v3 rather than -march=native,
#     because -march=native enables AMX on recent Xeons, and AMX instructions die with
#     SIGILL in sandboxes that don't grant the AMX state (seen on our CI machines).
# llama.cpp's tests, tools, examples and server are already off when built as a library.
# pip caches the wheel it builds: `pip cache remove "llama_cpp_python*"` to rebuild.
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(uname -m)" = "x86_64" ]; then
  : "${CMAKE_ARGS:=-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON}"
else
  : "${CMAKE_ARGS:=-DLLAVA_BUILD=OFF}"
fi
export CMAKE_ARGS
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
if [ "${1:-}" = "test" ]; then
  .venv/bin/python -m pip install --quiet -e '.[test]'
  bash tests/vibe/install.sh  # Mistral Vibe into ./.venv-vibe (needs a Python >= 3.12)
else
  .venv/bin/python -m pip install --quiet .
fi
