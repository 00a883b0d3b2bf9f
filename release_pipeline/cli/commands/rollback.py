"""`release rollback`: make an earlier canonical version canonical again, recorded like any promotion."""

from __future__ import annotations

from typing import Annotated

import typer

from release_pipeline.cli.common import AgentOpt, JsonOpt, WorkspaceOpt, open_workspace, print_json


def rollback(
    to: Annotated[str | None, typer.Option("--to", help="v<N> (default: the version the head came from).")] = None,
    reason: Annotated[str, typer.Option(help="Why (recorded with the move).")] = "",
    agent: AgentOpt = None,
    workspace: WorkspaceOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Move the canonical head back to a formerly canonical version."""
    from release_pipeline.stages.promote import rollback as roll_back

    ws = open_workspace(workspace)
    cfg = ws.agent(agent)
    target = ws.resolve_version(cfg, to) if to else None
    move = roll_back(ws, cfg, target, reason=reason)
    if json_output:
        print_json(move)
    else:
        typer.echo(f"{cfg.name}: rolled back v{move.from_version} -> v{move.to_version} ({move.reason})")


def register(app: typer.Typer) -> None:
    app.command()(rollback)
