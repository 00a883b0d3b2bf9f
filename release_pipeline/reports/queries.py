"""The read side: the version line, one version in full, and the flip table between two versions."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from release_pipeline.errors import UserError
from release_pipeline.gate.stats import Levels, TaskEvidence, judge_task, largest_drop, sequences_from
from release_pipeline.models import (
    FlipRow,
    FlipTable,
    GateSummary,
    Run,
    Spec,
    VersionDetail,
    VersionEntry,
    VersionInfo,
)
from release_pipeline.trials.jobs import effective, task_outcomes

if TYPE_CHECKING:
    from release_pipeline.config.release_yaml import AgentConfig
    from release_pipeline.workspace import Workspace


def _gate_summary(ws: Workspace, version: VersionInfo) -> GateSummary | None:
    report = ws.store.latest_gate_report(version.agent, version.number)
    if report is None:
        return None
    assert report.id is not None  # a stored report has its id
    return GateSummary(report.id, report.decision, report.base, len(report.fixes), len(report.regressions))


def _spec(ws: Workspace, spec_id: int | None) -> Spec | None:
    return ws.store.spec(spec_id) if spec_id else None


def version_line(ws: Workspace, agent: AgentConfig) -> list[VersionEntry]:
    """Every version of the agent, oldest first, with its latest gate decision."""
    return [VersionEntry(v, _gate_summary(ws, v)) for v in ws.store.versions(agent.name)]


def show_version(ws: Workspace, agent: AgentConfig, version: VersionInfo) -> VersionDetail:
    """One version in full: fields, diff, runs, spec, latest gate report, and the head moves it took part in."""
    diff, changed = ws.store.version_diff(agent.name, version.number)
    vid = ws.store.version_id(agent.name, version.number)
    report = ws.store.latest_gate_report(agent.name, version.number)
    return VersionDetail(
        VersionEntry(version, _gate_summary(ws, version)),
        changed_files=tuple(changed),
        diff=diff,
        runs=tuple(ws.store.runs_of(vid)),
        spec=_spec(ws, version.spec_id),
        gate_report=report,
        gate_markdown="" if report is None or report.id is None else ws.store.gate_report_markdown(report.id),
        head_moves=tuple(
            m for m in ws.store.head_moves(agent.name) if version.number in (m.from_version, m.to_version)
        ),
    )


def flip_table(ws: Workspace, agent: AgentConfig, a: VersionInfo, b: VersionInfo, split: str) -> FlipTable:
    """Task-by-task comparison of the latest complete runs of two versions on one split."""
    runs = []
    for v in (a, b):
        run = ws.store.latest_run(ws.store.version_id(agent.name, v.number), split)
        if run is None:
            raise UserError(
                f"v{v.number} has no complete run on the {split!r} split: run `release run "
                f"--version v{v.number} --split {split}`"
            )
        runs.append(run)
    common = sorted(set(ws.store.run_task_ids(runs[0].id)) & set(ws.store.run_task_ids(runs[1].id)))
    if not common:
        raise UserError(f"v{a.number} and v{b.number} ran no task in common on {split!r}")
    tasks = [t for t in ws.suite(agent).split(split) if t.id in set(common)]
    trials = [ws.store.trials(r.id, with_trace=False) for r in runs]
    repeats = min(runs[0].repeats, runs[1].repeats)
    left, right = (task_outcomes(t, tasks) for t in trials)
    seqs = [sequences_from(effective(t)) for t in trials]
    policy = ws.policy()
    levels = Levels.of(policy, len(tasks))
    rows: list[FlipRow] = []
    counts: dict[str, int] = {}
    for task in tasks:
        evidence = TaskEvidence.of(left[task.id], right[task.id], seqs[0].get(task.id, ()), seqs[1].get(task.id, ()))
        judged = judge_task(evidence, policy, levels)
        counts[judged.outcome] = counts.get(judged.outcome, 0) + 1
        drop = round(largest_drop(evidence.pairs, levels.safety), 3)
        rows.append(FlipRow(task.id, judged.outcome, drop, left[task.id], right[task.id]))  # type: ignore[arg-type]
    return FlipTable(
        agent=agent.name,
        a=a.number,
        b=b.number,
        split=split,
        runs=tuple(r.id for r in runs),
        repeats=repeats,
        counts=counts,
        tasks=tuple(rows),
        fixes=tuple(r.task_id for r in rows if r.outcome == "fix"),
        regressions=tuple(r.task_id for r in rows if r.outcome == "regression"),
    )


def run_trials(ws: Workspace, run_id: int) -> Run:
    """One run and every trial in it (outputs, verdicts, feedback and traces)."""
    run = ws.store.run(run_id)
    records = ws.store.trials(run_id)
    final = effective(records).values()
    counts = {s: sum(1 for t in final if t.status == s) for s in ("pass", "fail", "error")}
    trials = tuple(t.published() for t in records)
    return replace(run, counts=counts, trials=trials)
