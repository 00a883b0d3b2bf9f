"""The prompt agent adapter: an agent made of prompt files, few-shot demonstrations, parameters and tools.

Manifest (`adapter: prompt`):

    model: local/smollm2        # a litellm model string (default: the workspace's models.agent)
    system: system.txt          # optional system prompt
    prompt: prompt.txt          # the user message; `{input}` is replaced by the task input
    demos: demos.yaml           # optional: a list of {input, output} shown before the task; an output that is a
                                # list of calls ({name, arguments}) is shown as the assistant's tool calls when
                                # the chat offers tools ([]: as declining to call any)
    tools: tools.yaml           # optional: OpenAI-style tool schemas; the answer is then the tool calls

A `weights.yaml` in the agent folder (written by the `lora-sft` and `grpo` strategies, see `weights.py`) makes
the local model answer with that fine-tuned adapter.

A task whose input is `{"question": [messages], "functions": [schemas]}` (BFCL's shape) brings its own
conversation and tools; the answer is then the list of calls.
    params: {temperature: 0, max_tokens: 32}

Every call goes through the workspace's LLM gateway (cached, retried, recorded).
The trace records what the agent saw and said, never its prompts, so a critic
reading traces stays blind to the implementation.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from release_pipeline.config.release_yaml import load_yaml, read_text
from release_pipeline.config.weights import WEIGHTS_FILE, read_weights, served_model
from release_pipeline.errors import ConfigError
from release_pipeline.models import AgentResult, Artifact, Task, TrialContext
from release_pipeline.plugins.hookspecs import hookimpl

LLM_PARAMS = ("temperature", "max_tokens", "top_p", "stop", "tool_choice")
DEFAULT_PARAMS = {"temperature": 0.0, "max_tokens": 64}


def render(template: str, value: Any) -> str:
    """The template with `{input}` replaced (plain replacement: braces elsewhere stay as written)."""
    text = value if isinstance(value, str) else json.dumps(value)
    return template.replace("{input}", text)


NO_CALL = "None of the functions fits the question."  # what a demonstration of no call says


def tool_name(name: str) -> str:
    """A function's name as tool-calling APIs accept it (`[a-zA-Z0-9_-]`, 64 characters): `math.factorial` is
    offered as `math_factorial`."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", name)[:64]


def is_calls(value: Any) -> bool:
    """A list of function calls, `[{"name", "arguments"}]` (the empty list: no call)."""
    return isinstance(value, list) and all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in value)


def demo_turns(output: Any, with_tools: bool, index: int = 0) -> list[dict[str, Any]]:
    """A demonstration's answer as the assistant's turn: calls as tool calls (each with an empty result, which
    providers require after a call and which the local model is not shown) when the chat offers tools, else
    text."""
    if not (with_tools and is_calls(output)):
        return [{"role": "assistant", "content": output if isinstance(output, str) else json.dumps(output)}]
    if not output:
        return [{"role": "assistant", "content": NO_CALL}]
    calls = [
        {
            "id": f"demo{index}_{i}",
            "type": "function",
            "function": {"name": tool_name(c["name"]), "arguments": json.dumps(c.get("arguments") or {})},
        }
        for i, c in enumerate(output)
    ]
    results = [{"role": "tool", "tool_call_id": c["id"], "content": ""} for c in calls]
    return [{"role": "assistant", "content": "", "tool_calls": calls}, *results]


def is_function_task(value: Any) -> bool:
    """A function-calling task (BFCL's shape): its own conversation and the functions it may call."""
    return isinstance(value, dict) and isinstance(value.get("question"), list) and "functions" in value


def load_demos(path: Path) -> list[dict[str, Any]]:
    demos = load_yaml(path, "demonstrations") or []
    if not isinstance(demos, list) or not all(isinstance(d, dict) and {"input", "output"} <= set(d) for d in demos):
        raise ConfigError(f"{path}: demonstrations must be a list of {{input, output}} mappings")
    return demos


class PromptAgent:
    """Builds the chat from the artifact's files and asks the model once per trial."""

    def __init__(self, artifact: Artifact):
        m = artifact.manifest
        files = {k: artifact.path / v for k, v in m.files.items()}
        if "prompt" not in files:
            raise ConfigError(f"agent {artifact.agent!r}: the prompt adapter needs `prompt: <file>`")
        for key, path in files.items():
            if not path.is_file():
                raise ConfigError(f"agent {artifact.agent!r}: {key} file {path.name!r} not found")
        self.template = read_text(files["prompt"], "prompt file")
        self.system = read_text(files["system"], "system prompt file").strip() if "system" in files else ""
        self.demos = load_demos(files["demos"]) if "demos" in files else []
        self.tools = (load_yaml(files["tools"], "tools") or None) if "tools" in files else None
        weights = read_weights(artifact.path)
        if weights is not None and m.model and m.model != weights.base_model:
            raise ConfigError(
                f"agent {artifact.agent!r}: {WEIGHTS_FILE} was trained on {weights.base_model}, the manifest asks for "
                f"{m.model}"
            )
        self.model = served_model(weights) if weights else m.model
        self.params = {**DEFAULT_PARAMS, **{k: v for k, v in m.params.items() if k in LLM_PARAMS}}

    def messages(self, value: Any) -> list[dict[str, Any]]:
        chat: list[dict[str, Any]] = [{"role": "system", "content": self.system}] if self.system else []
        with_tools = bool(self.tools_for(value)[0])
        for i, demo in enumerate(self.demos):
            chat.append({"role": "user", "content": render(self.template, demo["input"])})
            chat += demo_turns(demo["output"], with_tools, i)
        if is_function_task(value):  # the task brings its own conversation
            turns = [dict(m) for m in value["question"]]
            for turn in turns:
                if turn.get("role") == "user":
                    turn["content"] = render(self.template, turn.get("content", ""))
            return chat + turns
        return chat + [{"role": "user", "content": render(self.template, value)}]

    def tools_for(self, value: Any) -> tuple[list[dict[str, Any]] | None, dict[str, str]]:
        """The tools of this call: the task's own functions when it brings them, else the manifest's.

        Tool names must match `[a-zA-Z0-9_-]`, so `math.factorial` is offered as `math_factorial`; the
        returned map turns answers back into the task's names.
        """
        if not is_function_task(value):
            return self.tools, {}
        tools, names = [], {}
        for fn in value["functions"]:
            safe = tool_name(fn["name"])
            names[safe] = fn["name"]
            params = json.loads(json.dumps(fn.get("parameters", {})).replace('"type": "dict"', '"type": "object"'))
            tools.append(
                {
                    "type": "function",
                    "function": {"name": safe, "description": fn.get("description", ""), "parameters": params},
                }
            )
        return tools, names

    def model_for(self, ctx: TrialContext) -> str:
        return self.model or ctx.models.get("agent", "")

    def planned_call(self, task: Task, ctx: TrialContext) -> dict[str, Any]:
        """The one LLM call a trial makes: what the budget's pre-flight estimate prices."""
        params = dict(self.params)
        if params.get("temperature"):
            params["seed"] = ctx.seed  # sampled answers differ by repeat, reproducibly
        tools, _ = self.tools_for(task.input)
        return {
            "role": "agent",
            "model": self.model_for(ctx),
            "messages": self.messages(task.input),
            "params": params,
            "tools": tools,
            "repeat": ctx.repeat,
        }

    def models(self, models: dict[str, str]) -> list[str]:
        """The model strings this agent will call, checked before a run starts."""
        return [self.model or models.get("agent", "")]

    async def run(self, task: Task, ctx: TrialContext) -> AgentResult:
        call = self.planned_call(task, ctx)
        reply = await ctx.llm.complete(**call)
        _, names = self.tools_for(task.input)
        calls = [{**c, "name": names.get(c["name"], c["name"])} for c in reply.tool_calls]
        output: Any = calls if call["tools"] else reply.content.strip()
        step = {"type": "model_output", "content": reply.content}
        if calls:
            step["tool_calls"] = calls
        trace = [{"type": "input", "content": task.input}, step]
        return AgentResult(output, trace, reply.tokens, reply.cost)

    def close(self) -> None:
        pass


@hookimpl
def release_register_agent_adapters(register):
    register("prompt", PromptAgent)
