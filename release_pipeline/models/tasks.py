"""Suites and their tasks, and the verdict a verifier gives on one answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SPLITS = ("dev", "gate", "holdout")


@dataclass(frozen=True, slots=True)
class Task:
    """One task of a suite: an input for the agent and how to judge its answer."""

    id: str
    input: Any
    split: str
    expected: Any = None
    verifier: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Suite:
    """A named set of tasks with a rubric the critic may read."""

    name: str
    tasks: tuple[Task, ...]
    rubric: str = ""
    source: str = ""
    secondary: tuple[dict[str, Any], ...] = ()  # verifiers reported beside the primary one, never deciding

    def split(self, name: str) -> list[Task]:
        """The tasks of one split, in suite order."""
        return [t for t in self.tasks if t.split == name]

    def fingerprint(self, split: str) -> str:
        """A digest of one split's tasks (inputs, expected values, verifiers): runs are reused only while it holds."""
        import hashlib
        import json

        blob = json.dumps(
            [[t.id, t.input, t.expected, t.verifier] for t in self.split(split)], sort_keys=True, default=str
        )
        return f"{self.name}@{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


@dataclass(slots=True)
class Verdict:
    """A verifier's judgement. `reason` is a short machine-readable code.

    Codes used by the built-in verifiers: `ok`, `mismatch`, `empty`,
    `unparseable`, `schema_violation`, `verifier_error`.
    """

    passed: bool
    score: float
    feedback: str = ""
    reason: str = "ok"
