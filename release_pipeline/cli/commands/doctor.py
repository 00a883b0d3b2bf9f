"""`release doctor`: find every disagreement between the database and git, and repair it."""

from __future__ import annotations

from typing import Annotated

import typer

from release_pipeline.cli.common import AgentOpt, JsonOpt, WorkspaceOpt, open_workspace, print_json


def doctor(
    check_only: Annotated[bool, typer.Option("--check", help="Only report; exit 1 when something disagrees.")] = False,
    agent: AgentOpt = None,
    workspace: WorkspaceOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Compare each agent's version line with git (canonical ref, tags) and put git back where they disagree."""
    from release_pipeline.models import DoctorReport
    from release_pipeline.stages.doctor import check, repair

    ws = open_workspace(workspace)
    names = [ws.agent(agent).name] if agent else sorted(ws.config.agents)
    report = []
    for name in names:
        problems = check(ws, name) if check_only else repair(ws, name)
        head = ws.store.head(name)
        found = tuple(problems)
        report.append(
            DoctorReport(
                agent=name,
                canonical=head.number if head else None,
                consistent=not problems or not check_only,
                repaired=() if check_only else found,
                disagreements=found if check_only else (),
            )
        )
        if json_output:
            continue
        where = f"canonical v{head.number}" if head else "no canonical version"
        if not problems:
            typer.echo(f"{name}: the database and git agree ({where})")
            continue
        verb = "disagree" if check_only else "disagreed; repaired to the database's state"
        typer.echo(f"{name}: the database and git {verb} ({where}):")
        for problem in problems:
            typer.echo(f"- {problem.explanation}")
    if json_output:
        print_json(report)
    if check_only and any(not r.consistent for r in report):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(doctor)
