"""What the store keeps of trials: written in batches, never twice, and read back by run or by id."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import SQLAlchemyError

from release_pipeline.models import TrialRecord
from release_pipeline.store.base import StoreBase
from release_pipeline.store.schema import TrialRow

TRIAL_COLUMNS = (
    "run_id", "task_id", "repeat", "attempt", "seed", "status", "score", "output", "trace",
    "feedback", "reason", "latency_ms", "tokens", "cost", "notes", "output_size",
)  # fmt: skip


class TrialStore(StoreBase):
    """Every trial of every run."""

    def insert_trials(self, trials: list[TrialRecord]) -> int:
        """Write a batch of trials in one transaction (one executemany); returns how many were written.

        A trial already recorded (same run, task, repeat and attempt) is left as it is, so no trial is ever
        written twice. If the batch fails, its trials are written one by one, and one the database still
        refuses is recorded as an `error` saying why: a bad trial never costs another its record.
        """
        if not trials:
            return 0
        try:
            return self._insert(trials)
        except (SQLAlchemyError, ValueError, TypeError, OverflowError):
            pass
        written = 0
        for trial in trials:
            try:
                written += self._insert([trial])
            except (SQLAlchemyError, ValueError, TypeError, OverflowError) as exc:
                written += self._insert([unrecordable_stub(trial, exc)])
        return written

    def _insert(self, trials: list[TrialRecord]) -> int:
        rows = [{c: getattr(t, c) for c in TRIAL_COLUMNS} for t in trials]
        with self._write.begin() as conn:
            result = conn.execute(self._insert_ignoring_duplicates(TrialRow), rows)
        return max(result.rowcount, 0) if result.rowcount is not None else len(rows)

    def _insert_ignoring_duplicates(self, table: Any) -> Any:
        dialect = self._write.dialect.name
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            return sqlite_insert(table).on_conflict_do_nothing()
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table).on_conflict_do_nothing()
        return insert(table)

    def trials(self, run_id: int, *, with_trace: bool = True) -> list[TrialRecord]:
        """Every trial of a run, error attempts included, ordered by task, repeat and attempt."""
        cols = [TrialRow.id, *(getattr(TrialRow, c) for c in TRIAL_COLUMNS if with_trace or c != "trace")]
        with self._read.connect() as conn:
            result = conn.execute(
                select(*cols)
                .where(TrialRow.run_id == run_id)
                .order_by(TrialRow.task_id, TrialRow.repeat, TrialRow.attempt)
            )
            return [_trial(row._mapping) for row in result]

    def trials_by_id(self, ids: Iterable[int]) -> list[TrialRecord]:
        ids = list(ids)
        with self._read.connect() as conn:
            cols = [TrialRow.id, *(getattr(TrialRow, c) for c in TRIAL_COLUMNS)]
            return [_trial(r._mapping) for r in conn.execute(select(*cols).where(TrialRow.id.in_(ids)))]


def _trial(mapping: Any) -> TrialRecord:
    fields = dict(mapping)
    fields["notes"] = list(fields.get("notes") or ())
    return TrialRecord(**fields)


def unrecordable_stub(trial: TrialRecord, exc: BaseException) -> TrialRecord:
    """What is written in place of a trial the database refused: an `error` that says why, nothing else."""
    return TrialRecord(
        trial.run_id, trial.task_id, trial.repeat, trial.seed, "error",
        feedback=f"the harness could not record this trial: {type(exc).__name__}: {str(exc)[:500]}",
        reason="unrecordable", latency_ms=trial.latency_ms, attempt=trial.attempt,
    )  # fmt: skip
