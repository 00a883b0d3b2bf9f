"""Stage critic: label the symptoms of a run's failed trials, seeing traces and verdicts only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from release_pipeline.errors import UserError
from release_pipeline.llm.providers import check_model
from release_pipeline.models import CriticInput, CriticServices, Suite, Symptom, TrialRecord
from release_pipeline.progress import ProgressFactory
from release_pipeline.trials.jobs import effective

if TYPE_CHECKING:
    from release_pipeline.config.release_yaml import AgentConfig
    from release_pipeline.workspace import Workspace


def critic_inputs(trials: list[TrialRecord], suite: Suite) -> list[CriticInput]:
    """The failed trials of a run as the critic may see them: task, trace, verdict and rubric, nothing of the agent."""
    tasks = {t.id: t for t in suite.tasks}
    items = []
    for trial in effective(trials).values():
        if trial.status != "fail" or trial.id is None:
            continue
        task = tasks.get(trial.task_id)
        items.append(
            CriticInput(
                trial_id=trial.id,
                task_id=trial.task_id,
                input=task.input if task else None,
                expected=task.expected if task else None,
                output=trial.output,
                trace=trial.trace,
                status=trial.status,
                feedback=trial.feedback,
                reason=trial.reason,
                rubric=suite.rubric,
            )
        )
    return sorted(items, key=lambda i: (i.task_id, i.trial_id))


def label_failures(
    ws: Workspace,
    agent: AgentConfig,
    run_id: int,
    critic: str | None = None,
    progress: ProgressFactory | None = None,
) -> list[Symptom]:
    """The configured critic's symptoms for a complete run's failed trials (not stored)."""
    run = ws.store.run(run_id)
    if run.status != "complete":
        raise UserError(f"run #{run_id} is not complete: finish it with `release run` first")
    name = critic or agent.critic or ws.config.critic
    fn = ws.plugins.registry.get("critic", name)
    services = CriticServices(ws.llm, ws.config.models["critic"], progress) if name != "heuristic" else CriticServices()
    if services.model:
        check_model(services.model)
    return list(fn(critic_inputs(ws.store.trials(run_id), ws.suite(agent)), services))
