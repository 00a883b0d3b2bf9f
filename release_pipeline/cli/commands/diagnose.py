"""`release diagnose`: aggregate a run's symptoms into an engineering spec."""

from __future__ import annotations

import typer

from release_pipeline.cli.common import (
    AgentOpt,
    JsonOpt,
    RunOpt,
    WorkspaceOpt,
    open_agent,
    print_json,
    print_markdown,
    resolve_run,
)


def diagnose(
    run: RunOpt = None, agent: AgentOpt = None, workspace: WorkspaceOpt = None, json_output: JsonOpt = False
) -> None:
    """Write the engineering spec (dominant patterns, targets, protected tasks, intended change)."""
    from release_pipeline.reports.markdown import spec_markdown

    ws, cfg, pipeline = open_agent(workspace, agent)
    spec = pipeline.diagnose(resolve_run(ws, cfg, run))
    if json_output:
        print_json(spec)
    else:
        print_markdown(spec_markdown(spec))


def register(app: typer.Typer) -> None:
    app.command()(diagnose)
