"""The agent manifest (`agent.yaml`): how an artifact is run and which of its files a candidate may edit."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from release_pipeline.config.release_yaml import load_checked
from release_pipeline.errors import ConfigError
from release_pipeline.models import Manifest

MANIFEST_FILE = "agent.yaml"

MANIFEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "adapter", "editable"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "adapter": {"type": "string", "minLength": 1},
        "entry": {"type": "string"},
        "command": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "editable": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "params": {"type": "object"},
        "timeout_s": {"type": "number", "exclusiveMinimum": 0},
        "description": {"type": "string"},
        "model": {"type": "string", "pattern": "^[^/]+/.+"},
        "system": {"type": "string"},
        "prompt": {"type": "string"},
        "demos": {"type": "string"},
        "tools": {"type": "string"},
        "resources": {  # what one trial needs of the machine it runs on (the `ray` executor schedules by it)
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "cpus": {"type": "number", "minimum": 0},
                "gpus": {"type": "number", "minimum": 0},
                "memory_mb": {"type": "integer", "minimum": 1},
                "custom": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
            },
        },
        "sandbox": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "cpu_s": {"type": "integer", "minimum": 1},
                "memory_mb": {"type": "integer", "minimum": 16},
                "file_size_mb": {"type": "integer", "minimum": 1},
                "processes": {"type": "integer", "minimum": 1},
                "disk_mb": {"type": "integer", "minimum": 1},
                "network": {"type": "boolean"},
                "env": {"type": "array", "items": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}},
            },
        },
    },
}


def load_manifest(folder: Path) -> Manifest:
    """Read and validate the manifest of the artifact in `folder`."""
    path = folder / MANIFEST_FILE
    data = load_checked(path, "agent manifest", MANIFEST_SCHEMA)
    for pattern in data["editable"]:
        if pattern.startswith("/") or ".." in Path(pattern).parts:
            raise ConfigError(f"{path}: editable pattern {pattern!r} must stay inside the agent folder")
    return Manifest(
        name=data["name"],
        adapter=data["adapter"],
        editable=tuple(data["editable"]),
        entry=data.get("entry", ""),
        command=tuple(data.get("command", ())),
        params=dict(data.get("params", {})),
        timeout_s=data.get("timeout_s"),
        model=data.get("model", ""),
        files={k: data[k] for k in ("system", "prompt", "demos", "tools") if k in data},
        sandbox=dict(data.get("sandbox", {})),
        resources=dict(data.get("resources", {})),
    )


def is_editable(manifest: Manifest, relpath: str) -> bool:
    """Whether a path relative to the agent folder matches one of the manifest's editable patterns.

    The manifest itself is never editable by a candidate: it decides what is.
    """
    if relpath == MANIFEST_FILE:
        return False
    return any(fnmatch(relpath, pattern) for pattern in manifest.editable)
