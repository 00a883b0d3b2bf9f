"""LLM stages with a scripted model: the prompt agent, cache, critic blindness, faults, strategies, budgets."""

from __future__ import annotations

import contextlib
import json
import os

import litellm
import pytest
from conftest import Cli, prompt_workspace, run_release
from test_bad_input import assert_one_line_error

from release_pipeline.llm.gateway import LLMGateway, is_retryable, retry_after

CAPITALS = {
    "France": "Paris",
    "Italy": "Rome",
    "Japan": "Tokyo",
    "Spain": "Madrid",
    "Peru": "Lima",
    "Chile": "Santiago",
}
TASKS = [
    {
        "id": f"cap-{c.lower()}",
        "input": f"Capital of {c}?",
        "expected": a,
        "split": "dev" if i % 2 else "gate",
        "tags": ["capital"],
    }
    for i, (c, a) in enumerate(CAPITALS.items())
]


def wordy_unless_shown(messages):
    """Answers in a sentence, unless the chat carries demonstrations: then in one word, like them."""
    country = messages[-1]["content"].split("of ")[-1].rstrip("?\n")
    answer = CAPITALS.get(country, "?")
    demos = sum(1 for m in messages if m["role"] == "assistant")
    return answer if demos else f"The capital of {country} is {answer}."


def unsure(messages):
    """Wrong in substance: an answer only a model can label (the harness knows nothing for certain of it)."""
    return "I am not sure."


def agent_requests(fake):
    return [r for r in fake.requests if r["role"] == "agent"]


def test_prompt_agent_runs_through_the_gateway_and_a_rerun_makes_no_call(tmp_path, fake_llm):
    fake_llm.default = wordy_unless_shown
    root = prompt_workspace(tmp_path / "ws", TASKS)
    cli = Cli(root)
    first = cli.json("run")
    assert first["counts"] == {"pass": 0, "fail": 9, "error": 0}
    calls = len(agent_requests(fake_llm))
    assert calls == 3  # 3 tasks x 3 repeats, decoded greedily: repeats are copies, one call a task
    request = next(r for r in agent_requests(fake_llm) if "Italy" in r["messages"][-1]["content"])
    assert request["messages"][0] == {"role": "system", "content": "You answer in one word. CANARY-7f3a"}
    assert request["messages"][-1]["content"] == "Question: Capital of Italy?\n"
    assert request["params"]["max_tokens"] == 8
    again = cli.json("run", "--fresh")
    assert again["id"] != first["id"] and again["executed"] == 9
    assert len(agent_requests(fake_llm)) == calls  # every answer came from the store
    from release_pipeline.workspace import Workspace

    recorded = Workspace(root).store.llm_calls("agent")
    assert len(recorded) == 3 and all(r["prompt_tokens"] > 0 for r in recorded)
    run = Workspace(root).store.run(first["id"])
    assert run.to_dict()["sampling"] == {"temperature": 0.0, "top_p": None, "seeded": False, "greedy": True}


def test_sampled_repeats_are_independent_calls_each_with_its_own_seed(tmp_path, fake_llm):
    fake_llm.default = wordy_unless_shown
    root = prompt_workspace(tmp_path / "ws", TASKS, params={"temperature": 0.7, "max_tokens": 8})
    first = Cli(root).json("run")
    seeds = [r["params"]["seed"] for r in agent_requests(fake_llm)]
    assert len(seeds) == 9 and len(set(seeds)) == 9  # a new sample per repeat, not a copy
    from release_pipeline.workspace import Workspace

    run = Workspace(root).store.run(first["id"])
    assert run.to_dict()["sampling"] == {"temperature": 0.7, "top_p": None, "seeded": True, "greedy": False}
    Cli(root).json("run", "--fresh")
    assert len(agent_requests(fake_llm)) == 9  # the seed is in the cache key: a rerun is still free


def test_a_critic_label_must_come_from_the_vocabulary_and_fit_the_verdict():
    from release_pipeline.builtin.llm_critic import ASKED_LABELS, parse_symptom

    answer = {"description": "it said a sentence", "severity": "low"}
    assert parse_symptom(json.dumps({**answer, "label": "verbose_answer"}), ASKED_LABELS)[0] is not None
    for label in ("timeout", "empty_answer", "crash", "verbose answer"):  # a wrong answer is none of these
        found, why = parse_symptom(json.dumps({**answer, "label": label}), ASKED_LABELS)
        assert found is None and "is not one of" in why


def test_canary_in_the_agent_prompt_never_reaches_the_critic(tmp_path, fake_llm):
    fake_llm.default = unsure
    root = prompt_workspace(tmp_path / "ws", TASKS)
    cli = Cli(root)
    cli.json("run")
    fake_llm.default = lambda m: (
        json.dumps(
            {
                "label": "verbose_answer",
                "description": "a sentence, not a word",
                "evidence": ["trace[1]"],
                "severity": "medium",
            }
        )
        if "failed attempt" in m[0]["content"]
        else unsure(m)
    )
    symptoms = cli.json("critic", "--critic", "llm")
    assert {s["label"] for s in symptoms} == {"verbose_answer"} and symptoms[0]["critic"] == "llm:fake/critic"
    critic_requests = fake_llm.by_role("critic")
    assert critic_requests, "the critic asked the model"
    assert all("CANARY-7f3a" not in json.dumps(r["messages"]) for r in critic_requests)
    assert any("CANARY-7f3a" in json.dumps(r["messages"]) for r in agent_requests(fake_llm))
    from release_pipeline.workspace import Workspace

    stored = Workspace(root).store.llm_calls("critic")
    assert stored and all("CANARY-7f3a" not in json.dumps(r["request"]) for r in stored)
    # what it saw: the task, the visible trace, the verdict and the rubric
    seen = critic_requests[0]["messages"][1]["content"]
    assert "Capital of" in seen and "Verdict: fail" in seen and "trace[1]" in seen


def test_critic_retries_malformed_answers_then_falls_back(tmp_path, fake_llm):
    fake_llm.default = unsure
    root = prompt_workspace(tmp_path / "ws", TASKS[:2])  # one dev task: its three greedy repeats share one call
    cli = Cli(root)
    cli.json("run")
    fake_llm.queue(
        "not json",
        '{"label": "x"}',
        json.dumps({"label": "verbose_answer", "description": "too long", "severity": "low"}),
    )
    symptoms = cli.json("critic", "--critic", "llm")
    assert {s["label"] for s in symptoms} == {"verbose_answer"} and len(symptoms) == 3  # third attempt was valid
    assert len(fake_llm.by_role("critic")) == 3  # the copies were asked once
    retry = fake_llm.by_role("critic")[1]["messages"]
    assert retry[-1]["role"] == "user" and "not valid" in retry[-1]["content"]

    other = prompt_workspace(tmp_path / "other", TASKS[2:4])
    Cli(other).json("run")
    fake_llm.queue("still not json", "nope", json.dumps({"label": "timeout", "description": "d", "severity": "low"}))
    fallback = Cli(other).json("critic", "--critic", "llm")
    assert fallback and all(s["critic"] == "heuristic (llm fallback)" for s in fallback)


def test_near_duplicate_labels_count_as_one_pattern():
    """Critic plugins may label in words of their own: near-duplicates still count as one pattern."""
    from release_pipeline.labels import cluster_labels

    labels = ["wrong format", "format_error", "Format error", "wrong_value", "format errors", "wrong format"]
    clusters = cluster_labels(labels)
    counts: dict[str, int] = {}
    for label in labels:
        counts[clusters[label]] = counts.get(clusters[label], 0) + 1
    assert counts == {"format_error": 5, "wrong_value": 1}


def test_provider_faults_are_retried_honouring_retry_after(tmp_path, fake_llm):
    fake_llm.default = wordy_unless_shown
    root = prompt_workspace(tmp_path / "ws", TASKS[:1], run={"repeats": 1})

    class Limited(litellm.RateLimitError):
        def __init__(self):
            super().__init__("slow down", llm_provider="fake", model="agent")
            self.litellm_response_headers = {"retry-after": "0.01"}

    fake_llm.queue(
        Limited(),
        litellm.InternalServerError("boom", llm_provider="fake", model="agent"),
        "The capital of France is Paris.",
    )
    out = Cli(root).json("run", "--split", "gate")
    assert out["counts"] == {"pass": 0, "fail": 1, "error": 0}  # answered (wrongly) on the third try
    assert len(agent_requests(fake_llm)) == 3


def test_provider_down_is_an_error_trial_never_a_failure(tmp_path, fake_llm, monkeypatch):
    root = prompt_workspace(tmp_path / "ws", TASKS[:1], run={"repeats": 1})
    monkeypatch.setattr(LLMGateway, "__init__", _fast_gateway_init(LLMGateway.__init__))
    fake_llm.default = lambda m: litellm.ServiceUnavailableError("down", llm_provider="fake", model="agent")
    out = Cli(root).json("run", "--split", "gate")
    assert out["counts"] == {"pass": 0, "fail": 0, "error": 1}
    assert len(agent_requests(fake_llm)) == 5  # every attempt was made
    fake_llm.default = lambda m: litellm.AuthenticationError("bad key", llm_provider="fake", model="agent")
    out = Cli(root).json("run", "--split", "gate", "--fresh")
    assert out["counts"]["error"] == 1 and len(agent_requests(fake_llm)) == 6  # not worth retrying


def _fast_gateway_init(original):
    def init(self, store, **kwargs):
        async def no_wait(_):
            return None

        original(self, store, sleep=no_wait)

    return init


def test_retry_helpers():
    err = litellm.RateLimitError("x", llm_provider="p", model="m")
    assert is_retryable(err) and retry_after(err) is None
    err.litellm_response_headers = {"retry-after": "7"}
    assert retry_after(err) == 7.0
    assert not is_retryable(litellm.BadRequestError("x", llm_provider="p", model="m"))
    assert not is_retryable(ValueError("x"))


def test_fewshot_strategy_turns_dev_examples_into_demonstrations(tmp_path, fake_llm):
    fake_llm.default = wordy_unless_shown
    root = prompt_workspace(tmp_path / "ws", TASKS, extra={})
    import yaml

    config = yaml.safe_load((root / "release.yaml").read_text())
    config["strategy"] = {"name": "fewshot", "per_iteration": 2}
    config["critic"] = "heuristic"
    (root / "release.yaml").write_text(yaml.safe_dump(config))
    from conftest import commit_all

    commit_all(root, "fewshot")
    steps = Cli(root).json("promote", "--iterations", "1")
    assert steps[0]["decision"] == "accepted" and steps[0]["promoted"]
    assert sorted(steps[0]["fixes"]) == ["cap-france", "cap-japan", "cap-peru"] and steps[0]["regressions"] == []
    shown = Cli(root).json("show", "v2")
    assert shown["changed_files"] == ["agents/toy/demos.yaml"]
    demos = [line for line in shown["diff"].splitlines() if line.startswith("+- input")]
    assert len(demos) == 2 and all("Capital of" in d for d in demos)  # dev tasks only, with their answers
    assert "+  output: Rome" in shown["diff"] or "+  output: Santiago" in shown["diff"]


def test_llm_edit_validates_and_retries_the_synthesizer(tmp_path, fake_llm):
    fake_llm.default = wordy_unless_shown
    root = prompt_workspace(tmp_path / "ws", TASKS)
    import yaml

    config = yaml.safe_load((root / "release.yaml").read_text())
    config["strategy"] = {"name": "llm-edit"}
    config["critic"] = "heuristic"
    (root / "release.yaml").write_text(yaml.safe_dump(config))
    from conftest import commit_all

    commit_all(root, "llm-edit")
    good_demos = "- input: Capital of Chile?\n  output: Santiago\n"
    synthesizer = iter(
        [
            "Sure! Here is my plan.",
            json.dumps({"intent": "widen", "files": {"agent.yaml": "name: toy"}}),
            json.dumps({"intent": "Show one answer", "files": {"demos.yaml": good_demos}}),
        ]
    )
    fake_llm.default = lambda m: next(synthesizer) if "editing its files" in m[0]["content"] else wordy_unless_shown(m)
    steps = Cli(root).json("promote", "--iterations", "1")
    synth = fake_llm.by_role("synthesizer")
    assert len(synth) == 3  # two answers sent back with the reason, then a valid one
    assert (
        "not one of the editable files" in synth[2]["messages"][-1]["content"]
        or "{input}" in synth[2]["messages"][-1]["content"]
    )
    assert "--- prompt.txt" in synth[0]["messages"][1]["content"]  # it sees the editable files
    assert "Engineering spec" in synth[0]["messages"][1]["content"]
    assert steps[0]["decision"] == "accepted"
    assert Cli(root).json("show", "v2")["changed_files"] == ["agents/toy/demos.yaml"]


def test_unknown_model_and_missing_key_are_one_line_errors(tmp_path, fake_llm, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    root = prompt_workspace(tmp_path / "a", TASKS, model="nosuchprovider/model-x")
    assert_one_line_error(run_release(root, "run"), "unknown model 'nosuchprovider/model-x'")
    root = prompt_workspace(tmp_path / "b", TASKS, model="openai/gpt-4o-mini")
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    assert_one_line_error(run_release(root, "run", env=env), "OPENAI_API_KEY")
    assert Cli(root).json("show", "v1")["runs"] == []  # nothing was started


def test_budget_too_small_refuses_before_any_call(tmp_path, fake_llm):
    root = prompt_workspace(tmp_path / "ws", TASKS, model="openai/gpt-4o-mini")
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-not-a-key"}
    result = run_release(root, "run", "--budget", "0.000001", env=env)
    assert_one_line_error(result, "would cost about $", "9 uncached LLM calls", "nothing was run")
    assert Cli(root).json("show", "v1")["runs"] == []
    # a local model costs nothing: any budget covers it
    fake_root = prompt_workspace(tmp_path / "free", TASKS)
    fake_llm.default = wordy_unless_shown
    assert Cli(fake_root).json("run", "--budget", "0")["counts"]["fail"] == 9


def test_secret_keys_never_reach_the_store(tmp_path, fake_llm, monkeypatch):
    monkeypatch.setenv("FAKE_API_KEY", "sk-secret-123456")
    fake_llm.default = wordy_unless_shown
    root = prompt_workspace(tmp_path / "ws", TASKS)
    Cli(root).json("run")
    assert b"sk-secret-123456" not in (root / ".release" / "release.db").read_bytes()


def test_tools_turn_the_answer_into_calls(tmp_path, fake_llm):
    tools = (
        "- type: function\n  function:\n    name: lookup_capital\n    parameters:\n      type: object\n"
        "      properties: {country: {type: string}}\n"
    )
    tasks = [
        {
            "id": "t1",
            "input": "Capital of France?",
            "split": "dev",
            "expected": [{"name": "lookup_capital", "arguments": {"country": "France"}}],
        }
    ]
    root = prompt_workspace(tmp_path / "ws", tasks, files={"tools.yaml": tools}, run={"repeats": 1})
    import yaml

    manifest = yaml.safe_load((root / "agents/toy/agent.yaml").read_text())
    manifest["tools"] = "tools.yaml"
    manifest["editable"].append("tools.yaml")
    (root / "agents/toy/agent.yaml").write_text(yaml.safe_dump(manifest))
    suite = yaml.safe_load((root / "specs/toy.yaml").read_text())
    suite["verifier"] = {"type": "exact"}
    (root / "specs/toy.yaml").write_text(yaml.safe_dump(suite))
    from conftest import commit_all, git

    commit_all(root, "tools")
    git(root, "update-ref", "-d", "refs/heads/canonical/toy")
    git(root, "tag", "-d", "toy/v1")
    (root / ".release" / "release.db").unlink()
    Cli(root)("init")
    fake_llm.default = {"tool_calls": [{"name": "lookup_capital", "arguments": {"country": "France"}}]}
    assert Cli(root).json("run")["counts"]["pass"] == 1
    assert agent_requests(fake_llm)[0]["params"]["tools"][0]["function"]["name"] == "lookup_capital"


@pytest.mark.slow
def test_the_local_model_improves_the_bundled_prompt_agent(tmp_path):
    """The real thing, offline: SmolLM2 on llama.cpp, one iteration of the bundled qa example."""
    import shutil

    import yaml
    from conftest import REPO, commit_all, git

    root = tmp_path / "ws"
    root.mkdir()
    for name in ("agents", "specs", "gate-policy.yaml"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    config = yaml.safe_load((REPO / "release.yaml").read_text())
    config["agents"] = {"qa": config["agents"]["qa"]}
    (root / "release.yaml").write_text(yaml.safe_dump(config))
    (root / ".gitignore").write_text(".release/\n")
    git(root, "init", "-q")
    commit_all(root, "qa")
    cli = Cli(root)
    cli("init")
    steps = cli.json("promote", "--iterations", "1")
    assert steps[0]["decision"] == "accepted", steps[0]["reasons"]
    assert len(steps[0]["fixes"]) >= 3 and steps[0]["regressions"] == []
    from release_pipeline.workspace import Workspace

    calls = Workspace(root).store.llm_calls()
    assert {c["role"] for c in calls} == {"agent", "critic"}
    before = len(calls)
    cli.json("run", "--version", "v1", "--fresh")  # v1's dev run again: every answer comes from the store
    assert len(Workspace(root).store.llm_calls()) == before


def test_a_hung_provider_a_long_retry_after_and_a_malformed_answer_are_errors(tmp_path, fake_llm):
    """The provider's faults are `error` trials, never the agent's failures (issue 7, item 5)."""
    from fake_llm import HANG, MALFORMED

    root = prompt_workspace(tmp_path / "ws", TASKS[:1], run={"repeats": 1, "timeout_s": 2})

    class Throttled(litellm.RateLimitError):
        def __init__(self):
            super().__init__("slow down", llm_provider="fake", model="agent")
            self.litellm_response_headers = {"retry-after": "30"}

    for reply, reason in ((HANG, "provider_timeout"), (Throttled(), "infrastructure"), (MALFORMED, "infrastructure")):
        fake_llm.queue(reply)
        start = __import__("time").monotonic()
        out = Cli(root).json("run", "--split", "gate", "--fresh")
        assert out["counts"] == {"pass": 0, "fail": 0, "error": 1}, (reply, out)
        assert __import__("time").monotonic() - start < 20  # nobody waited out the 30 s
        (trial,) = Cli(root).json("show", "--run", str(out["id"]))["trials"]
        assert trial["reason"] == reason, trial


def test_a_request_the_provider_refuses_is_the_agents_failure(tmp_path, fake_llm):
    """A 400 (malformed, too long, not allowed) is caused by the agent's own request: a `fail`, not an `error`."""
    root = prompt_workspace(tmp_path / "ws", TASKS[:1], run={"repeats": 1})
    fake_llm.queue(litellm.BadRequestError("context too long", llm_provider="fake", model="agent"))
    out = Cli(root).json("run", "--split", "gate")
    assert out["counts"] == {"pass": 0, "fail": 1, "error": 0}
    (trial,) = Cli(root).json("show", "--run", str(out["id"]))["trials"]
    assert trial["reason"] == "request_rejected" and len(agent_requests(fake_llm)) == 1  # not retried


def test_a_prompt_too_long_for_the_local_model_is_the_candidates_failure(tmp_path):
    """The real local model with a 256-token window: an over-long prompt fails the trial, never an `error`."""
    long_system = "You answer in one word. " + "Remember the rules of capitals and their countries. " * 60
    root = prompt_workspace(
        tmp_path / "ws", TASKS[:2], model="local/smollm2", files={"system.txt": long_system}, run={"repeats": 1}
    )
    result = run_release(root, "run", "--json", env={**os.environ, "RELEASE_LOCAL_CONTEXT": "256"})
    assert result.returncode == 0, result.stderr[-500:]
    run = json.loads(result.stdout)
    assert run["counts"] == {"pass": 0, "fail": 1, "error": 0}
    (trial,) = Cli(root).json("show", "--run", str(run["id"]))["trials"]
    assert trial["reason"] == "request_rejected" and "context" in trial["feedback"].lower(), trial


def test_the_llm_critic_shows_how_far_it_is(tmp_path, fake_llm, monkeypatch):
    fake_llm.default = unsure
    cli = Cli(prompt_workspace(tmp_path / "ws", TASKS))
    cli.json("run")
    bars: list[tuple[str, int, list[int]]] = []

    @contextlib.contextmanager
    def recording(description: str, total: int):
        steps: list[int] = []
        bars.append((description, total, steps))
        yield steps.append

    monkeypatch.setattr("release_pipeline.cli.commands.critic.progress_for", lambda json_output: recording)
    fake_llm.default = lambda m: (
        json.dumps({"label": "wrong_answer", "description": "d", "evidence": ["trace[1]"], "severity": "low"})
        if "failed attempt" in m[0]["content"]
        else unsure(m)
    )
    symptoms = cli.json("critic", "--critic", "llm")
    failed = len({s["trial_id"] for s in symptoms})  # one step per failed trial, asked or answered from the cache
    assert failed and bars == [("critic", failed, [1] * failed)]
