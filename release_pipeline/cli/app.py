"""The `release` Typer app. Importing this module stays cheap: heavy imports live inside commands, and a command
line that names a built-in command builds that command only (Typer reads every command's signature as it builds)."""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Sequence

import typer
from typer.core import TyperGroup

from release_pipeline.cli.common import QUIET

# the built-in commands, in the order `--help` lists them; each is `release_pipeline.cli.commands.<name>`
COMMANDS = (
    "init", "run", "critic", "diagnose", "candidate", "gate", "promote", "log", "show", "diff", "report", "rollback",
    "doctor", "plugins",
)  # fmt: skip


class ReleaseGroup(TyperGroup):
    """Turns every `UserError` into one line on stderr and exit status 2, whoever invokes the app."""

    def parse_args(self, ctx, args):
        ctx.meta["json"] = "--json" in args  # errors then come as one JSON object
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        from release_pipeline.errors import UserError

        token = QUIET.set(False)  # `--quiet` holds for this invocation only
        try:
            return super().invoke(ctx)
        except UserError as exc:
            say_error(exc, str(exc), 2, bool(ctx.meta.get("json")))
            raise typer.Exit(2) from None
        finally:
            QUIET.reset(token)


def build_app(argv: Sequence[str] | None = None) -> typer.Typer:
    """The app; given the command line, only the built-in command it names (all of them, and the plugins' commands,
    for `--help`, an unknown name or no `argv`)."""
    app = typer.Typer(
        cls=ReleaseGroup,
        name="release",
        help="Release engineering for LLM agents: run -> critic -> diagnose -> candidate -> gate -> promote.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,  # click's plain help: rich's panels cost more CPU than the rest of `--help` together
    )
    app.callback()(_options)
    named = _command_named(argv)
    for name in (named,) if named else COMMANDS:
        importlib.import_module(f"release_pipeline.cli.commands.{name}").register(app)
    if not named:
        _add_plugin_commands(app)
    return app


def _command_named(argv: Sequence[str] | None) -> str | None:
    """The built-in command a command line runs (None: help, a plugin's command, or a mistake to report)."""
    for arg in argv or ():
        if not arg.startswith("-"):  # the group's own options take no value
            return arg if arg in COMMANDS else None
        if arg in ("--help", "--version"):
            return None
    return None


def _print_version(value: bool) -> None:
    if value:
        from release_pipeline import __version__

        typer.echo(f"release-pipeline {__version__}")
        raise typer.Exit()


def _options(
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Only results and errors: no progress lines or bars (also RELEASE_QUIET=1)."
    ),
) -> None:
    """Release engineering for LLM agents: run -> critic -> diagnose -> candidate -> gate -> promote.

    NO_COLOR=1 turns colour off.
    """
    QUIET.set(quiet)


def _add_plugin_commands(app: typer.Typer) -> None:
    """Commands that plugins add; only looked for inside a workspace, so `release --help` stays fast elsewhere."""
    from release_pipeline.config.locations import find_root
    from release_pipeline.errors import UserError

    try:
        root = find_root()
    except UserError:  # not in a workspace: only the built-in commands
        return
    from release_pipeline.plugins.manager import load_plugins

    try:
        # The config is not read here (validating it costs start-up time); commands check it themselves.
        plugins = load_plugins(root, builtin=False)  # no built-in plugin adds a command
    except UserError:  # the command itself will report a broken workspace
        return
    plugins.hook.release_register_commands(app=app)


def main(argv: list[str] | None = None) -> None:
    """The `release` command: every failure a user can meet ends in one line on stderr and a non-zero exit.

    Exit codes: 0 done, 1 rejected (or `--check` found a problem), 2 bad input or a state to change,
    3 undecided (gate), 4 a plugin raised, 130 interrupted. `RELEASE_PIPELINE_TRACEBACK=1` shows the traceback
    behind a one-line error.
    """
    import signal

    if threading.current_thread() is threading.main_thread():  # SIGTERM unwinds like Ctrl-C: runs end interrupted
        signal.signal(signal.SIGTERM, _terminated)
    try:
        code = build_app(sys.argv[1:] if argv is None else argv)(args=argv, standalone_mode=False)
    except KeyboardInterrupt:
        code = INTERRUPTED
    except Exception as exc:
        failure = _one_line(exc)
        if failure is None or os.environ.get(TRACEBACK_ENV):
            raise
        message, code = failure
        say_error(exc, message, code, "--json" in (sys.argv[1:] if argv is None else argv))
        sys.exit(code)
    if code == INTERRUPTED:  # Ctrl-C or SIGTERM (Typer turns KeyboardInterrupt into this exit code, silently)
        typer.echo("interrupted: finished trials are recorded; run the same command again to resume", err=True)
    sys.exit(code if isinstance(code, int) else 0)


TRACEBACK_ENV = "RELEASE_PIPELINE_TRACEBACK"


INTERRUPTED = 130


def _terminated(signum, frame) -> None:
    """SIGTERM does what Ctrl-C does. Inside `asyncio.run` that is its own SIGINT handler, which cancels the running
    work (trials end, the run is marked interrupted) and raises KeyboardInterrupt once that is done: raising here
    instead could land in the middle of a task's step, leaving a task that never finishes and a process that never
    exits. Elsewhere it is Python's handler, which raises KeyboardInterrupt."""
    import signal

    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:  # SIGINT ignored or left to the system: SIGTERM still ends the command
        raise KeyboardInterrupt


# error code -> what to do about it
HINTS = {
    "already_judged": "propose different content, or wait for the canonical version to move",
    "config": "fix the file the message names, then run the command again",
    "not_found": "`release log` lists versions and `release plugins` the components",
    "conflict": "look at the current state (`release log`), then run the command again; `release doctor` "
    "repairs git and the database",
    "bad_input": "change what the message names, then run the command again",
    "plugin_failed": "the plugin named has a bug: fix it, or block it with RELEASE_PIPELINE_BLOCK=<name>",
    "usage": "see `release <command> --help`",
    "aborted": "run the command again",
    "database_busy": "retry when the other process is done",
    "database": "check the store's URL and that its database is reachable",
    "os_error": "check the path and its permissions",
    "too_deep": "flatten the input",
    "git": "check the repository (`git status`), its disk space and locks, then run the command again",
}


def say_error(exc: BaseException, message: str, exit_code: int, as_json: bool) -> None:
    """One line on stderr: `error: ...`, or under --json one object with a stable code, the message and a hint."""
    if not as_json:
        typer.echo(f"error: {message}", err=True)
        return
    import json

    from release_pipeline.models import ErrorReport

    kind, hint = error_kind(exc)
    typer.echo(json.dumps({"error": ErrorReport(kind, message, hint, exit_code).to_dict()}), err=True)


def error_kind(exc: BaseException) -> tuple[str, str]:
    """A failure's stable code (see HINTS) and the hint that goes with it."""
    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    from release_pipeline.errors import (
        AlreadyJudged,
        ConfigError,
        ConflictError,
        NotFoundError,
        PluginFailed,
        UserError,
    )

    kinds = {cls.__name__ for cls in type(exc).__mro__}
    for cls, code in (
        (PluginFailed, "plugin_failed"),
        (AlreadyJudged, "already_judged"),
        (ConfigError, "config"),
        (NotFoundError, "not_found"),
        (ConflictError, "conflict"),
        (UserError, "bad_input"),
    ):
        if isinstance(exc, cls):
            return code, HINTS[code]
    if kinds & {"NoArgsIsHelpError", "UsageError", "ClickException"}:
        code = "usage"
    elif "Abort" in kinds:
        code = "aborted"
    elif isinstance(exc, OperationalError) and "locked" in str(exc).lower():
        code = "database_busy"
    elif isinstance(exc, SQLAlchemyError):
        code = "database"
    elif isinstance(exc, OSError):
        code = "os_error"
    elif "GitCommandError" in kinds:
        code = "git"
    else:
        code = "too_deep"
    return code, HINTS[code]


def _one_line(exc: BaseException) -> tuple[str, int] | None:
    """A failure as one line and an exit code; None for what is a bug of ours (it keeps its traceback)."""
    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    from release_pipeline.errors import PluginFailed, UserError

    if isinstance(exc, UserError):
        return str(exc), 2
    if isinstance(exc, PluginFailed):
        return str(exc), PluginFailed.EXIT_CODE
    # Typer's own copy of click, or click itself: known by name, the same in both
    kinds = {cls.__name__ for cls in type(exc).__mro__}
    ctx = getattr(exc, "ctx", None)
    if "NoArgsIsHelpError" in kinds:  # the help is on stdout already
        return f"a command is needed: see `{ctx.command_path if ctx else 'release'} --help`", 2
    if "UsageError" in kinds:
        where = f" (see `{ctx.command_path} --help`)" if ctx else ""
        return " ".join(exc.format_message().split()) + where, 2  # type: ignore[attr-defined]
    if "ClickException" in kinds:
        return " ".join(exc.format_message().split()), exc.exit_code  # type: ignore[attr-defined]
    if "Abort" in kinds:
        return "aborted", 1
    if isinstance(exc, OperationalError) and "locked" in str(exc).lower():
        return "the database is busy (another process holds its lock): retry", 2
    if isinstance(exc, SQLAlchemyError):
        orig = getattr(exc, "orig", None) or exc
        return f"the database failed: {' '.join(str(orig).split())[:300]}", 2
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}", 2
    if isinstance(exc, RecursionError):
        return "the input is nested too deeply", 2
    if "GitCommandError" in kinds:  # git itself failed (a full disk, a damaged repository, a lock left behind)
        return f"git failed: {_git_failure(exc)}", 2
    return None


def _git_failure(exc: BaseException) -> str:
    """What a failed git command said, in one line: its last line of stderr, and the command."""
    stderr = " ".join(str(getattr(exc, "stderr", "") or "").split()).removeprefix("stderr: ").strip("'\" ")
    command = getattr(exc, "command", None)
    verb = " ".join(str(c) for c in command[:2]) if isinstance(command, list | tuple) else "git"
    return f"{stderr[-300:] or 'no message'} (from `{verb}`)"
