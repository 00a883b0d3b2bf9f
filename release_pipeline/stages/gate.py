"""Stage gate: run canonical and candidate on the gate split, compare them task by task, decide.

Both versions run the same tasks with the same seeds. `error` trials are
retried up to the policy's `error_retries` and otherwise excluded. Tasks whose
change is not yet confirmed get extra repeats on both sides, a few at a time,
while more repeats could still confirm it and the extra-trial budget lasts.
Every number in the report points back to the trial ids it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from release_pipeline.errors import UserError
from release_pipeline.models import Task, VersionInfo
from release_pipeline.policy import GatePolicy
from release_pipeline.progress import ProgressFactory, silent
from release_pipeline.reports import gate_markdown, write_report
from release_pipeline.stages.budget import Budget
from release_pipeline.stages.candidate import classify_change
from release_pipeline.stages.gate_stats import GateEvidence, TaskRow, classify, could_confirm
from release_pipeline.stages.run import (
    Job,
    RunSettings,
    effective,
    execute_jobs,
    leased,
    missing_jobs,
    open_run,
    preflight,
    task_outcomes,
)

if TYPE_CHECKING:
    from release_pipeline.config import AgentConfig
    from release_pipeline.workspace import Workspace


ADAPTIVE_STEP = 3
SPLIT = "gate"


@dataclass
class GateResult:
    decision: str
    reasons: list[str]
    evidence: GateEvidence
    report_id: int
    markdown: str
    body: dict[str, Any]

    @property
    def accepted(self) -> bool:
        return self.decision == "accepted"


class _Side:
    """One version's run on the gate split, growing as the gate asks for more trials."""

    def __init__(
        self,
        ws: Workspace,
        agent: AgentConfig,
        version: VersionInfo,
        repeats: int,
        progress: ProgressFactory,
    ):
        self.ws, self.agent, self.version, self.progress, self.repeats = ws, agent, version, progress, repeats
        # any earlier run of this version on the same gate split and seeds is evidence worth keeping
        run, _ = open_run(
            ws, agent, version, split=SPLIT, repeats=repeats, purpose="gate", statuses=(None,), create=False
        )
        self.run_id: int | None = run["id"] if run else None
        self.artifact = ws.materialize(agent, version)
        self.trials = ws.store.trials(self.run_id, with_trace=False) if run else []

    def missing(self, tasks: list[Task], repeats: dict[str, int], retries: int) -> list[Job]:
        done = effective(self.trials)
        return [j for t in tasks for j in missing_jobs([t], range(repeats[t.id]), done, max_attempt=retries)]

    def ensure(self, jobs: list[Job]) -> int:
        """Execute `jobs` (the caller holds the run's lease) and reload the trials, with their ids."""
        if not jobs:
            return 0
        assert self.run_id is not None
        with self.progress(f"gate v{self.version.number}", len(jobs)) as advance:
            settings = RunSettings.of(self.ws, advance)
            execute_jobs(
                self.artifact,
                jobs,
                run_id=self.run_id,
                plugins=self.ws.plugins,
                store=self.ws.store,
                verifiers=self.ws.verifiers,
                settings=settings,
            )
        self.trials = self.ws.store.trials(self.run_id, with_trace=False)
        return len(jobs)

    def fill(self, tasks: list[Task], repeats: dict[str, int], retries: int) -> None:
        """Bring every task to its number of repeats, retrying `error` trials up to `retries` times."""
        if not self.missing(tasks, repeats, retries):
            return
        if self.run_id is None:  # created only once there is something to record
            run, _ = open_run(
                self.ws, self.agent, self.version, split=SPLIT, repeats=self.repeats, purpose="gate", statuses=()
            )
            self.run_id = run["id"]
        with leased(self.ws.store, self.run_id) as lease:
            self.trials = self.ws.store.trials(self.run_id, with_trace=False)  # another gate may have added some
            for _ in range(retries + 1):
                if not self.ensure(self.missing(tasks, repeats, retries)):
                    break
            lease.complete()


def _rows(
    base: _Side,
    cand: _Side,
    tasks: list[Task],
    repeats: dict[str, int],
    policy: GatePolicy,
    protected: set[str],
    targets: set[str],
    target_tags: set[str],
) -> list[TaskRow]:
    rows = []
    base_outcomes = task_outcomes(base.trials, tasks, repeats)
    cand_outcomes = task_outcomes(cand.trials, tasks, repeats)
    for task in tasks:
        b, c = base_outcomes[task.id], cand_outcomes[task.id]
        outcome, p_fix, p_reg = classify(b, c, policy.alpha)
        aligned = task.id in targets or bool(target_tags & set(task.tags))
        rows.append(TaskRow(task.id, b, c, round(p_fix, 6), round(p_reg, 6), outcome, task.id in protected, aligned))
    return rows


def gate_candidate(
    ws: Workspace,
    agent: AgentConfig,
    candidate: VersionInfo,
    *,
    progress: ProgressFactory | None = None,
    budget: Budget | None = None,
) -> GateResult:
    """Gate `candidate` against the canonical head and record the report (and a rejection)."""
    progress = progress or silent
    if candidate.status not in ("candidate", "rejected"):
        raise UserError(f"v{candidate.number} is {candidate.status}, not a candidate")
    base = ws.head(agent)
    notes = [f"v{candidate.number} was built on v{candidate.parent}; gating it against the canonical v{base.number}"]
    notes = notes if candidate.parent != base.number else []
    working = ws
    ws = ws.at_commit(base.git_sha)  # the judge: policy, suite, verifiers and plugins as the canonical commit has them
    agent = ws.agent(agent.name)
    notes += stale_judge_notes(working, ws, agent, base)
    policy = ws.policy()
    tasks = ws.suite(agent).split(SPLIT)
    if not tasks:
        raise UserError(f"suite {agent.suite!r} has no tasks in the gate split")
    spec = ws.store.spec(candidate.spec_id)["body"] if candidate.spec_id else None
    protected = set(policy.protected_tasks) | set(spec["protected_tasks"] if spec else ())
    targets = set(spec["target_tasks"]) if spec else set()
    target_tags = set(spec["target_tags"]) if spec else set()
    _, changed = ws.store.version_diff(agent.name, candidate.number)
    change = classify_change(ws, agent, base, changed)
    if change.forbidden:  # such a candidate never runs, whoever asks
        raise UserError(
            f"v{candidate.number} changes files outside the artifact's editable files "
            f"({', '.join(change.forbidden)}): it is rejected without running"
        )

    sides = [_Side(ws, agent, v, policy.repeats, progress) for v in (base, candidate)]
    repeats = {t.id: policy.repeats for t in tasks}
    reserved, calls_before = 0.0, ws.llm.calls
    for side in sides:
        what = f"gate of {agent.name} v{candidate.number} (with v{side.version.number}'s trials)"
        reserved += preflight(ws, side.artifact, side.missing(tasks, repeats, 0), budget, what, reserved).cost
    for side in sides:
        side.fill(tasks, repeats, policy.error_retries)
    rows = _rows(*sides, tasks, repeats, policy, protected, targets, target_tags)

    extra, exhausted = 0, False
    while True:
        uncertain = [
            r
            for r in rows
            if r.outcome == "uncertain" and could_confirm(r.base, r.candidate, policy.alpha, policy.max_repeats)
        ]
        if not uncertain:
            break
        step = {r.task_id: min(repeats[r.task_id] + ADAPTIVE_STEP, policy.max_repeats) for r in uncertain}
        cost = 2 * sum(n - repeats[t] for t, n in step.items())
        if extra + cost > policy.extra_trial_budget:
            exhausted = True
            break
        repeats.update(step)
        chosen = [t for t in tasks if t.id in step]
        for side in sides:
            side.fill(chosen, repeats, policy.error_retries)
        extra += cost
        rows = _rows(*sides, tasks, repeats, policy, protected, targets, target_tags)

    errors = sum(r.base.errors + r.candidate.errors for r in rows)
    evidence = GateEvidence(
        agent=agent.name,
        base=base.number,
        candidate=candidate.number,
        split=SPLIT,
        alpha=policy.alpha,
        rows=rows,
        protected_tasks=sorted(protected),
        target_tasks=sorted(targets),
        target_tags=sorted(target_tags),
        changed_files=changed,
        forbidden_files=change.forbidden,
        base_run=sides[0].run_id,
        candidate_run=sides[1].run_id,
        extra_trials=extra,
        errors_excluded=errors,
        budget_exhausted=exhausted,
        notes=notes,
    )
    reasons = [r for found in ws.plugins.hook.release_gate_checks(evidence=evidence, policy=policy) for r in found]
    decision = "rejected" if reasons else "accepted"
    body = report_body(evidence, decision, reasons, policy)
    body["cost"] = _cost(sides, rows, evidence.fixes, ws.llm.calls - calls_before)
    markdown = gate_markdown(body)
    report_id = ws.store.save_gate_report(
        agent.name, candidate.number, base.number, decision, body, markdown, policy.digest
    )
    write_report(ws.state_dir, f"{agent.name}-v{candidate.number}-gate-{report_id}", body, markdown)
    if reasons:
        ws.store.set_status(agent.name, candidate.number, "rejected", reasons)
        ws.plugins.hook.release_candidate_rejected(
            version=ws.store.version(agent.name, candidate.number), reasons=reasons
        )
    else:
        ws.store.set_status(
            agent.name,
            candidate.number,
            "candidate",
            [
                f"accepted by gate report #{report_id} against v{base.number}: {len(evidence.fixes)} confirmed fixes, "
                f"{len(evidence.regressions)} confirmed regressions"
            ],
        )
    return GateResult(decision, reasons, evidence, report_id, markdown, body)


def stale_judge_notes(working: Workspace, judge: Workspace, agent: AgentConfig, base: VersionInfo) -> list[str]:
    """Say so when the working tree's policy, suite, config or plugins differ from the ones that judge."""
    differ = []
    for path in sorted(judge.judge_files(agent)):
        ours, theirs = working.source / path, judge.source / path
        if not ours.is_file() or ours.read_bytes() != theirs.read_bytes():
            differ.append(path)
    if not differ:
        return []
    note = (
        f"{', '.join(differ)} in the working tree differ from canonical v{base.number}'s commit "
        f"({base.git_sha[:10]}), which is what judges this candidate"
    )
    return [note]


def _cost(sides: list[_Side], rows: list[TaskRow], fixes: list[str], llm_calls: int) -> dict[str, Any]:
    """What the evidence cost: tokens and dollars of the trials the report uses, and per confirmed fix."""
    used = {i for r in rows for i in (*r.base.trial_ids, *r.candidate.trial_ids)}
    trials = [t for side in sides for t in side.trials if t.id in used]
    dollars = sum(t.cost for t in trials)
    return {
        "trials": len(trials),
        "tokens": sum(t.tokens for t in trials),
        "dollars": round(dollars, 6),
        "llm_calls": llm_calls,
        "per_confirmed_fix": round(dollars / len(fixes), 6) if fixes else None,
    }


def report_body(evidence: GateEvidence, decision: str, reasons: list[str], policy: GatePolicy) -> dict[str, Any]:
    """The JSON gate report: decision, reasons, flips, statistics, and the trial ids behind each row."""
    rows = []
    for r in evidence.rows:
        rows.append(
            {
                "task_id": r.task_id,
                "outcome": r.outcome,
                "protected": r.protected,
                "aligned": r.aligned,
                "p_fix": r.p_fix,
                "p_regression": r.p_regression,
                "base": r.base.to_dict(),
                "candidate": r.candidate.to_dict(),
            }
        )
    fixes = evidence.fixes
    return {
        "agent": evidence.agent,
        "base": evidence.base,
        "candidate": evidence.candidate,
        "split": evidence.split,
        "decision": decision,
        "reasons": reasons,
        "fixes": fixes,
        "regressions": evidence.regressions,
        "flaky": evidence.flaky,
        "no_data": evidence.ids("no_data"),
        "aligned_fixes": [r.task_id for r in evidence.rows if r.outcome == "fix" and r.aligned],
        "intent_alignment": (
            round(sum(1 for r in evidence.rows if r.outcome == "fix" and r.aligned) / len(fixes), 4) if fixes else None
        ),
        "paired_test": evidence.paired_test(),
        "base_run": evidence.base_run,
        "candidate_run": evidence.candidate_run,
        "extra_trials": evidence.extra_trials,
        "errors_excluded": evidence.errors_excluded,
        "budget_exhausted": evidence.budget_exhausted,
        "changed_files": evidence.changed_files,
        "forbidden_files": evidence.forbidden_files,
        "protected_tasks": evidence.protected_tasks,
        "target_tasks": evidence.target_tasks,
        "notes": evidence.notes,
        "policy": policy.to_dict(),
        "policy_hash": policy.digest,
        "tasks": rows,
    }
