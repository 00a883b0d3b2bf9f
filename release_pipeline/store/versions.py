"""What the store keeps of the version line: agents, versions, the canonical head and every move of it."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from typing import Any, cast

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from release_pipeline.errors import ConflictError, NotFoundError
from release_pipeline.faults import crash_point
from release_pipeline.models import HeadMove, MoveKind, VersionInfo, VersionStatus
from release_pipeline.store.base import StoreBase
from release_pipeline.store.schema import AgentRow, HeadMoveRow, HeadRow, VersionRow, utcnow

VERSION_NUMBER_ATTEMPTS = 20


class TwinVersion(Exception):
    """A version with the same content is already recorded against the same parent: `twin`."""

    def __init__(self, twin: VersionInfo):
        super().__init__(f"{twin.agent} v{twin.number} has this content already")
        self.twin = twin


class VersionStore(StoreBase):
    """Agents, their versions and the line's head."""

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

    def version(self, agent: str, number: int) -> VersionInfo:
        with self.reading() as s:
            return _version(version_row(s, agent, number))

    def version_id(self, agent: str, number: int) -> int:
        with self.reading() as s:
            return version_row(s, agent, number).id

    def version_diff(self, agent: str, number: int) -> tuple[str, list[str]]:
        with self.reading() as s:
            row = version_row(s, agent, number)
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
            row = version_row(s, agent, number)
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
                target = version_row(s, agent, to)
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
            version_id = version_row(s, agent, number).id
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


def _version(row: VersionRow) -> VersionInfo:
    return VersionInfo(
        agent=row.agent, number=row.number, status=cast(VersionStatus, row.status), git_sha=row.git_sha,
        content_hash=row.content_hash, parent=row.parent_number, intent=row.intent,
        source_ref=row.source_ref, branch=row.branch, created_at=row.created_at,
        reasons=tuple(row.reasons or ()), spec_id=row.spec_id,
    )  # fmt: skip


def version_row(s: Session, agent: str, number: int) -> VersionRow:
    """The row of `agent`'s version `number`, or a one-line error."""
    row = s.scalar(select(VersionRow).where(VersionRow.agent == agent, VersionRow.number == number))
    if row is None:
        raise NotFoundError(f"agent {agent!r} has no version v{number}")
    return row


def _version_numbers(s: Session, agent: str) -> dict[int, int]:
    """Every version of `agent`: its row id to its number."""
    return dict(s.execute(select(VersionRow.id, VersionRow.number).where(VersionRow.agent == agent)).all())
