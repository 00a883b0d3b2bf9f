"""The read side: the version line, one version in full, and the flip table between two versions."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from release_pipeline.errors import UserError
from release_pipeline.gitops import version_tag
from release_pipeline.models import VersionInfo
from release_pipeline.stages.gate_stats import Levels, judge_task, largest_drop, usable
from release_pipeline.stages.run import task_outcomes

if TYPE_CHECKING:
    from release_pipeline.config import AgentConfig
    from release_pipeline.workspace import Workspace


def _version_dict(v: VersionInfo) -> dict[str, Any]:
    data = asdict(v)
    data["created_at"] = v.created_at.isoformat(timespec="seconds")
    data["reasons"] = list(v.reasons)
    data["tag"] = version_tag(v.agent, v.number) if v.status in ("canonical", "retired") else None
    return data


def version_line(ws: Workspace, agent: AgentConfig) -> list[dict[str, Any]]:
    """Every version of the agent, oldest first, with its latest gate decision."""
    rows = []
    for v in ws.store.versions(agent.name):
        data = _version_dict(v)
        report = ws.store.latest_gate_report(agent.name, v.number)
        data["gate"] = (
            None
            if report is None
            else {
                "report": report["id"],
                "decision": report["decision"],
                "against": report["base"],
                "fixes": len(report["body"]["fixes"]),
                "regressions": len(report["body"]["regressions"]),
            }
        )
        rows.append(data)
    return rows


def show_version(ws: Workspace, agent: AgentConfig, version: VersionInfo) -> dict[str, Any]:
    """One version in full: fields, diff, runs, spec, latest gate report, and the head moves it took part in."""
    data = _version_dict(version)
    diff, changed = ws.store.version_diff(agent.name, version.number)
    data["changed_files"], data["diff"] = changed, diff
    vid = ws.store.version_id(agent.name, version.number)
    data["runs"] = [
        {k: (str(v) if k.endswith("_at") else v) for k, v in r.items() if k != "task_ids"}
        for r in ws.store.runs_of(vid)
    ]
    data["spec"] = ws.store.spec(version.spec_id) if version.spec_id else None
    report = ws.store.latest_gate_report(agent.name, version.number)
    data["gate_report"] = (
        None
        if report is None
        else {
            "id": report["id"],
            "decision": report["decision"],
            "against": report["base"],
            "body": report["body"],
            "markdown": report["markdown"],
        }
    )
    data["head_moves"] = [
        {**asdict(m), "at": m.at.isoformat(timespec="seconds")}
        for m in ws.store.head_moves(agent.name)
        if version.number in (m.from_version, m.to_version)
    ]
    return data


def flip_table(ws: Workspace, agent: AgentConfig, a: VersionInfo, b: VersionInfo, split: str) -> dict[str, Any]:
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
    common = sorted(set(runs[0]["task_ids"]) & set(runs[1]["task_ids"]))
    if not common:
        raise UserError(f"v{a.number} and v{b.number} ran no task in common on {split!r}")
    tasks = [t for t in ws.suite(agent).split(split) if t.id in set(common)]
    trials = [ws.store.trials(r["id"], with_trace=False) for r in runs]
    repeats = min(runs[0]["repeats"], runs[1]["repeats"])
    left, right = (task_outcomes(t, tasks) for t in trials)
    policy = ws.policy()
    levels = Levels.of(policy, len(tasks))
    rows: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for task in tasks:
        judged = judge_task(left[task.id], right[task.id], policy, levels)
        counts[judged.outcome] = counts.get(judged.outcome, 0) + 1
        rows.append(
            {
                "task_id": task.id,
                "outcome": judged.outcome,
                "max_drop": round(largest_drop(*usable(left[task.id], right[task.id])[:2], levels.safety), 3),
                "base": left[task.id].to_dict(),
                "candidate": right[task.id].to_dict(),
            }
        )
    return {
        "agent": agent.name,
        "a": a.number,
        "b": b.number,
        "split": split,
        "runs": [r["id"] for r in runs],
        "repeats": repeats,
        "counts": counts,
        "tasks": rows,
        "fixes": [r["task_id"] for r in rows if r["outcome"] == "fix"],
        "regressions": [r["task_id"] for r in rows if r["outcome"] == "regression"],
    }


def run_trials(ws, run_id: int) -> dict[str, Any]:
    """One run and every trial in it (outputs, verdicts, feedback and traces)."""
    run = ws.store.run(run_id)
    trials = [
        {
            "id": t.id,
            "task_id": t.task_id,
            "repeat": t.repeat,
            "attempt": t.attempt,
            "seed": t.seed,
            "status": t.status,
            "score": t.score,
            "reason": t.reason,
            "feedback": t.feedback,
            "output": t.output,
            "trace": t.trace,
            "latency_ms": round(t.latency_ms, 3),
            "tokens": t.tokens,
            "cost": t.cost,
            "notes": t.notes,
            "output_size": t.output_size,
        }
        for t in ws.store.trials(run_id)
    ]
    return {**{k: (str(v) if k.endswith("_at") else v) for k, v in run.items()}, "trials": trials}
