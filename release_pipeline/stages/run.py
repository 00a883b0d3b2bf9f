"""Stage run: execute a version over a suite split, `k` repeats a task, and record every trial.

A run that is killed keeps every trial recorded before the kill; running it again executes only the trials
still missing (the trial engine, `trials/engine.py`, does the executing).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from release_pipeline.errors import UserError
from release_pipeline.models import Run, Sampling, VersionInfo
from release_pipeline.notices import say
from release_pipeline.progress import ProgressFactory, silent
from release_pipeline.trials.budget import Budget
from release_pipeline.trials.jobs import effective, missing_jobs

if TYPE_CHECKING:
    from release_pipeline.config.release_yaml import AgentConfig
    from release_pipeline.workspace import Workspace


def open_run(
    ws: Workspace,
    agent: AgentConfig,
    version: VersionInfo,
    *,
    split: str,
    repeats: int,
    purpose: str,
    statuses: tuple[str | None, ...],
    create: bool = True,
) -> tuple[Run | None, bool]:
    """An existing run of this version, split, seed and suite fingerprint, or a new one.

    `statuses` lists, in order of preference, which existing runs may be taken
    (None: any status, with any repeats); an empty tuple always starts a new run.
    Returns the run (None when none exists and `create` is off) and whether it already existed.
    """
    seed = ws.config.run.seed
    suite = ws.suite(agent)
    version_id = ws.store.version_id(agent.name, version.number)
    if create:  # found or made in one step: runners that need the same run at once share it
        return ws.store.find_or_create_run(
            version_id,
            split=split,
            seed=seed,
            suite=suite.fingerprint(split),
            statuses=statuses,
            repeats=repeats,
            purpose=purpose,
            task_ids=[t.id for t in suite.split(split)],
            sampling=Sampling.of(ws.materialize(agent, version).manifest).to_dict(),
        )
    for status in statuses:
        found = ws.store.find_run(
            version_id,
            split=split,
            seed=seed,
            suite=suite.fingerprint(split),
            status=status,
            repeats=None if status is None else repeats,
        )
        if found is not None:
            return found, True
    return None, False


def run_version(
    ws: Workspace,
    agent: AgentConfig,
    version: VersionInfo,
    *,
    split: str,
    repeats: int | None = None,
    purpose: str = "run",
    fresh: bool = False,
    reuse: bool = False,
    progress: ProgressFactory | None = None,
    budget: Budget | None = None,
) -> Run:
    """Run `version` of `agent` over a split; resume an unfinished identical run unless `fresh`.

    With `reuse`, an identical complete run (same tasks, seed and repeats) is returned as it is instead of
    running again. With a `budget`, a run whose estimated cost exceeds what is left of it is refused before
    anything runs. Returns the run's record, with its counts, what this call executed and whether it resumed.
    """
    from release_pipeline.sandbox.pool import kept_pools

    repeats = repeats or ws.config.run.repeats
    tasks = ws.suite(agent).split(split)
    if not tasks:
        raise UserError(f"suite {agent.suite!r} has no tasks in split {split!r}")
    unfinished = ("running", "interrupted")
    statuses = () if fresh else ("complete", *unfinished) if reuse else unfinished
    with kept_pools():  # the workers started for its preflight are the run's
        run, resumed = open_run(
            ws, agent, version, split=split, repeats=repeats, purpose=purpose, statuses=statuses, create=False
        )
        done = effective(ws.store.trials(run.id, with_trace=False)) if run else {}
        artifact = ws.materialize(agent, version)
        engine = ws.engine
        engine.preflight(
            artifact,
            missing_jobs(tasks, range(repeats), done),
            budget,
            f"run of {agent.name} v{version.number} on {split}",
        )
        if ws.unisolated:
            say(f"warning: {ws.unisolated}")
        if run is None:
            # the same choice again, now made atomically: another runner may have made the run meanwhile
            run, resumed = open_run(
                ws, agent, version, split=split, repeats=repeats, purpose=purpose, statuses=statuses
            )
            assert run is not None
        run_id = run.id

        def jobs_of() -> list:
            return missing_jobs(tasks, range(repeats), effective(ws.store.trials(run_id, with_trace=False)))

        label = f"{agent.name} v{version.number} {split}"
        executed = engine.execute(artifact, run_id, jobs_of, progress or silent, label)
    final = effective(ws.store.trials(run_id, with_trace=False))
    counts = {s: sum(1 for t in final.values() if t.status == s) for s in ("pass", "fail", "error")}
    record = replace(ws.store.run(run_id), counts=counts, executed=executed, resumed=resumed)
    ws.plugins.hook.release_run_finished(run=record, counts=counts)
    return record
