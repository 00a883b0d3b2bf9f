"""The built-in stages, as hook implementations: `trylast`, so a plugin's own implementation runs first.

Each is the whole stage; a plugin may wrap it (`@hookimpl(wrapper=True)`) or replace it (return a result).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from release_pipeline.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    from release_pipeline.config.release_yaml import AgentConfig
    from release_pipeline.gate.stage import GateResult
    from release_pipeline.models import CandidateContext, HeadMove, Spec, Symptom, VersionInfo
    from release_pipeline.progress import ProgressFactory
    from release_pipeline.stages.candidate import CandidateResult
    from release_pipeline.stages.run import RunOutcome
    from release_pipeline.trials.budget import Budget
    from release_pipeline.workspace import Workspace


@hookimpl(trylast=True)
def release_stage_run(
    workspace: Workspace,
    agent: AgentConfig,
    version: VersionInfo,
    split: str,
    progress: ProgressFactory,
    budget: Budget | None,
) -> RunOutcome:
    from release_pipeline.stages.run import run_version

    return run_version(workspace, agent, version, split=split, reuse=True, progress=progress, budget=budget)


@hookimpl(trylast=True)
def release_stage_critic(
    workspace: Workspace, agent: AgentConfig, run_id: int, progress: ProgressFactory
) -> list[Symptom]:
    from release_pipeline.stages.critic import label_failures

    return label_failures(workspace, agent, run_id, progress=progress)


@hookimpl(trylast=True)
def release_stage_diagnose(workspace: Workspace, agent: AgentConfig, run_id: int) -> Spec:
    from release_pipeline.stages.diagnose import diagnose_run

    return diagnose_run(workspace, agent, run_id)


@hookimpl(trylast=True)
def release_stage_candidate(
    workspace: Workspace, agent: AgentConfig, context: CandidateContext, strategy: str
) -> CandidateResult | None:
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
) -> GateResult:
    from release_pipeline.gate.stage import gate_candidate

    return gate_candidate(workspace, agent, candidate, progress=progress, budget=budget)


@hookimpl(trylast=True)
def release_stage_promote(workspace: Workspace, agent: AgentConfig, candidate: VersionInfo) -> HeadMove:
    from release_pipeline.stages.promote import promote

    return promote(workspace, agent, candidate)
