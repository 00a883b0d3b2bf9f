"""Plain data objects that flow between stages and plugins.

Plugins only ever see these: never a database session, never an ORM row.
They are dataclasses so that they serialise with `dataclasses.asdict`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

TrialStatus = Literal["pass", "fail", "error"]
VersionStatus = Literal["canonical", "candidate", "rejected", "retired"]
Severity = Literal["low", "medium", "high"]
MoveKind = Literal["init", "promote", "rollback", "repair"]
SPLITS = ("dev", "gate", "holdout")


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
class Sampling:
    """How an agent's model picks its answers: whether the repeats of a trial are independent samples.

    `temperature` None means not known (an agent of code of its own). Greedy decoding answers the same on every
    repeat, so its repeats are copies of one observation.
    """

    temperature: float | None = None
    top_p: float | None = None
    seeded: bool = False  # every trial samples with a seed of its own (reproducible, and different per repeat)

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

    def to_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "top_p": self.top_p, "seeded": self.seeded, "greedy": self.greedy}

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

    `llm` is the workspace's LLM gateway (`await ctx.llm.complete(role=..., model=..., messages=...)`):
    cached, retried and recorded calls through litellm. `models` maps roles to model strings.
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
class Symptom:
    """A critic's label for what went wrong in one trial. Describes, never prescribes."""

    trial_id: int
    task_id: str
    label: str
    description: str
    evidence: tuple[str, ...] = ()
    severity: Severity = "medium"
    critic: str = ""


@dataclass(slots=True)
class TaskOutcome:
    """Pass counts of one task in one run (error trials excluded)."""

    task_id: str
    passes: int
    trials: int
    errors: int
    tags: tuple[str, ...] = ()
    trial_ids: tuple[int, ...] = ()

    @property
    def rate(self) -> float:
        return self.passes / self.trials if self.trials else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The outcome as reports show it, with the trial ids behind the counts."""
        return {
            "passes": self.passes,
            "trials": self.trials,
            "errors": self.errors,
            "class": self.klass,
            "trial_ids": list(self.trial_ids),
        }

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


@dataclass(slots=True)
class Pattern:
    """A recurring failure found by a diagnosis script."""

    label: str
    count: int
    share: float
    task_ids: list[str]
    example_task_ids: list[str]
    intended_change: str
    source: str = "builtin"
    tags: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Spec:
    """The engineering spec a candidate is built from."""

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
class Reason:
    """Why a gate did not accept a candidate: a stable code for scripts, a sentence for people, the tasks behind it.

    Codes that reject: `regression`, `protected_regression`, `too_few_fixes`, `forbidden_change`, `intent`,
    `plugin` (a plugin's objection). Codes that leave it undecided: `undecided` (a task could not be shown
    safe), `budget_exhausted`, `errors` (a task had no usable trial).
    """

    code: str
    message: str
    tasks: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "tasks": list(self.tasks)}


def decision_of(reasons: list[Reason]) -> str:
    """`rejected` when a reason rejects, `undecided` when one leaves it open, else `accepted`."""
    if any(r.code in REJECTING for r in reasons):
        return "rejected"
    if any(r.code in UNDECIDING for r in reasons):
        return "undecided"
    return "accepted"


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One entry of an agent's version line."""

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


@dataclass(frozen=True, slots=True)
class HeadMove:
    """One move of an agent's canonical head."""

    agent: str
    from_version: int | None
    to_version: int
    actor: str
    reason: str
    kind: MoveKind
    at: datetime


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
