"""How the gate spends trials: for each task still open, the trials that could settle it, within the policy.

The gate runs `repeats` trials of every task on both versions (the canonical version's stored trials count
too, and its history grows with every gate), then looks at each task (`gate_stats.judge_task`) and asks for
more only where they can change something:

* a task not yet shown safe gets the trials that would show it safe if the versions go on as observed so
  far: on the candidate's side, the base's, or both, whichever is fewer;
* one that cannot be shown safe even with `max_repeats` a side gets, instead, the trials that would confirm
  its regression (which decides between rejected and undecided);
* one the candidate may have fixed gets the trials that would confirm the fix, last.

When both versions decode greedily (`copies`), their repeats are copies of one observation: the gate then
takes one trial a task and version, asks for no more, and takes a flip as it is seen (`judge_copies`).

Requests are granted in that order (protected tasks first, cheaper ones first), each in full while the
`extra_trial_budget` lasts, then partly; spending stops once the decision can no longer change. The same
code drives the real gate (through the store and the executor) and `bench/gate_quality.py` (through a
simulator), so what the benchmark measures is what users run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from release_pipeline.models import Outcome, Task, TaskOutcome, TaskRow
from release_pipeline.stages.gate_stats import Levels, TaskJudgement, judge_task, largest_drop, shown, usable

if TYPE_CHECKING:
    from release_pipeline.policy import GatePolicy

SIDES = ("base", "candidate")
MIN_STEP = 2
HOPE = 4  # pseudo-trials at the base's rate in the candidate's projected rate


class TrialSource(Protocol):
    """Where the gate's trials come from: the store and the executor, or a simulator."""

    def outcomes(self) -> dict[str, dict[str, TaskOutcome]]:
        """Per side (`base`, `candidate`), every task's outcome over all trials recorded so far."""
        ...

    def extend(self, wanted: dict[str, dict[str, int]]) -> None:
        """Bring each (side, task) to at least the given number of repeats, executing what is missing."""
        ...


@dataclass
class Planned:
    rows: list[TaskRow]
    extra_trials: int
    budget_exhausted: bool
    open_fixes: int
    rounds: int


@dataclass(frozen=True)
class Request:
    task_id: str
    priority: int  # 0 protected, 1 safety, 2 regression, 3 fix
    totals: dict[str, int]  # side -> repeats wanted in all
    cost: int
    why: str


def _rate(outcome: TaskOutcome) -> float:
    return outcome.passes / outcome.trials if outcome.trials else 0.5


def _project(outcome: TaskOutcome, extra: int, rate: float) -> TaskOutcome:
    """The outcome after `extra` more trials that pass at `rate`."""
    return TaskOutcome(outcome.task_id, outcome.passes + round(rate * extra), outcome.trials + extra, 0)


def _cheapest(
    base: TaskOutcome, cand: TaskOutcome, done, limit: int, base_limit: int, cand_rate: float | None = None
) -> tuple[int, int] | None:
    """The fewest extra (base, candidate) trials after which `done(base, cand)` would hold.

    The base's new trials go as its trials went so far; the candidate's at `cand_rate` (default: as its own did).
    """
    rate_b, rate_c = _rate(base), _rate(cand) if cand_rate is None else cand_rate
    room_b, room_c = max(0, base_limit - base.trials), max(0, limit - cand.trials)
    if not done(_project(base, room_b, rate_b), _project(cand, room_c, rate_c)):
        return None  # not even with every trial the limits allow
    for total in range(1, room_b + room_c + 1):
        for extra_c in range(min(total, room_c), -1, -1):  # the candidate's side first: its trials are new evidence
            extra_b = total - extra_c
            if extra_b <= room_b and done(_project(base, extra_b, rate_b), _project(cand, extra_c, rate_c)):
                return extra_b, extra_c
    return None


def _totals(base: TaskOutcome, cand: TaskOutcome, extra: tuple[int, int], limit: int, base_limit: int) -> dict:
    """Repeats to ask for: at least MIN_STEP more on a side that grows, never past the limits."""
    out = {}
    for side, outcome, more, cap in (("base", base, extra[0], base_limit), ("candidate", cand, extra[1], limit)):
        if more:
            out[side] = min(cap, outcome.trials + max(more, MIN_STEP))
    return out


def _requests(
    task: Task,
    base: TaskOutcome,
    cand: TaskOutcome,
    judged: TaskJudgement,
    policy: GatePolicy,
    levels: Levels,
    protected: bool,
) -> tuple[Request | None, str]:
    """The trials that could settle this task next, and why (or why none)."""
    base, cand, _ = usable(base, cand)
    limit = policy.max_repeats
    base_limit = max(policy.max_repeats, base.trials)  # the canonical version's history may hold more already
    if judged.outcome == "regression":
        return None, "confirmed regression"
    if not judged.safe:
        priority, why = 1, f"not yet shown safe (a drop up to {_drop(base, cand, levels)} possible)"
        # planned as if the candidate's rate were its own shrunk toward the base's (a clean candidate's is): a flaky
        # task's first few trials say little, many trials that keep failing say enough to stop hoping
        hopeful = max(_rate(cand), (cand.passes + HOPE * _rate(base)) / (cand.trials + HOPE))
        safe = lambda b, c: shown(b, c, "safe", policy, levels)  # noqa: E731
        extra = _cheapest(base, cand, safe, limit, base_limit, hopeful)
        if extra is None:
            priority = 2
            why = f"cannot be shown safe within {limit} repeats a side; confirming a regression"
            extra = _cheapest(base, cand, lambda b, c: shown(b, c, "regression", policy, levels), limit, base_limit)
            if extra is None:
                return None, f"cannot be shown safe or a regression within {limit} repeats a side"
        return _request(task.id, 0 if protected else priority, base, cand, extra, limit, base_limit, why)
    if judged.outcome != "fix" and cand.trials and _rate(cand) > _rate(base):
        extra = _cheapest(base, cand, lambda b, c: shown(b, c, "fix", policy, levels), limit, base_limit)
        if extra is None:
            return None, "safe; better on the candidate, but not enough to confirm a fix within the limits"
        return _request(task.id, 3, base, cand, extra, limit, base_limit, "safe; may be a fix")
    return None, {"fix": "confirmed fix", "unchanged": "safe", "flaky": "safe (flaky on a side)"}.get(
        judged.outcome, "safe"
    )


def _drop(base: TaskOutcome, cand: TaskOutcome, levels: Levels) -> str:
    return f"{largest_drop(base, cand, levels.safety):.2f}"


def _request(
    task_id: str, priority: int, base: TaskOutcome, cand: TaskOutcome, extra: tuple[int, int], limit: int,
    base_limit: int, why: str,
) -> tuple[Request, str]:  # fmt: skip
    totals = _totals(base, cand, extra, limit, base_limit)
    cost = sum(totals[s] - o.trials for s, o in (("base", base), ("candidate", cand)) if s in totals)
    why = f"{why}: {_spend(totals)}"
    return Request(task_id, priority, totals, cost, why), why


def _spend(totals: dict[str, int]) -> str:
    parts = [f"{side} to {n}" for side, n in totals.items()]
    return "asking for " + " and ".join(parts) if parts else "nothing to ask for"


def _settled(judged: dict[str, TaskJudgement], policy: GatePolicy, protected: set[str]) -> bool:
    """Whether more trials could no longer change the decision."""
    regressions = [t for t, j in judged.items() if j.outcome == "regression"]
    if any(t in protected for t in regressions):
        return True
    if len([t for t in regressions if t not in protected]) > policy.regression_budget:
        return True
    unsafe = [t for t, j in judged.items() if not j.safe]
    fixes = sum(1 for j in judged.values() if j.outcome == "fix")
    enough = fixes >= policy.min_fixes and (not policy.require_more_fixes_than_regressions or fixes > len(regressions))
    return not unsafe and enough


def _grant(
    requests: list[Request],
    seen: dict[str, dict[str, TaskOutcome]],
    whys: dict[str, str],
    budget: int,
    spent: int,
    exhausted: bool,
) -> tuple[dict[str, dict[str, int]], int, bool]:
    """Grant requests in priority order (cheapest first) while the budget lasts, the last one partly."""
    granted: dict[str, dict[str, int]] = {side: {} for side in SIDES}
    for r in sorted(requests, key=lambda r: (r.priority, r.cost)):
        totals = r.totals
        if spent + r.cost > budget:  # a part of it, when a part fits
            current = {"base": seen["base"][r.task_id].trials, "candidate": seen["candidate"][r.task_id].trials}
            room = budget - spent
            totals = {s: min(n, current[s] + room // len(r.totals)) for s, n in r.totals.items()}
            totals = {s: n for s, n in totals.items() if n > current[s]}
            exhausted = True
            if not totals:
                whys[r.task_id] = whys[r.task_id].split(";")[0] + "; the extra-trial budget is spent"
                continue
        for side, n in totals.items():
            granted[side][r.task_id] = n
        spent += sum(n - (seen[s][r.task_id].trials) for s, n in totals.items())
    return granted, spent, exhausted


def _rows(
    tasks: list[Task],
    seen: dict[str, dict[str, TaskOutcome]],
    policy: GatePolicy,
    levels: Levels,
    protected: set[str],
    aligned: set[str],
    whys: dict[str, str],
) -> list[TaskRow]:
    """Every task's final row: both outcomes, its class, whether it is safe, its largest possible drop, and why."""
    rows = []
    for t in tasks:
        j = judge_task(seen["base"][t.id], seen["candidate"][t.id], policy, levels)
        base, cand, _ = usable(seen["base"][t.id], seen["candidate"][t.id])
        rows.append(
            TaskRow(
                t.id,
                seen["base"][t.id],
                seen["candidate"][t.id],
                j.outcome,
                j.safe,
                round(largest_drop(base, cand, levels.safety), 3),
                t.id in protected,
                t.id in aligned,
                j.errors_counted,
                whys.get(t.id, ""),
            )  # fmt: skip
        )
    return rows


COPIES_WHY = "one observation a side: greedy decoding makes repeats copies"


def judge_copies(tasks: list[Task], source: TrialSource, *, protected: set[str], aligned: set[str]) -> Planned:
    """Classify every task from one trial a side: a flip is taken as seen, with no confidence from repeats."""
    source.extend({side: {t.id: 1 for t in tasks} for side in SIDES})
    seen = source.outcomes()
    rows = []
    for t in tasks:
        base, cand, counted = usable(seen["base"][t.id], seen["candidate"][t.id])
        outcome: Outcome
        if not (base.trials and cand.trials):
            outcome = "uncertain"
        elif base.passes and not cand.passes:
            outcome = "regression"
        elif cand.passes and not base.passes:
            outcome = "fix"
        else:
            outcome = "unchanged"
        bad = outcome in ("regression", "uncertain")
        rows.append(
            TaskRow(
                t.id,
                seen["base"][t.id],
                seen["candidate"][t.id],
                outcome,
                not bad,
                1.0 if bad else 0.0,
                t.id in protected,
                t.id in aligned,
                counted,
                COPIES_WHY,
            )  # fmt: skip
        )
    return Planned(rows, 0, False, 0, 1)


def plan_and_judge(
    tasks: list[Task],
    source: TrialSource,
    policy: GatePolicy,
    *,
    protected: set[str] = frozenset(),  # type: ignore[assignment]
    aligned: Iterable[str] = (),
    copies: bool = False,
) -> Planned:
    """Run the gate's trials adaptively and classify every task (from one trial each when repeats are `copies`)."""
    if copies:
        return judge_copies(tasks, source, protected=set(protected), aligned=set(aligned))
    levels = Levels.of(policy, len(tasks))
    budget = policy.extra_budget(len(tasks))
    aligned = set(aligned)
    source.extend({side: {t.id: policy.repeats for t in tasks} for side in SIDES})
    spent, rounds, exhausted = 0, 1, False
    while True:
        seen = source.outcomes()
        judged = {t.id: judge_task(seen["base"][t.id], seen["candidate"][t.id], policy, levels) for t in tasks}
        whys: dict[str, str] = {}
        requests = []
        for t in tasks:
            request, whys[t.id] = _requests(
                t, seen["base"][t.id], seen["candidate"][t.id], judged[t.id], policy, levels, t.id in protected
            )
            if request is not None:
                requests.append(request)
        if _settled(judged, policy, protected) or not requests:
            if _settled(judged, policy, protected):
                for r in requests:
                    whys[r.task_id] = whys[r.task_id].split(";")[0] + "; no more trials: the decision is settled"
            break
        granted, spent, exhausted = _grant(requests, seen, whys, budget, spent, exhausted)
        if not any(granted.values()):
            break
        source.extend(granted)
        rounds += 1
    rows = _rows(tasks, source.outcomes(), policy, levels, protected, aligned, whys)
    open_fixes = len({r.task_id for r in requests if r.priority == 3})  # asked for, never granted
    return Planned(rows, spent, exhausted, open_fixes, rounds)
