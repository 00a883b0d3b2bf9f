"""`release critic`: label the symptoms of a run's failures, blind to the agent's implementation."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

import typer

from release_pipeline.cli.common import (
    AgentOpt,
    JsonOpt,
    RunOpt,
    WorkspaceOpt,
    open_agent,
    print_json,
    progress_for,
    resolve_run,
)


def critic(
    run: RunOpt = None,
    name: Annotated[str | None, typer.Option("--critic", help="Critic to use (default: from release.yaml).")] = None,
    agent: AgentOpt = None,
    workspace: WorkspaceOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Label symptoms of every failed trial of a run and store them."""
    ws, cfg, pipeline = open_agent(workspace, agent)
    run_id = resolve_run(ws, cfg, run)
    symptoms = pipeline.critic(run_id, critic=name, progress=progress_for(json_output))
    if json_output:
        print_json(symptoms)
        return
    typer.echo(f"run #{run_id}: {len(symptoms)} symptoms")
    for label, count in Counter(s.label for s in symptoms).most_common():
        typer.echo(f"  {label:<20} {count}")


def register(app: typer.Typer) -> None:
    app.command()(critic)
