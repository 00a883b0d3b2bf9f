"""Tool-calling and code agents on real benchmarks: local tool calls, dev references, fewshot demonstrations in
the model's own form, fine-tuning on structured answers, editable weights, and the strategy portfolio."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Cli, prompt_workspace

from release_pipeline.llm import providers
from release_pipeline.llm.tool_format import parse_answer, render_calls, render_chat

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


class ScriptedBackend:
    """A local model that answers from a script and keeps the plain chats it was given."""

    def __init__(self, *answers: str):
        self.answers = list(answers)
        self.default: Any = "I cannot help with that."  # or a function of the plain chat
        self.chats: list[list[dict[str, str]]] = []
        self.params: list[dict[str, Any]] = []

    def chat(self, messages, params, stop=None):
        self.chats.append(messages)
        self.params.append(params)
        answer = self.answers.pop(0) if self.answers else self.default
        return (answer(messages) if callable(answer) else answer), [], 10, 5

    def close(self) -> None:
        pass


@pytest.fixture
def scripted(monkeypatch):
    """`local/scripted` served by a ScriptedBackend (queue its answers with `.answers`)."""
    backend = ScriptedBackend()
    monkeypatch.setitem(providers._backends, "scripted", backend)
    real = providers.weights_path
    monkeypatch.setattr(providers, "weights_path", lambda name: Path(__file__) if name == "scripted" else real(name))
    return backend


def complete(model: str, messages: list, params: dict) -> tuple:
    return asyncio.run(providers.local_completion(model, messages, params))


# ----- 1. local tool calls ------------------------------------------------------------------------------


def test_the_local_model_gets_the_tools_in_its_own_format_and_its_calls_come_back_as_tool_calls(scripted):
    scripted.answers = ['<tool_call>[{"name": "get_weather", "arguments": {"city": "Paris"}}]</tool_call>']
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}]
    content, calls, _, _ = complete("local/scripted", chat, {"tools": [WEATHER, TIME], "max_tokens": 64})
    assert content == ""
    assert [c["function"]["name"] for c in calls] == ["get_weather"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}
    system = scripted.chats[0][0]
    assert system["role"] == "system" and system["content"].startswith("Be brief.")
    assert all(part in system["content"] for part in ("<tools>", '"get_weather"', "<tool_call>"))
    assert "tools" not in scripted.params[0] and scripted.params[0]["max_tokens"] == 64


def test_tool_choice_is_honoured(scripted):
    scripted.answers = ['<tool_call>[{"name": "get_time", "arguments": {}}]</tool_call>'] * 3
    chat = [{"role": "user", "content": "Hi"}]
    _, calls, _, _ = complete("local/scripted", chat, {"tools": [WEATHER], "tool_choice": "none"})
    assert calls == [] and "<tools>" not in json.dumps(scripted.chats[-1])  # none: no tools offered, none parsed
    complete("local/scripted", chat, {"tools": [WEATHER, TIME], "tool_choice": "required"})
    assert "MUST call at least one function" in scripted.chats[-1][0]["content"]
    named = {"type": "function", "function": {"name": "get_time"}}
    complete("local/scripted", chat, {"tools": [WEATHER, TIME], "tool_choice": named})
    system = scripted.chats[-1][0]["content"]
    assert '"get_time"' in system and '"get_weather"' not in system and "MUST call" in system


ROME = '{"city": "Rome"}'


def test_earlier_calls_in_the_chat_are_shown_in_the_call_format():
    chat = [
        {"role": "user", "content": "Weather in Rome?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "d0", "type": "function", "function": {"name": "get_weather", "arguments": ROME}}],
        },
        {"role": "tool", "tool_call_id": "d0", "content": ""},  # a demonstration's empty result: left out
        {"role": "user", "content": "And Oslo?"},
    ]
    plain = render_chat(chat, [WEATHER])
    assert [m["role"] for m in plain] == ["system", "user", "assistant", "user"]
    assert plain[2]["content"] == '<tool_call>[{"name": "get_weather", "arguments": {"city": "Rome"}}]</tool_call>'
    call = {"name": "f", "arguments": {"x": 1}}
    assert render_calls([call]) == f"<tool_call>[{json.dumps(call)}]</tool_call>"


@pytest.mark.parametrize(
    ("text", "names", "content"),
    [
        ('<tool_call>[{"name": "a", "arguments": {}}, {"name": "b", "arguments": {}}]</tool_call>', ["a", "b"], ""),
        ('Sure.\n<tool_call>{"name": "a", "arguments": {}}</tool_call>', ["a"], "Sure."),
        ('<tool_call>[{"name": "a", "arguments": {"x": 1}}]', ["a"], ""),  # out of tokens before the closing tag
        ('[{"name": "a", "arguments": {}}]', ["a"], ""),  # bare JSON calls
        ("<tool_call>[]</tool_call>", [], ""),  # no call, as the format says
        ("No function fits.", [], "No function fits."),
        ('<tool_call>[{"name": "a", "argu', [], '<tool_call>[{"name": "a", "argu'),  # broken: kept as text
    ],
)
def test_the_models_answer_is_parsed_into_calls(text, names, content):
    got_content, calls = parse_answer(text)
    assert [c["function"]["name"] for c in calls] == names and got_content == content
    assert all(c["type"] == "function" and isinstance(c["function"]["arguments"], str) for c in calls)


def test_a_prompt_agent_on_the_local_model_answers_a_bfcl_task_with_calls(tmp_path, scripted):
    """Through the public surface: `release run` of a prompt agent whose tasks bring their functions."""
    scripted.answers = ['<tool_call>[{"name": "math_factorial", "arguments": {"number": 5}}]</tool_call>']
    root = bfcl_workspace(tmp_path / "ws", model="local/scripted")
    run = Cli(root).json("run", "--split", "gate", "-k", "1")
    assert run["counts"]["pass"] == 1, run
    system = scripted.chats[0][0]["content"]
    assert '"math_factorial"' in system  # the task's function, offered under a tool-safe name


def bfcl_workspace(root: Path, *, model: str, tasks: list[dict] | None = None, **kwargs: Any) -> Path:
    """A prompt agent on a small BFCL-shaped YAML suite with the bfcl verifier."""
    fn = {
        "name": "math.factorial",
        "description": "Factorial of a number.",
        "parameters": {"type": "dict", "properties": {"number": {"type": "integer"}}, "required": ["number"]},
    }
    tasks = tasks or [
        {
            "id": "fact-5",
            "input": {"question": [{"role": "user", "content": "Factorial of 5?"}], "functions": [fn]},
            "expected": [{"math.factorial": {"number": [5]}}],
            "split": "gate",
            "metadata": {"category": "simple"},
        }
    ]
    tasks = [{**t, "verifier": {"type": "bfcl"}} for t in tasks]
    return prompt_workspace(root, tasks, model=model, params={"temperature": 0, "max_tokens": 64}, **kwargs)


# ----- 2. benchmark dev references ----------------------------------------------------------------------


def test_bfcl_dev_entries_carry_a_reference_answer_that_passes_and_other_splits_none():
    from release_pipeline.benchmarks import bfcl

    suite = bfcl.load("simple,multiple,parallel,parallel_multiple,live_simple,irrelevance@40", Path("."))
    verify = bfcl.bfcl({}, Path("."))
    dev = suite.split("dev")
    assert len(dev) == 6 * 16
    for task in dev:
        reference = task.metadata["reference"]
        assert verify(task, reference).passed, (task.id, reference)
        assert reference == [] if task.metadata["category"] == "irrelevance" else reference
    assert not any("reference" in t.metadata for t in suite.tasks if t.split != "dev")


def test_humaneval_dev_problems_carry_their_canonical_solution_and_other_splits_none():
    from conftest import require_isolation

    from release_pipeline.benchmarks import humaneval

    require_isolation()
    suite = humaneval.load("10", Path("."))
    verify = humaneval.humaneval({}, Path("."))
    dev = suite.split("dev")
    assert [t.id for t in dev] == ["HumanEval/0", "HumanEval/2", "HumanEval/5", "HumanEval/7"]
    for task in dev[:2]:
        assert task.metadata["reference"].startswith(task.input)  # the whole function, as code
        assert verify(task, task.metadata["reference"]).passed
    assert not any("reference" in t.metadata for t in suite.tasks if t.split != "dev")


# ----- 3. fewshot: calls as tool calls, code from references, never null ----------------------------------


def bundled_workspace(root: Path, agent: str, suite: str, **strategy: Any) -> Path:
    """The bundled `agent` on `suite`, on the scripted local model, with the heuristic critic and one repeat."""
    import shutil

    from conftest import REPO, commit_all, git

    root.mkdir(parents=True)
    shutil.copytree(REPO / "agents" / agent, root / "agents" / agent)
    manifest = yaml.safe_load((root / "agents" / agent / "agent.yaml").read_text())
    manifest["model"] = "local/scripted"
    (root / "agents" / agent / "agent.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    shutil.copy(REPO / "gate-policy.yaml", root / "gate-policy.yaml")
    config = {
        "agents": {agent: {"path": f"agents/{agent}", "suite": suite, **({"strategy": strategy} if strategy else {})}},
        "critic": "heuristic",
        "run": {"repeats": 1, "concurrency": 2, "timeout_s": 60},
        "models": {"agent": "local/scripted", "critic": "local/scripted", "synthesizer": "local/scripted"},
        "policy": "gate-policy.yaml",
    }
    (root / "release.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (root / ".gitignore").write_text(".release/\n")
    git(root, "init", "-q")
    commit_all(root, agent)
    Cli(root)("init")
    return root


def file_at(root: Path, ref: str, path: str) -> str:
    from conftest import git

    return git(root, "show", f"{ref}:{path}")


def test_fewshot_shows_a_tool_calling_agent_its_calls_as_tool_calls(tmp_path, scripted):
    root = bundled_workspace(tmp_path / "ws", "caller", "bfcl:simple,irrelevance@5", name="fewshot", per_iteration=2)
    cli = Cli(root)
    made = cli.json("candidate", "--strategy", "fewshot")
    demos = yaml.safe_load(file_at(root, made["branch"], "agents/caller/demos.yaml"))
    assert len(demos) == 2 and all(isinstance(d["output"], list) and d["output"] for d in demos), demos
    first = demos[0]["output"][0]
    assert set(first) == {"name", "arguments"} and isinstance(first["arguments"], dict)
    scripted.chats.clear()
    cli.json("run", "--version", f"v{made['number']}", "--split", "gate", "-k", "1")
    shown = [m["content"] for m in scripted.chats[0] if m["role"] == "assistant"]
    assert len(shown) == 2 and all(a.startswith('<tool_call>[{"name": "') for a in shown), shown
    assert not any("&#34;" in a or '\\"' in a for a in shown)  # calls, not JSON text escaped into prose


def test_fewshot_shows_a_code_agent_the_dev_splits_reference_solutions(tmp_path, scripted):
    from conftest import require_isolation

    require_isolation()
    scripted.default = "    return None\n"
    root = bundled_workspace(tmp_path / "ws", "coder", "humaneval:5", name="fewshot", per_iteration=2)
    made = Cli(root).json("candidate", "--strategy", "fewshot")
    demos = yaml.safe_load(file_at(root, made["branch"], "agents/coder/demos.yaml"))
    assert [d["input"].split("def ")[-1].split("(")[0] for d in demos] == ["has_close_elements", "truncate_number"]
    assert all(d["output"].startswith(d["input"]) and "return" in d["output"] for d in demos)


def test_fewshot_never_shows_a_null_answer_and_says_what_it_left_out(tmp_path, fake_llm):
    tasks = [
        {"id": f"t{i}", "input": f"Question {i}?", "split": "dev" if i < 3 else "gate", "tags": ["q"]} for i in range(5)
    ]
    number = {"type": "json_schema", "schema": {"type": "integer"}}  # judged without an expected answer
    tasks = [{**t, "verifier": number} for t in tasks]
    tasks[0] = {**tasks[0], "expected": "yes", "verifier": {"type": "exact"}}
    fake_llm.default = "nope"
    root = prompt_workspace(tmp_path / "ws", tasks, run={"repeats": 1})
    result = Cli(root)("candidate", "--strategy", "fewshot", "--json")
    made = json.loads(result.stdout)
    demos = yaml.safe_load(file_at(root, made["branch"], "agents/toy/demos.yaml"))
    assert demos == [{"input": "Question 0?", "output": "yes"}]
    assert "fewshot: left out 2 demonstration(s): no answer to show" in result.stderr
    assert "t1, t2" in result.stderr
