"""An agent's artifact and manifest, what one trial gets and returns, its record, and the run it belongs to."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from release_pipeline.models.record import Record

TrialStatus = Literal["pass", "fail", "error"]


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
