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
from typing import TYPE_CHECKING

from release_pipeline import gitops
from release_pipeline.config import read_text
from release_pipeline.errors import AlreadyJudged, UserError
from release_pipeline.manifest import is_editable
from release_pipeline.models import Judged, VersionInfo
from release_pipeline.patches import PATCH_SUFFIXES, patch_intent

if TYPE_CHECKING:
    from release_pipeline.config import AgentConfig
    from release_pipeline.workspace import Workspace


@dataclass(frozen=True)
class Change:
    """Which changed paths a candidate may make, and which it may not."""

    editable: list[str]
    forbidden: list[str]
    ignored: list[str]


@dataclass(frozen=True)
class CandidateResult:
    version: VersionInfo
    change: Change

    @property
    def rejected(self) -> bool:
        return self.version.status == "rejected"


def classify_change(judge: Workspace, agent: AgentConfig, base: VersionInfo, paths: list[str]) -> Change:
    """Sort changed paths by what the canonical version allows.

    `judge` is the workspace as the canonical commit has it. Anything it loads to judge (config, gate
    policy, suite, plugins, verifier modules) is forbidden, even inside the agent's folder; other paths
    of the agent's folder are allowed when its manifest lists them as editable.
    """
    manifest = judge.materialize(agent, base).manifest
    prefix = (judge.repo_path(agent.path) or agent.path).rstrip("/") + "/"
    protected = judge.judge_files(agent)
    editable, forbidden, ignored = [], [], []
    for path in paths:
        if path in protected or path.startswith("plugins/"):
            forbidden.append(path)
        elif path.startswith(prefix):
            (editable if is_editable(manifest, path[len(prefix) :]) else forbidden).append(path)
        else:
            ignored.append(path)
    return Change(editable, forbidden, ignored)


def refuse_twin(ws: Workspace, agent: AgentConfig, base: VersionInfo, content_hash: str, source: str) -> None:
    """Refuse content already recorded as a candidate against the same base: it was judged, or waits to be."""
    for v in ws.store.versions(agent.name):
        if v.parent == base.number and v.number != base.number and v.content_hash == content_hash:
            why = f" ({'; '.join(v.reasons)})" if v.reasons else ""
            raise AlreadyJudged(
                f"{source} has the same content as v{v.number}, already recorded against v{base.number} "
                f"as {v.status}{why}"
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


def create_candidate(
    ws: Workspace,
    agent: AgentConfig,
    source: str,
    *,
    intent: str | None = None,
    patch_text: str | None = None,
    files: dict[str, str] | None = None,
    record_as: str | None = None,
) -> CandidateResult:
    """Turn a branch, commit, tag, patch (file or text) or new file contents into the next candidate of `agent`.

    `files` maps paths relative to the agent folder to their new content.
    """
    repo = ws.repo
    gitops.ensure_clean(repo)
    base = ws.head(agent)
    patch = None if patch_text is not None or files else _load_patch(ws, source)
    if files:
        bad = [k for k in files if k.startswith("/") or ".." in Path(k).parts]
        if bad:
            raise UserError(f"candidate file {bad[0]!r} is not a path inside the agent folder")
        intent = intent or f"edit {', '.join(sorted(files))}"
        prefix = agent.path.rstrip("/") + "/"
        sha = gitops.commit_files(repo, base.git_sha, {prefix + k: v for k, v in files.items()}, intent)
        recorded = record_as or source
    elif patch_text is not None or patch is not None or source.endswith(PATCH_SUFFIXES):
        if patch_text is None and patch is None:
            raise UserError(f"patch file not found: {source}")
        with tempfile.TemporaryDirectory() as tmp:
            if patch is None:
                patch = Path(tmp) / "candidate.patch"
                patch.write_text(patch_text, encoding="utf-8")
            text = read_text(patch, "patch")
            intent = intent or patch_intent(text) or f"apply {source}"
            sha = gitops.commit_patch(repo, base.git_sha, patch, intent)
        recorded = record_as or f"patch:{source}"
    else:
        sha = gitops.resolve_commit(repo, source)
        intent = intent or repo.commit(sha).summary
        recorded = record_as or f"ref:{source}"
    paths = gitops.changed_paths(repo, base.git_sha, sha)
    judge = ws.at_commit(base.git_sha)
    change = classify_change(judge, judge.agent(agent.name), base, paths)
    content_hash = gitops.folder_tree_sha(repo, sha, agent.path)
    if not change.forbidden and content_hash == base.content_hash:
        raise UserError(f"{source} changes nothing in agent {agent.name!r} relative to v{base.number}")
    refuse_twin(ws, agent, base, content_hash, source)
    spec = ws.store.latest_spec(agent.name, base.number)
    reasons = []
    if change.forbidden:
        reasons.append("changes files outside the artifact's editable files: " + ", ".join(change.forbidden))
    version = ws.store.create_version(
        agent.name,
        status="rejected" if reasons else "candidate",
        parent_number=base.number,
        git_sha=sha,
        content_hash=content_hash,
        intent=intent,
        source_ref=recorded,
        diff=gitops.diff_text(repo, base.git_sha, sha),
        changed_files=paths,
        spec_id=spec["id"] if spec else None,
        reasons=reasons,
        branch=f"rc/{agent.name}/v{{number}}",
    )
    gitops.create_branch(repo, version.branch, sha)
    hook = ws.plugins.hook
    hook.release_candidate_created(version=version, changed_files=paths)
    if reasons:
        hook.release_candidate_rejected(version=version, reasons=reasons)
    return CandidateResult(version, change)
