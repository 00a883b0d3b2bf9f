"""`release run`: run a version over a split, recording a trace and verdict per task and repeat."""

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
    WorkspaceOpt,
    make_budget,
    open_agent,
    print_json,
    progress_for,
    say,
)


def run(
    version: Annotated[str | None, typer.Option("--version", "-v", help="v<N> (default: canonical).")] = None,
    split: Annotated[str, typer.Option(help="dev, gate or holdout.")] = "dev",
    repeats: Annotated[int | None, typer.Option("--repeats", "-k", min=1, help="Repeats per task.")] = None,
    fresh: Annotated[bool, typer.Option(help="Start a new run instead of resuming an unfinished one.")] = False,
    agent: AgentOpt = None,
    workspace: WorkspaceOpt = None,
    json_output: JsonOpt = False,
    budget: BudgetOpt = None,
    executor: ExecutorOpt = None,
    address: AddressOpt = None,
) -> None:
    """Run a version over a suite split; an interrupted identical run is resumed, not repeated."""
    from release_pipeline.errors import UserError
    from release_pipeline.models import SPLITS
    from release_pipeline.trials.jobs import effective
    from release_pipeline.trials.secondary import secondary_line, secondary_scores

    if split not in SPLITS:
        raise UserError(f"unknown split {split!r} (known: {', '.join(SPLITS)})")
    ws, cfg, pipeline = open_agent(workspace, agent, executor, address)
    target = ws.resolve_version(cfg, version)
    _say_if_uncommitted(ws, cfg, target)
    record = pipeline.run(
        target,
        split=split,
        repeats=repeats,
        fresh=fresh,
        progress=progress_for(json_output),
        budget=make_budget(ws, budget),
    )
    trials = effective(ws.store.trials(record.id, with_trace=False)).values()
    secondary = secondary_scores(ws, ws.suite(cfg), trials)
    if json_output:
        print_json(replace(record, secondary=secondary))
        return
    c = record.counts
    total = sum(c.values())
    resumed = f" (resumed; {record.executed} trials were missing)" if record.resumed else ""
    say(f"run #{record.id}: {cfg.name} v{target.number} on {split}, {record.repeats} repeats{resumed}")
    typer.echo(f"{c['pass']}/{total} trials passed, {c['fail']} failed, {c['error']} errors")
    if secondary:
        typer.echo(secondary_line(secondary))


def _say_if_uncommitted(ws, cfg, target) -> None:
    """A run is of a recorded version's commit, never of the working tree: say so when they differ."""
    import git

    try:
        changed = ws.repo.git.status("--porcelain", "--", cfg.path).splitlines()
    except git.GitCommandError:  # only a note: git's own refusal is for the command that needs it to say
        return
    if changed:
        say(
            f"note: {len(changed)} uncommitted change(s) in {cfg.path} do not run: v{target.number} is commit "
            f"{target.git_sha[:10]}; commit them and record a candidate (`release candidate --from HEAD`)"
        )


def register(app: typer.Typer) -> None:
    app.command()(run)
