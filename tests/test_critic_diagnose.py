"""The heuristic critic is blind to the artifact, and diagnosis is a deterministic script."""

from __future__ import annotations

import dataclasses

from release_pipeline.builtin.critics import heuristic
from release_pipeline.builtin.diagnosis import release_diagnose
from release_pipeline.models import CriticInput, DiagnosisRequest, Symptom, TaskOutcome
from release_pipeline.stages.diagnose import build_spec


def item(reason: str, output="x", expected="y", trace=(), status="fail", task="t1", trial=1):
    return CriticInput(trial, task, "in", expected, output, list(trace), status, f"feedback for {reason}", reason)


def test_critic_input_has_no_door_to_the_artifact():
    fields = {f.name for f in dataclasses.fields(CriticInput)}
    assert fields == {
        "trial_id",
        "task_id",
        "input",
        "expected",
        "output",
        "trace",
        "status",
        "feedback",
        "reason",
        "rubric",
    }


def test_heuristic_labels():
    labels = [
        s.label
        for s in heuristic(
            [
                item("agent_exception", trace=[{"type": "exception", "error": "ValueError"}]),
                item("timeout"),
                item("empty"),
                item("unparseable"),
                item("schema_violation"),
                item("mismatch"),
                item("mismatch", output="Paris.", expected="paris"),
                item("mismatch", output="The capital of France is Paris.", expected="paris"),
                item("mismatch", trace=[{"type": "tool_error", "error": "404"}]),
                item("ok", status="pass"),
                item("infrastructure", status="error"),
            ]
        )
    ]
    assert labels == [
        "exception",
        "timeout",
        "empty_output",
        "malformed_output",
        "malformed_output",
        "wrong_value",
        "format_mismatch",
        "verbose_answer",
        "wrong_value",
        "tool_error",
    ]
    exc = heuristic([item("agent_exception", trace=[{"type": "plan"}, {"type": "exception"}])])[0]
    assert exc.evidence == ("verifier: feedback for agent_exception", "trace[1]") and exc.severity == "high"


def request(symptoms, outcomes):
    return DiagnosisRequest("a", 1, 7, "dev", tuple(outcomes), tuple(symptoms))


def test_diagnosis_counts_tasks_not_repeats_and_is_deterministic():
    outcomes = [
        TaskOutcome("t1", 0, 3, 0, ("x",)),
        TaskOutcome("t2", 1, 3, 0, ("y",)),
        TaskOutcome("t3", 0, 3, 0),
        TaskOutcome("t4", 3, 3, 0),
    ]
    symptoms = [Symptom(i, "t1", "exception", "d") for i in range(3)] + [
        Symptom(4, "t2", "exception", "d"),
        Symptom(5, "t3", "wrong_value", "d"),
    ]
    req = request(symptoms, outcomes)
    spec = build_spec(req, release_diagnose(request=req))
    assert [(p.label, p.count, p.share) for p in spec.patterns] == [
        ("exception", 2, 0.6667),
        ("wrong_value", 1, 0.3333),
    ]
    assert spec.target_tasks == ["t1", "t2", "t3"] and spec.protected_tasks == ["t4"]
    assert spec.target_tags == ["x", "y"] and spec.failed_tasks == 3
    shuffled = request(list(reversed(symptoms)), list(reversed(outcomes)))
    again = build_spec(shuffled, release_diagnose(request=shuffled))
    assert dataclasses.asdict(again) == dataclasses.asdict(spec)
