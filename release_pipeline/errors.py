"""Errors a user can act on.

Every error the CLI turns into a one-line message and exit code 2 derives from
`UserError`; anything else is a bug and keeps its traceback.
"""


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


class RequestRejected(InfrastructureError):
    """A provider refused the request itself (a 400: malformed, too long, not allowed): the agent's fault.

    Code that treats any provider failure alike can catch InfrastructureError; the run stage makes such a
    trial a `fail` (reason `request_rejected`), never an `error` that a retry or an exclusion would hide.
    """
