"""`release diff`: the flip table between two versions that ran the same split."""

from __future__ import annotations

from typing import Annotated

import typer

from release_pipeline.cli.common import AgentOpt, JsonOpt, WorkspaceOpt, open_workspace, print_json


def diff(
    a: Annotated[str, typer.Argument(help="Base version (v<N>).")],
    b: Annotated[str, typer.Argument(help="Other version (v<N>).")],
    split: Annotated[str, typer.Option(help="Split both versions ran.")] = "gate",
    all_tasks: Annotated[bool, typer.Option("--all", help="List unchanged tasks too.")] = False,
    agent: AgentOpt = None,
    workspace: WorkspaceOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Compare the latest complete runs of two versions task by task."""
    from release_pipeline.reports.markdown import flip_rows
    from release_pipeline.reports.queries import flip_table

    ws = open_workspace(workspace)
    cfg = ws.agent(agent)
    table = flip_table(ws, cfg, ws.resolve_version(cfg, a), ws.resolve_version(cfg, b), split)
    if json_output:
        print_json(table)
        return
    counts = ", ".join(f"{k} {v}" for k, v in sorted(table.counts.items()))
    typer.echo(
        f"v{table.a} -> v{table.b} on {split} (runs #{table.runs[0]}, #{table.runs[1]}, "
        f"{table.repeats} repeats): {counts}"
    )
    typer.echo("\n".join(flip_rows([r.to_dict() for r in table.tasks], only_changes=not all_tasks)))


def register(app: typer.Typer) -> None:
    app.command()(diff)
