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


# label -> how its description reads (`{feedback}`: the verifier's); other labels say the answer is wrong
_DESCRIPTIONS = {
    "exception": "the agent raised {feedback}",
    "timeout": "the agent gave no answer in time ({feedback})",
    "empty_output": "the agent returned an empty answer",
    "malformed_output": "the answer has the wrong shape: {feedback}",
    "format_mismatch": "the answer is right in substance but not in form: {feedback}",
    "verbose_answer": "the answer holds the expected one among other words: {feedback}",
}


def _describe(item: CriticInput, label: str) -> str:
    template = _DESCRIPTIONS.get(label)
    if template is not None:
        return template.format(feedback=item.feedback)
    return f"the answer is wrong: {item.feedback}" if item.feedback else "the answer is wrong"


def heuristic(items: list[CriticInput], services: CriticServices | None = None) -> list[Symptom]:
    """One or more symptoms per failed trial, from the harness and verifier reason codes and the trace."""
    return [symptom for item in items if item.status == "fail" for symptom in _symptoms(item)]


def _symptoms(item: CriticInput) -> list[Symptom]:
    """A failed trial's symptom, and one more for its failed tool calls (unless the agent raised)."""
    label, severity = _label(item)
    symptom = Symptom(
        item.trial_id, item.task_id, label, _describe(item, label), tuple(_evidence(item)), severity, "heuristic"
    )
    tool_errors = _steps_of_type(item, {"tool_error"})
    if not tool_errors or label == "exception":
        return [symptom]
    tools = Symptom(
        item.trial_id,
        item.task_id,
        "tool_error",
        f"{len(tool_errors)} tool call(s) failed during the trial",
        tuple(f"trace[{i}]" for i in tool_errors),
        "medium",
        "heuristic",
    )
    return [symptom, tools]


def _label(item: CriticInput) -> tuple[str, Severity]:
    """The label of a failure by its reason code; a wrong value whose answer holds the expected one is a matter of
    form (the same once normalized) or of verbosity (the expected answer among other words)."""
    label, severity = _BY_REASON.get(item.reason, ("wrong_value", "medium"))
    if label != "wrong_value" or item.expected is None or item.output is None:
        return label, severity
    said, wanted = normalize_text(item.output), normalize_text(item.expected)
    if said == wanted:
        return "format_mismatch", "low"
    if wanted and f" {wanted} " in f" {said} ":  # the right answer, inside more words
        return "verbose_answer", "low"
    return label, severity


def _evidence(item: CriticInput) -> list[str]:
    """The verifier's feedback and the trace steps that record an error."""
    feedback = [f"verifier: {item.feedback}"] if item.feedback else []
    return feedback + [f"trace[{i}]" for i in _steps_of_type(item, _ERROR_STEP_TYPES)]


def _steps_of_type(item: CriticInput, types: set[str]) -> list[int]:
    return [i for i, step in enumerate(item.trace) if isinstance(step, dict) and step.get("type") in types]


@hookimpl
def release_register_critics(register):
    register("heuristic", heuristic)
