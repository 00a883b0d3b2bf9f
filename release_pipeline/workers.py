"""Python agents in processes of their own, in the sandbox: the harness's side of `agent_worker`.

A `WorkerPool` keeps up to one worker per trial in flight, each a sandboxed Python process that
imported the agent once and answers calls one at a time. A worker that crashes, overruns its trial's
time, breaks the protocol or is cancelled is killed (its whole process tree, through its cgroup and
process group) and a fresh one takes its place; the judge's process never runs the agent's code.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import signal
from pathlib import Path
from typing import Any

from release_pipeline.agent_contract import trial_payload
from release_pipeline.errors import (
    AgentCrashed,
    AgentProtocolError,
    AgentRaised,
    InfrastructureError,
    RequestRejected,
    SandboxViolation,
)
from release_pipeline.models import AgentResult, Task, TrialContext
from release_pipeline.records import OUTPUT_LIMIT, TRACE_LIMIT
from release_pipeline.sandbox import (
    Limits,
    Prepared,
    Sandbox,
    SandboxError,
    interpreter,
    kill_group,
    limit_message,
)
from release_pipeline.trial_clock import harness_time

READ_LIMIT = 2 * (OUTPUT_LIMIT + TRACE_LIMIT) + 64 * 1024  # the longest message a worker may send
START_TIMEOUT_S = 120.0  # a busy machine can take long to start Python; the agent's import counts too
STDERR_TAIL = 4096


class AgentLoadFailed(Exception):
    """The agent's module could not be imported in its worker (its failure: every trial fails)."""


class Worker:
    """One sandboxed process serving one version's agent."""

    def __init__(self, proc: asyncio.subprocess.Process, prepared: Prepared, limits: Limits):
        self.proc, self.prepared, self.limits = proc, prepared, limits
        self.stderr: collections.deque[bytes] = collections.deque(maxlen=64)
        self.drain = asyncio.ensure_future(self._drain_stderr())
        self.ids = itertools.count(1)
        self.processes = 0  # how many processes its cgroup holds when idle

    @classmethod
    async def start(cls, prepared: Prepared, limits: Limits) -> Worker:
        spawn = asyncio.ensure_future(
            asyncio.create_subprocess_exec(
                *prepared.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=prepared.env,
                cwd=prepared.cwd,
                preexec_fn=prepared.preexec,
                limit=READ_LIMIT,
            )
        )
        try:
            proc = await asyncio.shield(spawn)
        except OSError as exc:
            prepared.cleanup()
            raise InfrastructureError(f"cannot start the agent's sandbox: {exc}") from None
        except asyncio.CancelledError:  # the run is ending: the process starts anyway, so end it before going
            try:
                await cls(await spawn, prepared, limits).kill()
            except OSError:
                prepared.cleanup()
            raise
        worker = cls(proc, prepared, limits)
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                hello = await worker._receive(starting=True)
                if hello.get("op") != "hello":
                    raise AgentProtocolError("the agent's process did not start the protocol")
                ready = await worker._receive()
        except TimeoutError:
            await worker.kill()
            raise InfrastructureError(f"the agent's process did not start within {START_TIMEOUT_S:g}s") from None
        except BaseException:
            await worker.kill()
            raise
        if ready.get("op") == "load_error":
            await worker.kill()
            raise AgentLoadFailed(str(ready.get("error", "the agent failed to import")))
        if ready.get("op") != "ready":
            await worker.kill()
            raise AgentProtocolError("the agent's process broke the protocol before its first call")
        worker.processes = prepared.cgroup.processes()  # the sandbox's own and the worker's, nothing the agent made
        return worker

    def spoiled(self, hits_before: int) -> str:
        """Why this worker must not serve another trial ("" when it may): the call ran into the process ceiling,
        or left processes behind (a fork bomb's children would starve every later trial of threads)."""
        cgroup = self.prepared.cgroup
        if cgroup.hits() > hits_before:
            return f"process limit: more than {self.limits.processes} processes"
        if cgroup.processes() > self.processes:
            return "the agent left processes running after its answer"
        return ""

    async def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(4096):
            self.stderr.append(chunk)

    def stderr_tail(self) -> str:
        return b"".join(self.stderr)[-STDERR_TAIL:].decode("utf-8", "replace").strip()

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message, ensure_ascii=False).encode("utf-8") + b"\n")

    async def _receive(self, starting: bool = False) -> dict[str, Any]:
        assert self.proc.stdout is not None
        try:
            line = await self.proc.stdout.readline()
        except (ValueError, asyncio.LimitOverrunError):
            raise AgentProtocolError(f"the agent's answer exceeded {READ_LIMIT} bytes") from None
        if not line:
            raise await self._ended(starting)
        try:
            message = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise AgentProtocolError("the agent's process wrote malformed data into the protocol") from None
        if not isinstance(message, dict):
            raise AgentProtocolError("the agent's process wrote malformed data into the protocol")
        return message

    async def _ended(self, starting: bool) -> Exception:
        """Why the process ended: a limit it hit, the agent ending it, or (before it ran) the harness."""
        try:
            code = await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            code = None
        await asyncio.wait([self.drain], timeout=1)
        tail = self.stderr_tail()
        if starting:
            return InfrastructureError(f"the agent's sandbox failed to start (status {code}): {tail[-300:]}")
        if code is not None and code > 128:  # bubblewrap reports its child's death by signal N as 128+N
            code = -(code - 128)
        if self.prepared.cgroup.hit():
            return SandboxViolation(f"process limit: more than {self.limits.processes} processes")
        if code == -signal.SIGXCPU:  # a worker's CPU ceiling is per call and soft: SIGKILL is not it
            return SandboxViolation(f"CPU time limit: more than {self.limits.cpu_s}s")
        if code == -signal.SIGXFSZ:
            return SandboxViolation(f"file size limit: a file over {self.limits.file_size_mb} MB")
        reason = limit_message(tail, self.limits)
        if reason:
            return SandboxViolation(reason)
        how = f"killed by {signal.Signals(-code).name}" if code and code < 0 else f"exit status {code}"
        detail = f": {tail[-300:]}" if tail else ""
        return AgentCrashed(f"the agent's process ended ({how}) before answering{detail}")

    async def call(self, task: Task, ctx: TrialContext, cpu_s: int) -> dict[str, Any]:
        """Ask for one answer; LLM calls the agent makes meanwhile are made here, through `ctx.llm`."""
        call_id = next(self.ids)
        self._send({"op": "call", "id": call_id, **trial_payload(task, ctx), "models": ctx.models, "cpu_s": cpu_s})
        pending: set[asyncio.Task] = set()
        try:
            while True:
                message = await self._receive()
                op = message.get("op")
                if op == "llm":
                    job = asyncio.ensure_future(self._answer_llm(message, ctx))
                    pending.add(job)
                    job.add_done_callback(pending.discard)
                elif op in ("result", "raised") and message.get("id") == call_id:
                    return message
                else:
                    raise AgentProtocolError(f"the agent's process sent an unexpected message ({str(op)[:40]})")
        finally:
            for job in pending:
                job.cancel()

    async def _answer_llm(self, message: dict[str, Any], ctx: TrialContext) -> None:
        request = message.get("request")
        try:
            if ctx.llm is None:
                raise InfrastructureError("no LLM gateway is available to this run")
            if not isinstance(request, dict):
                raise InfrastructureError("an LLM call needs `model` and a list of `messages`")
            reply = await ctx.llm.complete(**request)  # an `AgentLLM`: it refuses what an agent may not ask
            answer = {"op": "llm_reply", "id": message.get("id"), "reply": _reply_fields(reply)}
        except Exception as exc:  # the provider's or the request's fault: the agent sees InfrastructureError
            answer = {
                "op": "llm_error",
                "id": message.get("id"),
                "error": f"{type(exc).__name__}: {exc}"[:2000],
                "rejected": isinstance(exc, RequestRejected),
            }
        self._send(answer)

    async def kill(self) -> None:
        kill_group(self.proc.pid)
        self.prepared.cgroup.kill_all()
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            pass
        self.drain.cancel()
        self.prepared.cleanup()

    async def stop(self) -> None:
        """End an idle worker: close its input, give it a moment, then kill what remains."""
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 2)
        except TimeoutError:
            pass
        await self.kill()


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


def worker_launcher() -> str:
    """Python that starts `agent_worker` from the very copy of this package the harness runs: isolated (`-I`: no
    PYTHONPATH, no current folder), with this package's folder searched last, so a source tree or an unpacked sdist
    runs its own worker and nothing in the agent's folder can shadow a module."""
    import release_pipeline

    home = str(Path(release_pipeline.__file__).resolve().parent.parent)
    return (
        f"import runpy, sys; sys.path.append({home!r}); "
        "runpy.run_module('release_pipeline.agent_worker', run_name='__main__', alter_sys=True)"
    )


class WorkerPool:
    """Sandboxed workers for one version's Python agent, reused from trial to trial."""

    def __init__(self, entry: str, cwd: Any, limits: Limits):
        self.limits = limits
        self.sandbox = Sandbox(limits)
        self.argv = [interpreter(), "-I", "-c", worker_launcher(), entry]
        self.cwd = cwd
        self.idle: list[Worker] = []
        self.busy: set[Worker] = set()
        self.load_error: str | None = None

    async def _worker(self) -> Worker:
        if self.idle:
            return self.idle.pop()
        if self.load_error is not None:
            raise AgentLoadFailed(self.load_error)
        try:
            prepared = self.sandbox.prepare(self.argv, cwd=self.cwd, limits=self.limits, long_lived=True)
        except (OSError, SandboxError) as exc:
            raise InfrastructureError(f"cannot prepare the agent's sandbox: {exc}") from None
        try:
            return await Worker.start(prepared, self.limits)
        except AgentLoadFailed as exc:
            self.load_error = str(exc)
            raise

    async def run(self, task: Task, ctx: TrialContext) -> AgentResult:
        """One trial's answer from a worker (the run stage checks it again: it comes from the agent's process)."""
        with harness_time(starting=True):  # starting a sandbox is not the agent's work
            worker = await self._worker()
        self.busy.add(worker)
        hits, spoiled = worker.prepared.cgroup.hits(), "crashed"
        try:
            message = await worker.call(task, ctx, self.limits.cpu_s)
            spoiled = worker.spoiled(hits)
        finally:
            self.busy.discard(worker)
            if not spoiled:
                self.idle.append(worker)
            else:  # crashed, cancelled by the trial's timeout, broke the protocol or a limit: never reused
                await asyncio.shield(worker.kill())
        if spoiled.startswith("process limit"):  # what it answered, it answered starved of processes
            raise SandboxViolation(spoiled)
        if message["op"] == "raised":
            raise _raised(message, self.limits)
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

    async def aclose(self) -> None:
        workers, self.idle = [*self.idle, *self.busy], []
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)
