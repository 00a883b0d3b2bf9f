"""Trials away from the driver (trials/remote.py), without a cluster: a recipe packs the same files to the same
bytes (hosts are found again by it), keeps what git ignores out, and a host built from it runs trials of any run
of its artifact, never more at once than its limit."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import tarfile
import time

from conftest import build_workspace

COUNTING = """import asyncio

running = peak = 0

async def solve(x):
    global running, peak
    running += 1
    peak = max(peak, running)
    await asyncio.sleep(0.05)
    running -= 1
    return {"output": x * 2, "trace": [{"type": "answer", "value": peak}]}
"""
TASKS = [{"id": f"t{i}", "input": i, "expected": i * 2, "split": "dev"} for i in range(12)]


def test_the_same_files_pack_to_the_same_bytes_whenever_they_are_packed(tmp_path, monkeypatch):
    from release_pipeline.trials.recipe import pack

    (tmp_path / "agent.py").write_text("def solve(x):\n    return x\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.json").write_text("{}")
    first = pack(tmp_path)
    later = time.time() + 3600
    monkeypatch.setattr(time, "time", lambda: later)  # an hour on: nothing in the bytes may tell
    assert pack(tmp_path) == first
    (tmp_path / "data" / "a.json").write_text("[]")
    assert pack(tmp_path) != first


def test_a_work_tree_packs_what_git_keeps(tmp_path):
    from release_pipeline.trials.recipe import pack

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("build/\n")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "big.bin").write_bytes(b"\0" * 1000)
    (tmp_path / "agent.py").write_text("x = 1\n")
    names = tarfile.open(fileobj=io.BytesIO(pack(tmp_path))).getnames()
    assert sorted(names) == [".gitignore", "agent.py"]


def test_a_host_serves_every_run_of_its_artifact_within_its_limit(tmp_path):
    from release_pipeline.stages.promote import record_baseline
    from release_pipeline.trials.jobs import Job
    from release_pipeline.trials.remote import TrialHost
    from release_pipeline.trials.runner import TrialRunner
    from release_pipeline.workspace import Workspace

    root = build_workspace(tmp_path / "ws", agent_files={"agent.py": COUNTING}, tasks=TASKS, trusted=True)
    ws = Workspace(root)
    agent = ws.agent()
    record_baseline(ws, agent)
    artifact = ws.materialize(agent, ws.head(agent))
    runner = TrialRunner(artifact, ws.plugins.registry, ws.verifiers, 7, ws.engine.settings)
    recipe = runner.recipe()
    assert recipe.key == runner.recipe().key  # found again by the next run of the same artifact

    stale = tmp_path / "trials" / ("0" * 32)  # a recipe unpacked two days ago and unused since
    (stale / "artifact").mkdir(parents=True)
    (stale / ".used").touch()
    os.utime(stale / ".used", (time.time() - 2 * 86400,) * 2)
    host = TrialHost(recipe, scratch=tmp_path / "trials", limit=3)
    assert not stale.exists()  # swept by the next host on the machine
    jobs = [Job(task, 0) for task in ws.suite(agent).split("dev")]

    async def two_runs():
        return await asyncio.gather(host.run_many(jobs[:6], 7), host.run_many(jobs[6:], 8))

    first, second = asyncio.run(two_runs())
    assert [t.run_id for t in first] == [7] * 6 and [t.run_id for t in second] == [8] * 6
    assert all(t.status == "pass" for t in first + second)
    assert max(t.trace[-1]["value"] for t in first + second) == 3  # twelve trials asked at once, three ran
    assert (tmp_path / "trials" / recipe.digest / "artifact" / "agent.py").read_text() == COUNTING


def test_a_sweep_removes_what_no_host_used_for_a_day_and_nothing_in_use(tmp_path):
    from release_pipeline.trials.recipe import sweep

    def recipe(name: str, age_s: float | None) -> None:
        (tmp_path / name / "source").mkdir(parents=True)
        if age_s is not None:
            (tmp_path / name / ".used").touch()
            os.utime(tmp_path / name / ".used", (time.time() - age_s,) * 2)

    recipe("old", 25 * 3600)
    recipe("recent", 3600)
    recipe("unpacking", None)  # a host is making it: no mark yet
    (tmp_path / ".removing-gone-1" / "x").mkdir(parents=True)  # a sweep that stopped half way
    assert sweep(tmp_path) == [tmp_path / "old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recent", "unpacking"]
    assert sweep(tmp_path / "nothing-here") == []
