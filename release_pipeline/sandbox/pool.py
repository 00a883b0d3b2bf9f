"""Pools of sandboxed workers for Python agents, one per version's agent, and the `kept_pools` scope that keeps them.

A `WorkerPool` holds a few long-lived workers for one version's agent (one version per pool, and per worker), each a
sandboxed Python process that imported the agent once and runs many trials at once: up to the pool's `width`, a
coroutine each, or a thread each for a plain function. The judge's process never runs the agent's code, and the
sandbox between a worker and the host is the one a single trial had.

A trial's failure stays its own:

* A worker that dies (`os._exit`, a signal, its CPU ceiling), breaks the protocol, runs into a limit every call in it
  shares (the process ceiling, memory, disk, file size) or does not let a timed-out trial go (its event loop is
  stuck) is killed at once. One that holds a thread it cannot stop, has used its share of CPU time or left
  processes behind takes no new trial, and is killed once its trials are done.
* A trial that ends abnormally (any of the above, or its own timeout) while it shared its worker with another trial
  loses that attempt: `AttemptLost`, and the run stage runs it again alone, in a fresh worker of its own, its clock
  forgiven the lost attempt. What a trial does alone stands. So a crash among many trials fails the one that crashes,
  and only that one: its neighbours are run again, alone, and answer as they would have.
* Each such loss that took a worker down halves the pool's width (down to one trial per worker: a version that keeps
  crashing runs as it would without multiplexing); trials that end cleanly grow it back.

Workers belong to no event loop: their pipes are watched by the loop of whichever run uses them, so within
`kept_pools()` (every `release` command, each run and each gate) a pool serves the rounds of a gate and the runs of
one command, keyed by the artifact's content, folder, entry and sandbox limits, and is stopped when the scope ends.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import release_pipeline
from release_pipeline.errors import AttemptLost, InfrastructureError
from release_pipeline.models import AgentResult
from release_pipeline.sandbox.isolation import Limits, Sandbox, SandboxError, interpreter, isolation
from release_pipeline.sandbox.protocol import answer
from release_pipeline.sandbox.worker import AgentLoadFailed, CallLost, Worker
from release_pipeline.trials.clock import harness_time

if TYPE_CHECKING:
    from release_pipeline.models import Task, TrialContext

MAX_WIDTH = 32  # trials one worker runs at once, at most
GROW_AFTER = 100  # clean trials after which a pool that lost a worker doubles its width again


def worker_launcher() -> str:
    """Python that starts `agent_worker` from the very copy of this package the harness runs, light and isolated:
    `-I -S` (no PYTHONPATH, no current folder, no site: no `.pth` file runs), the standard library first, then this
    package's folder, then the site-packages the harness has (for the agent's own imports, without their `.pth`
    hooks). Nothing in the agent's folder can shadow a module: it is imported as a package of its own."""
    home = str(Path(release_pipeline.__file__).resolve().parent.parent)
    sites = [os.path.normpath(p) for p in sys.path if p.endswith("-packages") and os.path.isdir(p)]
    paths = list(dict.fromkeys([home, *sites]))
    return f"import sys; sys.path += {paths!r}; from release_pipeline.sandbox.agent_worker import main; main()"


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class WorkerPool:
    """Sandboxed workers for one version's Python agent, reused from trial to trial and from run to run."""

    def __init__(self, entry: str, cwd: Any, limits: Limits):
        self.limits = limits
        self.sandbox = Sandbox(limits)
        self.entry, self.cwd = entry, cwd
        self.workers: list[Worker] = []
        self.width = self.planned = MAX_WIDTH
        self.shrunk = False
        self.threads = max(1, (limits.processes - 8) // 2)  # a plain function's calls take a thread each
        self.clean = 0
        self.narrowed_by: weakref.WeakSet[Worker] = weakref.WeakSet()  # workers whose loss halved the width
        self.load_error: str | None = None
        self.kept = False  # kept by a `kept_pools` scope, which closes it

    def _argv(self) -> list[str]:
        return [interpreter(), "-I", "-S", "-c", worker_launcher(), self.entry, str(self.threads)]

    def _spawn(self, alone: bool = False) -> Worker:
        if self.load_error is not None:
            raise AgentLoadFailed(self.load_error)
        try:
            prepared = self.sandbox.prepare(self._argv(), cwd=self.cwd, limits=self.limits, long_lived=not alone)
        except (OSError, SandboxError) as exc:
            raise InfrastructureError(f"cannot prepare the agent's sandbox: {exc}") from None
        worker = Worker.start(prepared, self.limits, alone)
        if not alone:
            self.workers.append(worker)
        return worker

    def plan(self, concurrency: int) -> None:
        """Size the pool for `concurrency` trials at once and start its workers now, ahead of the first trial: a
        worker per core (fewer for fewer trials), each running its share of the trials."""
        concurrency = max(1, concurrency)
        count = min(concurrency, max(_cores(), math.ceil(concurrency / MAX_WIDTH)))
        self.planned = math.ceil(concurrency / count)
        self.width = min(self.width, self.planned) if self.shrunk else self.planned
        for _ in range(count - sum(1 for w in self.workers if w.usable)):
            self._spawn()

    def _width(self) -> int:
        blocking = any(w.blocking for w in self.workers if w.state == "ready")
        return min(self.width, self.threads) if blocking else self.width

    async def _acquire(self) -> Worker:
        """The least busy worker with room (started if none has), once it is ready."""
        self.workers = [w for w in self.workers if w.state != "dead"]
        width, best = self._width(), None
        for worker in self.workers:
            if worker.usable and worker.load < width and (best is None or worker.load < best.load):
                best = worker
        if best is None:
            best = self._spawn()
        best.attach()
        if best.state != "ready":
            best.reserved += 1
            try:
                with harness_time(starting=True):  # starting a sandbox is not the agent's work
                    await best.ready()
            except AgentLoadFailed as exc:
                self.load_error = str(exc)
                raise
            finally:
                best.reserved -= 1
        return best

    async def run(self, task: Task, ctx: TrialContext) -> AgentResult:
        """One trial's answer from a worker it may share; `AttemptLost` when it ends abnormally beside others."""
        worker = await self._acquire()
        try:
            message = await worker.call(task, ctx)
        except CallLost as lost:
            if lost.worker is not None and lost.worker not in self.narrowed_by:
                self.narrowed_by.add(lost.worker)
                self.width, self.shrunk, self.clean = max(1, self.width // 2), True, 0
            if lost.shared:
                raise AttemptLost(str(lost.error), partial(self.run_alone, task, ctx)) from None
            raise lost.error from None
        if self.width < self.planned:
            self.clean += 1
            if self.clean >= GROW_AFTER:
                self.width, self.clean = min(self.planned, 2 * self.width), 0
        return answer(message, self.limits)

    async def run_alone(self, task: Task, ctx: TrialContext) -> AgentResult:
        """One trial in a fresh worker of its own, stopped after it: what happens there is the trial's alone (its CPU
        ceiling is a single call's)."""
        worker = self._spawn(alone=True)
        try:
            worker.attach()
            with harness_time(starting=True):
                await worker.ready()
            message = await worker.call(task, ctx)
        except CallLost as lost:
            raise lost.error from None
        finally:
            worker.kill()
        return answer(message, self.limits)

    def detach(self) -> None:
        """The run using the pool ends: its loop stops watching the workers; one that still has trials (given up
        on) is killed."""
        for worker in self.workers:
            if worker.calls or worker.reserved:
                worker.kill()
            else:
                worker.detach()
        self.workers = [w for w in self.workers if w.state != "dead"]

    def close(self, wait: bool = True) -> None:
        """Stop every worker now, and clean up after them (`wait=False`: in threads of their own, removed by exit)."""
        workers, self.workers = self.workers, []
        for worker in workers:
            worker.close(wait)


_kept: ContextVar[dict[tuple, WorkerPool] | None] = ContextVar("kept_worker_pools", default=None)


@contextmanager
def kept_pools() -> Iterator[None]:
    """Inside, sandboxed worker pools are kept from run to run (the rounds of a gate, the runs of one command) and
    stopped when it ends. Nested scopes are the outer one's."""
    if _kept.get() is not None:
        yield
        return
    pools: dict[tuple, WorkerPool] = {}
    token = _kept.set(pools)
    try:
        yield
    finally:
        _kept.reset(token)
        for pool in pools.values():
            pool.close(wait=False)  # killed now; what is left to clean does not hold up the command


def pool_for(entry: str, cwd: Path, limits: Limits, content: str) -> WorkerPool:
    """The pool for one version's agent: the scope's (`kept_pools`) when one is open, else a pool of its own.

    Kept pools are found by what runs (the artifact's content, folder and entry), how it is isolated (limits, the
    isolation in force) and the thread (a worker is bubblewrap's child of the thread that started it, and dies
    with it)."""
    pools = _kept.get()
    if pools is None:
        return WorkerPool(entry, cwd, limits)
    key = (content, str(cwd), entry, limits, isolation(), threading.get_ident())
    pool = pools.get(key)
    if pool is None:
        pool = pools[key] = WorkerPool(entry, cwd, limits)
        pool.kept = True
    return pool
