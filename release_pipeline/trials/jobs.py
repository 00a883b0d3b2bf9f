"""What a run is made of: jobs (task, repeat, attempt), their seeds, and the arithmetic over recorded trials."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from release_pipeline.models import Task, TaskOutcome, TrialRecord


def trial_seed(base: int, task_id: str, repeat: int, attempt: int = 0) -> int:
    """The seed of one (task, repeat, attempt): identical for every version, so versions are compared like for like.

    A retry of an `error` trial is a new attempt with a seed of its own, so it is a new sample, not a replay.
    """
    key = f"{base}:{task_id}:{repeat}" + (f":{attempt}" if attempt else "")
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big")


@dataclass(frozen=True)
class Job:
    task: Task
    repeat: int
    attempt: int = 0


def effective(trials: Iterable[TrialRecord]) -> dict[tuple[str, int], TrialRecord]:
    """The last attempt of every (task, repeat): what the run's verdict for that trial is."""
    latest: dict[tuple[str, int], TrialRecord] = {}
    for t in trials:
        key = (t.task_id, t.repeat)
        if key not in latest or t.attempt > latest[key].attempt:
            latest[key] = t
    return latest


def missing_jobs(
    tasks: Iterable[Task],
    repeats: Iterable[int],
    done: dict[tuple[str, int], TrialRecord],
    max_attempt: int | None = None,
) -> list[Job]:
    """Jobs for every (task, repeat) with no trial yet, and a new attempt for those that ended in `error`.

    With `max_attempt`, an `error` trial is retried only while its attempt number is below it.
    """
    jobs = []
    repeats = list(repeats)
    for task in tasks:
        for r in repeats:
            prior = done.get((task.id, r))
            if prior is None:
                jobs.append(Job(task, r))
            elif prior.status == "error" and (max_attempt is None or prior.attempt < max_attempt):
                jobs.append(Job(task, r, prior.attempt + 1))
    return jobs


def task_outcomes(
    trials: Iterable[TrialRecord], tasks: Iterable[Task], repeats: int | dict[str, int] | None = None
) -> dict[str, TaskOutcome]:
    """Pass counts per task over the effective trials; `error` trials are counted apart, never as fails.

    With `repeats` (one number, or one per task id), only repeat indices below
    it count, so two versions are compared over the same seeds even when one of
    them ran more repeats.
    """
    counted: dict[str, list[TrialRecord]] = {t.id: [] for t in tasks}
    for (task_id, repeat), trial in sorted(effective(trials).items()):
        limit = repeats.get(task_id) if isinstance(repeats, dict) else repeats
        if task_id in counted and (limit is None or repeat < limit):
            counted[task_id].append(trial)
    return {t.id: _outcome(t, counted[t.id]) for t in tasks}


def _outcome(task: Task, trials: list[TrialRecord]) -> TaskOutcome:
    """One task's counts over its trials (in repeat order); `error` trials apart."""
    judged = [t for t in trials if t.status != "error"]
    return TaskOutcome(
        task.id,
        passes=sum(1 for t in judged if t.status == "pass"),
        trials=len(judged),
        errors=len(trials) - len(judged),
        tags=task.tags,
        trial_ids=tuple(t.id for t in trials if t.id is not None),  # stored trials always have one
    )
