"""The statistics of the flip-centered gate: one e-process per task and question, valid however trials are added.

For each task the gate asks up to three questions, each as a test whose evidence it can check after every
trial without losing its error rate (it decides adaptively how many trials to run):

* **safe?** Could the candidate's pass rate q be lower than the base's p by `min_effect` or more? The null
  hypothesis is q <= p - min_effect; the task is *safe* when it is rejected at `max_false_promote`.
* **regression?** Is q below p at all? The null is q >= p; rejected at a Bonferroni share (over the split's
  tasks) of half of `max_false_reject`, the task is a confirmed *regression*.
* **fix?** Is q above p? The null is q <= p; rejected at `alpha`, a confirmed *fix*.

The evidence is a mixture likelihood ratio: the probability of both versions' trials averaged over a prior for
each rate, divided by the highest probability any pair of rates in the null gives them. For any true pair in
the null the first ratio over that pair's probability is a martingale that starts at 1, so by Ville's
inequality it ever exceeds 1/a with probability at most a; dividing by the null's best instead only makes
the evidence smaller. So the test holds at every moment at once: stopping a task early, or adding trials
to the side where they help most, never inflates its error rate. (Robbins' mixture method, with the
"universal" composite null of Wasserman, Ramdas and Balakrishnan.)

A candidate is promoted only when every task is safe (or within the regression budget): to promote one whose
task really dropped by `min_effect`, that task's test would have to err, which happens with probability at most
`max_false_promote`, however many tasks the split has (an intersection-union test: each task at the full
level). A candidate without any drop is rejected for a confirmed regression at most `max_false_reject / 2` of the
time; what budget and chance leave unsettled is `undecided`, which the report counts apart.

Every task is in exactly one class: `regression`, else `fix`, else `uncertain` (not shown safe), else
`flaky` (safe; a version passed it sometimes), `unchanged` (safe; both versions always passed, or always
failed it) or `uncertain` again (safe, but one version always passed and the other always failed it, too
few times to confirm a fix).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from release_pipeline.models import Outcome, TaskOutcome

if TYPE_CHECKING:
    from release_pipeline.policy import GatePolicy

# The prior each rate is averaged over: most tasks of a suite pass or fail almost always, so most of its weight
# sits near 1 and near 0; the rest is flat, for flaky tasks. Any prior keeps the tests valid; this one makes
# them strong where tasks usually are.
PRIOR = ((0.45, 1.0, 0.02), (0.25, 0.02, 1.0), (0.3, 1.0, 1.0))  # (weight, a, b) of Beta(a, b)


def _lbeta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


@lru_cache(maxsize=65536)
def _log_marginal(passes: int, trials: int) -> float:
    """log of the probability of these trials with the pass rate averaged over PRIOR."""
    terms = [math.log(w) + _lbeta(a + passes, b + trials - passes) - _lbeta(a, b) for w, a, b in PRIOR]
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms))


def _log_likelihood(rate: float, passes: int, trials: int) -> float:
    fails = trials - passes
    if rate <= 0.0:
        return 0.0 if passes == 0 else -math.inf
    if rate >= 1.0:
        return 0.0 if fails == 0 else -math.inf
    return passes * math.log(rate) + fails * math.log1p(-rate)


@lru_cache(maxsize=262144)
def _log_best_null(kb: int, m: int, kc: int, n: int, shift: float, below: bool) -> float:
    """log of the highest probability of the data among rate pairs with q <= p - shift (`below`) or q >= p + shift.

    The likelihood is log-concave in (p, q), so its maximum over the half-plane is the free maximum when that
    lies inside, else on the boundary line, found by a golden-section search along it.
    """
    p_hat, q_hat = (kb / m if m else 0.5), (kc / n if n else 0.5)
    if (q_hat <= p_hat - shift) if below else (q_hat >= p_hat + shift):
        return _log_likelihood(p_hat, kb, m) + _log_likelihood(q_hat, kc, n)
    sign = -1.0 if below else 1.0
    lo, hi = (shift, 1.0) if below else (0.0, 1.0 - shift)
    if lo > hi:
        return -math.inf

    def along(p: float) -> float:
        return _log_likelihood(p, kb, m) + _log_likelihood(min(1.0, max(0.0, p + sign * shift)), kc, n)

    ratio = (math.sqrt(5) - 1) / 2
    a, b = lo, hi
    for _ in range(60):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if along(c) < along(d):
            a = c
        else:
            b = d
    return max(along((a + b) / 2), along(lo), along(hi))


def log_evidence(base: TaskOutcome, cand: TaskOutcome, *, shift: float, below: bool) -> float:
    """log of the evidence against the null q <= p - shift (`below`) or q >= p + shift (not `below`)."""
    mixture = _log_marginal(base.passes, base.trials) + _log_marginal(cand.passes, cand.trials)
    return mixture - _log_best_null(base.passes, base.trials, cand.passes, cand.trials, shift, below)


@dataclass(frozen=True)
class Levels:
    """The error rate each per-task test is held to, from the policy and the number of tasks."""

    safety: float
    regression: float
    fix: float

    @classmethod
    def of(cls, policy: GatePolicy, tasks: int) -> Levels:
        return cls(policy.max_false_promote, policy.max_false_reject / 2 / max(1, tasks), policy.alpha)


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


def shown(base: TaskOutcome, cand: TaskOutcome, question: str, policy: GatePolicy, levels: Levels) -> bool:
    """Whether the evidence answers `question` (`safe`, `regression`, `fix`) at its level."""
    if question == "safe":
        return log_evidence(base, cand, shift=policy.min_effect, below=True) >= -math.log(levels.safety)
    if not (base.trials and cand.trials):
        return False
    if question == "regression":
        return log_evidence(base, cand, shift=0.0, below=False) >= -math.log(levels.regression)
    return log_evidence(base, cand, shift=0.0, below=True) >= -math.log(levels.fix)


def largest_drop(base: TaskOutcome, cand: TaskOutcome, level: float) -> float:
    """The largest drop in pass rate the evidence does not rule out at `level` (what `safe` compares to min_effect)."""
    if log_evidence(base, cand, shift=1.0, below=True) < -math.log(level):
        return 1.0
    lo, hi = 0.0, 1.0  # not ruled out at lo, ruled out at hi
    if log_evidence(base, cand, shift=0.0, below=True) >= -math.log(level):
        return 0.0
    for _ in range(20):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if log_evidence(base, cand, shift=mid, below=True) >= -math.log(level) else (mid, hi)
    return hi


@dataclass(frozen=True)
class TaskJudgement:
    """What the evidence on one task shows right now."""

    outcome: Outcome
    safe: bool
    errors_counted: bool = False


def judge_task(base: TaskOutcome, cand: TaskOutcome, policy: GatePolicy, levels: Levels) -> TaskJudgement:
    """Classify one task from both versions' outcomes (see the module's docstring)."""
    base, cand, counted = usable(base, cand)
    safe = shown(base, cand, "safe", policy, levels)
    outcome: Outcome
    if shown(base, cand, "regression", policy, levels):
        outcome = "regression"
    elif shown(base, cand, "fix", policy, levels):
        outcome = "fix"
    elif not safe:
        outcome = "uncertain"
    elif not (_stable(base) and _stable(cand)):
        outcome = "flaky"
    elif base.passes and cand.passes or not (base.passes or cand.passes):
        outcome = "unchanged"
    else:  # always failed on one side, always passed on the other, but not enough trials to confirm it
        outcome = "uncertain"
    return TaskJudgement(outcome, safe, counted)


def _stable(outcome: TaskOutcome) -> bool:
    return outcome.passes in (0, outcome.trials)


def binomial_two_sided(b: int, c: int) -> float:
    """Exact McNemar test on discordant pairs: two-sided binomial p of a split at least this uneven."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(0, min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)
