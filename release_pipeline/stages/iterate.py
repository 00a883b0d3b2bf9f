"""One whole iteration of the pipeline: run -> critic -> diagnose -> candidate -> gate -> promote."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from release_pipeline.errors import AlreadyJudged
from release_pipeline.llm.providers import context_window
from release_pipeline.models import CandidateContext, CandidateProposal, HeadMove, Spec, VersionInfo
from release_pipeline.progress import ProgressFactory
from release_pipeline.stages.budget import Budget
from release_pipeline.stages.candidate import CandidateResult, create_candidate, judged_against
from release_pipeline.stages.critic import critique_run
from release_pipeline.stages.diagnose import diagnose_run
from release_pipeline.stages.gate import GateResult, gate_candidate
from release_pipeline.stages.promote import promote
from release_pipeline.stages.run import effective, run_version

if TYPE_CHECKING:
    from release_pipeline.config import AgentConfig
    from release_pipeline.workspace import Workspace


def dev_examples(ws: Workspace, agent: AgentConfig, run_id: int) -> tuple[dict[str, Any], ...]:
    """The dev tasks of a run as a strategy may use them: input, expected answer, tags, and how the agent did."""
    by_task: dict[str, list] = {}
    for (task_id, _), trial in sorted(effective(ws.store.trials(run_id, with_trace=False)).items()):
        if trial.status != "error":
            by_task.setdefault(task_id, []).append(trial)
    examples = []
    for task in ws.suite(agent).split("dev"):
        mine = by_task.get(task.id, [])
        passed = bool(mine) and all(t.status == "pass" for t in mine)
        examples.append(
            {
                "task_id": task.id,
                "input": task.input,
                "expected": task.expected,
                "tags": list(task.tags),
                "passed": passed,
                "output": mine[0].output if mine else None,
            }
        )
    return tuple(examples)


@dataclass
class Iteration:
    base: VersionInfo
    spec: Spec
    candidate: VersionInfo | None = None
    gate: GateResult | None = None
    move: HeadMove | None = None
    notes: list[str] = field(default_factory=list)
    stopped: str = ""  # why the loop cannot go on from here (empty: it can)


def iterate(
    ws: Workspace,
    agent: AgentConfig,
    *,
    progress: ProgressFactory | None = None,
    say: Callable[[str], None] = lambda _: None,
    budget: Budget | None = None,
) -> Iteration:
    """Improve the canonical version once with the configured strategy; exactly one candidate at most."""
    base = ws.head(agent)
    outcome = run_version(ws, agent, base, split="dev", reuse=True, progress=progress, budget=budget)
    say(
        f"run #{outcome.run['id']}: v{base.number} on dev: {outcome.counts['pass']} pass, "
        f"{outcome.counts['fail']} fail, {outcome.counts['error']} error"
    )
    symptoms = critique_run(ws, agent, outcome.run["id"], progress=progress)
    spec = diagnose_run(ws, agent, outcome.run["id"])
    top = ", ".join(f"{p.label} ({p.count})" for p in spec.patterns[:3]) or "none"
    say(f"critic: {len(symptoms)} symptoms; spec #{spec.id}: {top}")
    step = Iteration(base, spec)
    strategy = agent.strategy or ws.config.strategy
    options = {k: v for k, v in strategy.items() if k != "name"}
    name = strategy["name"]
    used = frozenset(v.source_ref for v in ws.store.versions(agent.name))
    artifact = ws.materialize(agent, base)
    judged = judged_against(ws, agent, base)
    ctx = CandidateContext(
        agent.name,
        artifact,
        spec,
        ws.root,
        options,
        used,
        ws.llm,
        ws.config.models["synthesizer"],
        dev_examples(ws, agent, outcome.run["id"]),
        judged,
        context_window(artifact.manifest.model or ws.config.models.get("agent", "")),
    )
    if judged:
        say(f"{len(judged)} candidate(s) already judged against v{base.number}: the strategy must propose another")
    proposal = ws.plugins.registry.get("strategy", name)(ctx)
    if proposal is None:
        step.stopped = f"strategy {name!r} has nothing more to propose against v{base.number}"
        return step
    try:
        result = _record(ws, agent, name, proposal)
    except AlreadyJudged as exc:
        step.stopped = f"strategy {name!r} proposed content already judged: {exc}"
        return step
    step.candidate = result.version
    say(f"candidate v{result.version.number}: {result.version.intent}")
    if result.rejected:
        step.notes.extend(result.version.reasons)
        return step
    step.gate = gate_candidate(ws, agent, result.version, progress=progress, budget=budget)
    if step.gate.accepted:
        step.move = promote(ws, agent, ws.store.version(agent.name, result.version.number))
    step.candidate = ws.store.version(agent.name, result.version.number)
    return step


def _record(ws: Workspace, agent: AgentConfig, name: str, proposal: CandidateProposal) -> CandidateResult:
    """Record a strategy's proposal as the candidate: new files, a patch, or a git ref."""
    if proposal.files:
        return create_candidate(
            ws,
            agent,
            proposal.source or name,
            intent=proposal.intent,
            files=proposal.files,
            record_as=proposal.source or None,
        )
    if proposal.patch:
        return create_candidate(
            ws,
            agent,
            proposal.source or "strategy",
            intent=proposal.intent,
            patch_text=proposal.patch,
            record_as=proposal.source or None,
        )
    return create_candidate(ws, agent, proposal.ref, intent=proposal.intent, record_as=proposal.source or None)
