"""Named places where a test may kill this process, or fail it, to prove that either can be recovered from.

`RELEASE_PIPELINE_CRASH_AT=<name>` makes the process SIGKILL itself when it reaches `crash_point(name)`:
no cleanup, no flush, exactly what a power cut or an OOM kill leaves behind. `RELEASE_PIPELINE_FAIL_AT=<name>`
raises `InjectedFault` there instead, as a failing disk, database or git would: what is under way must be
undone. Unset, a crash point costs two dictionary lookups.
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "RELEASE_PIPELINE_CRASH_AT"
FAIL_ENV = "RELEASE_PIPELINE_FAIL_AT"


class InjectedFault(RuntimeError):
    """The failure a test asked for at a crash point."""


def crash_point(name: str) -> None:
    """Die here, or fail here, when a test asks for it."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get(FAIL_ENV) == name:
        raise InjectedFault(f"injected failure at {name}")
