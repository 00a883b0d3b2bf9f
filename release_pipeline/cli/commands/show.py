"""`release show`: one version in full: diff, runs, spec and gate report."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from release_pipeline.cli.common import AgentOpt, JsonOpt, WorkspaceOpt, open_workspace, print_json, print_markdown

if TYPE_CHECKING:
    from release_pipeline.models import Run


def show(
    version: Annotated[str | None, typer.Argument(help="v<N> (default: canonical).")] = None,
    run: Annotated[int | None, typer.Option("--run", help="Show this run's trials instead.")] = None,
    agent: AgentOpt = None,
    workspace: WorkspaceOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Show a version: where it came from, what it changed, how it ran, and what the gate said."""
    from release_pipeline.reports.queries import run_trials, show_version

    ws = open_workspace(workspace)
    if run is not None:
        _show_run(run_trials(ws, run), json_output)
        return
    cfg = ws.agent(agent)
    data = show_version(ws, cfg, ws.resolve_version(cfg, version))
    if json_output:
        print_json(data)
        return
    v = data.entry.version
    typer.echo(
        f"{cfg.name} v{v.number}: {v.status}   git {v.git_sha[:10]}   branch {v.branch or '-'}   tag {v.tag or '-'}"
    )
    typer.echo(f"intent: {v.intent}")
    typer.echo(f"source: {v.source_ref}   parent: {'v' + str(v.parent) if v.parent else '-'}")
    for reason in v.reasons:
        typer.echo(f"  - {reason}")
    for move in data.head_moves:
        origin = f"v{move.from_version}" if move.from_version else "(none)"
        at = move.at.isoformat(timespec="seconds")
        typer.echo(f"head {move.kind}: {origin} -> v{move.to_version} by {move.actor} at {at}: {move.reason}")
    for one in data.runs:
        typer.echo(f"run #{one.id}: {one.split} x{one.repeats} ({one.purpose}, {one.status})")
    if data.changed_files:
        typer.echo("changed: " + ", ".join(data.changed_files))
    if data.gate_markdown:
        typer.echo("")
        print_markdown(data.gate_markdown)


def _show_run(data: Run, json_output: bool) -> None:
    if json_output:
        print_json(data)
        return
    typer.echo(f"run #{data.id}: {data.split} x{data.repeats} ({data.purpose}, {data.status})")
    for t in data.trials:
        output = t.output if isinstance(t.output, str) else json.dumps(t.output)
        output = " ".join(str(output).split())
        note = f"  {t.feedback}" if t.feedback else ""
        typer.echo(f"  #{t.id} {t.task_id} r{t.repeat} {t.status:<5} {output[:60]!r}{note[:100]}")


def register(app: typer.Typer) -> None:
    app.command()(show)
