"""The `release` Typer app. Importing this module stays cheap: heavy imports live inside commands."""

from __future__ import annotations

import sys

import typer
from typer.core import TyperGroup

from release_pipeline.cli.commands import (
    candidate,
    critic,
    diagnose,
    diff,
    doctor,
    gate,
    init,
    log,
    plugins,
    promote,
    rollback,
    run,
    show,
)

COMMANDS = (init, run, critic, diagnose, candidate, gate, promote, log, show, diff, rollback, doctor, plugins)


class ReleaseGroup(TyperGroup):
    """Turns every `UserError` into one line on stderr and exit status 2, whoever invokes the app."""

    def invoke(self, ctx):
        from release_pipeline.errors import UserError

        try:
            return super().invoke(ctx)
        except UserError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None


def build_app() -> typer.Typer:
    app = typer.Typer(
        cls=ReleaseGroup,
        name="release",
        help="Release engineering for LLM agents: run -> critic -> diagnose -> candidate -> gate -> promote.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    for module in COMMANDS:
        module.register(app)
    _add_plugin_commands(app)
    return app


def _add_plugin_commands(app: typer.Typer) -> None:
    """Commands that plugins add; only looked for inside a workspace, so `release --help` stays fast elsewhere."""
    from release_pipeline.errors import UserError
    from release_pipeline.locations import find_root
    from release_pipeline.plugins import load_plugins

    try:
        # The config is not read here (validating it costs start-up time); commands check it themselves.
        plugins = load_plugins(find_root())
    except UserError:  # the command itself will report a broken workspace
        return
    plugins.hook.release_register_commands(app=app)


def main() -> None:
    from release_pipeline.errors import UserError

    try:
        app = build_app()
        app()
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted: finished trials are recorded; run the same command again to resume", err=True)
        sys.exit(130)
