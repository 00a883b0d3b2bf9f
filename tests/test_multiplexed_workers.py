"""Sandboxed workers run many trials at once, and a trial's failure stays its own (issue 26)."""

from __future__ import annotations

import json
import sqlite3

import pytest
from conftest import Cli, build_workspace

# Every trial says which worker process answered it (a token drawn when the agent's module is imported) in its
# trace, never in its output: the outputs of two runs are compared, the traces tell who ran beside whom.
NORMAL = """
import asyncio, os, signal, time, uuid
TOKEN = uuid.uuid4().hex
CRASHES = {crashes}

async def solve(x, ctx):
    kind = CRASHES.get(x)
    if kind == "exit":
        os._exit(3)
    if kind == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "fork bomb":
        try:
            while True:
                if os.fork() == 0:
                    time.sleep(3600)
        except OSError:
            pass
    if kind == "memory hog":
        hoard = []
        while True:
            hoard.append(bytearray(32 * 1024 * 1024))
    if kind == "busy loop":
        while True:
            pass
    await asyncio.sleep(0.002 * (x % 5))  # trials overlap in their worker
    if x % 10 == 7:
        raise ValueError(f"no answer for {{x}}")
    answer = {{"items": [x, x * x], "text": "n" * (x % 13)}} if x % 3 else x * 2
    return {{"output": answer, "trace": [{{"type": "worker", "token": TOKEN}}]}}
"""

CRASHES = {101: "exit", 202: "sigkill", 303: "fork bomb", 404: "memory hog", 505: "busy loop"}
TASKS = [{"id": f"t{i}", "input": i, "expected": i * 2, "split": "gate"} for i in range(1000)]


def stored(root) -> dict[str, tuple]:
    """Each trial of the workspace's run: (status, reason, output, attempt), and the worker token from its trace."""
    db = sqlite3.connect(root / ".release" / "release.db", timeout=30)
    rows = db.execute("SELECT task_id, status, reason, output, attempt, feedback, trace FROM trials").fetchall()
    db.close()
    out = {}
    for task_id, status, reason, output, attempt, feedback, trace in rows:
        steps = json.loads(trace or "[]")
        token = steps[0].get("token") if steps and isinstance(steps[0], dict) else None
        out[task_id] = (status, reason, output, attempt, feedback, token)
    return out


def run_suite(path, crashes: dict[int, str]) -> dict[str, tuple]:
    root = build_workspace(
        path,
        agent_files={"agent.py": NORMAL.format(crashes=crashes)},
        tasks=TASKS,
        manifest={"sandbox": {"memory_mb": 512, "processes": 64}},
        run={"repeats": 1, "concurrency": 50, "timeout_s": 5},
    )
    out = Cli(root).json("run", "--split", "gate")
    assert sum(out["counts"].values()) == 1000
    return stored(root)


@pytest.mark.slow
def test_a_crash_among_1000_multiplexed_trials_leaves_the_others_identical(tmp_path):
    clean = run_suite(tmp_path / "clean", {})
    hostile = run_suite(tmp_path / "hostile", CRASHES)
    crashed = {f"t{i}" for i in CRASHES}
    # the 995 others: the same status, reason and output as in a run with no crash at all
    differ = [t for t in clean if t not in crashed and clean[t][:4] != hostile[t][:4]]
    assert differ == [], [(t, clean[t][:5], hostile[t][:5]) for t in differ[:5]]
    assert {clean[t][0] for t in clean} == {"pass", "fail"}  # passes, wrong answers and exceptions alike
    # each crash fails its own trial, for its own reason
    reasons = {i: hostile[f"t{i}"][:2] for i in CRASHES}
    assert reasons[101] == ("fail", "agent_crash") and "exit status 3" in hostile["t101"][4]
    assert reasons[202] == ("fail", "agent_crash") and "SIGKILL" in hostile["t202"][4]
    assert reasons[303] == ("fail", "sandbox_violation") and "process limit" in hostile["t303"][4]
    assert reasons[404] == ("fail", "sandbox_violation") and "memory limit" in hostile["t404"][4]
    assert reasons[505] == ("fail", "timeout")
    # trials were multiplexed (a few workers ran the clean run's 1,000), and the crashes' neighbours ran again,
    # alone, each in a worker of its own
    workers = [h[5] for t, h in clean.items()]
    assert len(set(workers)) <= 20, len(set(workers))
    tokens = [h[5] for t, h in hostile.items() if t not in crashed]
    alone = [token for token in set(tokens) if tokens.count(token) == 1]
    assert len(alone) >= len(CRASHES), len(alone)


THREADED = """
import threading, time, uuid
TOKEN = uuid.uuid4().hex

def solve(x, ctx):
    time.sleep(0.3)
    return {"output": x * 2, "trace": [{"type": "worker", "token": TOKEN, "thread": threading.get_ident()}]}
"""


def test_a_plain_function_agent_runs_several_trials_at_once_in_one_worker(tmp_path):
    tasks = [{"id": f"t{i}", "input": i, "expected": i * 2, "split": "gate"} for i in range(16)]
    root = build_workspace(tmp_path / "ws", agent_files={"agent.py": THREADED}, tasks=tasks,
                           run={"repeats": 1, "concurrency": 8})  # fmt: skip
    assert Cli(root).json("run", "--split", "gate")["counts"]["pass"] == 16
    db = sqlite3.connect(root / ".release" / "release.db")
    steps = [json.loads(trace)[0] for (trace,) in db.execute("SELECT trace FROM trials")]
    db.close()
    threads: dict[str, set[int]] = {}
    for step in steps:
        threads.setdefault(step["token"], set()).add(step["thread"])
    # a worker that ran its calls one by one would have used one thread for all of them
    assert len(threads) < 16 and max(len(t) for t in threads.values()) > 1, threads


def test_pools_serve_every_run_of_a_command_and_stop_with_it(tmp_path):
    from release_pipeline.pipeline import Pipeline
    from release_pipeline.sandbox import pool
    from release_pipeline.sandbox import worker as worker_module
    from release_pipeline.workspace import Workspace

    code = NORMAL.format(crashes={})
    tasks = [{"id": f"t{i}", "input": i, "expected": i * 2, "split": "gate"} for i in range(12)]
    tasks += [{"id": f"d{i}", "input": i, "expected": i * 2, "split": "dev"} for i in range(12)]
    root = build_workspace(tmp_path / "ws", agent_files={"agent.py": code}, tasks=tasks, run={"repeats": 1})
    ws = Workspace(root)
    agent = ws.agent()
    version = ws.head(agent)
    with pool.kept_pools():
        dev = Pipeline(ws, agent).run(version, split="dev")
        gate = Pipeline(ws, agent).run(version, split="gate")
        started = set(worker_module._live)
        assert started
    for worker in started:  # stopped with the scope, and cleaned up after
        assert worker.state == "dead" and worker.reaped.wait(30) and worker.proc.returncode is not None
        assert not worker.prepared.scratch.exists()
    tokens = {}
    for outcome in (dev, gate):
        db = sqlite3.connect(root / ".release" / "release.db")
        rows = db.execute("SELECT trace FROM trials WHERE run_id = ?", (outcome.id,)).fetchall()
        db.close()
        tokens[outcome.id] = {json.loads(t)[0].get("token") for (t,) in rows if json.loads(t)} - {None}
    dev_tokens, gate_tokens = tokens.values()
    assert dev_tokens and dev_tokens & gate_tokens  # the second run found the first run's workers


ASKING = """
import asyncio, threading

async def solve(x, ctx):
    await asyncio.sleep(0.001 * (x % 7))  # the trials' calls interleave in their worker
    if x % 5 == 0:  # a forbidden request, refused and swallowed: its trial fails for it, and no other
        try:
            await ctx.llm.complete(model="fake/agent", messages=[], params={"api_key": "k"})
        except Exception:
            pass
    if x % 2:  # from a thread the agent starts itself: the proxy it got is bound to its own trial
        box = []
        thread = threading.Thread(target=lambda: box.append(ctx.llm.complete_sync(model="fake/agent", messages=[
            {"role": "user", "content": f"echo {x}"}])))
        thread.start()
        await asyncio.to_thread(thread.join)
        return box[0].content
    reply = await ctx.llm.complete(model="fake/agent", messages=[{"role": "user", "content": f"echo {x}"}])
    return reply.content
"""


def test_each_trial_s_llm_calls_are_its_own_in_a_shared_worker(tmp_path, fake_llm):
    """Many trials share a worker: each LLM call is made for, answered to and charged to the trial that asked."""
    from conftest import commit_all

    fake_llm.default = lambda messages: messages[-1]["content"].removeprefix("echo ")
    tasks = [{"id": f"t{i}", "input": i, "expected": str(i), "split": "gate"} for i in range(40)]
    root = build_workspace(tmp_path / "ws", agent_files={"agent.py": ASKING}, tasks=tasks,
                           run={"repeats": 1, "concurrency": 20}, init=False)  # fmt: skip
    config = root / "release.yaml"
    config.write_text(config.read_text() + "models: {agent: fake/agent}\n")
    commit_all(root, "fake model")
    Cli(root)("init")
    assert Cli(root).json("run", "--split", "gate")["counts"] == {"pass": 32, "fail": 8, "error": 0}
    rows = stored(root)
    assert {t for t, row in rows.items() if row[0] == "fail"} == {f"t{i}" for i in range(0, 40, 5)}
    assert {row[1] for row in rows.values() if row[0] == "fail"} == {"forbidden_request"}
    assert sorted(r["messages"][-1]["content"] for r in fake_llm.requests) == sorted(f"echo {i}" for i in range(40))
