#!/usr/bin/env bash
# The main job on the bundled example: copy it into a fresh workspace, record v1 of both agents,
# run two iterations of run -> critic -> diagnose -> candidate -> gate -> promote on each,
# and show the version lines. No API key, no network.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
demo="${1:-./demo-workspace}"
release="${RELEASE:-$here/.venv/bin/release}"

if [ -e "$demo" ]; then
  if [ ! -f "$demo/.release-demo" ]; then
    echo "error: $demo exists and is not a demo workspace; choose another DEMO_DIR" >&2
    exit 2
  fi
  rm -rf "$demo"
fi
mkdir -p "$demo"
cp -R "$here/agents" "$here/specs" "$here/plugins" "$here/release.yaml" "$here/gate-policy.yaml" "$demo/"
touch "$demo/.release-demo"
printf '.release/\n' > "$demo/.gitignore"
cd "$demo"
git init -q
git add -A
git -c user.name="release demo" -c user.email="demo@localhost" commit -q -m "calc agent: first version"
export RELEASE_ACTOR="${RELEASE_ACTOR:-release demo}"

echo "== release init"
"$release" init
echo
echo "== release promote --agent qa --iterations 2    (a prompt agent on the local SmolLM2-135M model)"
"$release" promote --agent qa --iterations 2
echo
echo "== release log --agent qa"
"$release" log --agent qa
echo
echo "== release promote --agent calc --iterations 2  (a Python agent, human-authored patches)"
"$release" promote --agent calc --iterations 2
echo
echo "== release log --agent calc"
"$release" log --agent calc
echo
echo "The workspace is $(pwd)"
echo "Explore it:  cd $demo && $release show v3 --agent qa   |   $release diff v1 v2 --agent qa   |   $release log --agent calc --json"
