"""The verifier of every task of a suite, built once each from the suite's settings."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from release_pipeline.errors import ConfigError, UserError
from release_pipeline.models import Task, Verdict
from release_pipeline.plugins.registry import Registry


class Verifiers:
    """The verifier of every task, each built once from the suite's settings."""

    def __init__(self, registry: Registry, root: Path):
        self.registry, self.root = registry, root
        self._built: dict[str, Callable[[Task, Any], Verdict]] = {}

    def __call__(self, task: Task) -> Callable[[Task, Any], Verdict]:
        key = repr(sorted(task.verifier.items()))
        fn = self._built.get(key)
        if fn is None:
            options = {k: v for k, v in task.verifier.items() if k != "type"}
            factory = self.registry.get("verifier", task.verifier["type"])
            try:
                fn = factory(options, self.root)
            except UserError:
                raise
            except Exception as exc:
                raise ConfigError(
                    f"task {task.id!r}: verifier {task.verifier['type']!r} cannot be built from its settings: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
            self._built[key] = fn
        return fn

    def check(self, tasks: Iterable[Task]) -> None:
        """Build every task's verifier before any trial runs: a malformed one is a config error, not N errors.

        A verifier may also offer `check_task(task)`, which raises ConfigError for a task it cannot judge.
        """
        for task in tasks:
            check_task = getattr(self(task), "check_task", None)
            if check_task is not None:
                check_task(task)
