"""The built-in gate checks: the policy's rules, each returning its reason (with a stable code) to reject or wait."""

from __future__ import annotations

from release_pipeline.config.policy import GatePolicy
from release_pipeline.models import GateEvidence, Reason
from release_pipeline.plugins.hookspecs import hookimpl


def _ids(ids: list[str], limit: int = 10) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


@hookimpl
def release_gate_checks(evidence: GateEvidence, policy: GatePolicy) -> list[Reason]:
    reasons = []
    if evidence.forbidden_files:
        reasons.append(
            Reason(
                "forbidden_change",
                f"changes files outside the artifact's editable files: {_ids(evidence.forbidden_files)}",
            )
        )
    protected = set(evidence.protected_tasks)
    regressions = evidence.regressions
    hit = [t for t in regressions if t in protected]
    if hit:
        reasons.append(
            Reason("protected_regression", f"confirmed regression on protected task(s): {_ids(hit)}", tuple(hit))
        )
    others = [t for t in regressions if t not in protected]
    if len(others) > policy.regression_budget:
        reasons.append(
            Reason(
                "regression",
                f"{len(others)} confirmed regression(s) exceed the budget of {policy.regression_budget}: "
                f"{_ids(others)}",
                tuple(others),
            )
        )
    unsure = evidence.unsafe
    no_data = [r.task_id for r in evidence.rows if not r.safe and not (r.base.trials and r.candidate.trials)]
    if no_data:
        reasons.append(
            Reason(
                "errors",
                f"{len(no_data)} task(s) have no usable trial (every one ended in error): {_ids(no_data)}",
                tuple(no_data),
            )  # fmt: skip
        )
    unsure = [t for t in unsure if t not in no_data]
    if unsure and (len(others) + len(unsure) > policy.regression_budget or any(t in protected for t in unsure)):
        reasons.append(
            Reason(
                "undecided",
                f"{len(unsure)} task(s) not shown free of a drop of {policy.min_effect:g} or more: {_ids(unsure)}",
                tuple(unsure),
            )
        )
    fixes = evidence.fixes
    if len(fixes) < policy.min_fixes:
        if evidence.open_fixes and evidence.budget_exhausted:
            reasons.append(
                Reason(
                    "budget_exhausted",
                    f"{len(fixes)} confirmed fix(es), {policy.min_fixes} required; {evidence.open_fixes} more might "
                    "be confirmed with a larger extra-trial budget",
                )
            )
        else:
            reasons.append(
                Reason(
                    "too_few_fixes", f"{len(fixes)} confirmed fix(es); the policy requires at least {policy.min_fixes}"
                )
            )
    if policy.require_more_fixes_than_regressions and regressions and len(fixes) <= len(regressions):
        reasons.append(
            Reason("too_few_fixes", f"{len(fixes)} confirmed fix(es) do not outnumber {len(regressions)} regression(s)")
        )
    unaligned = [r.task_id for r in evidence.rows if r.outcome == "fix" and not r.aligned]
    if policy.require_intent_alignment and unaligned:
        reasons.append(Reason("intent", f"fix(es) outside the spec's targets: {_ids(unaligned)}", tuple(unaligned)))
    if evidence.budget_exhausted and any(r.code == "undecided" for r in reasons):
        reasons.append(Reason("budget_exhausted", "the extra-trial budget ran out before every task was settled"))
    return reasons
