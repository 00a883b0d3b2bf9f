"""`release gate`: compare a candidate with the canonical version task by task and decide."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from release_pipeline.cli.common import (
    AddressOpt,
    AgentOpt,
    BudgetOpt,
    ExecutorOpt,
    JsonOpt,
    WorkspaceOpt,
    make_budget,
    open_agent,
    print_json,
    print_markdown,
    print_prerun_rejection,
    progress_for,
    rejected_before_running,
)


def gate(
    candidate: Annotated[
        str | None,
        typer.Option("--candidate", "-c", help="v<N> of a recorded candidate, or a branch, commit or patch to record."),
    ] = None,
    plan: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="Price the gate from the stored history (trials, dollars, affordable min_effect); run nothing.",
        ),
    ] = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Show every task: what was seen, what it shows, why trials were spent.")
    ] = False,
    markdown: Annotated[Path | None, typer.Option("--markdown", help="Also write the Markdown report here.")] = None,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Also write JUnit XML here (a test case per gate task).")
    ] = None,
    agent: AgentOpt = None,
    workspace: WorkspaceOpt = None,
    json_output: JsonOpt = False,
    budget: BudgetOpt = None,
    executor: ExecutorOpt = None,
    address: AddressOpt = None,
) -> None:
    """Run the flip-centered gate. Exit 0 accepted, 1 rejected, 3 undecided (budget or evidence), 2 bad input."""
    from release_pipeline.errors import UserError
    from release_pipeline.gate.stage import plan_gate
    from release_pipeline.reports.markdown import gate_junit, gate_markdown, plan_markdown

    ws, cfg, pipeline = open_agent(workspace, agent, executor, address)
    if plan:
        priced = plan_gate(ws, cfg)
        if json_output:
            print_json(priced)
        else:
            print_markdown(plan_markdown(priced))
        raise typer.Exit(0)
    if candidate is None:
        raise UserError(
            "release gate needs --candidate REF, or --plan to price a gate without running it (see release gate --help)"
        )
    version = pipeline.candidate_of(candidate)
    if rejected_before_running(ws, version):
        report = print_prerun_rejection(ws, version, json_output)
        _write(
            markdown,
            f"# Gate: {cfg.name} v{version.number}: REJECTED before running\n\n"
            + "".join(f"- {r}\n" for r in report.reasons),
        )
        _write(junit, gate_junit(report.to_dict()))
        raise typer.Exit(1)
    report = pipeline.gate(version, progress=progress_for(json_output), budget=make_budget(ws, budget))
    body = report.to_dict()
    _write(markdown, gate_markdown(body))
    _write(junit, gate_junit(body))
    if json_output:
        print_json(report)
    else:
        print_markdown(gate_markdown(body, explain=explain))
    raise typer.Exit(report.exit_code)


def _write(path: Path | None, text: str) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def register(app: typer.Typer) -> None:
    app.command()(gate)
