"""`release promote`: move the canonical head to an accepted candidate, or run whole iterations."""

from __future__ import annotations

from typing import Annotated

import typer

from release_pipeline.cli.common import (
    AddressOpt,
    AgentOpt,
    BudgetOpt,
    ExecutorOpt,
    JsonOpt,
    OptionOpt,
    StrategyOpt,
    WorkspaceOpt,
    make_budget,
    open_agent,
    parse_options,
    print_json,
    print_prerun_rejection,
    progress_for,
    rejected_before_running,
    say,
)


def promote(
    candidate: Annotated[
        str | None, typer.Option("--candidate", "-c", help="Candidate to promote (v<N>, ref or patch).")
    ] = None,
    iterations: Annotated[
        int, typer.Option("--iterations", "-n", min=1, help="Iterations with the configured strategy.")
    ] = 1,
    reason: Annotated[str, typer.Option(help="Why (recorded with the move).")] = "",
    strategy: StrategyOpt = None,
    option: OptionOpt = None,
    agent: AgentOpt = None,
    workspace: WorkspaceOpt = None,
    json_output: JsonOpt = False,
    budget: BudgetOpt = None,
    executor: ExecutorOpt = None,
    address: AddressOpt = None,
) -> None:
    """Promote a candidate (gating it first when it has no report against the head), or iterate the pipeline."""
    from release_pipeline.sandbox.pool import kept_pools

    ws, cfg, pipeline = open_agent(workspace, agent, executor, address)
    limit = make_budget(ws, budget)
    with kept_pools():  # a version's sandboxed workers serve each of its runs and gates here, then stop
        if candidate is not None:
            _promote_one(pipeline, candidate, reason, json_output, limit)
        else:
            _iterate(pipeline, iterations, json_output, limit, strategy, parse_options(option))


def _promote_one(pipeline, ref: str, reason: str, json_output: bool, budget) -> None:
    from release_pipeline.reports.markdown import gate_markdown

    ws, cfg = pipeline.ws, pipeline.agent
    version = pipeline.candidate_of(ref)
    if rejected_before_running(ws, version):
        print_prerun_rejection(ws, version, json_output)
        raise typer.Exit(1)
    if ws.store.latest_gate_report(cfg.name, version.number) is None:  # never gated: gate and move in one step
        report = pipeline.gate(version, progress=progress_for(json_output), budget=budget)
        say(gate_markdown(report.to_dict()))
        if report.decision != "accepted":
            if json_output:
                print_json(report)
            raise typer.Exit(report.exit_code)
    move = pipeline.promote(ws.store.version(cfg.name, version.number), reason=reason)
    if json_output:
        print_json(move)
    else:
        typer.echo(f"{cfg.name}: v{move.from_version} -> v{move.to_version} is canonical ({move.reason})")


def _iterate(pipeline, iterations: int, json_output: bool, budget, strategy: str | None, options: dict) -> None:
    from release_pipeline.models import IterationSummary
    from release_pipeline.stages.iterate import iterate

    ws, cfg = pipeline.ws, pipeline.agent
    summary = []
    for i in range(1, iterations + 1):
        say(f"== iteration {i}/{iterations}: {cfg.name} v{ws.head(cfg).number}")
        step = iterate(
            pipeline, strategy=strategy, options=options, progress=progress_for(json_output), say=say, budget=budget
        )
        gate = step.gate
        entry = IterationSummary(
            iteration=i,
            base=step.base.number,
            spec=step.spec.id,
            candidate=step.candidate.number if step.candidate else None,
            decision=gate.decision if gate else ("rejected" if step.candidate else None),
            fixes=gate.fixes if gate else (),
            regressions=gate.regressions if gate else (),
            reasons=tuple(r.message for r in gate.reason_codes) if gate else tuple(step.notes),
            reason_codes=tuple(r.code for r in gate.reason_codes) if gate else (),
            promoted=step.move is not None,
            stopped=step.stopped or None,
        )
        summary.append(entry)
        if step.gate:
            verdict = "accepted and promoted" if step.move else step.gate.decision
            say(
                f"gate: v{entry.candidate} {verdict}: {len(step.gate.fixes)} fixes, "
                f"{len(step.gate.regressions)} regressions"
            )
            for r in step.gate.reason_codes:
                say(f"  - {r.code}: {r.message}")
        for note in step.notes:
            say(f"  {note}")
        if step.stopped or step.candidate is None:
            say(f"stopped after iteration {i}: {step.stopped or 'no candidate'}")
            break
    else:
        say(f"stopped after {iterations} iteration(s), as asked")
    if json_output:
        print_json(summary)


def register(app: typer.Typer) -> None:
    app.command()(promote)
