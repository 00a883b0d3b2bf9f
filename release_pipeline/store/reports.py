"""What the store keeps of what the stages conclude: the critic's symptoms, specs, and gate reports."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, cast

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from release_pipeline.errors import NotFoundError
from release_pipeline.models import Decision, GateDecision, GateReport, Severity, Spec, Symptom
from release_pipeline.store.base import StoreBase
from release_pipeline.store.schema import GateReportRow, SpecRow, SymptomRow
from release_pipeline.store.versions import _version_numbers, version_row


class ReportStore(StoreBase):
    """Symptoms by run, specs by version, gate reports by candidate."""

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

    def spec(self, spec_id: int) -> Spec:
        with self.reading() as s:
            row = s.get(SpecRow, spec_id)
            if row is None:
                raise NotFoundError(f"no spec #{spec_id}")
            return Spec.from_dict({**row.body, "id": row.id})

    def latest_spec(self, agent: str, version: int) -> Spec | None:
        """The newest spec written for `agent`'s version `version`."""
        with self.reading() as s:
            row = s.scalar(
                select(SpecRow)
                .where(SpecRow.agent == agent, SpecRow.version_number == version)
                .order_by(SpecRow.id.desc())
                .limit(1)
            )
            return Spec.from_dict({**row.body, "id": row.id}) if row else None

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
                candidate_version_id=version_row(s, agent, candidate).id,
                base_version_id=version_row(s, agent, base).id,
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

    def latest_gate_report(self, agent: str, candidate: int) -> GateReport | None:
        """The newest gate report of `agent`'s version `candidate`."""
        with self.reading() as s:
            row = _latest_report(s, agent, candidate)
            return GateReport.from_dict({**row.body, "id": row.id}) if row else None

    def gate_report_markdown(self, report_id: int) -> str:
        """A gate report as it was rendered when it was recorded."""
        with self.reading() as s:
            row = s.get(GateReportRow, report_id)
            if row is None:
                raise NotFoundError(f"no gate report #{report_id}")
            return row.markdown


def _latest_report(s: Session, agent: str, candidate: int) -> GateReportRow | None:
    cid = version_row(s, agent, candidate).id
    return s.scalar(
        select(GateReportRow)
        .where(GateReportRow.candidate_version_id == cid)
        .order_by(GateReportRow.id.desc())
        .limit(1)
    )
