"""What an agent may return, shared by the adapters, the sandboxed worker and the run stage."""

from __future__ import annotations

from typing import Any

from release_pipeline.errors import AgentProtocolError
from release_pipeline.models import AgentResult, Task, TrialContext

# Exit status by which a subprocess agent says "the infrastructure failed, not me" (sysexits EX_TEMPFAIL).
EXIT_INFRASTRUCTURE = 75


def as_result(value: Any) -> AgentResult:
    """Accept an AgentResult, a mapping with `output` (and `trace`, `tokens`, `cost`), or a bare answer.

    Values are taken as they are; `records.recordable` decides later what of them a record can hold.
    """
    if isinstance(value, AgentResult):
        return value
    if isinstance(value, dict) and "output" in value:
        trace = value.get("trace") or []
        if not isinstance(trace, list):
            raise AgentProtocolError("`trace` must be a list of steps")
        return AgentResult(value["output"], trace, value.get("tokens", 0), value.get("cost", 0.0))
    return AgentResult(value)


def trial_payload(task: Task, ctx: TrialContext) -> dict[str, Any]:
    """What an agent running in a process of its own receives for one trial (as JSON)."""
    return {
        "task_id": task.id,
        "input": task.input,
        "repeat": ctx.repeat,
        "attempt": ctx.attempt,
        "seed": ctx.seed,
        "params": ctx.params,
    }
