"""Built-in suite loaders: a YAML file with suite settings and tasks, or a JSONL file of tasks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from release_pipeline.config.release_yaml import load_checked, read_text
from release_pipeline.errors import ConfigError
from release_pipeline.models import Suite
from release_pipeline.plugins.hookspecs import hookimpl
from release_pipeline.suites import make_task

DEFAULT_VERIFIER = {"type": "exact"}

SUITE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["tasks"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "rubric": {"type": "string"},
        "verifier": {"type": "object", "required": ["type"]},
        "secondary": {"type": "array", "items": {"type": "object", "required": ["type"]}},
        "tasks": {"type": "array", "minItems": 1},
    },
}


def load_yaml_suite(reference: str, root: Path) -> Suite:
    """`name`, `rubric`, a default `verifier`, `secondary` verifiers (reported, never deciding), and `tasks`."""
    path = Path(reference)
    data = load_checked(path, "suite", SUITE_SCHEMA, "a mapping with a `tasks` list")
    verifier = data.get("verifier", DEFAULT_VERIFIER)
    tasks = tuple(make_task(t, f"{path}: tasks[{i}]", verifier) for i, t in enumerate(data["tasks"]))
    return Suite(
        name=data.get("name", path.stem),
        tasks=tasks,
        rubric=data.get("rubric", ""),
        source=str(path),
        secondary=tuple(data.get("secondary", ())),
    )


def load_jsonl_suite(reference: str, root: Path) -> Suite:
    """One task per line; each line may name its own `verifier` (default: exact)."""
    path = Path(reference)
    tasks = []
    for lineno, line in enumerate(read_text(path, "suite").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{lineno}: invalid JSON: {exc.msg}") from None
        except RecursionError:
            raise ConfigError(f"{path}:{lineno}: nested too deeply") from None
        tasks.append(make_task(data, f"{path}:{lineno}", DEFAULT_VERIFIER))
    return Suite(name=path.stem, tasks=tuple(tasks), source=str(path))


@hookimpl
def release_register_suite_loaders(register):
    register("yaml", load_yaml_suite, extensions=(".yaml", ".yml"))
    register("jsonl", load_jsonl_suite, extensions=(".jsonl",))
