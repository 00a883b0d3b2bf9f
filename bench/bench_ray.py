"""The `ray` executor beside the local one, in one process run, on a throwaway Ray cluster on this machine.

Workloads:
  sleep      2,000 tasks, an agent that sleeps 50 ms, concurrency 50 (in-process, then in sandboxed workers), on the
             local executor and on a one-node Ray cluster, twice over the same version (two splits of 2,000): the
             first run starts the Ray executor's trial hosts (cold), the second finds them started (warm), as a
             gate's later rounds and a run's next split do. Efficiency = tasks x 50 ms / concurrency / wall;
             overhead = wall minus that ideal, per trial. Connecting to the cluster (once per process) is timed
             apart. Then the cost of one more trial, start-up aside (n and 2n trials, cold), and a cold run of
             `--large` trials: how long a run must be for the start-up not to matter.
  humaneval  HumanEval's 164 canonical solutions x 3 repeats through the sandbox (its three splits), one trial
             per CPU (`resources: {cpus: 1}`, concurrency 2), on one Ray node of 1 CPU, then on two such nodes

Usage: python bench/bench_ray.py [--sleep N] [--large N] [--repeats K] [--skip-humaneval]  (after `make
benchmark-data`). Prints a Markdown section for bench/RESULTS.md; writes nothing outside bench/.work/.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml
from bench_run import CONCURRENCY, LATENCY, make_workspace
from workspace import commit_workspace

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
sys.path.insert(0, str(HERE.parent / "tests"))  # the throwaway cluster the tests use

from ray_cluster import LoopbackNetwork, RayCluster  # noqa: E402

INSIDE = "RELEASE_BENCH_IN_LOOPBACK_NETWORK"


def timed_run(root: Path, executor: str, address: str = "", splits: tuple[str, ...] = ("dev",)) -> tuple[float, int]:
    """Wall time of the runs of a fresh workspace's canonical version over `splits`, and how many trials were
    stored."""
    walls, stored = timed_runs(root, executor, address, splits)
    return sum(walls), stored


def timed_runs(root: Path, executor: str, address: str, splits: tuple[str, ...]) -> tuple[list[float], int]:
    """Wall time of each run of a fresh workspace's canonical version, one per split in turn, and how many trials
    were stored in all."""
    from release_pipeline.pipeline import Pipeline
    from release_pipeline.stages.promote import record_baseline
    from release_pipeline.trials.settings import ADDRESS_ENV, EXECUTOR_ENV
    from release_pipeline.workspace import Workspace

    os.environ[EXECUTOR_ENV], os.environ[ADDRESS_ENV] = executor, address
    ws = Workspace(root)
    agent = ws.agent()
    record_baseline(ws, agent)
    version = ws.head(agent)
    ws.materialize(agent, version)
    walls, stored = [], 0
    for split in splits:
        start = time.perf_counter()
        outcome = Pipeline(ws, agent).run(version, split=split)
        walls.append(time.perf_counter() - start)
        stored += len(ws.store.trials(outcome.id, with_trace=False))
        assert outcome.counts["error"] == 0, outcome.counts
    return walls, stored


def sleep_workspace(root: Path, n: int, trusted: bool) -> Path:
    """The run benchmark's sleeping agent with its n tasks twice: in split `dev` and again in split `holdout`."""
    make_workspace(root, n, LATENCY, trusted=trusted)
    suite = root / "specs" / "bench.jsonl"
    lines = suite.read_text().splitlines()
    again = [json.dumps({**json.loads(line), "id": f"h{i}", "split": "holdout"}) for i, line in enumerate(lines)]
    suite.write_text("\n".join(lines + again) + "\n")
    commit_workspace(root, "bench: a second split")
    return root


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
    parser.add_argument("--large", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-humaneval", action="store_true")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    rows = [
        "| workload | executor | run | trials | wall s | overhead ms/trial | efficiency |",
        "|---|---|---|---:|---:|---:|---:|",
    ]

    def row(workload: str, executor: str, which: str, trials: int, wall: float) -> str:
        ideal = trials * LATENCY / CONCURRENCY
        overhead = (wall - ideal) / trials * 1000
        return f"| {workload} | {executor} | {which} | {trials} | {wall:.2f} | {overhead:.3f} | {ideal / wall:.3f} |"

    cluster = RayCluster(isolate=False)  # this process and the cluster share the loopback network main() made
    os.environ.update({k: v for k, v in cluster.env.items() if k.startswith("RAY_")})
    try:
        cluster.start_head(cpus=1)
        cluster.wait_for(1)
        from release_pipeline.builtin.ray_executor import connect

        start = time.perf_counter()
        connect(cluster.address)
        connected = time.perf_counter() - start
        for trusted, how in ((True, "in-process"), (False, "sandboxed")):
            for executor in ("local", "ray", "local", "ray"):  # alternating, twice: these machines are noisy
                root = sleep_workspace(WORK / f"ray-sleep-{executor}-{how}", args.sleep, trusted=trusted)
                address = cluster.address if executor == "ray" else ""
                walls, stored = timed_runs(root, executor, address, ("dev", "holdout"))
                assert stored == 2 * args.sleep, stored
                for wall, which in zip(walls, ("first (cold)", "next (warm)"), strict=True):
                    rows.append(row(f"sleep 50 ms, c={CONCURRENCY}, {how}", executor, which, args.sleep, wall))
        for executor in ("local", "ray"):
            root = make_workspace(WORK / f"ray-large-{executor}", args.large, LATENCY, trusted=True)
            wall, stored = timed_run(root, executor, cluster.address if executor == "ray" else "")
            rows.append(row(f"sleep 50 ms, c={CONCURRENCY}, in-process", executor, "first (cold)", stored, wall))
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
        marginal.append(f"- connecting this process to the cluster (once per process): {connected:.2f} s")
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
            rows.append(f"| HumanEval x{args.repeats}, 1 CPU a trial | ray, {nodes} node(s) of 1 CPU | three splits "
                        f"| {stored} | {wall:.2f} | | |")  # fmt: skip
    finally:
        cluster.stop()
    print("\n".join(rows))
    print()
    print("\n".join(marginal))
    if walls:
        print(f"- two nodes against one on HumanEval: {min(walls[1]) / min(walls[2]):.2f}x (best of 2 each)")


def in_loopback_network() -> int:
    """This benchmark run again in a network of its own with loopback only (the cluster's services listen on every
    interface, unauthenticated), and its exit status."""
    network = LoopbackNetwork()
    try:
        return subprocess.run(network.enter + [sys.executable, *sys.argv], env={**os.environ, INSIDE: "1"}).returncode
    finally:
        network.stop()


if __name__ == "__main__":
    if os.environ.get(INSIDE):
        main()
    else:
        sys.exit(in_loopback_network())
