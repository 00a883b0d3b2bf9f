"""The clock of one trial: its timeout counts the agent's own work, not the harness's.

The run stage sets a `TrialClock` for every trial (a context variable, so it follows the trial into
the adapter and the LLM gateway). Starting a sandboxed worker is `harness_time`: the clock stops, and
starts afresh once the worker is ready. An LLM call records when the trial's time ran out while it
was waiting on the provider, which makes that timeout an `error` of the provider, not the agent's failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class TrialClock:
    budget_s: float
    timeout: asyncio.Timeout | None = None
    provider_cut_short: bool = False  # the time ran out while an LLM call waited on its provider

    def pause(self) -> None:
        """Stop counting: the harness is about to spend time of its own (starting a sandbox)."""
        if self.timeout is not None:
            self.timeout.reschedule(None)

    def restart(self) -> None:
        """Start counting from now: what the harness spent so far (starting a sandbox) is not the agent's."""
        if self.timeout is not None:
            self.timeout.reschedule(asyncio.get_running_loop().time() + self.budget_s)


current_trial: ContextVar[TrialClock | None] = ContextVar("current_trial", default=None)


@contextmanager
def harness_time() -> Iterator[None]:
    """Time spent inside is the harness's: the trial's clock stops, and starts afresh after."""
    clock = current_trial.get()
    if clock is not None:
        clock.pause()
    try:
        yield
    finally:
        if clock is not None:
            clock.restart()


def note_provider_cut_short() -> None:
    clock = current_trial.get()
    if clock is not None:
        clock.provider_cut_short = True
