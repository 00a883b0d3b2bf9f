"""The flip-centered gate on agents built to be flaky, broken, slow or unlucky with infrastructure."""

from __future__ import annotations

import pytest
from conftest import Cli, build_workspace, change_agent

from release_pipeline.models import TaskOutcome
from release_pipeline.stages.gate_stats import binomial_two_sided, classify, could_confirm, fisher_one_sided

TASKS = [{"id": f"t{i}", "input": i, "expected": i * 2, "split": "gate" if i % 2 else "dev"} for i in range(12)]
GATE = [t["id"] for t in TASKS if t["split"] == "gate"]  # t1, t3, ..., t11

GOOD = "def solve(x):\n    return x * 2\n"


def agent(body: str) -> dict[str, str]:
    return {"agent.py": "import random\nfrom release_pipeline.errors import InfrastructureError\n\n" + body}


# ----- statistics --------------------------------------------------------------------


def test_fisher_one_sided_matches_hand_computation():
    # 3/3 -> 0/3: only one table out of C(6,3) = 20 is that extreme
    assert fisher_one_sided(3, 3, 0, 3) == (1.0, pytest.approx(0.05))
    assert fisher_one_sided(0, 3, 3, 3) == (pytest.approx(0.05), 1.0)
    # 3/3 -> 2/3 is nowhere near confirmation
    assert fisher_one_sided(3, 3, 2, 3)[1] == pytest.approx(0.5)
    # 9/9 -> 4/9: P(X <= 4) with 13 successes in 18 draws of 9
    assert fisher_one_sided(9, 9, 4, 9)[1] == pytest.approx(0.0147, abs=1e-4)


def test_classification_and_futility():
    t = lambda p, n: TaskOutcome("x", p, n, 0)  # noqa: E731
    assert classify(t(3, 3), t(0, 3), 0.05)[0] == "regression"
    assert classify(t(0, 3), t(3, 3), 0.05)[0] == "fix"
    assert classify(t(3, 3), t(2, 3), 0.05)[0] == "uncertain"
    assert classify(t(2, 3), t(2, 3), 0.05)[0] == "flaky"
    assert classify(t(3, 3), t(3, 3), 0.05)[0] == "unchanged_pass"
    assert classify(t(0, 0), t(3, 3), 0.05)[0] == "no_data"
    assert could_confirm(t(3, 3), t(2, 3), 0.05, 9)
    assert not could_confirm(t(3, 3), t(2, 3), 0.05, 3)


def test_mcnemar_exact():
    assert binomial_two_sided(0, 0) == 1.0
    assert binomial_two_sided(0, 6) == pytest.approx(2 / 64)
    assert binomial_two_sided(3, 4) == 1.0


# ----- the gate end to end -------------------------------------------------------------


def gate(root, branch, code=None):
    return Cli(root).json("gate", "--candidate", branch, code=code)


def test_flaky_task_is_reported_not_mistaken_for_a_regression(tmp_path):
    # t5 passes about half the time in both versions: its trials differ by seed, not by version
    flaky = (
        "def solve(x, ctx):\n    if x == 5:\n        return x * 2 if random.Random(ctx.seed).random() < 0.5 else -1\n"
        "    return x * 2 if x != 3 else 0\n"
    )
    root = build_workspace(tmp_path / "ws", agent_files=agent(flaky), tasks=TASKS)
    fixed = (
        "def solve(x, ctx):\n    if x == 5:\n"
        "        return x * 2 if random.Random(ctx.seed + 1).random() < 0.5 else -1\n"
        "    return x * 2\n"
    )
    report = gate(root, change_agent(root, agent(fixed), "fix t3"), code=None)
    assert report["fixes"] == ["t3"]
    assert "t5" not in report["regressions"]
    row = next(r for r in report["tasks"] if r["task_id"] == "t5")
    assert row["outcome"] in ("flaky", "uncertain") and "t5" in report["flaky"]
    assert report["decision"] == "accepted"


def test_adaptive_repeats_confirm_a_partial_regression(tmp_path):
    # the candidate breaks t7 two times in three: 3/3 -> 1/3 is not confirmable at 3 repeats
    root = build_workspace(
        tmp_path / "ws", agent_files=agent("def solve(x):\n    return x * 2 if x != 1 else 0\n"), tasks=TASKS
    )
    partial = "def solve(x, ctx):\n    if x == 7 and ctx.repeat % 3 != 0:\n        return 0\n    return x * 2\n"
    report = gate(root, change_agent(root, agent(partial), "partial"), code=1)
    row = next(r for r in report["tasks"] if r["task_id"] == "t7")
    assert row["outcome"] == "regression"
    assert row["base"]["trials"] == row["candidate"]["trials"] > 3  # it bought more evidence
    assert report["extra_trials"] > 0 and report["regressions"] == ["t7"]
    assert report["fixes"] == ["t1"]


def test_adaptive_repeats_respect_the_budget(tmp_path):
    root = build_workspace(
        tmp_path / "ws",
        agent_files=agent("def solve(x):\n    return x * 2 if x != 1 else 0\n"),
        tasks=TASKS,
        policy={"extra_trial_budget": 0},
    )
    partial = "def solve(x, ctx):\n    if x == 7 and ctx.repeat % 3 != 0:\n        return 0\n    return x * 2\n"
    report = gate(root, change_agent(root, agent(partial), "partial"), code=None)
    row = next(r for r in report["tasks"] if r["task_id"] == "t7")
    assert row["outcome"] == "uncertain" and report["budget_exhausted"] and report["extra_trials"] == 0
    assert "t7" in report["flaky"]


def test_error_trials_are_retried_then_excluded_never_counted(tmp_path):
    root = build_workspace(
        tmp_path / "ws",
        agent_files=agent("def solve(x):\n    return x * 2 if x != 1 else 0\n"),
        tasks=TASKS,
        policy={"error_retries": 1},
        trusted=True,  # in-process, so a module-level set remembers attempts across retries
    )
    # t9's provider is down for good, t11's fails on the first attempt only (remembered in the process)
    flaky_infra = (
        "import os\n_seen = set()\n"
        "def solve(x, ctx):\n"
        "    if x == 9:\n        raise InfrastructureError('provider down')\n"
        "    if x == 11 and (x, ctx.repeat) not in _seen:\n"
        "        _seen.add((x, ctx.repeat))\n        raise InfrastructureError('rate limited')\n"
        "    return x * 2\n"
    )
    report = gate(root, change_agent(root, agent(flaky_infra), "infra"), code=1)
    rows = {r["task_id"]: r for r in report["tasks"]}
    assert rows["t9"]["outcome"] == "no_data" and rows["t9"]["candidate"]["errors"] == 3
    assert "t9" not in report["regressions"]
    assert rows["t11"]["outcome"] == "unchanged_pass" and rows["t11"]["candidate"]["errors"] == 0
    assert report["fixes"] == ["t1"]
    assert any("could not be judged" in r for r in report["reasons"])


def test_protected_task_regression_rejects_even_within_budget(tmp_path):
    root = build_workspace(
        tmp_path / "ws",
        agent_files=agent("def solve(x):\n    return x * 2 if x != 1 else 0\n"),
        tasks=TASKS,
        policy={"regression_budget": 5, "protected_tasks": ["t3"]},
    )
    report = gate(root, change_agent(root, agent("def solve(x):\n    return x * 2 if x != 3 else 0\n"), "b"), code=1)
    assert report["regressions"] == ["t3"] and report["fixes"] == ["t1"]
    assert any("protected" in r and "t3" in r for r in report["reasons"])


def test_budget_allows_a_regression_when_fixes_outnumber(tmp_path):
    base = "def solve(x):\n    return 0 if x in (1, 3) else x * 2\n"
    root = build_workspace(tmp_path / "ws", agent_files=agent(base), tasks=TASKS, policy={"regression_budget": 1})
    report = gate(root, change_agent(root, agent("def solve(x):\n    return 0 if x == 5 else x * 2\n"), "c"), code=0)
    assert report["fixes"] == ["t1", "t3"] and report["regressions"] == ["t5"]


def test_no_fix_means_no_release(tmp_path):
    root = build_workspace(tmp_path / "ws", agent_files=agent(GOOD), tasks=TASKS)
    report = gate(root, change_agent(root, agent(GOOD + "\n# cosmetic\n"), "noop"), code=1)
    assert report["fixes"] == [] and "requires at least 1" in report["reasons"][0]


def test_timeouts_and_crashes_are_failures_a_gate_catches(tmp_path):
    root = build_workspace(
        tmp_path / "ws",
        agent_files=agent("def solve(x):\n    return x * 2 if x != 1 else 0\n"),
        tasks=TASKS,
        run={"timeout_s": 0.5},
    )
    hang = (
        "import time\ndef solve(x):\n    if x == 3:\n        time.sleep(5)\n"
        "    if x == 5:\n        raise KeyError('boom')\n    return x * 2\n"
    )
    report = gate(root, change_agent(root, agent(hang), "hang"), code=1)
    assert report["regressions"] == ["t3", "t5"]


def test_intent_alignment_can_be_required(tmp_path):
    tasks = [{**t, "tags": ["even" if t["input"] % 4 == 1 else "odd"]} for t in TASKS]
    base = "def solve(x):\n    return -1 if x in (2, 1, 3) else x * 2\n"
    root = build_workspace(
        tmp_path / "ws", agent_files=agent(base), tasks=tasks, policy={"require_intent_alignment": True}
    )
    cli = Cli(root)
    cli.json("run")
    cli.json("critic")
    spec = cli.json("diagnose")
    assert spec["target_tasks"] == ["t2"] and spec["target_tags"] == ["odd"]
    # the candidate fixes t1 (tag "even") and t3 (tag "odd"): only t3 is aligned with the spec
    report = gate(root, change_agent(root, agent("def solve(x):\n    return -1 if x == 2 else x * 2\n"), "f"), code=1)
    assert report["fixes"] == ["t1", "t3"] and report["aligned_fixes"] == ["t3"]
    assert report["intent_alignment"] == 0.5
    assert any("outside the spec's targets" in r for r in report["reasons"])
