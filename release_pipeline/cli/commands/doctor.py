"""`release doctor`: find every disagreement between the database and git, and repair it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from release_pipeline.cli.common import AgentOpt, JsonOpt, WorkspaceOpt, open_workspace, print_json

if TYPE_CHECKING:
    from release_pipeline.models import Disagreement, DoctorReport, VersionInfo


def doctor(
    check_only: Annotated[bool, typer.Option("--check", help="Only report; exit 1 when something disagrees.")] = False,
    agent: AgentOpt = None,
    workspace: WorkspaceOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Compare each agent's version line with git (canonical ref, tags) and put git back where they disagree."""
    from release_pipeline.stages.doctor import check, repair

    ws = open_workspace(workspace)
    names = [ws.agent(agent).name] if agent else sorted(ws.config.agents)
    report = []
    for name in names:
        problems = check(ws, name) if check_only else repair(ws, name)
        head = ws.store.head(name)
        report.append(_report(name, head, problems, check_only))
        if not json_output:
            _say(name, head, problems, check_only)
    if json_output:
        print_json(report)
    if check_only and any(not r.consistent for r in report):
        raise typer.Exit(1)


def _report(name: str, head: VersionInfo | None, problems: list[Disagreement], check_only: bool) -> DoctorReport:
    """One agent's line of `--json`: what disagrees (`--check`) or what was repaired."""
    from release_pipeline.models import DoctorReport

    found = tuple(problems)
    return DoctorReport(
        agent=name,
        canonical=head.number if head else None,
        consistent=not problems or not check_only,
        repaired=() if check_only else found,
        disagreements=found if check_only else (),
    )


def _say(name: str, head: VersionInfo | None, problems: list[Disagreement], check_only: bool) -> None:
    where = f"canonical v{head.number}" if head else "no canonical version"
    if not problems:
        typer.echo(f"{name}: the database and git agree ({where})")
        return
    verb = "disagree" if check_only else "disagreed; repaired to the database's state"
    typer.echo(f"{name}: the database and git {verb} ({where}):")
    for problem in problems:
        typer.echo(f"- {problem.explanation}")


def register(app: typer.Typer) -> None:
    app.command()(doctor)
