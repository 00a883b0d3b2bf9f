"""`release show`: one version in full: diff, runs, spec and gate report."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from release_pipeline.cli.common import AgentOpt, JsonOpt, WorkspaceOpt, open_workspace, print_json


def show(
    version: Annotated[str | None, typer.Argument(help="v<N> (default: canonical).")] = None,
    run: Annotated[int | None, typer.Option("--run", help="Show this run's trials instead.")] = None,
    agent: AgentOpt = None,
    workspace: WorkspaceOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Show a version: where it came from, what it changed, how it ran, and what the gate said."""
    from release_pipeline.queries import run_trials, show_version

    ws = open_workspace(workspace)
    if run is not None:
        _show_run(run_trials(ws, run), json_output)
        return
    cfg = ws.agent(agent)
    data = show_version(ws, cfg, ws.resolve_version(cfg, version))
    if json_output:
        print_json(data)
        return
    typer.echo(
        f"{cfg.name} v{data['number']}: {data['status']}   git {data['git_sha'][:10]}   "
        f"branch {data['branch'] or '-'}   tag {data['tag'] or '-'}"
    )
    typer.echo(f"intent: {data['intent']}")
    typer.echo(f"source: {data['source_ref']}   parent: {'v' + str(data['parent']) if data['parent'] else '-'}")
    for reason in data["reasons"]:
        typer.echo(f"  - {reason}")
    for move in data["head_moves"]:
        origin = f"v{move['from_version']}" if move["from_version"] else "(none)"
        typer.echo(
            f"head {move['kind']}: {origin} -> v{move['to_version']} by {move['actor']} at {move['at']}: "
            f"{move['reason']}"
        )
    for one in data["runs"]:
        typer.echo(f"run #{one['id']}: {one['split']} x{one['repeats']} ({one['purpose']}, {one['status']})")
    if data["changed_files"]:
        typer.echo("changed: " + ", ".join(data["changed_files"]))
    if data["gate_report"]:
        typer.echo("")
        typer.echo(data["gate_report"]["markdown"])


def _show_run(data: dict, json_output: bool) -> None:
    if json_output:
        print_json(data)
        return
    typer.echo(f"run #{data['id']}: {data['split']} x{data['repeats']} ({data['purpose']}, {data['status']})")
    for t in data["trials"]:
        output = t["output"] if isinstance(t["output"], str) else json.dumps(t["output"])
        output = " ".join(str(output).split())
        note = f"  {t['feedback']}" if t["feedback"] else ""
        typer.echo(f"  #{t['id']} {t['task_id']} r{t['repeat']} {t['status']:<5} {output[:60]!r}{note[:100]}")


def register(app: typer.Typer) -> None:
    app.command()(show)
