"""`release candidate`: record one release candidate from a change, or from a strategy's proposal."""

from __future__ import annotations

from typing import Annotated

import typer

from release_pipeline.cli.common import (
    AgentOpt,
    BudgetOpt,
    JsonOpt,
    OptionOpt,
    StrategyOpt,
    WorkspaceOpt,
    make_budget,
    open_agent,
    parse_options,
    print_json,
    progress_for,
    say,
)


def candidate(
    source: Annotated[
        str | None, typer.Option("--from", help="Branch, commit, tag or patch file with the change.")
    ] = None,
    strategy: StrategyOpt = None,
    option: OptionOpt = None,
    intent: Annotated[str | None, typer.Option(help="What the change intends (default: commit subject).")] = None,
    agent: AgentOpt = None,
    workspace: WorkspaceOpt = None,
    json_output: JsonOpt = False,
    budget: BudgetOpt = None,
) -> None:
    """Record the change (`--from`) or a strategy's proposal (`--strategy`: runs dev, critic and diagnosis first)
    as the next candidate on branch rc/<agent>/v<N>; exit 1 if it touches forbidden files."""
    from release_pipeline.errors import UserError
    from release_pipeline.models import Candidate
    from release_pipeline.stages.iterate import propose

    if (source is None) == (strategy is None):
        raise UserError("give exactly one of --from (a change) and --strategy (a strategy's proposal)")
    ws, cfg, pipeline = open_agent(workspace, agent)
    if source is not None:
        record = pipeline.record_change(source, intent)
    else:
        from release_pipeline.sandbox.pool import kept_pools

        with kept_pools():  # its dev runs share the version's sandboxed workers
            step = propose(
                pipeline,
                strategy=strategy,
                options=parse_options(option),
                progress=progress_for(json_output),
                say=say,
                budget=make_budget(ws, budget),
            )
        if step.candidate is None:
            raise UserError(step.stopped)
        _, changed = ws.store.version_diff(cfg.name, step.candidate.number)
        record = Candidate(step.candidate, tuple(changed))
    v = record.version
    if json_output:
        print_json(record)
    else:
        typer.echo(f"v{v.number} {v.status} on {v.branch} ({v.git_sha[:10]}): {v.intent}")
        for reason in v.reasons:
            typer.echo(f"  rejected: {reason}")
    if v.status == "rejected":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(candidate)
