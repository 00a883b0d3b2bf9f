"""What the store keeps of runs: one version over one split, its seed and suite, and the lease of whoever
executes it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from release_pipeline.errors import NotFoundError
from release_pipeline.models import Run, Sampling
from release_pipeline.store.base import StoreBase
from release_pipeline.store.leases import alive, me
from release_pipeline.store.schema import RunRow, VersionRow, utcnow


class RunStore(StoreBase):
    """Runs, found or made in one step, and their leases."""

    def create_run(
        self,
        version_id: int,
        *,
        split: str,
        repeats: int,
        seed: int,
        purpose: str,
        task_ids: list[str],
        suite: str,
        sampling: dict[str, Any] | None = None,
    ) -> int:
        with self.writing() as s:
            row = _new_run(version_id, split, repeats, seed, purpose, task_ids, suite, sampling)
            s.add(row)
            s.flush()
            return row.id

    def find_run(
        self,
        version_id: int,
        *,
        split: str,
        seed: int,
        suite: str,
        status: str | None = None,
        repeats: int | None = None,
    ) -> Run | None:
        """The newest run of a version over the same split, suite fingerprint and seed (in `status`, if given)."""
        with self.reading() as s:
            row = s.scalar(_same_run(version_id, split, seed, suite, status, repeats))
            return _run_record(s, row) if row else None

    def find_or_create_run(
        self,
        version_id: int,
        *,
        split: str,
        seed: int,
        suite: str,
        statuses: tuple[str | None, ...],
        repeats: int,
        purpose: str,
        task_ids: list[str],
        sampling: dict[str, Any] | None = None,
    ) -> tuple[Run, bool]:
        """`find_run` for each of `statuses` in turn (None: any status and repeats), else a new run, in one write
        transaction that holds the version's row: runners that need the same run at once get one run, not one
        each. Returns the run and whether it existed."""
        with self.writing() as s:
            s.execute(select(VersionRow.id).where(VersionRow.id == version_id).with_for_update())
            for status in statuses:
                found = s.scalar(_same_run(version_id, split, seed, suite, status, None if status is None else repeats))
                if found is not None:
                    return _run_record(s, found), True
            row = _new_run(version_id, split, repeats, seed, purpose, task_ids, suite, sampling)
            s.add(row)
            s.flush()
            return _run_record(s, row), False

    def latest_run(self, version_id: int, split: str) -> Run | None:
        """The newest complete run of a version on `split`."""
        with self.reading() as s:
            row = s.scalar(
                select(RunRow)
                .where(RunRow.version_id == version_id, RunRow.split == split, RunRow.status == "complete")
                .order_by(RunRow.id.desc())
                .limit(1)
            )
            return _run_record(s, row) if row else None

    def run(self, run_id: int) -> Run:
        with self.reading() as s:
            row = s.get(RunRow, run_id)
            if row is None:
                raise NotFoundError(f"no run #{run_id}")
            return _run_record(s, row)

    def run_task_ids(self, run_id: int) -> tuple[str, ...]:
        """The ids of the tasks a run is over."""
        with self.reading() as s:
            row = s.get(RunRow, run_id)
            if row is None:
                raise NotFoundError(f"no run #{run_id}")
            return tuple(row.task_ids)

    def runs_of(self, version_id: int) -> list[Run]:
        with self.reading() as s:
            return [
                _run_record(s, r)
                for r in s.scalars(select(RunRow).where(RunRow.version_id == version_id).order_by(RunRow.id))
            ]

    def record_repeats(self, run_id: int, repeats: int) -> None:
        """A run's repeats grow when the gate asks for more: record the most any of its tasks reached."""
        with self.writing() as s:
            s.execute(update(RunRow).where(RunRow.id == run_id, RunRow.repeats < repeats).values(repeats=repeats))

    def claim_run(self, run_id: int, owner: str) -> str | None:
        """Take the lease on a run for `owner`; returns None on success, else its live holder.

        A lease whose holder is gone (see `leases.alive`) is taken over: a killed run resumes.
        """
        with self.writing() as s:
            row = s.get(RunRow, run_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"no run #{run_id}")
            now = utcnow()
            if row.owner and row.owner != owner and alive(row.owner, row.heartbeat_at, now):
                return row.owner
            row.owner, row.heartbeat_at, row.status, row.finished_at = owner, now, "running", None
            return None

    def heartbeat(self, run_id: int, owner: str) -> None:
        with self.writing() as s:
            s.execute(update(RunRow).where(RunRow.id == run_id, RunRow.owner == owner).values(heartbeat_at=utcnow()))

    def release_run(self, run_id: int, owner: str, status: str) -> None:
        """Give up the lease, leaving the run `complete` or `interrupted`."""
        finished = utcnow() if status == "complete" else None
        with self.writing() as s:
            s.execute(
                update(RunRow)
                .where(RunRow.id == run_id, RunRow.owner == owner)
                .values(owner=None, status=status, finished_at=finished)
            )


def _run_record(s: Any, row: RunRow) -> Run:
    """The record of a stored run; a `running` run whose holder is gone is `interrupted` (resumable)."""
    version = s.get(VersionRow, row.version_id)
    assert version is not None  # a run's version is never deleted
    status = row.status
    if status == "running" and not (row.owner and alive(row.owner, row.heartbeat_at, utcnow())):
        status = "interrupted"  # its process ended without saying so (a SIGKILL): resumable
    return Run(
        id=row.id,
        agent=version.agent,
        version=version.number,
        split=row.split,
        repeats=row.repeats,
        purpose=row.purpose,
        status=status,
        seed=row.seed,
        suite=row.suite,
        tasks=len(row.task_ids),
        created_at=row.created_at,
        finished_at=row.finished_at,
        sampling=Sampling.from_dict(row.sampling) if row.sampling else None,
    )


def _new_run(
    version_id: int,
    split: str,
    repeats: int,
    seed: int,
    purpose: str,
    task_ids: list[str],
    suite: str,
    sampling: dict[str, Any] | None,
) -> RunRow:
    """A new run's row, leased to this process (its creator executes it)."""
    return RunRow(
        version_id=version_id,
        split=split,
        repeats=repeats,
        seed=seed,
        purpose=purpose,
        task_ids=task_ids,
        suite=suite,
        sampling=sampling,
        owner=me(),
        heartbeat_at=utcnow(),
    )


def _same_run(version_id: int, split: str, seed: int, suite: str, status: str | None, repeats: int | None):
    """The query for the newest run of a version over one split, seed and suite (in `status`, with `repeats`)."""
    q = (
        select(RunRow)
        .where(RunRow.version_id == version_id, RunRow.split == split, RunRow.seed == seed, RunRow.suite == suite)
        .order_by(RunRow.id.desc())
        .limit(1)
    )
    if status is not None:
        q = q.where(RunRow.status == status)
    if repeats is not None:
        q = q.where(RunRow.repeats == repeats)
    return q
