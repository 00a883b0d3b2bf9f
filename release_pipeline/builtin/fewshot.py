"""The `fewshot` candidate strategy: add demonstrations aimed at the spec's dominant failures.

Demonstrations come from the dev split only (which the candidate stage may
see): first the agent's own passing answers (bootstrapped from its traces),
then, for families where it passed nothing, the task's expected answer.
Each iteration adds at most `per_iteration` demonstrations, one per target tag
in the order of the spec's patterns, up to `max_demos` in the file.
"""

from __future__ import annotations

from typing import Any

from release_pipeline.config import load_yaml
from release_pipeline.errors import ConfigError
from release_pipeline.hookspecs import hookimpl
from release_pipeline.models import CandidateContext, CandidateProposal


def _show(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _target_tags(ctx: CandidateContext) -> list[str]:
    """Tags of the spec's target tasks, most targeted first (ties by pattern order, then name)."""
    spec = ctx.spec
    if spec is None:
        return []
    tags_of = {e["task_id"]: e["tags"] for e in ctx.dev_examples}
    counts: dict[str, int] = {}
    for task_id in spec.target_tasks:
        for tag in tags_of.get(task_id, ()):
            counts[tag] = counts.get(tag, 0) + 1
    return sorted(counts, key=lambda t: (-counts[t], t))


def fewshot(ctx: CandidateContext) -> CandidateProposal | None:
    demos_file = ctx.base.manifest.files.get("demos")
    if not demos_file:
        raise ConfigError(f"strategy fewshot needs `demos: <file>` in agent {ctx.agent!r}'s manifest")
    max_demos = int(ctx.options.get("max_demos", 6))
    per_iteration = int(ctx.options.get("per_iteration", 3))
    path = ctx.base.path / demos_file
    demos = (load_yaml(path, "demonstrations") or []) if path.exists() else []
    shown = {_show(d["input"]) for d in demos}
    room = min(per_iteration, max_demos - len(demos))
    if room <= 0:
        return None
    added: list[dict[str, Any]] = []
    added_tags: list[str] = []
    tags = _target_tags(ctx)
    while len(added) < room:  # round-robin over the target tags, most targeted first
        before = len(added)
        for tag in tags:
            if len(added) == room:
                break
            pool = [e for e in ctx.dev_examples if tag in e["tags"] and _show(e["input"]) not in shown]
            if not pool:
                continue
            # prefer the agent's own correct answer (bootstrapped); else the labelled one
            pick = min(pool, key=lambda e: (not e["passed"], e["task_id"]))
            answer = pick["output"] if pick["passed"] else pick["expected"]
            added.append({"input": pick["input"], "output": _show(answer)})
            added_tags.append(tag)
            shown.add(_show(pick["input"]))
        if len(added) == before:
            break
    if not added:
        return None
    tags = ", ".join(dict.fromkeys(added_tags))
    import yaml

    text = yaml.safe_dump(demos + added, sort_keys=False, allow_unicode=True)
    intent = f"Add {len(added)} demonstration(s) for {tags}, targeting spec #{ctx.spec.id}'s dominant patterns"
    return CandidateProposal(intent=intent, files={demos_file: text}, source=f"fewshot:spec-{ctx.spec.id}")


@hookimpl
def release_register_candidate_strategies(register):
    register("fewshot", fewshot)
