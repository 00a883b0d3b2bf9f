"""ORM tables of the store. Only the store package touches these; everything else sees `models`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class AgentRow(Base):
    __tablename__ = "agents"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    path: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class VersionRow(Base):
    __tablename__ = "versions"
    __table_args__ = (UniqueConstraint("agent", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent: Mapped[str] = mapped_column(ForeignKey("agents.name"), index=True)
    number: Mapped[int]
    parent_number: Mapped[int | None]
    git_sha: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    intent: Mapped[str] = mapped_column(Text, default="")
    source_ref: Mapped[str] = mapped_column(Text, default="")
    branch: Mapped[str] = mapped_column(String(300), default="")
    diff: Mapped[str] = mapped_column(Text, default="")
    changed_files: Mapped[list[Any]] = mapped_column(default=list)
    spec_id: Mapped[int | None]  # no FK: specs reference runs, which reference versions
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]


class HeadRow(Base):
    """The canonical pointer of one agent; `revision` makes every move a compare-and-swap."""

    __tablename__ = "heads"
    agent: Mapped[str] = mapped_column(ForeignKey("agents.name"), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"))
    revision: Mapped[int] = mapped_column(default=1)


class HeadMoveRow(Base):
    __tablename__ = "head_moves"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent: Mapped[str] = mapped_column(ForeignKey("agents.name"), index=True)
    from_version_id: Mapped[int | None] = mapped_column(ForeignKey("versions.id"))
    to_version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"))
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class RunRow(Base):
    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"), index=True)
    split: Mapped[str] = mapped_column(String(50))
    repeats: Mapped[int]
    seed: Mapped[int] = mapped_column(BigInteger)
    purpose: Mapped[str] = mapped_column(String(20), default="run")
    status: Mapped[str] = mapped_column(String(20), default="running")
    task_ids: Mapped[list[Any]] = mapped_column(default=list)
    suite: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    owner: Mapped[str | None] = mapped_column(String(200))  # who executes it now: host:pid (a lease)
    heartbeat_at: Mapped[datetime | None]  # the owner's last sign of life
    sampling: Mapped[dict[str, Any] | None]  # temperature, top_p, seeded: are its repeats independent samples?


class TrialRow(Base):
    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("run_id", "task_id", "repeat", "attempt"),
        Index("ix_trials_run_task", "run_id", "task_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    task_id: Mapped[str] = mapped_column(String(300))
    repeat: Mapped[int]
    attempt: Mapped[int] = mapped_column(default=0)
    seed: Mapped[int] = mapped_column(BigInteger)  # 32-bit unsigned: past PostgreSQL's INTEGER
    status: Mapped[str] = mapped_column(String(10))
    score: Mapped[float] = mapped_column(Float, default=0.0)
    output: Mapped[Any] = mapped_column(JSON, nullable=True)
    trace: Mapped[list[Any]] = mapped_column(default=list)
    feedback: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(String(50), default="")
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    tokens: Mapped[int] = mapped_column(default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    notes: Mapped[list[Any] | None] = mapped_column(JSON)  # what was changed to make the record fit
    output_size: Mapped[int | None] = mapped_column(BigInteger)  # the full size of a truncated output


class SymptomRow(Base):
    __tablename__ = "symptoms"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"))
    task_id: Mapped[str] = mapped_column(String(300))
    label: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text)
    evidence: Mapped[list[Any]] = mapped_column(default=list)
    severity: Mapped[str] = mapped_column(String(10))
    critic: Mapped[str] = mapped_column(String(100))


class SpecRow(Base):
    __tablename__ = "specs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent: Mapped[str] = mapped_column(ForeignKey("agents.name"), index=True)
    version_number: Mapped[int]
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    body: Mapped[dict[str, Any]]
    markdown: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GateReportRow(Base):
    __tablename__ = "gate_reports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent: Mapped[str] = mapped_column(ForeignKey("agents.name"), index=True)
    candidate_version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"), index=True)
    base_version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"))
    decision: Mapped[str] = mapped_column(String(20))
    body: Mapped[dict[str, Any]]
    markdown: Mapped[str] = mapped_column(Text)
    policy_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LLMCallRow(Base):
    """Every LLM call: what was asked, what came back, what it cost. Doubles as the response cache."""

    __tablename__ = "llm_calls"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(30))
    model: Mapped[str] = mapped_column(String(200))
    repeat: Mapped[int] = mapped_column(default=0)
    request: Mapped[dict[str, Any]]
    response: Mapped[dict[str, Any]]
    prompt_tokens: Mapped[int] = mapped_column(default=0)
    completion_tokens: Mapped[int] = mapped_column(default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
