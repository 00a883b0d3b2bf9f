"""The built-in diagnosis script: one pattern per symptom label, counted over failing tasks."""

from __future__ import annotations

from collections import defaultdict

from release_pipeline.labels import cluster_labels
from release_pipeline.models import DiagnosisRequest, Pattern
from release_pipeline.plugins.hookspecs import hookimpl

EXAMPLES = 5

_CHANGES = {
    "exception": "Make the agent handle inputs like those of {examples} instead of raising.",
    "timeout": "Make the agent answer within the time limit on tasks like {examples}.",
    "empty_output": "Make the agent always return an answer, as it fails to on {examples}.",
    "malformed_output": "Make the agent's answers take the shape the verifier expects, as they do not on {examples}.",
    "format_mismatch": "Make the agent's answers match the expected form exactly, as they do not on {examples}.",
    "verbose_answer": "Make the agent give only the answer asked for, without the words around it, on {examples}.",
    "wrong_value": "Make the agent's answers correct on tasks like {examples}.",
    "tool_error": "Make the agent's tool calls succeed, as they fail on {examples}.",
}


@hookimpl
def release_diagnose(request: DiagnosisRequest) -> list[Pattern]:
    """Group symptoms by clustered label; count failing tasks, not trials, so repeats do not inflate a pattern."""
    failing = {o.task_id for o in request.outcomes if o.klass in ("stable_fail", "flaky")}
    tags = {o.task_id: o.tags for o in request.outcomes}
    names = cluster_labels(s.label for s in request.symptoms)  # "wrong format" and "format_error" are one
    by_label: dict[str, set[str]] = defaultdict(set)
    for symptom in request.symptoms:
        if symptom.task_id in failing:
            by_label[names[symptom.label]].add(symptom.task_id)
    patterns = []
    for label, task_ids in by_label.items():
        ids = sorted(task_ids)
        examples = ids[:EXAMPLES]
        template = _CHANGES.get(label, "Remove the '" + label + "' failures seen on {examples}.")
        label_tags = sorted({tag for t in ids for tag in tags.get(t, ())})
        patterns.append(
            Pattern(
                label=label,
                count=len(ids),
                share=round(len(ids) / len(failing), 4) if failing else 0.0,
                task_ids=ids,
                example_task_ids=examples,
                intended_change=template.format(examples=", ".join(examples)),
                source="builtin",
                tags=label_tags,
            )
        )
    return patterns
