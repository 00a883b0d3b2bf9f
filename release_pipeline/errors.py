"""Errors a user can act on.

Every error the CLI turns into a one-line message and exit code 2 derives from
`UserError`; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing`'s: a sandboxed worker imports this module before it is ready
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from typing import Any


class UserError(Exception):
    """Bad input or a state the user must change (exit code 2, one line, no traceback)."""


class AlreadyJudged(UserError):
    """A candidate with the same content as one already recorded against the same base (`twin`)."""

    def __init__(self, message: str, twin: int = 0):
        super().__init__(message)
        self.twin = twin


class ConfigError(UserError):
    """A malformed or inconsistent config, manifest, suite or policy file."""


class NotFoundError(UserError):
    """A named thing (version, ref, plugin, verifier, run) does not exist."""


class ConflictError(UserError):
    """The world moved under us: the canonical head changed, a tag exists, the tree is dirty."""


class InfrastructureError(Exception):
    """Raised by an agent or adapter when the harness or a provider failed, not the agent.

    A trial that ends with this exception is recorded as `error`: it is never
    counted as a failure, a fix or a regression, and the gate retries it.
    """


class PluginFailed(Exception):
    """A plugin raised inside a hook: neither a verdict nor bad input. `release` exits with `EXIT_CODE` (4)."""

    EXIT_CODE = 4

    def __init__(self, hook: str, exc: BaseException):
        where = _raising_module(exc)
        super().__init__(
            f"plugin {where or '(unknown)'} failed in {hook}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        )
        self.hook, self.plugin = hook, where


def _raising_module(exc: BaseException) -> str:
    """The module of the first frame outside release-pipeline and pluggy the exception passed through: the hook
    implementation that raised (or called what raised)."""
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_globals.get("__name__", "")
        if name.split(".")[0] not in ("release_pipeline", "pluggy"):  # the hook implementation's own frame
            return name.replace("release_pipeline_workspace_plugins.", "workspace.")  # as `release plugins` says
        tb = tb.tb_next
    return ""


class AgentProtocolError(Exception):
    """The agent answered, but not in the shape its adapter requires (a `fail` trial)."""


class SandboxViolation(Exception):
    """The agent's code ran into a sandbox limit: its failure, with the limit as the reason."""


class AgentCrashed(Exception):
    """The agent's process ended before it answered (`sys.exit`, `os._exit`, a signal): its failure."""


class AgentRaised(Exception):
    """An exception the agent raised in its own process, reported by type name, message and place."""

    def __init__(self, message: str, where: str = ""):
        super().__init__(message)
        self.where = where


class AttemptLost(Exception):
    """A trial's attempt was lost to what ran beside it (a sandboxed worker it shared died, met a limit or got stuck):
    its outcome says nothing about the agent. The run stage calls `rerun()` (the trial again, alone in a worker of its
    own), its clock forgiven the time the lost attempt took."""

    def __init__(self, why: str, rerun: Callable[[], Awaitable[Any]]):
        super().__init__(why)
        self.rerun = rerun


class RequestRejected(InfrastructureError):
    """A provider refused the request itself (a 400: malformed, too long, not allowed): the agent's fault.

    Code that treats any provider failure alike can catch InfrastructureError; the run stage makes such a
    trial a `fail` (reason `request_rejected`), never an `error` that a retry or an exclusion would hide.
    """
