"""Does the loop improve a real-benchmark agent on its holdout, and what does the gate buy? (issue 24)

    .venv/bin/python bench/loop.py --agent caller --arm gated   [--iterations 3] [--suite bfcl:...@40]
    .venv/bin/python bench/loop.py --agent caller --arm ungated
    .venv/bin/python bench/loop.py --agent coder  --arm gated   --suite humaneval:

One part a call (an agent, an arm), so that the slow CPU runs fit in time and can run side by side; each prints one
JSON line (and writes it to `--out`). A part is a fresh copy of the bundled agent with its suite, the heuristic
critic, one repeat (the agents decode greedily: repeats are copies), and the strategy portfolio
fewshot -> lora-sft -> grpo. It runs v1 on the holdout split, `release promote --iterations N`, and the canonical
version it ends on on the holdout again; reported: the holdout before and after, its pass->fail and fail->pass
flips, the gate's decisions with their fixes and regressions, the strategies used, wall times and the machine's
load. The `ungated` arm is the paper's ablation: the gate is replaced by "accept everything" (a workspace plugin,
bench/plugins_ungated/), so every candidate a strategy makes is promoted.
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

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RELEASE = str(REPO / ".venv" / "bin" / "release")
SUITES = {"caller": "bfcl:simple,multiple,parallel,irrelevance@40", "coder": "humaneval:"}
PORTFOLIO = [
    {"name": "fewshot", "per_iteration": 2, "max_demos": 4},
    {
        "name": "lora-sft",
        "steps": 80,
        "batch_size": 4,
        "learning_rate": 0.0005,
        "max_length": 1536,
        "lora_r": 16,
        "lora_alpha": 32,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    },
    {"name": "grpo", "steps": 8, "batch_size": 4, "num_generations": 4, "max_completion_length": 128},
]


def release(cwd: Path, *args: str, codes: tuple[int, ...] = (0,)) -> str:
    done = subprocess.run([RELEASE, *args], cwd=cwd, capture_output=True, text=True)
    sys.stderr.write(done.stderr)
    if done.returncode not in codes:
        raise SystemExit(f"release {' '.join(args)} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return done.stdout


def workspace(root: Path, agent: str, suite: str, ungated: bool) -> None:
    from workspace import IDENTITY

    root.mkdir(parents=True)
    shutil.copytree(REPO / "agents" / agent, root / "agents" / agent)
    shutil.copy(REPO / "gate-policy.yaml", root / "gate-policy.yaml")
    if ungated:
        shutil.copytree(HERE / "plugins_ungated", root / "plugins")
    config = {
        "agents": {agent: {"path": f"agents/{agent}", "suite": suite, "strategy": PORTFOLIO}},
        "critic": "heuristic",
        "run": {"repeats": 1, "concurrency": 2, "timeout_s": 300},
        "policy": "gate-policy.yaml",
    }
    (root / "release.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (root / ".gitignore").write_text(".release/\n")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", agent]):
        subprocess.run(["git", *args], cwd=root, check=True, env={**os.environ, **IDENTITY})
    release(root, "init")


def holdout(root: Path, agent: str) -> tuple[dict, dict[str, str]]:
    """The canonical version on the holdout split: the run's summary and each task's status."""
    run = json.loads(release(root, "run", "--agent", agent, "--split", "holdout", "-k", "1", "--json"))
    shown = json.loads(release(root, "show", "--run", str(run["id"]), "--json"))
    return run, {t["task_id"]: t["status"] for t in shown["trials"]}


def part(root: Path, agent: str, arm: str, suite: str, iterations: int) -> dict:
    load = [os.getloadavg()[0]]
    start = time.perf_counter()
    workspace(root, agent, suite, arm == "ungated")
    before_run, before = holdout(root, agent)
    t_holdout = time.perf_counter() - start
    load.append(os.getloadavg()[0])
    loop_start = time.perf_counter()
    steps = json.loads(
        release(root, "promote", "--agent", agent, "--iterations", str(iterations), "--json", codes=(0, 5))
    )
    t_loop = time.perf_counter() - loop_start
    load.append(os.getloadavg()[0])
    after_run, after = holdout(root, agent)
    load.append(os.getloadavg()[0])
    passed = lambda statuses: sorted(t for t, s in statuses.items() if s == "pass")  # noqa: E731
    return {
        "agent": agent,
        "arm": arm,
        "suite": suite,
        "iterations": iterations,
        "holdout_tasks": len(before),
        "holdout_before": len(passed(before)),
        "holdout_after": len(passed(after)),
        "canonical_after": after_run["version"],
        "pass_to_fail": sorted(t for t in before if before[t] == "pass" and after.get(t) == "fail"),
        "fail_to_pass": sorted(t for t in before if before[t] == "fail" and after.get(t) == "pass"),
        "errors_after": sorted(t for t, s in after.items() if s == "error"),
        "steps": [
            {k: s.get(k) for k in ("iteration", "strategy", "candidate", "decision", "promoted", "moved_on", "stopped")}
            | {"fixes": len(s["fixes"]), "regressions": len(s["regressions"]), "reason_codes": s["reason_codes"]}
            for s in steps
        ],
        "seconds": {
            "holdout_before": round(t_holdout),
            "loop": round(t_loop),
            "total": round(time.perf_counter() - start),
        },
        "load_1min": [round(x, 2) for x in load],
        "cpus": os.cpu_count(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agent", choices=sorted(SUITES), required=True)
    ap.add_argument("--arm", choices=("gated", "ungated"), required=True)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--suite", default="")
    ap.add_argument("--work", default="", help="workspace folder (default: a new one under /tmp)")
    ap.add_argument("--out", default="", help="also write the JSON line here")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    root = Path(args.work) if args.work else Path(f"/tmp/loop-{args.agent}-{args.arm}-{os.getpid()}")
    if root.exists():
        raise SystemExit(f"{root} exists: give another --work")
    result = part(root, args.agent, args.arm, args.suite or SUITES[args.agent], args.iterations)
    result["workspace"] = str(root)
    line = json.dumps(result)
    print(line, flush=True)
    if args.out:
        Path(args.out).write_text(line + "\n")


if __name__ == "__main__":
    main()
