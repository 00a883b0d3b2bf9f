"""What a gate will cost before it runs: `release gate --plan` prices a whole gate from the stored history.

`price_gate` runs the planner itself (`plan.py`) on simulated trials drawn at each task's stored base rate, so a
price includes the pooled budget's effect; the per-task figures are `need.py`'s. Simulations are seeded, so the
same policy prices the same gate the same way.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import TYPE_CHECKING

from release_pipeline.gate.plan import plan_and_judge
from release_pipeline.gate.stats import Sequences, Status
from release_pipeline.models import GatePlan, PlanClass, Task, TaskOutcome

if TYPE_CHECKING:
    from release_pipeline.config.policy import GatePolicy

# ----- pricing a whole gate from the stored history ---------------------------------------------------------


class PricingSource:
    """A trial source for pricing: the base's stored trials as they are, new trials drawn at each task's stored rate.

    The candidate is priced as a clean one: it passes each task at the base's stored rate, independently (a
    shared seed would only make pairs agree more often, which costs less).
    """

    def __init__(self, history: dict[str, tuple[Status, ...]], rates: dict[str, float], rng: random.Random):
        self.rates, self.rng = rates, rng
        self.seqs: dict[str, dict[str, list[Status]]] = {
            "base": {t: list(history.get(t, ())) for t in rates},
            "candidate": {t: [] for t in rates},
        }
        self.stored = {t: len(seq) for t, seq in self.seqs["base"].items()}

    def outcomes(self) -> dict[str, dict[str, TaskOutcome]]:
        return {
            side: {
                t: TaskOutcome(t, seq.count("pass"), seq.count("pass") + seq.count("fail"), seq.count("error"))
                for t, seq in per_task.items()
            }
            for side, per_task in self.seqs.items()
        }

    def sequences(self) -> Sequences:
        return {side: {t: tuple(seq) for t, seq in per_task.items()} for side, per_task in self.seqs.items()}

    def extend(self, wanted: dict[str, dict[str, int]]) -> None:
        for side, per_task in wanted.items():
            for task_id, total in per_task.items():
                seq = self.seqs[side][task_id]
                while len(seq) < total:
                    seq.append("pass" if self.rng.random() < self.rates[task_id] else "fail")

    def new_trials(self, side: str, task_id: str) -> int:
        return len(self.seqs[side][task_id]) - (self.stored[task_id] if side == "base" else 0)


def _class_of(passes: int, trials: int) -> tuple[str, str]:
    if not trials:
        return "no stored trials", "-"
    if passes == trials:
        return "always passed", "1"
    if passes == 0:
        return "always failed", "0"
    rate = passes / trials
    if rate <= 0.2 or rate >= 0.8:
        return "nearly stable", "<= 0.2 or >= 0.8"
    return "flaky", "0.2 to 0.8"


def simulate_gate(
    history: dict[str, tuple[Status, ...]], policy: GatePolicy, seed: int, protected: frozenset[str] = frozenset()
) -> tuple[bool, dict[str, dict[str, int]]]:
    """One priced gate: whether every task was shown safe within the budget, and the new trials per side and task."""
    rates = {}
    for t, seq in history.items():
        judged = [s for s in seq if s in ("pass", "fail")]
        rates[t] = judged.count("pass") / len(judged) if judged else 0.5
    source = PricingSource(history, rates, random.Random(seed))
    tasks = [Task(t, None, "gate") for t in history]
    planned = plan_and_judge(tasks, source, policy, protected=set(protected))
    settled = all(r.safe for r in planned.rows)
    spent = {side: {t: source.new_trials(side, t) for t in history} for side in ("base", "candidate")}
    return settled, spent


def price_gate(
    agent: str,
    base: int,
    history: dict[str, tuple[Status, ...]],
    dollars_per_trial: dict[str, float],
    policy: GatePolicy,
    sims: int | None = None,
    sweep: bool = True,
) -> GatePlan:
    """What showing every gate task safe is expected to cost, from the stored history (see `GatePlan`)."""
    tasks = len(history)
    sims = sims or max(4, min(20, 1200 // max(1, tasks)))
    # priced for safety alone: fixes are the candidate's business, and a clean candidate without any would
    # only have the planner chase chance flips
    priced = replace(policy, min_fixes=0, require_more_fixes_than_regressions=False)
    settled, spent = _run_sims(history, priced, sims)
    rows = _class_rows(history, spent, dollars_per_trial, sims)
    expected = {side: round(sum(sum(s[side].values()) for s in spent) / sims, 1) for side in ("base", "candidate")}
    dollars = _dollars(spent, dollars_per_trial, list(history)) / sims
    chance = settled / sims
    affordable = _affordable(history, priced, sims) if sweep else None
    notes = ["priced for a clean candidate that passes each task at the base's stored rate, independently of the base"]
    if chance < 0.9:
        notes.append(
            f"the budget ({policy.extra_budget(tasks)} extra trials) settles every task in only {chance:.0%} of "
            f"priced gates at min_effect {policy.min_effect:g}: expect `undecided`; raise extra_trial_budget"
            + (f" or min_effect (>= {affordable:g} is settled 90 % of the time)" if affordable else "")
        )
    return GatePlan(
        agent, base, tasks, policy.min_effect, policy.extra_budget(tasks), sims, expected, round(dollars, 6),
        round(chance, 3), affordable, tuple(sorted(rows, key=lambda r: r.name)), tuple(notes),
    )  # fmt: skip


Spent = list[dict[str, dict[str, int]]]  # per simulated gate: side -> task -> new trials


def _dollars(spent: Spent, dollars_per_trial: dict[str, float], ids: list[str]) -> float:
    """What the simulated gates' trials of tasks `ids` cost, together."""
    return sum(dollars_per_trial.get(t, 0.0) * (s["base"][t] + s["candidate"][t]) for s in spent for t in ids)


def _class_rows(
    history: dict[str, tuple[Status, ...]], spent: Spent, dollars_per_trial: dict[str, float], sims: int
) -> list[PlanClass]:
    """The expected trials and dollars a task of each class (always passed, flaky, ...) costs."""
    classes: dict[str, list[str]] = {}
    ranges: dict[str, str] = {}
    for t, seq in history.items():
        name, rates = _class_of(seq.count("pass"), seq.count("pass") + seq.count("fail"))
        classes.setdefault(name, []).append(t)
        ranges[name] = rates
    rows = []
    for name, ids in classes.items():
        per = {side: sum(s[side][t] for s in spent for t in ids) / (sims * len(ids)) for side in ("base", "candidate")}
        a_task = round(_dollars(spent, dollars_per_trial, ids) / (sims * len(ids)), 6)
        rows.append(PlanClass(name, len(ids), ranges[name], round(per["base"], 1), round(per["candidate"], 1), a_task))
    return rows


def _affordable(history: dict[str, tuple[Status, ...]], priced: GatePolicy, sims: int) -> float | None:
    """The smallest min_effect settled 90 % of the time (settling only gets easier as it grows), by bisection."""
    grid = [round(0.1 * k, 1) for k in range(1, 10)]
    lo, hi, few = 0, len(grid), max(4, sims // 2)  # grid[hi] settles (len: none found), grid[< lo] do not
    while lo < hi:
        mid = (lo + hi) // 2
        hits, _ = _run_sims(history, replace(priced, min_effect=grid[mid]), few)
        lo, hi = (lo, mid) if hits / few >= 0.9 else (mid + 1, hi)
    return grid[hi] if hi < len(grid) else None


def _run_sims(
    history: dict[str, tuple[Status, ...]], policy: GatePolicy, sims: int
) -> tuple[int, list[dict[str, dict[str, int]]]]:
    settled, spent = 0, []
    for i in range(sims):
        ok, used = simulate_gate(history, policy, seed=i)
        settled += ok
        spent.append(used)
    return settled, spent
