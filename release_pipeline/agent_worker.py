"""A Python agent's own process: `python -I -m release_pipeline.agent_worker module:function`, in the sandbox.

It imports the agent once, then answers calls one at a time over a line-delimited JSON protocol on
the stdin and stdout it started with (`release_pipeline.workers` is the other end). Whatever the agent
prints goes to stderr, never into the protocol; its answer is made fit for the record (`records`) before
it leaves; an exception, `sys.exit` included, is reported with its type and where it was raised. An
`os._exit` or a signal ends the process: the harness sees the pipe close and fails the trial.

Messages from the harness: `call` (a trial), `llm_reply` / `llm_error` (the answer to an LLM call).
Messages to the harness: `hello` as soon as it runs, `ready` or `load_error` once the agent is imported
(a process that ends between the two was ended by the agent's own import), then per call any number of `llm` requests
(`ctx.llm` is a proxy: the harness makes the call, cached and recorded, with keys that never enter
the sandbox) and one `result` or `raised`.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import os
import resource
import sys
import threading
import traceback
from pathlib import Path
from typing import Any, BinaryIO


class Channel:
    """The protocol's two pipes, taken away from the agent's stdin and stdout at start."""

    def __init__(self, reader: BinaryIO, writer: BinaryIO):
        self.reader, self.writer = reader, writer
        self.lock = threading.Lock()

    @classmethod
    def take_std(cls) -> Channel:
        reader = os.fdopen(os.dup(0), "rb")
        writer = os.fdopen(os.dup(1), "wb")
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(2, 1)  # the agent's prints land on stderr
        return cls(reader, writer)

    def send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message, ensure_ascii=False, allow_nan=False).encode("utf-8") + b"\n"
        with self.lock:
            self.writer.write(data)
            self.writer.flush()

    def pump(self, loop: asyncio.AbstractEventLoop, inbox: asyncio.Queue) -> None:
        """Read messages into `inbox` until the harness closes the pipe (then None)."""
        for line in self.reader:
            loop.call_soon_threadsafe(inbox.put_nowait, json.loads(line))
        loop.call_soon_threadsafe(inbox.put_nowait, None)


class LLMProxy:
    """`ctx.llm` inside the sandbox: `complete(...)` (async) and `complete_sync(...)`, answered by the harness."""

    def __init__(self, channel: Channel, loop: asyncio.AbstractEventLoop):
        self.channel, self.loop = channel, loop
        self.pending: dict[int, asyncio.Future] = {}
        self.ids = itertools.count(1)

    async def complete(self, **request: Any) -> Any:
        from release_pipeline.errors import InfrastructureError, RequestRejected
        from release_pipeline.llm.gateway import LLMReply
        from release_pipeline.records import to_json

        notes: list[str] = []
        body = to_json(request, notes, where="request")  # raises for what cannot cross the process boundary
        call_id = next(self.ids)
        future = self.pending[call_id] = self.loop.create_future()
        self.channel.send({"op": "llm", "id": call_id, "request": body})
        try:
            message = await future
        finally:
            self.pending.pop(call_id, None)
        if message["op"] == "llm_error":
            error = RequestRejected if message.get("rejected") else InfrastructureError
            raise error(message.get("error", "the LLM call failed"))
        return LLMReply(**message["reply"])

    def complete_sync(self, **request: Any) -> Any:
        """For agents that are plain functions (they run in a thread of their own)."""
        return asyncio.run_coroutine_threadsafe(self.complete(**request), self.loop).result()

    def resolve(self, message: dict[str, Any]) -> None:
        future = self.pending.get(message.get("id", 0))
        if future is not None and not future.done():
            future.set_result(message)


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{frames[-1].name} line {frames[-1].lineno}" if frames else ""


def _limit_cpu(seconds: Any) -> None:
    """A CPU-time ceiling for this call on top of what the process has used so far."""
    if not isinstance(seconds, int) or seconds <= 0:
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = int(usage.ru_utime + usage.ru_stime) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = used + seconds
    resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


async def _invoke(fn: Any, args: tuple) -> Any:
    value = await fn(*args) if inspect.iscoroutinefunction(fn) else await asyncio.to_thread(fn, *args)
    if inspect.isawaitable(value):
        value = await value
    return value


async def handle(fn: Any, wants_ctx: bool, message: dict[str, Any], proxy: LLMProxy, channel: Channel) -> None:
    """One call: the agent's answer, or what it raised, sent back; never lets anything escape."""
    from release_pipeline.agent_contract import as_result
    from release_pipeline.errors import AgentProtocolError, InfrastructureError, RequestRejected
    from release_pipeline.models import TrialContext
    from release_pipeline.records import bounded_text, recordable

    call_id = message["id"]
    try:
        _limit_cpu(message.get("cpu_s"))
        ctx = TrialContext(
            message["task_id"], message["repeat"], message["seed"], message["params"], proxy, message["models"],
            attempt=message.get("attempt", 0),
        )  # fmt: skip
        value = await _invoke(fn, (message["input"], ctx) if wants_ctx else (message["input"],))
        result = as_result(value)
        rec = recordable(result.output, result.trace, result.tokens, result.cost)
        reply = {"op": "result", "id": call_id, **{k: getattr(rec, k) for k in RESULT_FIELDS}}
    except BaseException as exc:  # SystemExit too: an agent cannot end the worker by raising
        kind = "exception"
        if isinstance(exc, RequestRejected):
            kind = "rejected"
        elif isinstance(exc, InfrastructureError):
            kind = "infrastructure"
        elif isinstance(exc, AgentProtocolError):
            kind = "protocol"
        elif isinstance(exc, SystemExit):
            kind = "exit"
        reply = {
            "op": "raised",
            "id": call_id,
            "kind": kind,
            "type": type(exc).__name__,
            "message": bounded_text(exc, 2000),
            "where": _where(exc),
        }
    channel.send(reply)


RESULT_FIELDS = ("output", "trace", "tokens", "cost", "notes", "output_size", "unrecordable")


async def serve(fn: Any, channel: Channel) -> None:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue = asyncio.Queue()
    threading.Thread(target=channel.pump, args=(loop, inbox), daemon=True).start()
    proxy = LLMProxy(channel, loop)
    wants_ctx = len(inspect.signature(fn).parameters) >= 2
    calls: set[asyncio.Task] = set()
    while (message := await inbox.get()) is not None:
        if message.get("op") == "call":
            task = asyncio.ensure_future(handle(fn, wants_ctx, message, proxy, channel))
            calls.add(task)
            task.add_done_callback(calls.discard)
        elif message.get("op") in ("llm_reply", "llm_error"):
            proxy.resolve(message)


def main() -> None:
    channel = Channel.take_std()
    channel.send({"op": "hello"})
    try:
        from release_pipeline.loading import load_callable

        fn = load_callable(sys.argv[1], Path.cwd(), what="agent entry")
    except BaseException as exc:  # a candidate that does not even import fails its trials, clearly
        from release_pipeline.records import bounded_text

        channel.send({"op": "load_error", "error": bounded_text(f"{type(exc).__name__}: {exc}", 2000)})
        return
    channel.send({"op": "ready"})
    asyncio.run(serve(fn, channel))
    os._exit(0)  # threads an agent left running do not hold the process


if __name__ == "__main__":
    main()
