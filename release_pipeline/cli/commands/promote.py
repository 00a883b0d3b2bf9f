"""`release promote`: move the canonical head to an accepted candidate, or run whole iterations."""

from __future__ import annotations

from dataclasses import replace
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

NOTHING_PROMOTED = 5  # `release promote --iterations N` ran, and no candidate was promoted


def promote(
    candidate: Annotated[
        str | None, typer.Option("--candidate", "-c", help="Candidate to promote (v<N>, ref or patch).")
    ] = None,
    iterations: Annotated[
        int,
        typer.Option(
            "--iterations",
            "-n",
            min=1,
            help="Iterations with the configured strategy, or its portfolio (`strategy:` as a list): when one "
            "stops producing accepted candidates the next takes over. Exit 0 when a candidate was promoted, "
            f"{NOTHING_PROMOTED} when none was.",
        ),
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
    from release_pipeline.stages.iterate import portfolio

    ws, cfg = pipeline.ws, pipeline.agent
    entries = [{"name": strategy}] if strategy else portfolio(ws, cfg)
    at, summary = 0, []
    for i in range(1, iterations + 1):
        entry = entries[at]
        name, settings = entry["name"], {**{k: v for k, v in entry.items() if k != "name"}, **options}
        say(f"== iteration {i}/{iterations}: {cfg.name} v{ws.head(cfg).number}, strategy {name}")
        step, entry_summary = _one_iteration(pipeline, i, name, settings, json_output, budget)
        summary.append(entry_summary)
        if step.move is not None:
            continue
        # this strategy stopped producing accepted candidates: the portfolio's next one takes over, if any
        why = step.stopped or _not_accepted(entry_summary)
        if at + 1 < len(entries):
            at += 1
            summary[-1] = replace(entry_summary, moved_on=f"{name}: {why}; next: {entries[at]['name']}")
            say(f"moving on from {name} to {entries[at]['name']}: {why}")
        elif step.stopped or step.candidate is None:
            last = " (the last strategy listed)" if len(entries) > 1 else ""
            say(f"stopped after iteration {i}: {name}{last}: {why}")
            break
    else:
        say(f"stopped after {iterations} iteration(s), as asked")
    _conclude(summary, json_output)


def _conclude(summary: list, json_output: bool) -> None:
    """Say what was promoted (the summary too, under --json); exit NOTHING_PROMOTED when nothing was."""
    promoted = [s.candidate for s in summary if s.promoted]
    say(f"promoted: {', '.join(f'v{n}' for n in promoted)}" if promoted else "nothing was promoted")
    if json_output:
        print_json(summary)
    if not promoted:
        raise typer.Exit(NOTHING_PROMOTED)


def _not_accepted(entry) -> str:
    if entry.candidate is None:
        return "no candidate"
    return f"its candidate v{entry.candidate} was {entry.decision or 'rejected'}"


def _summary(i: int, name: str, step):
    from release_pipeline.models import IterationSummary

    gate, candidate = step.gate, step.candidate
    if gate is None:
        return IterationSummary(
            iteration=i,
            base=step.base.number,
            strategy=name,
            spec=step.spec.id,
            candidate=candidate.number if candidate else None,
            decision="rejected" if candidate else None,
            reasons=tuple(step.notes),
            stopped=step.stopped or None,
        )
    return IterationSummary(
        iteration=i,
        base=step.base.number,
        strategy=name,
        spec=step.spec.id,
        candidate=candidate.number,
        decision=gate.decision,
        fixes=gate.fixes,
        regressions=gate.regressions,
        reasons=tuple(r.message for r in gate.reason_codes),
        reason_codes=tuple(r.code for r in gate.reason_codes),
        promoted=step.move is not None,
        stopped=step.stopped or None,
    )


def _one_iteration(pipeline, i: int, name: str, settings: dict, json_output: bool, budget):
    from release_pipeline.stages.iterate import iterate

    progress = progress_for(json_output)
    step = iterate(pipeline, strategy=name, options=settings, progress=progress, say=say, budget=budget)
    entry = _summary(i, name, step)
    gate = step.gate
    if gate:
        verdict = "accepted and promoted" if step.move else gate.decision
        fixes, regressions = len(gate.fixes), len(gate.regressions)
        say(f"gate: v{entry.candidate} {verdict}: {fixes} fixes, {regressions} regressions")
        for r in gate.reason_codes:
            say(f"  - {r.code}: {r.message}")
    for note in step.notes:
        say(f"  {note}")
    return step, entry


def register(app: typer.Typer) -> None:
    app.command()(promote)
