"""`release report`: one version as a self-contained HTML page: the line, the gate's flip matrix, the spec, the diff."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from release_pipeline.cli.common import AgentOpt, WorkspaceOpt, open_workspace


def report(
    version: Annotated[str | None, typer.Argument(help="v<N> (default: canonical).")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Where to write it (default: .release/reports/<agent>-vN.html).")
    ] = None,
    open_it: Annotated[bool, typer.Option("--open", help="Open it in the browser.")] = False,
    agent: AgentOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Write one version's HTML report and print its path."""
    from release_pipeline.html_report import page_name, render

    ws = open_workspace(workspace)
    cfg = ws.agent(agent)
    target = ws.resolve_version(cfg, version)
    path = out or ws.state_dir / "reports" / page_name(cfg.name, target.number)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(ws, cfg, target), encoding="utf-8")
    typer.echo(str(path))
    if open_it:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())


def register(app: typer.Typer) -> None:
    app.command()(report)
