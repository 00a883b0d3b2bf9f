"""Errors a user can act on.

Every error the CLI turns into a one-line message and exit code 2 derives from
`UserError`; anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input or a state the user must change (exit code 2, one line, no traceback)."""


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
