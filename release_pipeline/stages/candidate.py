"""Stage candidate: record exactly one release candidate, as a commit on its own branch.

A candidate is a change to the canonical artifact: a git ref (branch, tag,
commit) or a patch applied on top of the canonical commit. What it may touch
is decided by the *canonical* manifest's `editable` patterns; a change to
anything else in the agent folder, or to the suite, gate policy, config or
plugins, is rejected before the candidate ever runs, and stays on record.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from release_pipeline.config.manifest import is_editable
from release_pipeline.config.release_yaml import read_text
from release_pipeline.errors import AlreadyJudged, ConflictError, UserError
from release_pipeline.models import Candidate, CandidateContext, CandidateProposal, Judged, VersionInfo
from release_pipeline.repo import gitops
from release_pipeline.repo.patches import PATCH_SUFFIXES, patch_intent
from release_pipeline.store import TwinVersion

if TYPE_CHECKING:
    from release_pipeline.config.release_yaml import AgentConfig
    from release_pipeline.workspace import Workspace


@dataclass(frozen=True)
class Change:
    """Which changed paths a candidate may make, and which it may not."""

    editable: list[str]
    forbidden: list[str]
    ignored: list[str]


def classify_change(judge: Workspace, agent: AgentConfig, base: VersionInfo, paths: list[str]) -> Change:
    """Sort changed paths by what the canonical version allows.

    `judge` is the workspace as the canonical commit has it. Anything it loads to judge (config, gate
    policy, suite, plugins, verifier modules) is forbidden, even inside the agent's folder; other paths
    of the agent's folder are allowed when its manifest lists them as editable.
    """
    manifest = judge.materialize(agent, base).manifest
    prefix = (judge.repo_path(agent.path) or agent.path).rstrip("/") + "/"
    protected = judge.judge_files(agent)
    editable: list[str] = []
    forbidden: list[str] = []
    ignored: list[str] = []
    for path in paths:
        if path in protected or path.startswith("plugins/"):
            forbidden.append(path)
        elif path.startswith(prefix):
            (editable if is_editable(manifest, path[len(prefix) :]) else forbidden).append(path)
        else:
            ignored.append(path)
    return Change(editable, forbidden, ignored)


def already_judged(source: str, base: VersionInfo, twin: VersionInfo) -> AlreadyJudged:
    """The refusal of content already recorded as a candidate against the same base: it was judged, or waits to
    be."""
    why = f" ({'; '.join(twin.reasons)})" if twin.reasons else ""
    return AlreadyJudged(
        f"{source} has the same content as v{twin.number}, already recorded against v{base.number} "
        f"as {twin.status}{why}",
        twin=twin.number,
    )


def judged_against(ws: Workspace, agent: AgentConfig, base: VersionInfo) -> tuple[Judged, ...]:
    """The candidates already recorded against `base`, with the files each changed and why it was not promoted."""
    prefix = agent.path.rstrip("/") + "/"
    found = []
    for v in ws.store.versions(agent.name):
        if v.parent != base.number or v.number == base.number or v.status == "canonical":
            continue
        changed = [p for p in gitops.changed_paths(ws.repo, base.git_sha, v.git_sha) if p.startswith(prefix)]
        files = {p[len(prefix) :]: gitops.file_at(ws.repo, v.git_sha, p) or "" for p in changed}
        found.append(Judged(v.number, v.status, v.intent, v.source_ref, v.content_hash, v.reasons, files))
    return tuple(found)


def _load_patch(ws, spec: str) -> Path | None:
    for candidate in (Path(spec), ws.root / spec):
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class Commit:
    """A candidate's commit on top of the canonical one, with what it means to do and where it came from."""

    sha: str
    intent: str
    source_ref: str


def commit_files(ws: Workspace, agent: AgentConfig, base: VersionInfo, files: dict[str, str], intent: str) -> str:
    """Commit new contents of files of the agent folder (paths relative to it) on top of `base`."""
    bad = [k for k in files if k.startswith("/") or ".." in Path(k).parts]
    if bad:
        raise UserError(f"candidate file {bad[0]!r} is not a path inside the agent folder")
    prefix = agent.path.rstrip("/") + "/"
    return gitops.commit_files(ws.repo, base.git_sha, {prefix + k: v for k, v in files.items()}, intent)


def commit_patch(ws: Workspace, base: VersionInfo, source: str, text: str | None, intent: str | None) -> Commit:
    """Apply a patch (its text, or the file `source`) on top of `base`."""
    path = _load_patch(ws, source) if text is None else None
    if text is None and path is None:
        raise UserError(f"patch file not found: {source}")
    with tempfile.TemporaryDirectory() as tmp:
        if path is None:
            path = Path(tmp) / "candidate.patch"
            path.write_text(text or "", encoding="utf-8")
        intent = intent or patch_intent(read_text(path, "patch")) or f"apply {source}"
        return Commit(gitops.commit_patch(ws.repo, base.git_sha, path, intent), intent, f"patch:{source}")


def candidate_commit(
    ws: Workspace,
    agent: AgentConfig,
    base: VersionInfo,
    source: str,
    *,
    intent: str | None,
    patch_text: str | None,
    files: dict[str, str] | None,
) -> Commit:
    """The commit a candidate is: new file contents, a patch (text or file), or an existing git ref."""
    if files:
        intent = intent or f"edit {', '.join(sorted(files))}"
        return Commit(commit_files(ws, agent, base, files, intent), intent, source)
    if patch_text is not None or _load_patch(ws, source) is not None or source.endswith(PATCH_SUFFIXES):
        return commit_patch(ws, base, source, patch_text, intent)
    sha = gitops.resolve_commit(ws.repo, source)
    intent = intent or str(ws.repo.commit(sha).summary)
    forked = gitops.merge_base(ws.repo, base.git_sha, sha)
    if forked == base.git_sha:  # branched from the canonical commit (or later): its own change is what it adds
        return Commit(sha, intent, f"ref:{source}")
    moved = gitops.rebase_onto(ws.repo, base.git_sha, sha, f"{intent}\n\n(rebased onto {agent.name} v{base.number})")
    if moved is None:
        raise ConflictError(
            f"{source} branched from {forked[:10]}, not from canonical v{base.number} ({base.git_sha[:10]}), and its "
            f"change does not apply cleanly there: `git rebase canonical/{agent.name}` on it, then try again"
        )
    return Commit(moved, intent, f"ref:{source} (rebased onto v{base.number})")


def create_candidate(
    ws: Workspace,
    agent: AgentConfig,
    source: str,
    *,
    intent: str | None = None,
    patch_text: str | None = None,
    files: dict[str, str] | None = None,
    record_as: str | None = None,
) -> Candidate:
    """Turn a branch, commit, tag, patch (file or text) or new file contents into the next candidate of `agent`.

    `files` maps paths relative to the agent folder to their new content. Content already recorded against
    the same base is refused (`AlreadyJudged`); a change outside the editable files is recorded as rejected.
    """
    gitops.ensure_clean(ws.repo)
    base = ws.head(agent)
    commit = candidate_commit(ws, agent, base, source, intent=intent, patch_text=patch_text, files=files)
    paths = gitops.changed_paths(ws.repo, base.git_sha, commit.sha)
    judge = ws.at_commit(base.git_sha)
    change = classify_change(judge, judge.agent(agent.name), base, paths)
    if change.ignored and not change.forbidden:  # only the agent's own files may ever reach canonical
        folder = judge.repo_path(agent.path) or agent.path
        sha = gitops.carry_folder(ws.repo, base.git_sha, commit.sha, folder, commit.intent)
        commit = Commit(sha, commit.intent, f"{commit.source_ref} (only {folder}/ carried)")
    content_hash = gitops.folder_tree_sha(ws.repo, commit.sha, agent.path)
    if not change.forbidden and content_hash == base.content_hash:
        raise UserError(f"{source} changes nothing in agent {agent.name!r} relative to v{base.number}")
    try:
        return record_candidate(ws, agent, base, commit, record_as or commit.source_ref, change, content_hash, paths)
    except TwinVersion as exc:  # the store looks for it as it records, atomically: however many runners race
        raise already_judged(source, base, exc.twin) from None


def record_candidate(
    ws: Workspace,
    agent: AgentConfig,
    base: VersionInfo,
    commit: Commit,
    source_ref: str,
    change: Change,
    content_hash: str,
    paths: list[str],
) -> Candidate:
    """Store the candidate (rejected at once if it changes forbidden files), branch it, and tell the plugins."""
    spec = ws.store.latest_spec(agent.name, base.number)
    reasons = []
    if change.forbidden:
        reasons.append("changes files outside the artifact's editable files: " + ", ".join(change.forbidden))
    version = ws.store.create_version(
        agent.name,
        status="rejected" if reasons else "candidate",
        parent_number=base.number,
        git_sha=commit.sha,
        content_hash=content_hash,
        intent=commit.intent,
        source_ref=source_ref,
        diff=gitops.diff_text(ws.repo, base.git_sha, commit.sha),
        changed_files=paths,
        spec_id=spec.id if spec else None,
        reasons=reasons,
        branch=f"rc/{agent.name}/v{{number}}",
        refuse_twin=True,
    )
    gitops.create_branch(ws.repo, version.branch, commit.sha)
    hook = ws.plugins.hook
    hook.release_candidate_created(version=version, changed_files=paths)
    if reasons:
        hook.release_candidate_rejected(version=version, reasons=reasons)
    return Candidate(version, tuple(change.editable + change.forbidden), tuple(change.ignored))


def record_proposal(ws: Workspace, agent: AgentConfig, strategy: str, proposal: CandidateProposal) -> Candidate:
    """Record a strategy's proposal as the candidate: new files, a patch, or a git ref."""
    source = proposal.source or None
    if proposal.files:
        return create_candidate(
            ws, agent, proposal.source or strategy, intent=proposal.intent, files=proposal.files, record_as=source
        )
    if proposal.patch:
        return create_candidate(
            ws, agent, proposal.source or strategy, intent=proposal.intent, patch_text=proposal.patch, record_as=source
        )
    return create_candidate(ws, agent, proposal.ref, intent=proposal.intent or None, record_as=source)


def change_context(ws: Workspace, agent: AgentConfig, options: dict[str, Any]) -> CandidateContext:
    """What the candidate stage sees for a change made elsewhere (strategy `change`): the canonical artifact; no run,
    so no spec and no dev examples. What was judged is not read from git here: the store refuses a twin as it
    records, and another runner's candidates may be commits this clone does not have."""
    base = ws.head(agent)
    return CandidateContext(
        agent.name,
        ws.materialize(agent, base),
        None,
        ws.root,
        options,
        frozenset(v.source_ref for v in ws.store.versions(agent.name)),
    )
