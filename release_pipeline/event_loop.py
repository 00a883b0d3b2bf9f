"""`run`: `asyncio.run` for the harness, with an end that cannot hang.

Ctrl-C (or SIGTERM, which the CLI turns into it) cancels the running work, as under `asyncio.run`. What differs is
the end: `asyncio.run` then waits, without limit, for every task left over to finish its cancellation, and on
Python 3.11 a task cancelled while it starts a subprocess can wait forever (CPython issue 125502: the transport's
pipes never connect, so its exit is never reported). Seen here as a `release run` still alive, idle, long after
SIGTERM. Here the tasks left over get `TEARDOWN_S` to finish; any still waiting then are abandoned (their
processes were killed with their sandboxes; what was recorded stays recorded), and the command ends.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
TEARDOWN_S = 10.0  # how long tasks left over when the work ends may take to finish their cancellation


def run(main: Coroutine[Any, Any, T], teardown_s: float = TEARDOWN_S) -> T:
    """Run `main` on a fresh event loop to its end; Ctrl-C cancels it and raises KeyboardInterrupt once it ended
    (a second Ctrl-C raises at once). Tasks it leaves behind are cancelled and given `teardown_s` to end."""
    loop = asyncio.new_event_loop()
    task = loop.create_task(main)
    interrupts = 0

    def interrupt(signum: int, frame: Any) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts > 1:
            raise KeyboardInterrupt
        loop.call_soon_threadsafe(task.cancel)  # in the loop, between steps: never inside one

    handles_sigint = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, interrupt) if handles_sigint else None
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(task)
    except asyncio.CancelledError:
        if interrupts:
            raise KeyboardInterrupt from None
        raise
    finally:
        if handles_sigint:
            signal.signal(signal.SIGINT, previous)
        try:
            _end_leftovers(loop, teardown_s)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())  # threads end their current call
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _end_leftovers(loop: asyncio.AbstractEventLoop, teardown_s: float) -> None:
    """Cancel the tasks still pending and wait up to `teardown_s` for them; abandon, quietly, those that hang."""
    pending = asyncio.all_tasks(loop)
    if not pending:
        return
    for task in pending:
        task.cancel()
    done, stuck = loop.run_until_complete(asyncio.wait(pending, timeout=teardown_s))
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {"message": "unhandled exception in a task left when the work ended", "exception": task.exception(),
                 "task": task}
            )  # fmt: skip
    if stuck:  # what asyncio would say about them next ("destroyed but pending", "loop is closed") is expected
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
