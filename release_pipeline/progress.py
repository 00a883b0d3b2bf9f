"""Progress reporting that services can use without knowing about the terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

Advance = Callable[[int], None]
ProgressFactory = Callable[[str, int], AbstractContextManager[Advance]]


@contextmanager
def silent(description: str, total: int) -> Iterator[Advance]:
    """A progress bar that shows nothing (library use, tests, --json)."""
    yield lambda n: None


@contextmanager
def rich_bar(description: str, total: int) -> Iterator[Advance]:
    """A rich progress bar on stderr, refreshed from rich's own thread."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
