"""The version line as git carries it: `refs/release-pipeline/<agent>`, a commit whose tree holds `line.json`.

It is written with every head move, in the same all-or-nothing git step as the canonical ref and the version tag
(undone with them), and holds the line as it stands after the move: every version recorded so far (number,
commit, parent, status, intent, source, content hash, and its reasons, which carry the gate's decision and the
report it came from), every head move, and every gate decision with the SHA-256 of its report (so a copy of a
report can be checked against the line). A fresh clone that fetched these refs knows its canonical version with
no database, and `release init` there adopts the line instead of starting a second one.

    git fetch origin 'refs/release-pipeline/*:refs/release-pipeline/*'   # beside the canonical branches and tags
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

import git

from release_pipeline import gitops
from release_pipeline.models import GateDecision, HeadMove, VersionInfo

LINE_FILE = "line.json"
FORMAT = 1


def line_ref(agent: str) -> str:
    return f"refs/release-pipeline/{agent}"


def line_after(
    versions: list[VersionInfo], moves: list[HeadMove], gates: list[GateDecision], move: HeadMove
) -> dict[str, Any]:
    """The line once `move` is made: the old head retired, the new one canonical, the move appended, and every gate
    decision with its report's digest (each in its record's JSON shape, docs/json.md)."""
    status = {v.number: v.status for v in versions}
    if move.from_version is not None:
        status[move.from_version] = "retired"
    status[move.to_version] = "canonical"
    moved = [replace(v, status=status[v.number]) for v in versions]  # type: ignore[arg-type]
    return line_as_is(move.agent, move.to_version, moved, [*moves, move], gates)


def line_as_is(
    agent: str, canonical: int, versions: list[VersionInfo], moves: list[HeadMove], gates: list[GateDecision]
) -> dict[str, Any]:
    """The line as the database holds it now (each version, move and gate decision in its record's JSON shape)."""
    return {
        "format": FORMAT,
        "agent": agent,
        "canonical": canonical,
        "versions": [v.to_dict() for v in versions],
        "moves": [m.to_dict() for m in moves],
        "gates": [g.to_dict() for g in gates],
    }


def write(repo: git.Repo, agent: str, line: dict[str, Any], message: str) -> str | None:
    """Commit `line` onto the agent's line ref; returns what the ref held before (None: nothing), for an undo."""
    ref = line_ref(agent)
    old = gitops.ref_sha(repo, ref)
    text = json.dumps(line, indent=1, sort_keys=True) + "\n"
    commit = gitops.commit_lone_file(repo, old, LINE_FILE, text, message)
    repo.git.update_ref(ref, commit, old or "0" * 40)  # refused if another process moved it meanwhile
    return old


def put_back(repo: git.Repo, agent: str, old: str | None) -> None:
    ref = line_ref(agent)
    if old:
        repo.git.update_ref(ref, old)
    else:
        repo.git.update_ref("-d", ref)


def read(repo: git.Repo, agent: str, ref: str | None = None) -> dict[str, Any] | None:
    """The line git carries for `agent` (at `ref`, else its own ref), or None when it carries none."""
    sha = gitops.ref_sha(repo, ref or line_ref(agent))
    if sha is None:
        return None
    return json.loads(repo.git.show(f"{sha}:{LINE_FILE}"))


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)
