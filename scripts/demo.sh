#!/usr/bin/env bash
# The main job on the bundled example: copy it into a fresh workspace, record v1,
# run two iterations of run -> critic -> diagnose -> candidate -> gate -> promote,
# and show the version line. No API key, no network.
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
echo "== release promote --iterations 2"
"$release" promote --iterations 2
echo
echo "== release log"
"$release" log
echo
echo "The workspace is $(pwd)"
echo "Explore it:  cd $demo && $release show v3   |   $release diff v1 v2   |   $release log --json"
