"""`event_loop.run`: asyncio.run whose end cannot hang on a task that never finishes its cancellation."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from release_pipeline import event_loop

# A command's work, interrupted (as SIGTERM does through the CLI), leaving a task behind that swallows its
# cancellation and waits on what never comes: what a task cancelled while Python 3.11 starts a subprocess does.
SCRIPT = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from release_pipeline import event_loop

    async def stuck():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.get_running_loop().create_future()  # never done

    async def work():
        asyncio.ensure_future(stuck())
        await asyncio.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)
        try:
            await asyncio.sleep(3600)
        finally:
            print("work cancelled", flush=True)

    try:
        ({runner})(work())
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    """
)


def interrupted(runner: str, timeout: float) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(runner=runner)], capture_output=True, text=True, timeout=timeout
    )
    return done, time.monotonic() - start


def test_the_value_of_the_work_is_returned():
    async def work() -> int:
        return 42

    assert event_loop.run(work()) == 42


def test_an_interrupt_ends_the_work_and_a_task_that_never_ends_is_abandoned_quietly():
    with pytest.raises(subprocess.TimeoutExpired):  # the control: asyncio.run waits for it forever
        interrupted("asyncio.run", timeout=8)
    done, took = interrupted("lambda w: event_loop.run(w, teardown_s=1)", timeout=60)
    assert done.returncode == 0 and done.stdout.split("\n")[:2] == ["work cancelled", "interrupted"], done
    assert done.stderr == "", done.stderr  # no "Task was destroyed but it is pending!"
    assert took < 30
