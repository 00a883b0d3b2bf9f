"""A child process's three pipes, non-blocking, watched by whichever event loop attaches them (a worker's I/O).

They belong to no event loop: `attach()` has a loop watch them, and the next run's loop may take them over. What is
sent waits in an outbox and leaves in one write per turn of the loop, never blocking it; stdout is read when it has
something (`on_output`), and the last chunks of stderr are kept for telling why the process ended.
"""

from __future__ import annotations

import asyncio
import collections
import os
import subprocess
from collections.abc import Callable

CHUNK = 1 << 16  # bytes read at a time


class Pipes:
    """The stdin, stdout and stderr of `proc`; `on_output` is called when stdout is readable (it calls `read()`)."""

    def __init__(self, proc: subprocess.Popen, on_output: Callable[[], None]):
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self.inp, self.out, self.err = proc.stdin.fileno(), proc.stdout.fileno(), proc.stderr.fileno()
        for fd in (self.inp, self.out, self.err):
            os.set_blocking(fd, False)
        self.on_output = on_output
        self.loop: asyncio.AbstractEventLoop | None = None
        self.outbox = bytearray()
        self.flush_due = self.writing = False
        self.stderr: collections.deque[bytes] = collections.deque(maxlen=64)
        self.stderr_open = True

    # ----- the event loop that watches them ------------------------------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Have `loop` watch the pipes (a run's loop; the next run's is another)."""
        if self.loop is loop:
            return
        self.detach()
        self.loop = loop
        loop.add_reader(self.out, self.on_output)
        if self.stderr_open:
            loop.add_reader(self.err, self._stderr_readable)
        if self.outbox:
            self._flush()

    def detach(self) -> None:
        loop, self.loop = self.loop, None
        if loop is None or loop.is_closed():
            return
        loop.remove_reader(self.out)
        loop.remove_reader(self.err)
        if self.writing:
            loop.remove_writer(self.inp)
        self.writing = self.flush_due = False

    # ----- stdout and stdin ----------------------------------------------------------------------------------

    def read(self) -> bytes | None:
        """What stdout has now: None when nothing yet, empty at its end (or when it cannot be read)."""
        try:
            return os.read(self.out, CHUNK)
        except BlockingIOError:
            return None
        except OSError:
            return b""

    def send(self, data: bytes) -> None:
        """Queue `data` (attached only); all that is queued in one turn of the loop leaves in one write."""
        if self.loop is None:
            return
        self.outbox += data
        if not self.flush_due and not self.writing:
            self.flush_due = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_due = False
        if self.loop is None:
            return
        try:
            while self.outbox:
                del self.outbox[: os.write(self.inp, self.outbox)]
        except BlockingIOError:  # the pipe is full: go on when it drains (never block the loop on a worker)
            if not self.writing:
                self.loop.add_writer(self.inp, self._flush)
                self.writing = True
            return
        except OSError:  # the process is gone: its stdout's end says so
            self.outbox.clear()
        if self.writing:
            self.loop.remove_writer(self.inp)
            self.writing = False

    # ----- stderr --------------------------------------------------------------------------------------------

    def _stderr_readable(self) -> None:
        try:
            chunk = os.read(self.err, CHUNK)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            self.stderr.append(chunk)
        elif self.loop is not None:
            self.loop.remove_reader(self.err)
            self.stderr_open = False

    def drain_stderr(self) -> None:
        """Keep what stderr still holds (the process has ended)."""
        try:
            while self.stderr_open and (chunk := os.read(self.err, CHUNK)):
                self.stderr.append(chunk)
        except OSError:
            pass

    def stderr_tail(self, limit: int) -> str:
        """The last `limit` bytes the process wrote on stderr, as text."""
        return b"".join(self.stderr)[-limit:].decode("utf-8", "replace").strip()
