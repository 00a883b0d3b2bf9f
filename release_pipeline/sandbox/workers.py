"""Python agents in sandboxed processes of their own: the harness's side of `agent_worker`.

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

import asyncio
import atexit
import collections
import contextvars
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from release_pipeline.errors import (
    AgentCrashed,
    AgentProtocolError,
    AgentRaised,
    AttemptLost,
    InfrastructureError,
    RequestRejected,
    SandboxViolation,
)
from release_pipeline.models import AgentResult
from release_pipeline.sandbox.contract import trial_payload
from release_pipeline.sandbox.isolation import (
    WORKER_CPU_SHARES,
    Limits,
    Prepared,
    Sandbox,
    SandboxError,
    interpreter,
    isolation,
    kill_group,
    limit_message,
)
from release_pipeline.trials.clock import current_trial, harness_time
from release_pipeline.trials.fit import OUTPUT_LIMIT, TRACE_LIMIT

if TYPE_CHECKING:
    from release_pipeline.models import Task, TrialContext

READ_LIMIT = 2 * (OUTPUT_LIMIT + TRACE_LIMIT) + 64 * 1024  # the longest message a worker may send
START_TIMEOUT_S = 120.0  # a busy machine can take long to start Python; the agent's import counts too
CANCEL_ACK_S = 2.0  # how long a worker may take to let a timed-out trial go before its loop counts as stuck
MAX_WIDTH = 32  # trials one worker runs at once, at most
GROW_AFTER = 100  # clean trials after which a pool that lost a worker doubles its width again
STDERR_TAIL = 4096


class AgentLoadFailed(Exception):
    """The agent's module could not be imported in its worker (its failure: every trial fails)."""


class _Lost(Exception):
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
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self.inp, self.out, self.err = proc.stdin.fileno(), proc.stdout.fileno(), proc.stderr.fileno()
        for fd in (self.inp, self.out, self.err):
            os.set_blocking(fd, False)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.buffer, self.outbox = bytearray(), bytearray()
        self.flush_due = self.writing = False
        self.stderr: collections.deque[bytes] = collections.deque(maxlen=64)
        self.stderr_open = True
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

    def stderr_tail(self) -> str:
        return b"".join(self.stderr)[-STDERR_TAIL:].decode("utf-8", "replace").strip()

    # ----- the event loop that watches it --------------------------------------------------------------------

    def attach(self) -> None:
        """Have the running event loop watch this worker's pipes (a run's loop; the next run's is another)."""
        loop = asyncio.get_running_loop()
        if self.loop is loop or self.state == "dead":
            return
        self.detach()
        self.loop = loop
        loop.add_reader(self.out, self._readable)
        if self.stderr_open:
            loop.add_reader(self.err, self._stderr_readable)
        if self.outbox:
            self._flush()

    def detach(self) -> None:
        loop, self.loop = self.loop, None
        if loop is None or loop.is_closed():
            return
        loop.remove_reader(self.out)
        loop.remove_reader(self.err)
        if self.writing:
            loop.remove_writer(self.inp)
        self.writing = self.flush_due = False

    # ----- reading -----------------------------------------------------------------------------------------

    def _readable(self) -> None:
        try:
            data = os.read(self.out, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._ended()
            return
        buffer = self.buffer
        buffer += data
        end = buffer.rfind(b"\n")
        if end < 0:
            if len(buffer) > READ_LIMIT:
                self.kill(AgentProtocolError(f"the agent's answer exceeded {READ_LIMIT} bytes"))
            return
        lines = buffer[:end].split(b"\n")
        del buffer[: end + 1]
        ended: list[tuple[Call, dict[str, Any]]] = []
        for line in lines:
            try:
                message = json.loads(line)
            except (ValueError, RecursionError):
                message = None
            if not isinstance(message, dict):
                self._broken(AgentProtocolError("the agent's process wrote malformed data into the protocol"), ended)
                return
            op, call_id = message.get("op"), message.get("id")
            if op in ("result", "raised", "cancelled"):
                call = self.calls.pop(call_id, None) if isinstance(call_id, int) else None
                if call is not None:
                    ended.append((call, message))
            elif op == "llm":
                self._llm(message)
            elif op == "hello" and self.state == "starting":
                self.hello = True
            elif op == "ready" and self.state == "starting":
                self._ready(message)
            elif op == "load_error" and self.state == "starting":
                self.kill(AgentLoadFailed(str(message.get("error", "the agent failed to import"))[:2000]))
                return
            else:
                error = AgentProtocolError(f"the agent's process sent an unexpected message ({str(op)[:40]})")
                self._broken(error, ended)
                return
        if ended:
            self._conclude(ended)

    def _broken(self, error: BaseException, ended: list[tuple[Call, dict[str, Any]]]) -> None:
        """The protocol broke: whoever did it, every call in the worker (those just answered too) ends with it."""
        for call, _ in ended:
            self.calls[call.id] = call
        self.kill(error)

    def _stderr_readable(self) -> None:
        try:
            chunk = os.read(self.err, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            self.stderr.append(chunk)
        elif self.loop is not None:
            self.loop.remove_reader(self.err)
            self.stderr_open = False

    def _ready(self, message: dict[str, Any]) -> None:
        self.state, self.blocking = "ready", bool(message.get("blocking"))
        self.ready_after = time.monotonic() - self.spawned
        cgroup = self.prepared.cgroup
        self.hits, self.processes = cgroup.hits(), cgroup.processes()  # the sandbox's own and the worker's
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _conclude(self, ended: list[tuple[Call, dict[str, Any]]]) -> None:
        """Hand the calls that ended their outcomes; a limit any of them met spoils the worker for all."""
        hits = self.prepared.cgroup.hits()  # read once for the lot: a file in the cgroup
        over, self.hits = hits > self.hits, max(hits, self.hits)
        # every trial in the worker when it met the process ceiling may have been starved by it
        shared_limit = f"process limit: more than {self.limits.processes} processes" if over else ""
        for call, message in ended:
            call.end()
            cpu = message.get("cpu")
            if isinstance(cpu, int | float):
                self.cpu = max(self.cpu, float(cpu))
            if message["op"] == "cancelled" and message.get("stuck"):
                self.spoiled = self.spoiled or "it holds a thread it cannot stop (a plain function past its timeout)"
            if call.future.done():  # given up on (its time ran out, or the run ends)
                continue
            limit = shared_limit if over else self._limit(message)
            if limit:  # a limit the whole process shares: it may be anyone's doing
                shared_limit = shared_limit or limit
                call.future.set_exception(_Lost(SandboxViolation(limit), call.shared, self if call.shared else None))
            elif message["op"] == "cancelled":
                call.future.set_exception(AgentProtocolError("the agent's process stopped a call it was not asked to"))
            else:
                call.future.set_result(message)
        if shared_limit:
            self.kill(SandboxViolation(f"a trial beside it ran into the sandbox's {shared_limit}"))
            return
        if self.cpu >= self.limits.cpu_s and not self.alone:
            self.spoiled = self.spoiled or f"it used {self.cpu:g}s of CPU time, its share"
        self.retire_if_idle()

    def _limit(self, message: dict[str, Any]) -> str:
        """The sandbox limit a call's exception shows it ran into ("" if none): one the whole process shares."""
        if message.get("op") != "raised" or message.get("kind") != "exception":
            return ""
        return limit_message(f"{message.get('type', '')}: {str(message.get('message', ''))[:2000]}", self.limits)

    # ----- the LLM calls its trials make -------------------------------------------------------------------

    def _llm(self, message: dict[str, Any]) -> None:
        call_id = message.get("call")
        call = self.calls.get(call_id) if isinstance(call_id, int) else None
        if call is None or call.abandoned:
            self._send({"op": "llm_error", "id": message.get("id"), "rejected": False,
                        "error": "InfrastructureError: the trial this call was made for has ended"})  # fmt: skip
            return
        assert self.loop is not None
        job = self.loop.create_task(self._answer_llm(message, call.ctx), context=call.context)
        call.jobs.add(job)
        job.add_done_callback(call.jobs.discard)

    async def _answer_llm(self, message: dict[str, Any], ctx: TrialContext) -> None:
        request = message.get("request")
        try:
            if ctx.llm is None:
                raise InfrastructureError("no LLM gateway is available to this run")
            if not isinstance(request, dict):
                raise InfrastructureError("an LLM call needs `model` and a list of `messages`")
            reply = await ctx.llm.complete(**request)  # the trial's `AgentLLM`: it refuses what an agent may not ask
            answer = {"op": "llm_reply", "id": message.get("id"), "reply": _reply_fields(reply)}
        except Exception as exc:  # the provider's or the request's fault: the agent sees InfrastructureError
            answer = {
                "op": "llm_error",
                "id": message.get("id"),
                "error": f"{type(exc).__name__}: {exc}"[:2000],
                "rejected": isinstance(exc, RequestRejected),
            }
        self._send(answer)

    # ----- writing -----------------------------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        """Queue a message; all those queued in one turn of the loop leave in one write."""
        if self.state == "dead" or self.loop is None:
            return
        self.outbox += json.dumps(message, ensure_ascii=False).encode("utf-8") + b"\n"
        if not self.flush_due and not self.writing:
            self.flush_due = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_due = False
        if self.state == "dead" or self.loop is None:
            return
        try:
            while self.outbox:
                del self.outbox[: os.write(self.inp, self.outbox)]
        except BlockingIOError:  # the pipe is full: go on when it drains (never block the loop on a worker)
            if not self.writing:
                self.loop.add_writer(self.inp, self._flush)
                self.writing = True
            return
        except OSError:  # the process is gone: its stdout's end says so
            self.outbox.clear()
        if self.writing:
            self.loop.remove_writer(self.inp)
            self.writing = False

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
        """One trial's final message (`result` or `raised`); an abnormal end raises `_Lost`."""
        assert self.loop is not None
        if self.state == "dead":  # cannot happen between a pool's choice and this call (no await); never hang on it
            raise _Lost(AgentCrashed("the agent's process ended before the trial reached it"), shared=True)
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
                raise _Lost(TimeoutError("its time ran out"), shared=True) from None
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
        self._drain_stderr()
        self._fail(self._death(self.proc.returncode))
        threading.Thread(target=self.reap, name="worker-reaper", daemon=True).start()

    def _drain_stderr(self) -> None:
        try:
            while self.stderr_open and (chunk := os.read(self.err, 1 << 16)):
                self.stderr.append(chunk)
        except OSError:
            pass

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
                call.future.set_exception(_Lost(error, call.shared or several, self if several else None))

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


_live: weakref.WeakSet[Worker] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    """Workers a pool never closed (a run that ended by an exception): bubblewrap ends them with this process, but
    their cgroups and folders are removed here."""
    for worker in list(_live):
        worker.close()


def _reply_fields(reply: Any) -> dict[str, Any]:
    names = ("content", "tool_calls", "prompt_tokens", "completion_tokens", "cost", "latency_ms", "cached")
    return {name: getattr(reply, name) for name in names}


def _raised(message: dict[str, Any], limits: Limits) -> Exception:
    """The exception a worker reported, as the run stage classifies it (a limit it ran into is a violation)."""
    text = str(message.get("message", ""))[:2000]
    kind, name = message.get("kind"), str(message.get("type", "Exception"))[:100]
    limit = limit_message(f"{name}: {text}", limits)
    if limit and kind == "exception":
        return SandboxViolation(limit)
    if kind == "rejected":
        return RequestRejected(text)
    if kind == "infrastructure":
        return InfrastructureError(text)
    if kind == "protocol":
        return AgentProtocolError(text)
    if kind == "exit":
        return AgentCrashed(f"the agent called sys.exit({text})")
    return AgentRaised(f"{name}: {text}" if text else name, str(message.get("where", ""))[:200])


def _answer(message: dict[str, Any], limits: Limits) -> AgentResult:
    """A trial's answer from its final message (the run stage checks it again: it comes from the agent's process)."""
    if message["op"] == "raised":
        raise _raised(message, limits)
    trace, notes = message.get("trace"), message.get("notes")
    size, unrecordable = message.get("output_size"), message.get("unrecordable")
    return AgentResult(
        message.get("output"),
        trace if isinstance(trace, list) else [],
        message.get("tokens", 0),
        message.get("cost", 0.0),
        [str(n)[:500] for n in notes[:50]] if isinstance(notes, list) else [],
        size if isinstance(size, int) and size > 0 else None,
        unrecordable[:2000] if isinstance(unrecordable, str) else "",
    )


def worker_launcher() -> str:
    """Python that starts `agent_worker` from the very copy of this package the harness runs, light and isolated:
    `-I -S` (no PYTHONPATH, no current folder, no site: no `.pth` file runs), the standard library first, then this
    package's folder, then the site-packages the harness has (for the agent's own imports, without their `.pth`
    hooks). Nothing in the agent's folder can shadow a module: it is imported as a package of its own."""
    import release_pipeline

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
        except _Lost as lost:
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
        return _answer(message, self.limits)

    async def run_alone(self, task: Task, ctx: TrialContext) -> AgentResult:
        """One trial in a fresh worker of its own, stopped after it: what happens there is the trial's alone (its CPU
        ceiling is a single call's)."""
        worker = self._spawn(alone=True)
        try:
            worker.attach()
            with harness_time(starting=True):
                await worker.ready()
            message = await worker.call(task, ctx)
        except _Lost as lost:
            raise lost.error from None
        finally:
            worker.kill()
        return _answer(message, self.limits)

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
