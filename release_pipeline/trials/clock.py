"""The clock of one trial: one deadline, counting the agent's own work and never the harness's.

The run stage sets a `TrialClock` for every trial (a context variable, so it follows the trial into the adapter
and the LLM gateway). The trial's time is spent while the agent works; while it waits on the harness (its sandbox
starting, the local model busy with other trials, another trial's identical call) the clock stands still and that
time is credited, never reset: a trial ends when its agent has worked `budget_s` in all, however its waits fall.

Credit is bounded. Waits before the agent runs (its worker starting) are the harness's alone and credited in full.
Once the agent runs, at most `grace_s` of waiting is credited; a trial still waiting past that ends as an `error`
of the harness (the machine is overloaded), never as a pass or a failure. What the trial causes itself is not
credited: its own generation keeps its clock running even while its other calls wait, and joining its own call
already under way is no wait on the harness.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar


def default_grace(budget_s: float) -> float:
    """The most harness time a trial is credited once its agent runs: ten budgets, at least a minute."""
    return max(60.0, 10.0 * budget_s)


class TrialClock:
    """One trial's deadline: `budget_s` of the agent's own time, plus the harness's waits it is credited."""

    def __init__(self, budget_s: float, grace_s: float | None = None):
        self.budget_s = budget_s
        self.grace_s = default_grace(budget_s) if grace_s is None else grace_s
        self.provider_cut_short = False  # the time ran out while an LLM call waited on its provider
        self.used = 0.0  # the agent's own time so far
        self.credit = 0.0  # harness time credited while the agent ran
        self._timeout: asyncio.Timeout | None = None
        self._starting = self._waits = self._own = 0
        self._mark = 0.0

    @property
    def expired(self) -> bool:
        """Whether the trial's time has run out (its timeout fired)."""
        return self._timeout is not None and self._timeout.expired()

    def forgive(self) -> None:
        """The agent's attempt was lost to the harness (a sandboxed worker it shared went down): the time it took is
        credited as the harness's (up to the grace), so the next attempt, under a new `attach`, has the whole budget."""
        self._settle()
        self.credit = min(self.grace_s, self.credit + self.used)
        self.used = 0.0

    @property
    def overran(self) -> bool:
        """Whether the harness made the trial wait past its grace (its timeout is then the harness's fault)."""
        return self.credit >= self.grace_s

    def attach(self, timeout: asyncio.Timeout) -> None:
        """Start counting, under `timeout` (entered with no deadline: the clock sets it)."""
        self._timeout, self._mark = timeout, asyncio.get_running_loop().time()
        self._reschedule(self._mark)

    def stop(self) -> None:
        """Stop counting (the agent answered, or its time is up): `used` and `credit` are final."""
        self._settle()
        self._timeout = None

    @property
    def _running(self) -> bool:
        return self._starting == 0 and (self._waits == 0 or self._own > 0)

    def _settle(self) -> float:
        """Book the time since the last change to the agent or to the harness; returns now."""
        now = asyncio.get_running_loop().time() if self._timeout is not None else self._mark
        elapsed, self._mark = now - self._mark, now
        if self._running:
            self.used += elapsed
        elif self._starting == 0:
            self.credit = min(self.grace_s, self.credit + elapsed)
        return now

    def _reschedule(self, now: float) -> None:
        if self._timeout is None or self._timeout.expired():  # expired: the trial is ending, its books stay
            return
        if self._running:
            self._timeout.reschedule(now + max(0.0, self.budget_s - self.used))
        elif self._starting:
            self._timeout.reschedule(None)  # bounded by the worker's own start timeout
        else:
            self._timeout.reschedule(now + max(0.0, self.grace_s - self.credit))

    @contextmanager
    def _counting(self, field: str) -> Iterator[None]:
        now = self._settle()
        setattr(self, field, getattr(self, field) + 1)
        self._reschedule(now)
        try:
            yield
        finally:
            now = self._settle()
            setattr(self, field, getattr(self, field) - 1)
            self._reschedule(now)

    def waiting(self) -> AbstractContextManager[None]:
        """The agent waits on the harness: the clock stands still (credited, up to the grace)."""
        return self._counting("_waits")

    def starting(self) -> AbstractContextManager[None]:
        """The agent's process is being started: it is not running yet, so none of this is its time."""
        return self._counting("_starting")

    def own_work(self) -> AbstractContextManager[None]:
        """Work done for this trial (its own generation): the clock runs, whatever else of it waits."""
        return self._counting("_own")


current_trial: ContextVar[TrialClock | None] = ContextVar("current_trial", default=None)


@contextmanager
def harness_time(*, starting: bool = False) -> Iterator[None]:
    """Time spent inside is the harness's, not the trial's (`starting`: before its agent runs at all)."""
    clock = current_trial.get()
    if clock is None:
        yield
        return
    with clock.starting() if starting else clock.waiting():
        yield


@contextmanager
def own_work() -> Iterator[None]:
    """Time spent inside is the trial's own, even while other calls of the same trial wait on the harness."""
    clock = current_trial.get()
    if clock is None:
        yield
        return
    with clock.own_work():
        yield


def note_provider_cut_short() -> None:
    clock = current_trial.get()
    if clock is not None:
        clock.provider_cut_short = True
