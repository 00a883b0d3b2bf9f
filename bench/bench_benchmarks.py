"""Benchmark-suite verification: HumanEval's 164 canonical solutions through the runner and the sandbox,
and every supported BFCL ground truth through our verifier.

Usage: python bench/bench_benchmarks.py     (after `make benchmark-data`)
Prints a Markdown section for bench/RESULTS.md.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import yaml
from workspace import commit_workspace

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data"
WORK = HERE / ".work" / "humaneval"


def humaneval() -> tuple[float, int, int]:
    from release_pipeline.pipeline import Pipeline
    from release_pipeline.stages.promote import record_baseline
    from release_pipeline.workspace import Workspace

    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "agents" / "oracle").mkdir(parents=True)
    shutil.copy(DATA / "humaneval_oracle.py", WORK / "agents" / "oracle" / "agent.py")
    (WORK / "agents" / "oracle" / "agent.yaml").write_text(
        yaml.safe_dump({"name": "oracle", "adapter": "callable", "entry": "agent:solve", "editable": ["agent.py"]})
    )
    (WORK / "release.yaml").write_text(
        yaml.safe_dump({"agents": {"oracle": {"path": "agents/oracle", "suite": "humaneval:"}}, "run": {"repeats": 1}})
    )
    commit_workspace(WORK, "oracle")
    ws = Workspace(WORK)
    agent = ws.agent()
    record_baseline(ws, agent)
    version = ws.head(agent)
    start = time.perf_counter()
    passed = total = 0
    for split in ("dev", "gate", "holdout"):
        counts = Pipeline(ws, agent).run(version, split=split).counts
        passed += counts["pass"]
        total += sum(counts.values())
    return time.perf_counter() - start, passed, total


def bfcl() -> tuple[float, int, int]:
    sys.path.insert(0, str(DATA))
    from bfcl_oracle import oracle_calls

    from release_pipeline.benchmarks.bfcl import bfcl as verifier
    from release_pipeline.benchmarks.bfcl import load

    tasks = load("", None).tasks
    calls = [oracle_calls(t.expected, t.input["functions"]) for t in tasks]
    verify = verifier({}, None)
    start = time.perf_counter()
    passed = sum(verify(t, c).passed for t, c in zip(tasks, calls, strict=True))
    return time.perf_counter() - start, passed, len(tasks)


def main() -> None:
    from release_pipeline.sandbox.isolation import Sandbox

    wall, passed, total = humaneval()
    print(
        f"- HumanEval: {passed}/{total} canonical solutions passed through the runner and the sandbox "
        f"(isolated: {Sandbox().isolated}) in {wall:.1f} s at the default concurrency of 8, "
        f"{wall / total * 1000:.0f} ms a problem (target: 164 in under 30 s)"
    )
    wall, passed, total = bfcl()
    print(
        f"- BFCL: {passed}/{total} ground-truth answers passed our verifier in {wall * 1000:.1f} ms, "
        f"{wall / total * 1000:.3f} ms a task (target: under 1 ms)"
    )


if __name__ == "__main__":
    main()
