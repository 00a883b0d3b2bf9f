"""The built-in stages, as hook implementations: `trylast`, so a plugin's own implementation runs first.

Each is the whole stage; a plugin may wrap it (`@hookimpl(wrapper=True)`) or replace it (return a result).
Callers reach them only through the hooks (`release_pipeline.pipeline.Pipeline`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from release_pipeline.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    from release_pipeline.config.release_yaml import AgentConfig
    from release_pipeline.models import (
        Candidate,
        CandidateContext,
        GateReport,
        HeadMove,
        Run,
        Spec,
        Symptom,
        VersionInfo,
    )
    from release_pipeline.progress import ProgressFactory
    from release_pipeline.trials.budget import Budget
    from release_pipeline.workspace import Workspace


@hookimpl(trylast=True)
def release_stage_run(
    workspace: Workspace,
    agent: AgentConfig,
    version: VersionInfo,
    split: str,
    repeats: int | None,
    fresh: bool,
    reuse: bool,
    progress: ProgressFactory,
    budget: Budget | None,
) -> Run:
    from release_pipeline.stages.run import run_version

    return run_version(
        workspace, agent, version, split=split, repeats=repeats, fresh=fresh, reuse=reuse, progress=progress,
        budget=budget,
    )  # fmt: skip


@hookimpl(trylast=True)
def release_stage_critic(
    workspace: Workspace, agent: AgentConfig, run_id: int, critic: str | None, progress: ProgressFactory
) -> list[Symptom]:
    from release_pipeline.stages.critic import label_failures

    return label_failures(workspace, agent, run_id, critic, progress=progress)


@hookimpl(trylast=True)
def release_stage_diagnose(workspace: Workspace, agent: AgentConfig, run_id: int) -> Spec:
    from release_pipeline.stages.diagnose import diagnose_run

    return diagnose_run(workspace, agent, run_id)


@hookimpl(trylast=True)
def release_stage_candidate(
    workspace: Workspace, agent: AgentConfig, context: CandidateContext, strategy: str
) -> Candidate | None:
    from release_pipeline.stages.candidate import record_proposal

    proposal = workspace.plugins.registry.get("strategy", strategy)(context)
    return None if proposal is None else record_proposal(workspace, agent, strategy, proposal)


@hookimpl(trylast=True)
def release_stage_gate(
    workspace: Workspace,
    agent: AgentConfig,
    candidate: VersionInfo,
    progress: ProgressFactory,
    budget: Budget | None,
) -> GateReport:
    from release_pipeline.gate.stage import gate_candidate

    return gate_candidate(workspace, agent, candidate, progress=progress, budget=budget)


@hookimpl(trylast=True)
def release_stage_promote(workspace: Workspace, agent: AgentConfig, candidate: VersionInfo, reason: str) -> HeadMove:
    from release_pipeline.stages.promote import promote

    return promote(workspace, agent, candidate, reason=reason)
