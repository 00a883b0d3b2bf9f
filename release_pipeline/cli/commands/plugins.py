"""`release plugins`: what is loaded, from where, and what each plugin provides."""

from __future__ import annotations

import typer

from release_pipeline.cli.common import JsonOpt, WorkspaceOpt, print_json


def plugins(workspace: WorkspaceOpt = None, json_output: JsonOpt = False) -> None:
    """List loaded plugins with their source, hooks and registered components."""
    from release_pipeline.errors import UserError
    from release_pipeline.plugins.manager import load_plugins
    from release_pipeline.workspace import Workspace

    try:
        ws = Workspace.find(workspace)
    except UserError:
        if workspace is not None:
            raise
        rows = load_plugins().describe()  # outside a workspace: built-in and installed plugins
    else:
        rows = ws.plugins.describe()
    if json_output:
        print_json(rows)
        return
    for row in rows:
        typer.echo(f"{row.name} ({row.source})")
        if row.components:
            typer.echo("  provides: " + ", ".join(row.components))
        typer.echo("  hooks: " + ", ".join(row.hooks))


def register(app: typer.Typer) -> None:
    app.command()(plugins)
