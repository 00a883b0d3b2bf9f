"""One sandboxed process serving one version's Python agent, many trials at once: its pipes, its calls, its end.

The harness's end of a worker (`agent_worker.py` runs inside it; `protocol.py` says what their messages mean). A
worker that dies, breaks the protocol, runs into a limit every call in it shares or does not let a timed-out trial go
is killed at once, and every call in it ends with `CallLost`; one that holds a thread it cannot stop, has used its
share of CPU time or left processes behind takes no new trial (`spoiled`), and is killed once its trials are done.
What a lost call means for its trial is the pool's to decide (`pool.py`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import itertools
import signal
import subprocess
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from release_pipeline.errors import AgentCrashed, AgentProtocolError, InfrastructureError, SandboxViolation
from release_pipeline.sandbox import protocol
from release_pipeline.sandbox.contract import trial_payload
from release_pipeline.sandbox.isolation import WORKER_CPU_SHARES, Limits, Prepared, kill_group, limit_message
from release_pipeline.sandbox.pipes import Pipes
from release_pipeline.trials.clock import current_trial

if TYPE_CHECKING:
    from release_pipeline.models import Task, TrialContext

START_TIMEOUT_S = 120.0  # a busy machine can take long to start Python; the agent's import counts too
CANCEL_ACK_S = 2.0  # how long a worker may take to let a timed-out trial go before its loop counts as stuck
STDERR_TAIL = 4096


class AgentLoadFailed(Exception):
    """The agent's module could not be imported in its worker (its failure: every trial fails)."""


class CallLost(Exception):
    """A call that ended abnormally: `error` is its outcome if it had its worker to itself. `worker` is set when
    the worker went down with it (the pool then narrows, once per worker)."""

    def __init__(self, error: BaseException, shared: bool, worker: Worker | None = None):
        super().__init__(str(error))
        self.error, self.shared, self.worker = error, shared, worker


class Call:
    """One trial in a worker: its answer to come, the trial's context (for the LLM calls it makes), its neighbours."""

    __slots__ = ("id", "future", "ctx", "context", "shared", "jobs", "abandoned")

    def __init__(self, call_id: int, future: asyncio.Future, ctx: TrialContext):
        self.id, self.future, self.ctx = call_id, future, ctx
        self.context = contextvars.copy_context()  # the trial's clock follows its LLM calls
        self.shared = False  # another trial ran in the same worker at some point of this one's life
        self.jobs: set[asyncio.Task] = set()
        self.abandoned = False

    def end(self) -> None:
        for job in self.jobs:
            job.cancel()


class Worker:
    """One sandboxed process serving one version's agent, many calls at once.

    It belongs to no event loop: `attach()` has the running loop watch its pipes, so one worker can serve several runs,
    one after the other.
    """

    def __init__(self, proc: subprocess.Popen, prepared: Prepared, limits: Limits, alone: bool):
        self.proc, self.prepared, self.limits, self.alone = proc, prepared, limits, alone
        self.pipes, self.lines = Pipes(proc, self._readable), protocol.Lines()
        self.calls: dict[int, Call] = {}
        self.ids = itertools.count(1)
        self.state = "starting"  # then "ready", or "dead"
        self.hello = False
        self.failure: BaseException | None = None  # why it never became ready
        self.waiters: list[asyncio.Future] = []
        self.reserved = 0  # trials waiting for it to be ready
        self.blocking = False  # the agent is a plain function: each call takes a thread
        self.spoiled = ""  # why it takes no new trial
        self.hits = 0  # times its cgroup met the process ceiling, as last read
        self.processes = 0  # processes its cgroup holds when idle
        self.cpu = 0.0  # CPU seconds it has used, as it last said
        self.cpu_ceiling = limits.cpu_s if alone else WORKER_CPU_SHARES * limits.cpu_s
        self.spawned = time.monotonic()
        self.ready_after: float | None = None  # seconds from spawn to ready
        self.reaping, self.reaped = threading.Lock(), threading.Event()

    @classmethod
    def start(cls, prepared: Prepared, limits: Limits, alone: bool = False) -> Worker:
        """Start the process (it gets ready on its own; `ready()` waits for it)."""
        try:
            proc = subprocess.Popen(
                prepared.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=prepared.env,
                cwd=prepared.cwd,
                preexec_fn=prepared.preexec,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            prepared.cleanup()
            raise InfrastructureError(f"cannot start the agent's sandbox: {exc}") from None
        worker = cls(proc, prepared, limits, alone)
        _live.add(worker)
        return worker

    # ----- state --------------------------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        """Whether it may take a new trial."""
        return self.state != "dead" and not self.spoiled and self.failure is None

    @property
    def load(self) -> int:
        return len(self.calls) + self.reserved

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop watching it, if any."""
        return self.pipes.loop

    def stderr_tail(self) -> str:
        return self.pipes.stderr_tail(STDERR_TAIL)

    # ----- the event loop that watches it --------------------------------------------------------------------

    def attach(self) -> None:
        """Have the running event loop watch this worker's pipes (a run's loop; the next run's is another)."""
        loop = asyncio.get_running_loop()
        if self.state != "dead":
            self.pipes.attach(loop)

    def detach(self) -> None:
        self.pipes.detach()

    # ----- reading -----------------------------------------------------------------------------------------

    def _readable(self) -> None:
        lines = self._read_lines()
        ended: list[tuple[Call, dict[str, Any]]] = []
        for line in lines:
            if not self._on_message(protocol.decode(line), ended):
                return
        if ended:
            self._conclude(ended)

    def _read_lines(self) -> list[bytearray]:
        """The whole lines its stdout has now; none when it has ended or broke the protocol (both dealt with here)."""
        data = self.pipes.read()
        if data is None:
            return []
        if not data:
            self._ended()
            return []
        try:
            return self.lines.feed(data)
        except AgentProtocolError as exc:  # a line past READ_LIMIT
            self.kill(exc)
            return []

    def _on_message(self, message: dict[str, Any] | None, ended: list[tuple[Call, dict[str, Any]]]) -> bool:
        """Act on one message: a call's end is collected in `ended`. False when it broke the protocol or ended the
        worker, so nothing after it counts."""
        if message is None:
            self._broken(AgentProtocolError("the agent's process wrote malformed data into the protocol"), ended)
            return False
        op, call_id = message.get("op"), message.get("id")
        if op in protocol.FINAL:
            call = self.calls.pop(call_id, None) if isinstance(call_id, int) else None
            if call is not None:
                ended.append((call, message))
            return True
        if op == "llm":
            self._llm(message)
            return True
        at_start = _AT_START.get(op) if isinstance(op, str) and self.state == "starting" else None
        if at_start is None:
            self._broken(AgentProtocolError(f"the agent's process sent an unexpected message ({str(op)[:40]})"), ended)
            return False
        return at_start(self, message)

    def _broken(self, error: BaseException, ended: list[tuple[Call, dict[str, Any]]]) -> None:
        """The protocol broke: whoever did it, every call in the worker (those just answered too) ends with it."""
        for call, _ in ended:
            self.calls[call.id] = call
        self.kill(error)

    def _hello(self, message: dict[str, Any]) -> bool:
        """It runs (a process that ends before `ready` from here on was ended by the agent's own import)."""
        self.hello = True
        return True

    def _load_error(self, message: dict[str, Any]) -> bool:
        self.kill(AgentLoadFailed(str(message.get("error", "the agent failed to import"))[:2000]))
        return False

    def _ready(self, message: dict[str, Any]) -> bool:
        self.state, self.blocking = "ready", bool(message.get("blocking"))
        self.ready_after = time.monotonic() - self.spawned
        cgroup = self.prepared.cgroup
        self.hits, self.processes = cgroup.hits(), cgroup.processes()  # the sandbox's own and the worker's
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)
        return True

    def _conclude(self, ended: list[tuple[Call, dict[str, Any]]]) -> None:
        """Hand the calls that ended their outcomes; a limit any of them met spoils the worker for all."""
        hits = self.prepared.cgroup.hits()  # read once for the lot: a file in the cgroup
        over, self.hits = hits > self.hits, max(hits, self.hits)
        # every trial in the worker when it met the process ceiling may have been starved by it
        shared_limit = f"process limit: more than {self.limits.processes} processes" if over else ""
        for call, message in ended:
            call.end()
            self._note(message)
            if call.future.done():  # given up on (its time ran out, or the run ends)
                continue
            limit = shared_limit if over else protocol.call_limit(message, self.limits)
            shared_limit = shared_limit or limit  # a limit the whole process shares: it may be anyone's doing
            self._settle(call, message, limit)
        if shared_limit:
            self.kill(SandboxViolation(f"a trial beside it ran into the sandbox's {shared_limit}"))
            return
        if self.cpu >= self.limits.cpu_s and not self.alone:
            self.spoiled = self.spoiled or f"it used {self.cpu:g}s of CPU time, its share"
        self.retire_if_idle()

    def _note(self, message: dict[str, Any]) -> None:
        """What the end of a call tells of the whole worker: the CPU time it has used, a thread it cannot stop."""
        cpu = message.get("cpu")
        if isinstance(cpu, int | float):
            self.cpu = max(self.cpu, float(cpu))
        if message["op"] == "cancelled" and message.get("stuck"):
            self.spoiled = self.spoiled or "it holds a thread it cannot stop (a plain function past its timeout)"

    def _settle(self, call: Call, message: dict[str, Any], limit: str) -> None:
        """A call's outcome from its final message: lost to a limit it met, or the message (`protocol.answer`
        reads it)."""
        if limit:
            call.future.set_exception(CallLost(SandboxViolation(limit), call.shared, self if call.shared else None))
        elif message["op"] == "cancelled":
            call.future.set_exception(AgentProtocolError("the agent's process stopped a call it was not asked to"))
        else:
            call.future.set_result(message)

    # ----- the LLM calls its trials make -------------------------------------------------------------------

    def _llm(self, message: dict[str, Any]) -> None:
        call_id = message.get("call")
        call = self.calls.get(call_id) if isinstance(call_id, int) else None
        if call is None or call.abandoned:
            self._send(protocol.call_ended(message.get("id")))
            return
        assert self.loop is not None
        job = self.loop.create_task(self._answer_llm(message, call.ctx), context=call.context)
        call.jobs.add(job)
        job.add_done_callback(call.jobs.discard)

    async def _answer_llm(self, message: dict[str, Any], ctx: TrialContext) -> None:
        self._send(await protocol.answer_llm(message, ctx))

    # ----- writing -----------------------------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        """Queue a message; all those queued in one turn of the loop leave in one write."""
        if self.state == "dead" or self.loop is None:
            return
        self.pipes.send(protocol.encode(message))

    # ----- calls -------------------------------------------------------------------------------------------

    async def ready(self) -> None:
        """Wait until the agent is imported and the worker takes calls."""
        if self.state == "ready":
            return
        if self.failure is not None:
            raise self.failure
        assert self.loop is not None
        waiter = self.loop.create_future()
        self.waiters.append(waiter)
        try:
            async with asyncio.timeout(max(0.0, START_TIMEOUT_S - (time.monotonic() - self.spawned))):
                await waiter
        except TimeoutError:
            self.kill(InfrastructureError(f"the agent's process did not start within {START_TIMEOUT_S:g}s"))
            raise self.failure or InfrastructureError("the agent's process did not start") from None
        finally:
            self.waiters.remove(waiter)

    async def call(self, task: Task, ctx: TrialContext) -> dict[str, Any]:
        """One trial's final message (`result` or `raised`); an abnormal end raises `CallLost`."""
        assert self.loop is not None
        if self.state == "dead":  # cannot happen between a pool's choice and this call (no await); never hang on it
            raise CallLost(AgentCrashed("the agent's process ended before the trial reached it"), shared=True)
        call = Call(next(self.ids), self.loop.create_future(), ctx)
        if self.calls:
            call.shared = True
            for other in self.calls.values():
                other.shared = True
        self.calls[call.id] = call
        self._send({"op": "call", "id": call.id, **trial_payload(task, ctx), "models": ctx.models})
        try:
            return await call.future
        except asyncio.CancelledError:
            self.abandon(call)
            clock = current_trial.get()
            if call.shared and clock is not None and clock.expired and not (clock.overran or clock.provider_cut_short):
                # its time ran out beside other trials, which may have slowed it (a neighbour blocking the loop)
                raise CallLost(TimeoutError("its time ran out"), shared=True) from None
            raise

    def abandon(self, call: Call) -> None:
        """The trial gave up on `call` (its time ran out, or the run ends): ask the worker to stop it, and kill the
        worker if it has not let go within CANCEL_ACK_S (an event loop stuck in the agent's code)."""
        call.abandoned = True
        call.end()
        if self.calls.get(call.id) is not call or self.state == "dead":
            return
        if self.alone:
            self.kill()
            return
        self._send({"op": "cancel", "id": call.id})
        assert self.loop is not None
        self.loop.call_later(CANCEL_ACK_S, self._let_go, call)

    def _let_go(self, call: Call) -> None:
        if self.calls.get(call.id) is call and self.state != "dead":
            self.kill(AgentCrashed("a trial beside it kept the agent's process busy past its timeout"))

    # ----- ending --------------------------------------------------------------------------------------------

    def retire_if_idle(self) -> None:
        """Kill it once it has no trial left, if it may take no new one (`spoiled`, or processes left behind)."""
        if self.state == "dead" or self.calls or self.reserved:
            return
        if not self.spoiled and self.prepared.cgroup.processes() > self.processes:
            self.spoiled = "it left processes running"  # a fork bomb's children would starve later trials
        if self.spoiled:
            self.kill()

    def kill(self, error: BaseException | None = None) -> None:
        """End the process now: every trial still in it ends abnormally, with `error`."""
        if self.state == "dead":
            return
        self.state = "dead"
        self.detach()
        kill_group(self.proc.pid)
        self._fail(error or AgentCrashed("the agent's process was stopped"))
        threading.Thread(target=self.reap, name="worker-reaper", daemon=True).start()

    def _ended(self) -> None:
        """Its stdout closed: the process ended (or is ending). Find out why, then fail what it had."""
        if self.state == "dead":
            return
        self.state = "dead"
        loop = self.loop
        self.detach()
        assert loop is not None
        loop.create_task(self._bury())

    async def _bury(self) -> None:
        delay, deadline = 0.002, time.monotonic() + 5
        while self.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(0.1, delay * 2)
        self.pipes.drain_stderr()
        self._fail(self._death(self.proc.returncode))
        threading.Thread(target=self.reap, name="worker-reaper", daemon=True).start()

    def _death(self, code: int | None) -> Exception:
        """Why the process ended: a limit it hit, the agent ending it, or (before it ran) the harness."""
        tail = self.stderr_tail()
        if not self.hello:
            return InfrastructureError(f"the agent's sandbox failed to start (status {code}): {tail[-300:]}")
        if code is not None and code > 128:  # bubblewrap reports its child's death by signal N as 128+N
            code = -(code - 128)
        if self.prepared.cgroup.hit():
            return SandboxViolation(f"process limit: more than {self.limits.processes} processes")
        if code == -signal.SIGXCPU:  # the soft ceiling; SIGKILL a second later is the hard one
            return SandboxViolation(f"CPU time limit: more than {self.cpu_ceiling}s")
        if code == -signal.SIGXFSZ:
            return SandboxViolation(f"file size limit: a file over {self.limits.file_size_mb} MB")
        reason = limit_message(tail, self.limits)
        if reason:
            return SandboxViolation(reason)
        how = f"killed by {signal.Signals(-code).name}" if code and code < 0 else f"exit status {code}"
        detail = f": {tail[-300:]}" if tail else ""
        return AgentCrashed(f"the agent's process ended ({how}) before answering{detail}")

    def _fail(self, error: BaseException) -> None:
        """Fail whoever waits on this worker: trials waiting for it to start, and every call in it."""
        if self.ready_after is None and self.failure is None:
            self.failure = error
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_exception(self.failure or error)
        calls, self.calls = list(self.calls.values()), {}
        several = len(calls) > 1
        for call in calls:
            call.end()
            if not call.future.done():
                call.future.set_exception(CallLost(error, call.shared or several, self if several else None))

    def reap(self) -> None:
        """Wait for the process, kill what is left in its cgroup, remove its folders (once; blocking)."""
        if not self.reaping.acquire(blocking=False):
            self.reaped.wait(15)  # another thread is at it
            return
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        try:
            self.prepared.cgroup.kill_all()
            self.prepared.cleanup()
            for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                if pipe is not None:
                    pipe.close()
        finally:
            _live.discard(self)
            self.reaped.set()

    def close(self, wait: bool = True) -> None:
        """Stop it at once, outside any event loop (the end of a command), and clean up after it: now, or in a
        thread of its own (`wait=False`: the process is killed now, its folders go a moment later)."""
        self.state = "dead"
        self.detach()
        kill_group(self.proc.pid)
        self.calls.clear()
        if wait:
            self.reap()
        else:
            threading.Thread(target=self.reap, name="worker-reaper", daemon=True).start()


# What a worker's messages before its first call do (each says whether reading goes on); any other is a breach.
_AT_START: dict[str, Callable[[Worker, dict[str, Any]], bool]] = {
    "hello": Worker._hello,
    "ready": Worker._ready,
    "load_error": Worker._load_error,
}

_live: weakref.WeakSet[Worker] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    """Workers a pool never closed (a run that ended by an exception): bubblewrap ends them with this process, but
    their cgroups and folders are removed here."""
    for worker in list(_live):
        worker.close()
