"""The gate's evidence and its report: reasons, task rows, bounds, cost, the plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from release_pipeline.models.record import Record
from release_pipeline.models.trials import Sampling, TaskOutcome

REJECTING = ("regression", "protected_regression", "too_few_fixes", "forbidden_change", "intent", "plugin")


UNDECIDING = ("undecided", "budget_exhausted", "errors")


@dataclass(frozen=True, slots=True)
class Reason(Record):
    """Why a gate did not accept a candidate: a stable code for scripts, a sentence for people, the tasks behind it.

    Codes that reject: `regression`, `protected_regression`, `too_few_fixes`, `forbidden_change`, `intent`,
    `plugin` (a plugin's objection). Codes that leave it undecided: `undecided` (a task could not be shown
    safe), `budget_exhausted`, `errors` (a task had no usable trial).
    """

    code: str
    message: str
    tasks: tuple[str, ...] = ()


def decision_of(reasons: list[Reason]) -> str:
    """`rejected` when a reason rejects, `undecided` when one leaves it open, else `accepted`."""
    if any(r.code in REJECTING for r in reasons):
        return "rejected"
    if any(r.code in UNDECIDING for r in reasons):
        return "undecided"
    return "accepted"


@dataclass(frozen=True, slots=True)
class GateDecision(Record):
    """One stored gate report in brief, as the version line in git carries it: report `id`, the versions compared,
    the `decision`, the gate policy's hash and `report_sha256`, the SHA-256 of the report's JSON (keys sorted, no
    spaces), which any copy of the store's report can be checked against."""

    id: int
    agent: str
    base: int
    candidate: int
    decision: Decision
    policy_hash: str
    report_sha256: str
    at: datetime

    @staticmethod
    def digest_of(body: dict[str, Any]) -> str:
        """The SHA-256 of a report's JSON, keys sorted and no spaces: the same bytes for the same report anywhere."""
        import hashlib
        import json

        text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()


Outcome = Literal["fix", "regression", "unchanged", "flaky", "uncertain"]


Decision = Literal["accepted", "rejected", "undecided"]


@dataclass(frozen=True, slots=True)
class TaskRow(Record):
    """One task's evidence in the gate: both versions' outcomes, what they show, and why the gate stopped there.

    `outcome` is `fix`, `regression`, `unchanged`, `flaky` (safe, but not stable) or `uncertain` (not shown safe);
    `safe`: shown free of a drop of `min_effect`; `max_drop`: the largest drop in pass rate not ruled out at
    `max_false_promote`; `candidate_errors_counted`: the candidate's `error` trials were counted as failures.
    """

    task_id: str
    base: TaskOutcome
    candidate: TaskOutcome
    outcome: Outcome
    safe: bool
    max_drop: float
    protected: bool = False
    aligned: bool = False  # in the spec's targets
    errors_counted: bool = field(default=False, metadata={"key": "candidate_errors_counted"})
    why: str = ""  # why more trials were or were not spent on it


@dataclass(frozen=True, slots=True)
class PairedTest(Record):
    """McNemar-style aggregate over tasks (a task passes for a version when most of its trials pass)."""

    pass_to_fail: int
    fail_to_pass: int
    net: int
    p_value: float


@dataclass(frozen=True, slots=True)
class GateEvidence:
    """Everything the gate's checks decide on; plugins receive it through `release_gate_checks`."""

    agent: str
    base: int
    candidate: int
    split: str
    alpha: float
    rows: list[TaskRow]
    protected_tasks: list[str]
    target_tasks: list[str]
    target_tags: list[str]
    changed_files: list[str]
    forbidden_files: list[str]
    base_run: int | None
    candidate_run: int | None
    base_sha: str = ""
    candidate_sha: str = ""
    trials: dict[str, int] = field(default_factory=dict)  # trials the evidence uses, per side
    extra_trials: int = 0
    budget_exhausted: bool = False
    open_fixes: int = 0  # tasks that might still have become fixes when the gate stopped spending
    notes: list[str] = field(default_factory=list)

    def ids(self, outcome: str) -> list[str]:
        return [r.task_id for r in self.rows if r.outcome == outcome]

    @property
    def fixes(self) -> list[str]:
        return self.ids("fix")

    @property
    def regressions(self) -> list[str]:
        return self.ids("regression")

    @property
    def flaky(self) -> list[str]:
        return self.ids("flaky")

    @property
    def uncertain(self) -> list[str]:
        return self.ids("uncertain")

    @property
    def unsafe(self) -> list[str]:
        """Tasks neither shown free of a drop of min_effect nor confirmed as regressions: what leaves it undecided."""
        return [r.task_id for r in self.rows if not r.safe and r.outcome != "regression"]

    @property
    def max_drop(self) -> float:
        """The largest drop in pass rate on any task that the evidence still allows (the promotion bound)."""
        return max((r.max_drop for r in self.rows), default=0.0)


@dataclass(frozen=True, slots=True)
class GateBounds(Record):
    """The error bounds the gate promises and whether the evidence met them (`largest_possible_drop` below
    `min_effect` means the promotion bound held)."""

    min_effect: float
    max_false_promote: float
    max_false_reject: float
    largest_possible_drop: float
    promotion_bound_held: bool


@dataclass(frozen=True, slots=True)
class GateCost(Record):
    """What the evidence cost: trials, tokens and dollars the report uses, and dollars per confirmed fix."""

    trials: int
    tokens: int
    dollars: float
    llm_calls: int
    per_confirmed_fix: float | None = None


@dataclass(frozen=True, slots=True)
class PlanClass(Record):
    """One class of gate tasks in a gate's price: `tasks` of them, with the base's stored pass `rate` range, and the
    expected new trials per task of each side (`base`, `candidate`) and dollars per task to show each safe."""

    name: str
    tasks: int
    rates: str
    base: float
    candidate: float
    dollars: float


@dataclass(frozen=True, slots=True)
class GatePlan(Record):
    """What gating a clean candidate against the canonical version is expected to cost, priced before anything runs.

    `release gate --plan` simulates the gate (its own planner and tests, the pooled budget) `sims` times on
    trials drawn at each task's stored base pass rate, the candidate like the base; `expected` is new trials per
    side, `dollars` at the stored trials' mean cost; `settle_chance` is how often every task was shown safe
    within the budget; `min_effect_affordable` the smallest `min_effect` (of 0.1 to 0.9) settled at least 90 % of
    the time (None: none); `classes` per task class; `notes` what the price assumes or warns of.
    """

    agent: str
    base: int
    tasks: int
    min_effect: float
    budget: int
    sims: int
    expected: dict[str, float] = field(default_factory=dict)
    dollars: float = 0.0
    settle_chance: float = 0.0
    min_effect_affordable: float | None = None
    classes: tuple[PlanClass, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GateReport(Record):
    """A gate's decision on a candidate against the canonical version, with the evidence behind it.

    `decision` is `accepted`, `rejected` or `undecided` (`exit_code` 0, 1, 3); `reason_codes` say why (see
    `Reason`); `fixes`, `regressions`, `unchanged`, `flaky` and `uncertain` list task ids by outcome; `tasks` has
    every task's row with the trial ids behind it. `trials` counts the trials used per side, `spent` those this
    gate ran; `secondary` maps each secondary verifier to its passes per side; `sampling` says per side how the
    agent's model decodes (`repeats_are_copies` when both decode greedily); `price` what a clean candidate's gate
    was expected to cost, priced from the stored history before anything ran; `training` says how a fine-tuned candidate
    was trained (method, base model, summary, TRL's per-step `frac_reward_zero_std`, loss). `id` is the stored
    report's number.
    """

    agent: str
    base: int
    candidate: int
    decision: Decision
    id: int | None = None
    base_sha: str = ""
    candidate_sha: str = ""
    split: str = "gate"
    exit_code: int = 0
    reasons: tuple[str, ...] = ()
    reason_codes: tuple[Reason, ...] = ()
    fixes: tuple[str, ...] = ()
    regressions: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    flaky: tuple[str, ...] = ()
    uncertain: tuple[str, ...] = ()
    aligned_fixes: tuple[str, ...] = ()
    intent_alignment: float | None = None  # share of fixes among the spec's targets
    bounds: GateBounds | None = None
    trials: dict[str, int] = field(default_factory=dict)
    spent: dict[str, int] = field(default_factory=dict)
    paired_test: PairedTest | None = None
    base_run: int | None = None
    candidate_run: int | None = None
    budget_exhausted: bool = False
    changed_files: tuple[str, ...] = ()
    forbidden_files: tuple[str, ...] = ()
    protected_tasks: tuple[str, ...] = ()
    protected_because: dict[str, tuple[str, ...]] = field(default_factory=dict)
    target_tasks: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    secondary: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    sampling: dict[str, Sampling] = field(default_factory=dict)
    repeats_are_copies: bool = False
    cost: GateCost | None = None
    price: GatePlan | None = None  # what the gate was priced at before it ran (see `GatePlan`)
    training: dict[str, Any] = field(default_factory=dict)  # a fine-tuned candidate's method, summary, GRPO zero-std
    policy: dict[str, Any] = field(default_factory=dict)
    policy_hash: str = ""
    tasks: tuple[TaskRow, ...] = ()
