"""`release log`: the version line, with every candidate, its status and why."""

from __future__ import annotations

import typer

from release_pipeline.cli.common import AgentOpt, JsonOpt, WorkspaceOpt, open_workspace, print_json, stdout_console


def log(agent: AgentOpt = None, workspace: WorkspaceOpt = None, json_output: JsonOpt = False) -> None:
    """Show the version line: canonical, retired, accepted and rejected versions with their reasons."""
    from rich.table import Table

    from release_pipeline.reports.queries import version_line

    ws = open_workspace(workspace)
    cfg = ws.agent(agent)
    rows = version_line(ws, cfg)
    if json_output:
        print_json(rows)
        return
    console = stdout_console()
    wide = console.width >= 90  # a narrow terminal drops the git and parent columns (`release show` has them)
    table = Table(title=f"{cfg.name}: version line", title_justify="left")
    table.add_column("version", no_wrap=True)
    table.add_column("status", no_wrap=True)
    if wide:
        table.add_column("git", no_wrap=True)
        table.add_column("parent", no_wrap=True)
    table.add_column("gate", overflow="fold")
    table.add_column("intent / reasons", overflow="fold", ratio=1)
    for entry in rows:
        v, gate = entry.version, entry.gate
        gate_text = "" if gate is None else f"{gate.decision} vs v{gate.against}: +{gate.fixes} -{gate.regressions}"
        detail = v.intent + "".join(f"\n- {reason}" for reason in v.reasons)
        status = (
            f"[bold green]{v.status}[/]"
            if v.status == "canonical"
            else (f"[red]{v.status}[/]" if v.status == "rejected" else v.status)
        )
        where = (v.git_sha[:10], f"v{v.parent}" if v.parent else "") if wide else ()
        table.add_row(f"v{v.number}", status, *where, gate_text, detail)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(log)
