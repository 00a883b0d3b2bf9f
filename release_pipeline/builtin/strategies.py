"""The built-in candidate strategies for human-authored changes: `change` (one branch, commit, tag or patch file,
as `release candidate --from` records it) and `patch-queue` (patches proposed one per iteration, in order)."""

from __future__ import annotations

from pathlib import Path

from release_pipeline.config.release_yaml import read_text
from release_pipeline.errors import ConfigError
from release_pipeline.models import CandidateContext, CandidateProposal
from release_pipeline.plugins.hookspecs import hookimpl
from release_pipeline.repo.patches import patch_intent


def change(ctx: CandidateContext) -> CandidateProposal:
    """The change named by option `from` (a git ref or a patch file), with option `intent` when given."""
    source, intent = ctx.options.get("from"), ctx.options.get("intent") or ""
    if not isinstance(source, str) or not source or not isinstance(intent, str):
        raise ConfigError("strategy change needs `from`, a branch, commit, tag or patch file (and a text `intent`)")
    return CandidateProposal(intent=intent, ref=source)


def patch_queue(ctx: CandidateContext) -> CandidateProposal | None:
    """The first of `strategy.patches` (paths relative to the workspace) not yet recorded as a candidate."""
    patches = ctx.options.get("patches")
    if not isinstance(patches, list) or not all(isinstance(p, str) for p in patches):
        raise ConfigError("strategy patch-queue needs `patches:`, a list of patch files")
    for rel in patches:
        source = f"patch:{rel}"
        if source in ctx.used_sources:
            continue
        path = ctx.workspace / rel
        if not path.is_file():
            raise ConfigError(f"strategy patch-queue: patch file not found: {rel}")
        text = read_text(path, "patch")
        return CandidateProposal(intent=patch_intent(text) or f"apply {Path(rel).name}", patch=text, source=source)
    return None


@hookimpl
def release_register_candidate_strategies(register):
    register("change", change)
    register("patch-queue", patch_queue)
