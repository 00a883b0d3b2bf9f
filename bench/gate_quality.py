"""How often the gate decides wrong, measured: candidates whose per-task pass rates are known in advance.

    .venv/bin/python bench/gate_quality.py [--gates 400] [--seed 1] [--families all]

Each simulated gate drives the real gate code (`stages/gate_plan.plan_and_judge`, the statistics of
`stages/gate_stats.py`, the policy's defaults) with a trial source that draws pass or fail from each task's
known rate on each side. Families of scenarios (a suite size, a share of flaky tasks, what the candidate
changed) give:

- for candidates with a regression of at least the policy's `min_effect`: the share promoted;
- for clean candidates (fixes, no regression): the share rejected or left undecided;
- the mean trials per task per side this gate spent,

beside two baselines computed on the same trials: the paper's gate (one trial per task per version, reject on
any pass-to-fail flip) and a mean-score gate (accept when the candidate's mean pass rate over the same trials
as ours is higher). The canonical version's history (trials kept from earlier gates) is part of each
scenario: the gate reuses it, as the real one does.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from gate_sim import decide, simulate  # noqa: E402

from release_pipeline.policy import GatePolicy  # noqa: E402


@dataclass
class Family:
    name: str
    tasks: int
    flaky: float  # share of tasks with a pass rate near one half on both versions
    regression: str  # none | hard | soft
    fixes: int = 8
    history: int = 6  # canonical trials a task kept from earlier gates
    near_stable: float = 0.1  # share of tasks at 0.9 or 0.1


def scenario(family: Family, rng: random.Random) -> tuple[list[float], list[float], bool]:
    """Per-task pass rates of base and candidate, and whether the candidate has a regression of min_effect."""
    base, cand = [], []
    for _ in range(family.tasks):
        roll = rng.random()
        if roll < family.flaky:
            p = rng.uniform(0.35, 0.65)
        elif roll < family.flaky + family.near_stable:
            p = rng.choice((0.9, 0.1))
        else:
            p = rng.choice((1.0, 1.0, 0.0))
        base.append(p)
        cand.append(p)
    failing = [i for i, p in enumerate(base) if p <= 0.1]
    for i in rng.sample(failing, min(family.fixes, len(failing))):
        cand[i] = 1.0 if base[i] == 0.0 else 0.9
    if family.regression != "none":
        passing = [i for i, p in enumerate(base) if p >= 0.9 and cand[i] == p]
        i = rng.choice(passing)
        if family.regression == "hard":
            base[i], cand[i] = 1.0, 0.0
        else:
            base[i], cand[i] = 0.9, 0.4
    return base, cand, family.regression != "none"


@dataclass
class Tally:
    gates: int = 0
    wrong: int = 0
    undecided: int = 0
    trials: dict[str, int] = field(default_factory=lambda: {"base": 0, "candidate": 0})
    paper_wrong: int = 0
    mean_wrong: int = 0
    tasks: int = 0


def run_family(family: Family, gates: int, seed: int, policy: GatePolicy) -> Tally:
    rng = random.Random(seed)
    tally = Tally()
    for _ in range(gates):
        base, cand, regressing = scenario(family, rng)
        planned, source = simulate(base, cand, policy, rng, history=family.history)
        decision = decide(planned, policy)
        spent = source.spent()
        tally.gates += 1
        tally.tasks += family.tasks
        for side in spent:
            tally.trials[side] += spent[side]
        promoted = decision == "accepted"
        if regressing and promoted or (not regressing and not promoted):
            tally.wrong += 1
        tally.undecided += decision == "undecided"
        draws = source.draws
        # the paper's gate: one trial per task and version (each side's first), any pass->fail flip rejects
        first_base = [d[0] for d in draws["base"]]
        first_cand = [d[0] for d in draws["candidate"]]
        paper_promotes = not any(b and not c for b, c in zip(first_base, first_cand, strict=True))
        tally.paper_wrong += paper_promotes if regressing else not paper_promotes
        # a mean-score gate on the same trials as ours
        mean_base = sum(sum(d) / len(d) for d in draws["base"]) / family.tasks
        mean_cand = sum(sum(d) / len(d) for d in draws["candidate"]) / family.tasks
        mean_promotes = mean_cand > mean_base
        tally.mean_wrong += mean_promotes if regressing else not mean_promotes
    return tally


FAMILIES = [
    Family("deterministic, 60 tasks, hard regression", 60, 0.0, "hard", near_stable=0.0),
    Family("deterministic, 60 tasks, clean", 60, 0.0, "none", near_stable=0.0),
    Family("20% flaky, 60 tasks, soft regression 0.9->0.4", 60, 0.2, "soft"),
    Family("20% flaky, 60 tasks, clean", 60, 0.2, "none"),
    Family("20% flaky, 60 tasks, hard regression", 60, 0.2, "hard"),
    Family("0% flaky, 20 tasks, soft regression", 20, 0.0, "soft", fixes=3),
    Family("0% flaky, 20 tasks, clean", 20, 0.0, "none", fixes=3),
    Family("40% flaky, 200 tasks, soft regression", 200, 0.4, "soft", fixes=10),
    Family("40% flaky, 200 tasks, clean", 200, 0.4, "none", fixes=10),
    Family("20% flaky, 2000 tasks, soft regression", 2000, 0.2, "soft", fixes=20),
    Family("20% flaky, 2000 tasks, clean", 2000, 0.2, "none", fixes=20),
    Family("20% flaky, 60 tasks, clean, no history", 60, 0.2, "none", history=0),
    Family("20% flaky, 60 tasks, clean, long history", 60, 0.2, "none", history=30),
    Family("5% flaky, 60 tasks, clean", 60, 0.05, "none"),
    Family("5% flaky, 60 tasks, soft regression", 60, 0.05, "soft"),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gates", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", default="", help="run the families whose name contains this")
    parser.add_argument("--min-effect", type=float, default=GatePolicy.min_effect)
    args = parser.parse_args()
    policy = GatePolicy(min_effect=args.min_effect)
    print(
        f"policy: min_effect {policy.min_effect}, max_false_promote {policy.max_false_promote}, "
        f"max_false_reject {policy.max_false_reject}, repeats {policy.repeats}, "
        f"extra budget {policy.extra_budget(1)} a task; {args.gates} gates a family (large suites: fewer), "
        f"seed {args.seed}"
    )
    print(
        "| family | gates | ours: wrong | ours: undecided | paper gate: wrong | mean-score gate: wrong "
        "| trials/task/side (base, candidate) | s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for family in FAMILIES:
        if args.only and args.only not in family.name:
            continue
        gates = max(20, args.gates * 60 // max(60, family.tasks))
        start = time.perf_counter()
        t = run_family(family, gates, args.seed, policy)
        wall = time.perf_counter() - start
        per = {side: n / t.tasks for side, n in t.trials.items()}
        kind = "promoted" if family.regression != "none" else "rejected or undecided"
        print(
            f"| {family.name} | {t.gates} | {t.wrong / t.gates:.1%} {kind} | {t.undecided / t.gates:.1%} | "
            f"{t.paper_wrong / t.gates:.1%} | {t.mean_wrong / t.gates:.1%} | {per['base']:.1f}, "
            f"{per['candidate']:.1f} | {wall:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
