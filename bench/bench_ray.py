"""The `ray` executor beside the local one, in one process run, on a throwaway Ray cluster on this machine.

Workloads:
  sleep      2,000 tasks, an agent that sleeps 50 ms, concurrency 50 (in-process, then in sandboxed workers), on the
             local executor and on a one-node Ray cluster: efficiency = tasks x 50 ms / concurrency / wall, and
             overhead per trial (wall minus the ideal, per trial; Ray's own: the difference between the two)
  humaneval  HumanEval's 164 canonical solutions x 3 repeats through the sandbox (its three splits), one trial
             per CPU (`resources: {cpus: 1}`, concurrency 2), on one Ray node of 1 CPU, then on two such nodes

Usage: python bench/bench_ray.py [--sleep N] [--repeats K]     (after `make benchmark-data`)
Prints a Markdown section for bench/RESULTS.md; writes nothing outside bench/.work/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import yaml
from bench_run import CONCURRENCY, LATENCY, make_workspace
from workspace import commit_workspace

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
sys.path.insert(0, str(HERE.parent / "tests"))  # the throwaway cluster the tests use

from ray_cluster import RayCluster  # noqa: E402


def timed_run(root: Path, executor: str, address: str = "", splits: tuple[str, ...] = ("dev",)) -> tuple[float, int]:
    """Wall time of the runs of a fresh workspace's canonical version over `splits`, and how many trials were
    stored."""
    from release_pipeline.stages.promote import record_baseline
    from release_pipeline.stages.run import ADDRESS_ENV, EXECUTOR_ENV, run_version
    from release_pipeline.workspace import Workspace

    os.environ[EXECUTOR_ENV], os.environ[ADDRESS_ENV] = executor, address
    ws = Workspace(root)
    agent = ws.agent()
    record_baseline(ws, agent)
    version = ws.head(agent)
    ws.materialize(agent, version)
    wall = stored = 0
    for split in splits:
        start = time.perf_counter()
        outcome = run_version(ws, agent, version, split=split)
        wall += time.perf_counter() - start
        stored += len(ws.store.trials(outcome.run["id"], with_trace=False))
        assert outcome.counts["error"] == 0, outcome.counts
    return wall, stored


def humaneval_workspace(root: Path, repeats: int) -> Path:
    """The oracle agent (HumanEval's canonical solutions) asking one CPU a trial."""
    shutil.rmtree(root, ignore_errors=True)
    (root / "agents" / "oracle").mkdir(parents=True)
    shutil.copy(HERE.parent / "tests" / "data" / "humaneval_oracle.py", root / "agents" / "oracle" / "agent.py")
    manifest = {"name": "oracle", "adapter": "callable", "entry": "agent:solve", "editable": ["agent.py"]}
    (root / "agents" / "oracle" / "agent.yaml").write_text(yaml.safe_dump({**manifest, "resources": {"cpus": 1}}))
    config = {"agents": {"oracle": {"path": "agents/oracle", "suite": "humaneval:"}}}
    (root / "release.yaml").write_text(yaml.safe_dump({**config, "run": {"repeats": repeats, "concurrency": 2}}))
    commit_workspace(root, "oracle")
    return root


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sleep", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-humaneval", action="store_true")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    ideal = args.sleep * LATENCY / CONCURRENCY
    rows = [
        "| workload | executor | trials | wall s | overhead ms/trial | efficiency |",
        "|---|---|---:|---:|---:|---:|",
    ]

    cluster = RayCluster()
    os.environ.update({k: v for k, v in cluster.env.items() if k.startswith("RAY_")})
    try:
        cluster.start_head(cpus=1)
        cluster.wait_for(1)
        for trusted, how in ((True, "in-process"), (False, "sandboxed")):
            for executor in ("local", "ray", "local", "ray"):  # alternating, twice: these machines are noisy
                root = make_workspace(WORK / f"ray-sleep-{executor}-{how}", args.sleep, LATENCY, trusted=trusted)
                wall, stored = timed_run(root, executor, cluster.address if executor == "ray" else "")
                assert stored == args.sleep, stored
                overhead = (wall - ideal) / stored * 1000
                rows.append(f"| sleep 50 ms, c={CONCURRENCY}, {how} | {executor} | {stored} | {wall:.2f} | "
                            f"{overhead:.3f} | {ideal / wall:.3f} |")  # fmt: skip
        marginal = []
        for executor in ("local", "ray"):  # the cost of one more trial, start-up aside: 2n trials against n
            walls_n = []
            for n in (args.sleep, 2 * args.sleep):
                root = make_workspace(WORK / f"ray-marginal-{executor}-{n}", n, LATENCY, trusted=True)
                walls_n.append(timed_run(root, executor, cluster.address if executor == "ray" else "")[0])
            per_trial = (walls_n[1] - walls_n[0]) / args.sleep * 1000
            fixed = walls_n[0] - per_trial * args.sleep / 1000
            marginal.append(
                f"- {executor}, in-process, c={CONCURRENCY}: {per_trial:.3f} ms per further trial (the ideal is "
                f"{LATENCY / CONCURRENCY * 1000:.3f}), {fixed:.2f} s fixed (start-up): {walls_n[0]:.2f} s for "
                f"{args.sleep} trials, {walls_n[1]:.2f} s for {2 * args.sleep}"
            )
        walls = {}
        for nodes in () if args.skip_humaneval else (1, 2, 1, 2):
            if nodes == 2 and len(cluster.nodes) == 1:
                cluster.add_node(cpus=1)
                cluster.wait_for(2)
            if nodes == 1 and len(cluster.nodes) == 2:
                cluster.kill(cluster.nodes.pop())
                time.sleep(5)  # the head notices the node is gone
            root = humaneval_workspace(WORK / f"ray-humaneval-{nodes}", args.repeats)
            wall, stored = timed_run(root, "ray", cluster.address, ("dev", "gate", "holdout"))
            walls.setdefault(nodes, []).append(wall)
            rows.append(f"| HumanEval x{args.repeats}, 1 CPU a trial | ray, {nodes} node(s) of 1 CPU | {stored} | "
                        f"{wall:.2f} | | |")  # fmt: skip
    finally:
        cluster.stop()
    print("\n".join(rows))
    print()
    print("\n".join(marginal))
    if walls:
        print(f"- two nodes against one on HumanEval: {min(walls[1]) / min(walls[2]):.2f}x (best of 2 each)")


if __name__ == "__main__":
    main()
