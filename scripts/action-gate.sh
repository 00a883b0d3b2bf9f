#!/usr/bin/env bash
# The action's gate step (action.yml): gate (or promote) one candidate, and hand GitHub what it shows.
#
# In:  RELEASE_AGENT, RELEASE_MODE (gate | promote), RELEASE_CANDIDATE, RELEASE_BUDGET, RELEASE_OUT (a folder),
#      RELEASE_DB_URL (empty: the workspace's SQLite), GITHUB_OUTPUT, GITHUB_STEP_SUMMARY; `release` on PATH.
# Out: $RELEASE_OUT/gate.json, gate.md, junit.xml and html/ (`release report`); the step summary; outputs
#      decision, fixes, regressions, report, junit, markdown, html (the candidate's page). Exit 0 accepted (and promoted, in promote mode), 1 rejected, 3 undecided, 2 bad input.
set -uo pipefail

release="${RELEASE:-release}"
out="${RELEASE_OUT:?RELEASE_OUT names the folder for the reports}"
mkdir -p "$out"
[ -n "${RELEASE_DB_URL:-}" ] || unset RELEASE_DB_URL
args=(--candidate "${RELEASE_CANDIDATE:?RELEASE_CANDIDATE names the candidate}")
[ -n "${RELEASE_AGENT:-}" ] && args+=(--agent "$RELEASE_AGENT")
[ -n "${RELEASE_BUDGET:-}" ] && args+=(--budget "$RELEASE_BUDGET")

# A fresh checkout: the canonical branches and the version line travel as refs of their own; fetch them, then
# `release init` adopts the line (or records v1 in a repository that has none yet).
if git remote get-url origin >/dev/null 2>&1; then
  git fetch --quiet origin '+refs/release-pipeline/*:refs/release-pipeline/*' \
    '+refs/heads/canonical/*:refs/heads/canonical/*' 2>/dev/null || true
fi

# actions/checkout leaves a write token in .git/config (an http extraheader, or an included credentials file): it is
# put aside while candidate code runs, and back for the promotion and the workflow's later steps (a push).
credentials="$(mktemp)"
git config --local --get-regexp '^(http\..*\.extraheader|includeif\..*\.path)$' >"$credentials" 2>/dev/null || true
hide_credentials() {
  local key value
  while read -r key value; do git config --local --unset-all "$key" 2>/dev/null || true; done <"$credentials"
}
restore_credentials() {
  local key value
  hide_credentials  # never twice
  while read -r key value; do git config --local --add "$key" "$value"; done <"$credentials"
}
trap 'restore_credentials; rm -f "$credentials"' EXIT
hide_credentials

"$release" init >&2 || exit $?
"$release" gate "${args[@]}" --json --markdown "$out/gate.md" --junit "$out/junit.xml" >"$out/gate.json"
code=$?
restore_credentials
if [ "$code" -eq 0 ] && [ "${RELEASE_MODE:-gate}" = promote ]; then
  "$release" promote "${args[@]}" --reason "merged: ${GITHUB_SHA:-$RELEASE_CANDIDATE}" >&2
  code=$?
fi
if [ -s "$out/gate.json" ]; then
  report_args=(--out "$out/html")
  [ -n "${RELEASE_AGENT:-}" ] && report_args+=(--agent "$RELEASE_AGENT")
  "$release" report "${report_args[@]}" >/dev/null || echo "the HTML report could not be written" >&2
  python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
report = json.load(open(os.path.join(out, "gate.json")))
html = os.path.join(out, "html", f"{report['agent']}-v{report['candidate']}.html")
with open(os.environ["GITHUB_OUTPUT"], "a") as fh:
    fh.write(f"decision={report['decision']}\n")
    fh.write(f"fixes={','.join(report.get('fixes', []))}\n")
    fh.write(f"regressions={','.join(report.get('regressions', []))}\n")
    fh.write(f"report={os.path.join(out, 'gate.json')}\n")
    fh.write(f"junit={os.path.join(out, 'junit.xml')}\n")
    fh.write(f"markdown={os.path.join(out, 'gate.md')}\n")
    if os.path.exists(html):
        fh.write(f"html={html}\n")
PY
fi
if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -s "$out/gate.md" ]; then
  cat "$out/gate.md" >>"$GITHUB_STEP_SUMMARY"
fi
exit "$code"
