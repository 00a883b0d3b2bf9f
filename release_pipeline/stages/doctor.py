"""Finding and repairing every disagreement between the database's version line and git.

A head move (promote, rollback, init) moves git first, inside the database transaction that moves the
head; the commit of that transaction is the moment the move happens. A process killed between the two
leaves git ahead of a database that never moved. So the database is the record: `check` lists where
git says otherwise (the `canonical/<agent>` ref, the `<agent>/v<N>` tags, the canonical version the line in
`refs/release-pipeline/<agent>` names), and `repair` puts git back to the database's state, the last one both
agreed on, and records the repair as a head move (the line in git is rewritten with it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from release_pipeline import gitops, line_ref
from release_pipeline.errors import ConflictError
from release_pipeline.gitops import canonical_ref
from release_pipeline.models import Disagreement, VersionInfo, version_tag

if TYPE_CHECKING:
    from release_pipeline.workspace import Workspace


def _tags(ws: Workspace, agent: str) -> dict[int, str]:
    """The `<agent>/v<N>` tags git has, by number, with the commit each points at."""
    out = ws.repo.git.for_each_ref("--format=%(refname:strip=2) %(*objectname) %(objectname)", f"refs/tags/{agent}/")
    tags = {}
    for line in out.splitlines():
        name, peeled, direct = (line.split(" ") + ["", ""])[:3]
        suffix = name[len(agent) + 1 :]
        if suffix.startswith("v") and suffix[1:].isdigit():
            tags[int(suffix[1:])] = peeled or direct
    return tags


def check(ws: Workspace, agent: str) -> list[Disagreement]:
    """Every disagreement between the database and git about `agent`'s version line."""
    store = ws.store
    head = store.head(agent)
    versions = {v.number: v for v in store.versions(agent)}
    ever_canonical = {m.to_version for m in store.head_moves(agent)}
    found = []
    ref = canonical_ref(agent)
    at = gitops.ref_sha(ws.repo, ref) or ""
    want = head.git_sha if head else ""
    if at != want:
        found.append(Disagreement(agent, ref, want, at, _ref_story(agent, head, at, versions)))
    tags = _tags(ws, agent)
    for number in sorted(ever_canonical | set(tags)):
        tag = version_tag(agent, number)
        want = versions[number].git_sha if number in ever_canonical and number in versions else ""
        have = tags.get(number, "")
        if have == want:
            continue
        if not want:
            why = f"tag {tag} names v{number}, which the database never made canonical (a move that did not commit)"
        elif not have:
            why = f"v{number} was canonical but git has no tag {tag}"
        else:
            why = f"tag {tag} points at {have[:10]}, not at v{number}'s commit {want[:10]}"
        found.append(Disagreement(agent, f"refs/tags/{tag}", want, have, why))
    line = line_ref.read(ws.repo, agent)  # none before the first move of a line made by an older release
    if line is not None and head is not None and line.get("canonical") != head.number:
        found.append(
            Disagreement(
                agent,
                line_ref.line_ref(agent),
                f"v{head.number}",
                f"v{line.get('canonical')}",
                f"the version line git carries names v{line.get('canonical')} canonical, the database "
                f"v{head.number} (a move that did not commit)",
            )
        )
    return found


def _ref_story(agent: str, head: VersionInfo | None, at: str, versions: dict[int, VersionInfo]) -> str:
    by_sha = {v.git_sha: v.number for v in versions.values()}
    if head is None:
        return (
            f"git has canonical/{agent} at {at[:10]}, but the database has no canonical version "
            "(an init that did not commit)"
        )
    if not at:
        return f"the database's canonical version is v{head.number}, but git has no canonical/{agent}"
    if at in by_sha:
        return (
            f"the database's canonical version is v{head.number}, but canonical/{agent} points at "
            f"v{by_sha[at]} (a promote or rollback that did not commit)"
        )
    return f"the database's canonical version is v{head.number}, but canonical/{agent} points at {at[:10]}"


def ensure_consistent(ws: Workspace, agent: str) -> None:
    """Refuse to move a head while the database and git disagree; say how to repair it."""
    problems = check(ws, agent)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConflictError(
            f"the database and git disagree about {agent!r}: {problems[0].explanation}{more}; "
            "run `release doctor` to repair"
        )


def repair(ws: Workspace, agent: str) -> list[Disagreement]:
    """Put git back to the database's state and record the repair; returns what was repaired."""
    problems = check(ws, agent)
    if not problems:
        return []
    repo = ws.repo
    head = ws.store.head(agent)
    versions = {v.number: v for v in ws.store.versions(agent)}
    for problem in problems:
        if problem.ref == line_ref.line_ref(agent):
            continue  # rewritten below, once the repair is recorded
        if problem.ref.startswith("refs/tags/"):
            name = problem.ref[len("refs/tags/") :]
            if problem.git:
                gitops.delete_tag(repo, name)
            if problem.database:
                number = int(name.rsplit("/v", 1)[1])
                gitops.create_tag(repo, name, versions[number].git_sha, f"{agent} v{number} (restored by doctor)")
        elif problem.database:
            gitops.move_ref(repo, problem.ref, problem.database, problem.git or None)
        else:
            repo.git.update_ref("-d", problem.ref)
    if head is not None:
        story = "; ".join(p.explanation for p in problems)
        ws.store.record_repair(agent, head.number, actor=ws.actor, reason=f"doctor: {story}"[:4000])
        if line_ref.read(repo, agent) is not None:
            store = ws.store
            line = line_ref.line_as_is(
                agent, head.number, store.versions(agent), store.head_moves(agent), store.gate_decisions(agent)
            )
            line_ref.write(repo, agent, line, f"{agent}: line repaired by release doctor")
    return problems
