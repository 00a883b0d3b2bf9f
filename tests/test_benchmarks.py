"""Benchmark suites: oracle answers pass through our runner, sandbox and verifiers; corrupted ones fail."""

from __future__ import annotations

import shutil

import yaml
from conftest import DATA, Cli, commit_all, make_workspace

from release_pipeline.benchmarks.humaneval import humaneval, load, problems


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
    from release_pipeline.policy import default_policy_text

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
