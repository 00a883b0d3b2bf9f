"""The gate policy: a versioned YAML file in the workspace that states how candidates are judged."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from release_pipeline.config.release_yaml import load_checked
from release_pipeline.notices import say

POLICY_VERSION = 1
EXTRA_PER_TASK = 60  # the default pooled extra-trial budget, per task of the gate split
DEPRECATED = {
    "max_repeats": "the gate now caps each task by what a clean task like it needs (README, 'The gate')",
}

POLICY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["version"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": POLICY_VERSION},
        "repeats": {"type": "integer", "minimum": 1},
        "alpha": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.5},
        "regression_budget": {"type": "integer", "minimum": 0},
        "min_fixes": {"type": "integer", "minimum": 0},
        "require_more_fixes_than_regressions": {"type": "boolean"},
        "protected_tasks": {"type": "array", "items": {"type": "string"}},
        "protect_passing": {"type": "boolean"},
        "require_intent_alignment": {"type": "boolean"},
        "error_retries": {"type": "integer", "minimum": 0},
        "max_repeats": {"type": "integer", "minimum": 1},  # deprecated: read, ignored, said so
        "extra_trial_budget": {"type": ["integer", "null"], "minimum": 0},
        "min_effect": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "max_false_promote": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.5},
        "max_false_reject": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    },
}


@dataclass(frozen=True)
class GatePolicy:
    """How the gate decides. Defaults are explained in the README (The gate); `gate/stats.py` explains the tests.

    The promise is per candidate: one with a task whose pass rate dropped by `min_effect` or more is promoted
    with probability at most `max_false_promote`, however many tasks the split has; one without a regression
    is rejected for one at most `max_false_reject / 2` of the time (the rest of that share is what the budget
    may leave undecided). `alpha` is the per-task level at which a fix is confirmed. The gate starts every task
    with `repeats` trials a side and adds trials adaptively from one pooled budget of `extra_trial_budget`
    extra trials (default: `EXTRA_PER_TASK` per task of the split), each task capped by its own need.
    """

    version: int = POLICY_VERSION
    repeats: int = 3
    alpha: float = 0.05
    min_effect: float = 0.5
    max_false_promote: float = 0.01
    max_false_reject: float = 0.10
    regression_budget: int = 0
    min_fixes: int = 1
    require_more_fixes_than_regressions: bool = True
    protected_tasks: tuple[str, ...] = ()
    protect_passing: bool = False  # protect the gate tasks the canonical version passes on every trial
    require_intent_alignment: bool = False
    error_retries: int = 2
    extra_trial_budget: int | None = None

    def extra_budget(self, tasks: int) -> int:
        """The extra trials a gate over `tasks` tasks may spend beyond the first `repeats` a side."""
        return self.extra_trial_budget if self.extra_trial_budget is not None else EXTRA_PER_TASK * tasks

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["protected_tasks"] = list(self.protected_tasks)
        return data

    @property
    def digest(self) -> str:
        """A hash of the policy's content, recorded with every gate report."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def load_policy(path: Path) -> GatePolicy:
    """Read the policy file; a missing file is an error (the workspace must state its policy)."""
    data = load_checked(path, "gate policy", POLICY_SCHEMA)
    for key, why in DEPRECATED.items():
        if key in data:
            del data[key]
            say(f"{path.name}: `{key}` is no longer used and is ignored: {why}; remove it")
    data["protected_tasks"] = tuple(data.get("protected_tasks", ()))
    return GatePolicy(**data)


def default_policy_text() -> str:
    """The policy file `release init` writes: every default spelled out, with why."""
    return f"""\
# Gate policy: how release candidates are judged. Versioned with the workspace;
# a candidate may never change it, and the gate reads it from the canonical commit.
version: {POLICY_VERSION}
min_effect: 0.5           # the smallest drop in a task's pass rate that must be caught (0.9 -> 0.4)
max_false_promote: 0.01   # the highest chance of promoting a candidate with such a drop
max_false_reject: 0.10    # half of it: the highest chance of a false "regression" on a clean candidate
alpha: 0.05               # per task, the chance that a confirmed fix is not one
repeats: 3                # trials per task and version to start with
extra_trial_budget: null  # one pooled budget of trials beyond the first repeats (null: {EXTRA_PER_TASK} a task)
regression_budget: 0      # tasks that may regress, or stay unsettled, outside the protected ones
min_fixes: 1              # confirmed fixes required
require_more_fixes_than_regressions: true
protected_tasks: []       # any confirmed regression here rejects the candidate
protect_passing: true     # also protect the gate tasks the canonical version passed on every trial
require_intent_alignment: false   # require every fix to fall in the spec's targets
error_retries: 2          # new attempts (a new seed each) of an `error` trial
"""
