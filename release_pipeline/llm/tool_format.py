"""Tool calling for local models, in SmolLM2's own function-calling format.

A local model has no tool-calling API: the tools go into the system prompt as `<tools>[schemas]</tools>`, the
model answers `<tool_call>[{"name": ..., "arguments": {...}}]</tool_call>` (an empty list: no call), and the
answer is parsed back into OpenAI-style `tool_calls`. This is the format SmolLM2's instruct models were trained
on for function calling; the same rendering is what the fine-tuning strategies train on (`render_chat` with the
target's `render_calls`), so a fine-tuned version is served exactly the way it was trained.

`tool_choice` is honoured: `"none"` offers no tools, `"required"` asks for at least one call, a named function
(`{"type": "function", "function": {"name": ...}}`) is the only one offered and must be called.
"""

from __future__ import annotations

import json
import re
from typing import Any

TOOLS_PROMPT = (
    "You are an expert in composing functions. You are given a question and a set of possible functions. "
    "Based on the question, you will need to make one or more function/tool calls to achieve the purpose. "
    "If none of the functions can be used, point it out and refuse to answer. "
    "If the given question lacks the parameters required by the function, also point it out.\n\n"
    "You have access to the following tools:\n<tools>{tools}</tools>\n\n"
    "The output MUST strictly adhere to the following format, and NO other text MUST be included.\n"
    "The example format is as follows. Please make sure the parameter type is correct. If no function call is "
    "needed, please make the tool calls an empty list '[]'.\n"
    '<tool_call>[\n{{"name": "func_name1", "arguments": {{"argument1": "value1", "argument2": "value2"}}}},\n'
    "... (more tool calls as required)\n]</tool_call>"
)
REQUIRED = "\nYou MUST call at least one function."
OPEN, CLOSE = "<tool_call>", "</tool_call>"
_CALL_BLOCK = re.compile(re.escape(OPEN) + r"(.*?)(?:" + re.escape(CLOSE) + r"|$)", re.S)


def _functions(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The function schemas of OpenAI-style tools (`{"type": "function", "function": {...}}`, or bare)."""
    return [t.get("function", t) for t in tools if isinstance(t, dict)]


def offered(tools: list[dict[str, Any]] | None, tool_choice: Any) -> tuple[list[dict[str, Any]], bool]:
    """The functions to show the model and whether it must call one, as `tool_choice` says."""
    functions = _functions(tools or [])
    if not functions or tool_choice == "none":
        return [], False
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name")
        chosen = [f for f in functions if f.get("name") == name]
        return (chosen or functions), True
    return functions, tool_choice == "required"


def render_calls(calls: list[dict[str, Any]]) -> str:
    """Calls (`{"name", "arguments"}`, or OpenAI's `{"function": {...}}`) as the model writes them."""
    plain = []
    for call in calls:
        fn = call.get("function", call)
        args = fn.get("arguments", {})
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                args = {}
        plain.append({"name": fn.get("name", ""), "arguments": args})
    return f"{OPEN}{json.dumps(plain, ensure_ascii=False)}{CLOSE}"


def _message(message: dict[str, Any]) -> dict[str, str] | None:
    """One message in plain text: an assistant's tool calls in the call format, a tool's result as a user turn
    (None for an empty result, as a demonstration's: a turn with nothing in it the model would only imitate)."""
    role = str(message.get("role", "user"))
    content = message.get("content") or ""
    if not isinstance(content, str):  # content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if role == "assistant" and message.get("tool_calls"):
        calls = render_calls(message["tool_calls"])
        return {"role": "assistant", "content": f"{content}\n{calls}" if content.strip() else calls}
    if role == "tool":
        if not content.strip():
            return None
        return {"role": "user", "content": f"<tool_response>{content}</tool_response>"}
    return {"role": role, "content": content}


def render_chat(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, tool_choice: Any = None
) -> list[dict[str, str]]:
    """The chat as plain messages the model's chat template takes, with the tools in the system prompt."""
    plain = [m for m in map(_message, messages) if m is not None]
    functions, must = offered(tools, tool_choice)
    if not functions:
        return plain
    block = TOOLS_PROMPT.format(tools=json.dumps(functions, ensure_ascii=False)) + (REQUIRED if must else "")
    if plain and plain[0]["role"] == "system":
        return [{"role": "system", "content": f"{plain[0]['content']}\n\n{block}".strip()}, *plain[1:]]
    return [{"role": "system", "content": block}, *plain]


def _calls_in(text: str) -> list[dict[str, Any]] | None:
    """The calls written in one block of JSON: a list of calls or one call; None when it is not that."""
    text = text.strip()
    if not text:
        return []
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return None
    calls = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            return None
        args = item.get("arguments", item.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                return None
        if not isinstance(args, dict):
            return None
        calls.append({"name": item["name"], "arguments": args})
    return calls


def parse_answer(text: str) -> tuple[str, list[dict[str, Any]]]:
    """What the model wrote, as content and OpenAI-style tool calls.

    Calls are read from `<tool_call>...</tool_call>` blocks (an unclosed last block too: the answer may have
    run out of tokens after it), or from an answer that is nothing but a JSON list of calls. A block that is not
    valid JSON stays in the content, so the caller sees what the model wrote instead of a silent nothing.
    """
    calls: list[dict[str, Any]] = []
    kept: list[str] = []
    last = 0
    for match in _CALL_BLOCK.finditer(text):
        found = _calls_in(match.group(1))
        kept.append(text[last : match.start()])
        if found is None:
            kept.append(match.group(0))
        else:
            calls.extend(found)
        last = match.end()
    kept.append(text[last:])
    content = "".join(kept).strip()
    if not calls and content.startswith("["):
        found = _calls_in(content)
        if found:
            calls, content = found, ""
    tool_calls = [
        {
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": c["name"], "arguments": json.dumps(c["arguments"], ensure_ascii=False)},
        }
        for i, c in enumerate(calls)
    ]
    return content, tool_calls
