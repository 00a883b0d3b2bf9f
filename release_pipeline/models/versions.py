"""Versions on the line and the moves of its head."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal

from release_pipeline.models.record import Record

VersionStatus = Literal["canonical", "candidate", "rejected", "retired"]


MoveKind = Literal["init", "promote", "rollback", "repair"]


def version_tag(agent: str, number: int) -> str:
    """The git tag of a version that has been canonical."""
    return f"{agent}/v{number}"


@dataclass(frozen=True, slots=True)
class VersionInfo(Record):
    """One entry of an agent's version line: its git commit, where it came from, its status and why.

    `status` is `canonical` (the head), `retired` (was canonical), `candidate` or `rejected`; `tag` is the git tag
    of a version that has been canonical.
    """

    agent: str
    number: int
    status: VersionStatus
    git_sha: str
    content_hash: str
    parent: int | None
    intent: str
    source_ref: str
    branch: str
    created_at: datetime
    reasons: tuple[str, ...] = ()
    spec_id: int | None = None
    COMPUTED: ClassVar[dict[str, str]] = {"tag": "tag"}

    @property
    def tag(self) -> str | None:
        return version_tag(self.agent, self.number) if self.status in ("canonical", "retired") else None


@dataclass(frozen=True, slots=True)
class HeadMove(Record):
    """One move of an agent's canonical head: `kind` is `init`, `promote`, `rollback` or `repair`."""

    agent: str
    from_version: int | None
    to_version: int
    actor: str
    reason: str
    kind: MoveKind
    at: datetime
