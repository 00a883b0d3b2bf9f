"""Plain data objects that flow between stages and plugins, and out of every `--json` command.

Plugins only ever see these: never a database session, never an ORM row. The records a plugin or a CLI user
receives (`Record` subclasses: versions, head moves, runs, trials, symptoms, specs, candidates, gate reports)
are frozen, and `to_dict()` is their JSON shape: `docs/json.md` is generated from them
(`python -m release_pipeline.reports.json_shapes`), and a test fails when a record changes and the page does not.
"""

from __future__ import annotations

import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, Union

TrialStatus = Literal["pass", "fail", "error"]
VersionStatus = Literal["canonical", "candidate", "rejected", "retired"]
Severity = Literal["low", "medium", "high"]
MoveKind = Literal["init", "promote", "rollback", "repair"]
SPLITS = ("dev", "gate", "holdout")

R = TypeVar("R", bound="Record")


class Record:
    """A record with a stable JSON shape: `to_dict()` out, `from_dict()` back.

    A field's JSON key is its name, or `metadata={"key": ...}` where the name cannot be (`class`). Fields named
    in `FLATTEN` (records themselves) put their keys beside the record's own; properties in `COMPUTED` are written
    too and ignored when read back.
    """

    __slots__ = ()
    FLATTEN: ClassVar[tuple[str, ...]] = ()
    COMPUTED: ClassVar[dict[str, str]] = {}  # JSON key -> property

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = plain(getattr(self, f.name))
            if f.name in self.FLATTEN:
                out.update(value)
            else:
                out[f.metadata.get("key", f.name)] = value
        for key, name in self.COMPUTED.items():
            out[key] = plain(getattr(self, name))
        return out

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any]) -> R:
        """The record a `to_dict()` wrote (keys it does not know are ignored; missing ones take their defaults)."""
        hints = typing.get_type_hints(cls)
        values = {}
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name in cls.FLATTEN:
                values[f.name] = _typed(hints[f.name], data)
                continue
            key = f.metadata.get("key", f.name)
            if key in data:
                values[f.name] = _typed(hints[f.name], data[key])
            elif f.default is MISSING and f.default_factory is MISSING:
                raise ValueError(f"{cls.__name__}: {key!r} is missing")
        return cls(**values)


def plain(value: Any) -> Any:
    """`value` as JSON can hold it: records as dicts, tuples as lists, datetimes as ISO strings."""
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def _typed(hint: Any, value: Any) -> Any:
    """`value` read back as `hint` asks: nested records, tuples of them, datetimes."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if value is None:
        return None
    if origin in (Union, types.UnionType):
        return next((_typed(a, value) for a in args if a is not type(None)), value)
    if isinstance(hint, type) and issubclass(hint, Record):
        return hint.from_dict(value)
    if hint is datetime:
        return datetime.fromisoformat(value) if isinstance(value, str) else value
    if origin is tuple:
        return tuple(_typed(args[0], v) for v in value)
    if origin is list:
        return [_typed(args[0], v) for v in value]
    if origin is dict and len(args) == 2:
        return {k: _typed(args[1], v) for k, v in value.items()}
    return value


@dataclass(frozen=True, slots=True)
class Task:
    """One task of a suite: an input for the agent and how to judge its answer."""

    id: str
    input: Any
    split: str
    expected: Any = None
    verifier: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Suite:
    """A named set of tasks with a rubric the critic may read."""

    name: str
    tasks: tuple[Task, ...]
    rubric: str = ""
    source: str = ""
    secondary: tuple[dict[str, Any], ...] = ()  # verifiers reported beside the primary one, never deciding

    def split(self, name: str) -> list[Task]:
        """The tasks of one split, in suite order."""
        return [t for t in self.tasks if t.split == name]

    def fingerprint(self, split: str) -> str:
        """A digest of one split's tasks (inputs, expected values, verifiers): runs are reused only while it holds."""
        import hashlib
        import json

        blob = json.dumps(
            [[t.id, t.input, t.expected, t.verifier] for t in self.split(split)], sort_keys=True, default=str
        )
        return f"{self.name}@{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


@dataclass(slots=True)
class Verdict:
    """A verifier's judgement. `reason` is a short machine-readable code.

    Codes used by the built-in verifiers: `ok`, `mismatch`, `empty`,
    `unparseable`, `schema_violation`, `verifier_error`.
    """

    passed: bool
    score: float
    feedback: str = ""
    reason: str = "ok"


@dataclass(slots=True)
class AgentResult:
    """What an agent adapter returns for one task.

    `notes`, `output_size` and `unrecordable` are set by an adapter whose agent's answer was already made
    fit for the record elsewhere (the sandboxed worker): what was changed, the full size of a truncated
    output, and why the answer itself could not be kept.
    """

    output: Any
    trace: list[dict[str, Any]] = field(default_factory=list)
    tokens: int = 0
    cost: float = 0.0
    notes: list[str] = field(default_factory=list)
    output_size: int | None = None
    unrecordable: str = ""


@dataclass(slots=True)
class TrialRecord:
    """One execution of one task by one version: the unit of evidence."""

    run_id: int
    task_id: str
    repeat: int
    seed: int
    status: TrialStatus
    score: float = 0.0
    output: Any = None
    trace: list[dict[str, Any]] = field(default_factory=list)
    feedback: str = ""
    reason: str = ""
    latency_ms: float = 0.0
    tokens: int = 0
    cost: float = 0.0
    attempt: int = 0
    id: int | None = None
    notes: list[str] = field(default_factory=list)  # what was changed to make the record fit
    output_size: int | None = None  # the full size in bytes of an output that was truncated

    def published(self) -> Trial:
        """The frozen record plugins and `--json` readers get."""
        return Trial(**{f.name: getattr(self, f.name) for f in fields(Trial)})


@dataclass(frozen=True, slots=True)
class Trial(Record):
    """One execution of one task by one version, as recorded: output, trace, verdict and what it cost.

    `status` is `pass`, `fail` or `error` (the harness could not judge: never the agent's failure); `attempt` counts
    retries of an `error` trial; `notes` say what was changed to make the record fit, `output_size` the full size
    of a truncated output.
    """

    id: int | None
    run_id: int
    task_id: str
    repeat: int
    attempt: int
    seed: int
    status: TrialStatus
    score: float
    reason: str
    feedback: str
    output: Any
    trace: list[dict[str, Any]]
    latency_ms: float
    tokens: int
    cost: float
    notes: list[str] = field(default_factory=list)
    output_size: int | None = None


@dataclass(frozen=True, slots=True)
class Manifest:
    """An agent artifact's manifest (`agent.yaml` in its folder)."""

    name: str
    adapter: str
    editable: tuple[str, ...]
    entry: str = ""
    command: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    timeout_s: float | None = None
    model: str = ""
    files: dict[str, str] = field(default_factory=dict)  # prompt agents: system, prompt, demos, tools
    sandbox: dict[str, Any] = field(default_factory=dict)  # limits, network and env of the agent's sandbox
    resources: dict[str, Any] = field(default_factory=dict)  # what one trial asks of a machine (cpus, gpus, ...)


@dataclass(frozen=True, slots=True)
class Artifact:
    """A version of an agent, materialised in a folder the adapter can run from."""

    agent: str
    number: int
    path: Path
    manifest: Manifest
    git_sha: str
    content_hash: str
    trusted: bool = False  # set from the workspace's own config, never from the manifest: runs in-process


@dataclass(frozen=True, slots=True)
class Sampling(Record):
    """How an agent's model picks its answers: whether the repeats of a trial are independent samples.

    `temperature` None means not known (an agent of code of its own). Greedy decoding answers the same on every
    repeat, so its repeats are copies of one observation.
    """

    temperature: float | None = None
    top_p: float | None = None
    seeded: bool = False  # every trial samples with a seed of its own (reproducible, and different per repeat)
    COMPUTED: ClassVar[dict[str, str]] = {"greedy": "greedy"}

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @classmethod
    def of(cls, manifest: Manifest) -> Sampling:
        """What the manifest asks for; prompt agents decode greedily unless they set a temperature."""
        params = manifest.params
        default = 0.0 if manifest.adapter == "prompt" else None
        temperature = params.get("temperature", default)
        temperature = float(temperature) if isinstance(temperature, int | float) else default
        top_p = params.get("top_p")
        return cls(
            temperature,
            float(top_p) if isinstance(top_p, int | float) else None,
            manifest.adapter == "prompt" and bool(temperature),
        )

    def describe(self) -> str:
        if self.temperature is None:
            return "sampling not known"
        if self.greedy:
            return "greedy decoding (temperature 0): repeats are copies"
        seeded = ", a seed per trial" if self.seeded else ""
        return f"sampled at temperature {self.temperature:g}{seeded}"


@dataclass(frozen=True, slots=True)
class TrialContext:
    """What an agent sees besides the task input.

    `llm` is the trial's door to the LLM gateway (`await ctx.llm.complete(model=..., messages=..., params=...)`,
    an `AgentLLM`): cached, retried and recorded calls through litellm, limited to what an agent may ask (sampling
    parameters, allowed models). `models` maps roles to model strings.
    """

    task_id: str
    repeat: int
    seed: int
    params: dict[str, Any]
    llm: Any = None
    models: dict[str, str] = field(default_factory=dict)
    attempt: int = 0  # 0, then 1, 2, ... when an `error` trial is tried again (with a seed of its own)


@dataclass(frozen=True, slots=True)
class CriticInput:
    """Everything an implementation-blind critic may see about one failed trial.

    Deliberately no field for the agent's prompts, code, parameters or weights.
    """

    trial_id: int
    task_id: str
    input: Any
    expected: Any
    output: Any
    trace: list[dict[str, Any]]
    status: TrialStatus
    feedback: str
    reason: str
    rubric: str = ""


@dataclass(frozen=True, slots=True)
class CriticServices:
    """What a critic may use besides its inputs: the LLM gateway and the critic role's model."""

    llm: Any = None
    model: str = ""
    progress: Any = None  # a ProgressFactory, to show how far the critic is: `with progress(text, total) as advance`


@dataclass(frozen=True, slots=True)
class Symptom(Record):
    """A critic's label for what went wrong in one trial. Describes, never prescribes."""

    trial_id: int
    task_id: str
    label: str
    description: str
    evidence: tuple[str, ...] = ()
    severity: Severity = "medium"
    critic: str = ""


@dataclass(frozen=True, slots=True)
class TaskOutcome(Record):
    """Pass counts of one task in one run: `trials` judged (pass or fail), `errors` apart; `class` is
    `stable_pass`, `stable_fail`, `flaky`, or `no_data` when every trial errored."""

    task_id: str = ""
    passes: int = 0
    trials: int = 0
    errors: int = 0
    tags: tuple[str, ...] = ()
    trial_ids: tuple[int, ...] = ()
    COMPUTED: ClassVar[dict[str, str]] = {"class": "klass"}

    @property
    def rate(self) -> float:
        return self.passes / self.trials if self.trials else 0.0

    @property
    def klass(self) -> str:
        """`stable_pass`, `stable_fail`, `flaky`, or `no_data` when every trial errored."""
        if not self.trials:
            return "no_data"
        if self.passes == self.trials:
            return "stable_pass"
        if self.passes == 0:
            return "stable_fail"
        return "flaky"


@dataclass(frozen=True, slots=True)
class DiagnosisRequest:
    """Input of a diagnosis script: a finished run's outcomes and its symptoms."""

    agent: str
    version: int
    run_id: int
    split: str
    outcomes: tuple[TaskOutcome, ...]
    symptoms: tuple[Symptom, ...]


@dataclass(frozen=True, slots=True)
class Pattern(Record):
    """A recurring failure found by a diagnosis script."""

    label: str
    count: int
    share: float
    task_ids: list[str]
    example_task_ids: list[str]
    intended_change: str
    source: str = "builtin"
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Spec(Record):
    """The engineering spec a candidate is built from: the dominant failure patterns of a run, the tasks a change
    should flip (`target_tasks`, `target_tags`), the tasks that must stay green (`protected_tasks`), and the
    intended change. `id` is set once the spec is stored."""

    agent: str
    version: int
    run_id: int
    split: str
    failed_tasks: int
    total_tasks: int
    patterns: list[Pattern]
    target_tasks: list[str]
    protected_tasks: list[str]
    target_tags: list[str]
    intended_change: str
    id: int | None = None


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


@dataclass(frozen=True, slots=True)
class CandidateContext:
    """What a candidate strategy gets: the canonical artifact and the spec to act on."""

    agent: str
    base: Artifact
    spec: Spec | None
    workspace: Path
    options: dict[str, Any]
    used_sources: frozenset[str]
    llm: Any = None  # the workspace's LLM gateway
    model: str = ""  # the synthesizer role's model
    dev_examples: tuple[dict[str, Any], ...] = ()  # dev-split tasks with their latest canonical outcome
    judged: tuple[Judged, ...] = ()  # candidates already judged against this base: propose something else
    context_tokens: int = 0  # the agent model's context window, when known: a prompt must fit in it
    verifiers: dict[str, Any] = field(default_factory=dict)  # name -> verify(task_id, output) -> Verdict, on dev
    # tasks: the suite's own `primary` verifier, then its secondary ones

    def already_judged(self, files: dict[str, str]) -> Judged | None:
        """The earlier candidate that proposed exactly these file contents against this base, if one did."""
        for judged in self.judged:
            if judged.files == files:
                return judged
        return None


@dataclass(frozen=True, slots=True)
class Judged:
    """A candidate already judged against the same base: what it changed and why it was not promoted."""

    number: int
    status: str
    intent: str
    source: str
    content_hash: str
    reasons: tuple[str, ...] = ()
    files: dict[str, str] = field(default_factory=dict)  # its changed files (relative to the agent folder)


@dataclass(frozen=True, slots=True)
class CandidateProposal:
    """A strategy's answer: a change to the canonical artifact, as a patch, new file contents, or a git ref.

    `files` maps paths relative to the agent folder to their new content.
    """

    intent: str
    patch: str = ""
    ref: str = ""
    files: dict[str, str] = field(default_factory=dict)
    source: str = ""


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


@dataclass(frozen=True, slots=True)
class Run(Record):
    """One run of a version over a split: `counts` of effective trials by status, `executed` trials this command
    ran (`resumed` when it finished an interrupted run), `secondary` verifiers' passes; `trials` only where asked
    for (`release show --run`). `status` is `running`, `complete`, `interrupted` or `failed`."""

    id: int
    agent: str
    version: int
    split: str
    repeats: int
    purpose: str
    status: str
    seed: int = 0
    suite: str = ""
    tasks: int = 0
    created_at: datetime | None = None
    finished_at: datetime | None = None
    sampling: Sampling | None = None
    counts: dict[str, int] = field(default_factory=dict)
    executed: int | None = None
    resumed: bool = False
    secondary: dict[str, dict[str, int]] = field(default_factory=dict)
    trials: tuple[Trial, ...] = ()

    @classmethod
    def of(cls, row: dict[str, Any], version: VersionInfo, **more: Any) -> Run:
        """The record of a stored run (`Store.run`'s row) of `version`, with what the caller adds."""
        sampling = row.get("sampling")
        return cls(
            id=row["id"],
            agent=version.agent,
            version=version.number,
            split=row["split"],
            repeats=row["repeats"],
            purpose=row["purpose"],
            status=row["status"],
            seed=row["seed"],
            suite=row["suite"],
            tasks=len(row["task_ids"]),
            created_at=row["created_at"],
            finished_at=row["finished_at"],
            sampling=Sampling.from_dict(sampling) if sampling else None,
            **more,
        )


@dataclass(frozen=True, slots=True)
class Candidate(Record):
    """A recorded release candidate: its version entry and the files its change touched (`ignored_files` are
    outside the agent folder and play no part)."""

    version: VersionInfo
    changed_files: tuple[str, ...] = ()
    ignored_files: tuple[str, ...] = ()
    FLATTEN: ClassVar[tuple[str, ...]] = ("version",)


@dataclass(frozen=True, slots=True)
class GateSummary(Record):
    """A version's latest gate decision in one line: against which version, with how many fixes and regressions."""

    report: int
    decision: Decision
    against: int
    fixes: int
    regressions: int


@dataclass(frozen=True, slots=True)
class VersionEntry(Record):
    """One line of `release log`: the version and its latest gate decision, if it was gated."""

    version: VersionInfo
    gate: GateSummary | None = None
    FLATTEN: ClassVar[tuple[str, ...]] = ("version",)


@dataclass(frozen=True, slots=True)
class VersionDetail(Record):
    """A version in full (`release show`): its entry, its diff against its parent, its runs, the spec it was built
    from, its latest gate report (and that report as Markdown), and the head moves it took part in."""

    entry: VersionEntry
    changed_files: tuple[str, ...] = ()
    diff: str = ""
    runs: tuple[Run, ...] = ()
    spec: Spec | None = None
    gate_report: GateReport | None = None
    gate_markdown: str = ""
    head_moves: tuple[HeadMove, ...] = ()
    FLATTEN: ClassVar[tuple[str, ...]] = ("entry",)


@dataclass(frozen=True, slots=True)
class IterationSummary(Record):
    """One iteration of `release promote --iterations N`: the spec, the candidate, the gate's decision and whether
    it was promoted; `stopped` says why the loop stopped here, if it did."""

    iteration: int
    base: int
    spec: int | None = None
    candidate: int | None = None
    decision: Decision | None = None
    fixes: tuple[str, ...] = ()
    regressions: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    reason_codes: tuple[str, ...] = ()
    promoted: bool = False
    stopped: str | None = None


@dataclass(frozen=True, slots=True)
class FlipRow(Record):
    """One task in `release diff`: both versions' outcomes and what they show."""

    task_id: str
    outcome: Outcome
    max_drop: float
    base: TaskOutcome
    candidate: TaskOutcome


@dataclass(frozen=True, slots=True)
class FlipTable(Record):
    """Two versions compared task by task over their latest complete runs of one split (`release diff`)."""

    agent: str
    a: int
    b: int
    split: str
    runs: tuple[int, ...]
    repeats: int
    counts: dict[str, int]
    tasks: tuple[FlipRow, ...]
    fixes: tuple[str, ...] = ()
    regressions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Disagreement(Record):
    """One place where git does not say what the database says (`database` and `git` are shas, "" for none):
    in this clone, or (`remote` names it) in the shared remote head moves are pushed to."""

    agent: str
    ref: str
    database: str
    git: str
    explanation: str
    remote: str = ""


@dataclass(frozen=True, slots=True)
class DoctorReport(Record):
    """`release doctor` on one agent: what disagreed and was repaired (or, with `--check`, only found)."""

    agent: str
    canonical: int | None
    consistent: bool
    repaired: tuple[Disagreement, ...] = ()
    disagreements: tuple[Disagreement, ...] = ()


@dataclass(frozen=True, slots=True)
class PluginInfo(Record):
    """A loaded plugin: `source` is `builtin`, `workspace` or `entry-point`; `components` are `kind:name`."""

    name: str
    source: str
    hooks: tuple[str, ...]
    components: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Baseline(Record):
    """An agent's canonical version after `release init` (`new` when init recorded it now)."""

    agent: str
    canonical: int
    git_sha: str
    new: bool


@dataclass(frozen=True, slots=True)
class InitResult(Record):
    """What `release init` created in the workspace and each agent's canonical version."""

    workspace: str
    created: tuple[str, ...]
    agents: tuple[Baseline, ...]


@dataclass(frozen=True, slots=True)
class ErrorReport(Record):
    """A failed command under `--json`: one line on stderr, `{"error": ErrorReport}`, with a stable `code`, the
    one-line message, a hint, and the command's exit code."""

    code: str
    message: str
    hint: str = ""
    exit_code: int = 2
