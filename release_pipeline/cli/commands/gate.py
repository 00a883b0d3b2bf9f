"""`release gate`: compare a candidate with the canonical version task by task and decide."""

from __future__ import annotations

import typer

from release_pipeline.cli.common import (
    AgentOpt,
    CandidateOpt,
    JsonOpt,
    WorkspaceOpt,
    candidate_version,
    open_workspace,
    print_json,
    progress_for,
)


def gate(
    candidate: CandidateOpt, agent: AgentOpt = None, workspace: WorkspaceOpt = None, json_output: JsonOpt = False
) -> None:
    """Run the flip-centered gate. Exit 0 when accepted, 1 when rejected, 2 on bad input."""
    from release_pipeline.stages.gate import gate_candidate

    ws = open_workspace(workspace)
    cfg = ws.agent(agent)
    version = candidate_version(ws, cfg, candidate)
    if version.status == "rejected" and not ws.store.latest_gate_report(cfg.name, version.number):
        _print_prerun_rejection(version, json_output)
        raise typer.Exit(1)
    result = gate_candidate(ws, cfg, version, progress=progress_for(json_output))
    if json_output:
        print_json({"report": result.report_id, **result.body})
    else:
        typer.echo(result.markdown)
    raise typer.Exit(0 if result.accepted else 1)


def _print_prerun_rejection(version, json_output: bool) -> None:
    """A candidate rejected before it ran (it touched forbidden files): report it in the gate's shape."""
    reasons = list(version.reasons)
    if json_output:
        print_json(
            {"decision": "rejected", "candidate": version.number, "reasons": reasons, "fixes": [], "regressions": []}
        )
    else:
        typer.echo(f"v{version.number} REJECTED before running:")
        for reason in reasons:
            typer.echo(f"- {reason}")


def register(app: typer.Typer) -> None:
    app.command()(gate)
