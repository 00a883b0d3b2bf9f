"""Records only `--json` outputs print: the line, one version in full, flips, the doctor, plugins, errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from release_pipeline.models.critique import Spec
from release_pipeline.models.gate import Decision, GateReport, Outcome
from release_pipeline.models.record import Record
from release_pipeline.models.trials import Run, TaskOutcome
from release_pipeline.models.versions import HeadMove, VersionInfo


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
    """One iteration of `release promote --iterations N`: the strategy, the spec, the candidate, the gate's decision
    and whether it was promoted; `moved_on` says why the portfolio's next strategy takes over after it, `stopped`
    why the loop stopped here, if it did."""

    iteration: int
    base: int
    strategy: str = ""
    spec: int | None = None
    candidate: int | None = None
    decision: Decision | None = None
    fixes: tuple[str, ...] = ()
    regressions: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    reason_codes: tuple[str, ...] = ()
    promoted: bool = False
    stopped: str | None = None
    moved_on: str | None = None


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
