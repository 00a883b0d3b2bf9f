"""A scripted model behind a real litellm provider: queue replies, then assert on the requests it saw.

Replies are taken in order; when the queue is empty, `default` answers (a
string, or a function of the messages). A reply may be a string, a
`{"tool_calls": [...]}` mapping, an exception to raise, `HANG` (never answers),
`MALFORMED` (a response with no choices), or a function of the messages
returning any of those.
"""

from __future__ import annotations

from collections import deque
from typing import Any

HANG = object()
MALFORMED = object()


class FakeModel:
    def __init__(self) -> None:
        self.replies: deque[Any] = deque()
        self.requests: list[dict[str, Any]] = []
        self.default: Any = "ok"

    def queue(self, *replies: Any) -> FakeModel:
        self.replies.extend(replies)
        return self

    def by_role(self, role: str) -> list[dict[str, Any]]:
        """Requests whose system prompt names the role (the critic's and synthesizer's do)."""
        return [r for r in self.requests if r["role"] == role]

    def answer(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Any:
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        role = "critic" if "failed attempt" in system else "synthesizer" if "editing its files" in system else "agent"
        self.requests.append({"model": model, "messages": messages, "params": params, "role": role})
        reply = self.replies.popleft() if self.replies else self.default
        if callable(reply):
            reply = reply(messages)
        if isinstance(reply, BaseException):
            raise reply
        return reply


def make_handler(fake: FakeModel) -> Any:
    import litellm
    from litellm import CustomLLM

    class Handler(CustomLLM):
        def completion(self, model, messages, *args, optional_params=None, reply=None, **kwargs):
            reply = fake.answer(model, messages, dict(optional_params or {})) if reply is None else reply
            if reply is MALFORMED:
                return litellm.ModelResponse(model=model, choices=[])
            message: dict[str, Any] = {"role": "assistant", "content": reply if isinstance(reply, str) else ""}
            if isinstance(reply, dict):
                message["tool_calls"] = [
                    {
                        "id": f"call_{i}",
                        "type": "function",
                        "function": {"name": c["name"], "arguments": __import__("json").dumps(c["arguments"])},
                    }
                    for i, c in enumerate(reply["tool_calls"])
                ]
            prompt = sum(len(str(m.get("content", ""))) for m in messages) // 4
            return litellm.ModelResponse(
                model=model,
                choices=[{"index": 0, "message": message, "finish_reason": "stop"}],
                usage={"prompt_tokens": prompt, "completion_tokens": 3, "total_tokens": prompt + 3},
            )

        async def acompletion(self, model, messages, *args, optional_params=None, **kwargs):
            import asyncio

            reply = fake.answer(model, messages, dict(optional_params or {}))
            if reply is HANG:
                await asyncio.sleep(3600)
            return self.completion(model, messages, optional_params=optional_params, reply=reply)

    return Handler()
