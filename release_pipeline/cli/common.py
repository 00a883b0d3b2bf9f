"""What every command shares: option aliases, workspace lookup, output helpers."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from release_pipeline.notices import QUIET, quiet, say  # noqa: F401 (the CLI's commands speak through these)

if TYPE_CHECKING:
    from release_pipeline.models import Record

AgentOpt = Annotated[str | None, typer.Option("--agent", "-a", help="Agent name (default: the only one).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
WorkspaceOpt = Annotated[
    Path | None, typer.Option("--workspace", "-w", help="Workspace folder (default: search upwards from here).")
]


def open_workspace(path: Path | None):
    """The workspace at `path`, or the nearest one above the current folder."""
    from release_pipeline.workspace import Workspace

    return Workspace.find(path)


def stdout_console():
    """A rich console on stdout: the terminal's width at a terminal (or $COLUMNS), no wrapping in a pipe.

    Rich itself honours NO_COLOR and FORCE_COLOR."""
    from rich.console import Console

    fixed = sys.stdout.isatty() or os.environ.get("COLUMNS")
    return Console() if fixed else Console(width=200)


def print_markdown(text: str) -> None:
    """A Markdown report: rendered at a terminal, the Markdown itself into a pipe or file."""
    if not sys.stdout.isatty():
        typer.echo(text)
        return
    from rich.markdown import Markdown

    stdout_console().print(Markdown(text))


def print_json(data: Record | Sequence[Record]) -> None:
    """A record, or a list of them, in the JSON shape `docs/json.md` documents."""
    from release_pipeline.models import plain

    typer.echo(json.dumps(plain(data), indent=2, default=str))


def progress_for(json_output: bool):
    """A rich progress bar for people at a terminal; nothing for --json or pipes."""
    from release_pipeline.progress import rich_bar, silent

    return silent if json_output or quiet() or not sys.stderr.isatty() else rich_bar


def resolve_run(ws, agent, run_id: int | None) -> int:
    """The given run, or the canonical version's latest complete run on the dev split."""
    from release_pipeline.errors import UserError

    if run_id is not None:
        return ws.store.run(run_id).id
    head = ws.head(agent)
    run = ws.store.latest_run(ws.store.version_id(agent.name, head.number), "dev")
    if run is None:
        raise UserError(f"v{head.number} has no complete run on the dev split: run `release run` first")
    return run.id


RunOpt = Annotated[int | None, typer.Option("--run", help="Run id (default: canonical's latest dev run).")]

CandidateOpt = Annotated[
    str, typer.Option("--candidate", "-c", help="v<N> of a recorded candidate, or a branch, commit or patch to record.")
]


def open_agent(workspace: Path | None, agent: str | None, executor: str | None = None, address: str | None = None):
    """The command's preamble: its executor choice, the workspace, the agent, and the pipeline whose stages it runs
    (each through its hook)."""
    from release_pipeline.pipeline import Pipeline

    choose_executor(executor, address)
    ws = open_workspace(workspace)
    cfg = ws.agent(agent)
    return ws, cfg, Pipeline(ws, cfg)


def rejected_before_running(ws, version) -> bool:
    """A candidate rejected when it was recorded (it touched files it may not), so never gated."""
    return version.status == "rejected" and ws.store.latest_gate_report(version.agent, version.number) is None


def print_prerun_rejection(ws, version, json_output: bool):
    """Report such a candidate as a gate report, so scripts read one format; returns that report."""
    from release_pipeline.models import GateReport

    head = ws.store.head(version.agent)
    report = GateReport(
        version.agent, head.number if head else 0, version.number, "rejected", exit_code=1, reasons=version.reasons
    )
    if json_output:
        print_json(report)
    else:
        typer.echo(f"v{version.number} REJECTED before running:")
        for reason in report.reasons:
            typer.echo(f"- {reason}")
    return report


StrategyOpt = Annotated[
    str | None,
    typer.Option("--strategy", "-s", help="Candidate strategy (fewshot, llm-edit, lora-sft, grpo, patch-queue, ...)."),
]
OptionOpt = Annotated[
    list[str] | None,
    typer.Option("--option", "-o", help="A strategy option, KEY=VALUE (YAML value); repeat for more."),
]


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """`--option steps=40 --option target_modules=[q_proj,v_proj]` as a dict (values read as YAML)."""
    import yaml

    from release_pipeline.errors import UserError

    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--option {pair!r}: expected KEY=VALUE")
        try:
            options[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise UserError(f"--option {pair!r}: the value is not valid YAML") from None
    return options


ExecutorOpt = Annotated[
    str | None,
    typer.Option("--executor", help="Where trials run: local, ray, or a plugin's (default: run.executor)."),
]
AddressOpt = Annotated[
    str | None, typer.Option("--address", help="The executor's address (a Ray cluster's, e.g. 10.0.0.5:6379).")
]


def choose_executor(executor: str | None, address: str | None) -> None:
    """`--executor` and `--address` for every run this command makes (the gate's judge workspaces included)."""
    from release_pipeline.trials.settings import ADDRESS_ENV, EXECUTOR_ENV

    if executor:
        os.environ[EXECUTOR_ENV] = executor
    if address:
        os.environ[ADDRESS_ENV] = address


BudgetOpt = Annotated[
    float | None,
    typer.Option("--budget", min=0, help="Dollars this command may spend on LLM calls (pre-flight checked)."),
]


def make_budget(ws, limit: float | None):
    from release_pipeline.trials.budget import Budget

    return None if limit is None else Budget(limit, ws.llm)
