"""Benchmark suites: oracle answers pass through our runner, sandbox and verifiers; corrupted ones fail."""

from __future__ import annotations

import copy
import shutil
import sys

import pytest
import yaml
from conftest import DATA, Cli, commit_all, make_workspace

from release_pipeline.benchmarks.bfcl import CATEGORIES, bfcl, calls_of
from release_pipeline.benchmarks.bfcl import load as load_bfcl
from release_pipeline.benchmarks.humaneval import humaneval, load, problems

sys.path.insert(0, str(DATA))
from bfcl_oracle import oracle_calls  # noqa: E402  (a test helper beside the data it reads)


def benchmark_workspace(tmp_path, suite: str, agent_file: str):
    root = make_workspace(tmp_path / "ws", example=False)
    agent = root / "agents" / "oracle"
    agent.mkdir(parents=True)
    shutil.copy(DATA / agent_file, agent / "agent.py")
    (agent / "agent.yaml").write_text(
        yaml.safe_dump({"name": "oracle", "adapter": "callable", "entry": "agent:solve", "editable": ["agent.py"]})
    )
    (root / "release.yaml").write_text(
        yaml.safe_dump(
            {
                "agents": {"oracle": {"path": "agents/oracle", "suite": suite}},
                "run": {"repeats": 1, "concurrency": 4, "timeout_s": 60},
                "critic": "heuristic",
            }
        )
    )
    from release_pipeline.config.policy import default_policy_text

    (root / "gate-policy.yaml").write_text(default_policy_text())
    commit_all(root, "oracle")
    Cli(root)("init")
    return root


def test_humaneval_suite_has_164_problems_in_fixed_splits(tmp_path):
    suite = load("", tmp_path)
    assert len(suite.tasks) == 164 and suite.tasks[0].id == "HumanEval/0"
    counts = {s: len(suite.split(s)) for s in ("dev", "gate", "holdout")}
    assert counts == {"dev": 66, "gate": 66, "holdout": 32}
    assert suite.tasks[1].split == "gate" and suite.tasks[4].split == "holdout"
    assert len(load("10", tmp_path).tasks) == 10


def test_all_164_canonical_solutions_pass_through_runner_and_sandbox(tmp_path):
    root = benchmark_workspace(tmp_path, "humaneval:", "humaneval_oracle.py")
    cli = Cli(root)
    counts = {split: cli.json("run", "--split", split)["counts"] for split in ("dev", "gate", "holdout")}
    assert sum(c["pass"] for c in counts.values()) == 164, counts


def test_humaneval_wrong_answers_fail_with_the_reason():
    verify = humaneval({}, None)
    task = load("3", None).tasks[2]  # truncate_number: return number % 1.0
    first = problems()[2]
    assert verify(task, first["canonical_solution"]).passed
    whole = first["prompt"] + first["canonical_solution"]
    assert verify(task, f"```python\n{whole}\n```").passed  # a whole function in a fence is fine
    wrong = verify(task, "    return number\n")
    assert not wrong.passed and wrong.reason == "mismatch" and "AssertionError" in wrong.feedback
    looping = verify(task, "    while True:\n        pass\n")
    assert not looping.passed and looping.reason == "sandbox_violation"
    assert verify(task, "").reason == "empty"


# ----- BFCL -----------------------------------------------------------------------------

VERIFY = bfcl({}, None)


def oracle(task):
    return oracle_calls(task.expected, task.input["functions"])


@pytest.mark.parametrize("category", list(CATEGORIES))
def test_every_bfcl_ground_truth_passes_our_verifier(category):
    tasks = load_bfcl(category, None).tasks
    failures = [(t.id, VERIFY(t, oracle(t)).feedback) for t in tasks if not VERIFY(t, oracle(t)).passed]
    assert failures == [] and len(tasks) >= 200


def first_with(category, predicate):
    return next(t for t in load_bfcl(category, None).tasks if predicate(t))


def test_corrupted_answers_fail():
    task = load_bfcl("simple", None).tasks[0]  # calculate_triangle_area(base=10, height=5)
    good = oracle(task)
    assert VERIFY(task, good).passed
    wrong_name = [{**good[0], "name": "calculate_circle_area"}]
    assert "expected 'calculate_triangle_area'" in VERIFY(task, wrong_name).feedback
    missing = copy.deepcopy(good)
    del missing[0]["arguments"]["height"]
    assert "missing required parameter 'height'" in VERIFY(task, missing).feedback
    wrong_type = copy.deepcopy(good)
    wrong_type[0]["arguments"]["base"] = "10"
    assert "should be integer" in VERIFY(task, wrong_type).feedback
    outside = copy.deepcopy(good)
    outside[0]["arguments"]["base"] = 11
    assert "not among" in VERIFY(task, outside).feedback
    extra_param = copy.deepcopy(good)
    extra_param[0]["arguments"]["colour"] = "red"
    assert "unexpected parameter 'colour'" in VERIFY(task, extra_param).feedback
    assert "exactly one" in VERIFY(task, good + good).feedback  # an extra call
    assert not VERIFY(task, []).passed and not VERIFY(task, "The area is 25.").passed


def test_parallel_calls_match_in_any_order_but_all_of_them():
    task = first_with("parallel", lambda t: len(t.expected) == 2)
    calls = oracle(task)
    assert VERIFY(task, list(reversed(calls))).passed
    assert not VERIFY(task, calls[:1]).passed
    assert not VERIFY(task, calls + calls[:1]).passed  # an extra call
    assert not VERIFY(task, [calls[0], calls[0]]).passed  # the same call twice is not both


def test_irrelevance_wants_no_call_and_strings_are_compared_loosely():
    task = load_bfcl("irrelevance", None).tasks[0]
    assert VERIFY(task, []).passed and VERIFY(task, "I cannot help with that.").passed
    some = task.input["functions"][0]["name"]
    assert not VERIFY(task, [{"name": some, "arguments": {}}]).passed
    dotted = first_with("simple", lambda t: "." in next(iter(t.expected[0])))
    underscored = [{**c, "name": c["name"].replace(".", "_")} for c in oracle(dotted)]
    assert VERIFY(dotted, underscored).passed  # tool-calling APIs forbid dots in names
    assert calls_of('[{"math.factorial": {"number": 5}}]') == [("math.factorial", {"number": 5})]


def test_bfcl_runs_through_the_runner(tmp_path):
    root = benchmark_workspace(tmp_path, "bfcl:simple,parallel,irrelevance@10", "bfcl_oracle.py")
    counts = Cli(root).json("run", "--split", "dev")["counts"]
    assert counts == {"pass": 12, "fail": 0, "error": 0}
