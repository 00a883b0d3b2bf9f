"""Plain data objects that flow between stages and plugins, and out of every `--json` command.

Plugins only ever see these: never a database session, never an ORM row. The records a plugin or a CLI user
receives (`Record` subclasses: versions, head moves, runs, trials, symptoms, specs, candidates, gate reports)
are frozen, and `to_dict()` is their JSON shape: `docs/json.md` is generated from them
(`python -m release_pipeline.reports.json_shapes`), and a test fails when a record changes and the page does not.

One module per subject: `record` (the serialization), `tasks`, `trials` (and runs), `versions`, `critique`
(symptoms, patterns, specs), `candidates`, `gate`, and `outputs` (records only `--json` outputs print).
Everything is importable from here.
"""

from release_pipeline.models.candidates import Candidate, CandidateContext, CandidateProposal, Judged
from release_pipeline.models.critique import (
    CriticInput,
    CriticServices,
    DiagnosisRequest,
    Pattern,
    Severity,
    Spec,
    Symptom,
)
from release_pipeline.models.gate import (
    REJECTING,
    UNDECIDING,
    Decision,
    GateBounds,
    GateCost,
    GateDecision,
    GateEvidence,
    GatePlan,
    GateReport,
    Outcome,
    PairedTest,
    PlanClass,
    Reason,
    TaskRow,
    decision_of,
)
from release_pipeline.models.outputs import (
    Baseline,
    Disagreement,
    DoctorReport,
    ErrorReport,
    FlipRow,
    FlipTable,
    GateSummary,
    InitResult,
    IterationSummary,
    PluginInfo,
    VersionDetail,
    VersionEntry,
)
from release_pipeline.models.record import Record, plain
from release_pipeline.models.tasks import SPLITS, Suite, Task, Verdict
from release_pipeline.models.trials import (
    AgentResult,
    Artifact,
    Manifest,
    Run,
    Sampling,
    TaskOutcome,
    Trial,
    TrialContext,
    TrialRecord,
    TrialStatus,
)
from release_pipeline.models.versions import HeadMove, MoveKind, VersionInfo, VersionStatus, version_tag

__all__ = [
    "Record",
    "plain",
    "SPLITS",
    "Task",
    "Suite",
    "Verdict",
    "TrialStatus",
    "AgentResult",
    "TrialRecord",
    "Trial",
    "Manifest",
    "Artifact",
    "Sampling",
    "TrialContext",
    "TaskOutcome",
    "Run",
    "VersionStatus",
    "MoveKind",
    "version_tag",
    "VersionInfo",
    "HeadMove",
    "Severity",
    "CriticInput",
    "CriticServices",
    "Symptom",
    "DiagnosisRequest",
    "Pattern",
    "Spec",
    "CandidateContext",
    "Judged",
    "CandidateProposal",
    "Candidate",
    "REJECTING",
    "UNDECIDING",
    "Reason",
    "decision_of",
    "GateDecision",
    "Outcome",
    "Decision",
    "TaskRow",
    "PairedTest",
    "GateEvidence",
    "GateBounds",
    "GateCost",
    "PlanClass",
    "GatePlan",
    "GateReport",
    "GateSummary",
    "VersionEntry",
    "VersionDetail",
    "IterationSummary",
    "FlipRow",
    "FlipTable",
    "Disagreement",
    "DoctorReport",
    "PluginInfo",
    "Baseline",
    "InitResult",
    "ErrorReport",
]
