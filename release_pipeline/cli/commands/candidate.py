"""`release candidate`: record one release candidate from a branch, commit, tag or patch file."""

from __future__ import annotations

from typing import Annotated

import typer

from release_pipeline.cli.common import AgentOpt, JsonOpt, WorkspaceOpt, open_workspace, print_json


def candidate(
    source: Annotated[str, typer.Option("--from", help="Branch, commit, tag or patch file with the change.")],
    intent: Annotated[str | None, typer.Option(help="What the change intends (default: commit subject).")] = None,
    agent: AgentOpt = None,
    workspace: WorkspaceOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Record the change as the next candidate on branch rc/<agent>/v<N>; exit 1 if it touches forbidden files."""
    from release_pipeline.stages.candidate import create_candidate

    ws = open_workspace(workspace)
    cfg = ws.agent(agent)
    result = create_candidate(ws, cfg, source, intent=intent)
    v = result.version
    if json_output:
        print_json(result.record)
    else:
        typer.echo(f"v{v.number} {v.status} on {v.branch} ({v.git_sha[:10]}): {v.intent}")
        for reason in v.reasons:
            typer.echo(f"  rejected: {reason}")
    if result.rejected:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(candidate)
