"""One whole iteration of the pipeline: run -> critic -> diagnose -> candidate -> gate -> promote."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from release_pipeline.errors import AlreadyJudged
from release_pipeline.llm.providers import context_window
from release_pipeline.models import CandidateContext, GateReport, HeadMove, Spec, Verdict, VersionInfo
from release_pipeline.progress import ProgressFactory, silent
from release_pipeline.stages.candidate import judged_against
from release_pipeline.trials.budget import Budget
from release_pipeline.trials.jobs import effective
from release_pipeline.trials.secondary import secondary_verifiers

if TYPE_CHECKING:
    from release_pipeline.config.release_yaml import AgentConfig
    from release_pipeline.pipeline import Pipeline
    from release_pipeline.workspace import Workspace


def dev_examples(ws: Workspace, agent: AgentConfig, run_id: int) -> tuple[dict[str, Any], ...]:
    """The dev tasks of a run as a strategy may use them: input, expected answer, the suite's reference answer
    where it has one (a benchmark's ground truth as an answer, see `benchmarks.REFERENCE`), tags, and how the agent
    did. Only dev tasks: gate and holdout tasks never reach a strategy."""
    from release_pipeline.benchmarks import REFERENCE

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
                "reference": task.metadata.get(REFERENCE),
                "tags": list(task.tags),
                "passed": passed,
                "passes": sum(1 for t in mine if t.status == "pass"),
                "trials": len(mine),
                "output": mine[0].output if mine else None,
            }
        )
    return tuple(examples)


def portfolio(ws: Workspace, agent: AgentConfig) -> list[dict[str, Any]]:
    """The strategies `release promote --iterations` tries, in order: the agent's `strategy:` list (or its one
    strategy), else the workspace's."""
    if agent.portfolio:
        return [dict(s) for s in agent.portfolio]
    if agent.strategy:
        return [dict(agent.strategy)]
    return [dict(s) for s in ws.config.portfolio] or [dict(ws.config.strategy)]


@dataclass
class Iteration:
    base: VersionInfo
    spec: Spec
    candidate: VersionInfo | None = None
    gate: GateReport | None = None
    move: HeadMove | None = None
    notes: list[str] = field(default_factory=list)
    stopped: str = ""  # why the loop cannot go on from here (empty: it can)


def iterate(
    pipeline: Pipeline,
    *,
    strategy: str | None = None,
    options: dict[str, Any] | None = None,
    progress: ProgressFactory | None = None,
    say: Callable[[str], None] = lambda _: None,
    budget: Budget | None = None,
) -> Iteration:
    """Improve the canonical version once (with `strategy`, else the configured one): one candidate at most,
    gated, and promoted when accepted. Every stage runs through its hook (`pipeline`)."""
    ws, agent, progress = pipeline.ws, pipeline.agent, progress or silent
    step = propose(pipeline, strategy=strategy, options=options, progress=progress, say=say, budget=budget)
    if step.candidate is None or step.candidate.status == "rejected":
        return step
    step.gate = pipeline.gate(step.candidate, progress=progress, budget=budget)
    if step.gate.decision == "accepted":
        step.move = pipeline.promote(ws.store.version(agent.name, step.candidate.number))
    step.candidate = ws.store.version(agent.name, step.candidate.number)
    return step


def propose(
    pipeline: Pipeline,
    *,
    strategy: str | None = None,
    options: dict[str, Any] | None = None,
    progress: ProgressFactory | None = None,
    say: Callable[[str], None] = lambda _: None,
    budget: Budget | None = None,
) -> Iteration:
    """Run the canonical version on dev, label and diagnose its failures, and record one candidate from them."""
    from release_pipeline.repo.gitops import ensure_clean

    ws, agent, progress = pipeline.ws, pipeline.agent, progress or silent
    base = ws.head(agent)
    ensure_clean(ws.repo)  # a candidate is recorded at the end: say so now, not after training
    run = pipeline.run(base, split="dev", reuse=True, progress=progress, budget=budget)
    say(
        f"run #{run.id}: v{base.number} on dev: {run.counts['pass']} pass, "
        f"{run.counts['fail']} fail, {run.counts['error']} error"
    )
    symptoms = pipeline.critic(run.id, progress=progress)
    spec = pipeline.diagnose(run.id)
    top = ", ".join(f"{p.label} ({p.count})" for p in spec.patterns[:3]) or "none"
    say(f"critic: {len(symptoms)} symptoms; spec #{spec.id}: {top}")
    step = Iteration(base, spec)
    strategy = strategy or (agent.strategy or ws.config.strategy)["name"]
    ws.plugins.registry.get("strategy", strategy)  # an unknown strategy fails before anything more
    ctx = candidate_context(ws, agent, base, spec, run.id, strategy, options, progress)
    if ctx.judged:
        say(f"{len(ctx.judged)} candidate(s) already judged against v{base.number}: the strategy must propose another")
    try:
        result = pipeline.candidate(ctx, strategy)
    except AlreadyJudged as exc:
        step.stopped = f"strategy {strategy!r} proposed content already judged: {exc}"
        return step
    if result is None:
        step.stopped = f"strategy {strategy!r} has nothing more to propose against v{base.number}"
        return step
    step.candidate = result.version
    say(f"candidate v{result.version.number}: {result.version.intent}")
    if result.version.status == "rejected":
        step.notes.extend(result.version.reasons)
    return step


def candidate_context(
    ws: Workspace,
    agent: AgentConfig,
    base: VersionInfo,
    spec: Spec,
    run_id: int,
    strategy: str,
    overrides: dict[str, Any] | None = None,
    progress: ProgressFactory | None = None,
) -> CandidateContext:
    """What the candidate stage sees: the canonical artifact, the spec, dev examples, what was judged already.

    The options are the configured strategy's (when it is `strategy`), with `overrides` on top.
    """
    configured = agent.strategy or ws.config.strategy
    options = {k: v for k, v in configured.items() if k != "name"} if configured["name"] == strategy else {}
    options.update(overrides or {})
    artifact = ws.materialize(agent, base)
    return CandidateContext(
        agent.name,
        artifact,
        spec,
        ws.root,
        options,
        frozenset(v.source_ref for v in ws.store.versions(agent.name)),
        ws.llm,
        ws.config.models["synthesizer"],
        dev_examples(ws, agent, run_id),
        judged_against(ws, agent, base),
        context_window(artifact.manifest.model or ws.config.models.get("agent", "")),
        dev_verifiers(ws, agent),
        progress,
    )


def dev_verifiers(ws: Workspace, agent: AgentConfig) -> dict[str, Callable[[str, Any], Verdict]]:
    """The suite's own verifiers over its dev tasks, by name (`primary`, then the secondary ones), for strategies
    that score outputs (GRPO's rewards)."""
    suite = ws.suite(agent)
    tasks = {t.id: t for t in suite.split("dev")}
    secondary = secondary_verifiers(ws, suite)

    def scorer(name: str) -> Callable[[str, Any], Verdict]:
        def verify(task_id: str, output: Any) -> Verdict:
            task = tasks[task_id]
            return (ws.verifiers(task) if name == "primary" else secondary[name])(task, output)

        return verify

    return {name: scorer(name) for name in ("primary", *secondary)}
