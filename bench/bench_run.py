"""Run-loop benchmark: release-pipeline beside inspect_ai (and promptfoo where installed), in one process run.

Workloads (every tool, traces/logs persisted):
  instant  5,000 tasks, an agent that answers at once               -> per-trial overhead
  sleep    2,000 tasks, an agent that sleeps 50 ms, concurrency 50  -> efficiency vs tasks*latency/concurrency
release-pipeline runs each workload twice: with the agent in sandboxed worker processes (the default) and
in-process (`trusted: true`). Then, side by side: how long a sandboxed worker takes to be ready against a bare
bubblewrap + Python start in the same view (and one that also imports the agent, and a minimal asyncio worker),
and the CPU time of `release --help` and `release log`. The machine's load is printed before and after.

Usage: python bench/bench_run.py [--instant N] [--sleep N] [--skip-inspect] [--starts N]
Writes nothing outside bench/.work/; prints Markdown for bench/RESULTS.md.
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
    from release_pipeline.pipeline import Pipeline
    from release_pipeline.stages.promote import record_baseline
    from release_pipeline.workspace import Workspace

    root = make_workspace(WORK / f"release-{n}-{sleep}-{trusted}", n, sleep, trusted)
    ws = Workspace(root)
    agent = ws.agent()
    record_baseline(ws, agent)
    version = ws.head(agent)
    ws.suite(agent)
    ws.materialize(agent, version)
    start = time.perf_counter()
    outcome = Pipeline(ws, agent).run(version, split="dev")
    wall = time.perf_counter() - start
    stored = len(ws.store.trials(outcome.id))
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


def bench_promptfoo(n: int) -> dict | None:
    """promptfoo's echo provider over `n` tests, when a `promptfoo` command is installed (None otherwise)."""
    command = shutil.which("promptfoo")
    if command is None:
        return None
    folder = WORK / f"promptfoo-{n}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    tests = "\n".join(f"  - vars: {{x: '{i}'}}\n    assert: [{{type: equals, value: '{i}'}}]" for i in range(n))
    (folder / "promptfooconfig.yaml").write_text(f"prompts: ['{{{{x}}}}']\nproviders: [echo]\ntests:\n{tests}\n")
    start = time.perf_counter()
    subprocess.run([command, "eval", "--no-cache", "--max-concurrency", str(CONCURRENCY), "-o", "out.json"],
                   cwd=folder, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return {"wall": time.perf_counter() - start, "trials": n}


def row(tool: str, workload: str, result: dict, ideal: float) -> str:
    wall, n = result["wall"], result["trials"]
    overhead_ms = (wall - ideal) / n * 1000
    efficiency = f"{ideal / wall:.3f}" if ideal else "n/a"
    return f"| {tool} | {workload} | {n} | {wall:.2f} | {overhead_ms:.3f} | {efficiency} |"


def overhead_ms(result: dict, ideal: float) -> float:
    return (result["wall"] - ideal) / result["trials"] * 1000


PROTOTYPE = (  # the least a worker must do before its first call: Python, an asyncio loop, a line on its stdout
    "import asyncio, json, os\n"
    "async def main():\n    os.write(1, json.dumps({'op': 'ready'}).encode() + b'\\n')\n"
    "asyncio.run(main())\n"
)


def worker_starts(rounds: int) -> list[str]:
    """Seconds from start to ready: our sandboxed worker beside bare Python in the same bubblewrap view (started the
    same way, with the same limits, one after the other in each round), medians over `rounds`."""
    from release_pipeline.sandbox.isolation import Limits, Sandbox, interpreter
    from release_pipeline.sandbox.pool import WorkerPool

    folder = WORK / "start-agent"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "agent.py").write_text(AGENT)
    limits = Limits()
    sandbox = Sandbox(limits)

    def bare(code: str) -> float:
        prepared = sandbox.prepare([interpreter(), "-I", "-S", "-c", code], cwd=folder, limits=limits, long_lived=True)
        start = time.perf_counter()
        subprocess.run(prepared.argv, env=prepared.env, cwd=prepared.cwd, preexec_fn=prepared.preexec, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        took = time.perf_counter() - start
        prepared.cleanup()
        return took

    async def ours() -> float:
        pool = WorkerPool("agent:solve", folder, limits)
        start = time.perf_counter()
        worker = pool._spawn()
        worker.attach()
        await worker.ready()
        took = time.perf_counter() - start
        pool.close()
        return took

    agent_import = f"import sys; sys.path.insert(0, {str(folder)!r}); import agent"
    kinds = {"bare": "pass", "agent": agent_import, "prototype": PROTOTYPE}
    times: dict[str, list[float]] = {k: [] for k in [*kinds, "ours"]}
    for _ in range(rounds):
        for kind, code in kinds.items():
            times[kind].append(bare(code))
        times["ours"].append(asyncio.run(ours()))
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    return [
        f"- a sandboxed worker, from start to ready (agent imported, taking calls): {med['ours']:.1f} ms, median of "
        f"{rounds}; in the same bubblewrap view and limits: `python -I -S -c pass` {med['bare']:.1f} ms "
        f"(ratio {med['ours'] / med['bare']:.2f}), python importing the agent's module and nothing else "
        f"{med['agent']:.1f} ms (ratio {med['ours'] / med['agent']:.2f}), a minimal asyncio worker "
        f"{med['prototype']:.1f} ms (ratio {med['ours'] / med['prototype']:.2f})",
    ]


def cpu_seconds(command: list[str], runs: int = 9, cwd: Path | None = None) -> float:
    """Median CPU time (user + system, the command and its children) of a command."""
    import resource
    import tempfile

    cpu = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(command, cwd=cwd or Path(tempfile.mkdtemp()), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)  # fmt: skip
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(cpu)


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instant", type=int, default=5000)
    parser.add_argument("--sleep", type=int, default=2000)
    parser.add_argument("--skip-inspect", action="store_true")
    parser.add_argument("--starts", type=int, default=15, help="rounds of the worker start measurement")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    os.environ.setdefault("INSPECT_LOG_LEVEL", "error")
    print(f"before: {load()}", flush=True)

    ideal_sleep = args.sleep * LATENCY / CONCURRENCY
    rows = ["| tool | workload | trials | wall s | overhead ms/trial | efficiency |", "|---|---|---:|---:|---:|---:|"]
    results: dict[tuple[bool, str], dict] = {}
    for trusted, how in ((False, "sandboxed workers"), (True, "trusted, in-process")):
        tool = f"release-pipeline ({how})"
        results[trusted, "instant"] = bench_release(args.instant, 0, trusted)
        rows.append(row(tool, "instant", results[trusted, "instant"], 0))
        results[trusted, "sleep"] = bench_release(args.sleep, LATENCY, trusted)
        rows.append(row(tool, f"sleep 50 ms, c={CONCURRENCY}", results[trusted, "sleep"], ideal_sleep))
    if not args.skip_inspect:
        rows.append(row("inspect_ai", "instant", bench_inspect(args.instant, 0), 0))
        rows.append(row("inspect_ai", f"sleep 50 ms, c={CONCURRENCY}", bench_inspect(args.sleep, LATENCY), ideal_sleep))
    promptfoo = bench_promptfoo(args.instant)
    if promptfoo is not None:
        rows.append(row("promptfoo (echo provider)", "instant", promptfoo, 0))
    sandboxed, trusted = overhead_ms(results[False, "instant"], 0), overhead_ms(results[True, "instant"], 0)
    summary = [
        f"- sandboxed against trusted, instant agent: {sandboxed:.3f} against {trusted:.3f} ms a trial, "
        f"{sandboxed / trusted:.2f}x; efficiency at c={CONCURRENCY} on the 50 ms agent: sandboxed "
        f"{ideal_sleep / results[False, 'sleep']['wall']:.3f}, "
        f"trusted {ideal_sleep / results[True, 'sleep']['wall']:.3f}",
        *([] if promptfoo is not None else ["- promptfoo: not installed here (no `promptfoo` command)"]),
        *worker_starts(args.starts),
    ]
    bindir = Path(sys.executable).parent
    release = str(bindir / "release")
    log_ws = WORK / f"release-{args.sleep}-{LATENCY}-True"  # a workspace with a version and a run
    cli_startup([release, "--help"], 1)  # compiles the package's bytecode, as an installed package has it
    summary += [
        f"- `release --help`: {cpu_seconds([release, '--help']):.3f} s of CPU outside a workspace, "
        f"{cpu_seconds([release, '--help'], cwd=HERE.parent):.3f} s inside one (this repository); wall "
        f"{cli_startup([release, '--help']):.3f} s outside; `release log`: "
        f"{cpu_seconds([release, 'log'], cwd=log_ws):.3f} s of CPU (medians of 9 and 7)",
    ]
    if not args.skip_inspect and (bindir / "inspect").exists():
        summary.append(f"- `inspect --help`: {cli_startup([str(bindir / 'inspect'), '--help'], 3):.3f} s (median of 3)")
    print("\n".join(rows))
    print()
    print("\n".join(summary))
    print(f"\nafter: {load()}")


if __name__ == "__main__":
    main()
