"""Trials away from the driver: a `TrialHost`, built from a `TrialRecipe` on the machine that runs the trials.

It unpacks the recipe's files into a folder named by their digest (once per machine), opens the workspace there
and holds one `TrialRunner`: the same code, adapter, verifiers and sandbox as a local run.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from release_pipeline.trials.recipe import TrialRecipe, sweep, unpack_once
from release_pipeline.trials.runner import TrialRunner
from release_pipeline.trials.settings import RunSettings

if TYPE_CHECKING:
    from release_pipeline.models import TrialRecord
    from release_pipeline.trials.jobs import Job

TOUCH_S = 60.0  # how often a busy host marks its recipe as in use


class TrialHost:
    """A trial runner built from a recipe on the machine that runs the trials; `run(job, run_id)` is one trial.

    With a `limit`, at most that many trials run at once: calls beyond it wait their turn here (an executor can
    queue trials ahead of the room it has, so a host never idles waiting for the next call), and a trial's clock
    starts only when it runs.
    """

    def __init__(self, recipe: TrialRecipe, scratch: Path | None = None, limit: int | None = None):
        from release_pipeline.workspace import Workspace  # the host opens the judging workspace it was sent

        top = scratch or Path(tempfile.gettempdir()) / "release-pipeline-trials"
        home = top / recipe.digest
        self.used, self.touched = home / ".used", 0.0
        self._touch()
        sweep(top)
        source = unpack_once(recipe.source, home / "source")
        folder = unpack_once(recipe.artifact_files, home / "artifact")
        ws = Workspace(home / "state", source=source, db_url=recipe.db_url)
        settings = RunSettings(
            concurrency=1,
            timeout_s=recipe.timeout_s,
            seed=recipe.seed,
            llm=ws.llm,
            models=recipe.models,
            allowed_models=ws.config.allowed_models,  # the judging workspace's, like everything that judges
        )
        artifact = replace(recipe.artifact, path=folder)
        self.runner: TrialRunner = TrialRunner(artifact, ws.plugins.registry, ws.verifiers, 0, settings)
        self.limit = limit
        self._room: asyncio.Semaphore | None = None  # made in the event loop that runs the trials

    def _touch(self) -> None:
        """Mark this host's unpacked recipe as in use (at most once a minute): sweeps leave it be."""
        if time.monotonic() - self.touched >= TOUCH_S or not self.touched:
            self.used.parent.mkdir(parents=True, exist_ok=True)
            self.used.touch()
            self.touched = time.monotonic()

    async def run(self, job: Job, run_id: int) -> TrialRecord:
        """One trial of run `run_id`, once there is room for it."""
        self._touch()
        if self.limit is None:
            trial = await self.runner(job)
        else:
            self._room = self._room or asyncio.Semaphore(self.limit)
            async with self._room:
                trial = await self.runner(job)
        trial.run_id = run_id
        return trial

    async def run_many(self, jobs: list[Job], run_id: int) -> list[TrialRecord]:
        """Several trials, each on its own as `run` would: one call for all of them."""
        return list(await asyncio.gather(*(self.run(job, run_id) for job in jobs)))

    def where(self) -> str:
        """Where this host runs: the machine and process, and the Ray node when it runs on one."""
        import socket

        here = f"{socket.gethostname()}:{os.getpid()}"
        try:
            import ray

            return f"{here} node {ray.get_runtime_context().get_node_id()[:12]}"
        except Exception:  # not in a Ray worker
            return here

    async def close(self) -> None:
        await self.runner.aclose()
        self.runner.close()
