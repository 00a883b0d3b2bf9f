#!/usr/bin/env bash
# The action's install step (action.yml): release-pipeline into the job's Python.
#
# In: PACKAGE (what pip installs; empty: this action's own copy, ACTION_PATH, the very code of the ref the workflow
#     names), EXTRAS (comma-separated extras of that copy, e.g. `local,finetune`), DATABASE_URL (a PostgreSQL URL adds
#     the `postgres` extra).
set -euo pipefail
extras="${EXTRAS:-}"
case "${DATABASE_URL:-}" in
  postgres*) [[ ",$extras," == *",postgres,"* ]] || extras="${extras:+$extras,}postgres" ;;
esac
if [ -n "${PACKAGE:-}" ]; then
  target="$PACKAGE"
else
  target="${ACTION_PATH:?ACTION_PATH names the folder of the action}${extras:+[$extras]}"
fi
python -m pip install --quiet "$target"
