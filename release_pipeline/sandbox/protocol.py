"""The harness's half of the agent-worker protocol (`agent_worker.py` is the other): its messages and their meaning.

Line-delimited JSON both ways. This module frames and decodes what a worker sends, encodes what the harness sends,
answers the LLM requests a trial makes, and turns a trial's final message into its outcome. It holds no state of a
worker's: `worker.py` decides what a message does to the process and the calls in it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from release_pipeline.errors import (
    AgentCrashed,
    AgentProtocolError,
    AgentRaised,
    InfrastructureError,
    RequestRejected,
    SandboxViolation,
)
from release_pipeline.models import AgentResult
from release_pipeline.sandbox.isolation import Limits, limit_message
from release_pipeline.trials.fit import OUTPUT_LIMIT, TRACE_LIMIT

if TYPE_CHECKING:
    from release_pipeline.models import TrialContext

READ_LIMIT = 2 * (OUTPUT_LIMIT + TRACE_LIMIT) + 64 * 1024  # the longest message a worker may send
FINAL = ("result", "raised", "cancelled")  # the messages that end a call

# How the harness raises what a worker reported by `kind` (the agent's own exceptions are `AgentRaised`).
RAISED_AS: dict[str, Callable[[str], Exception]] = {
    "rejected": RequestRejected,
    "infrastructure": InfrastructureError,
    "protocol": AgentProtocolError,
    "exit": lambda code: AgentCrashed(f"the agent called sys.exit({code})"),
}


class Lines:
    """A worker's stdout as it comes: whole lines out, the line still arriving kept for the next read."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[bytearray]:
        """The lines `data` completes; `AgentProtocolError` when a line grows past READ_LIMIT."""
        buffer = self.buffer
        buffer += data
        end = buffer.rfind(b"\n")
        if end < 0:
            if len(buffer) > READ_LIMIT:
                raise AgentProtocolError(f"the agent's answer exceeded {READ_LIMIT} bytes")
            return []
        lines = buffer[:end].split(b"\n")
        del buffer[: end + 1]
        return lines


def decode(line: bytes | bytearray) -> dict[str, Any] | None:
    """One message from a worker; None for anything that is not a JSON object."""
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return message if isinstance(message, dict) else None


def encode(message: dict[str, Any]) -> bytes:
    """One message to a worker, as the line it is sent as."""
    return json.dumps(message, ensure_ascii=False).encode("utf-8") + b"\n"


def call_limit(message: dict[str, Any], limits: Limits) -> str:
    """The sandbox limit a call's exception shows it ran into ("" if none): one the whole process shares."""
    if message.get("op") != "raised" or message.get("kind") != "exception":
        return ""
    return limit_message(f"{message.get('type', '')}: {str(message.get('message', ''))[:2000]}", limits)


def call_ended(call_id: Any) -> dict[str, Any]:
    """The answer to an LLM request made for a call that has ended."""
    return {"op": "llm_error", "id": call_id, "rejected": False,
            "error": "InfrastructureError: the trial this call was made for has ended"}  # fmt: skip


async def answer_llm(message: dict[str, Any], ctx: TrialContext) -> dict[str, Any]:
    """The answer to a trial's LLM request, made through the trial's `AgentLLM` (it refuses what an agent may not
    ask): the reply, or the error the agent sees as InfrastructureError."""
    request = message.get("request")
    try:
        if ctx.llm is None:
            raise InfrastructureError("no LLM gateway is available to this run")
        if not isinstance(request, dict):
            raise InfrastructureError("an LLM call needs `model` and a list of `messages`")
        reply = await ctx.llm.complete(**request)
        return {"op": "llm_reply", "id": message.get("id"), "reply": _reply_fields(reply)}
    except Exception as exc:  # the provider's or the request's fault: the agent sees InfrastructureError
        return {
            "op": "llm_error",
            "id": message.get("id"),
            "error": f"{type(exc).__name__}: {exc}"[:2000],
            "rejected": isinstance(exc, RequestRejected),
        }


def _reply_fields(reply: Any) -> dict[str, Any]:
    names = ("content", "tool_calls", "prompt_tokens", "completion_tokens", "cost", "latency_ms", "cached")
    return {name: getattr(reply, name) for name in names}


def raised(message: dict[str, Any], limits: Limits) -> Exception:
    """The exception a worker reported, as the run stage classifies it (a limit it ran into is a violation)."""
    text = str(message.get("message", ""))[:2000]
    kind, name = message.get("kind"), str(message.get("type", "Exception"))[:100]
    limit = limit_message(f"{name}: {text}", limits)
    if limit and kind == "exception":
        return SandboxViolation(limit)
    make = RAISED_AS.get(kind) if isinstance(kind, str) else None
    if make is not None:
        return make(text)
    return AgentRaised(f"{name}: {text}" if text else name, str(message.get("where", ""))[:200])


def answer(message: dict[str, Any], limits: Limits) -> AgentResult:
    """A trial's answer from its final message (the run stage checks it again: it comes from the agent's process)."""
    if message["op"] == "raised":
        raise raised(message, limits)
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
