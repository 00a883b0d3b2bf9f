"""Who is executing a run: a lease held by one process, so two processes never execute the same trials.

A lease names its holder as `host:pid:start`, the process's start time guarding against a reused
pid. It is alive while its holder is (checked directly on the same host) and, from other hosts,
while its heartbeat is fresh. A dead holder's lease is taken over, so a killed run resumes.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from functools import lru_cache

STALE_AFTER = timedelta(seconds=120)  # a holder on another host that stays silent this long is gone
HEARTBEAT_SECONDS = 5.0


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), or "" where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


@lru_cache(maxsize=1)
def me() -> str:
    """This process, as a lease holder."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def describe(owner: str) -> str:
    host, _, rest = owner.partition(":")
    return f"process {rest.partition(':')[0]} on {host}"


def alive(owner: str, heartbeat_at: datetime | None, now: datetime) -> bool:
    """Whether the holder `owner` may still be executing its run."""
    host, _, rest = owner.partition(":")
    pid_text, _, start = rest.partition(":")
    if host == socket.gethostname() and pid_text.isdigit():
        pid = int(pid_text)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # someone else's process, alive
        return _start_time(pid) == start
    return heartbeat_at is not None and now - heartbeat_at < STALE_AFTER
