"""The built-in gate checks: the policy's rules, each returning its reason (with a stable code) to reject or wait.

`CHECKS` is the table: one small function per rule, in the order their reasons are reported. Each takes the
evidence and the policy and returns its reason, or None when the rule holds.
"""

from __future__ import annotations

from collections.abc import Callable

from release_pipeline.config.policy import GatePolicy
from release_pipeline.models import GateEvidence, Reason
from release_pipeline.plugins.hookspecs import hookimpl

Check = Callable[[GateEvidence, GatePolicy], Reason | None]


def _ids(ids: list[str], limit: int = 10) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


# What the checks count


def _protected_regressions(evidence: GateEvidence) -> list[str]:
    protected = set(evidence.protected_tasks)
    return [t for t in evidence.regressions if t in protected]


def _other_regressions(evidence: GateEvidence) -> list[str]:
    """Regressions on unprotected tasks: what the regression budget pays for."""
    protected = set(evidence.protected_tasks)
    return [t for t in evidence.regressions if t not in protected]


def _without_data(evidence: GateEvidence) -> list[str]:
    """Unsafe tasks with no usable trial on one side (every one ended in error)."""
    return [r.task_id for r in evidence.rows if not r.safe and not (r.base.trials and r.candidate.trials)]


def _blocking_unsure(evidence: GateEvidence, policy: GatePolicy) -> list[str]:
    """Tasks not shown safe (and not for want of data) that could still sink the candidate: more of them than the
    regression budget has left, or one of them protected; empty when they cannot change the decision."""
    no_data = _without_data(evidence)
    unsure = [t for t in evidence.unsafe if t not in no_data]
    over_budget = len(_other_regressions(evidence)) + len(unsure) > policy.regression_budget
    protected = set(evidence.protected_tasks)
    return unsure if unsure and (over_budget or any(t in protected for t in unsure)) else []


# The checks, each one rule


def forbidden_change(evidence: GateEvidence, policy: GatePolicy) -> Reason | None:
    if not evidence.forbidden_files:
        return None
    return Reason(
        "forbidden_change", f"changes files outside the artifact's editable files: {_ids(evidence.forbidden_files)}"
    )


def protected_regression(evidence: GateEvidence, policy: GatePolicy) -> Reason | None:
    hit = _protected_regressions(evidence)
    if not hit:
        return None
    return Reason("protected_regression", f"confirmed regression on protected task(s): {_ids(hit)}", tuple(hit))


def regressions_over_budget(evidence: GateEvidence, policy: GatePolicy) -> Reason | None:
    others = _other_regressions(evidence)
    if len(others) <= policy.regression_budget:
        return None
    return Reason(
        "regression",
        f"{len(others)} confirmed regression(s) exceed the budget of {policy.regression_budget}: {_ids(others)}",
        tuple(others),
    )


def tasks_without_data(evidence: GateEvidence, policy: GatePolicy) -> Reason | None:
    no_data = _without_data(evidence)
    if not no_data:
        return None
    return Reason(
        "errors",
        f"{len(no_data)} task(s) have no usable trial (every one ended in error): {_ids(no_data)}",
        tuple(no_data),
    )


def undecided_tasks(evidence: GateEvidence, policy: GatePolicy) -> Reason | None:
    unsure = _blocking_unsure(evidence, policy)
    if not unsure:
        return None
    return Reason(
        "undecided",
        f"{len(unsure)} task(s) not shown free of a drop of {policy.min_effect:g} or more: {_ids(unsure)}",
        tuple(unsure),
    )


def too_few_fixes(evidence: GateEvidence, policy: GatePolicy) -> Reason | None:
    """Fewer confirmed fixes than the policy's minimum: undecided while more might be confirmed with a larger
    budget, else rejected."""
    fixes = len(evidence.fixes)
    if fixes >= policy.min_fixes:
        return None
    if evidence.open_fixes and evidence.budget_exhausted:
        return Reason(
            "budget_exhausted",
            f"{fixes} confirmed fix(es), {policy.min_fixes} required; {evidence.open_fixes} more might "
            "be confirmed with a larger extra-trial budget",
        )
    return Reason("too_few_fixes", f"{fixes} confirmed fix(es); the policy requires at least {policy.min_fixes}")


def fixes_not_outnumbering(evidence: GateEvidence, policy: GatePolicy) -> Reason | None:
    fixes, regressions = evidence.fixes, evidence.regressions
    if not (policy.require_more_fixes_than_regressions and regressions and len(fixes) <= len(regressions)):
        return None
    return Reason("too_few_fixes", f"{len(fixes)} confirmed fix(es) do not outnumber {len(regressions)} regression(s)")


def fixes_off_target(evidence: GateEvidence, policy: GatePolicy) -> Reason | None:
    unaligned = [r.task_id for r in evidence.rows if r.outcome == "fix" and not r.aligned]
    if not (policy.require_intent_alignment and unaligned):
        return None
    return Reason("intent", f"fix(es) outside the spec's targets: {_ids(unaligned)}", tuple(unaligned))


def budget_ran_out(evidence: GateEvidence, policy: GatePolicy) -> Reason | None:
    """The extra-trial budget ran out while a task was left undecided (`undecided_tasks` said so)."""
    if not (evidence.budget_exhausted and _blocking_unsure(evidence, policy)):
        return None
    return Reason("budget_exhausted", "the extra-trial budget ran out before every task was settled")


CHECKS: tuple[Check, ...] = (
    forbidden_change,
    protected_regression,
    regressions_over_budget,
    tasks_without_data,
    undecided_tasks,
    too_few_fixes,
    fixes_not_outnumbering,
    fixes_off_target,
    budget_ran_out,
)


@hookimpl
def release_gate_checks(evidence: GateEvidence, policy: GatePolicy) -> list[Reason]:
    found = (check(evidence, policy) for check in CHECKS)
    return [reason for reason in found if reason is not None]
