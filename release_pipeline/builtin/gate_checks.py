"""The built-in gate checks: the policy's rules, each returning its reason to reject."""

from __future__ import annotations

from release_pipeline.hookspecs import hookimpl
from release_pipeline.policy import GatePolicy
from release_pipeline.stages.gate_stats import GateEvidence


def _ids(ids: list[str], limit: int = 10) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


@hookimpl
def release_gate_checks(evidence: GateEvidence, policy: GatePolicy) -> list[str]:
    reasons = []
    if evidence.forbidden_files:
        reasons.append(f"changes files outside the artifact's editable files: {_ids(evidence.forbidden_files)}")
    protected = set(evidence.protected_tasks)
    regressions = evidence.regressions
    hit = [t for t in regressions if t in protected]
    if hit:
        reasons.append(f"confirmed regression on protected task(s): {_ids(hit)}")
    others = [t for t in regressions if t not in protected]
    if len(others) > policy.regression_budget:
        reasons.append(
            f"{len(others)} confirmed regression(s) exceed the budget of {policy.regression_budget}: {_ids(others)}"
        )
    fixes = evidence.fixes
    if len(fixes) < policy.min_fixes:
        reasons.append(f"{len(fixes)} confirmed fix(es); the policy requires at least {policy.min_fixes}")
    if policy.require_more_fixes_than_regressions and regressions and len(fixes) <= len(regressions):
        reasons.append(f"{len(fixes)} confirmed fix(es) do not outnumber {len(regressions)} regression(s)")
    unaligned = [r.task_id for r in evidence.rows if r.outcome == "fix" and not r.aligned]
    if policy.require_intent_alignment and unaligned:
        reasons.append(f"fix(es) outside the spec's targets: {_ids(unaligned)}")
    no_data = evidence.ids("no_data")
    if no_data:
        reasons.append(f"{len(no_data)} task(s) could not be judged, every trial ended in error: {_ids(no_data)}")
    return reasons
