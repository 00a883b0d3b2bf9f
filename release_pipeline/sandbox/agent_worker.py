"""A Python agent's own process, in the sandbox: `python -I -S -c <launcher> module:function THREADS`.

It imports the agent once, then runs the calls the harness sends, many at once: a coroutine per call for an
`async def` agent, a thread per call (at most THREADS) for a plain function. The protocol is line-delimited JSON on
the stdin and stdout it started with (`sandbox/worker.py` and `sandbox/protocol.py` are the other end); whatever the
agent prints goes to stderr, never into the protocol. An answer is made fit for the record (`trials/fit.py`) before it
leaves; an exception, `sys.exit` included, is reported with its type and where it was raised. An `os._exit` or a
signal ends the process: the harness sees the pipe close and deals with every call it had.

Messages from the harness: `call` (a trial), `cancel` (its time is up), `llm_reply` / `llm_error` (the answer to an
LLM call). Messages to the harness: `hello` as soon as it runs, `ready` (`blocking`: the agent is a plain function)
or `load_error` once the agent is imported (a process that ends between the two was ended by the agent's own
import), then per call any number of `llm` requests, each naming its call (`ctx.llm` is a proxy bound to the trial:
the harness makes the call, cached and recorded, with keys that never enter the sandbox), and one `result`, `raised`
or `cancelled` (`stuck` when the call runs in a thread that cannot be stopped). Every end of a call says how much
CPU time the process has used (`cpu`): the harness replaces a worker before it meets its ceiling.

Until it is ready it imports only what it needs (asyncio, json and the agent's module, no package `__init__`
cascade); what makes answers fit for the record is imported while it waits for its first call.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

TYPE_CHECKING = False  # not `typing`'s (importing typing is a tenth of a worker's start)
if TYPE_CHECKING:
    from typing import Any


class Channel:
    """The protocol's two pipes, taken away from the agent's stdin and stdout at start."""

    def __init__(self, reader: int, writer: int):
        self.reader, self.writer = reader, writer
        self.outbox = bytearray()
        self.loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def take_std(cls) -> Channel:
        reader, writer = os.dup(0), os.dup(1)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(2, 1)  # the agent's prints land on stderr
        return cls(reader, writer)

    def send(self, message: dict[str, Any]) -> None:
        """Queue a message; everything queued in one turn of the event loop leaves in one write."""
        if not self.outbox and self.loop is not None:
            self.loop.call_soon(self.flush)
        self.outbox += json.dumps(message, ensure_ascii=False, allow_nan=False).encode("utf-8") + b"\n"
        if self.loop is None:
            self.flush()

    def flush(self) -> None:
        view = memoryview(self.outbox)
        try:
            while view:
                view = view[os.write(self.writer, view) :]
        except OSError:  # the harness is gone: nothing left to answer to
            os._exit(0)
        finally:
            view.release()
        self.outbox.clear()


class LLMProxy:
    """The harness's LLM gateway as seen from the sandbox: requests out, answers back, by request id."""

    def __init__(self, channel: Channel, loop: asyncio.AbstractEventLoop):
        self.channel, self.loop = channel, loop
        self.pending: dict[int, asyncio.Future] = {}
        self.ids = itertools.count(1)

    async def ask(self, call: int, request: dict[str, Any]) -> Any:
        from release_pipeline.errors import InfrastructureError, RequestRejected
        from release_pipeline.llm.gateway import LLMReply
        from release_pipeline.trials.fit import to_json

        body = to_json(request, [], where="request")  # raises for what cannot cross the process boundary
        request_id = next(self.ids)
        future = self.pending[request_id] = self.loop.create_future()
        self.channel.send({"op": "llm", "id": request_id, "call": call, "request": body})
        try:
            message = await future
        finally:
            self.pending.pop(request_id, None)
        if message["op"] == "llm_error":
            error = RequestRejected if message.get("rejected") else InfrastructureError
            raise error(message.get("error", "the LLM call failed"))
        return LLMReply(**message["reply"])

    def resolve(self, message: dict[str, Any]) -> None:
        future = self.pending.get(message.get("id", 0))
        if future is not None and not future.done():
            future.set_result(message)


class CallLLM:
    """`ctx.llm` inside the sandbox, bound to one trial: `complete(...)` (async) and `complete_sync(...)`.

    The binding is the object itself, not a context variable: threads the agent starts itself ask for their own
    trial too."""

    __slots__ = ("proxy", "call")

    def __init__(self, proxy: LLMProxy, call: int):
        self.proxy, self.call = proxy, call

    async def complete(self, **request: Any) -> Any:
        return await self.proxy.ask(self.call, request)

    def complete_sync(self, **request: Any) -> Any:
        """For agents that are plain functions (they run in a thread of their own)."""
        return asyncio.run_coroutine_threadsafe(self.proxy.ask(self.call, request), self.proxy.loop).result()


def _where(exc: BaseException) -> str:
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    return f"{frames[-1].name} line {frames[-1].lineno}" if frames else ""


RESULT_FIELDS = ("output", "trace", "tokens", "cost", "notes", "output_size", "unrecordable")


class Server:
    """Runs the calls of one worker: each in a task of its own, a plain function's in a thread."""

    def __init__(self, fn: Any, channel: Channel, loop: asyncio.AbstractEventLoop, threads: int):
        self.fn, self.channel, self.loop = fn, channel, loop
        self.blocking = not inspect.iscoroutinefunction(fn)
        self.wants_ctx = len(inspect.signature(fn).parameters) >= 2
        self.proxy = LLMProxy(channel, loop)
        self.calls: dict[int, asyncio.Task] = {}
        self.cancelled: set[int] = set()
        self.in_threads: set[int] = set()  # calls whose function is running in a thread now
        self.executor = ThreadPoolExecutor(max(1, threads), thread_name_prefix="agent") if self.blocking else None
        self.buffer = bytearray()
        self.closed = loop.create_future()

    def readable(self) -> None:
        try:
            data = os.read(self.channel.reader, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the harness closed the pipe: this worker is done
            self.loop.remove_reader(self.channel.reader)
            if not self.closed.done():
                self.closed.set_result(None)
            return
        self.buffer += data
        end = self.buffer.rfind(b"\n")
        if end < 0:
            return
        lines = self.buffer[:end].split(b"\n")
        del self.buffer[: end + 1]
        for line in lines:
            self.dispatch(json.loads(line))

    def dispatch(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "call":
            task = self.loop.create_task(self.handle(message))
            self.calls[message["id"]] = task
        elif op in ("llm_reply", "llm_error"):
            self.proxy.resolve(message)
        elif op == "cancel":
            running = self.calls.get(message.get("id", 0))
            if running is not None:
                self.cancelled.add(message["id"])
                running.cancel()

    async def invoke(self, call_id: int, args: tuple) -> Any:
        if not self.blocking:
            value = await self.fn(*args)
        else:

            def in_thread() -> Any:
                self.in_threads.add(call_id)
                try:
                    return self.fn(*args)
                finally:
                    self.in_threads.discard(call_id)

            value = await self.loop.run_in_executor(self.executor, in_thread)
        if inspect.isawaitable(value):
            value = await value
        return value

    async def handle(self, message: dict[str, Any]) -> None:
        """One call: the agent's answer, or what it raised, sent back; never lets anything escape."""
        from release_pipeline.errors import AgentProtocolError, InfrastructureError, RequestRejected
        from release_pipeline.models import TrialContext
        from release_pipeline.sandbox.contract import as_result
        from release_pipeline.trials.fit import bounded_text, recordable

        call_id = message["id"]
        reply: dict[str, Any]
        try:
            ctx = TrialContext(
                message["task_id"], message["repeat"], message["seed"], message["params"],
                CallLLM(self.proxy, call_id), message["models"], attempt=message.get("attempt", 0),
            )  # fmt: skip
            value = await self.invoke(call_id, (message["input"], ctx) if self.wants_ctx else (message["input"],))
            result = as_result(value)
            rec = recordable(result.output, result.trace, result.tokens, result.cost)
            reply = {"op": "result", "id": call_id, **{k: getattr(rec, k) for k in RESULT_FIELDS}}
        except BaseException as exc:  # SystemExit too: an agent cannot end the worker by raising
            if call_id in self.cancelled and isinstance(exc, asyncio.CancelledError):
                reply = {"op": "cancelled", "id": call_id, "stuck": call_id in self.in_threads}
            else:
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
        finally:
            self.calls.pop(call_id, None)
            self.cancelled.discard(call_id)
        reply["cpu"] = round(time.process_time(), 3)
        self.channel.send(reply)


def _warm_up() -> None:
    """What the first call needs, imported while the worker waits for it."""
    import release_pipeline.sandbox.contract
    import release_pipeline.trials.fit  # noqa: F401


async def serve(fn: Any, channel: Channel, threads: int) -> None:
    loop = asyncio.get_running_loop()
    channel.loop = loop
    server = Server(fn, channel, loop, threads)
    os.set_blocking(channel.reader, False)
    loop.call_soon(_warm_up)  # before the first call is read: it needs them anyway
    loop.add_reader(channel.reader, server.readable)
    await server.closed


def main() -> None:
    channel = Channel.take_std()
    channel.send({"op": "hello"})
    try:
        from release_pipeline.loading import load_callable

        fn = load_callable(sys.argv[1], os.getcwd(), what="agent entry")
    except BaseException as exc:  # a candidate that does not even import fails its trials, clearly
        from release_pipeline.trials.fit import bounded_text

        channel.send({"op": "load_error", "error": bounded_text(f"{type(exc).__name__}: {exc}", 2000)})
        return
    channel.send({"op": "ready", "blocking": not inspect.iscoroutinefunction(fn)})
    asyncio.run(serve(fn, channel, int(sys.argv[2]) if len(sys.argv) > 2 else 8))
    os._exit(0)  # threads an agent left running do not hold the process


if __name__ == "__main__":
    main()
