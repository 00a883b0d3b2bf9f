"""Many processes writing one version line at once: a clear "busy" or a wait, never a traceback or a split."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
from conftest import RELEASE, Cli, build_workspace, commit_all, git
from fuzz_cases import is_error_line
from test_run import trials

TASKS = [{"id": f"t{i}", "input": i, "expected": i * 2, "split": "gate" if i % 2 else "dev"} for i in range(6)]


def spawn(root, *args, env=None):
    return subprocess.Popen(
        [RELEASE, *args], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def finish(procs, timeout=300):
    return [(p.wait(timeout=timeout), p.stdout.read(), p.stderr.read()) for p in procs]


def no_traceback(results):
    """Every process accepted (0), rejected with a report (1), or ended on one error line (2)."""
    for code, _, err in results:
        assert "Traceback" not in err, err
        assert code in (0, 1, 2), (code, err)
        errors = [line for line in err.splitlines() if is_error_line(line)]
        assert code != 2 or (len(errors) == 1 and err.strip().splitlines()[-1] == errors[0]), err


def branches(root, count):
    """`count` branches off the canonical version, each a different candidate that fixes t1 and t3."""
    names = []
    for i in range(count):
        git(root, "checkout", "-q", "-b", f"try-{i}")
        (root / "agents" / "toy" / "agent.py").write_text(f"def solve(x):\n    return x * 2  # try {i}\n")
        commit_all(root, f"try {i}")
        git(root, "checkout", "-q", "-")
        names.append(f"try-{i}")
    return names


@pytest.mark.slow
def test_sixteen_concurrent_promotions_of_ungated_candidates(database, tmp_path):
    root = build_workspace(
        tmp_path / "ws",
        agent_files={"agent.py": "def solve(x):\n    return x * 2 if x % 2 == 0 else 0\n"},
        tasks=TASKS,
        trusted=True,
    )
    results = finish([spawn(root, "promote", "--candidate", name, "--json") for name in branches(root, 16)])
    no_traceback(results)
    winners = [json.loads(out)["to_version"] for code, out, _ in results if code == 0]
    assert len(winners) == 1, results
    for code, _, err in results:  # the others lost the race, were judged against the winner and fixed nothing, or
        # came after it: branched from v1, their change clashes with the winner's and is refused (rebase it first)
        lost = code == 2 and ("moved" in err or "git rebase canonical/toy" in err)
        assert code == 0 or lost or (code == 1 and "REJECTED" in err), (code, err)
    cli = Cli(root)
    log = {v["number"]: v for v in cli.json("log")}
    assert [n for n, v in log.items() if v["status"] == "canonical"] == winners
    assert sorted(log) == list(range(1, len(log) + 1))  # numbers unique and dense (refused clashes not recorded)
    cli("doctor", "--check")
    assert git(root, "rev-parse", "canonical/toy") == log[winners[0]]["git_sha"]


@pytest.mark.slow
def test_concurrent_candidates_get_distinct_numbers(database, tmp_path):
    root = build_workspace(tmp_path / "ws", agent_files={"agent.py": "def solve(x):\n    return 0\n"}, tasks=TASKS)
    results = finish([spawn(root, "candidate", "--from", name, "--json") for name in branches(root, 8)])
    no_traceback(results)
    assert all(code == 0 for code, _, _ in results), results
    assert sorted(json.loads(out)["number"] for _, out, _ in results) == list(range(2, 10))


def test_two_processes_resuming_one_run_execute_each_trial_once(tmp_path):
    code = "import asyncio\nasync def solve(x):\n    await asyncio.sleep(0.05)\n    return x * 2\n"
    tasks = [{"id": f"t{i}", "input": i, "expected": i * 2, "split": "dev"} for i in range(60)]
    root = build_workspace(tmp_path / "ws", agent_files={"agent.py": code}, tasks=tasks, run={"concurrency": 2})
    first = spawn(root, "run", "--json")
    deadline = time.time() + 60
    while time.time() < deadline and len(trials(root) if (root / ".release" / "release.db").exists() else []) < 10:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    survivors = len(trials(root))
    results = finish([spawn(root, "run", "--json"), spawn(root, "run", "--json")])
    no_traceback(results)
    assert [code for code, _, _ in results] == [0, 0], results
    runs = {json.loads(out)["id"] for _, out, _ in results}
    assert len(runs) == 1  # both resumed the interrupted run; one executed, the other waited for it
    executed = sorted(json.loads(out)["executed"] for _, out, _ in results)
    assert sum(executed) == 180 - survivors, executed
    final = trials(root)
    assert len(final) == 180 and len({(r[1], r[2]) for r in final}) == 180


@pytest.mark.slow
def test_the_same_change_recorded_at_once_from_eight_branches_is_one_candidate(database, tmp_path):
    root = build_workspace(tmp_path / "ws", agent_files={"agent.py": "def solve(x):\n    return 0\n"}, tasks=TASKS)
    names = []
    for i in range(8):  # eight commits (messages differ), one content
        git(root, "checkout", "-q", "-b", f"same-{i}")
        (root / "agents" / "toy" / "agent.py").write_text("def solve(x):\n    return x * 2\n")
        commit_all(root, f"same change, try {i}")
        git(root, "checkout", "-q", "-")
        names.append(f"same-{i}")
    results = finish([spawn(root, "candidate", "--from", name, "--json") for name in names])
    no_traceback(results)
    recorded = [json.loads(out)["number"] for code, out, _ in results if code == 0]
    twins = [err for code, _, err in results if code == 2 and "has the same content as v2" in err]
    assert recorded == [2] and len(twins) == 7, results
    assert [v["number"] for v in Cli(root).json("log")] == [1, 2]
