#!/usr/bin/env bash
# The action's isolation step (action.yml): bubblewrap installed and allowed its namespaces on the runner, so that
# candidate code runs isolated; where that cannot be done, the job stops here with the reason in one line (untrusted
# code is never run unisolated unless the workspace's release.yaml says `isolation: none`).
#
# In: ACTION_PATH. GitHub's Ubuntu runners have passwordless sudo; a self-hosted runner may run as root.
set -euo pipefail
script="${ACTION_PATH:?ACTION_PATH names the folder of the action}/scripts/ensure-system-packages.sh"
if [ "$(id -u)" -eq 0 ]; then
  bash "$script" bubblewrap
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo -n bash "$script" bubblewrap
else
  bash "$script" bubblewrap  # not root: it reports what is missing, or passes where bubblewrap already works
fi
