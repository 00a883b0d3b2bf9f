#!/usr/bin/env bash
# The action's comment step (action.yml): post the Markdown gate report on the pull request, editing the
# action's earlier comment in place on later pushes. Never fails the job: a missing permission is a warning.
#
# In: COMMENT (true | false), PR_NUMBER (empty outside pull requests), REPORT (the Markdown file), GH_TOKEN,
#     GH_REPO; the GitHub CLI `gh` on PATH (GitHub's runners have it).
set -uo pipefail
[ "${COMMENT:-true}" = true ] && [ -n "${PR_NUMBER:-}" ] && [ -s "${REPORT:-}" ] || exit 0
body="$(mktemp)"
{ echo "<!-- release-pipeline gate report -->"; cat "$REPORT"; } >"$body"
gh pr comment "$PR_NUMBER" --edit-last --create-if-none --body-file "$body" >/dev/null \
  || echo "::warning::the gate report could not be posted on the pull request (does the job have pull-requests: write?)"
exit 0
