"""The built-in heuristic critic: labels symptoms from verifier feedback and trace steps, no LLM."""

from __future__ import annotations

from release_pipeline.builtin.verifiers import normalize_text
from release_pipeline.models import CriticInput, CriticServices, Severity, Symptom
from release_pipeline.plugins.hookspecs import hookimpl

# verifier/harness reason code -> (label, severity)
_BY_REASON: dict[str, tuple[str, Severity]] = {
    "agent_exception": ("exception", "high"),
    "timeout": ("timeout", "high"),
    "sandbox_violation": ("resource_limit", "high"),
    "empty": ("empty_output", "high"),
    "unparseable": ("malformed_output", "medium"),
    "malformed_output": ("malformed_output", "medium"),
    "schema_violation": ("malformed_output", "medium"),
    "mismatch": ("wrong_value", "medium"),
}

_ERROR_STEP_TYPES = {"exception", "error", "tool_error"}


def _describe(item: CriticInput, label: str) -> str:
    if label == "exception":
        return f"the agent raised {item.feedback}"
    if label == "timeout":
        return f"the agent gave no answer in time ({item.feedback})"
    if label == "empty_output":
        return "the agent returned an empty answer"
    if label == "malformed_output":
        return f"the answer has the wrong shape: {item.feedback}"
    if label == "format_mismatch":
        return f"the answer is right in substance but not in form: {item.feedback}"
    if label == "verbose_answer":
        return f"the answer holds the expected one among other words: {item.feedback}"
    return f"the answer is wrong: {item.feedback}" if item.feedback else "the answer is wrong"


def heuristic(items: list[CriticInput], services: CriticServices | None = None) -> list[Symptom]:
    """One or more symptoms per failed trial, from the harness and verifier reason codes and the trace."""
    symptoms = []
    for item in items:
        if item.status != "fail":
            continue
        label, severity = _BY_REASON.get(item.reason, ("wrong_value", "medium"))
        if label == "wrong_value" and item.expected is not None and item.output is not None:
            said, wanted = normalize_text(item.output), normalize_text(item.expected)
            if said == wanted:
                label, severity = "format_mismatch", "low"
            elif wanted and f" {wanted} " in f" {said} ":  # the right answer, inside more words
                label, severity = "verbose_answer", "low"
        evidence = [f"verifier: {item.feedback}"] if item.feedback else []
        evidence += [
            f"trace[{i}]"
            for i, step in enumerate(item.trace)
            if isinstance(step, dict) and step.get("type") in _ERROR_STEP_TYPES
        ]
        symptoms.append(
            Symptom(item.trial_id, item.task_id, label, _describe(item, label), tuple(evidence), severity, "heuristic")
        )
        tool_errors = [
            i for i, step in enumerate(item.trace) if isinstance(step, dict) and step.get("type") == "tool_error"
        ]
        if tool_errors and label != "exception":
            symptoms.append(
                Symptom(
                    item.trial_id,
                    item.task_id,
                    "tool_error",
                    f"{len(tool_errors)} tool call(s) failed during the trial",
                    tuple(f"trace[{i}]" for i in tool_errors),
                    "medium",
                    "heuristic",
                )
            )
    return symptoms


@hookimpl
def release_register_critics(register):
    register("heuristic", heuristic)
