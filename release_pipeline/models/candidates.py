"""What a candidate strategy gets and proposes, and the candidate the stage records."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from release_pipeline.models.critique import Spec
from release_pipeline.models.record import Record
from release_pipeline.models.trials import Artifact
from release_pipeline.models.versions import VersionInfo


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
    progress: Any = None  # a ProgressFactory (see progress.py) for long work such as training; None: show nothing

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


@dataclass(frozen=True, slots=True)
class Candidate(Record):
    """A recorded release candidate: its version entry and the files its change touched (`ignored_files` are
    outside the agent folder and play no part)."""

    version: VersionInfo
    changed_files: tuple[str, ...] = ()
    ignored_files: tuple[str, ...] = ()
    FLATTEN: ClassVar[tuple[str, ...]] = ("version",)
