"""Finding and repairing every disagreement between the database's version line and git.

A head move (promote, rollback, init) moves git first, inside the database transaction that moves the
head; the commit of that transaction is the moment the move happens. A process killed between the two
leaves git ahead of a database that never moved. So the database is the record: `check` lists where
git says otherwise (the `canonical/<agent>` ref, the `<agent>/v<N>` tags, the canonical version the line in
`refs/release-pipeline/<agent>` names), and `repair` puts git back to the database's state, the last one both
agreed on, and records the repair as a head move (the line in git is rewritten with it).

With a shared remote (`remote:`), the remote is git too: a runner killed after its push and before its commit
leaves the remote ahead, and every clone that fetches the line would fetch that. `check` reads the remote's refs
as well (fetched under a namespace of the clone's own), and `repair` pushes the repaired refs there, all at once
and each a compare-and-swap on what the remote held, as a head move does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from release_pipeline.errors import ConflictError
from release_pipeline.models import Disagreement, VersionInfo, version_tag
from release_pipeline.repo import gitops, line_ref
from release_pipeline.repo.gitops import canonical_ref

if TYPE_CHECKING:
    from git import Repo

    from release_pipeline.workspace import Workspace


NO_TAG = ("", "")


@dataclass(frozen=True)
class GitView:
    """What one copy of git says about an agent's line: this clone's refs, or the remote's as fetched."""

    remote: str  # "" for this clone
    canonical_ref: str  # where the canonical ref's value is read
    tag_prefix: str  # where the version tags are read
    line_ref: str  # where the line is read

    @classmethod
    def clone(cls, agent: str) -> GitView:
        return cls("", canonical_ref(agent), f"refs/tags/{agent}/", line_ref.line_ref(agent))

    @classmethod
    def fetched(cls, ws: Workspace, agent: str) -> GitView:
        prefix = gitops.fetch_line_view(ws.repo, ws.remote, agent)
        return cls(ws.remote, f"{prefix}/canonical", f"{prefix}/tags/", f"{prefix}/line")

    def canonical(self, ws: Workspace) -> str:
        return gitops.ref_sha(ws.repo, self.canonical_ref) or ""

    def tags(self, ws: Workspace) -> dict[int, tuple[str, str]]:
        """The `v<N>` tags, by number: the commit each points at, and the tag's own object."""
        out = ws.repo.git.for_each_ref("--format=%(refname) %(*objectname) %(objectname)", self.tag_prefix)
        tags = {}
        for row in out.splitlines():
            name, peeled, direct = (row.split(" ") + ["", ""])[:3]
            suffix = name[len(self.tag_prefix) :]
            if suffix.startswith("v") and suffix[1:].isdigit():
                tags[int(suffix[1:])] = (peeled or direct, direct)
        return tags

    def line(self, ws: Workspace, agent: str) -> dict | None:
        return line_ref.read(ws.repo, agent, self.line_ref)


def views(ws: Workspace, agent: str) -> list[GitView]:
    """This clone's git, and the shared remote's when there is one."""
    return [GitView.clone(agent), *([GitView.fetched(ws, agent)] if ws.remote else [])]


def check(ws: Workspace, agent: str) -> list[Disagreement]:
    """Every disagreement between the database and git about `agent`'s version line: this clone's, and the
    shared remote's when there is one."""
    return [problem for view in views(ws, agent) for problem in _disagreements(ws, agent, view)]


def _disagreements(ws: Workspace, agent: str, view: GitView) -> list[Disagreement]:
    """Where `view` disagrees with the database: its canonical ref, its version tags, the line it carries."""
    store = ws.store
    head = store.head(agent)
    versions = {v.number: v for v in store.versions(agent)}
    ever_canonical = {m.to_version for m in store.head_moves(agent)}
    where = f"remote {view.remote!r}: " if view.remote else ""
    return [
        *_canonical_disagreements(ws, agent, view, head, versions, where),
        *_tag_disagreements(ws, agent, view, versions, ever_canonical, where),
        *_line_disagreements(ws, agent, view, head, where),
    ]


def _canonical_disagreements(
    ws: Workspace, agent: str, view: GitView, head: VersionInfo | None, versions: dict[int, VersionInfo], where: str
) -> list[Disagreement]:
    at = view.canonical(ws)
    want = head.git_sha if head else ""
    if at == want:
        return []
    story = where + _ref_story(agent, head, at, versions)
    return [Disagreement(agent, canonical_ref(agent), want, at, story, view.remote)]


def _tag_disagreements(
    ws: Workspace,
    agent: str,
    view: GitView,
    versions: dict[int, VersionInfo],
    ever_canonical: set[int],
    where: str,
) -> list[Disagreement]:
    """Each `v<N>` tag that is missing (the version was canonical), extra (it never was) or points elsewhere."""
    tags = view.tags(ws)
    found = []
    for number in sorted(ever_canonical | set(tags)):
        want = versions[number].git_sha if number in ever_canonical and number in versions else ""
        have = tags[number][0] if number in tags else ""
        if have != want:
            tag = version_tag(agent, number)
            story = where + _tag_story(tag, number, want, have)
            found.append(Disagreement(agent, f"refs/tags/{tag}", want, have, story, view.remote))
    return found


def _tag_story(tag: str, number: int, want: str, have: str) -> str:
    if not want:
        return f"tag {tag} names v{number}, which the database never made canonical (a move that did not commit)"
    if not have:
        return f"v{number} was canonical but git has no tag {tag}"
    return f"tag {tag} points at {have[:10]}, not at v{number}'s commit {want[:10]}"


def _line_disagreements(
    ws: Workspace, agent: str, view: GitView, head: VersionInfo | None, where: str
) -> list[Disagreement]:
    """The version line git carries, damaged or naming another canonical version than the database."""
    ref = line_ref.line_ref(agent)
    try:
        line = view.line(ws, agent)  # none before the first move of a line made by an older release
    except line_ref.LineDamaged as exc:
        want = f"v{head.number}" if head else ""
        return [Disagreement(agent, ref, want, "damaged", where + str(exc), view.remote)]
    if line is None or head is None or line.get("canonical") == head.number:
        return []
    named = line.get("canonical")
    story = (
        f"{where}the version line git carries names v{named} canonical, the database v{head.number} "
        "(a move that did not commit)"
    )
    return [Disagreement(agent, ref, f"v{head.number}", f"v{named}", story, view.remote)]


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
    """Put git back to the database's state (this clone's, then the shared remote's) and record the repair;
    returns what was repaired."""
    problems = check(ws, agent)
    if not problems:
        return []
    head = ws.store.head(agent)
    versions = {v.number: v for v in ws.store.versions(agent)}
    for problem in problems:
        if problem.remote or problem.ref == line_ref.line_ref(agent):
            continue  # the remote is pushed this clone's repaired refs; the line is rewritten once recorded
        _put_back(ws.repo, agent, problem, versions)
    if head is not None:
        _record_repair(ws, agent, head.number, problems)
    if ws.remote:
        _push_repair(ws, agent, GitView.clone(agent), GitView.fetched(ws, agent))
    return problems


def _put_back(repo: Repo, agent: str, problem: Disagreement, versions: dict[int, VersionInfo]) -> None:
    """Move one ref of this clone back to the database's state: restore or delete a tag, move or delete a ref."""
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


def _record_repair(ws: Workspace, agent: str, canonical: int, problems: list[Disagreement]) -> None:
    """Record the repair as a head move, and rewrite the line git carries to match (where there is one)."""
    store = ws.store
    story = "; ".join(p.explanation for p in problems)
    store.record_repair(agent, canonical, actor=ws.actor, reason=f"doctor: {story}"[:4000])
    if line_ref.exists(ws.repo, agent) or ws.remote:
        line = line_ref.line_as_is(
            agent, canonical, store.versions(agent), store.head_moves(agent), store.gate_decisions(agent)
        )
        line_ref.write(ws.repo, agent, line, f"{agent}: line repaired by release doctor")


def _push_repair(ws: Workspace, agent: str, clone: GitView, remote: GitView) -> None:
    """Give the remote this clone's (repaired) canonical ref, line and version tags where they differ, in one
    atomic push, each a compare-and-swap on what the remote held when fetched."""
    repo = ws.repo
    moves: list[tuple[str, str | None, str | None]] = []
    for ref, here, there in (
        (canonical_ref(agent), clone.canonical_ref, remote.canonical_ref),
        (line_ref.line_ref(agent), clone.line_ref, remote.line_ref),
    ):
        mine, theirs = gitops.ref_sha(repo, here), gitops.ref_sha(repo, there)
        if mine != theirs:
            moves.append((ref, mine, theirs))
    mine_tags, their_tags = clone.tags(ws), remote.tags(ws)
    for number in sorted(set(mine_tags) | set(their_tags)):
        (our_commit, our_tag), (their_commit, their_tag) = mine_tags.get(number, NO_TAG), their_tags.get(number, NO_TAG)
        if our_commit != their_commit:  # the tag objects two clones made differ; the commits they name must not
            moves.append((f"refs/tags/{version_tag(agent, number)}", our_tag or None, their_tag or None))
    if moves:
        gitops.push_atomic(repo, ws.remote, moves)
