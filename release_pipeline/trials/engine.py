"""The trial engine: execute a batch of trials of one version under a run's lease, recording them as they end.

Trials are written in batches from a background thread, so the event loop never waits on the database. A run
that is killed keeps every trial flushed before the kill; executing it again runs only the trials still missing.
The run stage and the gate both execute through `Engine.execute`, the one lease-and-execute path.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field, replace
from typing import Any

from release_pipeline import event_loop
from release_pipeline.errors import ConfigError, ConflictError
from release_pipeline.llm.providers import check_model
from release_pipeline.models import Artifact, TrialRecord
from release_pipeline.notices import say
from release_pipeline.plugins.registry import Registry
from release_pipeline.progress import ProgressFactory
from release_pipeline.store import Store, leases
from release_pipeline.trials.budget import Budget, Estimate, check, estimate
from release_pipeline.trials.jobs import Job, trial_seed
from release_pipeline.trials.runner import TrialRunner
from release_pipeline.trials.settings import RunSettings
from release_pipeline.trials.verifiers import Verifiers

FLUSH_SECONDS = 0.2
LEASE_WAIT_S = 1800.0  # how long a command waits for another process to finish the run it needs


@dataclass
class Batcher:
    """Collects finished trials and writes them to the store in batches, from a thread of its own.

    A SIGKILL loses at most the last `FLUSH_SECONDS` of finished trials, which
    a resumed run then executes again; nothing written is ever written twice.
    While it runs, it keeps the run's lease alive.
    """

    store: Store
    pool: ThreadPoolExecutor
    run_id: int
    pending: list[TrialRecord] = field(default_factory=list)
    written: int = 0
    last_beat: float = field(default_factory=time.monotonic)

    def add(self, trial: TrialRecord) -> None:
        self.pending.append(trial)

    async def flush(self) -> None:
        loop = asyncio.get_running_loop()
        if time.monotonic() - self.last_beat > leases.HEARTBEAT_SECONDS:
            self.last_beat = time.monotonic()
            await loop.run_in_executor(self.pool, self.store.heartbeat, self.run_id, leases.me())
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        self.written += await loop.run_in_executor(self.pool, self.store.insert_trials, batch)

    async def flush_until(self, done: asyncio.Event) -> None:
        """Flush every FLUSH_SECONDS until `done`, then once more for the last trials."""
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), FLUSH_SECONDS)
            except TimeoutError:
                pass
            await self.flush()
        # trials that finished while the last flush was writing are still pending
        await self.flush()


@contextmanager
def _stdout_kept_clean() -> Iterator[None]:
    """Whatever runs during a run writes to stderr, never to stdout (where `--json` goes)."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def make_executor(registry: Registry, settings: RunSettings) -> Any:
    """The configured executor, built with its options; an option it does not take is a config error."""
    factory = registry.get("executor", settings.executor)
    try:
        return factory(**settings.executor_options)
    except TypeError as exc:
        options = ", ".join(sorted(settings.executor_options)) or "none"
        raise ConfigError(f"executor {settings.executor!r} does not take these options ({options}): {exc}") from None


async def _execute(
    jobs: list[Job], runner: TrialRunner, registry: Registry, store: Store, settings: RunSettings
) -> int:
    executor = make_executor(registry, settings)  # built in the loop that runs it
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="trial-writer") as pool:
            batcher = Batcher(store, pool, runner.run_id)
            done = asyncio.Event()
            flusher = asyncio.create_task(batcher.flush_until(done))
            progress = settings.progress

            def on_result(trial: TrialRecord) -> None:
                batcher.add(trial)
                if progress is not None:
                    progress(1)

            try:
                await executor.map(jobs, runner, settings.concurrency, on_result)
            finally:
                done.set()
                await flusher
    finally:
        await runner.aclose()
    return batcher.written


@dataclass
class Lease:
    """A run held by this process; `complete()` marks it so when the lease ends, otherwise it ends interrupted."""

    store: Store
    run_id: int
    status: str = "interrupted"

    def complete(self) -> None:
        self.status = "complete"


@contextmanager
def leased(store: Store, run_id: int, *, wait_s: float = LEASE_WAIT_S) -> Iterator[Lease]:
    """Hold the lease on a run while executing it: no other process executes it meanwhile.

    If another live process holds it, wait for it (up to `wait_s`), then busy. However this process
    ends, short of SIGKILL, the run is left `complete` or `interrupted`, never `running`; after a SIGKILL
    the next process takes the lease over from the dead holder.
    """
    from sqlalchemy.exc import SQLAlchemyError

    owner = leases.me()
    deadline = time.monotonic() + wait_s
    told = False
    while (holder := store.claim_run(run_id, owner)) is not None:
        if time.monotonic() > deadline:
            raise ConflictError(
                f"run #{run_id} is being executed by {leases.describe(holder)}: busy, retry when it ends"
            )
        if not told:
            say(f"run #{run_id} is being executed by {leases.describe(holder)}: waiting")
            told = True
        time.sleep(1.0)
    lease = Lease(store, run_id)
    try:
        yield lease
    finally:
        try:
            store.release_run(run_id, owner, lease.status)
        except SQLAlchemyError:  # the database went away: the lease's holder is dead to the next reader
            pass


class Engine:
    """Runs batches of trials of one version and records them: the one place trials are executed.

    Built from what it uses (the store, the plugins' registry, the verifiers, the run settings), never from the
    workspace; the run stage and the gate both execute through it.
    """

    def __init__(self, store: Store, registry: Registry, verifiers: Verifiers, settings: RunSettings):
        self.store, self.registry, self.verifiers, self.settings = store, registry, verifiers, settings

    def preflight(
        self, artifact: Artifact, jobs: list[Job], budget: Budget | None, what: str, reserved: float = 0.0
    ) -> Estimate:
        """Before anything runs: the agent loads, its models can be called, and the budget covers the jobs.

        `reserved` is what other work of the same step will cost (the other side of a gate).
        """
        self.verifiers.check(j.task for j in jobs)
        adapter = self.registry.get("adapter", artifact.manifest.adapter)(artifact)
        prestart = getattr(adapter, "prestart", None)
        if prestart is not None and jobs:  # where pools are kept, its workers start while the run is planned
            prestart(min(self.settings.concurrency, len(jobs)), early=True)
        try:
            for model in getattr(adapter, "models", lambda _: [])(self.settings.models):
                check_model(model)
            if budget is None or not jobs:
                return Estimate(len(jobs), 0, 0.0)
            seed = self.settings.seed
            est = estimate(
                adapter,
                jobs,
                seed_of=lambda j: trial_seed(seed, j.task.id, j.repeat, j.attempt),
                store=self.store,
                models=self.settings.models,
            )
            check(budget, est, what, reserved)
            return est
        finally:
            adapter.close()

    def execute(
        self,
        artifact: Artifact,
        run_id: int,
        jobs_of: Callable[[], list[Job]],
        progress: ProgressFactory,
        label: str,
        rounds: int = 1,
    ) -> int:
        """Hold run `run_id`'s lease and execute what `jobs_of()` says is missing, up to `rounds` times (a round
        retries what the last one left), then mark the run complete; returns how many trials ran.

        `jobs_of` is asked only once the lease is held: another process may have executed some of them meanwhile.
        """
        executed = 0
        with leased(self.store, run_id) as lease:
            for _ in range(rounds):
                jobs = jobs_of()
                if not jobs:
                    break
                with progress(label, len(jobs)) as advance:
                    self._batch(artifact, run_id, jobs, replace(self.settings, progress=advance))
                executed += len(jobs)
            lease.complete()
        return executed

    def _batch(self, artifact: Artifact, run_id: int, jobs: list[Job], settings: RunSettings) -> int:
        """Run `jobs` for `artifact` under `run_id` (its lease held); returns how many trials were recorded."""
        self.verifiers.check(j.task for j in jobs)
        runner = TrialRunner(artifact, self.registry, self.verifiers, run_id, settings)
        prestart = getattr(runner.adapter, "prestart", None)
        if prestart is not None:  # sandboxed workers start now, while the run is set up
            prestart(min(settings.concurrency, len(jobs)))
        try:
            with _stdout_kept_clean():
                return event_loop.run(_execute(jobs, runner, self.registry, self.store, settings))
        finally:
            runner.close()
