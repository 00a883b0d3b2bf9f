"""The paper's ablation for bench/loop.py: the gate replaced by "accept everything".

Copied into a throwaway bench workspace's `plugins/` folder only; never part of a real workspace. It answers the
`release_stage_gate` hook first, runs no trial, and records an accepted report with no evidence, so that
`release promote --iterations N` promotes every candidate a strategy makes.
"""

from __future__ import annotations

from release_pipeline.gate.plan import Planned
from release_pipeline.gate.stage import gate_evidence, prepare_gate, record_decision, report_of
from release_pipeline.plugins.hookspecs import hookimpl


class _NoRun:
    run_id = None


@hookimpl(tryfirst=True)
def release_stage_gate(workspace, agent, candidate, progress, budget):
    setup = prepare_gate(workspace, agent, candidate)
    planned = Planned(rows=[], extra_trials=0, budget_exhausted=False, open_fixes=0, rounds=0)
    evidence = gate_evidence(setup, {"base": _NoRun(), "candidate": _NoRun()}, planned, set())  # type: ignore[dict-item]
    setup.notes.append("ungated ablation: accepted without running any trial")
    report = report_of(evidence, "accepted", [], setup.policy, planned, {"base": 0, "candidate": 0})
    return record_decision(setup, [], evidence, report)
