"""The statistics of the flip-centered gate: per task, e-processes on paired trials, valid however trials are added.

Both versions run repeat i of a task with the same seed, so the gate compares them pair by pair: for every
repeat index both versions have a judged trial of, D = (candidate passed) - (base passed) is -1 (the base
passed, the candidate failed), 0 or +1. Pairs of different repeats are independent; the two trials of one pair
may depend on each other in any way (a shared seed usually makes them agree). For each task the gate asks up to
three questions, each a test of the mean of D whose evidence it can check after every trial:

* **safe?** Could the candidate's pass rate q be lower than the base's p by `min_effect` or more? The null is
  E[D] = q - p <= -min_effect; the task is *safe* when it is rejected at `max_false_promote`.
* **regression?** Is q below p at all? The null E[D] >= 0, rejected at a Bonferroni share (over the split's
  tasks) of half of `max_false_reject`: a confirmed *regression*.
* **fix?** Is q above p? The null E[D] <= 0, rejected at `alpha`: a confirmed *fix*.

The evidence against "E[D] <= m" is a betting e-process: a gambler who starts with 1 and stakes a share
lambda of their wealth on each pair's D being above m ends with prod(1 + lambda (D_i - m)); under the null every
bet loses on average, so the wealth is a nonnegative supermartingale for *every* joint law of the pairs with
E[D] <= m, and by Ville's inequality it ever reaches 1/a with probability at most a. The gate averages the
wealth over a prior on the stake (a mixture of such gamblers), so no stake is tuned on the data; because D
takes three values the wealth depends only on the counts of -1, 0 and +1. Ville's bound covers the supremum
over all pair counts at once, so however the planner chooses how far each task goes (and whatever else it
looks at), a task is shown safe wrongly at most `max_false_promote` of the time. This is the "mixture
betting" test of Waudby-Smith and Ramdas, for a variable with three values, where it is also the
log-optimal (GROW) test against each fixed stake.

Each version's trials alone carry evidence too: q <= p - min_effect needs p >= min_effect and q <= 1 -
min_effect, so a task the base nearly always fails, or the candidate nearly always passes, is safe whatever
the other version does. Those are the same test on one version's trials (the base's: D = -1 for a pass, 0 for a
fail; the candidate's: D = -1 for a fail, 0 for a pass), and they need no pairs: the canonical version's long
history makes its failing tasks free, and a task the candidate always passes needs no new base trials. The
safety question combines the three with a Bonferroni split of its level (`SHARES`).

A candidate is promoted only when every task is safe (or within the regression budget): to promote one whose
task really dropped by `min_effect`, that task's test would have to err, which happens with probability at most
`max_false_promote`, however many tasks the split has (an intersection-union test: each task at the full
level). Every task is in exactly one class: `regression`, else `fix`, else `uncertain` (not shown safe), else
`flaky` (safe; a version passed it sometimes), `unchanged` (safe; both versions always passed, or always
failed it) or `uncertain` again (safe, but one version always passed and the other always failed it, too
few times to confirm a fix).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from release_pipeline.models import Outcome, PairedTest, TaskOutcome, TaskRow

if TYPE_CHECKING:
    from release_pipeline.config.policy import GatePolicy

# The prior over the stake, as a share u of the largest stake that cannot go broke: Beta(3, 1) on a grid of
# 60 points. Weight near the largest stake makes a task both versions always pass (or always fail) safe in 8
# pairs (the fixed-sample floor is 7); the rest keeps flaky tasks cheap (bench/gate_quality.py chose it
# among Beta(1,1) to Beta(6,1) and a two-part mixture: within a pair of each other, this one best overall).
GRID = 60
_U = tuple((j + 0.5) / GRID for j in range(GRID))
_W = tuple(u * u for u in _U)
STAKES = tuple((u, math.log(w / sum(_W))) for u, w in zip(_U, _W, strict=True))
# The one-sided tests only ever settle a version that always failed (or always passed) a task, so most of their
# weight is on staking everything (u = 1: the wealth is then exactly 1 / P(all k trials so | the null's best));
# the rest is the paired prior, for a version that does so nearly always.
ALL_IN = 0.8
ONE_SIDED = ((1.0, math.log(ALL_IN)), *((u, w + math.log(1 - ALL_IN)) for u, w in STAKES))
# The safety level's split: to the paired test, and to each one-sided test (see the module's docstring).
SHARES = {"paired": 0.5, "base": 0.25, "candidate": 0.25}

Status = str | None  # `pass`, `fail`, `error`, or None for a repeat not run
Sequences = dict[str, dict[str, tuple[Status, ...]]]  # side -> task id -> status by repeat index


@lru_cache(maxsize=1 << 16)
def log_wealth(down: int, same: int, up: int, mean: float, one_sided: bool = False) -> float:
    """log of the mixture gambler's wealth against "E[D] <= mean" after these counts of D = -1, 0, +1.

    The stake lambda = u / (1 + mean) is the largest that a D of -1 cannot make negative, times u; u follows
    the paired prior, or the one-sided tests' (`one_sided`).
    """
    if down == same == up == 0:
        return 0.0
    terms = []
    for u, log_w in ONE_SIDED if one_sided else STAKES:
        if u >= 1.0 and down:
            continue  # staked everything, and lost it
        lam = u / (1.0 + mean)
        t = log_w + (down * math.log1p(-u) if down else 0.0)
        if same:
            t += same * math.log1p(-lam * mean)
        if up:
            t += up * math.log1p(lam * (1.0 - mean))
        terms.append(t)
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms))


@dataclass(frozen=True)
class Pairs:
    """A task's paired trials: repeats both versions have a judged trial of, by the sign of cand - base."""

    down: int = 0  # the base passed, the candidate failed
    same: int = 0
    up: int = 0  # the base failed, the candidate passed
    base_passes: int = 0  # over all the base's judged trials, paired or not (the base-only test)
    base_trials: int = 0
    cand_passes: int = 0  # over all the candidate's judged trials (the candidate-only test)
    cand_trials: int = 0

    @property
    def n(self) -> int:
        return self.down + self.same + self.up

    @classmethod
    def of(cls, base: Sequence[Status], cand: Sequence[Status], count_errors: bool = False) -> Pairs:
        """Pair the two versions' trials by repeat index; with `count_errors`, a candidate `error` is a failure."""
        down = same = up = 0
        for b, c in zip(base, cand, strict=False):
            if c == "error" and count_errors:
                c = "fail"
            if b not in ("pass", "fail") or c not in ("pass", "fail"):
                continue
            d = (c == "pass") - (b == "pass")
            down, same, up = down + (d < 0), same + (d == 0), up + (d > 0)
        judged = [b for b in base if b in ("pass", "fail")]
        theirs = ["fail" if c == "error" and count_errors else c for c in cand]
        theirs = [c for c in theirs if c in ("pass", "fail")]
        return cls(down, same, up, judged.count("pass"), len(judged), theirs.count("pass"), len(theirs))


@dataclass(frozen=True)
class Levels:
    """The error rate each per-task test is held to, from the policy and the number of tasks."""

    safety: float
    regression: float
    fix: float

    @classmethod
    def of(cls, policy: GatePolicy, tasks: int) -> Levels:
        return cls(policy.max_false_promote, policy.max_false_reject / 2 / max(1, tasks), policy.alpha)


def safety_margin(pairs: Pairs, drop: float, level: float) -> float:
    """How far (in log) the evidence is past the bar for "no drop of `drop` or more" (>= 0: shown)."""
    return max(routes(pairs, drop, level).values())


def routes(pairs: Pairs, drop: float, level: float) -> dict[str, float]:
    """The log margin of each of the safety question's three tests (paired, base only, candidate only)."""
    drop = min(drop, 0.999)
    base_fails, cand_fails = pairs.base_trials - pairs.base_passes, pairs.cand_trials - pairs.cand_passes
    return {
        "paired": log_wealth(pairs.down, pairs.same, pairs.up, -drop) + math.log(SHARES["paired"] * level),
        "base": log_wealth(pairs.base_passes, base_fails, 0, -drop, True) + math.log(SHARES["base"] * level),
        "candidate": log_wealth(cand_fails, pairs.cand_passes, 0, -drop, True) + math.log(SHARES["candidate"] * level),
    }


def shown(pairs: Pairs, question: str, policy: GatePolicy, levels: Levels) -> bool:
    """Whether the evidence answers `question` (`safe`, `regression`, `fix`) at its level."""
    if question == "safe":
        return safety_margin(pairs, policy.min_effect, levels.safety) >= 0
    if question == "regression":
        return log_wealth(pairs.up, pairs.same, pairs.down, 0.0) >= -math.log(levels.regression)
    return log_wealth(pairs.down, pairs.same, pairs.up, 0.0) >= -math.log(levels.fix)


def largest_drop(pairs: Pairs, level: float) -> float:
    """The largest drop in pass rate the evidence does not rule out at `level` (what `safe` compares to min_effect)."""
    if safety_margin(pairs, 1.0, level) < 0:
        return 1.0
    lo, hi = 0.0, 1.0  # not ruled out at lo, ruled out at hi
    if safety_margin(pairs, 1e-9, level) >= 0:
        return 0.0
    for _ in range(14):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if safety_margin(pairs, mid, level) >= 0 else (mid, hi)
    return hi


def usable(base: TaskOutcome, cand: TaskOutcome) -> tuple[TaskOutcome, TaskOutcome, bool]:
    """The outcomes the tests use: `error` trials left out, unless the candidate errs more often than the base.

    Errors the candidate alone produces are evidence against it: they then count as its failures.
    Returns both outcomes and whether the candidate's errors were counted.
    """
    base_rate = base.errors / (base.trials + base.errors) if base.trials + base.errors else 0.0
    cand_rate = cand.errors / (cand.trials + cand.errors) if cand.trials + cand.errors else 0.0
    if cand.errors and cand_rate > base_rate:
        counted = TaskOutcome(cand.task_id, cand.passes, cand.trials + cand.errors, 0, cand.tags, cand.trial_ids)
        return base, counted, True
    return base, cand, False


@dataclass(frozen=True)
class TaskEvidence:
    """One task's trials as the tests see them: both versions' counts (for the report) and the pairs."""

    base: TaskOutcome
    cand: TaskOutcome
    pairs: Pairs
    errors_counted: bool = False

    @classmethod
    def of(cls, base: TaskOutcome, cand: TaskOutcome, base_seq: Sequence[Status], cand_seq: Sequence[Status]):
        """Counts and pairs, with the candidate's errors as failures where it errs more often than the base."""
        b, c, counted = usable(base, cand)
        return cls(b, c, Pairs.of(base_seq, cand_seq, counted), counted)


def sequences_from(trials: Mapping[tuple[str, int], Any], limit: int | None = None) -> dict[str, tuple[Status, ...]]:
    """Per task, the status of each repeat (None where a repeat is missing), from the effective trial of each."""
    by_task: dict[str, list[Status]] = {}
    for (task_id, repeat), trial in trials.items():
        if limit is not None and repeat >= limit:
            continue
        seq = by_task.setdefault(task_id, [])
        seq.extend([None] * (repeat + 1 - len(seq)))
        seq[repeat] = trial.status
    return {t: tuple(seq) for t, seq in by_task.items()}


def evidence_of(outcomes: dict[str, dict[str, TaskOutcome]], sequences: Sequences, task_id: str) -> TaskEvidence:
    """A task's evidence from a trial source's outcomes and sequences."""
    return TaskEvidence.of(
        outcomes["base"][task_id],
        outcomes["candidate"][task_id],
        sequences["base"].get(task_id, ()),
        sequences["candidate"].get(task_id, ()),
    )


@dataclass(frozen=True)
class TaskJudgement:
    """What the evidence on one task shows right now."""

    outcome: Outcome
    safe: bool
    errors_counted: bool = False


def judge_task(evidence: TaskEvidence, policy: GatePolicy, levels: Levels) -> TaskJudgement:
    """Classify one task from its evidence (see the module's docstring)."""
    base, cand, pairs = evidence.base, evidence.cand, evidence.pairs
    safe = shown(pairs, "safe", policy, levels)
    outcome: Outcome
    if shown(pairs, "regression", policy, levels):
        outcome = "regression"
    elif shown(pairs, "fix", policy, levels):
        outcome = "fix"
    elif not safe:
        outcome = "uncertain"
    elif not (_stable(base) and _stable(cand)):
        outcome = "flaky"
    elif base.passes and cand.passes or not (base.passes or cand.passes):
        outcome = "unchanged"
    else:  # always failed on one side, always passed on the other, but not enough trials to confirm it
        outcome = "uncertain"
    return TaskJudgement(outcome, safe, evidence.errors_counted)


def _stable(outcome: TaskOutcome) -> bool:
    return outcome.passes in (0, outcome.trials)


def binomial_two_sided(b: int, c: int) -> float:
    """Exact McNemar test on discordant pairs: two-sided binomial p of a split at least this uneven."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(0, min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_test(rows: Iterable[TaskRow]) -> PairedTest:
    """Tasks that went pass->fail and fail->pass by majority of trials, with the exact McNemar p-value."""
    both = [r for r in rows if r.base.trials and r.candidate.trials]
    b = sum(1 for r in both if r.base.rate >= 0.5 > r.candidate.rate)
    c = sum(1 for r in both if r.candidate.rate >= 0.5 > r.base.rate)
    return PairedTest(b, c, c - b, round(binomial_two_sided(b, c), 6))
