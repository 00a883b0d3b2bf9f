"""Stage diagnose: deterministic scripts turn a run's symptoms into an auditable engineering spec."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from release_pipeline.errors import UserError
from release_pipeline.models import DiagnosisRequest, Pattern, Spec, TaskOutcome
from release_pipeline.reports.markdown import spec_markdown, write_report
from release_pipeline.trials.jobs import task_outcomes

if TYPE_CHECKING:
    from release_pipeline.config.release_yaml import AgentConfig
    from release_pipeline.workspace import Workspace


DOMINANT_SHARE = 0.1
MAX_DOMINANT = 5


def build_spec(request: DiagnosisRequest, patterns: list[Pattern]) -> Spec:
    """Merge every script's patterns into one spec: dominant patterns, targets, protected tasks, intent."""
    ordered = sorted(patterns, key=lambda p: (-p.count, p.label, p.source))
    dominant = [p for p in ordered if p.share >= DOMINANT_SHARE][:MAX_DOMINANT] or ordered[:1]
    targets = sorted({t for p in dominant for t in p.task_ids})
    outcomes: tuple[TaskOutcome, ...] = request.outcomes
    protected = sorted(o.task_id for o in outcomes if o.klass == "stable_pass")
    failed = sum(1 for o in outcomes if o.klass in ("stable_fail", "flaky"))
    intended = "\n".join(f"- {p.intended_change} ({p.count} tasks, {p.share:.0%} of failures)" for p in dominant)
    return Spec(
        agent=request.agent,
        version=request.version,
        run_id=request.run_id,
        split=request.split,
        failed_tasks=failed,
        total_tasks=len(outcomes),
        patterns=ordered,
        target_tasks=targets,
        protected_tasks=protected,
        target_tags=sorted({tag for p in dominant for tag in p.tags}),
        intended_change=intended or "- Nothing to change: no failures were observed.",
    )


def diagnose_run(ws: Workspace, agent: AgentConfig, run_id: int) -> Spec:
    """Build and store the spec of a critiqued run."""
    run = ws.store.run(run_id)
    if run.agent != agent.name:
        raise UserError(f"run #{run_id} does not belong to agent {agent.name!r}")
    in_run = set(ws.store.run_task_ids(run_id))
    tasks = [t for t in ws.suite(agent).tasks if t.id in in_run]
    outcomes = task_outcomes(ws.store.trials(run_id, with_trace=False), tasks, run.repeats)
    symptoms = ws.store.symptoms(run_id)
    if any(o.klass != "stable_pass" for o in outcomes.values()) and not symptoms:
        raise UserError(f"run #{run_id} has failures but no symptoms: run `release critic` first")
    request = DiagnosisRequest(agent.name, run.version, run_id, run.split, tuple(outcomes.values()), tuple(symptoms))
    patterns = [p for found in ws.plugins.hook.release_diagnose(request=request) for p in found]
    spec = build_spec(request, patterns)
    last = ws.store.latest_spec(agent.name, run.version)
    if last is not None and _content(last.to_dict()) == _content(spec.to_dict()):
        return replace(spec, id=last.id)  # the same spec again (the same run, say): not recorded twice
    markdown = spec_markdown(spec)
    spec = replace(spec, id=ws.store.save_spec(agent.name, run.version, run_id, spec.to_dict(), markdown))
    write_report(ws.state_dir, f"{agent.name}-v{run.version}-spec-{spec.id}", spec.to_dict(), markdown)
    return spec


def _content(body: dict) -> dict:
    """A spec's content as stored (JSON), without its id."""
    import json

    return json.loads(json.dumps({k: v for k, v in body.items() if k != "id"}, sort_keys=True, default=str))
