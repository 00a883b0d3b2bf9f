"""Turning a workspace's suite reference into a validated `Suite`, and tasks into dataclasses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from release_pipeline.config.release_yaml import check
from release_pipeline.errors import ConfigError
from release_pipeline.models import SPLITS, Suite, Task
from release_pipeline.plugins.registry import Registry

TASK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "input", "split"],
    "properties": {
        "id": {"type": ["string", "integer"]},
        "split": {"enum": list(SPLITS)},
        "verifier": {"type": "object", "required": ["type"], "properties": {"type": {"type": "string"}}},
        "tags": {"type": "array", "items": {"type": "string"}},
        "metadata": {"type": "object"},
    },
}


def make_task(data: Any, source: str, default_verifier: dict[str, Any]) -> Task:
    """Validate one task mapping and build a `Task` (the suite's verifier unless the task names its own)."""
    check(data, TASK_SCHEMA, source)
    return Task(
        id=str(data["id"]),
        input=data["input"],
        split=data["split"],
        expected=data.get("expected"),
        verifier=data.get("verifier") or default_verifier,
        tags=tuple(data.get("tags", ())),
        metadata=dict(data.get("metadata", {})),
    )


def resolve_suite(reference: str, root: Path, registry: Registry) -> Suite:
    """Load the suite a workspace names: `loader:argument`, or a file path dispatched by its extension."""
    loaders = registry.kinds["suite_loader"]
    kind, sep, argument = reference.partition(":")
    if sep and kind in loaders:
        suite = loaders[kind].obj(argument, root)
    else:
        path = root / reference
        by_ext = {ext: c for c in loaders.values() for ext in c.options.get("extensions", ())}
        component = by_ext.get(path.suffix.lower())
        if component is None:
            known = ", ".join(sorted(by_ext)) or "none"
            raise ConfigError(
                f"suite {reference!r}: no suite loader for {path.suffix or 'files without extension'} (known: {known})"
            )
        if not path.is_file():
            raise ConfigError(f"suite file not found: {path}")
        suite = component.obj(str(path), root)
    _validate(suite, registry)
    return suite


def _validate(suite: Suite, registry: Registry) -> None:
    seen: set[str] = set()
    verifiers = registry.kinds["verifier"]
    for task in suite.tasks:
        if task.id in seen:
            raise ConfigError(f"suite {suite.name!r}: duplicate task id {task.id!r}")
        seen.add(task.id)
        kind = task.verifier.get("type")
        if kind not in verifiers:
            known = ", ".join(sorted(verifiers))
            raise ConfigError(f"suite {suite.name!r}: task {task.id!r} uses unknown verifier {kind!r} (known: {known})")
    if not suite.tasks:
        raise ConfigError(f"suite {suite.name!r} has no tasks")
