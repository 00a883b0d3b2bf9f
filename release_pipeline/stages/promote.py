"""Stage promote: move the canonical head, in the database and in git, together or not at all.

The database move is a compare-and-swap on the head's revision inside one
write transaction; the git move is a compare-and-swap on
`refs/heads/canonical/<agent>` plus the annotated tag `<agent>/v<N>`. Git
moves inside the transaction: if it fails, the transaction rolls back; if the
commit fails after it, git is put back. A process killed between the two
leaves git ahead of the database: every move first checks that they agree,
and `release doctor` (stages/doctor.py) repairs what a kill left.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import git

from release_pipeline.config.manifest import load_manifest
from release_pipeline.errors import ConflictError, UserError
from release_pipeline.faults import crash_point
from release_pipeline.models import HeadMove, VersionInfo, version_tag
from release_pipeline.repo import gitops, line_ref
from release_pipeline.stages.doctor import ensure_consistent
from release_pipeline.store.schema import utcnow

if TYPE_CHECKING:
    from release_pipeline.config.release_yaml import AgentConfig
    from release_pipeline.workspace import Workspace


def _git_move(
    ws, agent: str, old: VersionInfo | None, new: VersionInfo, message: str, move: HeadMove
) -> Callable[[], Callable]:
    """The side effect of a head move: returns a callable that performs it and returns its undo. Git gets the
    canonical ref, the version's tag, and the line as it stands after the move (`line_ref.py`)."""

    def perform() -> Callable[[], None]:
        repo = ws.repo
        ref = gitops.canonical_ref(agent)
        tag = version_tag(agent, new.number)
        line = line_ref.line_after(
            ws.store.versions(agent), ws.store.head_moves(agent), ws.store.gate_decisions(agent), move
        )

        def put_back() -> None:
            if old:
                gitops.move_ref(repo, ref, old.git_sha, new.git_sha)
            else:
                repo.git.update_ref("-d", ref)

        gitops.move_ref(repo, ref, new.git_sha, old.git_sha if old else None)
        created = False  # by us: a tag another process made is never ours to delete
        written, carried = False, None  # whether we wrote the line ref, and what it held before
        shared: list[tuple[str, str | None, str | None]] = []  # what the shared remote moved with us

        def put_all_back() -> None:
            if written:
                line_ref.put_back(repo, agent, carried)
            if created:
                gitops.delete_tag(repo, tag)
            put_back()

        try:
            crash_point("git:ref-moved")
            if not gitops.tag_exists(repo, tag):
                gitops.create_tag(repo, tag, new.git_sha, message)
                created = True
                crash_point("git:tagged")
            carried, written = line_ref.write(repo, agent, line, message), True
            if ws.remote:
                shared = _shared_moves(repo, agent, ref, tag if created else None, old, new, carried)
                gitops.push_atomic(repo, ws.remote, shared)
                crash_point("git:pushed")
        except BaseException:  # git half moved: put it back before the transaction rolls back
            put_all_back()
            raise

        def undo() -> None:
            if shared:  # the remote moved with us: back, compare-and-swap on the values we pushed
                gitops.push_atomic(repo, ws.remote, [(r, was, now) for r, now, was in shared])
            put_all_back()

        return undo

    return perform


def _shared_moves(
    repo, agent: str, ref: str, tag: str | None, old: VersionInfo | None, new: VersionInfo, carried: str | None
) -> list[tuple[str, str | None, str | None]]:
    """What the remote must move with this clone: (ref, new value, value it must have now) for the canonical
    branch, the line, and the version tag when this move made it."""
    line = line_ref.line_ref(agent)
    moves = [(ref, new.git_sha, old.git_sha if old else None), (line, gitops.ref_sha(repo, line), carried)]
    if tag is not None:
        moves.append((f"refs/tags/{tag}", gitops.ref_sha(repo, f"refs/tags/{tag}"), None))
    return moves


def sync_from_remote(ws: Workspace, agent: str) -> None:
    """Before a move, under the head's lock: this clone's canonical branch, tags and line as the shared remote
    has them (another runner may have moved the line), then the usual check that database and git agree."""
    if ws.remote:
        gitops.fetch_line(ws.repo, ws.remote, agent)
    ensure_consistent(ws, agent)


def adopt_line(ws: Workspace, agent: AgentConfig) -> VersionInfo | None:
    """In a store that has no version of `agent` yet, record the line git carries (a fresh clone), if it carries
    one that its canonical ref agrees with; returns the adopted canonical version. Without the canonical branch
    the line is not adopted: deleting that branch (and the store) starts a new line."""
    store = ws.store
    if store.versions(agent.name):
        return None
    try:
        carried = line_ref.read(ws.repo, agent.name)
    except line_ref.LineDamaged as exc:
        raise line_ref.LineDamaged(f"{exc}: {DAMAGED_HINT.format(ref=line_ref.line_ref(agent.name))}") from None
    canonical = gitops.ref_sha(ws.repo, gitops.canonical_ref(agent.name))
    if carried is None or canonical is None:  # no line, or its canonical branch deleted: start over
        return None
    head = next(v for v in carried["versions"] if v["number"] == carried["canonical"])
    if canonical != head["git_sha"]:
        raise ConflictError(
            f"git's version line of {agent.name!r} says v{head['number']} ({head['git_sha'][:10]}) is canonical, "
            f"but canonical/{agent.name} points elsewhere: fetch both from the same remote, then `release init`"
        )
    store.ensure_agent(agent.name, agent.path)
    try:
        store.adopt_line(agent.name, carried)
    except (KeyError, TypeError, ValueError) as exc:  # a field a line holds is missing or of the wrong kind
        raise line_ref.LineDamaged(
            f"the version line at {line_ref.line_ref(agent.name)} is damaged ({type(exc).__name__}: {exc}): "
            + DAMAGED_HINT.format(ref=line_ref.line_ref(agent.name))
        ) from None
    return store.head(agent.name)


DAMAGED_HINT = "`release doctor` repairs it where its store is; or `git update-ref -d {ref}` to start a new line"


def record_baseline(ws: Workspace, agent: AgentConfig) -> VersionInfo | None:
    """Record the committed agent as v1 and make it canonical; None when the agent already has a head.

    A repository whose git already has a canonical ref for the agent, but no line to adopt, is refused: a second
    line would start from a stale commit."""
    store = ws.store
    if store.head(agent.name) is not None:
        return None
    canonical = gitops.ref_sha(ws.repo, gitops.canonical_ref(agent.name))
    if canonical and not store.versions(agent.name):
        raise ConflictError(
            f"git has canonical/{agent.name} ({canonical[:10]}) but no version line to adopt: fetch it "
            f"(git fetch origin 'refs/release-pipeline/*:refs/release-pipeline/*'), or delete that branch to start over"
        )
    ensure_consistent(ws, agent.name)  # before recording anything; checked again under the head's lock
    repo = ws.repo
    gitops.ensure_clean(repo)
    sha = gitops.head_sha(repo)
    content = gitops.folder_tree_sha(repo, sha, agent.path)
    load_manifest(ws.root / agent.path)  # the tree is clean, so this is the committed manifest
    ws.suite(agent)  # a broken manifest or suite fails here, before anything is recorded
    store.ensure_agent(agent.name, agent.path)
    existing = store.versions(agent.name)
    version = (
        existing[0]
        if existing
        else store.create_version(
            agent.name,
            status="candidate",
            parent_number=None,
            git_sha=sha,
            content_hash=content,
            intent="baseline",
            source_ref=f"ref:{sha[:12]}",
        )
    )
    crash_point("init:version-recorded")
    message = f"{agent.name} v{version.number}: baseline"
    move = HeadMove(agent.name, None, version.number, ws.actor, "baseline", "init", utcnow())
    store.move_head(
        agent.name,
        expected=None,
        to=version.number,
        actor=ws.actor,
        reason="baseline",
        kind="init",
        side_effect=_git_move(ws, agent.name, None, version, message, move),
        precheck=lambda: sync_from_remote(ws, agent.name),
    )
    return store.version(agent.name, version.number)


def move_head(
    ws: Workspace, agent: AgentConfig, target: VersionInfo, *, expected: VersionInfo, kind: str, reason: str
) -> HeadMove:
    """Compare-and-swap the head from `expected` to `target`, in the store and in git."""
    if target.number == expected.number:
        raise UserError(f"v{target.number} is already canonical")
    message = f"{agent.name} v{target.number}: {reason}" if reason else f"{agent.name} v{target.number}"
    planned = HeadMove(agent.name, expected.number, target.number, ws.actor, reason, kind, utcnow())  # type: ignore[arg-type]
    move = ws.store.move_head(
        agent.name,
        expected=expected.number,
        to=target.number,
        actor=ws.actor,
        reason=reason,
        kind=kind,
        side_effect=_git_move(ws, agent.name, expected, target, message, planned),
        precheck=lambda: sync_from_remote(ws, agent.name),
    )
    ws.plugins.hook.release_promoted(move=move, workspace=ws.root)
    return move


def promote(ws: Workspace, agent: AgentConfig, candidate: VersionInfo, *, reason: str = "") -> HeadMove:
    """Promote a candidate whose latest gate report accepted it against the current canonical head."""
    head = ws.head(agent)
    if candidate.status != "candidate":
        raise UserError(f"v{candidate.number} is {candidate.status}, not a candidate")
    report = ws.store.latest_gate_report(agent.name, candidate.number)
    if report is None:
        raise UserError(f"v{candidate.number} has not been gated: run `release gate --candidate v{candidate.number}`")
    if report.base != head.number:
        raise ConflictError(
            f"the canonical head moved since v{candidate.number} was gated against "
            f"v{report.base} (it is v{head.number} now): run `release gate --candidate "
            f"v{candidate.number}` again"
        )
    if report.decision != "accepted":
        raise UserError(f"v{candidate.number} was {report.decision} by the gate: {'; '.join(report.reasons)}")
    outside = _outside_agent(ws, agent, head, candidate)
    if outside:  # recorded before candidates carried their agent's folder only: never let the rest reach canonical
        raise UserError(
            f"v{candidate.number} changes files outside {agent.path}/ ({', '.join(outside[:5])}): only the agent's "
            f"own files may reach canonical; propose its agent folder's change again"
        )
    why = reason or f"gate report #{report.id}: {len(report.fixes)} fixes, {len(report.regressions)} regressions"
    return move_head(ws, agent, candidate, expected=head, kind="promote", reason=why)


def _outside_agent(ws: Workspace, agent: AgentConfig, head: VersionInfo, candidate: VersionInfo) -> list[str]:
    """The paths the candidate's commit changes outside the agent's folder, relative to the canonical one."""
    prefix = (ws.repo_path(agent.path) or agent.path).rstrip("/") + "/"
    try:
        changed = gitops.changed_paths(ws.repo, head.git_sha, candidate.git_sha)
    except git.GitCommandError:  # a commit this clone lacks: moving the ref to it will say so
        return []
    return [p for p in changed if not p.startswith(prefix)]


def rollback(ws: Workspace, agent: AgentConfig, target: VersionInfo | None, *, reason: str) -> HeadMove:
    """Make an earlier canonical version canonical again (default: the one the head came from)."""
    head = ws.head(agent)
    if target is None:
        moves = [m for m in ws.store.head_moves(agent.name) if m.to_version == head.number and m.kind != "repair"]
        if not moves or moves[-1].from_version is None:
            raise UserError(f"v{head.number} is the first canonical version of {agent.name!r}: nothing to roll back to")
        target = ws.store.version(agent.name, moves[-1].from_version)
    if target.status != "retired":
        raise UserError(
            f"v{target.number} is {target.status}: only a formerly canonical (retired) version can be rolled back to"
        )
    return move_head(ws, agent, target, expected=head, kind="rollback", reason=reason or "rollback")
