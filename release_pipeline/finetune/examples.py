"""What a fine-tuning strategy trains on, taken from the canonical version's own evidence on the dev split.

* SFT (rejection sampling): the chat each passing dev task was asked, with the answer the agent gave, plus the
  spec's target tasks answered with their expected answer (the demonstrations the spec points to).
* GRPO: dev prompts, drawn with a weight of `p(1 - p)` where `p` is the task's pass rate in the stored dev run:
  a prompt whose rollouts all pass or all fail teaches nothing (every advantage is zero), a prompt in between
  teaches most. When the stored run shows no task in between (greedy decoding: one observation a task), failing
  tasks are drawn four times as often as passing ones (which keep the model from forgetting).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from release_pipeline.builtin.prompt_agent import PromptAgent
from release_pipeline.errors import UserError
from release_pipeline.models import CandidateContext

FAILING_WEIGHT, PASSING_WEIGHT = 1.0, 0.25


@dataclass(frozen=True)
class Prompt:
    task_id: str
    messages: list[dict[str, str]]
    answer: str  # what to imitate (SFT); empty for GRPO
    weight: float = 1.0
    source: str = ""  # own_pass | spec_demo | dev


def _prompt_agent(ctx: CandidateContext) -> PromptAgent:
    if ctx.base.manifest.adapter != "prompt":
        raise UserError(f"fine-tuning needs a prompt agent (adapter: prompt), not {ctx.base.manifest.adapter!r}")
    return PromptAgent(ctx.base)


def sft_prompts(ctx: CandidateContext, *, demos: bool = True) -> list[Prompt]:
    """The passing dev answers, and (with `demos`) the spec's failing targets with their expected answers."""
    agent = _prompt_agent(ctx)
    targets = set(ctx.spec.target_tasks) if ctx.spec else set()
    prompts = []
    for e in ctx.dev_examples:
        if e["passed"] and isinstance(e["output"], str):
            prompts.append(Prompt(e["task_id"], agent.messages(e["input"]), e["output"], source="own_pass"))
        elif demos and e["task_id"] in targets and isinstance(e["expected"], str):
            prompts.append(Prompt(e["task_id"], agent.messages(e["input"]), e["expected"], source="spec_demo"))
    if not prompts:
        raise UserError("nothing to fine-tune on: no passing dev answer and no spec target with a text answer")
    return prompts


def grpo_prompts(ctx: CandidateContext) -> tuple[list[Prompt], str]:
    """Every dev task's prompt with its draw weight, and how the weights were chosen."""
    agent = _prompt_agent(ctx)
    rates = {e["task_id"]: e["passes"] / e["trials"] for e in ctx.dev_examples if e.get("trials")}
    informative = {t: p * (1 - p) for t, p in rates.items() if 0 < p < 1}
    prompts = []
    for e in ctx.dev_examples:
        if e["task_id"] not in rates:
            continue
        if informative:
            weight = informative.get(e["task_id"], 0.0)
        else:
            weight = PASSING_WEIGHT if rates[e["task_id"]] == 1 else FAILING_WEIGHT
        if weight > 0:
            prompts.append(Prompt(e["task_id"], agent.messages(e["input"]), "", weight, "dev"))
    if not prompts:
        raise UserError("nothing to train on: the dev split has no judged trial")
    how = (
        f"p(1-p) of the stored pass rate: {len(informative)} of {len(rates)} dev tasks are neither always passed "
        "nor always failed"
        if informative
        else f"no dev task between 0 and 1 in the stored run (one observation a task): failing tasks weighted "
        f"{FAILING_WEIGHT:g}, passing {PASSING_WEIGHT:g}"
    )
    return prompts, how


def draw(prompts: list[Prompt], count: int, seed: int) -> list[Prompt]:
    """`count` prompts drawn by weight (with replacement), reproducibly."""
    return random.Random(seed).choices(prompts, weights=[p.weight for p in prompts], k=count)


def drawn_counts(prompts: list[Prompt]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for p in prompts:
        counts[p.task_id] = counts.get(p.task_id, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
