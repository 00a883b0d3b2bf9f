"""The statistics of the flip-centered gate: per-task exact tests, classes, and a paired aggregate test.

A change of a task's pass rate counts as a fix or a regression only when
Fisher's exact test, one-sided in the direction observed, puts it below the
policy's `alpha`. With 3 repeats a side that takes a clean 3/3 -> 0/3 flip
(p = 1/20); anything less clear is *uncertain*, and the gate buys more
repeats for exactly those tasks while more could still confirm the change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import comb

from release_pipeline.models import TaskOutcome


def _hypergeom_pmf(k: int, total: int, successes: int, draws: int) -> float:
    return comb(successes, k) * comb(total - successes, draws - k) / comb(total, draws)


def fisher_one_sided(base_pass: int, base_n: int, cand_pass: int, cand_n: int) -> tuple[float, float]:
    """(p of a fix, p of a regression): P(candidate passes >= observed) and P(<= observed), margins fixed."""
    total, successes = base_n + cand_n, base_pass + cand_pass
    lo, hi = max(0, cand_n - (total - successes)), min(cand_n, successes)
    pmf = {k: _hypergeom_pmf(k, total, successes, cand_n) for k in range(lo, hi + 1)}
    p_fix = sum(p for k, p in pmf.items() if k >= cand_pass)
    p_regression = sum(p for k, p in pmf.items() if k <= cand_pass)
    return min(1.0, p_fix), min(1.0, p_regression)


def binomial_two_sided(b: int, c: int) -> float:
    """Exact McNemar test on discordant pairs: two-sided binomial p of a split at least this uneven."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(comb(n, k) for k in range(0, min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


@dataclass
class TaskRow:
    """One task's evidence in the gate: both versions' outcomes, the tests, and the verdict."""

    task_id: str
    base: TaskOutcome
    candidate: TaskOutcome
    p_fix: float
    p_regression: float
    outcome: str  # fix | regression | unchanged_pass | unchanged_fail | flaky | uncertain | no_data
    protected: bool = False
    aligned: bool = False


def classify(base: TaskOutcome, cand: TaskOutcome, alpha: float) -> tuple[str, float, float]:
    """The outcome of one task, with its two one-sided p values."""
    if not base.trials or not cand.trials:
        return "no_data", 1.0, 1.0
    p_fix, p_reg = fisher_one_sided(base.passes, base.trials, cand.passes, cand.trials)
    if cand.rate > base.rate and p_fix <= alpha:
        return "fix", p_fix, p_reg
    if cand.rate < base.rate and p_reg <= alpha:
        return "regression", p_fix, p_reg
    if base.rate == cand.rate:
        if base.klass == "stable_pass":
            return "unchanged_pass", p_fix, p_reg
        if base.klass == "stable_fail":
            return "unchanged_fail", p_fix, p_reg
        return "flaky", p_fix, p_reg
    return "uncertain", p_fix, p_reg


def could_confirm(base: TaskOutcome, cand: TaskOutcome, alpha: float, max_repeats: int) -> bool:
    """Whether repeats up to `max_repeats` a side could still confirm the change observed so far.

    Assumes the most favourable continuation (the better side passes every new
    trial, the worse side fails them); if even that cannot reach `alpha`, more
    repeats would be money spent on a foregone 'flaky'.
    """
    extra_b, extra_c = max_repeats - base.trials, max_repeats - cand.trials
    if extra_b <= 0 and extra_c <= 0:
        return False
    if cand.rate > base.rate:
        p, _ = fisher_one_sided(base.passes, max_repeats, cand.passes + extra_c, max_repeats)
    else:
        _, p = fisher_one_sided(base.passes + extra_b, max_repeats, cand.passes, max_repeats)
    return p <= alpha


@dataclass
class GateEvidence:
    """Everything the gate's checks decide on. Plain data: plugins receive it through `release_gate_checks`."""

    agent: str
    base: int
    candidate: int
    split: str
    alpha: float
    rows: list[TaskRow]
    protected_tasks: list[str]
    target_tasks: list[str]
    target_tags: list[str]
    changed_files: list[str]
    forbidden_files: list[str]
    base_run: int
    candidate_run: int
    extra_trials: int = 0
    errors_excluded: int = 0
    budget_exhausted: bool = False
    notes: list[str] = field(default_factory=list)

    def ids(self, outcome: str) -> list[str]:
        return [r.task_id for r in self.rows if r.outcome == outcome]

    @property
    def fixes(self) -> list[str]:
        return self.ids("fix")

    @property
    def regressions(self) -> list[str]:
        return self.ids("regression")

    @property
    def flaky(self) -> list[str]:
        """Tasks reported as flaky: a non-stable class on either side, or a change too noisy to confirm."""
        return [
            r.task_id
            for r in self.rows
            if r.outcome in ("flaky", "uncertain")
            or (r.outcome in ("fix", "regression") and "flaky" in (r.base.klass, r.candidate.klass))
        ]

    def paired_test(self) -> dict[str, float | int]:
        """McNemar-style aggregate over tasks: a task passes for a version when most of its trials pass."""
        b = sum(1 for r in self.rows if r.base.trials and r.candidate.trials and r.base.rate >= 0.5 > r.candidate.rate)
        c = sum(1 for r in self.rows if r.base.trials and r.candidate.trials and r.candidate.rate >= 0.5 > r.base.rate)
        return {"pass_to_fail": b, "fail_to_pass": c, "net": c - b, "p_value": round(binomial_two_sided(b, c), 6)}
