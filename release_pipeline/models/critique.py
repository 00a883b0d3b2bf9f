"""What the critic sees and says, and what diagnosis makes of it: symptoms, patterns, the engineering spec."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from release_pipeline.models.record import Record
from release_pipeline.models.trials import TaskOutcome, TrialStatus

Severity = Literal["low", "medium", "high"]


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
