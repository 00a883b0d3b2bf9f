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


def bundled_workspace(
    root: Path,
    agent: str,
    suite: str,
    editable: list[str] | None = None,
    model: str = "local/scripted",
    **strategy: Any,
) -> Path:
    """The bundled `agent` on `suite`, on the scripted local model, with the heuristic critic and one repeat."""
    import shutil

    from conftest import REPO, commit_all, git

    root.mkdir(parents=True)
    shutil.copytree(REPO / "agents" / agent, root / "agents" / agent)
    manifest = yaml.safe_load((root / "agents" / agent / "agent.yaml").read_text())
    manifest["model"] = model
    manifest["editable"] = manifest["editable"] if editable is None else editable
    (root / "agents" / agent / "agent.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    shutil.copy(REPO / "gate-policy.yaml", root / "gate-policy.yaml")
    config = {
        "agents": {agent: {"path": f"agents/{agent}", "suite": suite, **({"strategy": strategy} if strategy else {})}},
        "critic": "heuristic",
        "run": {"repeats": 1, "concurrency": 2, "timeout_s": 60},
        "models": {"agent": model, "critic": model, "synthesizer": model},
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


# ----- 4. fine-tuning on structured answers, one progress bar ----------------------------------------------

HAVE_EXTRA = all(
    __import__("importlib").util.find_spec(m) for m in ("torch", "transformers", "peft", "trl", "gguf", "datasets")
)


def test_sft_trains_a_tool_calling_agent_on_dev_reference_calls_in_the_call_format(tmp_path, scripted):
    """What lora-sft trains on, as the strategy reads it from the candidate context: the chat the model is
    served (tools in the system prompt) and the dev task's reference calls in the tool-call format."""
    from release_pipeline.finetune.examples import agent_output, contrast_prompts, sft_prompts
    from release_pipeline.pipeline import Pipeline
    from release_pipeline.stages.iterate import candidate_context, propose
    from release_pipeline.workspace import Workspace

    root = bundled_workspace(tmp_path / "ws", "caller", "bfcl:simple,irrelevance@5")
    ws = Workspace(root)
    agent = ws.agent("caller")
    step = propose(Pipeline(ws, agent), strategy="fewshot")  # the dev run, critic and spec a strategy starts from
    ctx = candidate_context(ws, agent, step.base, step.spec, step.spec.run_id, "lora-sft")
    prompts = {p.task_id: p for p in sft_prompts(ctx)}
    assert sorted(prompts) == ["irrelevance_0", "irrelevance_2", "simple_python_0", "simple_python_2"]
    simple = prompts["simple_python_0"]
    assert simple.source == "reference" and "<tools>" in simple.messages[0]["content"]
    assert simple.answer.startswith('<tool_call>[{"name": "calculate_triangle_area", "arguments": {')
    task = next(t for t in ws.suite(agent).tasks if t.id == "simple_python_0")
    assert ws.verifiers(task)(task, agent_output(simple.answer, simple.names)).passed  # the target passes
    assert prompts["irrelevance_0"].answer == "<tool_call>[]</tool_call>"  # passed by calling nothing
    # each call target's question is also offered functions that are not its own, and answered with no call
    contrasts = contrast_prompts(ctx, list(prompts.values()), seed=0)
    assert sorted(c.task_id.split("/")[0] for c in contrasts) == ["simple_python_0", "simple_python_2"]
    for c in contrasts:
        question, other = c.task_id.split("/")
        assert c.source == "contrast" and c.answer == "<tool_call>[]</tool_call>"
        assert c.messages[-1] == prompts[question].messages[-1]  # the same question
        assert c.messages[0] != prompts[question].messages[0] and other != question  # other functions
        assert set(c.names or {}).isdisjoint(prompts[question].names or {})


def test_sft_trains_a_code_agent_on_the_reference_solutions_as_code(tmp_path, scripted):
    from conftest import require_isolation

    from release_pipeline.finetune.examples import sft_prompts
    from release_pipeline.pipeline import Pipeline
    from release_pipeline.stages.iterate import candidate_context, propose
    from release_pipeline.workspace import Workspace

    require_isolation()
    scripted.default = "    return None\n"
    root = bundled_workspace(tmp_path / "ws", "coder", "humaneval:5")
    ws = Workspace(root)
    agent = ws.agent("coder")
    step = propose(Pipeline(ws, agent), strategy="fewshot")
    prompts = sft_prompts(candidate_context(ws, agent, step.base, step.spec, step.spec.run_id, "lora-sft"))
    assert [p.task_id for p in prompts] == ["HumanEval/0", "HumanEval/2"]
    assert all(p.answer.startswith("from typing") or p.answer.startswith("\n\ndef") for p in prompts)
    assert all("def " in p.answer and "return" in p.answer and p.names is None for p in prompts)


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_EXTRA, reason="needs the finetune extra (make test installs it)")
def test_lora_sft_makes_a_caller_candidate_showing_one_progress_bar_and_no_logs(tmp_path, scripted, monkeypatch):
    """Real LoRA SFT of SmolLM2 (two steps) for the bundled caller: no loss lines, warnings or library bars."""
    monkeypatch.setitem(providers._backends, "smollm2", scripted)  # the dev run answers from the script
    root = bundled_workspace(tmp_path / "ws", "caller", "bfcl:simple,irrelevance@5", model="local/smollm2")
    result = Cli(root)("candidate", "--strategy", "lora-sft", "-o", "steps=2", "-o", "batch_size=2", "--json")
    made = json.loads(result.stdout)
    assert "2 passing dev answers, 2 dev reference answers" in made["intent"], made["intent"]
    weights = yaml.safe_load(file_at(root, made["branch"], "agents/caller/weights.yaml"))
    assert weights["method"] == "lora-sft" and weights["summary"]["steps"] == 2
    noise = ("'loss'", "Warning", "warn", "it/s]", "Converting", "Loading weights", "Writing model shards")
    assert not [n for n in noise if n in result.stderr], result.stderr


# ----- 5. the bundled agents take fine-tuned weights; a strategy checks before it trains --------------------


def test_the_bundled_caller_and_coder_can_take_fine_tuned_weights():
    from conftest import REPO

    from release_pipeline.config.manifest import is_editable, load_manifest

    for agent in ("caller", "coder"):
        assert is_editable(load_manifest(REPO / "agents" / agent), "weights.yaml"), agent


@pytest.mark.parametrize("strategy", ["lora-sft", "grpo"])
def test_a_fine_tuning_strategy_refuses_an_agent_without_editable_weights_before_training(tmp_path, scripted, strategy):
    editable = ["system.txt", "prompt.txt", "demos.yaml"]
    root = bundled_workspace(tmp_path / "ws", "caller", "bfcl:simple,irrelevance@5", editable=editable)
    result = Cli(root)("candidate", "--strategy", strategy, code=2)
    assert f"{strategy}: agent 'caller' cannot take fine-tuned weights" in result.stderr
    assert len(result.stderr.strip().splitlines()[-1:]) == 1 and "Traceback" not in result.stderr
    assert not (root / ".release" / "blobs").exists()  # nothing was trained or converted


# ----- 6. the strategy portfolio, exit codes, specs recorded once ------------------------------------------


def test_promote_moves_through_the_portfolio_and_says_why(workspace):
    from conftest import commit_all

    config = yaml.safe_load((workspace / "release.yaml").read_text())
    config["agents"]["calc"]["strategy"] = [
        {"name": "patch-queue", "patches": ["specs/candidates/01-percent-and-plain-digits.patch"]},
        {"name": "patch-queue", "patches": ["specs/candidates/02-true-division.patch"]},
    ]
    (workspace / "release.yaml").write_text(yaml.safe_dump(config))
    commit_all(workspace, "a portfolio")
    cli = Cli(workspace)
    result = cli("promote", "--iterations", "4", "--json")
    steps = json.loads(result.stdout)
    assert [(s["candidate"], s["decision"], s["promoted"]) for s in steps] == [
        (2, "accepted", True),
        (None, None, False),  # the first strategy has nothing more: the next one takes over
        (3, "rejected", False),  # the last one keeps going while it has something to propose
        (None, None, False),
    ]
    assert steps[1]["moved_on"].startswith("patch-queue: strategy 'patch-queue' has nothing more to propose")
    assert "moving on from patch-queue to patch-queue: strategy 'patch-queue' has nothing more" in result.stderr
    assert steps[1]["spec"] == steps[2]["spec"] != steps[0]["spec"]  # v2's one dev run: its spec recorded once
    assert "stopped after iteration 4: patch-queue (the last strategy listed)" in result.stderr
    assert "promoted: v2" in result.stderr
    again = cli("promote", "--iterations", "1", "--json", code=5)  # nothing left: nothing promoted
    assert json.loads(again.stdout)[0]["candidate"] is None and "nothing was promoted" in again.stderr


def test_promote_help_and_readme_document_the_nothing_promoted_exit_code():
    from conftest import REPO

    result = Cli(REPO)("promote", "--help")
    assert "5 when none was" in " ".join(result.stdout.split())
    readme = (REPO / "README.md").read_text()
    assert "| nothing promoted | 5 |" in readme


@pytest.mark.parametrize("strategy", [[], [{"per_iteration": 2}], ["fewshot"]])
def test_a_malformed_portfolio_is_one_line(workspace, strategy):
    from conftest import run_release
    from test_bad_input import assert_one_line_error

    config = yaml.safe_load((workspace / "release.yaml").read_text())
    config["agents"]["calc"]["strategy"] = strategy
    (workspace / "release.yaml").write_text(yaml.safe_dump(config))
    assert_one_line_error(run_release(workspace, "promote", "--iterations", "2"), "release.yaml", "strategy")
