"""Secondary verifiers: what a suite wants seen beside its verdict (content apart from format), never deciding.

A suite lists them under `secondary:` (verifier settings, with an optional `name`). They are applied to the
outputs already stored, when a report is made, so they cost no trial and apply to old runs too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from release_pipeline.models import Suite, Task, TrialRecord

if TYPE_CHECKING:
    from release_pipeline.workspace import Workspace


def secondary_name(settings: dict[str, Any]) -> str:
    return str(settings.get("name") or settings["type"])


def secondary_scores(ws: Workspace, suite: Suite, trials: Iterable[TrialRecord]) -> dict[str, dict[str, int]]:
    """Per secondary verifier, how many of the trials that were judged (not `error`) it passes."""
    if not suite.secondary:
        return {}
    tasks: dict[str, Task] = {t.id: t for t in suite.tasks}
    judged = [t for t in trials if t.status != "error" and t.task_id in tasks]
    scores = {}
    for name, verify in secondary_verifiers(ws, suite).items():
        passes = 0
        for trial in judged:
            try:
                passes += bool(verify(tasks[trial.task_id], trial.output).passed)
            except Exception:  # a secondary verifier never decides, and never stops a report
                continue
        scores[name] = {"passes": passes, "trials": len(judged)}
    return scores


def secondary_verifiers(ws: Workspace, suite: Suite) -> dict[str, Callable[[Task, Any], Any]]:
    """Each secondary verifier of a suite by name, built."""
    built = {}
    for settings in suite.secondary:
        options = {k: v for k, v in settings.items() if k not in ("type", "name")}
        built[secondary_name(settings)] = ws.plugins.registry.get("verifier", settings["type"])(options, ws.root)
    return built


def secondary_line(scores: dict[str, Any]) -> str:
    """One line for people: each secondary verifier's passes (per side, in a gate)."""
    parts = []
    for name, value in scores.items():
        if "passes" in value:
            parts.append(f"{name} {value['passes']}/{value['trials']}")
        else:
            sides = ", ".join(f"{side} {v['passes']}/{v['trials']}" for side, v in value.items())
            parts.append(f"{name}: {sides}")
    return "secondary verifiers (reported, never deciding): " + "; ".join(parts)
