"""release-pipeline: release engineering for LLM agents.

One canonical version line per agent, improved through
run -> critic -> diagnose -> candidate -> gate -> promote.

A plugin imports what it needs from here: `hookimpl` and the data types its hooks receive and return
(see docs/plugins.md).
"""

from release_pipeline.hookspecs import hookimpl
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
