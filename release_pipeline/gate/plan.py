"""How the gate spends trials: one pooled budget, each open task stepped toward what would settle it.

The gate runs `repeats` trials of every task on both versions (the canonical version's stored trials count
too, and its history grows with every gate), then looks at each task (`gate_stats.judge_task`) and asks for
more only where they can change the decision, in rounds:

* a task not yet shown safe and not a confirmed regression gets its next step of pairs (both versions' trials
  of the next repeat indices; the base's stored trials fill its side for free), or, while the base has only
  ever failed it or the candidate only ever passed it, that side's trials alone when they are cheaper (the
  one-sided tests of `gate_stats` show it safe);
* the step aims at the median number of pairs a clean task like it needs (`gate_cost.pairs_needed`), never
  more than half again what it has, so little is spent past the point where it settles;
* each task is capped by need, not by a fixed number of repeats: at twice the pairs within which a clean task
  at the costliest base rate its trials allow is shown safe 99 % of the time. A flaky task is never given up a few
  trials in; one still open past its cap most likely has a drop, and more trials would mostly be spent on it;
* tasks that may be fixes get steps too, last, until the decision is settled: a clean flip (the base never
  passed it, the candidate never failed it) always, so the report names it; a task ahead only by chance, only
  while the policy still needs fixes.

Steps are granted in order (protected tasks first, then the tasks that look worst, whose confirmed regression
would settle the gate at once, then the cheapest) while the pooled `extra_trial_budget` lasts, the last one
partly. Spending stops as soon as the decision can no longer change. When both versions decode greedily
(`copies`), their repeats are copies of one observation: the gate then takes one trial a task and version,
asks for no more, and takes a flip as it is seen (`judge_copies`). The same code drives the real gate
(through the store and the executor) and `bench/gate_quality.py` (through a simulator), so what the benchmark
measures is what users run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from release_pipeline.gate.need import hardest_rate, pairs_needed
from release_pipeline.gate.stats import (
    Levels,
    Pairs,
    Sequences,
    TaskEvidence,
    TaskJudgement,
    evidence_of,
    judge_task,
    largest_drop,
    routes,
    usable,
)
from release_pipeline.models import Outcome, Task, TaskOutcome, TaskRow

if TYPE_CHECKING:
    from release_pipeline.config.policy import GatePolicy

SIDES = ("base", "candidate")
MIN_STEP = 2


class TrialSource(Protocol):
    """Where the gate's trials come from: the store and the executor, or a simulator."""

    def outcomes(self) -> dict[str, dict[str, TaskOutcome]]:
        """Per side (`base`, `candidate`), every task's outcome over all trials recorded so far."""
        ...

    def sequences(self) -> Sequences:
        """Per side, every task's statuses by repeat index (`pass`, `fail`, `error`, None where not run)."""
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
    priority: tuple[float, ...]  # smaller first: (class, ...) with class 0 protected, 1 safety, 3 fix
    totals: dict[str, int]  # side -> repeats wanted in all
    cost: int
    why: str


def _len(seq: tuple) -> int:
    return len(seq)


def _request(
    task: Task,
    ev: TaskEvidence,
    seqs: tuple[tuple, tuple],
    judged: TaskJudgement,
    policy: GatePolicy,
    levels: Levels,
    protected: bool,
    want_fixes: bool,
) -> tuple[Request | None, str]:
    """The trials that could settle this task next, and why (or why none)."""
    if judged.outcome == "regression":
        return None, "confirmed regression"
    lengths = (_len(seqs[0]), _len(seqs[1]))
    if not judged.safe:
        return _unsafe_request(task, ev.pairs, policy, levels, protected, lengths)
    # a clean flip (the base never passed, the candidate never failed) is confirmed in a few pairs, so the report
    # can name it; a flaky task that came out ahead by chance is chased only while the policy still needs fixes
    pairs = ev.pairs
    clean_flip = pairs.up and not pairs.base_passes and pairs.cand_passes == pairs.cand_trials
    if (want_fixes or clean_flip) and judged.outcome != "fix" and pairs.up > pairs.down:
        return _fix_request(task, pairs, policy, levels, lengths)
    return None, SAFE_WHY.get(judged.outcome, "safe")


SAFE_WHY = {"fix": "confirmed fix", "unchanged": "safe", "flaky": "safe (flaky on a side)"}


def _unsafe_request(
    task: Task, pairs: Pairs, policy: GatePolicy, levels: Levels, protected: bool, lengths: tuple[int, int]
) -> tuple[Request | None, str]:
    """The next trials of a task not yet shown safe, or none once it reached its cap."""
    base_len, cand_len = lengths
    rate = hardest_rate(pairs.base_passes, pairs.base_trials)
    need = pairs_needed(rate, policy.min_effect, levels.safety)
    drop = f"a drop up to {largest_drop(pairs, levels.safety):.2f} possible"
    if pairs.n >= need.cap:
        return None, (
            f"not shown safe ({drop}) within {pairs.n} pairs, twice what a clean task at base rate {rate:.2f} "
            f"needs 99 % of the time"
        )
    # sized by the rate seen so far: straight to the median where that is sharp (a task always passed or
    # always failed), else at most half again, so a task settles with little spent past its crossing
    seen_rate = pairs.base_passes / pairs.base_trials if pairs.base_trials else 0.5
    seen = pairs_needed(seen_rate, policy.min_effect, levels.safety)
    one_sided = _one_sided(pairs, policy, levels, base_len, cand_len, seen.median)
    if one_sided is not None:
        side, more = one_sided
        totals = {side: (base_len if side == "base" else cand_len) + more}
        why = f"not yet shown safe ({drop}); {side} trials alone may settle it: asking for {side} to {totals[side]}"
        return Request(task.id, (0 if protected else 1, 0, more), totals, more, why), why
    most = seen.median - pairs.n if seen.cap == seen.median else pairs.n // 2
    step = min(max(MIN_STEP, seen.median - pairs.n, pairs.n // 4), max(MIN_STEP, most), need.cap - pairs.n)
    looks_bad = pairs.down - pairs.up  # the worst-looking first: its confirmed regression settles everything
    return _paired(task.id, (0 if protected else 1, -looks_bad, step), base_len, cand_len, step, drop)


def _fix_request(
    task: Task, pairs: Pairs, policy: GatePolicy, levels: Levels, lengths: tuple[int, int]
) -> tuple[Request | None, str]:
    """More pairs of a safe task that may be a fix, or none once it reached its cap unconfirmed."""
    need = pairs_needed(0.5, policy.min_effect, levels.safety)
    if pairs.n >= need.cap:
        return None, "safe; better on the candidate, but not confirmed as a fix within its cap"
    step = max(MIN_STEP, pairs.n // 2)
    return _paired(task.id, (3, pairs.down - pairs.up, step), lengths[0], lengths[1], step, "safe; may be a fix")


def _paired(
    task_id: str, priority: tuple[float, ...], base_len: int, cand_len: int, step: int, why: str
) -> tuple[Request, str]:
    """A step of `step` more pairs: both versions to the same repeat index (the base's history counts)."""
    reach = min(base_len, cand_len) + step
    totals = {side: reach for side, have in (("base", base_len), ("candidate", cand_len)) if reach > have}
    cost = sum(n - (base_len if side == "base" else cand_len) for side, n in totals.items())
    why = f"{why}: asking for " + " and ".join(f"{side} to {n}" for side, n in totals.items())
    return Request(task_id, priority, totals, cost, why), why


def _one_sided(
    pairs: Pairs, policy: GatePolicy, levels: Levels, base_len: int, cand_len: int, median: int
) -> tuple[str, int] | None:
    """A side whose trials alone would show the task safe soonest, and how many more it needs, when that is
    cheaper than the pairs: while the base has only failed it, or the candidate only passed it."""
    if pairs.up > pairs.down:  # it looks like a fix: pairs show it safe quickly and confirm the fix too
        return None
    reach = max(median, min(base_len, cand_len))  # what the paired route would cost to its median
    paired_cost = max(0, reach - base_len) + max(0, reach - cand_len)
    best: tuple[str, int] | None = None
    for side, stable in (("base", not pairs.base_passes), ("candidate", pairs.cand_passes == pairs.cand_trials)):
        if not stable:
            continue
        for more in range(1, 41):
            grown = (
                replace(pairs, base_trials=pairs.base_trials + more)
                if side == "base"
                else replace(pairs, cand_passes=pairs.cand_passes + more, cand_trials=pairs.cand_trials + more)
            )
            if routes(grown, policy.min_effect, levels.safety)[side] >= 0:
                if more <= paired_cost and (best is None or more < best[1]):
                    best = (side, more)
                break
    return best


def _settled(judged: dict[str, TaskJudgement], policy: GatePolicy, protected: set[str]) -> bool:
    """Whether more trials could no longer change the decision."""
    regressions = [t for t, j in judged.items() if j.outcome == "regression"]
    if any(t in protected for t in regressions):
        return True
    if len([t for t in regressions if t not in protected]) > policy.regression_budget:
        return True
    unsafe = [t for t, j in judged.items() if not j.safe]
    return not unsafe and _enough_fixes(judged, policy)


def _fixes_missing(judged: dict[str, TaskJudgement], policy: GatePolicy) -> int:
    """How many more confirmed fixes the policy needs (given the confirmed regressions)."""
    regressions = sum(1 for j in judged.values() if j.outcome == "regression")
    fixes = sum(1 for j in judged.values() if j.outcome == "fix")
    wanted = max(policy.min_fixes, regressions + 1 if policy.require_more_fixes_than_regressions and regressions else 0)
    return max(0, wanted - fixes)


def _enough_fixes(judged: dict[str, TaskJudgement], policy: GatePolicy) -> bool:
    return _fixes_missing(judged, policy) == 0


def _grant(
    requests: list[Request],
    lengths: dict[str, dict[str, int]],
    whys: dict[str, str],
    budget: int,
    spent: int,
    exhausted: bool,
) -> tuple[dict[str, dict[str, int]], int, bool]:
    """Grant requests in priority order while the budget lasts, the last one partly."""
    granted: dict[str, dict[str, int]] = {side: {} for side in SIDES}
    for r in sorted(requests, key=lambda r: r.priority):
        totals = r.totals
        if spent + r.cost > budget:  # a part of it, when a part fits
            room = budget - spent
            totals = {s: min(n, lengths[s][r.task_id] + room // len(r.totals)) for s, n in r.totals.items()}
            totals = {s: n for s, n in totals.items() if n > lengths[s][r.task_id]}
            exhausted = True
            if not totals:
                whys[r.task_id] = whys[r.task_id].split(":")[0] + ": the extra-trial budget is spent"
                continue
        for side, n in totals.items():
            granted[side][r.task_id] = n
        spent += sum(n - lengths[s][r.task_id] for s, n in totals.items())
    return granted, spent, exhausted


def _rows(
    tasks: list[Task],
    source: TrialSource,
    policy: GatePolicy,
    levels: Levels,
    protected: set[str],
    aligned: set[str],
    whys: dict[str, str],
) -> list[TaskRow]:
    """Every task's final row: both outcomes, its class, whether it is safe, its largest possible drop, and why."""
    seen, seqs = source.outcomes(), source.sequences()
    rows = []
    for t in tasks:
        ev = evidence_of(seen, seqs, t.id)
        j = judge_task(ev, policy, levels)
        rows.append(
            TaskRow(
                t.id,
                seen["base"][t.id],
                seen["candidate"][t.id],
                j.outcome,
                j.safe,
                round(largest_drop(ev.pairs, levels.safety), 3),
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


@dataclass
class _Round:
    """What one round of the planner saw: every task's evidence and judgement, the trials asked for, and why."""

    evidence: dict[str, TaskEvidence]
    judged: dict[str, TaskJudgement]
    want_fixes: bool
    whys: dict[str, str]
    requests: list[Request]


def _look(tasks: list[Task], source: TrialSource, policy: GatePolicy, levels: Levels, protected: set[str]) -> _Round:
    """Judge every task on the trials so far and ask, for each, for the trials that could settle it next."""
    seen, seqs = source.outcomes(), source.sequences()
    evidence = {t.id: evidence_of(seen, seqs, t.id) for t in tasks}
    judged = {t.id: judge_task(evidence[t.id], policy, levels) for t in tasks}
    want_fixes = not _enough_fixes(judged, policy)
    whys: dict[str, str] = {}
    requests = []
    for t in tasks:
        pair = (seqs["base"].get(t.id, ()), seqs["candidate"].get(t.id, ()))
        request, whys[t.id] = _request(
            t, evidence[t.id], pair, judged[t.id], policy, levels, t.id in protected, want_fixes
        )
        if request is not None:
            requests.append(request)
    return _Round(evidence, judged, want_fixes, whys, requests)


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
    source.extend({side: {t.id: policy.repeats for t in tasks} for side in SIDES})
    spent, rounds, exhausted = 0, 1, False
    while True:
        now = _look(tasks, source, policy, levels, protected)
        if _settled(now.judged, policy, protected):
            for r in now.requests:
                now.whys[r.task_id] = now.whys[r.task_id].split(":")[0] + ": no more trials, the decision is settled"
            break
        if not now.requests:
            break
        seqs = source.sequences()
        lengths = {side: {t.id: len(seqs[side].get(t.id, ())) for t in tasks} for side in SIDES}
        granted, spent, exhausted = _grant(now.requests, lengths, now.whys, budget, spent, exhausted)
        if not any(granted.values()):
            break
        source.extend(granted)
        rounds += 1
    rows = _rows(tasks, source, policy, levels, protected, set(aligned), now.whys)
    return Planned(rows, spent, exhausted, _open_fixes(tasks, now), rounds)


def _open_fixes(tasks: list[Task], last: _Round) -> int:
    """Tasks that might still have become fixes while fixes were wanted: better on the candidate so far, not
    confirmed either way."""
    if not last.want_fixes:
        return 0
    return sum(
        1
        for t in tasks
        if last.evidence[t.id].pairs.up > last.evidence[t.id].pairs.down and last.judged[t.id].outcome == "uncertain"
    )
