"""Trials drawn from known pass rates, for the gate's planner and statistics (tests and bench/gate_quality.py)."""

from __future__ import annotations

import random

from release_pipeline.builtin.gate_checks import release_gate_checks
from release_pipeline.config.policy import GatePolicy
from release_pipeline.gate.plan import Planned, plan_and_judge
from release_pipeline.models import GateEvidence, Task, TaskOutcome, decision_of


class SimulatedSource:
    """The gate's trial source, with each task's pass rate known on each side.

    The base starts with `history` trials a task already stored, as after earlier gates of the same canonical
    version; the gate reuses them, as the real one does.
    """

    def __init__(
        self, base: list[float], cand: list[float], rng: random.Random, history: int = 0, coupled: bool = False
    ):
        self.rates = {"base": base, "candidate": cand}
        self.rng = rng
        # `coupled`: repeat i of a task draws one uniform for both versions (the same seed), so a task that did
        # not change passes or fails on both sides together; else each side draws its own
        self.coupled = coupled
        self.uniforms: dict[str, list[list[float]]] = {side: [[] for _ in base] for side in self.rates}
        self.draws: dict[str, list[list[bool]]] = {side: [[] for _ in base] for side in self.rates}
        for i in range(len(base)):
            self._draw("base", i, history)
        self.history = history

    def _draw(self, side: str, i: int, total: int) -> None:
        draws = self.draws[side][i]
        own = self.uniforms["base" if self.coupled else side][i]
        while len(own) < total:
            own.append(self.rng.random())
        while len(draws) < total:
            draws.append(own[len(draws)] < self.rates[side][i])

    def outcomes(self) -> dict[str, dict[str, TaskOutcome]]:
        return {
            side: {f"t{i}": TaskOutcome(f"t{i}", sum(d), len(d), 0) for i, d in enumerate(draws)}
            for side, draws in self.draws.items()
        }

    def sequences(self) -> dict[str, dict[str, tuple[str | None, ...]]]:
        return {
            side: {f"t{i}": tuple("pass" if x else "fail" for x in d) for i, d in enumerate(draws)}
            for side, draws in self.draws.items()
        }

    def extend(self, wanted: dict[str, dict[str, int]]) -> None:
        for side, per_task in wanted.items():
            for task_id, total in per_task.items():
                self._draw(side, int(task_id[1:]), total)

    def spent(self) -> dict[str, int]:
        """Trials this gate ran per side (the base's history not counted)."""
        base = sum(len(d) for d in self.draws["base"]) - self.history * len(self.draws["base"])
        return {"base": base, "candidate": sum(len(d) for d in self.draws["candidate"])}


def simulate(
    base: list[float],
    cand: list[float],
    policy: GatePolicy,
    rng: random.Random,
    history: int = 0,
    coupled: bool = False,
) -> tuple[Planned, SimulatedSource]:
    """One gate over tasks with these pass rates: what the planner decided, and the trials it drew."""
    source = SimulatedSource(base, cand, rng, history, coupled)
    tasks = [Task(f"t{i}", i, "gate") for i in range(len(base))]
    return plan_and_judge(tasks, source, policy), source


def decide(planned: Planned, policy: GatePolicy) -> str:
    """The decision the real gate makes from these rows: the built-in checks, then their reason codes."""
    evidence = GateEvidence(
        "sim", 1, 2, "gate", policy.alpha, planned.rows, [], [], [], [], [], None, None,
        budget_exhausted=planned.budget_exhausted, open_fixes=planned.open_fixes,
    )  # fmt: skip
    return decision_of(release_gate_checks(evidence=evidence, policy=policy))
