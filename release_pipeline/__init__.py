"""release-pipeline: release engineering for LLM agents.

One canonical version line per agent, improved through
run -> critic -> diagnose -> candidate -> gate -> promote.

A plugin imports what it needs from here: `hookimpl` and the data types its hooks receive and return
(see docs/plugins.md). They are imported on first use: importing a module of the package (the CLI's
`--help`, a sandboxed agent's worker) does not pay for pluggy and every record type.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing`'s: importing a module of the package must not import typing
if TYPE_CHECKING:
    from typing import Any

    from release_pipeline.models import (
        AgentResult,
        Artifact,
        Candidate,
        CandidateContext,
        CandidateProposal,
        CriticInput,
        CriticServices,
        DiagnosisRequest,
        GateEvidence,
        GateReport,
        HeadMove,
        Judged,
        Manifest,
        Pattern,
        Reason,
        Record,
        Run,
        Sampling,
        Spec,
        Suite,
        Symptom,
        Task,
        TaskOutcome,
        TaskRow,
        Trial,
        TrialContext,
        TrialRecord,
        Verdict,
        VersionInfo,
    )
    from release_pipeline.plugins.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = [
    "AgentResult",
    "Artifact",
    "Candidate",
    "CandidateContext",
    "CandidateProposal",
    "CriticInput",
    "CriticServices",
    "DiagnosisRequest",
    "GateEvidence",
    "GateReport",
    "HeadMove",
    "Judged",
    "Manifest",
    "Pattern",
    "Reason",
    "Record",
    "Run",
    "Sampling",
    "Spec",
    "Suite",
    "Symptom",
    "Task",
    "TaskOutcome",
    "TaskRow",
    "Trial",
    "TrialContext",
    "TrialRecord",
    "Verdict",
    "VersionInfo",
    "hookimpl",
    "__version__",
]


def __getattr__(name: str) -> Any:
    """The names above, imported when first asked for (PEP 562)."""
    if name == "hookimpl":
        from release_pipeline.plugins.hookspecs import hookimpl

        return hookimpl
    if name in __all__:
        from release_pipeline import models

        return getattr(models, name)
    raise AttributeError(f"module 'release_pipeline' has no attribute {name!r}")
