"""The `release` Typer app. Importing this module stays cheap: heavy imports live inside commands, and a command
line that names a built-in command builds that command only (Typer reads every command's signature as it builds)."""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperGroup

from release_pipeline.cli.common import QUIET
from release_pipeline.errors import AlreadyJudged, ConfigError, ConflictError, NotFoundError, PluginFailed, UserError

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


@dataclass(frozen=True)
class Failure:
    """One kind of failure `release` reports in one line: which exceptions it covers, its stable code (a key of
    HINTS), its exit code and how its message reads."""

    kind: type[BaseException] | str  # a class, or a class's name where the class is not imported here (see _names)
    code: str
    message: str | Callable[[Any], str]  # the line itself, or how to write it from the exception
    exit_code: int | None = 2  # None: the exception's own (click's)
    when: Callable[[Any], bool] | None = None  # a further condition on the exception

    def covers(self, exc: BaseException) -> bool:
        if isinstance(self.kind, str):
            matched = self.kind in _names(exc)
        else:
            matched = isinstance(exc, self.kind)
        return matched and (self.when is None or self.when(exc))

    def line(self, exc: BaseException) -> str:
        return self.message if isinstance(self.message, str) else self.message(exc)

    def exit_code_of(self, exc: BaseException) -> int:
        return self.exit_code if self.exit_code is not None else exc.exit_code  # type: ignore[attr-defined]


def _names(exc: BaseException) -> set[str]:
    """The names of the exception's classes, bare and with their module: click's are known by bare name (Typer's own
    copy of click, or click itself, the same in both), as is git's; SQLAlchemy's by full name (sqlite3 has an
    `OperationalError` too). None of the three is imported to report an error."""
    classes = type(exc).__mro__
    return {cls.__name__ for cls in classes} | {f"{cls.__module__}.{cls.__qualname__}" for cls in classes}


def _help_path(exc: Any) -> str:
    ctx = getattr(exc, "ctx", None)
    return ctx.command_path if ctx else "release"


def _no_command(exc: Any) -> str:
    return f"a command is needed: see `{_help_path(exc)} --help`"  # the help is on stdout already


def _usage(exc: Any) -> str:
    where = f" (see `{exc.ctx.command_path} --help`)" if getattr(exc, "ctx", None) else ""
    return _click_message(exc) + where


def _click_message(exc: Any) -> str:
    return " ".join(exc.format_message().split())


def _locked(exc: BaseException) -> bool:
    return "locked" in str(exc).lower()


def _database_failed(exc: Any) -> str:
    orig = getattr(exc, "orig", None) or exc
    return f"the database failed: {' '.join(str(orig).split())[:300]}"


def _has_strerror(exc: OSError) -> bool:
    return bool(exc.strerror)


def _os_error(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror}{where}"


def _git_failed(exc: BaseException) -> str:
    return f"git failed: {_git_failure(exc)}"


# every failure a user can meet, first match wins; anything else is a bug of ours and keeps its traceback
FAILURES = (
    Failure(AlreadyJudged, "already_judged", str),
    Failure(ConfigError, "config", str),
    Failure(NotFoundError, "not_found", str),
    Failure(ConflictError, "conflict", str),
    Failure(UserError, "bad_input", str),
    Failure(PluginFailed, "plugin_failed", str, PluginFailed.EXIT_CODE),
    Failure("NoArgsIsHelpError", "usage", _no_command),
    Failure("UsageError", "usage", _usage),
    Failure("ClickException", "usage", _click_message, exit_code=None),
    Failure("Abort", "aborted", "aborted", 1),
    Failure(
        "sqlalchemy.exc.OperationalError",
        "database_busy",
        "the database is busy (another process holds its lock): retry",
        when=_locked,
    ),
    Failure("sqlalchemy.exc.SQLAlchemyError", "database", _database_failed),
    Failure(OSError, "os_error", _os_error, when=_has_strerror),
    Failure(RecursionError, "too_deep", "the input is nested too deeply"),
    Failure("GitCommandError", "git", _git_failed),  # git itself failed (a full disk, a damaged repository, a lock)
)


def failure_of(exc: BaseException) -> Failure | None:
    """The row of FAILURES that covers `exc`; None for what is a bug of ours."""
    return next((failure for failure in FAILURES if failure.covers(exc)), None)


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
    failure = failure_of(exc)
    code = failure.code if failure else "bad_input"  # say_error reports only what FAILURES covers
    return code, HINTS[code]


def _one_line(exc: BaseException) -> tuple[str, int] | None:
    """A failure as one line and an exit code; None for what is a bug of ours (it keeps its traceback)."""
    failure = failure_of(exc)
    return None if failure is None else (failure.line(exc), failure.exit_code_of(exc))


def _git_failure(exc: BaseException) -> str:
    """What a failed git command said, in one line: its last line of stderr, and the command."""
    stderr = " ".join(str(getattr(exc, "stderr", "") or "").split()).removeprefix("stderr: ").strip("'\" ")
    command = getattr(exc, "command", None)
    verb = " ".join(str(c) for c in command[:2]) if isinstance(command, list | tuple) else "git"
    return f"{stderr[-300:] or 'no message'} (from `{verb}`)"
