"""A candidate is its own change: one branched from an older canonical commit is rebased onto the current one
(when its change applies cleanly) or refused with the command that fixes it, never gated against the wrong base."""

from __future__ import annotations

from conftest import REPO, commit_all, git

PATCHES = REPO / "specs" / "candidates"


def stale_branch(root, name: str, path: str, old: str, new: str) -> None:
    """A branch from v1's commit (main, which the promotion of v2 did not move) that edits one file."""
    git(root, "checkout", "-q", "-b", name, "main")
    target = root / path
    target.write_text(target.read_text().replace(old, new))
    commit_all(root, f"{name}: edit {path}")
    git(root, "checkout", "-q", "main")


def test_a_candidate_from_a_stale_base_is_rebased_and_keeps_the_canonical_fix(cli, workspace):
    cli.json("promote", "--candidate", str(PATCHES / "01-percent-and-plain-digits.patch"))  # v2: plain digits
    v2 = git(workspace, "rev-parse", "canonical/calc")
    git(workspace, "branch", "-f", "main", git(workspace, "rev-list", "--max-parents=0", "HEAD"))  # main: still v1
    stale_branch(workspace, "docs", "agents/calc/calc_agent.py", '"""A small', '"""A small (and tidy)')
    made = cli.json("candidate", "--from", "docs")
    commit = made["git_sha"]
    assert git(workspace, "rev-parse", f"{commit}^") == v2 and made["source_ref"].endswith("(rebased onto v2)")
    assert made["changed_files"] == ["agents/calc/calc_agent.py"]  # its own change, nothing of v2 undone
    assert git(workspace, "show", f"{commit}:agents/calc/formatting.py") == git(
        workspace, "show", f"{v2}:agents/calc/formatting.py"
    )
    gate = cli.json("gate", "--candidate", f"v{made['number']}", code=None)
    assert gate["regressions"] == []


def test_a_stale_candidate_that_conflicts_is_refused_with_the_fix(cli, workspace):
    cli.json("promote", "--candidate", str(PATCHES / "01-percent-and-plain-digits.patch"))
    git(workspace, "branch", "-f", "main", git(workspace, "rev-list", "--max-parents=0", "HEAD"))
    stale_branch(workspace, "clash", "agents/calc/formatting.py", 'return f"{value:,}"', 'return f"{value:_}"')
    refused = cli("candidate", "--from", "clash", code=2)
    assert "not from canonical v2" in refused.output and "git rebase canonical/calc" in refused.output
    assert [v["number"] for v in cli.json("log")] == [1, 2]  # nothing recorded
