"""Stage gate: run canonical and candidate on the gate split, compare them task by task, decide.

The gate's trials are planned by `stages/gate_plan.py` and judged by the tests of `stages/gate_stats.py`:
every task starts with `repeats` trials a side (the canonical version's stored trials count, and grow with
every gate), and gets more only where they can settle it. `error` trials are retried as new attempts (a new
seed, the attempt number in `ctx.attempt`) up to the policy's `error_retries`; errors only the candidate
makes count against it. The decision is `accepted`, `rejected` or `undecided`, each with reason codes, and
every number in the report points back to the trial ids it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from release_pipeline.config.policy import GatePolicy
from release_pipeline.config.weights import read_weights
from release_pipeline.errors import PluginFailed, UserError
from release_pipeline.gate.cost import price_gate
from release_pipeline.gate.plan import Planned, plan_and_judge
from release_pipeline.gate.stats import Sequences, paired_test, sequences_from
from release_pipeline.models import (
    Artifact,
    GateBounds,
    GateCost,
    GateEvidence,
    GatePlan,
    GateReport,
    Reason,
    Sampling,
    Spec,
    Task,
    TaskOutcome,
    TaskRow,
    VersionInfo,
    decision_of,
)
from release_pipeline.notices import say
from release_pipeline.progress import ProgressFactory, silent
from release_pipeline.reports.markdown import gate_markdown, write_report
from release_pipeline.sandbox.pool import kept_pools
from release_pipeline.stages.candidate import classify_change
from release_pipeline.stages.run import open_run
from release_pipeline.trials.budget import Budget
from release_pipeline.trials.jobs import Job, effective, missing_jobs, task_outcomes
from release_pipeline.trials.secondary import secondary_scores

if TYPE_CHECKING:
    from release_pipeline.config.release_yaml import AgentConfig
    from release_pipeline.workspace import Workspace


SPLIT = "gate"
EXIT_CODES = {"accepted": 0, "rejected": 1, "undecided": 3}


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
        self.run_id: int | None = run.id if run else None
        self.artifact = ws.materialize(agent, version)
        self.trials = ws.store.trials(self.run_id, with_trace=False) if self.run_id is not None else []

    def missing(self, tasks: list[Task], repeats: dict[str, int], retries: int) -> list[Job]:
        done = effective(self.trials)
        return [j for t in tasks for j in missing_jobs([t], range(repeats[t.id]), done, max_attempt=retries)]

    def fill(self, tasks: list[Task], repeats: dict[str, int], retries: int) -> int:
        """Bring every task to its number of repeats, retrying `error` trials up to `retries` times.

        Returns how many trials were executed.
        """
        if not self.missing(tasks, repeats, retries):
            return 0
        if self.run_id is None:  # created only once there is something to record (or found: another gate's)
            run, _ = open_run(
                self.ws, self.agent, self.version, split=SPLIT, repeats=self.repeats, purpose="gate", statuses=(None,)
            )
            assert run is not None
            self.run_id = run.id
        run_id = self.run_id

        def jobs_of() -> list[Job]:  # reloaded each round: another gate may have added some
            self.trials = self.ws.store.trials(run_id, with_trace=False)
            return self.missing(tasks, repeats, retries)

        label = f"gate v{self.version.number}"
        executed = self.ws.engine.execute(self.artifact, run_id, jobs_of, self.progress, label, rounds=retries + 1)
        self.trials = self.ws.store.trials(run_id, with_trace=False)
        return executed

    def record_repeats(self) -> None:
        """Let the run say how far it went: the most repeats any task of it has now."""
        if self.run_id is not None and self.trials:
            self.ws.store.record_repeats(self.run_id, max(t.repeat for t in self.trials) + 1)


class StoreSource:
    """The gate's trials as the store has them, executed through the workspace's executor when more are asked for."""

    def __init__(self, sides: dict[str, _Side], tasks: list[Task], retries: int, limit: int | None = None):
        self.sides, self.tasks, self.retries, self.limit = sides, tasks, retries, limit
        self.spent = {name: 0 for name in sides}

    def outcomes(self) -> dict[str, dict[str, TaskOutcome]]:
        """Every task's outcome per side (over the first `limit` repeats, when repeats beyond are copies)."""
        return {name: task_outcomes(side.trials, self.tasks, self.limit) for name, side in self.sides.items()}

    def sequences(self) -> Sequences:
        """Every task's statuses by repeat index per side (the effective attempt of each repeat)."""
        return {name: sequences_from(effective(side.trials), self.limit) for name, side in self.sides.items()}

    def extend(self, wanted: dict[str, dict[str, int]]) -> None:
        for name, per_task in wanted.items():
            if per_task:
                chosen = [t for t in self.tasks if t.id in per_task]
                self.spent[name] += self.sides[name].fill(chosen, per_task, self.retries)


@dataclass
class GateSetup:
    """What a gate is judged by: the canonical commit's workspace, its policy, the gate tasks, and the spec."""

    ws: Workspace  # the judge: policy, suite, verifiers and plugins as the canonical commit has them
    agent: AgentConfig
    base: VersionInfo
    candidate: VersionInfo
    policy: GatePolicy
    tasks: list[Task]
    spec: Spec | None
    changed: list[str]
    notes: list[str]

    def spec_ids(self, key: str) -> set[str]:
        return set(getattr(self.spec, key)) if self.spec else set()

    @property
    def task_ids(self) -> set[str]:
        return {t.id for t in self.tasks}

    def protected(self, passing: set[str]) -> set[str]:
        """Protected tasks: named by the policy or the spec, or always passed by the canonical version."""
        return set(self.policy.protected_tasks) | self.spec_ids("protected_tasks") | passing


def prepare_gate(working: Workspace, agent: AgentConfig, candidate: VersionInfo) -> GateSetup:
    """Check the candidate may be gated, and gather what judges it from the canonical commit."""
    if candidate.status not in ("candidate", "rejected"):
        raise UserError(f"v{candidate.number} is {candidate.status}, not a candidate")
    base = working.head(agent)
    notes = [f"v{candidate.number} was built on v{candidate.parent}; gating it against the canonical v{base.number}"]
    notes = notes if candidate.parent != base.number else []
    ws = working.at_commit(base.git_sha)
    agent = ws.agent(agent.name)
    notes += stale_judge_notes(working, ws, agent, base)
    notes += [ws.unisolated] if ws.unisolated else []
    tasks = ws.suite(agent).split(SPLIT)
    if not tasks:
        raise UserError(f"suite {agent.suite!r} has no tasks in the gate split")
    _, changed = ws.store.version_diff(agent.name, candidate.number)
    forbidden = classify_change(ws, agent, base, changed).forbidden
    if forbidden:  # such a candidate never runs, whoever asks
        raise UserError(
            f"v{candidate.number} changes files outside the artifact's editable files "
            f"({', '.join(forbidden)}): it is rejected without running"
        )
    spec = ws.store.spec(candidate.spec_id) if candidate.spec_id else None
    return GateSetup(ws, agent, base, candidate, ws.policy(), tasks, spec, changed, notes)


def plan_gate(ws: Workspace, agent: AgentConfig, *, sweep: bool = True) -> GatePlan:
    """Price gating a clean candidate against the canonical version, from the stored history, before anything runs."""
    base = ws.head(agent)
    judge = ws.at_commit(base.git_sha)
    agent = judge.agent(agent.name)
    tasks = judge.suite(agent).split(SPLIT)
    if not tasks:
        raise UserError(f"suite {agent.suite!r} has no tasks in the gate split")
    policy = judge.policy()
    return _price(judge, agent, base, tasks, policy, sweep)


def _price(
    ws: Workspace, agent: AgentConfig, base: VersionInfo, tasks: list[Task], policy: GatePolicy, sweep: bool
) -> GatePlan:
    run, _ = open_run(
        ws, agent, base, split=SPLIT, repeats=policy.repeats, purpose="gate", statuses=(None,), create=False
    )
    trials = ws.store.trials(run.id, with_trace=False) if run else []
    stored = sequences_from(effective(trials))
    history = {t.id: stored.get(t.id, ()) for t in tasks}
    costs: dict[str, list[float]] = {}
    for t in trials:
        costs.setdefault(t.task_id, []).append(t.cost)
    overall = [c for cs in costs.values() for c in cs]
    mean = sum(overall) / len(overall) if overall else 0.0
    per_trial = {t.id: sum(costs[t.id]) / len(costs[t.id]) if costs.get(t.id) else mean for t in tasks}
    plan = price_gate(agent.name, base.number, history, per_trial, policy, sweep=sweep)
    if not trials:
        plan = replace(plan, notes=(*plan.notes, "no stored gate trials of the canonical version: every task is "
                                    "priced as a coin (0.5), and dollars as 0"))  # fmt: skip
    return plan


def gate_candidate(
    ws: Workspace,
    agent: AgentConfig,
    candidate: VersionInfo,
    *,
    progress: ProgressFactory | None = None,
    budget: Budget | None = None,
) -> GateReport:
    """Gate `candidate` against the canonical head and record the report (and a rejection)."""
    setup = prepare_gate(ws, agent, candidate)
    repeats = setup.policy.repeats
    sides = {
        "base": _Side(setup.ws, setup.agent, setup.base, repeats, progress or silent),
        "candidate": _Side(setup.ws, setup.agent, candidate, repeats, progress or silent),
    }
    sampling = {name: Sampling.of(side.artifact.manifest) for name, side in sides.items()}
    copies = all(s.greedy for s in sampling.values())
    if copies:
        setup.notes.append(
            "both versions decode greedily: repeats are copies, so each task is one observation a side and a "
            "flip is taken as seen; the error-rate bounds hold only for this deterministic setting"
        )
    price = None if copies else _price_before_running(setup)
    calls_before = setup.ws.llm.calls
    with kept_pools():  # each side's sandboxed workers serve every round, and stop with the gate
        source, planned, passing = gather_trials(setup, sides, copies, budget)
    evidence = gate_evidence(setup, sides, planned, passing)
    reasons = gate_reasons(setup, evidence)
    report = replace(
        report_of(evidence, decision_of(reasons), reasons, setup.policy, planned, source.spent),
        protected_because={
            "policy": tuple(sorted(set(setup.policy.protected_tasks) & setup.task_ids)),
            "spec": tuple(sorted(setup.spec_ids("protected_tasks") & setup.task_ids)),
            "canonical_always_passed": tuple(sorted(passing)),
        },
        secondary=secondary_by_side(setup, sides, planned.rows),
        sampling=sampling,
        repeats_are_copies=copies,
        cost=_cost(list(sides.values()), planned.rows, evidence.fixes, setup.ws.llm.calls - calls_before),
        price=price,
        training=training_of(sides["candidate"].artifact),
    )
    return record_decision(setup, reasons, evidence, report)


def _price_before_running(setup: GateSetup) -> GatePlan:
    """The gate priced from the stored history; said before paying when the budget cannot be expected to settle
    the suite."""
    price = _price(setup.ws, setup.agent, setup.base, setup.tasks, setup.policy, sweep=False)
    unpriced = any(n.startswith("no stored gate trials") for n in price.notes)
    for note in [] if unpriced else [n for n in price.notes if n.startswith("the budget")]:
        say(f"gate: {note}")
        setup.notes.append(f"priced before running: {note}")
    return price


def gate_reasons(setup: GateSetup, evidence: GateEvidence) -> list[Reason]:
    """Every `release_gate_checks` implementation's reasons not to accept (a plain string rejects as `plugin`)."""
    try:
        found = setup.ws.plugins.hook.release_gate_checks(evidence=evidence, policy=setup.policy)
    except Exception as exc:  # a plugin's bug is not a rejection: its own exit code, nothing recorded
        raise PluginFailed("release_gate_checks", exc) from exc
    return [r if isinstance(r, Reason) else Reason("plugin", str(r)) for answer in found for r in answer]


def gather_trials(
    setup: GateSetup, sides: dict[str, _Side], copies: bool, budget: Budget | None
) -> tuple[StoreSource, Planned, set[str]]:
    """Price the first trials, run and plan the rest, and classify every task (protecting what always passed)."""
    policy, tasks = setup.policy, setup.tasks
    first = {t.id: 1 if copies else policy.repeats for t in tasks}
    reserved = 0.0
    for side in sides.values():
        what = f"gate of {setup.agent.name} v{setup.candidate.number} (with v{side.version.number}'s trials)"
        reserved += setup.ws.engine.preflight(side.artifact, side.missing(tasks, first, 0), budget, what, reserved).cost
    source = StoreSource(sides, tasks, policy.error_retries, 1 if copies else None)
    passing = reliably_passing(source, first) if policy.protect_passing else set()
    protected = setup.protected(passing)
    targets, tags = setup.spec_ids("target_tasks"), setup.spec_ids("target_tags")
    aligned = {t.id for t in tasks if t.id in targets or tags & set(t.tags)}
    planned = plan_and_judge(tasks, source, policy, protected=protected, aligned=aligned, copies=copies)
    for side in sides.values():
        side.record_repeats()
    return source, planned, passing


def gate_evidence(setup: GateSetup, sides: dict[str, _Side], planned: Planned, passing: set[str]) -> GateEvidence:
    """The evidence the gate checks read: every task's row, what is protected and targeted, what was spent."""
    protected = setup.protected(passing)
    rows = planned.rows
    return GateEvidence(
        agent=setup.agent.name,
        base=setup.base.number,
        candidate=setup.candidate.number,
        split=SPLIT,
        alpha=setup.policy.alpha,
        rows=rows,
        protected_tasks=sorted(protected & setup.task_ids),
        target_tasks=sorted(setup.spec_ids("target_tasks")),
        target_tags=sorted(setup.spec_ids("target_tags")),
        changed_files=setup.changed,
        forbidden_files=[],
        base_run=sides["base"].run_id,
        candidate_run=sides["candidate"].run_id,
        base_sha=setup.base.git_sha,
        candidate_sha=setup.candidate.git_sha,
        trials={
            "base": sum(r.base.trials + r.base.errors for r in rows),
            "candidate": sum(r.candidate.trials + r.candidate.errors for r in rows),
        },
        extra_trials=planned.extra_trials,
        budget_exhausted=planned.budget_exhausted,
        open_fixes=planned.open_fixes,
        notes=setup.notes,
    )


def secondary_by_side(setup: GateSetup, sides: dict[str, _Side], rows: list[TaskRow]) -> dict[str, Any]:
    """Each secondary verifier's passes per side, over the trials the report uses."""
    suite = setup.ws.suite(setup.agent)
    used = {i for r in rows for i in (*r.base.trial_ids, *r.candidate.trial_ids)}
    per_side = {
        name: secondary_scores(setup.ws, suite, [t for t in side.trials if t.id in used])
        for name, side in sides.items()
    }
    return {n: {side: per_side[side][n] for side in sides} for n in per_side["base"]}


def record_decision(setup: GateSetup, reasons: list[Reason], evidence: GateEvidence, report: GateReport) -> GateReport:
    """Store the report (and its files), set the candidate's status, and tell the plugins of a rejection."""
    ws, agent, number, decision = setup.ws, setup.agent.name, setup.candidate.number, report.decision
    body = report.to_dict()
    del body["id"]  # the store numbers it
    markdown = gate_markdown(body)
    report_id = ws.store.save_gate_report(
        agent, number, setup.base.number, decision, body, markdown, setup.policy.digest
    )
    write_report(ws.state_dir, f"{agent}-v{number}-gate-{report_id}", body, markdown)
    prose = [r.message for r in reasons]
    if decision == "rejected":
        ws.store.set_status(agent, number, "rejected", prose)
        ws.plugins.hook.release_candidate_rejected(version=ws.store.version(agent, number), reasons=prose)
    elif decision == "undecided":
        ws.store.set_status(agent, number, "candidate", [f"undecided by gate report #{report_id}", *prose])
    else:
        accepted = (
            f"accepted by gate report #{report_id} against v{setup.base.number}: {len(evidence.fixes)} confirmed "
            f"fixes, {len(evidence.regressions)} confirmed regressions"
        )
        ws.store.set_status(agent, number, "candidate", [accepted])
    return replace(report, id=report_id)


def training_of(artifact: Artifact) -> dict[str, Any]:
    """What the report says of a fine-tuned candidate's training (nothing for any other candidate)."""
    weights = read_weights(artifact.path)
    if weights is None:
        return {}
    return {
        "method": weights.method,
        "base_model": weights.base_model,
        "adapter": weights.adapter,
        "summary": weights.summary,
        "loss": [s["loss"] for s in weights.log if "loss" in s],
        "frac_reward_zero_std": [s["frac_reward_zero_std"] for s in weights.log if "frac_reward_zero_std" in s],
    }


def reliably_passing(source: StoreSource, first: dict[str, int]) -> set[str]:
    """Gate tasks the canonical version passed on every one of at least its first repeats (run now if missing)."""
    source.extend({"base": first})
    return {t for t, o in source.outcomes()["base"].items() if o.trials >= first[t] and o.passes == o.trials}


def stale_judge_notes(working: Workspace, judge: Workspace, agent: AgentConfig, base: VersionInfo) -> list[str]:
    """Say so when the working tree's policy, suite, config or plugins differ from the ones that judge."""
    differ = []
    for path in sorted(judge.judge_files(agent)):
        ours, theirs = working.source / path, judge.source / path
        if not theirs.is_file():  # not a file (a suite such as `bfcl:...` is built from packaged data)
            continue
        if not ours.is_file() or ours.read_bytes() != theirs.read_bytes():
            differ.append(path)
    if not differ:
        return []
    note = (
        f"{', '.join(differ)} in the working tree differ from canonical v{base.number}'s commit "
        f"({base.git_sha[:10]}), which is what judges this candidate"
    )
    return [note]


def _cost(sides: list[_Side], rows: list[TaskRow], fixes: list[str], llm_calls: int) -> GateCost:
    """What the evidence cost: tokens and dollars of the trials the report uses, and per confirmed fix."""
    used = {i for r in rows for i in (*r.base.trial_ids, *r.candidate.trial_ids)}
    trials = [t for side in sides for t in side.trials if t.id in used]
    dollars = sum(t.cost for t in trials)
    return GateCost(
        trials=len(trials),
        tokens=sum(t.tokens for t in trials),
        dollars=round(dollars, 6),
        llm_calls=llm_calls,
        per_confirmed_fix=round(dollars / len(fixes), 6) if fixes else None,
    )


def report_of(
    evidence: GateEvidence,
    decision: str,
    reasons: list[Reason],
    policy: GatePolicy,
    planned: Planned,
    spent: dict[str, int],
) -> GateReport:
    """The gate report: decision, reason codes, per-task classes, bounds, and the trial ids behind each row."""
    fixes = evidence.fixes
    aligned = [r.task_id for r in evidence.rows if r.outcome == "fix" and r.aligned]
    return GateReport(
        agent=evidence.agent,
        base=evidence.base,
        candidate=evidence.candidate,
        decision=decision,  # type: ignore[arg-type]  # decision_of answers one of the three
        base_sha=evidence.base_sha,
        candidate_sha=evidence.candidate_sha,
        split=evidence.split,
        exit_code=EXIT_CODES[decision],
        reasons=tuple(r.message for r in reasons),
        reason_codes=tuple(reasons),
        fixes=tuple(fixes),
        regressions=tuple(evidence.regressions),
        unchanged=tuple(evidence.ids("unchanged")),
        flaky=tuple(evidence.flaky),
        uncertain=tuple(evidence.uncertain),
        aligned_fixes=tuple(aligned),
        intent_alignment=round(len(aligned) / len(fixes), 4) if fixes else None,
        bounds=GateBounds(
            policy.min_effect,
            policy.max_false_promote,
            policy.max_false_reject,
            evidence.max_drop,
            evidence.max_drop < policy.min_effect,
        ),
        trials=evidence.trials,
        spent={**spent, "extra": evidence.extra_trials, "rounds": planned.rounds},
        paired_test=paired_test(evidence.rows),
        base_run=evidence.base_run,
        candidate_run=evidence.candidate_run,
        budget_exhausted=evidence.budget_exhausted,
        changed_files=tuple(evidence.changed_files),
        forbidden_files=tuple(evidence.forbidden_files),
        protected_tasks=tuple(evidence.protected_tasks),
        target_tasks=tuple(evidence.target_tasks),
        notes=tuple(evidence.notes),
        policy=policy.to_dict(),
        policy_hash=policy.digest,
        tasks=tuple(evidence.rows),
    )
