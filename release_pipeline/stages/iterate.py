"""One whole iteration of the pipeline: run -> critic -> diagnose -> candidate -> gate -> promote."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from release_pipeline.models import CandidateContext, HeadMove, Spec, VersionInfo
from release_pipeline.progress import ProgressFactory
from release_pipeline.stages.candidate import create_candidate
from release_pipeline.stages.critic import critique_run
from release_pipeline.stages.diagnose import diagnose_run
from release_pipeline.stages.gate import GateResult, gate_candidate
from release_pipeline.stages.promote import promote
from release_pipeline.stages.run import run_version

if TYPE_CHECKING:
    from release_pipeline.config import AgentConfig
    from release_pipeline.workspace import Workspace


@dataclass
class Iteration:
    base: VersionInfo
    spec: Spec
    candidate: VersionInfo | None = None
    gate: GateResult | None = None
    move: HeadMove | None = None
    notes: list[str] = field(default_factory=list)


def iterate(
    ws: Workspace,
    agent: AgentConfig,
    *,
    progress: ProgressFactory | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> Iteration:
    """Improve the canonical version once with the configured strategy; exactly one candidate at most."""
    base = ws.head(agent)
    outcome = run_version(ws, agent, base, split="dev", reuse=True, progress=progress)
    say(
        f"run #{outcome.run['id']}: v{base.number} on dev: {outcome.counts['pass']} pass, "
        f"{outcome.counts['fail']} fail, {outcome.counts['error']} error"
    )
    symptoms = critique_run(ws, agent, outcome.run["id"])
    spec = diagnose_run(ws, agent, outcome.run["id"])
    top = ", ".join(f"{p.label} ({p.count})" for p in spec.patterns[:3]) or "none"
    say(f"critic: {len(symptoms)} symptoms; spec #{spec.id}: {top}")
    step = Iteration(base, spec)
    options = {k: v for k, v in ws.config.strategy.items() if k != "name"}
    name = ws.config.strategy["name"]
    used = frozenset(v.source_ref for v in ws.store.versions(agent.name))
    ctx = CandidateContext(agent.name, ws.materialize(agent, base), spec, ws.root, options, used)
    proposal = ws.plugins.registry.get("strategy", name)(ctx)
    if proposal is None:
        step.notes.append(f"strategy {name!r} has nothing left to propose")
        return step
    if proposal.patch:
        result = create_candidate(
            ws,
            agent,
            proposal.source or "strategy",
            intent=proposal.intent,
            patch_text=proposal.patch,
            record_as=proposal.source or None,
        )
    else:
        result = create_candidate(ws, agent, proposal.ref, intent=proposal.intent, record_as=proposal.source or None)
    step.candidate = result.version
    say(f"candidate v{result.version.number}: {result.version.intent}")
    if result.rejected:
        step.notes.extend(result.version.reasons)
        return step
    step.gate = gate_candidate(ws, agent, result.version, progress=progress)
    if step.gate.accepted:
        step.move = promote(ws, agent, ws.store.version(agent.name, result.version.number))
    step.candidate = ws.store.version(agent.name, result.version.number)
    return step
