"""The store: the version line, runs, trials and every record the stages leave behind.

`Store` is the only door to the database. It speaks in `release_pipeline.models`
objects, so services and plugins never hold a session.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, cast

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import URL
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from release_pipeline.errors import ConflictError, NotFoundError, UserError
from release_pipeline.faults import crash_point
from release_pipeline.models import (
    Decision,
    GateDecision,
    HeadMove,
    MoveKind,
    Severity,
    Symptom,
    TrialRecord,
    VersionInfo,
    VersionStatus,
)
from release_pipeline.store.db import make_engine, upgrade
from release_pipeline.store.schema import (
    AgentRow,
    GateReportRow,
    HeadMoveRow,
    HeadRow,
    LLMCallRow,
    RunRow,
    SpecRow,
    SymptomRow,
    TrialRow,
    VersionRow,
    utcnow,
)

TRIAL_COLUMNS = (
    "run_id", "task_id", "repeat", "attempt", "seed", "status", "score", "output", "trace",
    "feedback", "reason", "latency_ms", "tokens", "cost", "notes", "output_size",
)  # fmt: skip


VERSION_NUMBER_ATTEMPTS = 20


class TwinVersion(Exception):
    """A version with the same content is already recorded against the same parent: `twin`."""

    def __init__(self, twin: VersionInfo):
        super().__init__(f"{twin.agent} v{twin.number} has this content already")
        self.twin = twin


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


def _hint(exc: BaseException) -> str:
    text = str(exc).lower()
    if "readonly" in text or "read-only" in text or "unable to open" in text or "permission" in text:
        return " (is the folder writable?)"
    if "locked" in text:
        return " (another process holds it: retry)"
    return ""


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


def _version(row: VersionRow) -> VersionInfo:
    return VersionInfo(
        agent=row.agent, number=row.number, status=cast(VersionStatus, row.status), git_sha=row.git_sha,
        content_hash=row.content_hash, parent=row.parent_number, intent=row.intent,
        source_ref=row.source_ref, branch=row.branch, created_at=row.created_at,
        reasons=tuple(row.reasons or ()), spec_id=row.spec_id,
    )  # fmt: skip


class Store:
    """A migrated database behind two engines: deferred reads, IMMEDIATE writes."""

    def __init__(self, url: str | URL):
        self.url = url
        self._read = make_engine(url)
        sqlite = self._read.dialect.name == "sqlite"
        self._write = make_engine(url, immediate=True) if sqlite else self._read
        try:
            upgrade(self._write)
        except OperationalError as exc:
            where = self._read.url.database if sqlite else self._read.url.render_as_string(hide_password=True)
            raise UserError(f"cannot open the database {where}: {_first_line(exc)}{_hint(exc)}") from None
        except DatabaseError as exc:
            where = self._read.url.database if sqlite else self._read.url.render_as_string(hide_password=True)
            raise UserError(
                f"the database {where} is damaged or not a release-pipeline database ({_first_line(exc)}): "
                "move it aside to start a new one, or restore a backup"
            ) from None

    def close(self) -> None:
        self._read.dispose()
        if self._write is not self._read:
            self._write.dispose()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with Session(self._read, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """One write transaction, committed on success, rolled back on any exception."""
        with Session(self._write, expire_on_commit=False) as session, session.begin():
            yield session

    # ----- agents and versions -------------------------------------------------

    def ensure_agent(self, name: str, path: str) -> None:
        with self.writing() as s:
            if s.get(AgentRow, name) is None:
                s.add(AgentRow(name=name, path=path))

    def adopt_line(self, agent: str, line: dict[str, Any]) -> None:
        """Record a version line as git carried it (`line_ref.py`): its versions and head moves, as they were.

        Only into an empty line: an agent with versions here already keeps its own."""
        from release_pipeline.repo.line_ref import parse_time

        with self.writing() as s:
            if s.scalar(select(VersionRow.id).where(VersionRow.agent == agent).limit(1)) is not None:
                raise ConflictError(f"{agent!r} already has a version line here: it is not replaced by git's")
            ids = {}
            for v in line["versions"]:
                row = VersionRow(
                    agent=agent,
                    number=v["number"],
                    parent_number=v["parent"],
                    git_sha=v["git_sha"],
                    content_hash=v["content_hash"],
                    status=v["status"],
                    intent=v["intent"],
                    source_ref=v["source_ref"],
                    branch=v["branch"],
                    reasons=list(v["reasons"]),
                    created_at=parse_time(v["created_at"]),
                )
                s.add(row)
                s.flush()
                ids[v["number"]] = row.id
            s.add(HeadRow(agent=agent, version_id=ids[line["canonical"]], revision=len(line["moves"])))
            for m in line["moves"]:
                s.add(
                    HeadMoveRow(
                        agent=agent,
                        from_version_id=ids[m["from_version"]] if m["from_version"] is not None else None,
                        to_version_id=ids[m["to_version"]],
                        actor=m["actor"],
                        reason=m["reason"],
                        kind=m["kind"],
                        at=parse_time(m["at"]),
                    )
                )

    def create_version(
        self, agent: str, *, status: str, branch: str = "", refuse_twin: bool = False, **fields: Any
    ) -> VersionInfo:
        """Record a new version with the next number of its agent's line.

        The number is taken inside the write transaction; where two writers still take the same one
        (PostgreSQL's default isolation lets them), the unique constraint refuses the second, which
        tries again with the next number. `branch` may contain `{number}`.

        With `refuse_twin`, a version with the same content already recorded against the same parent raises
        `TwinVersion` instead, however many writers record that content at once: the twin is looked for after
        the number is taken, so of two writers that both missed the other's row, one took the other's number
        and tries again, and finds it.
        """
        for attempt in range(VERSION_NUMBER_ATTEMPTS):
            try:
                with self.writing() as s:
                    number = (s.scalar(select(func.max(VersionRow.number)).where(VersionRow.agent == agent)) or 0) + 1
                    if refuse_twin:
                        self._refuse_twin(s, agent, fields["parent_number"], fields["content_hash"])
                    row = VersionRow(
                        agent=agent, number=number, status=status, branch=branch.format(number=number), **fields
                    )
                    s.add(row)
                    s.flush()
                    return _version(row)
            except IntegrityError:
                if attempt == VERSION_NUMBER_ATTEMPTS - 1:
                    raise ConflictError(f"could not take a version number for {agent!r}: busy, retry") from None
                time.sleep(random.uniform(0, 0.05 * (attempt + 1)))
        raise AssertionError("unreachable")

    def _refuse_twin(self, s: Session, agent: str, parent: int | None, content_hash: str) -> None:
        twin = s.scalar(
            select(VersionRow)
            .where(VersionRow.agent == agent, VersionRow.parent_number == parent)
            .where(VersionRow.content_hash == content_hash, VersionRow.number != parent)
            .order_by(VersionRow.number)
            .limit(1)
        )
        if twin is not None:
            raise TwinVersion(_version(twin))

    def _version_row(self, s: Session, agent: str, number: int) -> VersionRow:
        row = s.scalar(select(VersionRow).where(VersionRow.agent == agent, VersionRow.number == number))
        if row is None:
            raise NotFoundError(f"agent {agent!r} has no version v{number}")
        return row

    def version(self, agent: str, number: int) -> VersionInfo:
        with self.reading() as s:
            return _version(self._version_row(s, agent, number))

    def version_by_id(self, version_id: int) -> VersionInfo:
        with self.reading() as s:
            row = s.get(VersionRow, version_id)
            if row is None:
                raise NotFoundError(f"no version with id {version_id}")
            return _version(row)

    def version_id(self, agent: str, number: int) -> int:
        with self.reading() as s:
            return self._version_row(s, agent, number).id

    def version_diff(self, agent: str, number: int) -> tuple[str, list[str]]:
        with self.reading() as s:
            row = self._version_row(s, agent, number)
            return row.diff, list(row.changed_files or [])

    def versions(self, agent: str) -> list[VersionInfo]:
        with self.reading() as s:
            rows = s.scalars(select(VersionRow).where(VersionRow.agent == agent).order_by(VersionRow.number))
            return [_version(r) for r in rows]

    def find_version_by_source(self, agent: str, source: str) -> VersionInfo | None:
        with self.reading() as s:
            row = s.scalar(
                select(VersionRow).where(VersionRow.agent == agent, VersionRow.source_ref == source).limit(1)
            )
            return _version(row) if row else None

    def set_status(self, agent: str, number: int, status: str, reasons: Iterable[str] = ()) -> None:
        with self.writing() as s:
            row = self._version_row(s, agent, number)
            row.status = status
            row.reasons = list(reasons)
            row.decided_at = utcnow()

    def head(self, agent: str) -> VersionInfo | None:
        """The canonical version of `agent`, or None before the first one is recorded."""
        with self.reading() as s:
            row = s.scalar(
                select(VersionRow).join(HeadRow, HeadRow.version_id == VersionRow.id).where(HeadRow.agent == agent)
            )
            return _version(row) if row else None

    def move_head(
        self,
        agent: str,
        *,
        expected: int | None,
        to: int,
        actor: str,
        reason: str,
        kind: str,
        side_effect: Callable[[], Callable[[], None]],
        precheck: Callable[[], None] | None = None,
    ) -> HeadMove:
        """Compare-and-swap the canonical head from `expected` to `to`, atomically with `side_effect`.

        `expected=None` records the first canonical version (the head must not exist yet).

        `precheck` runs once the head is locked and swapped, before the side effect (it checks that git
        agrees with the database: no other move can be half-done while we hold the lock).
        `side_effect` runs inside the write transaction after the swap succeeded
        (it moves git). If it raises, the transaction rolls back. It returns an
        undo callable, run if the commit itself then fails, so that git and the
        database move together or not at all.
        """
        undo: Callable[[], None] | None = None
        try:
            with self.writing() as s:
                head = s.get(HeadRow, agent, with_for_update=True)
                current = s.get(VersionRow, head.version_id) if head else None
                if (current.number if current else None) != expected:
                    now = f"v{current.number}" if current else "no canonical version"
                    want = f"v{expected}" if expected is not None else "no canonical version"
                    raise ConflictError(f"the canonical head of {agent!r} moved: expected {want}, found {now}")
                target = self._version_row(s, agent, to)
                if head is None:
                    s.add(HeadRow(agent=agent, version_id=target.id, revision=1))
                else:
                    swapped = s.execute(
                        update(HeadRow)
                        .where(HeadRow.agent == agent, HeadRow.revision == head.revision)
                        .values(version_id=target.id, revision=head.revision + 1)
                    )
                    if cast(Any, swapped).rowcount != 1:
                        raise ConflictError(f"the canonical head of {agent!r} moved during promotion")
                    assert current is not None  # a head always points at a version
                    current.status = "retired"
                target.status = "canonical"
                target.decided_at = utcnow()
                move = HeadMoveRow(
                    agent=agent,
                    from_version_id=current.id if current else None,
                    to_version_id=target.id,
                    actor=actor,
                    reason=reason,
                    kind=kind,
                )
                s.add(move)
                try:
                    s.flush()
                except IntegrityError:  # another process recorded the first head meanwhile
                    raise ConflictError(f"the canonical head of {agent!r} moved: another process set it") from None
                if precheck is not None:
                    precheck()
                result = HeadMove(agent, expected, to, actor, reason, cast(MoveKind, kind), move.at)
                crash_point("head:swapped")
                undo = side_effect()
                crash_point("head:before-commit")
        except Exception:
            if undo is not None:  # the side effect happened but the commit failed
                undo()
            raise
        crash_point("head:committed")
        return result

    def record_repair(self, agent: str, number: int, *, actor: str, reason: str) -> None:
        """Record a repair of git by `release doctor` as a move of the head onto itself."""
        with self.writing() as s:
            version_id = self._version_row(s, agent, number).id
            s.add(
                HeadMoveRow(
                    agent=agent,
                    from_version_id=version_id,
                    to_version_id=version_id,
                    actor=actor,
                    reason=reason,
                    kind="repair",
                )
            )

    def head_moves(self, agent: str) -> list[HeadMove]:
        with self.reading() as s:
            numbers = _version_numbers(s, agent)
            rows = s.scalars(select(HeadMoveRow).where(HeadMoveRow.agent == agent).order_by(HeadMoveRow.id))
            return [
                HeadMove(
                    agent,
                    numbers.get(r.from_version_id) if r.from_version_id is not None else None,
                    numbers[r.to_version_id],
                    r.actor,
                    r.reason,
                    cast(MoveKind, r.kind),
                    r.at,
                )
                for r in rows
            ]

    # ----- runs and trials -------------------------------------------------------

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
    ) -> dict[str, Any] | None:
        """The newest run of a version over the same split, suite fingerprint and seed (in `status`, if given)."""
        with self.reading() as s:
            row = s.scalar(_same_run(version_id, split, seed, suite, status, repeats))
            return self._run_dict(row) if row else None

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
    ) -> tuple[dict[str, Any], bool]:
        """`find_run` for each of `statuses` in turn (None: any status and repeats), else a new run, in one write
        transaction that holds the version's row: runners that need the same run at once get one run, not one
        each. Returns the run and whether it existed."""
        with self.writing() as s:
            s.execute(select(VersionRow.id).where(VersionRow.id == version_id).with_for_update())
            for status in statuses:
                found = s.scalar(_same_run(version_id, split, seed, suite, status, None if status is None else repeats))
                if found is not None:
                    return self._run_dict(found), True
            row = _new_run(version_id, split, repeats, seed, purpose, task_ids, suite, sampling)
            s.add(row)
            s.flush()
            return self._run_dict(row), False

    def latest_run(self, version_id: int, split: str) -> dict[str, Any] | None:
        with self.reading() as s:
            row = s.scalar(
                select(RunRow)
                .where(RunRow.version_id == version_id, RunRow.split == split, RunRow.status == "complete")
                .order_by(RunRow.id.desc())
                .limit(1)
            )
            return self._run_dict(row) if row else None

    def run(self, run_id: int) -> dict[str, Any]:
        with self.reading() as s:
            row = s.get(RunRow, run_id)
            if row is None:
                raise NotFoundError(f"no run #{run_id}")
            return self._run_dict(row)

    def runs_of(self, version_id: int) -> list[dict[str, Any]]:
        with self.reading() as s:
            return [
                self._run_dict(r)
                for r in s.scalars(select(RunRow).where(RunRow.version_id == version_id).order_by(RunRow.id))
            ]

    @staticmethod
    def _run_dict(row: RunRow) -> dict[str, Any]:
        from release_pipeline.store.leases import alive

        status = row.status
        if status == "running" and not (row.owner and alive(row.owner, row.heartbeat_at, utcnow())):
            status = "interrupted"  # its process ended without saying so (a SIGKILL): resumable
        return {
            "id": row.id,
            "version_id": row.version_id,
            "split": row.split,
            "repeats": row.repeats,
            "seed": row.seed,
            "purpose": row.purpose,
            "status": status,
            "task_ids": list(row.task_ids),
            "suite": row.suite,
            "created_at": row.created_at,
            "finished_at": row.finished_at,
            "owner": row.owner,
            "heartbeat_at": row.heartbeat_at,
            "sampling": row.sampling,
        }

    def record_repeats(self, run_id: int, repeats: int) -> None:
        """A run's repeats grow when the gate asks for more: record the most any of its tasks reached."""
        with self.writing() as s:
            s.execute(update(RunRow).where(RunRow.id == run_id, RunRow.repeats < repeats).values(repeats=repeats))

    def claim_run(self, run_id: int, owner: str) -> dict[str, Any] | None:
        """Take the lease on a run for `owner`; returns None on success, else the run as its live holder has it.

        A lease whose holder is gone (see `leases.alive`) is taken over: a killed run resumes.
        """
        from release_pipeline.store.leases import alive

        with self.writing() as s:
            row = s.get(RunRow, run_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"no run #{run_id}")
            now = utcnow()
            if row.owner and row.owner != owner and alive(row.owner, row.heartbeat_at, now):
                return self._run_dict(row)
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

    # ----- symptoms, specs, gate reports -----------------------------------------

    def replace_symptoms(self, run_id: int, symptoms: list[Symptom]) -> None:
        """Store the critic's symptoms for a run, replacing an earlier critique of the same run."""
        with self.writing() as s:
            s.query(SymptomRow).filter(SymptomRow.run_id == run_id).delete()
            if symptoms:
                s.execute(
                    insert(SymptomRow),
                    [{**asdict(sym), "evidence": list(sym.evidence), "run_id": run_id} for sym in symptoms],
                )

    def symptoms(self, run_id: int) -> list[Symptom]:
        with self.reading() as s:
            rows = s.scalars(select(SymptomRow).where(SymptomRow.run_id == run_id).order_by(SymptomRow.id))
            return [
                Symptom(
                    r.trial_id,
                    r.task_id,
                    r.label,
                    r.description,
                    tuple(r.evidence),
                    cast(Severity, r.severity),
                    r.critic,
                )
                for r in rows
            ]

    def save_spec(self, agent: str, version: int, run_id: int, body: dict[str, Any], markdown: str) -> int:
        with self.writing() as s:
            row = SpecRow(agent=agent, version_number=version, run_id=run_id, body=body, markdown=markdown)
            s.add(row)
            s.flush()
            return row.id

    def spec(self, spec_id: int) -> dict[str, Any]:
        with self.reading() as s:
            row = s.get(SpecRow, spec_id)
            if row is None:
                raise NotFoundError(f"no spec #{spec_id}")
            return {"id": row.id, "body": row.body, "markdown": row.markdown}

    def latest_spec(self, agent: str, version: int) -> dict[str, Any] | None:
        with self.reading() as s:
            row = s.scalar(
                select(SpecRow)
                .where(SpecRow.agent == agent, SpecRow.version_number == version)
                .order_by(SpecRow.id.desc())
                .limit(1)
            )
            return {"id": row.id, "body": row.body, "markdown": row.markdown} if row else None

    def save_gate_report(
        self,
        agent: str,
        candidate: int,
        base: int,
        decision: str,
        body: dict[str, Any],
        markdown: str,
        policy_hash: str,
    ) -> int:
        with self.writing() as s:
            row = GateReportRow(
                agent=agent,
                candidate_version_id=self._version_row(s, agent, candidate).id,
                base_version_id=self._version_row(s, agent, base).id,
                decision=decision,
                body=body,
                markdown=markdown,
                policy_hash=policy_hash,
            )
            s.add(row)
            s.flush()
            return row.id

    def gate_decisions(self, agent: str) -> list[GateDecision]:
        """Every gate report of `agent` in brief, oldest first, each with its body's digest."""
        with self.reading() as s:
            numbers = _version_numbers(s, agent)
            rows = s.scalars(select(GateReportRow).where(GateReportRow.agent == agent).order_by(GateReportRow.id))
            return [
                GateDecision(
                    id=row.id,
                    agent=agent,
                    base=numbers[row.base_version_id],
                    candidate=numbers[row.candidate_version_id],
                    decision=cast(Decision, row.decision),
                    policy_hash=row.policy_hash,
                    report_sha256=GateDecision.digest_of(row.body),
                    at=row.created_at,
                )
                for row in rows
            ]

    def latest_gate_report(self, agent: str, candidate: int) -> dict[str, Any] | None:
        with self.reading() as s:
            cid = self._version_row(s, agent, candidate).id
            row = s.scalar(
                select(GateReportRow)
                .where(GateReportRow.candidate_version_id == cid)
                .order_by(GateReportRow.id.desc())
                .limit(1)
            )
            if row is None:
                return None
            base = s.get(VersionRow, row.base_version_id)
            assert base is not None  # a report's base version is never deleted
            return {
                "id": row.id,
                "decision": row.decision,
                "body": row.body,
                "markdown": row.markdown,
                "base": base.number,
                "policy_hash": row.policy_hash,
                "created_at": row.created_at,
            }

    # ----- LLM calls: the record and the cache ---------------------------------------

    def cached_response(self, key: str) -> dict[str, Any] | None:
        """The response of an earlier call with this cache key, if any."""
        with self._read.connect() as conn:
            row = conn.execute(
                select(LLMCallRow.response, LLMCallRow.prompt_tokens, LLMCallRow.completion_tokens, LLMCallRow.cost)
                .where(LLMCallRow.key == key)
                .order_by(LLMCallRow.id.desc())
                .limit(1)
            ).first()
        return dict(row._mapping) if row else None

    def record_llm_call(self, **fields: Any) -> None:
        with self._write.begin() as conn:
            conn.execute(insert(LLMCallRow), [fields])

    def llm_calls(self, role: str | None = None) -> list[dict[str, Any]]:
        """Recorded calls, oldest first (request and response included), optionally of one role."""
        with self._read.connect() as conn:
            q = select(LLMCallRow).order_by(LLMCallRow.id)
            if role is not None:
                q = q.where(LLMCallRow.role == role)
            return [dict(r._mapping) for r in conn.execute(q)]


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
    from release_pipeline.store.leases import me

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


def _version_numbers(s: Session, agent: str) -> dict[int, int]:
    """Every version of `agent`: its row id to its number."""
    return dict(s.execute(select(VersionRow.id, VersionRow.number).where(VersionRow.agent == agent)).all())
