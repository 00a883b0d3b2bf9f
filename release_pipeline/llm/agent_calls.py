"""What an agent may ask of the LLM gateway: messages, tools and sampling settings, to the models it is allowed.

An agent's code is a candidate's: it chooses nothing about how the harness reaches a provider. `ctx.llm` is an
`AgentLLM` bound to one trial. It passes on the conversation, the tools and an allow-list of sampling parameters,
to a model the workspace allows this agent (`models.agent`, the manifest's `model`, `models.allowed`); anything
else (`api_base`, `api_key`, `extra_headers`, `mock_response`, another provider or model...) is refused before any
call is made, and the trial fails for it, with the reason in its feedback for the critic. The role is always
`agent` and the repeat always the trial's own, so an agent can neither pass for the critic nor reuse other repeats'
answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from release_pipeline.errors import RequestRejected

# What changes how a model samples, never where the request goes, whose key it carries or what it costs to fake.
SAMPLING_PARAMS = frozenset(
    {
        "temperature",
        "top_p",
        "top_k",
        "max_tokens",
        "max_completion_tokens",
        "seed",
        "stop",
        "presence_penalty",
        "frequency_penalty",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "logprobs",
        "top_logprobs",
    }
)
REQUEST_KEYS = frozenset({"model", "messages", "params", "tools", "role", "repeat"})
ADAPTER_SUFFIX = re.compile(r"@[0-9a-f]{64}$")  # local/smollm2@<digest>: a fine-tuned adapter of an allowed model


class ForbiddenRequest(RequestRejected):
    """An agent asked the gateway for something outside what agents may ask: its trial fails."""


def allowed_models(agent_model: str, manifest_model: str = "", extra: Iterable[str] = ()) -> frozenset[str]:
    """The models an agent may call: the workspace's agent model, its manifest's, and `models.allowed`."""
    return frozenset(name for name in (agent_model, manifest_model, *extra) if name)


def check_request(request: dict[str, Any], allowed: Iterable[str]) -> str:
    """Why an agent's request is refused, or "" when it may be made."""
    extra = sorted(set(request) - REQUEST_KEYS)
    if extra:
        return f"an agent's LLM call may not set {', '.join(map(str, extra))[:200]}"
    params = request.get("params") or {}
    if not isinstance(params, dict):
        return "an agent's LLM call needs its `params` as a mapping"
    forbidden = sorted(str(k) for k in params if k not in SAMPLING_PARAMS)
    if forbidden:
        return (
            f"an agent's LLM call may only set sampling parameters ({', '.join(sorted(SAMPLING_PARAMS))}), "
            f"not {', '.join(forbidden)[:200]}"
        )
    model = request.get("model")
    if not isinstance(model, str) or ADAPTER_SUFFIX.sub("", model) not in set(allowed):
        return f"model {str(model)[:100]!r} is not one this workspace allows its agent (models.allowed in release.yaml)"
    if not isinstance(request.get("messages"), list):
        return "an LLM call needs a list of `messages`"
    tools = request.get("tools")
    if tools is not None and not isinstance(tools, list):
        return "an LLM call's `tools` must be a list"
    return ""


class AgentLLM:
    """`ctx.llm` for one trial: the gateway, behind what an agent may ask. `refused` keeps why a call was refused."""

    def __init__(self, gateway: Any, allowed: frozenset[str], repeat: int, default_model: str = ""):
        self.gateway, self.allowed, self.repeat, self.default_model = gateway, allowed, repeat, default_model
        self.refused: list[str] = []

    async def complete(self, **request: Any) -> Any:
        """One chat completion for the agent (`model`, `messages`, optional `params` and `tools`)."""
        request.setdefault("model", self.default_model)
        why = check_request(request, self.allowed)
        if why:
            self.refused.append(why)
            raise ForbiddenRequest(why)
        return await self.gateway.complete(
            role="agent",
            model=request["model"],
            messages=request["messages"],
            params=dict(request.get("params") or {}),
            tools=request.get("tools"),
            repeat=self.repeat,
        )

    def complete_sync(self, **request: Any) -> Any:
        """`complete` for an agent that is a plain function (it runs in a thread of its own)."""
        from release_pipeline import event_loop

        return event_loop.run(self.complete(**request))
