"""Stage run: statuses, adapters, concurrency, and resuming a run killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from conftest import RELEASE, Cli, build_workspace, require_isolation

TASKS = [{"id": f"t{i}", "input": i, "expected": i * 2, "split": "dev"} for i in range(8)]


def trials(root, run_id=None):
    db = sqlite3.connect(root / ".release" / "release.db", timeout=30)
    query = "SELECT id, task_id, repeat, attempt, status, reason, feedback, trace FROM trials"
    rows = db.execute(query + (" WHERE run_id = ?" if run_id else ""), (run_id,) if run_id else ()).fetchall()
    db.close()
    return rows


def by_task(rows):
    return {(r[1], r[2]): r for r in rows}


def test_statuses_separate_agent_failures_from_infrastructure_errors(tmp_path):
    code = (
        "import time\nfrom release_pipeline.errors import InfrastructureError\n"
        "def solve(x):\n"
        "    if x == 1: raise ValueError('bad input')\n"
        "    if x == 2: time.sleep(30)\n"
        "    if x == 3: raise InfrastructureError('provider down')\n"
        "    if x == 4: return ''\n"
        "    if x == 5: return 'eleven'\n"
        "    return {'output': x * 2, 'trace': [{'type': 'tool', 'name': 'double'}]}\n"
    )
    root = build_workspace(
        tmp_path / "ws",
        agent_files={"agent.py": code},
        tasks=TASKS,
        run={"timeout_s": 1, "repeats": 1},
        verifier={"type": "numeric"},
    )
    out = Cli(root).json("run")
    assert out["counts"] == {"pass": 3, "fail": 4, "error": 1}
    rows = by_task(trials(root))
    assert rows[("t1", 0)][4:6] == ("fail", "agent_exception") and "ValueError: bad input" in rows[("t1", 0)][6]
    assert json.loads(rows[("t1", 0)][7])[0]["where"] == "solve line 4"
    assert rows[("t2", 0)][4:6] == ("fail", "timeout")
    assert rows[("t3", 0)][4:6] == ("error", "infrastructure")
    assert rows[("t4", 0)][4:6] == ("fail", "empty")
    assert rows[("t5", 0)][4:6] == ("fail", "unparseable")
    assert json.loads(rows[("t0", 0)][7]) == [{"type": "tool", "name": "double"}]
    # resuming retries only the error trial, as a new attempt; nothing else runs again
    again = Cli(root).json("run", "--fresh")
    assert again["executed"] == 8
    before = len(trials(root))
    Cli(root).json("run")  # the fresh run completed: a new run, not a resume
    assert len(trials(root)) == before + 8


def test_subprocess_adapter_speaks_json_in_any_language(tmp_path):
    script = (
        "import json, sys\n"
        "task = json.load(sys.stdin)\n"
        "x = task['input']\n"
        "if x == 1: sys.exit(75)\n"
        "if x == 2: print('not json'); sys.exit(0)\n"
        "if x == 3: sys.stderr.write('segfault-ish'); sys.exit(3)\n"
        "print(json.dumps({'output': x * 2, 'trace': [{'type': 'seed', 'seed': task['seed']}]}))\n"
    )
    root = build_workspace(
        tmp_path / "ws",
        agent_files={"agent.py": script},
        tasks=TASKS,
        manifest={"adapter": "subprocess", "command": [sys.executable, "agent.py"]},
        run={"repeats": 1},
    )
    out = Cli(root).json("run")
    assert out["counts"] == {"pass": 5, "fail": 2, "error": 1}
    rows = by_task(trials(root))
    assert rows[("t1", 0)][4] == "error"
    assert rows[("t2", 0)][4:6] == ("fail", "malformed_output")
    assert rows[("t3", 0)][4:6] == ("fail", "agent_exception") and "segfault-ish" in rows[("t3", 0)][6]
    assert json.loads(rows[("t0", 0)][7])[0]["type"] == "seed"


def test_concurrency_limit_and_seeds(tmp_path):
    code = (
        "import asyncio, json, pathlib\n"
        "state = {'now': 0, 'max': 0}\n"
        "async def solve(x, ctx):\n"
        "    state['now'] += 1\n    state['max'] = max(state['max'], state['now'])\n"
        "    await asyncio.sleep(0.01)\n    state['now'] -= 1\n"
        "    pathlib.Path(ctx.params['out']).write_text(json.dumps(state['max']))\n"
        "    return {'output': x * 2, 'trace': [{'seed': ctx.seed, 'repeat': ctx.repeat}]}\n"
    )
    out = tmp_path / "max.json"
    tasks = [{"id": f"t{i}", "input": i, "expected": i * 2, "split": "dev"} for i in range(40)]
    root = build_workspace(
        tmp_path / "ws",
        agent_files={"agent.py": code},
        tasks=tasks,
        manifest={"params": {"out": str(out)}},
        run={"concurrency": 3},
        trusted=True,  # one process, so the agent itself can count how many calls overlap
    )
    Cli(root).json("run")
    assert json.loads(out.read_text()) == 3
    seeds = {(r[1], r[2]): json.loads(r[7])[0]["seed"] for r in trials(root)}
    assert len(set(seeds.values())) == 120  # every (task, repeat) has its own seed
    Cli(root).json("run", "--fresh")
    again = {(r[1], r[2]): json.loads(r[7])[0]["seed"] for r in trials(root) if r[0] > 120}
    assert again == seeds  # and the same one in every run


def test_sigkilled_run_resumes_without_losing_or_duplicating_trials(tmp_path):
    # 300 trials of 0.1 s, two at a time: 15 s in all, so the kill at 40 lands well inside the run
    code = "import asyncio\nasync def solve(x):\n    await asyncio.sleep(0.1)\n    return x * 2\n"
    tasks = [{"id": f"t{i}", "input": i, "expected": i * 2, "split": "dev"} for i in range(100)]
    root = build_workspace(tmp_path / "ws", agent_files={"agent.py": code}, tasks=tasks, run={"concurrency": 2})
    proc = subprocess.Popen(
        [RELEASE, "run"], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.time() + 60
    while time.time() < deadline and len(trials(root) if (root / ".release" / "release.db").exists() else []) < 40:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    survivors = trials(root)
    assert 40 <= len(survivors) < 300, (len(survivors), proc.stderr.read()[-500:])
    resumed = Cli(root).json("run")
    assert resumed["resumed"] is True and resumed["executed"] == 300 - len(survivors)
    final = trials(root)
    assert len(final) == 300 and len({(r[1], r[2]) for r in final}) == 300
    assert {r[0]: r for r in final if r[0] in {s[0] for s in survivors}} == {s[0]: s for s in survivors}
    assert resumed["counts"] == {"pass": 300, "fail": 0, "error": 0}


def test_subprocess_agent_runs_in_the_sandbox(tmp_path, monkeypatch):
    require_isolation()
    monkeypatch.setenv("PLANTED_API_KEY", "sk-zq99")
    script = (
        "import json, os, sys\n"
        "task = json.load(sys.stdin)\n"
        "x = task['input']\n"
        "if x == 1: bytearray(4 * 1024 ** 3)\n"
        "if x == 2:\n    open(os.path.join(os.getcwd(), 'scribble.txt'), 'w').write('x')\n"
        "print(json.dumps({'output': os.environ.get('PLANTED_API_KEY', x * 2)}))\n"
    )
    root = build_workspace(
        tmp_path / "ws",
        agent_files={"agent.py": script},
        tasks=TASKS[:3],
        manifest={"adapter": "subprocess", "command": [sys.executable, "agent.py"], "sandbox": {"memory_mb": 256}},
        run={"repeats": 1},
    )
    Cli(root).json("run")
    rows = by_task(trials(root))
    assert rows[("t0", 0)][4] == "pass"  # the planted key was not there to print
    assert rows[("t1", 0)][4:6] == ("fail", "sandbox_violation") and "memory limit" in rows[("t1", 0)][6]
    assert rows[("t2", 0)][4] == "fail" and "Read-only file system" in rows[("t2", 0)][6]
    assert not list((root / ".release" / "artifacts").rglob("scribble.txt"))


def test_every_trial_is_recorded_when_many_finish_at_once(tmp_path):
    """Trials that finish while a batch is being written must not be lost at the end of a run."""
    code = "import asyncio\nasync def solve(x):\n    await asyncio.sleep(0.05)\n    return x * 2\n"
    tasks = [{"id": f"t{i}", "input": i, "expected": i * 2, "split": "dev"} for i in range(400)]
    root = build_workspace(
        tmp_path / "ws", agent_files={"agent.py": code}, tasks=tasks, run={"concurrency": 50, "repeats": 1}
    )
    out = Cli(root).json("run")
    assert out["counts"] == {"pass": 400, "fail": 0, "error": 0} and len(trials(root)) == 400


def test_callable_agent_with_a_sandbox_section_runs_sandboxed(tmp_path):
    require_isolation()
    code = (
        "def solve(x, ctx):\n"
        "    if x == 1:\n        bytearray(4 * 1024 ** 3)\n"
        "    if x == 2:\n        open('/etc/escape', 'w')\n"
        "    return {'output': x * 2, 'trace': [{'type': 'seed', 'seed': ctx.seed}]}\n"
    )
    root = build_workspace(
        tmp_path / "ws",
        agent_files={"agent.py": code},
        tasks=TASKS[:4],
        manifest={"sandbox": {"memory_mb": 256}},
        run={"repeats": 1},
    )
    assert Cli(root).json("run")["counts"] == {"pass": 2, "fail": 2, "error": 0}
    rows = by_task(trials(root))
    assert rows[("t1", 0)][4:6] == ("fail", "sandbox_violation")
    assert rows[("t2", 0)][4] == "fail" and "Read-only file system" in rows[("t2", 0)][6]
    assert json.loads(rows[("t3", 0)][7])[0]["type"] == "seed"
