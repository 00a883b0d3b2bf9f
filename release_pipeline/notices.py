"""Lines for the person running `release`: on stderr, so stdout stays clean for --json and pipes, and none under
`release --quiet` (or RELEASE_QUIET=1). Any layer may speak through `say`: stages and executors as well as the CLI."""

from __future__ import annotations

import os
import sys
from contextvars import ContextVar

QUIET: ContextVar[bool] = ContextVar("quiet", default=False)  # `release --quiet`, for this invocation


def quiet() -> bool:
    """`release --quiet` (or RELEASE_QUIET=1): results and errors only."""
    return QUIET.get() or os.environ.get("RELEASE_QUIET", "") not in ("", "0")


def say(message: str) -> None:
    """One human-facing line on stderr, unless quiet."""
    if not quiet():
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
