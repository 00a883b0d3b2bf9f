"""Named places where a test may kill this process, to prove that a crash there can be recovered from.

`RELEASE_PIPELINE_CRASH_AT=<name>` makes the process SIGKILL itself when it reaches `crash_point(name)`:
no cleanup, no flush, exactly what a power cut or an OOM kill leaves behind. Unset, a crash point costs
one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "RELEASE_PIPELINE_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
