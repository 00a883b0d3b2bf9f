"""The one door to every LLM call: cache, retries with backoff, cost and token accounting, the record.

A call is identified by a key over (role, model, messages, parameters, tools,
repeat index). The store keeps every call made, and a call whose key it has
seen is answered from the store: repeats stay independent (their index is in
the key), and running an unchanged version again makes no call at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from release_pipeline import event_loop
from release_pipeline.errors import InfrastructureError, RequestRejected
from release_pipeline.llm.providers import LOCAL_PROVIDER, litellm_module, local_completion
from release_pipeline.trials.clock import current_trial, harness_time, note_provider_cut_short

# Failures worth waiting out; anything else (bad request, auth, unknown model) will not improve with time.
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}
RETRYABLE = ("APIConnectionError", "Timeout", "RateLimitError", "InternalServerError", "ServiceUnavailableError")
# Refusals of the request itself: the caller's fault (an agent's malformed or oversized call), not the provider's.
REJECTED_STATUS = {400, 413, 422}
REJECTED = (
    "BadRequestError", "ContextWindowExceededError", "ContentPolicyViolationError", "UnprocessableEntityError",
    "PromptTooLong",  # the local model's own: a prompt longer than its context window
)  # fmt: skip


@dataclass(frozen=True)
class LLMReply:
    """What a model answered, with its usage. `cached` replies cost nothing now."""

    content: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    latency_ms: float = 0.0
    cached: bool = False

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def call_key(*, role: str, model: str, messages: list, params: dict, tools: list | None, repeat: int) -> str:
    """The cache key of a call: what was asked, with which sampling settings (the seed among them).

    A greedy call (temperature 0) answers the same on every repeat, so its repeats share one key: they are
    copies, and the cache says so by answering them for free. A sampled call keeps the repeat in its key, so
    that repeats without a seed of their own are still new samples.
    """
    greedy = params.get("temperature") == 0
    blob = json.dumps(
        {
            "role": role,
            "model": model,
            "messages": messages,
            "params": params,
            "tools": tools,
            "repeat": None if greedy else repeat,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def retry_after(exc: BaseException) -> float | None:
    """Seconds a provider asked us to wait (Retry-After), when it said so."""
    for holder in (getattr(exc, "response", None), exc):
        headers = getattr(holder, "headers", None) or getattr(holder, "litellm_response_headers", None)
        if headers:
            value = headers.get("retry-after") or headers.get("Retry-After")
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                continue
    return None


def is_rejection(exc: BaseException) -> bool:
    """Whether the provider refused the request itself (the caller's fault), not failed to serve it."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status in REJECTED_STATUS:
        return True
    return any(cls.__name__ in REJECTED for cls in type(exc).__mro__)


def is_retryable(exc: BaseException) -> bool:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status in RETRY_STATUS
    return any(cls.__name__ in RETRYABLE for cls in type(exc).__mro__)


def _arguments(raw: Any) -> dict[str, Any]:
    try:
        return json.loads(raw) if isinstance(raw, str) else dict(raw or {})
    except json.JSONDecodeError:
        return {"_unparsed": raw}


def _parse(response: Any) -> tuple[str, list[dict[str, Any]], int, int]:
    if isinstance(response, tuple):  # a local model's own answer (`local_completion`): its calls as it made them
        content, raw_calls, prompt, completion = response
        named = [c["function"] for c in raw_calls]
        calls = [{"name": f["name"], "arguments": _arguments(f.get("arguments"))} for f in named]
        return content or "", calls, int(prompt), int(completion)
    message = response.choices[0].message
    calls = []
    for call in getattr(message, "tool_calls", None) or []:
        calls.append({"name": call.function.name, "arguments": _arguments(call.function.arguments)})
    usage = getattr(response, "usage", None)
    prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion = int(getattr(usage, "completion_tokens", 0) or 0)
    return message.content or "", calls, prompt, completion


def _cost(response: Any) -> float:
    if isinstance(response, tuple):  # a local model: free
        return 0.0
    try:
        return float(litellm_module().completion_cost(completion_response=response) or 0.0)
    except Exception:  # unknown price (local and custom models): free as far as we can tell
        return 0.0


Sleep = Callable[[float], Awaitable[None]]


class LLMGateway:
    """Cached, retried, recorded LLM calls through litellm. One per workspace; safe to share across tasks."""

    def __init__(
        self,
        store,
        *,
        attempts: int = 5,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        max_retry_after: float = 10.0,
        call_timeout: float = 300.0,
        sleep: Sleep = asyncio.sleep,
    ):
        self.store = store
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_retry_after = max_retry_after  # a provider asking for a longer wait is down, as far as a trial goes
        self.call_timeout = call_timeout
        self.sleep = sleep
        self.calls = 0  # real calls made by this gateway (cache hits excluded)
        self._in_flight: dict[tuple[int, str], _Shared] = {}  # calls under way, by event loop and key
        self.spent = 0.0  # what they cost, in dollars

    async def complete(
        self,
        *,
        role: str,
        model: str,
        messages: list[dict[str, Any]],
        params: dict[str, Any] | None = None,
        tools: list[dict[str, Any]] | None = None,
        repeat: int = 0,
    ) -> LLMReply:
        """One chat completion. Raises InfrastructureError when the provider still fails after retries."""
        params = dict(params or {})
        key = call_key(role=role, model=model, messages=messages, params=params, tools=tools, repeat=repeat)
        slot = (id(asyncio.get_running_loop()), key)
        shared = self._in_flight.get(slot)
        if shared is not None:  # the same call is under way: a copy of its answer, for free
            shared.waiters += 1
            if shared.owner is not None and shared.owner is current_trial.get():
                reply = await shared.wait()  # the trial's own call: waiting for it is its own time
            else:
                with harness_time():  # someone else's call: waiting for it is not this trial's work
                    reply = await shared.wait()
            return replace(reply, cost=0.0, latency_ms=0.0, cached=True)
        # registered before the cache is read, and until the answer is stored: an identical call either
        # joins this one or finds the answer in the store, never makes a second call
        call = _Shared(asyncio.ensure_future(self._stored_or_fresh(key, role, model, messages, params, tools, repeat)))
        self._in_flight[slot] = call
        call.task.add_done_callback(lambda _: self._in_flight.pop(slot, None))
        return await call.wait()

    async def _stored_or_fresh(self, key, role, model, messages, params, tools, repeat) -> LLMReply:
        """The stored answer to this call, or a new one from the provider (then stored)."""
        hit = await asyncio.to_thread(self.store.cached_response, key)
        if hit is not None:
            r = hit["response"]
            return LLMReply(
                r["content"], r["tool_calls"], hit["prompt_tokens"], hit["completion_tokens"], 0.0, 0.0, cached=True
            )
        return await self._fresh(key, role, model, messages, params, tools, repeat)

    async def _fresh(self, key, role, model, messages, params, tools, repeat) -> LLMReply:
        """Call the provider (with retries) and record the call and its answer."""
        response, latency = await self._call_with_retries(model, messages, params, tools)
        try:
            content, tool_calls, prompt, completion = _parse(response)
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
            raise InfrastructureError(f"{model}: malformed response ({type(exc).__name__}: {_brief(exc)})") from None
        reply = LLMReply(content, tool_calls, prompt, completion, _cost(response), latency)
        self.calls += 1
        self.spent += reply.cost
        await asyncio.to_thread(
            self.store.record_llm_call,
            key=key,
            role=role,
            model=model,
            repeat=repeat,
            request={"messages": messages, "params": params, "tools": tools},
            response={"content": content, "tool_calls": tool_calls},
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost=reply.cost,
            latency_ms=latency,
        )
        return reply

    def complete_sync(self, **kwargs: Any) -> LLMReply:
        """`complete` for code that is not on an event loop (critic, synthesizer)."""
        return event_loop.run(self.complete(**kwargs))

    async def _call_with_retries(self, model, messages, params, tools) -> tuple[Any, float]:
        local = model.startswith(f"{LOCAL_PROVIDER}/")  # served in-process, without litellm
        if not local:
            with harness_time():  # importing litellm (seconds on a busy machine) is not the trial's work
                litellm = litellm_module()
        extra = {"tools": tools} if tools else {}
        for attempt in range(1, self.attempts + 1):
            start = time.perf_counter()
            try:
                async with asyncio.timeout(self.call_timeout):  # a provider that never answers is down
                    if local:
                        response: Any = await local_completion(model, messages, {**params, **extra})
                    else:
                        response = await litellm.acompletion(
                            model=model, messages=messages, num_retries=0, **params, **extra
                        )
                return response, (time.perf_counter() - start) * 1000
            except Exception as exc:
                if isinstance(exc, TimeoutError):
                    exc = TimeoutError(f"no answer within {self.call_timeout:g}s")
                if is_rejection(exc):
                    raise RequestRejected(f"{model} refused the request: {type(exc).__name__}: {_brief(exc)}") from None
                if not (is_retryable(exc) or isinstance(exc, TimeoutError)) or attempt == self.attempts:
                    raise InfrastructureError(f"{model}: {type(exc).__name__}: {_brief(exc)}") from None
                delay = retry_after(exc)
                if delay is not None and delay > self.max_retry_after:
                    raise InfrastructureError(
                        f"{model}: {type(exc).__name__}: the provider asks to retry after {delay:g}s "
                        f"(longer than {self.max_retry_after:g}s)"
                    ) from None
                if delay is None:  # exponential backoff with full jitter
                    delay = random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))
                await self.sleep(min(delay, self.max_delay))
        raise AssertionError("unreachable")


class _Shared:
    """One call under way and how many callers wait for it; it is cancelled only when none is left."""

    def __init__(self, task: asyncio.Future[LLMReply]):
        self.task = task
        self.waiters = 1
        self.owner = current_trial.get()  # the trial that made the call (None: not a trial's)

    async def wait(self) -> LLMReply:
        try:
            return await asyncio.shield(self.task)
        except asyncio.CancelledError:
            if not self.task.done():  # the trial's time ran out while the provider kept it waiting
                note_provider_cut_short()
            self.waiters -= 1
            if self.waiters == 0:
                self.task.cancel()  # nobody wants the answer any more: free the provider
            raise


def _brief(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
