"""Run-loop benchmark: release-pipeline beside inspect_ai on the same workloads, in one process run.

Workloads (both tools, traces/logs persisted):
  instant  5,000 tasks, an agent that answers at once               -> per-trial overhead
  sleep    2,000 tasks, an agent that sleeps 50 ms, concurrency 50  -> efficiency vs tasks*latency/concurrency
plus the start-up time of `release --help` (and `inspect --help`). release-pipeline runs each workload twice:
with the agent in sandboxed worker processes (the default) and in-process (`trusted: true`).

Usage: python bench/bench_run.py [--instant N] [--sleep N] [--skip-inspect]
Writes nothing outside bench/.work/; prints a Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml
from workspace import commit_workspace

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
LATENCY = 0.05
CONCURRENCY = 50

AGENT = """
import asyncio

async def solve(x, ctx):
    delay = ctx.params.get("sleep", 0)
    if delay:
        await asyncio.sleep(delay)
    return {"output": x * 2, "trace": [{"type": "observe", "input": x}, {"type": "answer", "value": x * 2}]}
"""


def make_workspace(root: Path, n: int, sleep: float, trusted: bool) -> Path:
    """A committed workspace with one async agent and an n-task dev split."""
    if root.exists():
        shutil.rmtree(root)
    (root / "agents" / "bench").mkdir(parents=True)
    (root / "agents" / "bench" / "agent.py").write_text(AGENT)
    (root / "agents" / "bench" / "agent.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "bench",
                "adapter": "callable",
                "entry": "agent:solve",
                "editable": ["agent.py"],
                "params": {"sleep": sleep},
            }
        )
    )
    (root / "specs").mkdir()
    tasks = [{"id": f"t{i}", "input": i, "expected": i * 2, "split": "dev"} for i in range(n)]
    (root / "specs" / "bench.jsonl").write_text(
        "\n".join(__import__("json").dumps({**t, "verifier": {"type": "exact"}}) for t in tasks) + "\n"
    )
    (root / "release.yaml").write_text(
        yaml.safe_dump(
            {
                "agents": {"bench": {"path": "agents/bench", "suite": "specs/bench.jsonl", "trusted": trusted}},
                "run": {"repeats": 1, "concurrency": CONCURRENCY, "timeout_s": 30},
            }
        )
    )
    commit_workspace(root, "bench")
    return root


def bench_release(n: int, sleep: float, trusted: bool) -> dict:
    from release_pipeline.stages.promote import record_baseline
    from release_pipeline.stages.run import run_version
    from release_pipeline.workspace import Workspace

    root = make_workspace(WORK / f"release-{n}-{sleep}-{trusted}", n, sleep, trusted)
    ws = Workspace(root)
    agent = ws.agent()
    record_baseline(ws, agent)
    version = ws.head(agent)
    ws.suite(agent)
    ws.materialize(agent, version)
    start = time.perf_counter()
    outcome = run_version(ws, agent, version, split="dev")
    wall = time.perf_counter() - start
    stored = len(ws.store.trials(outcome.run["id"]))
    assert outcome.counts["pass"] == n == stored, (outcome.counts, stored)
    return {"wall": wall, "trials": n}


def bench_inspect(n: int, sleep: float) -> dict:
    from inspect_ai import Task
    from inspect_ai import eval as inspect_eval
    from inspect_ai.dataset import MemoryDataset, Sample
    from inspect_ai.model import ModelOutput
    from inspect_ai.scorer import match
    from inspect_ai.solver import solver

    @solver
    def answer():
        async def solve(state, generate):
            if sleep:
                await asyncio.sleep(sleep)
            state.output = ModelOutput.from_content("mockllm/model", str(int(state.input_text) * 2))
            return state

        return solve

    dataset = MemoryDataset([Sample(input=str(i), target=str(i * 2), id=f"t{i}") for i in range(n)])
    task = Task(dataset=dataset, solver=answer(), scorer=match())
    log_dir = WORK / f"inspect-{n}-{sleep}"
    shutil.rmtree(log_dir, ignore_errors=True)
    start = time.perf_counter()
    logs = inspect_eval(
        task, model="mockllm/model", max_samples=CONCURRENCY, max_tasks=1, log_dir=str(log_dir), display="none"
    )
    wall = time.perf_counter() - start
    assert logs[0].status == "success", logs[0].status
    return {"wall": wall, "trials": n}


def cli_startup(command: list[str], runs: int = 7, cwd: Path | None = None) -> float:
    """Median wall time of a command (from a folder outside any workspace unless `cwd` is given).

    Bytecode is compiled first and kept, as an installed package has it; a shell with
    PYTHONDONTWRITEBYTECODE set would otherwise pay for compiling every module at each start.
    """
    import compileall
    import tempfile

    import release_pipeline

    compileall.compile_dir(Path(release_pipeline.__file__).parent, quiet=1)
    outside = Path(tempfile.mkdtemp())
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd or outside, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def row(tool: str, workload: str, result: dict, ideal: float) -> str:
    wall, n = result["wall"], result["trials"]
    overhead_ms = (wall - ideal) / n * 1000
    efficiency = f"{ideal / wall:.3f}" if ideal else "n/a"
    return f"| {tool} | {workload} | {n} | {wall:.2f} | {overhead_ms:.3f} | {efficiency} |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instant", type=int, default=5000)
    parser.add_argument("--sleep", type=int, default=2000)
    parser.add_argument("--skip-inspect", action="store_true")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    os.environ.setdefault("INSPECT_LOG_LEVEL", "error")

    ideal_sleep = args.sleep * LATENCY / CONCURRENCY
    rows = ["| tool | workload | trials | wall s | overhead ms/trial | efficiency |", "|---|---|---:|---:|---:|---:|"]
    for trusted, how in ((False, "sandboxed workers"), (True, "trusted, in-process")):
        tool = f"release-pipeline ({how})"
        rows.append(row(tool, "instant", bench_release(args.instant, 0, trusted), 0))
        sleeping = bench_release(args.sleep, LATENCY, trusted)
        rows.append(row(tool, f"sleep 50 ms, c={CONCURRENCY}", sleeping, ideal_sleep))
    if not args.skip_inspect:
        rows.append(row("inspect_ai", "instant", bench_inspect(args.instant, 0), 0))
        rows.append(row("inspect_ai", f"sleep 50 ms, c={CONCURRENCY}", bench_inspect(args.sleep, LATENCY), ideal_sleep))
    bindir = Path(sys.executable).parent
    release = [str(bindir / "release"), "--help"]
    startup = [
        f"- `release --help`: {cli_startup(release):.3f} s outside a workspace, "
        f"{cli_startup(release, cwd=HERE.parent):.3f} s inside one (this repository), medians of 7",
    ]
    if not args.skip_inspect and (bindir / "inspect").exists():
        startup.append(f"- `inspect --help`: {cli_startup([str(bindir / 'inspect'), '--help'], 3):.3f} s (median of 3)")
    print("\n".join(rows))
    print()
    print("\n".join(startup))


if __name__ == "__main__":
    main()
