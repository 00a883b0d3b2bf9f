"""The gate through the real CLI (`release gate --json`) on an agent with known per-task pass rates.

    .venv/bin/python bench/gate_cli.py [--clean 30] [--soft 30] [--hard 10]

The suite and agent of `tests/test_gate_cli_rates.py`: 60 gate tasks, 10 flaky (0.5 on both versions), 8
that the candidate fixes (0 -> 1), 12 failing and 29 passing on both, and one at 0.9 that a soft regression
drops to 0.4 (a hard one drops a passing task to 0). Every candidate draws with a seed salt of its own, so its
trials are independent of the base's. One workspace: the canonical version's gate trials are stored and reused
by every later gate, as in real use; candidates are gated in turns (clean, soft, hard). The floor per gate is
the fixed-sample floor (`gate_floor.py`) of its clean candidate, given the base trials stored before it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests"), str(HERE)]
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from gate_floor import floor  # noqa: E402
from test_gate_cli_rates import base_rates, candidate_rates, gate_once, workspace  # noqa: E402

from release_pipeline.config.policy import GatePolicy  # noqa: E402


def clean_floor(history: dict[str, int], policy: GatePolicy) -> int:
    base, cand = base_rates(), candidate_rates("clean")
    random_tasks = sum(1 for x in base if base[x] not in (0.0, 1.0) or cand[x] not in (0.0, 1.0))
    want = round(0.9 ** (1 / random_tasks), 4)
    return sum(
        floor(
            base[x],
            cand[x],
            history.get(f"t{x:02d}", 0),
            policy.min_effect,
            policy.max_false_promote,
            want if base[x] not in (0.0, 1.0) or cand[x] not in (0.0, 1.0) else 0.99,
        )  # fmt: skip
        for x in base
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clean", type=int, default=30)
    parser.add_argument("--soft", type=int, default=30)
    parser.add_argument("--hard", type=int, default=10)
    args = parser.parse_args()
    policy = GatePolicy()
    order = ["clean"] * args.clean + ["soft"] * args.soft + ["hard"] * args.hard
    # interleave the kinds, so each kind sees a base history of every length
    order = sorted(order, key=lambda k: (order[: order.index(k)].count(k), ["clean", "soft", "hard"].index(k)))
    tally: dict[str, dict[str, float]] = {}
    history: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = workspace(Path(tmp) / "ws")
        start = time.perf_counter()
        for salt, kind in enumerate(order, start=1):
            floor_trials = clean_floor(history, policy) if kind == "clean" else 0
            report = gate_once(root, kind, salt)
            t = tally.setdefault(kind, {"gates": 0, "accepted": 0, "rejected": 0, "undecided": 0, "base": 0,
                                        "candidate": 0, "floor": 0, "ran": 0})  # fmt: skip
            t["gates"] += 1
            t[report["decision"]] += 1
            t["base"] += report["spent"]["base"]
            t["candidate"] += report["spent"]["candidate"]
            t["ran"] += report["spent"]["base"] + report["spent"]["candidate"]
            t["floor"] += floor_trials
            history = {row["task_id"]: row["base"]["trials"] for row in report["tasks"]}
        wall = time.perf_counter() - start
    print(f"{len(order)} gates through `release gate --json`, 60 gate tasks, {wall:.0f} s")
    print("| candidates | gates | accepted | rejected | undecided | trials/task (base, cand) | trials / floor |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind, t in tally.items():
        n = t["gates"]
        ratio = f"{t['ran'] / t['floor']:.2f}" if t["floor"] else "-"
        print(
            f"| {kind} | {n:.0f} | {t['accepted'] / n:.1%} | {t['rejected'] / n:.1%} | {t['undecided'] / n:.1%} | "
            f"{t['base'] / n / 60:.1f}, {t['candidate'] / n / 60:.1f} | {ratio} |"
        )


if __name__ == "__main__":
    main()
