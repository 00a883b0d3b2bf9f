"""Budgets: price a run before it starts, and refuse one that cannot be paid for.

The estimate covers the LLM calls an adapter declares (`planned_call`), less
those the store can already answer from its cache: prompt tokens counted as
characters / 4, completion tokens as the call's `max_tokens`, priced by
litellm's local cost map. Models it has no price for count as free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from release_pipeline.errors import UserError
from release_pipeline.llm.gateway import call_key
from release_pipeline.models import TrialContext

if TYPE_CHECKING:
    from release_pipeline.trials.jobs import Job


@dataclass
class Budget:
    """A spending limit in dollars for one command: every LLM call its stages make counts against it."""

    limit: float
    gateway: Any  # the workspace's LLMGateway, which adds up what its calls cost

    def __post_init__(self) -> None:
        self.start = self.gateway.spent

    @property
    def spent(self) -> float:
        return self.gateway.spent - self.start

    @property
    def left(self) -> float:
        return self.limit - self.spent


@dataclass(frozen=True)
class Estimate:
    calls: int
    cached: int
    cost: float


def price(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    from release_pipeline.llm.providers import LOCAL_PROVIDER, litellm_module

    if model.startswith(f"{LOCAL_PROVIDER}/"):  # free, and not worth importing litellm to be told so
        return 0.0
    try:
        prompt, completion = litellm_module().cost_per_token(
            model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
        return float(prompt + completion)
    except Exception:  # no price known (local and custom models)
        return 0.0


def estimate(adapter: Any, jobs: list[Job], *, seed_of, store, models: dict[str, str]) -> Estimate:
    """What `jobs` would cost with this adapter, counting only calls the cache cannot answer."""
    plan = getattr(adapter, "planned_call", None)
    if plan is None:
        return Estimate(0, 0, 0.0)
    calls, cached, cost = 0, 0, 0.0
    for job in jobs:
        ctx = TrialContext(job.task.id, job.repeat, seed_of(job), {}, None, models)
        call = plan(job.task, ctx)
        calls += 1
        if store.cached_response(call_key(**call)) is not None:
            cached += 1
            continue
        chars = sum(len(str(m.get("content", ""))) for m in call["messages"])
        cost += price(call["model"], chars // 4 + 1, int(call["params"].get("max_tokens") or 256))
    return Estimate(calls, cached, cost)


def check(budget: Budget | None, est: Estimate, what: str, reserved: float = 0.0) -> None:
    """Refuse, in one line, work whose estimate (plus `reserved`) exceeds what is left of the budget."""
    if budget is None:
        return
    if est.cost + reserved > budget.left:
        raise UserError(
            f"{what} would cost about ${est.cost:.4f} ({est.calls - est.cached} uncached LLM calls of {est.calls}), "
            f"more than the ${budget.left - reserved:.4f} left of the budget: nothing was run"
        )
