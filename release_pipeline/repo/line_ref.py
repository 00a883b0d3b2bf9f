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

from release_pipeline.errors import ConflictError
from release_pipeline.models import GateDecision, HeadMove, VersionInfo
from release_pipeline.repo import gitops

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


class LineDamaged(ConflictError):
    """The line git carries cannot be read as a line (hand-edited, truncated, another tool's ref)."""


def read(repo: git.Repo, agent: str, ref: str | None = None) -> dict[str, Any] | None:
    """The line git carries for `agent` (at `ref`, else its own ref), or None when it carries none; `LineDamaged`
    when what it carries is not a line."""
    where = ref or line_ref(agent)
    sha = gitops.ref_sha(repo, where)
    if sha is None:
        return None
    try:
        line = json.loads(repo.git.show(f"{sha}:{LINE_FILE}"))
    except git.GitCommandError:
        raise LineDamaged(f"the version line at {where} has no {LINE_FILE}") from None
    except (ValueError, RecursionError) as exc:
        raise LineDamaged(f"the version line at {where} is not JSON ({' '.join(str(exc).split())[:120]})") from None
    problem = _shape_problem(line)
    if problem:
        raise LineDamaged(f"the version line at {where} is damaged: {problem}")
    return line


def _shape_problem(line: Any) -> str:
    """What keeps `line` from being a line, or ""."""
    if not isinstance(line, dict):
        return f"a {type(line).__name__}, not an object"
    if not isinstance(line.get("canonical"), int) or not isinstance(line.get("versions"), list):
        return "no canonical version number or no list of versions"
    for version in line["versions"]:
        if not (isinstance(version, dict) and isinstance(version.get("number"), int)
                and isinstance(version.get("git_sha"), str)):  # fmt: skip
            return "a version without a number or a commit"
    if not any(v["number"] == line["canonical"] for v in line["versions"]):
        return f"its canonical v{line['canonical']} is not among its versions"
    return ""


def exists(repo: git.Repo, agent: str) -> bool:
    """Whether git carries a line for `agent` at all (readable or not)."""
    return gitops.ref_sha(repo, line_ref(agent)) is not None


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)
