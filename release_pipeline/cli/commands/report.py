"""`release report`: the agent's line, versions and runs as self-contained HTML pages in one folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from release_pipeline.cli.common import AgentOpt, WorkspaceOpt, open_workspace


def report(
    version: Annotated[str | None, typer.Argument(help="v<N>: print its page (default: the line's).")] = None,
    run: Annotated[int | None, typer.Option("--run", help="Print this run's page.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder to write the pages into (default: .release/reports).")
    ] = None,
    open_it: Annotated[bool, typer.Option("--open", help="Open the page in the browser.")] = False,
    agent: AgentOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Write the agent's HTML report (line, versions, runs) and print the path of the page asked for."""
    from release_pipeline.errors import UserError
    from release_pipeline.reports.html import line_page, page_name, run_page, write_site

    ws = open_workspace(workspace)
    cfg = ws.agent(agent)
    folder = out or ws.state_dir / "reports"
    if run is not None:
        if ws.store.run(run).agent != cfg.name:
            raise UserError(f"run #{run} is not a run of {cfg.name}")
        page = run_page(cfg.name, run)
    elif version is not None:
        page = page_name(cfg.name, ws.resolve_version(cfg, version).number)
    else:
        page = line_page(cfg.name)
    write_site(ws, cfg, folder)
    path = folder / page
    typer.echo(str(path))
    if open_it:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())


def register(app: typer.Typer) -> None:
    app.command()(report)
